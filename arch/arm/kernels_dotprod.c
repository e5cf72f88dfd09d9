/* The dotprod family (ARMv8.2 sdot, with fp16): the table. Only the int8
 * GEMMs differ from neon; the float kernels are the neon ones. */
#include "kernels_arm.h"

static const qrm_kernels dotprod_kernels = {
    .name = "dotprod",
    .quantize_act = qrm_neon_quantize_act,
    .gemm_q8 = qrm_dotprod_gemm_q8,
    .gemm_q4 = qrm_dotprod_gemm_q4,
    .gemm_f32 = qrm_neon_gemm_f32,
    .gemm_f16 = qrm_neon_gemm_f16,
    .dot_f32 = qrm_neon_dot_f32,
    .axpy_f32 = qrm_neon_axpy_f32,
    .scale_f32 = qrm_neon_scale_f32,
    .rmsnorm_f32 = qrm_neon_rmsnorm_f32,
    .softmax_f32 = qrm_neon_softmax_f32,
    .silu_mul_f32 = qrm_neon_silu_mul_f32,
    .gelu_tanh_mul_f32 = qrm_neon_gelu_tanh_mul_f32,
    .rope_neox_f32 = qrm_neon_rope_neox_f32,
    .wsum_rows_f32 = qrm_neon_wsum_rows_f32,
    .wsum_rows_f16 = qrm_neon_wsum_rows_f16,
    .f32_to_f16 = qrm_neon_f32_to_f16,
};

const qrm_kernels *qrm_kernels_dotprod(void) { return &dotprod_kernels; }
