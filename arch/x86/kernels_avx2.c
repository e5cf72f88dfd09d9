/* The AVX2 + FMA + F16C family: its kernel table. Every entry is specialized
 * (the kernels live in the other *_avx2.c files, one job per file). */
#include "kernels_x86.h"

QRM_DEFINE_FAMILY(avx2, qrm_avx2_quantize_act, qrm_avx2_gemm_q8, qrm_avx2_gemm_q8_acc, qrm_avx2_gemm_q4, qrm_avx2_)
