/* The float kernels (arch/float_kernels.inc) in plain C: the reference that
 * defines the canonical evaluation every SIMD family reproduces bit for bit. */
#include "vec16_scalar.h"
#define FK(name) qrm_scalar_##name
#include "float_kernels.inc"
