/* q4 x q8 GEMM for AVX2 (same semantics as gemm_q8, weights are 4-bit).
 *
 * A 16-row panel's group is one 256-byte block: the 32 bytes at 64 * k4
 * (k4 < 4) hold, for rows 0-7, the 4-k step k4 in their low nibbles and the
 * step k4 + 4 in their high nibbles; the next 32 bytes the same for rows
 * 8-15. So one load yields two weight vectors with an and / a shift and an
 * and. The nibbles u = w + 8 are unsigned, which is what vpmaddubsw wants;
 * the products of a group add up in int16 without saturating and the +8 is
 * taken back with the activation sum s (proof: kernels_x86.h).
 * Tiles of T tokens x one panel, like gemm_q8_avx2.c.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_x86.h"

#define Q4_TILE 4

static inline __m256i broadcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static inline __attribute__((always_inline)) void q4_tile(int T, const qrm_qact *a,
                                                          const qrm_qweight *w, int p, int m,
                                                          float *y, size_t ldy) {
    const int K = w->K, G = K / QRM_QK;
    const uint8_t *wq = w->q + (size_t)p * qrm_qw_pgroups(w) * 256;
    const uint16_t *wd = w->d + (size_t)p * qrm_qw_pgroups(w) * QRM_PANEL;
    const int8_t *aq = a->q + (size_t)m * K;
    const float *ad = a->d + (size_t)m * G;
    const int32_t *as = a->s + (size_t)m * G;
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(0x0f);
    __m256 acc[Q4_TILE][2];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();

    for (int g = 0; g < G; g++, wq += 256) {
        __m256i sum16[Q4_TILE][2];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) sum16[t][0] = sum16[t][1] = _mm256_setzero_si256();
        /* not unrolled, sums pinned: see gemm_q8_avx2.c */
#pragma GCC unroll 1
        for (int k4 = 0; k4 < 4; k4++) {
            if (T == 1) _mm_prefetch((const char *)(wq + QRM_X86_GEMV_PREFETCH_Q4 + k4 * 64), _MM_HINT_T0);
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(wq + k4 * 64));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(wq + k4 * 64 + 32));
            __m256i lo0 = _mm256_and_si256(v0, low4);
            __m256i hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low4);
            __m256i lo1 = _mm256_and_si256(v1, low4);
            __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low4);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const int8_t *q = aq + (size_t)t * K + g * QRM_QK;
                __m256i alo = broadcast4(q + k4 * 4), ahi = broadcast4(q + k4 * 4 + 16);
                sum16[t][0] = _mm256_add_epi16(sum16[t][0], _mm256_maddubs_epi16(lo0, alo));
                sum16[t][1] = _mm256_add_epi16(sum16[t][1], _mm256_maddubs_epi16(lo1, alo));
                sum16[t][0] = _mm256_add_epi16(sum16[t][0], _mm256_maddubs_epi16(hi0, ahi));
                sum16[t][1] = _mm256_add_epi16(sum16[t][1], _mm256_maddubs_epi16(hi1, ahi));
                __asm__("" : "+x"(sum16[t][0]), "+x"(sum16[t][1]));
            }
        }
        __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wd + g * QRM_PANEL)));
        __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wd + g * QRM_PANEL + 8)));
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i zp = _mm256_set1_epi32(8 * as[(size_t)t * G + g]);
            __m256i i0 = _mm256_sub_epi32(_mm256_madd_epi16(sum16[t][0], ones), zp);
            __m256i i1 = _mm256_sub_epi32(_mm256_madd_epi16(sum16[t][1], ones), zp);
            __m256 da = _mm256_set1_ps(ad[(size_t)t * G + g]);
            acc[t][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(d0, da), acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(d1, da), acc[t][1]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        float *yr = y + (size_t)(m + t) * ldy + (size_t)p * QRM_PANEL;
        _mm256_storeu_ps(yr, acc[t][0]);
        _mm256_storeu_ps(yr + 8, acc[t][1]);
    }
}

void qrm_avx2_gemm_q4(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy) {
    const int M = a->M, mb = qrm_x86_token_block(w->K, Q4_TILE);
    for (int m0 = 0; m0 < M; m0 += mb) {
        int m1 = M - m0 < mb ? M : m0 + mb;
        for (int p = p0; p < p1; p++) {
            int m = m0;
            for (; m + Q4_TILE <= m1; m += Q4_TILE) q4_tile(Q4_TILE, a, w, p, m, y, ldy);
            switch (m1 - m) {
            case 3: q4_tile(3, a, w, p, m, y, ldy); break;
            case 2: q4_tile(2, a, w, p, m, y, ldy); break;
            case 1: q4_tile(1, a, w, p, m, y, ldy); break;
            default: break;
            }
        }
    }
}
