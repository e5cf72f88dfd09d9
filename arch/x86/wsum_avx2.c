/* Attention's probabilities times V for AVX2 + FMA + F16C:
 * out[m] += sum_t w[m][t] V[t] for M rows of probabilities (several query
 * heads and tokens that share one KV head and one key range), V in f32 or
 * f16 (an f16 KV cache; vcvtph2ps on load, exact).
 *
 * A tile is 4 rows x 16 outputs: 8 accumulators, and each V vector loaded
 * serves 4 rows (one row at a time was one load per FMA: load-bound). Every
 * output is one fused multiply-add per t in ascending t, whichever tile or
 * tail computes it, so a row's result does not depend on how many rows came
 * with it (the batch-invariance tests rely on that). */
#include <immintrin.h>

#include "f16.h"
#include "kernels_x86.h"

static inline __m256 load8(const void *v, int f16, size_t i) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)v + i)));
    return _mm256_loadu_ps((const float *)v + i);
}

static inline float at(const void *v, int f16, size_t i) {
    return f16 ? qrm_f16_to_f32(((const uint16_t *)v)[i]) : ((const float *)v)[i];
}

/* Rows 0..R-1 (R <= 4), outputs i..i+8C-1 (C = 1 or 2); R, C, f16 are
 * constants at each call. */
static inline __attribute__((always_inline)) void tile(int R, int C, int f16, float *out,
                                                       size_t ldo, const float *w, size_t ldw,
                                                       const void *rows, int n, int d, int i) {
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_loadu_ps(out + r * ldo + i + 8 * c);
    for (int t = 0; t < n; t++) {
        __m256 vv[2];
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) vv[c] = load8(rows, f16, (size_t)t * d + i + 8 * c);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 wt = _mm256_broadcast_ss(w + r * ldw + t);
#pragma GCC unroll 2
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(wt, vv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) _mm256_storeu_ps(out + r * ldo + i + 8 * c, acc[r][c]);
}

static inline __attribute__((always_inline)) void rows_block(int R, int f16, float *out,
                                                             size_t ldo, const float *w,
                                                             size_t ldw, const void *rows, int n,
                                                             int d) {
    int i = 0;
    for (; i + 16 <= d; i += 16) tile(R, 2, f16, out, ldo, w, ldw, rows, n, d, i);
    for (; i + 8 <= d; i += 8) tile(R, 1, f16, out, ldo, w, ldw, rows, n, d, i);
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

void qrm_avx2_wsum_rows_f32(float *out, size_t ldo, const float *w, size_t ldw, int M,
                            const float *rows, int n, int d) {
    wsum(0, out, ldo, w, ldw, M, rows, n, d);
}

void qrm_avx2_wsum_rows_f16(float *out, size_t ldo, const float *w, size_t ldw, int M,
                            const uint16_t *rows, int n, int d) {
    wsum(1, out, ldo, w, ldw, M, rows, n, d);
}
