/* The float kernels (arch/float_kernels.inc) for AVX2 + FMA + F16C. */
#include "kernels_x86.h"
#include "vec16_avx2.h"
#define FK(name) qrm_avx2_##name
#include "float_kernels.inc"
