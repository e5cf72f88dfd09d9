/* Float-weight GEMM for AVX2 + FMA + F16C: y[m][n] = x[m] . W[n], W row-major
 * [N][K] in f32 or f16 (converted by vcvtph2ps on load).
 *
 * Both operands run along K, so a tile keeps one 8-wide accumulator per
 * (token, row) and reduces them at the end: 2 tokens x 6 rows for prefill
 * (each loaded weight vector serves 2 tokens, each activation vector 6 rows),
 * 1 token x 12 rows for M = 1. 12 independent sums, because an FMA takes 4
 * cycles and two start per cycle: 8 chains left no slack (measured 55% of
 * the FMA peak in L1 with 2 x 4 tiles). K % 8 tails use masked loads (f32) or a zero-
 * padded copy (f16), so nothing is read past a row. Tokens are blocked so a
 * block's activations stay in L2 while the weight rows stream past.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_x86.h"

static inline __m256i tail_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The four horizontal sums of a, b, c, d in one vector. */
static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* One horizontal sum, in exactly hsum4's order: an output must not depend
 * on whether it was computed in a 4-row tile or as a tail row (attention
 * scores of one slot come out of either, depending on the batch). */
static inline float hsum(__m256 v) { return _mm_cvtss_f32(hsum4(v, v, v, v)); }

/* 8 weights of row `row` from column k; f16 rows are converted. `rest` < 8
 * means a tail: only that many are read, the other lanes are 0. */
static inline __m256 load_w(const void *w, int f16, size_t row, int K, int k, int rest,
                            __m256i mask) {
    if (!f16) {
        const float *p = (const float *)w + row * (size_t)K + k;
        return rest >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
    }
    const uint16_t *p = (const uint16_t *)w + row * (size_t)K + k;
    if (rest >= 8) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    uint16_t buf[8] = {0};
    memcpy(buf, p, (size_t)rest * sizeof *p);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)buf));
}

/* One 8-wide step along K: acc[t][r] += x[t][k..] * W[n + r][k..]. */
static inline __attribute__((always_inline)) void step(int T, int R, int f16, const float *x,
                                                       size_t ldx, const void *w, int K, int n,
                                                       int k, int rest, __m256i mask,
                                                       __m256 acc[2][12]) {
    __m256 xv[2];
#pragma GCC unroll 2
    for (int t = 0; t < T; t++)
        xv[t] = rest >= 8 ? _mm256_loadu_ps(x + t * ldx + k) : _mm256_maskload_ps(x + t * ldx + k, mask);
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        __m256 wv = load_w(w, f16, (size_t)(n + r), K, k, rest, mask);
        __asm__("" : "+x"(wv)); /* one load per row, not one per token */
#pragma GCC unroll 2
        for (int t = 0; t < T; t++) acc[t][r] = _mm256_fmadd_ps(xv[t], wv, acc[t][r]);
    }
}

/* y[m + t][n + r] for t < T, r < R (T, R constants at each call site). */
static inline __attribute__((always_inline)) void tile(int T, int R, int f16, const float *x,
                                                       size_t ldx, const void *w, int K, int n,
                                                       float *y, size_t ldy) {
    __m256 acc[2][12];
#pragma GCC unroll 2
    for (int t = 0; t < T; t++)
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) acc[t][r] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) step(T, R, f16, x, ldx, w, K, n, k, 8, _mm256_setzero_si256(), acc);
    if (k < K) step(T, R, f16, x, ldx, w, K, n, k, K - k, tail_mask(K - k), acc);
#pragma GCC unroll 2
    for (int t = 0; t < T; t++) {
        float *yr = y + t * ldy + n;
        int r = 0;
#pragma GCC unroll 3
        for (; r + 4 <= R; r += 4)
            _mm_storeu_ps(yr + r, hsum4(acc[t][r], acc[t][r + 1], acc[t][r + 2], acc[t][r + 3]));
        if (R - r == 2) {
            __m128 s2 = hsum4(acc[t][r], acc[t][r + 1], acc[t][r], acc[t][r + 1]);
            _mm_storel_pi((__m64 *)(yr + r), s2);
        } else {
#pragma GCC unroll 4
            for (; r < R; r++) yr[r] = hsum(acc[t][r]);
        }
    }
}

static inline __attribute__((always_inline)) void gemm(int f16, const float *x, size_t ldx, int M,
                                                       const void *w, int K, int n0, int n1,
                                                       float *y, size_t ldy) {
    int mb = (256 * 1024) / (4 * (K > 0 ? K : 1));
    mb = mb < 2 ? 2 : mb - mb % 2;
    for (int m0 = 0; m0 < M; m0 += mb) {
        int m1 = M - m0 < mb ? M : m0 + mb;
        int n = n0;
        if (m1 - m0 >= 2) {
            for (; n + 6 <= n1; n += 6)
                for (int m = m0; m + 2 <= m1; m += 2)
                    tile(2, 6, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
            for (; n < n1; n++)
                for (int m = m0; m + 2 <= m1; m += 2)
                    tile(2, 1, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
        }
        if ((m1 - m0) % 2) { /* the odd token: GEMV */
            int m = m1 - 1;
            for (n = n0; n + 12 <= n1; n += 12) tile(1, 12, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
            for (; n + 4 <= n1; n += 4) tile(1, 4, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
            for (; n < n1; n++) tile(1, 1, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
        }
    }
}

void qrm_avx2_gemm_f32(const float *x, size_t ldx, int M, const float *w, int K, int n0, int n1,
                       float *y, size_t ldy) {
    gemm(0, x, ldx, M, w, K, n0, n1, y, ldy);
}

void qrm_avx2_gemm_f16(const float *x, size_t ldx, int M, const uint16_t *w, int K, int n0,
                       int n1, float *y, size_t ldy) {
    gemm(1, x, ldx, M, w, K, n0, n1, y, ldy);
}
