/* Attention's probabilities times V for AVX-512:
 * out[m] += sum_t w[m][t] V[t] for M rows of probabilities (several query
 * heads and tokens that share one KV head and one key range).
 *
 * A tile is 4 rows x 32 outputs: 8 zmm accumulators, each V vector loaded
 * serving 4 rows. Tails use masked loads. Every output is one fused
 * multiply-add per t in ascending t, whichever tile computes it, so a row's
 * result does not depend on how many rows came with it. */
#include <immintrin.h>

#include "kernels_x86.h"

static inline __attribute__((always_inline)) void tile(int R, int C, float *out, size_t ldo,
                                                       const float *w, size_t ldw,
                                                       const float *rows, int n, int d, int i,
                                                       __mmask16 last) {
    __m512 acc[4][2];
    __mmask16 mk[2] = {C == 1 ? last : (__mmask16)0xffff, last};
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_maskz_loadu_ps(mk[c], out + r * ldo + i + 16 * c);
    const float *v = rows + i;
    for (int t = 0; t < n; t++, v += d) {
        __m512 vv[2];
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) vv[c] = _mm512_maskz_loadu_ps(mk[c], v + 16 * c);
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

static inline __attribute__((always_inline)) void rows_block(int R, float *out, size_t ldo,
                                                             const float *w, size_t ldw,
                                                             const float *rows, int n, int d) {
    int i = 0;
    for (; i + 32 <= d; i += 32) tile(R, 2, out, ldo, w, ldw, rows, n, d, i, 0xffff);
    for (; i < d; i += 16) {
        __mmask16 last = d - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - i)) - 1);
        tile(R, 1, out, ldo, w, ldw, rows, n, d, i, last);
    }
}

void qrm_avx512_wsum_rows_f32(float *out, size_t ldo, const float *w, size_t ldw, int M,
                              const float *rows, int n, int d) {
    int m = 0;
    for (; m + 4 <= M; m += 4) rows_block(4, out + m * ldo, ldo, w + m * ldw, ldw, rows, n, d);
    for (; m < M; m++) rows_block(1, out + m * ldo, ldo, w + m * ldw, ldw, rows, n, d);
}
