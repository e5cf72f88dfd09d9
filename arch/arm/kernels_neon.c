/* The neon family (ARMv8.0 Advanced SIMD, every aarch64 CPU): the table. */
#include "kernels_arm.h"

QRM_DEFINE_FAMILY(neon, qrm_neon_quantize_act, qrm_neon_gemm_q8, qrm_neon_gemm_q8_acc, qrm_neon_gemm_q4, qrm_neon_)
