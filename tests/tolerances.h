/* The named tolerances every kernel of every family is held to against the
 * scalar reference, with the reasoning behind each: tests/test_kernels.c,
 * tests/test_wsum.c and the avx512 harness under bochs (tests/emu/) use the
 * same numbers. */
#ifndef QRM_TEST_TOLERANCES_H
#define QRM_TEST_TOLERANCES_H

#include <float.h>

/* u = 2^-24, the unit roundoff of float */
#define U_F32 (FLT_EPSILON / 2)

/* Quantized GEMM: integer group sums are exact, so the only differences are
 * the float steps: da * dw (1 rounding), times the exact isum (1), and the
 * sum over G groups in some order (<= G - 1). Recursive summation bounds the
 * error by (G + 2) u * sum_g |da dw isum|. The tests use G <= 32, giving
 * 2.0e-6; 1e-5 leaves room for any summation order. Relative to that sum of
 * magnitudes, not to |y|, since terms can cancel. */
#define TOL_GEMM_Q_REL 1e-5

/* Dot products of n terms (float GEMM, dot, RMSNorm's sum of squares): the
 * classic bound for recursive summation, gamma_n = n u / (1 - n u), times
 * sum |x_i y_i|; +8 covers the final reduction of 8- or 16-wide partial
 * sums. Blocked or pairwise sums (what SIMD does) have smaller bounds. */
#define TOL_DOT_REL(n) (((double)(n) + 8.0) * U_F32 * 1.001)

/* axpy: y + a x with or without fma: at most 2 roundings of |y| + |a x|. */
#define TOL_AXPY_REL (2 * U_F32)

/* Vectorized exp: every family must stay within 4 ulp (2^-23 each) of the
 * true e^x for results in the normal range. arch/x86 measures 2 ulp. */
#define TOL_EXP_REL (4 * FLT_EPSILON)

/* softmax: e_i and the sum S each carry TOL_EXP_REL, S also its summation
 * error, and e_i / S one more rounding (the reference multiplies by 1 / S:
 * two). Relative to each output. On top of that the rounding of d = x - max
 * (u |d|) becomes a relative error of e^d, for e_i and (weighted) for S;
 * the test adds u (|d_i| + mean |d| weighted by e^d). */
#define TOL_SOFTMAX_REL(n) (2 * TOL_EXP_REL + TOL_DOT_REL(n) + 3 * U_F32)
/* Softmax outputs this small may come out as 0: terms below 2^-125 of the
 * row's sum are flushed, so that none is subnormal (arch/float_kernels.inc);
 * 2^-124 leaves room for the sum's rounding. */
#define TOL_SOFTMAX_FLUSH 0x1p-124

/* Outputs this small may come out as 0: x / (1 + e^-x) overflows e^-x for
 * x < -88.7 in float, the reference's formula included. */
#define TOL_TINY_ABS 1e-35

/* silu: gate / (1 + e^-gate) * up: e^-gate to TOL_EXP_REL, and 1 / (1 + E)
 * damps that error by E / (1 + E) <= 1; then an add, a divide, a multiply. */
#define TOL_SILU_REL (TOL_EXP_REL + 4 * U_F32)

/* GELU(tanh) * up: relative part as for silu, plus the argument u =
 * c (x + 0.044715 x^3) rounded ~4 times, which e^-2u turns into an absolute
 * error of 2|u| * 4u relative to E; where that matters (|2u| large) the
 * output is either ~x or ~0. The absolute part covers the reference's own
 * cancellation in 1 + tanh(u) for negative x (tanhf's error ~1 ulp of 1,
 * times 0.5 |x up|): 2 u |x up|. */
#define TOL_GELU_REL (TOL_EXP_REL + 16 * U_F32)
#define TOL_GELU_ABS (2 * U_F32)

/* RMSNorm: the sum of squares (all terms positive: relative error
 * TOL_DOT_REL), halved by the square root, plus sqrt, divide and the two
 * products. Relative to each output. */
#define TOL_RMSNORM_REL(n) (TOL_DOT_REL(n) / 2 + 6 * U_F32)

/* RoPE: x0 c - x1 s with or without fma: 2 roundings of |x0 c| + |x1 s|. */
#define TOL_ROPE_REL (2 * U_F32)

/* wsum_rows (attention's scores and probabilities times V): each output is
 * a sum of n products accumulated in order; SIMD families fuse multiply and add (one
 * rounding instead of two), so they may differ by about n ulps of the
 * running sum: relative to the sum of |w| |v|. */
#define TOL_WSUM_REL 1e-5f

#endif
