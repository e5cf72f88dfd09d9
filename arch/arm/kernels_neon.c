/* The neon family (ARMv8.0 Advanced SIMD, every aarch64 CPU): the table. */
#include "kernels_arm.h"

static const qrm_kernels neon_kernels = {
    .name = "neon",
    .quantize_act = qrm_neon_quantize_act,
    .gemm_q8 = qrm_neon_gemm_q8,
    .gemm_q4 = qrm_neon_gemm_q4,
    QRM_FLOAT_KERNEL_ENTRIES(qrm_neon_),
};

const qrm_kernels *qrm_kernels_neon(void) { return &neon_kernels; }
