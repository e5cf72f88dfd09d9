/* The 16-lane vector of arch/float_kernels.inc on AVX-512F: one zmm. Tails
 * use masked loads and stores, which touch nothing past n. */
#ifndef QRM_VEC16_AVX512_H
#define QRM_VEC16_AVX512_H

#include <immintrin.h>
#include <stdint.h>

typedef __m512 qv;
typedef __mmask16 qm;

#define QV_INLINE static inline __attribute__((always_inline))
/* 4 x 4 and 1 x 12 GEMM tiles (16 and 12 independent FMA chains); wsum
 * (attention's scores and P.V) tiles of 8 rows x 32 outputs (16 chains,
 * each loaded vector serving 8 rows: with an f16 cache the conversion,
 * which shares the FMA ports, then costs half as much as with 4 rows, 97
 * against 90 GFLOP/s at 16 rows x 512 keys), and 16 chains in the shorter
 * tiles too (2 rows x 64 outputs: a lone token's two heads, 92 against 74
 * GFLOP/s). Tiles of 16 rows x 16 outputs ran the f16 scores at 109-113
 * alone, but 99-100 next to the widened short tiles (their 16 row
 * addresses then spilled from the general registers). */
#define QV_GEMM_T 4
#define QV_GEMM_R 4
#define QV_GEMV_R 12
#define QV_WSUM_R 8
#define QV_WSUM_C 2
#define QV_WSUM_CHAINS 16
#define QV_WSUM_CMAX 4

QV_INLINE qm qm_first(int n) { return (qm)((1u << n) - 1); }

QV_INLINE qv qv_zero(void) { return _mm512_setzero_ps(); }
QV_INLINE qv qv_set1(float a) { return _mm512_set1_ps(a); }
QV_INLINE qv qv_load(const float *p) { return _mm512_loadu_ps(p); }
QV_INLINE void qv_store(float *p, qv v) { _mm512_storeu_ps(p, v); }
QV_INLINE qv qv_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(qm_first(n), p); }
QV_INLINE void qv_store_n(float *p, qv v, int n) { _mm512_mask_storeu_ps(p, qm_first(n), v); }
QV_INLINE qv qv_load_h(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
QV_INLINE qv qv_load_h_n(const uint16_t *p, int n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(qm_first(n), p));
}
QV_INLINE void qv_store_h(uint16_t *p, qv v) {
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
QV_INLINE void qv_store_h_n(uint16_t *p, qv v, int n) {
    _mm256_mask_storeu_epi16(p, qm_first(n), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

QV_INLINE qv qv_add(qv a, qv b) { return _mm512_add_ps(a, b); }
QV_INLINE qv qv_sub(qv a, qv b) { return _mm512_sub_ps(a, b); }
QV_INLINE qv qv_mul(qv a, qv b) { return _mm512_mul_ps(a, b); }
QV_INLINE qv qv_div(qv a, qv b) { return _mm512_div_ps(a, b); }
QV_INLINE qv qv_fma(qv a, qv b, qv c) { return _mm512_fmadd_ps(a, b, c); }
QV_INLINE qv qv_fnma(qv a, qv b, qv c) { return _mm512_fnmadd_ps(a, b, c); }
QV_INLINE qv qv_max(qv a, qv b) { return _mm512_max_ps(a, b); }
QV_INLINE qv qv_min(qv a, qv b) { return _mm512_min_ps(a, b); }
QV_INLINE qv qv_round(qv a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* vscalefps: p * 2^n rounded once, subnormal results included */
QV_INLINE qv qv_ldexp(qv p, qv n) { return _mm512_scalef_ps(p, n); }

QV_INLINE qm qv_isnan(qv a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
QV_INLINE qm qv_lt(qv a, qv b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
QV_INLINE qv qv_select(qm m, qv a, qv b) { return _mm512_mask_blend_ps(m, b, a); }

/* s = lanes i + (i + 8) (F only: no DQ extract) */
QV_INLINE __m256 qv_fold_(qv v) {
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return _mm256_add_ps(_mm512_castps512_ps256(v), hi);
}
/* The canonical tree of four vectors at once: after the fold, hadd pairs
 * (s0+s1, s2+s3 | s4+s5, s6+s7), hadd again and add the two halves. */
QV_INLINE __m128 qv_tree4_(qv a, qv b, qv c, qv d) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(qv_fold_(a), qv_fold_(b)),
                              _mm256_hadd_ps(qv_fold_(c), qv_fold_(d)));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}
QV_INLINE void qv_hsum4(qv a, qv b, qv c, qv d, float *out) { _mm_storeu_ps(out, qv_tree4_(a, b, c, d)); }
/* One vector's tree with short-latency shuffles: s = the fold; lane 2j
 * gets t[j] = s[2j] + s[2j+1]; lanes 0 and 4 get t0 + t1 and t2 + t3; then
 * their sum. The same additions as qv_tree4_, in the same order. */
QV_INLINE float qv_hsum(qv v) {
    __m256 s = qv_fold_(v);
    __m256 t = _mm256_add_ps(s, _mm256_movehdup_ps(s));
    __m256 u = _mm256_add_ps(t, _mm256_permute_ps(t, _MM_SHUFFLE(2, 2, 2, 2)));
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
}
QV_INLINE float qv_hmax(qv v) { return _mm512_reduce_max_ps(v); }

#endif
