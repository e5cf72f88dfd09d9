/* The 16-lane vector of arch/float_kernels.inc on AVX2 + FMA + F16C: two
 * ymm, lanes 0-7 and 8-15. Tails use vmaskmov (f32) or a zero-padded copy
 * (f16), so nothing past n is read or written. */
#ifndef QRM_VEC16_AVX2_H
#define QRM_VEC16_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef struct { __m256 lo, hi; } qv;
typedef struct { __m256 lo, hi; } qm;

#define QV_INLINE static inline __attribute__((always_inline))
/* A vector is two registers. The float GEMM's tiles take the two lane
 * halves (QV_PARTS below) in turn every 16 elements, one pass over the
 * rows: 2 tokens x 3 rows of two-register accumulators, 12 FMA chains (an
 * FMA takes 4 cycles and two start per cycle) plus 2 activation and 1
 * weight register in the 16 ymm; 1 x 6 for a lone token. Where a tile's
 * 3 rows and 2 activation rows pass 32 KB (f32 from K = 2048), K goes in
 * blocks of 512 (QV_GEMM_KB), the rows' block staying in L1 for 16 tiles:
 * 1.19x (f32, K = 2048) and 1.11x (K = 3072) the unblocked tiles, whose
 * operands all came from L2 (bench/ab/kernel_ab.sh; blocks of 128 and 256
 * were slower, 768 and 1024 even). P.V tiles of 4 rows x 16 outputs
 * (8 chains). */
#define QV_GEMM_T 2
#define QV_GEMM_R 3
#define QV_GEMV_R 6
#define QV_GEMM_KB 512
#define QV_WSUM_R 4
#define QV_WSUM_C 1

QV_INLINE __m256i qv_lanes_(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
QV_INLINE qm qm_first(int n) {
    qm m = {_mm256_castsi256_ps(qv_lanes_(n)), _mm256_castsi256_ps(qv_lanes_(n - 8))};
    return m;
}

QV_INLINE qv qv_zero(void) { qv r = {_mm256_setzero_ps(), _mm256_setzero_ps()}; return r; }
QV_INLINE qv qv_set1(float a) { qv r = {_mm256_set1_ps(a), _mm256_set1_ps(a)}; return r; }
QV_INLINE qv qv_load(const float *p) { qv r = {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; return r; }
QV_INLINE void qv_store(float *p, qv v) { _mm256_storeu_ps(p, v.lo), _mm256_storeu_ps(p + 8, v.hi); }
QV_INLINE qv qv_load_n(const float *p, int n) {
    qv r = {_mm256_maskload_ps(p, qv_lanes_(n)), _mm256_maskload_ps(p + 8, qv_lanes_(n - 8))};
    return r;
}
QV_INLINE void qv_store_n(float *p, qv v, int n) {
    _mm256_maskstore_ps(p, qv_lanes_(n), v.lo);
    _mm256_maskstore_ps(p + 8, qv_lanes_(n - 8), v.hi);
}
QV_INLINE qv qv_load_h(const uint16_t *p) {
    qv r = {_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)),
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8)))};
    return r;
}
QV_INLINE qv qv_load_h_n(const uint16_t *p, int n) {
    uint16_t buf[16] = {0};
    memcpy(buf, p, (size_t)n * sizeof *p);
    return qv_load_h(buf);
}
QV_INLINE void qv_store_h(uint16_t *p, qv v) {
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v.lo, _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128((__m128i *)(p + 8), _mm256_cvtps_ph(v.hi, _MM_FROUND_TO_NEAREST_INT));
}
QV_INLINE void qv_store_h_n(uint16_t *p, qv v, int n) {
    uint16_t buf[16];
    qv_store_h(buf, v);
    memcpy(p, buf, (size_t)n * sizeof *p);
}

/* The float GEMM in parts (arch/float_kernels.inc): lanes 0-7 and 8-15 of
 * every accumulator never meet before the final tree, so a step loads and
 * multiplies one half at a time: with whole 16-lane loads a 2 x 3 tile's
 * accumulators and activations filled the 16 registers and GCC loaded
 * each weight once per token. */
