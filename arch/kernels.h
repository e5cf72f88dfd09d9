/* The kernel table: every ISA family fills one of these, once, at start-up.
 *
 * The scalar family (arch/scalar/) is the reference: every SIMD family is
 * tested against it (tests/test_kernels.c). Kernels are single-threaded;
 * the forward pass splits work between threads by giving each call a range
 * of weight panels (rows of W) or of tokens.
 *
 * Quantized matmul semantics (all families, exactly):
 *   y[m][n] = sum_g  da[m][g] * dw[n][g] * ( sum_{i in g} qa[m][i] * qw[n][i] )
 * where g runs over groups of QRM_QK consecutive k. The integer inner sums
 * are exact in every family, and so is the float part: per output,
 * acc = fma((float)isum_g, dw_g * da_g, acc) over g in ascending order from
 * acc = 0, so every family gives the same bits (arch/float_kernels.h).
 */
#ifndef QRM_KERNELS_H
#define QRM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "families.h"

#define QRM_QK 32    /* quantization group along K (weights and activations) */
#define QRM_PANEL 16 /* weight rows per panel in the packed q8/q4 layouts */

/* Packed weight layouts, shared by every ISA (see docs/FORMAT.md):
 *
 * q8: W[N][K] int8, N % 16 == 0, K % 32 == 0. Stored panel by panel, and in a
 *   panel group by group. One (panel p, group g) block is 512 bytes laid out
 *   [k4 = 0..7][row r = 0..15][j = 0..3], holding W[16p + r][32g + 4*k4 + j].
 *   So 4 consecutive k of one row are contiguous (one dword for vpdpbusd /
 *   sdot), and 16 rows fill one zmm, two ymm or four NEON registers.
 *   Block (p, g) starts at byte (p * (K/32) + g) * 512.
 * q4: the same element order, two elements per byte: byte b of a 256-byte
 *   block holds element b in its low nibble and element b + 256 in its high
 *   nibble; the stored nibble u is the value u - 8.
 * Scales (both): f16, [N/16][K/32][16]: the scale of row 16p + r, group g at
 *   index (p * (K/32) + g) * 16 + r. They follow the quants in the file.
 */
typedef enum { QRM_WQ8 = 1, QRM_WQ4 = 2 } qrm_wq_type;

typedef struct {
    int type;            /* qrm_wq_type */
    int N, K;            /* N % QRM_PANEL == 0, K % QRM_QK == 0 */
    const uint8_t *q;    /* packed quants */
    const uint16_t *d;   /* f16 scales */
    /* Groups from one panel's start to the next one's, in q and in d; 0 means
     * K / QRM_QK (a whole matrix). Larger: a view of K columns of a wider
     * matrix, whose q and d point at its group g0 (attention's P.V over a
     * key range of the int8 V cache, every panel in one call). */
    int pgroups;
} qrm_qweight;

/* Groups between panel starts (bytes per group and panel: 512 for q8, 256
 * for q4; scales: QRM_PANEL), for every family. */
static inline size_t qrm_qw_pgroups(const qrm_qweight *w) {
    return (size_t)(w->pgroups ? w->pgroups : w->K / QRM_QK);
}

/* Activations quantized per token in groups of QRM_QK along K:
 * q = round_half_even(x / d), d = max|x| / 127 over the group (d = 0 and
 * q = 0 for an all-zero group), s = sum of the group's q (used by kernels
 * that need an unsigned operand: vpdpbusd with a zero point). */
/* A group whose max |x| is below this quantizes to zeros: 127 / amax would
 * overflow to inf near the bottom of the float range. Every family uses it. */
#define QRM_QACT_MIN_AMAX 1e-30f

typedef struct {
    int M, K;            /* tokens, inner dimension */
    int8_t *q;           /* [M][K] */
    float *d;            /* [M][K/QK] */
    int32_t *s;          /* [M][K/QK] */
} qrm_qact;

