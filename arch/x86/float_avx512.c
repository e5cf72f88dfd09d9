/* The float kernels (arch/float_kernels.inc) for AVX-512F. */
#include "kernels_x86.h"
#include "vec16_avx512.h"
#define FK(name) qrm_avx512_##name
#include "float_kernels.inc"
