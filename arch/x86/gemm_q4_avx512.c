/* q4 x q8 GEMM for AVX-512 VNNI (the semantics of gemm_q8, 4-bit weights).
 *
 * A panel's group is one 256-byte block: the 64 bytes at 64 * k4 (k4 < 4)
 * hold all 16 rows of the 4-k step k4 in their low nibbles and of the step
 * k4 + 4 in their high nibbles, so one load and an and / a shift and an and
 * give two zmm in the dword layout vpdpbusd wants. The nibbles u = w + 8 are
 * already the unsigned operand; the accumulator starts at -8 * s so it ends
 * at exactly sum(w * a). Tiles of T tokens x NP panels, and a lone token
 * one panel at a time without software prefetch, as in gemm_q8_avx512.c.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_x86.h"

#define Q4_TILE 4

static inline int32_t load4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __attribute__((always_inline)) void q4_tile(int T, int NP, const qrm_qact *a,
                                                          const qrm_qweight *w, int p, int m,
                                                          float *y, size_t ldy) {
    const int K = w->K, G = K / QRM_QK;
    const int8_t *aq = a->q + (size_t)m * K;
    const float *ad = a->d + (size_t)m * G;
    const int32_t *as = a->s + (size_t)m * G;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    const uint8_t *wq[2];
    const uint16_t *wd[2];
#pragma GCC unroll 2
    for (int j = 0; j < NP; j++) {
        wq[j] = w->q + (size_t)(p + j) * qrm_qw_pgroups(w) * 256;
        wd[j] = w->d + (size_t)(p + j) * qrm_qw_pgroups(w) * QRM_PANEL;
    }
    __m512 acc[Q4_TILE][2];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 2
        for (int j = 0; j < NP; j++) acc[t][j] = _mm512_setzero_ps();

    for (int g = 0; g < G; g++) {
        __m512i isum[Q4_TILE][2];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512i zp = _mm512_set1_epi32(-8 * as[(size_t)t * G + g]);
#pragma GCC unroll 2
            for (int j = 0; j < NP; j++) isum[t][j] = zp;
        }
#pragma GCC unroll 4
        for (int k4 = 0; k4 < 4; k4++) {
            __m512i lo[2], hi[2];
#pragma GCC unroll 2
            for (int j = 0; j < NP; j++) {
                __m512i v = _mm512_loadu_si512(wq[j] + (size_t)g * 256 + k4 * 64);
                lo[j] = _mm512_and_si512(v, low4);
                hi[j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const int8_t *q = aq + (size_t)t * K + g * QRM_QK + k4 * 4;
                __m512i alo = _mm512_set1_epi32(load4(q)), ahi = _mm512_set1_epi32(load4(q + 16));
#pragma GCC unroll 2
                for (int j = 0; j < NP; j++) {
                    isum[t][j] = _mm512_dpbusd_epi32(isum[t][j], lo[j], alo);
                    isum[t][j] = _mm512_dpbusd_epi32(isum[t][j], hi[j], ahi);
                }
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

static inline __attribute__((always_inline)) void q4_panels(int NP, const qrm_qact *a,
                                                            const qrm_qweight *w, int p, int m0,
                                                            int m1, float *y, size_t ldy) {
    int m = m0;
    for (; m + Q4_TILE <= m1; m += Q4_TILE) q4_tile(Q4_TILE, NP, a, w, p, m, y, ldy);
    switch (m1 - m) {
    case 3: q4_tile(3, NP, a, w, p, m, y, ldy); break;
    case 2: q4_tile(2, NP, a, w, p, m, y, ldy); break;
    case 1: q4_tile(1, NP, a, w, p, m, y, ldy); break;
    default: break;
    }
}

void qrm_avx512_gemm_q4(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                        size_t ldy) {
    const int M = a->M, mb = qrm_x86_token_block(w->K, Q4_TILE);
    for (int m0 = 0; m0 < M; m0 += mb) {
        int m1 = M - m0 < mb ? M : m0 + mb;
        int p = p0;
        /* a lone token streams its panels one at a time (see the header) */
        for (; M > 1 && p + 2 <= p1; p += 2) q4_panels(2, a, w, p, m0, m1, y, ldy);
        for (; p < p1; p++) q4_panels(1, a, w, p, m0, m1, y, ldy);
    }
}
