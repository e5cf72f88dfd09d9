/* The AVX2 + FMA + F16C family: its kernel table. Every entry is specialized
 * (the kernels live in the other *_avx2.c files, one job per file). */
#include "kernels_x86.h"

static const qrm_kernels avx2_kernels = {
    .name = "avx2",
    .quantize_act = qrm_avx2_quantize_act,
    .gemm_q8 = qrm_avx2_gemm_q8,
    .gemm_q4 = qrm_avx2_gemm_q4,
    QRM_FLOAT_KERNEL_ENTRIES(qrm_avx2_),
};

const qrm_kernels *qrm_kernels_avx2(void) { return &avx2_kernels; }
