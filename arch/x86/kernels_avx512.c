/* The AVX-512 F/BW/VL/VNNI family (Ice Lake, Sapphire Rapids, Zen 4 and
 * later): its kernel table. Every entry is specialized (the kernels live in
 * the other *_avx512.c files, one job per file). */
#include "kernels_x86.h"

QRM_DEFINE_FAMILY(avx512, qrm_avx512_quantize_act, qrm_avx512_gemm_q8, qrm_avx512_gemm_q8_acc, qrm_avx512_gemm_q4, qrm_avx512_)
