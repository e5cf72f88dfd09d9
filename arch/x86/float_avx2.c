/* Float building blocks of the forward pass for AVX2 + FMA: dot, axpy, scale,
 * RMSNorm, softmax, SiLU / GELU(tanh) gating, NeoX RoPE. Tails (n % 8) use
 * masked loads and stores, so no kernel reads or writes past n. */
#include <immintrin.h>
#include <math.h>

#include "f16.h"
#include "kernels_x86.h"

/* Lanes i < n (n in 0..8) set. */
static inline __m256i tail_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x, max relative error 2.4e-7 (2 ulp) for results >= FLT_MIN, measured in
 * tests/test_kernels.c against double exp over [-87, 88.7]. Results below
 * FLT_MIN are subnormal or 0 (absolute error < 1.2e-38); x > 88.72 gives
 * +inf, x < -103.97 (and -inf) gives exactly 0, NaN stays NaN.
 * x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two so n ln2 is exact);
 * e^r by its Taylor series to r^7 (truncation < 7e-9 relative); 2^n is
 * applied as two factors 2^(n/2) 2^(n - n/2) so that every n in [-150, 128]
 * is reachable without overflowing the exponent field. */
static inline __m256 exp_ps(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.72283935546875f), lo = _mm256_set1_ps(-103.972084045410f);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606820309417232e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    e = _mm256_andnot_ps(under, e);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), over);
    return _mm256_blendv_ps(e, x, nan);
}

float qrm_avx2_dot_f32(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

void qrm_avx2_axpy_f32(float *y, float a, const float *x, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

void qrm_avx2_scale_f32(float *y, float a, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), va));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(y + i, m), va));
    }
}

void qrm_avx2_rmsnorm_f32(float *out, const float *x, const float *w, int n, float eps) {
    float ss = qrm_avx2_dot_f32(x, x, n);
    /* the same expression as the reference, so only the sum order differs */
    const __m256 inv = _mm256_set1_ps(1.0f / sqrtf(ss / (float)n + eps));
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv),
                                                _mm256_loadu_ps(w + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv),
                                 _mm256_maskload_ps(w + i, m));
        _mm256_maskstore_ps(out + i, m, v);
    }
}

void qrm_avx2_softmax_f32(float *x, int n) {
    if (n <= 0) return;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    float mx = hmax(vmax);
    for (; i < n; i++) mx = fmaxf(mx, x[i]);

    const __m256 vm = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m)); /* masked-off lanes add nothing */
        _mm256_maskstore_ps(x + i, m, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    qrm_avx2_scale_f32(x, 1.0f / hsum(vsum), n);
}

/* gate * sigmoid(gate) * up, written gate / (1 + e^-gate) like the reference. */
static inline __m256 silu_mul(__m256 g, __m256 u) {
    __m256 den = _mm256_add_ps(_mm256_set1_ps(1.0f), exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g)));
    return _mm256_mul_ps(_mm256_div_ps(g, den), u);
}

void qrm_avx2_silu_mul_f32(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(gate + i, silu_mul(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(gate + i, m,
                            silu_mul(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
    }
}

/* 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
 * The right side has no cancellation for negative x (the left side loses all
 * digits there, which is why the tests compare with an absolute term). */
static inline __m256 gelu_mul(__m256 x, __m256 up) {
    const __m256 c2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x);
    __m256 den = _mm256_add_ps(_mm256_set1_ps(1.0f), exp_ps(_mm256_mul_ps(c2, u)));
    return _mm256_mul_ps(_mm256_div_ps(x, den), up);
}

void qrm_avx2_gelu_tanh_mul_f32(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(gate + i, gelu_mul(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(gate + i, m,
                            gelu_mul(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
    }
}

/* The reference's expression (products, then the difference / sum; no fma),
 * so results are the same as scalar bit for bit. */
static inline void rope8(float *x0p, float *x1p, const float *cos, const float *sin, __m256i m) {
    __m256 x0 = _mm256_maskload_ps(x0p, m), x1 = _mm256_maskload_ps(x1p, m);
    __m256 c = _mm256_maskload_ps(cos, m), s = _mm256_maskload_ps(sin, m);
    _mm256_maskstore_ps(x0p, m, _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
    _mm256_maskstore_ps(x1p, m, _mm256_add_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x0, s)));
}

void qrm_avx2_rope_neox_f32(float *x, const float *cos, const float *sin, int head_dim) {
    const int h = head_dim / 2;
    const __m256i all = _mm256_set1_epi32(-1);
    int i = 0;
    for (; i + 8 <= h; i += 8) rope8(x + i, x + h + i, cos + i, sin + i, all);
    if (i < h) rope8(x + i, x + h + i, cos + i, sin + i, tail_mask(h - i));
}

/* f32 -> f16 (the K/V cache): vcvtps2ph with round to nearest even; the
 * tail in portable C, which rounds the same way. */
void qrm_avx2_f32_to_f16(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = qrm_f32_to_f16(src[i]);
}
