/* q8 x q8 GEMM for AVX2: y[m][n] = sum_g da[m][g] dw[n][g] sum_{k in g} qa[m][k] qw[n][k].
 *
 * One microkernel, instantiated for 1..Q8_TILE tokens: a tile is T tokens x
 * one 16-row panel. For each 4-k step the panel's two weight vectors (rows
 * 0-7 and 8-15, 4 consecutive k per row in each dword: the packed layout of
 * kernels.h) are loaded and made unsigned once, then reused by every token of
 * the tile; each token broadcasts its 4 activations to all 8 dwords.
 * Exactness of the sign trick: see kernels_x86.h. The int32 sums of a group
 * are converted once per group and folded in with dw * da.
 * M = 1 (decode, GEMV) runs the same kernel with T = 1; it is bound by
 * reading the weights, which every panel does exactly once.
 *
 * Why this scheme (measured on Zen 3, whose vector pipes retire about 3 ops
 * per cycle in these loops): it costs 4 ops per 32 multiply-adds (vpsignb,
 * vpmaddubsw, vpmaddwd, vpaddd) against 3 for the peak loop, and reaches
 * ~62% of it; splitting the weights into nibbles (2 vpmaddubsw + 2 vpaddw,
 * int16 sums as in gemm_q4) reached 48%, tiles of 3, 5 or 6 tokens less
 * than 4 (spills).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_x86.h"

#define Q8_TILE 4 /* tokens per tile: 8 int32 + 4 weight vectors fit the 16 ymm */

static inline __m256i broadcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* y[m + t][16p .. 16p + 15] for t < T. T is a constant at every call site, so
 * the loops over t unroll and the arrays live in registers. FROM_Y: the sums
 * start from y (gemm_q8_acc), else from 0. */
static inline __attribute__((always_inline)) void q8_tile(int T, int FROM_Y, const qrm_qact *a,
                                                          const qrm_qweight *w, int p, int m,
                                                          float *y, size_t ldy) {
    const int K = w->K, G = K / QRM_QK;
    const uint8_t *wq = w->q + (size_t)p * qrm_qw_pgroups(w) * 512;
    const uint16_t *wd = w->d + (size_t)p * qrm_qw_pgroups(w) * QRM_PANEL;
    const int8_t *aq = a->q + (size_t)m * K;
    const float *ad = a->d + (size_t)m * G;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[Q8_TILE][2];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const float *yr = y + (size_t)(m + t) * ldy + (size_t)p * QRM_PANEL;
        acc[t][0] = FROM_Y ? _mm256_loadu_ps(yr) : _mm256_setzero_ps();
        acc[t][1] = FROM_Y ? _mm256_loadu_ps(yr + 8) : _mm256_setzero_ps();
    }

    for (int g = 0; g < G; g++, wq += 512) {
        __m256i isum[Q8_TILE][2];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) isum[t][0] = isum[t][1] = _mm256_setzero_si256();
        /* Not unrolled, and each token's sums pinned by an empty asm: else GCC
         * reassociates the 8 steps' additions into trees whose operands no
         * longer fit the 16 ymm registers (measured: 30% slower). */
#pragma GCC unroll 1
        for (int k4 = 0; k4 < 8; k4++) {
            if (T == 1) _mm_prefetch((const char *)(wq + QRM_X86_GEMV_PREFETCH_Q8 + k4 * 64), _MM_HINT_T0);
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(wq + k4 * 64));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(wq + k4 * 64 + 32));
            __m256i u0 = _mm256_abs_epi8(w0), u1 = _mm256_abs_epi8(w1);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256i av = broadcast4(aq + (size_t)t * K + g * QRM_QK + k4 * 4);
                __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(av, w0));
                __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(av, w1));
                isum[t][0] = _mm256_add_epi32(isum[t][0], _mm256_madd_epi16(p0, ones));
                isum[t][1] = _mm256_add_epi32(isum[t][1], _mm256_madd_epi16(p1, ones));
                __asm__("" : "+x"(isum[t][0]), "+x"(isum[t][1]));
            }
        }
        __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wd + g * QRM_PANEL)));
        __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wd + g * QRM_PANEL + 8)));
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256 da = _mm256_set1_ps(ad[(size_t)t * G + g]);
            acc[t][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t][0]), _mm256_mul_ps(d0, da),
                                        acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t][1]), _mm256_mul_ps(d1, da),
                                        acc[t][1]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        float *yr = y + (size_t)(m + t) * ldy + (size_t)p * QRM_PANEL;
        _mm256_storeu_ps(yr, acc[t][0]);
        _mm256_storeu_ps(yr + 8, acc[t][1]);
    }
}

static inline __attribute__((always_inline)) void gemm_q8(int FROM_Y, const qrm_qact *a,
                                                          const qrm_qweight *w, int p0, int p1,
                                                          float *y, size_t ldy) {
    const int M = a->M, mb = qrm_x86_token_block(w->K, Q8_TILE);
    for (int m0 = 0; m0 < M; m0 += mb) {
        int m1 = M - m0 < mb ? M : m0 + mb;
        for (int p = p0; p < p1; p++) {
            int m = m0;
            for (; m + Q8_TILE <= m1; m += Q8_TILE) q8_tile(Q8_TILE, FROM_Y, a, w, p, m, y, ldy);
            switch (m1 - m) {
            case 3: q8_tile(3, FROM_Y, a, w, p, m, y, ldy); break;
            case 2: q8_tile(2, FROM_Y, a, w, p, m, y, ldy); break;
            case 1: q8_tile(1, FROM_Y, a, w, p, m, y, ldy); break;
            default: break;
            }
        }
    }
}

void qrm_avx2_gemm_q8(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy) {
    gemm_q8(0, a, w, p0, p1, y, ldy);
}

void qrm_avx2_gemm_q8_acc(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                          size_t ldy) {
    gemm_q8(1, a, w, p0, p1, y, ldy);
}
