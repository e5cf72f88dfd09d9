/* Activation quantization for AVX-512, bit-identical to the scalar reference
 * (qrm_ref_quantize_group): the same float operations per element, round
 * half to even by vcvtps2dq under the default MXCSR, the same clamp to
 * [-127, 127]. A group of 32 floats is two zmm.
 *
 * Sixteen groups at a time: each group's |x| maxima and int32 sums stay in
 * a vector of their own, and one transposing tree turns the sixteen vectors
 * into one whose lane g is group g's total. A reduction per group (four
 * shuffle-and-max steps for amax, four more for the sum, and a scalar
 * 127 / amax in between) cost ~30 cycles a group, a third of it
 * shuffles; the tree costs under three operations a group and the
 * divisions are one vdivps for sixteen. Maxima and integer sums are exact
 * in any order, so the tree's order changes no bit. */
#include <immintrin.h>

#include "kernels_x86.h"

static void quantize_group(const float *x, int8_t *q, float *d, int32_t *s) {
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    float id = amax >= QRM_QACT_MIN_AMAX ? 127.0f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i hi = _mm512_set1_epi32(127), lo = _mm512_set1_epi32(-127);
    __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
    __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    i0 = _mm512_max_epi32(_mm512_min_epi32(i0, hi), lo);
    i1 = _mm512_max_epi32(_mm512_min_epi32(i1, hi), lo);
    /* in range already, so the truncating narrow (vpmovdb) is exact */
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
    *d = amax / 127.0f;
    *s = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
}

/* One level of the transposing tree: two vectors whose lanes hold partial
 * results of 2^k vectors each become one holding those of 2^(k+1). Level
 * 1 pairs lanes within 64 bits, 2 within 128, 3 and 4 across 128-bit
 * lanes; after level 4, lane j holds the total of input vector j. */
#define QRM_TREE_MAX_(lvl, a, b) _mm512_max_ps(tree_lo_ps_##lvl(a, b), tree_hi_ps_##lvl(a, b))
#define QRM_TREE_ADD_(lvl, a, b) _mm512_add_epi32(tree_lo_epi_##lvl(a, b), tree_hi_epi_##lvl(a, b))
#define tree_lo_ps_1(a, b) _mm512_unpacklo_ps(a, b)
#define tree_hi_ps_1(a, b) _mm512_unpackhi_ps(a, b)
#define tree_lo_ps_2(a, b) _mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0))
#define tree_hi_ps_2(a, b) _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2))
#define tree_lo_ps_3(a, b) _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0))
#define tree_hi_ps_3(a, b) _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1))
#define tree_lo_epi_1(a, b) _mm512_unpacklo_epi32(a, b)
#define tree_hi_epi_1(a, b) _mm512_unpackhi_epi32(a, b)
#define tree_lo_epi_2(a, b) _mm512_unpacklo_epi64(a, b)
#define tree_hi_epi_2(a, b) _mm512_unpackhi_epi64(a, b)
#define tree_lo_epi_3(a, b) _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0))
#define tree_hi_epi_3(a, b) _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1))

static inline __attribute__((always_inline)) __m512 tree_max16(const __m512 v[16]) {
    __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) t[i] = QRM_TREE_MAX_(1, v[2 * i], v[2 * i + 1]);
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) u[i] = QRM_TREE_MAX_(2, t[2 * i], t[2 * i + 1]);
#pragma GCC unroll 8
    for (int i = 0; i < 2; i++) w[i] = QRM_TREE_MAX_(3, u[2 * i], u[2 * i + 1]);
    return QRM_TREE_MAX_(3, w[0], w[1]); /* level 4 moves 128-bit lanes like level 3 */
}

static inline __attribute__((always_inline)) __m512i tree_add16(const __m512i v[16]) {
    __m512i t[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) t[i] = QRM_TREE_ADD_(1, v[2 * i], v[2 * i + 1]);
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) u[i] = QRM_TREE_ADD_(2, t[2 * i], t[2 * i + 1]);
#pragma GCC unroll 8
    for (int i = 0; i < 2; i++) w[i] = QRM_TREE_ADD_(3, u[2 * i], u[2 * i + 1]);
    return QRM_TREE_ADD_(3, w[0], w[1]);
}

/* Groups g0 .. g0 + 15 of one row: x the row, q / d / s the row's outputs. */
static void quantize_16_groups(const float *x, int8_t *q, float *d, int32_t *s) {
    __m512 m[16];
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++)
        m[g] = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 32 * g)),
                             _mm512_abs_ps(_mm512_loadu_ps(x + 32 * g + 16)));
    const __m512 amax = tree_max16(m), c127 = _mm512_set1_ps(127.0f);
    /* amax >= QRM_QACT_MIN_AMAX ? 127 / amax : 0 (a NaN compares false) */
    const __mmask16 big = _mm512_cmp_ps_mask(amax, _mm512_set1_ps(QRM_QACT_MIN_AMAX), _CMP_GE_OQ);
    /* broadcast from the register (a store, then 4-byte loads of it, waits
     * for the store on this core: no forwarding into part of a vector) */
    const __m512 id = _mm512_maskz_div_ps(big, c127, amax);
    _mm512_storeu_ps(d, _mm512_div_ps(amax, c127));
    /* Only the lower clamp: |x * id| < 127.5 whenever x is finite, and
     * vcvtps2dq gives INT_MIN for a NaN or an overflow, never a large
     * positive value. Two groups' int32s are narrowed with saturating packs
     * (in range, so exact) and put back in order by one permutation: packs
     * interleave the 128-bit lanes of their inputs, 4 bytes at a time. */
    const __m512i lo = _mm512_set1_epi32(-127);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i sum[16];
#pragma GCC unroll 8
    for (int g = 0; g < 16; g += 2) {
        __m512i i[4];
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            const __m512 vid = _mm512_permutexvar_ps(_mm512_set1_epi32(g + h / 2), id);
            i[h] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * g + 16 * h), vid));
            i[h] = _mm512_max_epi32(i[h], lo);
        }
        __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(i[0], i[1]), _mm512_packs_epi32(i[2], i[3]));
        _mm512_storeu_si512(q + 32 * g, _mm512_permutexvar_epi32(order, b));
        sum[g] = _mm512_add_epi32(i[0], i[1]);
        sum[g + 1] = _mm512_add_epi32(i[2], i[3]);
    }
    _mm512_storeu_si512(s, tree_add16(sum));
}

void qrm_avx512_quantize_act(const float *x, size_t ldx, qrm_qact *a) {
    qrm_x86_quantize_rows(x, ldx, a, 16, quantize_16_groups, quantize_group);
}
