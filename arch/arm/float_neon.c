/* The float kernels (arch/float_kernels.inc) for ARMv8.0 Advanced SIMD,
 * shared by the neon, dotprod and i8mm families. */
#include "kernels_arm.h"
#include "vec16_neon.h"
#define FK(name) qrm_neon_##name
#include "float_kernels.inc"
