/* q8 x q8 GEMM for AVX-512 VNNI: y[m][n] = sum_g da[m][g] dw[n][g] sum_{k in g} qa[m][k] qw[n][k].
 *
 * One 64-byte step of a packed block (kernels.h) is one zmm: 16 rows x 4
 * consecutive k, the dword layout vpdpbusd multiplies against 4 broadcast
 * activations. vpdpbusd wants the unsigned operand first, so weights are
 * flipped to u = w + 128 (xor 0x80) once per load and the accumulator starts
 * at -128 * s (s = the group's activation sum): it ends at exactly
 * sum(w * a). Nothing saturates (vpdpbusd adds 4 products of at most
 * 255 * 127 into int32).
 *
 * Tiles of T tokens x NP panels (up to 4 x 2): each flipped weight vector
 * serves T tokens, each activation broadcast NP panels. Per group the int32
 * sums are converted once and folded in with dw * da. The chains of one
 * group are independent of the next group's (fresh accumulators), so out-of-
 * order execution overlaps groups and vpdpbusd's latency is hidden even at
 * M = 1 (GEMV, bound by reading the weights).
 *
 * A lone token (M = 1) takes one panel at a time and issues no software
 * prefetch: one sequential stream is what the hardware prefetcher serves
 * best. Measured on a Zen 4 EPYC (one thread, 80 matrices of 1024 x 3072,
 * 252 MB, read in turn; a plain read loop 24-25 GB/s): two panels with
 * prefetch 1024 bytes ahead (the avx2 setting) 16.4 GB/s, two panels without
 * prefetch 18.0, one panel without 21.5-22.8 (q4: 12.8 -> 21.9 GB/s); one
 * token after 512, qwen3-0.6b, p50 -23 % (int8) and -12 to -20 % (int4). In
 * cache the q8 GEMV gains too (+19 %), q4 loses 3-8 %. Each output's
 * arithmetic is the same whatever the tile, so the bits do not change.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_x86.h"

#define Q8_TILE 4

static inline int32_t load4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* y[m + t][16 (p + j) ..] for t < T, j < NP (constants at each call site),
 * over the groups [g0, g1); from_y: the sums start from y (gemm_q8_acc, or
 * a K chunk after the first), else from 0. */
static inline __attribute__((always_inline)) void q8_tile(int T, int NP, int from_y, const qrm_qact *a,
                                                          const qrm_qweight *w, int p, int m, int g0,
                                                          int g1, float *y, size_t ldy) {
    const int K = w->K, G = K / QRM_QK;
    const int8_t *aq = a->q + (size_t)m * K;
    const float *ad = a->d + (size_t)m * G;
    const int32_t *as = a->s + (size_t)m * G;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const uint8_t *wq[2];
    const uint16_t *wd[2];
#pragma GCC unroll 2
    for (int j = 0; j < NP; j++) {
        wq[j] = w->q + (size_t)(p + j) * qrm_qw_pgroups(w) * 512;
        wd[j] = w->d + (size_t)(p + j) * qrm_qw_pgroups(w) * QRM_PANEL;
    }
    __m512 acc[Q8_TILE][2];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 2
        for (int j = 0; j < NP; j++)
            acc[t][j] = from_y ? _mm512_loadu_ps(y + (size_t)(m + t) * ldy + (size_t)(p + j) * QRM_PANEL)
                               : _mm512_setzero_ps();

    for (int g = g0; g < g1; g++) {
        __m512i isum[Q8_TILE][2];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512i zp = _mm512_set1_epi32(-128 * as[(size_t)t * G + g]);
#pragma GCC unroll 2
            for (int j = 0; j < NP; j++) isum[t][j] = zp;
        }
#pragma GCC unroll 8
        for (int k4 = 0; k4 < 8; k4++) {
            __m512i wv[2];
#pragma GCC unroll 2
            for (int j = 0; j < NP; j++) {
                wv[j] = _mm512_xor_si512(_mm512_loadu_si512(wq[j] + (size_t)g * 512 + k4 * 64), flip);
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m512i av = _mm512_set1_epi32(load4(aq + (size_t)t * K + g * QRM_QK + k4 * 4));
#pragma GCC unroll 2
                for (int j = 0; j < NP; j++) isum[t][j] = _mm512_dpbusd_epi32(isum[t][j], wv[j], av);
            }
        }
        __m512 dw[2];
#pragma GCC unroll 2
        for (int j = 0; j < NP; j++)
            dw[j] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wd[j] + (size_t)g * QRM_PANEL)));
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512 da = _mm512_set1_ps(ad[(size_t)t * G + g]);
#pragma GCC unroll 2
            for (int j = 0; j < NP; j++)
                acc[t][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t][j]), _mm512_mul_ps(dw[j], da),
                                            acc[t][j]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 2
        for (int j = 0; j < NP; j++)
            _mm512_storeu_ps(y + (size_t)(m + t) * ldy + (size_t)(p + j) * QRM_PANEL, acc[t][j]);
}

/* All tokens of [m0, m1) against panels p .. p + NP - 1, groups [g0, g1). */
static inline __attribute__((always_inline)) void q8_panels(int NP, int from_y, const qrm_qact *a,
                                                            const qrm_qweight *w, int p, int m0,
                                                            int m1, int g0, int g1, float *y,
                                                            size_t ldy) {
    int m = m0;
    for (; m + Q8_TILE <= m1; m += Q8_TILE) q8_tile(Q8_TILE, NP, from_y, a, w, p, m, g0, g1, y, ldy);
    switch (m1 - m) {
    case 3: q8_tile(3, NP, from_y, a, w, p, m, g0, g1, y, ldy); break;
    case 2: q8_tile(2, NP, from_y, a, w, p, m, g0, g1, y, ldy); break;
    case 1: q8_tile(1, NP, from_y, a, w, p, m, g0, g1, y, ldy); break;
    default: break;
    }
}

/* Blocks of tokens, and in each, chunks of K (qrm_x86_k_chunk): a chunk
 * after the first continues each output's sum from y, the same chain of
 * fused multiply-adds a single pass over K gives. */
static inline __attribute__((always_inline)) void gemm_q8(int FROM_Y, const qrm_qact *a,
                                                          const qrm_qweight *w, int p0, int p1,
                                                          float *y, size_t ldy) {
    const int M = a->M, G = w->K / QRM_QK, gc = qrm_x86_k_chunk(M, G, QRM_X86_K_CHUNK_Q8);
    const int mb = qrm_x86_token_block(gc * QRM_QK, Q8_TILE);
    for (int m0 = 0; m0 < M; m0 += mb) {
        int m1 = M - m0 < mb ? M : m0 + mb;
        for (int g0 = 0; g0 == 0 || g0 < G; g0 += gc) { /* once when K = 0: y = 0 (or y) */
            int g1 = G - g0 < gc ? G : g0 + gc, from_y = FROM_Y || g0 > 0;
            int p = p0;
            /* a lone token streams its panels one at a time (see the header) */
            for (; M > 1 && p + 2 <= p1; p += 2) q8_panels(2, from_y, a, w, p, m0, m1, g0, g1, y, ldy);
            for (; p < p1; p++) q8_panels(1, from_y, a, w, p, m0, m1, g0, g1, y, ldy);
        }
    }
}

void qrm_avx512_gemm_q8(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                        size_t ldy) {
    gemm_q8(0, a, w, p0, p1, y, ldy);
}

void qrm_avx512_gemm_q8_acc(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                            size_t ldy) {
    gemm_q8(1, a, w, p0, p1, y, ldy);
}
