/* Float-weight GEMM for AVX-512F: y[m][n] = x[m] . W[n], W row-major [N][K]
 * in f32 or f16 (vcvtph2ps on load). The scheme of gemm_float_avx2.c, 16
 * lanes wide: a tile keeps one accumulator per (token, row), 4 tokens x 4
 * rows for prefill, 1 token x 12 rows for the leftover tokens (M = 1 is a
 * GEMV): at least 12 independent sums to cover the FMA latency. K % 16
 * tails use masked loads, which read nothing past a row. Every output is
 * reduced in one order whatever tile computed it (batch invariance). */
#include <immintrin.h>

#include "kernels_x86.h"

static inline __mmask16 tail_mask(int n) { return (__mmask16)((1u << n) - 1); }

/* The 8-lane sums of the two halves (F only: no DQ extract). */
static inline __m256 fold(__m512 v) {
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return _mm256_add_ps(_mm512_castps512_ps256(v), hi);
}

/* The four horizontal sums of a, b, c, d in one vector. */
static inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

static inline __m512 load_w(const void *w, int f16, size_t row, int K, int k, __mmask16 m) {
    if (!f16) return _mm512_maskz_loadu_ps(m, (const float *)w + row * (size_t)K + k);
    const uint16_t *p = (const uint16_t *)w + row * (size_t)K + k;
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

/* acc[t][r] += x[t][k..] * W[n + r][k..] over the lanes of m. */
static inline __attribute__((always_inline)) void step(int T, int R, int f16, const float *x,
                                                       size_t ldx, const void *w, int K, int n,
                                                       int k, __mmask16 m, __m512 acc[4][12]) {
    __m512 xv[4];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) xv[t] = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        __m512 wv = load_w(w, f16, (size_t)(n + r), K, k, m);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[t][r] = _mm512_fmadd_ps(xv[t], wv, acc[t][r]);
    }
}

static inline __attribute__((always_inline)) void tile(int T, int R, int f16, const float *x,
                                                       size_t ldx, const void *w, int K, int n,
                                                       float *y, size_t ldy) {
    __m512 acc[4][12];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) acc[t][r] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) step(T, R, f16, x, ldx, w, K, n, k, 0xffff, acc);
    if (k < K) step(T, R, f16, x, ldx, w, K, n, k, tail_mask(K - k), acc);
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        float *yr = y + t * ldy + n;
        int r = 0;
#pragma GCC unroll 3
        for (; r + 4 <= R; r += 4)
            _mm_storeu_ps(yr + r, hsum4(acc[t][r], acc[t][r + 1], acc[t][r + 2], acc[t][r + 3]));
        /* a lone row sums in exactly hsum4's order: a key's attention score
         * must not depend on whether it fell in a group of four columns or
         * in the tail (the block's column count differs from a lone token's) */
#pragma GCC unroll 4
        for (; r < R; r++) yr[r] = _mm_cvtss_f32(hsum4(acc[t][r], acc[t][r], acc[t][r], acc[t][r]));
    }
}

static inline __attribute__((always_inline)) void gemm(int f16, const float *x, size_t ldx, int M,
                                                       const void *w, int K, int n0, int n1,
                                                       float *y, size_t ldy) {
    int mb = (256 * 1024) / (4 * (K > 0 ? K : 1));
    mb = mb < 4 ? 4 : mb - mb % 4;
    for (int m0 = 0; m0 < M; m0 += mb) {
        int m1 = M - m0 < mb ? M : m0 + mb;
        int mq = m0 + (m1 - m0) / 4 * 4; /* tokens [m0, mq) in fours */
        int n = n0;
        if (mq > m0) {
            for (; n + 4 <= n1; n += 4)
                for (int m = m0; m < mq; m += 4)
                    tile(4, 4, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
            for (; n < n1; n++)
                for (int m = m0; m < mq; m += 4)
                    tile(4, 1, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
        }
        for (int m = mq; m < m1; m++) { /* leftover tokens: GEMV */
            for (n = n0; n + 12 <= n1; n += 12) tile(1, 12, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
            for (; n + 4 <= n1; n += 4) tile(1, 4, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
            for (; n < n1; n++) tile(1, 1, f16, x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
        }
    }
}

void qrm_avx512_gemm_f32(const float *x, size_t ldx, int M, const float *w, int K, int n0,
                         int n1, float *y, size_t ldy) {
    gemm(0, x, ldx, M, w, K, n0, n1, y, ldy);
}

void qrm_avx512_gemm_f16(const float *x, size_t ldx, int M, const uint16_t *w, int K, int n0,
                         int n1, float *y, size_t ldy) {
    gemm(1, x, ldx, M, w, K, n0, n1, y, ldy);
}
