/* The float kernels, written once (arch/float_kernels.inc) and compiled per
 * family against a 16-lane vector mapping (vec16_<family>.h), so that every
 * family computes every float kernel bit for bit the same way.
 *
 * The canonical evaluation (what "the same way" means; the scalar family's
 * mapping, arch/scalar/vec16_scalar.h, spells it out in plain C):
 *  - A vector is 16 float lanes. Element k of a row belongs to lane k % 16;
 *    a tail (n % 16 elements) is loaded with the missing lanes zero.
 *  - Every multiply-add is fused (one rounding), every other operation is one
 *    IEEE single-precision operation, in the order written in the .inc.
 *  - A sum over a row runs along it in each lane (stripes of 16), then the
 *    16 lanes are added in one fixed tree: s[i] = v[i] + v[i + 8],
 *    t[j] = s[2j] + s[2j + 1], sum = (t[0] + t[1]) + (t[2] + t[3]).
 *    dot_f32 keeps four such accumulators (element k in accumulator
 *    (k / 16) % 4) and adds them as (a0 + a1) + (a2 + a3) before the tree.
 *  - wsum_rows (attention's scores, with the keys in the lanes, and its
 *    P.V) adds no lanes together: each output is one fused multiply-add
 *    per term, in order, starting from the output's value.
 *  - e^x is one polynomial (Taylor to r^7 around n ln2, Horner with fused
 *    multiply-adds) scaled by 2^n with one rounding; silu, gelu(tanh) and
 *    softmax are built from it. Softmax writes 0, never a subnormal, for
 *    x - max < -87 and for any term below 2^-125 of the row's sum.
 *  - f16 <-> f32 conversions round to nearest even (arch/f16.h).
 * Results are bitwise equal across families for finite inputs; a NaN input
 * gives a NaN, whose payload may differ.
 *
 * The quantized GEMMs stay hand-written per family; their float part is
 * canonical too: per output, acc = fma((float)isum_g, dw_g * da_g, acc) over
 * the groups g in ascending order, starting from 0 (arch/kernels.h). */
#ifndef QRM_FLOAT_KERNELS_H
#define QRM_FLOAT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The prototypes of one family's float kernels, named P<kernel>. */
#define QRM_DECLARE_FLOAT_KERNELS(P)                                                             \
    void P##gemm_f32(const float *x, size_t ldx, int M, const float *w, int K, int n0, int n1,  \
                     float *y, size_t ldy);                                                     \
    void P##gemm_f16(const float *x, size_t ldx, int M, const uint16_t *w, int K, int n0,       \
                     int n1, float *y, size_t ldy);                                             \
    float P##dot_f32(const float *a, const float *b, int n);                                    \
    void P##axpy_f32(float *y, float a, const float *x, int n);                                 \
    void P##scale_f32(float *y, float a, int n);                                                \
    void P##scale_mul_f32(float *y, const float *a, float s, const float *b, int n);            \
    void P##rmsnorm_f32(float *out, const float *x, const float *w, int n, float eps);          \
    void P##softmax_f32(float *x, int n);                                                       \
    float P##softmax_unscaled_f32(float *x, int n);                                             \
    void P##silu_mul_f32(float *gate, const float *up, int n);                                  \
    void P##gelu_tanh_mul_f32(float *gate, const float *up, int n);                             \
    void P##rope_neox_f32(float *x, const float *cos, const float *sin, int head_dim);          \
    void P##wsum_rows_f32(float *out, size_t ldo, const float *w, size_t ldw, int M,            \
                          const float *rows, size_t ldr, int n, int d);                         \
    void P##wsum_rows_f16(float *out, size_t ldo, const float *w, size_t ldw, int M,            \
                          const uint16_t *rows, size_t ldr, int n, int d);                      \
    void P##f32_to_f16(uint16_t *dst, const float *src, int n);                                 \
    void P##exp_f32(float *y, const float *x, int n)

/* The float entries of a qrm_kernels table initializer. */
#define QRM_FLOAT_KERNEL_ENTRIES(P)                                                              \
    .gemm_f32 = P##gemm_f32, .gemm_f16 = P##gemm_f16, .dot_f32 = P##dot_f32,                     \
    .axpy_f32 = P##axpy_f32, .scale_f32 = P##scale_f32, .scale_mul_f32 = P##scale_mul_f32, .rmsnorm_f32 = P##rmsnorm_f32,           \
    .softmax_f32 = P##softmax_f32, .softmax_unscaled_f32 = P##softmax_unscaled_f32, .silu_mul_f32 = P##silu_mul_f32,                              \
    .gelu_tanh_mul_f32 = P##gelu_tanh_mul_f32, .rope_neox_f32 = P##rope_neox_f32,                \
    .wsum_rows_f32 = P##wsum_rows_f32, .wsum_rows_f16 = P##wsum_rows_f16,                        \
    .f32_to_f16 = P##f32_to_f16, .exp_f32 = P##exp_f32

QRM_DECLARE_FLOAT_KERNELS(qrm_scalar_);

#endif
