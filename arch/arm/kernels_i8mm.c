/* The i8mm family (ARMv8.6 smmla, with dotprod and fp16): the table. The
 * int8 GEMMs use smmla for token pairs and dotprod for a single token; the
 * float kernels are the neon ones. */
#include "kernels_arm.h"

QRM_DEFINE_FAMILY(i8mm, qrm_neon_quantize_act, qrm_i8mm_gemm_q8, qrm_dotprod_gemm_q8_acc, qrm_i8mm_gemm_q4, qrm_neon_)