#define QV_PARTS 2
#define QP_LANES 8
typedef __m256 qp;
QV_INLINE qp qp_zero(void) { return _mm256_setzero_ps(); }
QV_INLINE qp qp_load(const float *p) { return _mm256_loadu_ps(p); }
QV_INLINE qp qp_load_n(const float *p, int n) { return _mm256_maskload_ps(p, qv_lanes_(n)); }
QV_INLINE qp qp_load_h(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
QV_INLINE qp qp_load_h_n(const uint16_t *p, int n) {
    uint16_t buf[8] = {0};
    memcpy(buf, p, (size_t)n * sizeof *p);
    return qp_load_h(buf);
}
QV_INLINE qp qp_fma(qp a, qp b, qp c) { return _mm256_fmadd_ps(a, b, c); }
/* a loaded weight stays in a register: without the barrier GCC folds the
 * load into each token's FMA, one load per token instead of one per row */
QV_INLINE qp qp_in_reg(qp v) {
    __asm__("" : "+x"(v));
    return v;
}
QV_INLINE qv qv_from_parts(const qp *p) { qv r = {p[0], p[1]}; return r; }

#define QV_2(op) qv r = {op(a.lo, b.lo), op(a.hi, b.hi)}; return r
QV_INLINE qv qv_add(qv a, qv b) { QV_2(_mm256_add_ps); }
QV_INLINE qv qv_sub(qv a, qv b) { QV_2(_mm256_sub_ps); }
QV_INLINE qv qv_mul(qv a, qv b) { QV_2(_mm256_mul_ps); }
QV_INLINE qv qv_div(qv a, qv b) { QV_2(_mm256_div_ps); }
QV_INLINE qv qv_max(qv a, qv b) { QV_2(_mm256_max_ps); }
QV_INLINE qv qv_min(qv a, qv b) { QV_2(_mm256_min_ps); }
#undef QV_2
QV_INLINE qv qv_fma(qv a, qv b, qv c) {
    qv r = {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
    return r;
}
QV_INLINE qv qv_fnma(qv a, qv b, qv c) {
    qv r = {_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi)};
    return r;
}
QV_INLINE qv qv_round(qv a) {
    qv r = {_mm256_round_ps(a.lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
            _mm256_round_ps(a.hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
    return r;
}
/* p * 2^n as (p * 2^(n>>1)) * 2^(n - (n>>1)): the first product is exact,
 * the second rounds once, so subnormal results are right too (n integral,
 * in [-150, 128]). */
QV_INLINE __m256 qv_ldexp8_(__m256 p, __m256 n) {
    __m256i ni = _mm256_cvtps_epi32(n), bias = _mm256_set1_epi32(127);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
QV_INLINE qv qv_ldexp(qv p, qv n) { qv r = {qv_ldexp8_(p.lo, n.lo), qv_ldexp8_(p.hi, n.hi)}; return r; }

QV_INLINE qm qv_isnan(qv a) {
    qm m = {_mm256_cmp_ps(a.lo, a.lo, _CMP_UNORD_Q), _mm256_cmp_ps(a.hi, a.hi, _CMP_UNORD_Q)};
    return m;
}
QV_INLINE qm qv_lt(qv a, qv b) {
    qm m = {_mm256_cmp_ps(a.lo, b.lo, _CMP_LT_OQ), _mm256_cmp_ps(a.hi, b.hi, _CMP_LT_OQ)};
    return m;
}
QV_INLINE qv qv_select(qm m, qv a, qv b) {
    qv r = {_mm256_blendv_ps(b.lo, a.lo, m.lo), _mm256_blendv_ps(b.hi, a.hi, m.hi)};
    return r;
}

/* The canonical tree (arch/float_kernels.h) of four vectors at once: the
 * fold lo + hi, hadd pairs, hadd again, add the two 128-bit halves. */
QV_INLINE __m128 qv_tree4_(qv a, qv b, qv c, qv d) {
    __m256 fa = _mm256_add_ps(a.lo, a.hi), fb = _mm256_add_ps(b.lo, b.hi);
    __m256 fc = _mm256_add_ps(c.lo, c.hi), fd = _mm256_add_ps(d.lo, d.hi);
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(fa, fb), _mm256_hadd_ps(fc, fd));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}
QV_INLINE void qv_hsum4(qv a, qv b, qv c, qv d, float *out) { _mm_storeu_ps(out, qv_tree4_(a, b, c, d)); }
/* One vector's tree with short-latency shuffles: s = the fold; lane 2j
 * gets t[j] = s[2j] + s[2j+1]; lanes 0 and 4 get t0 + t1 and t2 + t3; then
 * their sum. The same additions as qv_tree4_, in the same order. */
QV_INLINE float qv_hsum(qv v) {
    __m256 s = _mm256_add_ps(v.lo, v.hi);
    __m256 t = _mm256_add_ps(s, _mm256_movehdup_ps(s));
    __m256 u = _mm256_add_ps(t, _mm256_permute_ps(t, _MM_SHUFFLE(2, 2, 2, 2)));
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
}
QV_INLINE float qv_hmax(qv v) {
    __m256 m8 = _mm256_max_ps(v.lo, v.hi);
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
