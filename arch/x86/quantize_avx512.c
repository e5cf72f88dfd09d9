/* Activation quantization for AVX-512, bit-identical to the scalar reference
 * (qrm_ref_quantize_group): the same float operations per element, round
 * half to even by vcvtps2dq under the default MXCSR, the same clamp to
 * [-127, 127]. A group of 32 floats is two zmm. */
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

void qrm_avx512_quantize_act(const float *x, size_t ldx, qrm_qact *a) {
    const int G = a->K / QRM_QK;
    for (int m = 0; m < a->M; m++)
        for (int g = 0; g < G; g++)
            quantize_group(x + (size_t)m * ldx + (size_t)g * QRM_QK,
                           a->q + (size_t)m * a->K + (size_t)g * QRM_QK, a->d + (size_t)m * G + g,
                           a->s + (size_t)m * G + g);
}
