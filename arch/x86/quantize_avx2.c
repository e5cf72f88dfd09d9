/* Activation quantization for AVX2, bit-identical to the scalar reference
 * (qrm_ref_quantize_group): the same float operations in the same order per
 * element (|x|, max, 127 / amax, x * id, amax / 127), round half to even by
 * cvtps2dq under the default MXCSR, and the same clamp to [-127, 127].
 * The max is exact, so its order does not matter. */
#include <immintrin.h>

#include "kernels_x86.h"

static void quantize_group(const float *x, int8_t *q, float *d, int32_t *s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float id = amax >= QRM_QACT_MIN_AMAX ? 127.0f / amax : 0.0f;

    const __m256 vid = _mm256_set1_ps(id);
    const __m256i hi = _mm256_set1_epi32(127), lo = _mm256_set1_epi32(-127);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
    i0 = _mm256_max_epi32(_mm256_min_epi32(i0, hi), lo);
    i1 = _mm256_max_epi32(_mm256_min_epi32(i1, hi), lo);
    i2 = _mm256_max_epi32(_mm256_min_epi32(i2, hi), lo);
    i3 = _mm256_max_epi32(_mm256_min_epi32(i3, hi), lo);

    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));

    /* The packs work within 128-bit lanes; the permute puts the dwords back
     * in order 0..7. Values are already in range, so nothing saturates. */
    __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, b);
    *d = amax / 127.0f;
    *s = _mm_cvtsi128_si32(s4);
}

/* Eight groups at a time, as quantize_avx512.c does sixteen: each group's
 * |x| maxima and int32 sums in a vector of their own, one transposing tree
 * (lane j of the result is vector j's total: pairs within 64 bits, within
 * 128, then across the two 128-bit lanes) instead of a reduction each, and
 * one division for the eight. Exact in any order (maxima, integer sums). */
static inline __attribute__((always_inline)) __m256 tree_max8(__m256 v[8]) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        v[i] = _mm256_max_ps(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        v[i] = _mm256_max_ps(_mm256_shuffle_ps(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm256_max_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20), _mm256_permute2f128_ps(v[0], v[1], 0x31));
}

static inline __attribute__((always_inline)) __m256i tree_add8(__m256i v[8]) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        v[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        v[i] = _mm256_add_epi32(_mm256_unpacklo_epi64(v[2 * i], v[2 * i + 1]),
                                _mm256_unpackhi_epi64(v[2 * i], v[2 * i + 1]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(v[0], v[1], 0x20),
                            _mm256_permute2x128_si256(v[0], v[1], 0x31));
}

static void quantize_8_groups(const float *x, int8_t *q, float *d, int32_t *s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m[8];
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        const float *xg = x + 32 * g;
        m[g] = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xg)),
                                           _mm256_andnot_ps(sign, _mm256_loadu_ps(xg + 8))),
                             _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xg + 16)),
                                           _mm256_andnot_ps(sign, _mm256_loadu_ps(xg + 24))));
    }
    const __m256 amax = tree_max8(m), c127 = _mm256_set1_ps(127.0f);
    /* amax >= QRM_QACT_MIN_AMAX ? 127 / amax : 0 (a NaN compares false) */
    const __m256 id = _mm256_and_ps(_mm256_cmp_ps(amax, _mm256_set1_ps(QRM_QACT_MIN_AMAX), _CMP_GE_OQ),
                                    _mm256_div_ps(c127, amax));
    _mm256_storeu_ps(d, _mm256_div_ps(amax, c127));
    /* the lower clamp only: |x id| < 127.5 for a finite x, and cvtps2dq
     * gives INT_MIN, never a large positive value, for a NaN or overflow */
    const __m256i lo = _mm256_set1_epi32(-127), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i sum[8];
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        const __m256 vid = _mm256_permutevar8x32_ps(id, _mm256_set1_epi32(g));
        __m256i i[4];
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++)
            i[h] = _mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * h), vid)), lo);
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
        _mm256_storeu_si256((__m256i *)(q + 32 * g), _mm256_permutevar8x32_epi32(b, order));
        sum[g] = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
    }
    _mm256_storeu_si256((__m256i *)s, tree_add8(sum));
}

void qrm_avx2_quantize_act(const float *x, size_t ldx, qrm_qact *a) {
    qrm_x86_quantize_rows(x, ldx, a, 8, quantize_8_groups, quantize_group);
}
