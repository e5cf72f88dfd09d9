/* The AVX-512 F/BW/VL/VNNI family (Ice Lake, Sapphire Rapids, Zen 4 and
 * later): its kernel table. Every entry is specialized (the kernels live in
 * the other *_avx512.c files, one job per file). */
#include "kernels_x86.h"

static const qrm_kernels avx512_kernels = {
    .name = "avx512",
    .quantize_act = qrm_avx512_quantize_act,
    .gemm_q8 = qrm_avx512_gemm_q8,
    .gemm_q4 = qrm_avx512_gemm_q4,
    .gemm_f32 = qrm_avx512_gemm_f32,
    .gemm_f16 = qrm_avx512_gemm_f16,
    .dot_f32 = qrm_avx512_dot_f32,
    .axpy_f32 = qrm_avx512_axpy_f32,
    .scale_f32 = qrm_avx512_scale_f32,
    .rmsnorm_f32 = qrm_avx512_rmsnorm_f32,
    .softmax_f32 = qrm_avx512_softmax_f32,
    .silu_mul_f32 = qrm_avx512_silu_mul_f32,
    .gelu_tanh_mul_f32 = qrm_avx512_gelu_tanh_mul_f32,
    .rope_neox_f32 = qrm_avx512_rope_neox_f32,
    .wsum_rows_f32 = qrm_avx512_wsum_rows_f32,
    .wsum_rows_f16 = qrm_avx512_wsum_rows_f16,
    .f32_to_f16 = qrm_avx512_f32_to_f16,
};

const qrm_kernels *qrm_kernels_avx512(void) { return &avx512_kernels; }
