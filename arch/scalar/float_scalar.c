/* The float kernels (arch/float_kernels.inc) in plain C: the reference that
 * defines the canonical evaluation every SIMD family reproduces bit for bit. */
#include "vec16_scalar.h"
#define FK(name) qrm_scalar_##name
/* GCC 12 vectorizes the copies of fk_gemm_tile's 16-float accumulator
 * structs and then reports acc[0][0][0] as read uninitialized; every
 * accumulator is set to zero at the start of its pass before any read (the
 * SIMD mappings, whose accumulators are registers, get no warning). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "float_kernels.inc"
#pragma GCC diagnostic pop
