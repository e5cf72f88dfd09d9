/* The AVX2 + FMA + F16C family: its kernel table. Every entry is specialized
 * (the kernels live in the other *_avx2.c files, one job per file). */
#include "kernels_x86.h"

static const qrm_kernels avx2_kernels = {
    .name = "avx2",
    .quantize_act = qrm_avx2_quantize_act,
    .gemm_q8 = qrm_avx2_gemm_q8,
    .gemm_q4 = qrm_avx2_gemm_q4,
    .gemm_f32 = qrm_avx2_gemm_f32,
    .gemm_f16 = qrm_avx2_gemm_f16,
    .dot_f32 = qrm_avx2_dot_f32,
    .axpy_f32 = qrm_avx2_axpy_f32,
    .scale_f32 = qrm_avx2_scale_f32,
    .rmsnorm_f32 = qrm_avx2_rmsnorm_f32,
    .softmax_f32 = qrm_avx2_softmax_f32,
    .silu_mul_f32 = qrm_avx2_silu_mul_f32,
    .gelu_tanh_mul_f32 = qrm_avx2_gelu_tanh_mul_f32,
    .rope_neox_f32 = qrm_avx2_rope_neox_f32,
    .wsum_rows_f32 = qrm_avx2_wsum_rows_f32,
    .wsum_rows_f16 = qrm_avx2_wsum_rows_f16,
    .f32_to_f16 = qrm_avx2_f32_to_f16,
};

const qrm_kernels *qrm_kernels_avx2(void) { return &avx2_kernels; }
