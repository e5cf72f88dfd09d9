/* Attention's probabilities times V for AVX2 + FMA:
 * out[m] += sum_t w[m][t] V[t] for M rows of probabilities (several query
 * heads and tokens that share one KV head and one key range).
 *
 * A tile is 4 rows x 16 outputs: 8 accumulators, and each V vector loaded
 * serves 4 rows (one row at a time was one load per FMA: load-bound). Every
 * output is one fused multiply-add per t in ascending t, whichever tile or
 * tail computes it, so a row's result does not depend on how many rows came
 * with it (the batch-invariance tests rely on that). */
#include <immintrin.h>

#include "kernels_x86.h"

/* Rows m0..m0+R-1 (R <= 4, a constant at each call), outputs i..i+7 or
 * i..i+15 (C = 1 or 2 vectors). */
static inline __attribute__((always_inline)) void tile(int R, int C, float *out, size_t ldo,
                                                       const float *w, size_t ldw,
                                                       const float *rows, int n, int d, int i) {
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_loadu_ps(out + r * ldo + i + 8 * c);
    const float *v = rows + i;
    for (int t = 0; t < n; t++, v += d) {
        __m256 vv[2];
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) vv[c] = _mm256_loadu_ps(v + 8 * c);
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

static inline __attribute__((always_inline)) void rows_block(int R, float *out, size_t ldo,
                                                             const float *w, size_t ldw,
                                                             const float *rows, int n, int d) {
    int i = 0;
    for (; i + 16 <= d; i += 16) tile(R, 2, out, ldo, w, ldw, rows, n, d, i);
    for (; i + 8 <= d; i += 8) tile(R, 1, out, ldo, w, ldw, rows, n, d, i);
    for (; i < d; i++)
        for (int r = 0; r < R; r++) {
            float a = out[r * ldo + i];
            for (int t = 0; t < n; t++) a = __builtin_fmaf(w[r * ldw + t], rows[(size_t)t * d + i], a);
            out[r * ldo + i] = a;
        }
}

void qrm_avx2_wsum_rows_f32(float *out, size_t ldo, const float *w, size_t ldw, int M,
                            const float *rows, int n, int d) {
    int m = 0;
    for (; m + 4 <= M; m += 4) rows_block(4, out + m * ldo, ldo, w + m * ldw, ldw, rows, n, d);
    for (; m < M; m++) rows_block(1, out + m * ldo, ldo, w + m * ldw, ldw, rows, n, d);
}