typedef struct qrm_kernels {
    const char *name;    /* family: "scalar", "avx2", "avx512", "neon", "dotprod", "i8mm" */

    /* x[M][ldx] -> a (a->M, a->K set by the caller, buffers sized M*K etc.) */
    void (*quantize_act)(const float *x, size_t ldx, qrm_qact *a);

    /* y[m][16p + r] for p in [p0, p1), all m < a->M; y has row stride ldy.
     * Overwrites y (no accumulation). */
    void (*gemm_q8)(const qrm_qact *a, const qrm_qweight *w, int p0, int p1,
                    float *y, size_t ldy);
    void (*gemm_q4)(const qrm_qact *a, const qrm_qweight *w, int p0, int p1,
                    float *y, size_t ldy);
    /* gemm_q8 continuing each output's sum from y: acc starts at y[m][n]
     * instead of 0, then the same fused multiply-add per group in order. A
     * sum over K split into two calls is then the one chain a single call
     * gives (attention's P.V over a shared prefix and a response's own keys,
     * with an int8 V cache). */
    void (*gemm_q8_acc)(const qrm_qact *a, const qrm_qweight *w, int p0, int p1,
                        float *y, size_t ldy);

    /* Float weights, row-major W[N][K]: y[m][n] = x[m] . W[n] for n in [n0, n1).
     * Also attention's scores (W = the cached keys). Each output's value may
     * not depend on M, on n0 / n1, or on its place in a register tile (a
     * block of tokens asks for more key columns than a lone token). */
    void (*gemm_f32)(const float *x, size_t ldx, int M, const float *w, int K,
                     int n0, int n1, float *y, size_t ldy);
    void (*gemm_f16)(const float *x, size_t ldx, int M, const uint16_t *w, int K,
                     int n0, int n1, float *y, size_t ldy);

    /* Float building blocks of the forward pass. */
    float (*dot_f32)(const float *a, const float *b, int n);
    void (*axpy_f32)(float *y, float a, const float *x, int n);       /* y += a x */
    void (*scale_f32)(float *y, float a, int n);                     /* y *= a   */
    /* y = (a s) b element-wise, two roundings in that order: attention's
     * probabilities (a, with their softmax's 1 / sum as s) times each key's
     * V scale (b) in one pass over the row */
    void (*scale_mul_f32)(float *y, const float *a, float s, const float *b, int n);
    /* out = x / rms(x) * w, rms over n with eps. out may alias x. */
    void (*rmsnorm_f32)(float *out, const float *x, const float *w, int n, float eps);
    /* in place: x = exp(x - max) / sum, never subnormal: a term below
     * 2^-125 of the sum is 0 (arch/float_kernels.inc says why) */
    void (*softmax_f32)(float *x, int n);
    /* softmax_f32 but the last step: x = exp(x - max) in place; returns the
     * 1 / sum that softmax_f32 then multiplies x by (scale_f32), so that a
     * caller with a pass of its own over x does that product there */
    float (*softmax_unscaled_f32)(float *x, int n);
    /* gate = act(gate) * up */
    void (*silu_mul_f32)(float *gate, const float *up, int n);
    void (*gelu_tanh_mul_f32)(float *gate, const float *up, int n);
    /* rotate_half RoPE on one head: pairs (i, i + d/2), cos/sin [d/2] */
    void (*rope_neox_f32)(float *x, const float *cos, const float *sin, int head_dim);
    /* out[m][0..d) += sum over t < n of w[m][t] * rows[t][0..d) for m < M
     * (row strides: out ldo, w ldw, rows ldr >= d). Attention uses it twice
     * for the query rows that share one key range: the scores, with the
     * keys in the columns (w = the queries, rows = the K cache transposed,
     * t = the head dimension), and probabilities times V (w = the
     * probabilities, rows = V, t = the key). Each output is one fused
     * multiply-add per t in ascending t, and its value may not depend on M
     * or on its row's place among the M (batch invariance). */
    void (*wsum_rows_f32)(float *out, size_t ldo, const float *w, size_t ldw, int M,
                          const float *rows, size_t ldr, int n, int d);
    /* The same with the rows stored as IEEE half (an f16 KV cache). */
    void (*wsum_rows_f16)(float *out, size_t ldo, const float *w, size_t ldw, int M,
                          const uint16_t *rows, size_t ldr, int n, int d);
    /* dst[i] = src[i] clamped to [-65504, 65504] as IEEE half, round to
     * nearest even (what the f16 K/V cache stores: it saturates instead of
     * storing inf); bit-identical to qrm_f32_to_f16 of the clamped value for
     * every non-NaN; a NaN stays NaN. */
    void (*f32_to_f16)(uint16_t *dst, const float *src, int n);
    /* y[i] = e^x[i] (the one exponential every float kernel uses) */
    void (*exp_f32)(float *y, const float *x, int n);
} qrm_kernels;

/* The prototype every quantized GEMM entry shares (gemm_q8, gemm_q8_acc,
 * gemm_q4), for a family's private header: QRM_QGEMM(qrm_avx2_gemm_q8);. */
#define QRM_QGEMM(fn) void fn(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y, size_t ldy)

/* The table of each family (arch/families.h lists them). */
#define QRM_DECLARE_FAMILY(f) const qrm_kernels *qrm_kernels_##f(void);
QRM_FAMILIES_ALL(QRM_DECLARE_FAMILY)

/* A family's table, in its folder: its own activation quantization and
 * quantized GEMMs, and the float kernels of the prefix fp (the family's own,
 * or the ones it shares: dotprod and i8mm use neon's). */
#define QRM_DEFINE_FAMILY(f, quantize, q8, q8acc, q4, fp)                                         \
    static const qrm_kernels f##_kernels = {                                                     \
        .name = #f, .quantize_act = quantize, .gemm_q8 = q8, .gemm_q8_acc = q8acc, .gemm_q4 = q4, \
        QRM_FLOAT_KERNEL_ENTRIES(fp),                                                            \
    };                                                                                           \
    const qrm_kernels *qrm_kernels_##f(void) { return &f##_kernels; }

#endif
