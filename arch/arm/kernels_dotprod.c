/* The dotprod family (ARMv8.2 sdot, with fp16): the table. Only the int8
 * GEMMs differ from neon; the float kernels are the neon ones. */
#include "kernels_arm.h"

QRM_DEFINE_FAMILY(dotprod, qrm_neon_quantize_act, qrm_dotprod_gemm_q8, qrm_dotprod_gemm_q8_acc, qrm_dotprod_gemm_q4, qrm_neon_)
