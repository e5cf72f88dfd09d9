/* Attention's probabilities times V for AVX-512:
 * out[m] += sum_t w[m][t] V[t] for M rows of probabilities (several query
 * heads and tokens that share one KV head and one key range), V in f32 or
 * f16 (an f16 KV cache; vcvtph2ps on load, exact).
 *
 * A tile is 4 rows x 32 outputs: 8 zmm accumulators, each V vector loaded
 * serving 4 rows. Tails use masked loads. Every output is one fused
 * multiply-add per t in ascending t, whichever tile computes it, so a row's
 * result does not depend on how many rows came with it. */
#include <immintrin.h>

#include "kernels_x86.h"

static inline __m512 load16(const void *v, int f16, size_t i, __mmask16 m) {
    if (f16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)v + i));
    return _mm512_maskz_loadu_ps(m, (const float *)v + i);
}

static inline __attribute__((always_inline)) void tile(int R, int C, int f16, float *out,
                                                       size_t ldo, const float *w, size_t ldw,
                                                       const void *rows, int n, int d, int i,
                                                       __mmask16 last) {
    __m512 acc[4][2];
    __mmask16 mk[2] = {C == 1 ? last : (__mmask16)0xffff, last};
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_maskz_loadu_ps(mk[c], out + r * ldo + i + 16 * c);
    for (int t = 0; t < n; t++) {
        __m512 vv[2];
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) vv[c] = load16(rows, f16, (size_t)t * d + i + 16 * c, mk[c]);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 wt = _mm512_set1_ps(w[r * ldw + t]);
#pragma GCC unroll 2
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(wt, vv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) _mm512_mask_storeu_ps(out + r * ldo + i + 16 * c, mk[c], acc[r][c]);
}

static inline __attribute__((always_inline)) void rows_block(int R, int f16, float *out,
                                                             size_t ldo, const float *w,
                                                             size_t ldw, const void *rows, int n,
                                                             int d) {
    int i = 0;
    for (; i + 32 <= d; i += 32) tile(R, 2, f16, out, ldo, w, ldw, rows, n, d, i, 0xffff);
    for (; i < d; i += 16) {
        __mmask16 last = d - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - i)) - 1);
        tile(R, 1, f16, out, ldo, w, ldw, rows, n, d, i, last);
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

void qrm_avx512_wsum_rows_f32(float *out, size_t ldo, const float *w, size_t ldw, int M,
                              const float *rows, int n, int d) {
    wsum(0, out, ldo, w, ldw, M, rows, n, d);
}

void qrm_avx512_wsum_rows_f16(float *out, size_t ldo, const float *w, size_t ldw, int M,
                              const uint16_t *rows, int n, int d) {
    wsum(1, out, ldo, w, ldw, M, rows, n, d);
}
