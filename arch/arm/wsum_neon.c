/* Attention's probabilities times V for NEON:
 * out[m] += sum_t w[m][t] V[t] for M rows of probabilities (several query
 * heads and tokens that share one KV head and one key range), V in f32 or
 * f16 (an f16 KV cache; fcvtl on load, ARMv8.0, exact).
 *
 * A tile is 4 rows x 16 outputs: 16 accumulators of the 32 q registers,
 * each V vector loaded serving 4 rows. Every output is one fused
 * multiply-add per t in ascending t, whichever tile or tail computes it, so
 * a row's result does not depend on how many rows came with it. */
#include <arm_neon.h>

#include "f16.h"
#include "kernels_arm.h"

static inline float32x4_t load4(const void *v, int f16, size_t i) {
    if (f16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)v + i)));
    return vld1q_f32((const float *)v + i);
}

static inline float at(const void *v, int f16, size_t i) {
    return f16 ? qrm_f16_to_f32(((const uint16_t *)v)[i]) : ((const float *)v)[i];
}

static inline __attribute__((always_inline)) void tile(int R, int C, int f16, float *out,
                                                       size_t ldo, const float *w, size_t ldw,
                                                       const void *rows, int n, int d, int i) {
    float32x4_t acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[r][c] = vld1q_f32(out + r * ldo + i + 4 * c);
    for (int t = 0; t < n; t++) {
        float32x4_t vv[4];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) vv[c] = load4(rows, f16, (size_t)t * d + i + 4 * c);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float wt = w[r * ldw + t];
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) acc[r][c] = vfmaq_n_f32(acc[r][c], vv[c], wt);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) vst1q_f32(out + r * ldo + i + 4 * c, acc[r][c]);
}

static inline __attribute__((always_inline)) void rows_block(int R, int f16, float *out,
                                                             size_t ldo, const float *w,
                                                             size_t ldw, const void *rows, int n,
                                                             int d) {
    int i = 0;
    for (; i + 16 <= d; i += 16) tile(R, 4, f16, out, ldo, w, ldw, rows, n, d, i);
    for (; i + 4 <= d; i += 4) tile(R, 1, f16, out, ldo, w, ldw, rows, n, d, i);
    for (; i < d; i++)
        for (int r = 0; r < R; r++) {
            float a = out[r * ldo + i];
            for (int t = 0; t < n; t++) a = __builtin_fmaf(w[r * ldw + t], at(rows, f16, (size_t)t * d + i), a);
            out[r * ldo + i] = a;
        }
}

static inline __attribute__((always_inline)) void wsum(int f16, float *out, size_t ldo,
                                                       const float *w, size_t ldw, int M,
                                                       const void *rows, int n, int d) {
    int m = 0;
    for (; m + 4 <= M; m += 4) rows_block(4, f16, out + m * ldo, ldo, w + m * ldw, ldw, rows, n, d);
    if (m + 2 <= M) { /* a single token's 2 heads per KV head: one pass over V, not two */
        rows_block(2, f16, out + m * ldo, ldo, w + m * ldw, ldw, rows, n, d);
        m += 2;
    }
    for (; m < M; m++) rows_block(1, f16, out + m * ldo, ldo, w + m * ldw, ldw, rows, n, d);
}

void qrm_neon_wsum_rows_f32(float *out, size_t ldo, const float *w, size_t ldw, int M,
                            const float *rows, int n, int d) {
    wsum(0, out, ldo, w, ldw, M, rows, n, d);
}

void qrm_neon_wsum_rows_f16(float *out, size_t ldo, const float *w, size_t ldw, int M,
                            const uint16_t *rows, int n, int d) {
    wsum(1, out, ldo, w, ldw, M, rows, n, d);
}
