/* The i8mm family (ARMv8.6 smmla, with dotprod and fp16): the table. The
 * int8 GEMMs use smmla for token pairs and dotprod for a single token; the
 * float kernels are the neon ones. */
#include "kernels_arm.h"

static const qrm_kernels i8mm_kernels = {
    .name = "i8mm",
    .quantize_act = qrm_neon_quantize_act,
    .gemm_q8 = qrm_i8mm_gemm_q8,
    .gemm_q4 = qrm_i8mm_gemm_q4,
    QRM_FLOAT_KERNEL_ENTRIES(qrm_neon_),
};

const qrm_kernels *qrm_kernels_i8mm(void) { return &i8mm_kernels; }
