/* The dotprod family (ARMv8.2 sdot, with fp16): the table. Only the int8
 * GEMMs differ from neon; the float kernels are the neon ones. */
#include "kernels_arm.h"

static const qrm_kernels dotprod_kernels = {
    .name = "dotprod",
    .quantize_act = qrm_neon_quantize_act,
    .gemm_q8 = qrm_dotprod_gemm_q8,
    .gemm_q4 = qrm_dotprod_gemm_q4,
    QRM_FLOAT_KERNEL_ENTRIES(qrm_neon_),
};

const qrm_kernels *qrm_kernels_dotprod(void) { return &dotprod_kernels; }
