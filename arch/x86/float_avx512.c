/* Float building blocks of the forward pass for AVX-512F: dot, axpy, scale,
 * RMSNorm, softmax, SiLU / GELU(tanh) gating, NeoX RoPE. Tails (n % 16) use
 * masked loads and stores, which neither read nor write past n. The same
 * algorithms as float_avx2.c, 16 lanes wide. */
#include <immintrin.h>
#include <math.h>

#include "kernels_x86.h"

/* Lanes i < n (n in 0..16) set. */
static inline __mmask16 tail_mask(int n) { return (__mmask16)((1u << n) - 1); }

/* e^x to 2 ulp, as exp_ps in float_avx2.c: x = n ln2 + r, Taylor to r^7.
 * vscalefps applies 2^n over the whole range (gradual underflow included,
 * overflow to +inf), so no split of n is needed. x < -103.97 (and -inf)
 * gives exactly 0, NaN stays NaN. */
static inline __m512 exp_ps(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.72283935546875f), lo = _mm512_set1_ps(-103.972084045410f);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606820309417232e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512 e = _mm512_scalef_ps(p, n);
    e = _mm512_maskz_mov_ps((__mmask16)~under, e);
    return _mm512_mask_mov_ps(e, nan, x);
}

float qrm_avx512_dot_f32(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

void qrm_avx512_axpy_f32(float *y, float a, const float *x, int n) {
    const __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

void qrm_avx512_scale_f32(float *y, float a, int n) {
    const __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), va));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), va));
    }
}

void qrm_avx512_rmsnorm_f32(float *out, const float *x, const float *w, int n, float eps) {
    float ss = qrm_avx512_dot_f32(x, x, n);
    const __m512 inv = _mm512_set1_ps(1.0f / sqrtf(ss / (float)n + eps));
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), inv),
                                                _mm512_loadu_ps(w + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv),
                                 _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

void qrm_avx512_softmax_f32(float *x, int n) {
    if (n <= 0) return;
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
    if (i < n) vmax = _mm512_mask_max_ps(vmax, tail_mask(n - i), vmax, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 vsum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm));
        _mm512_mask_storeu_ps(x + i, m, e);
        vsum = _mm512_mask_add_ps(vsum, m, vsum, e); /* masked-off lanes add nothing */
    }
    qrm_avx512_scale_f32(x, 1.0f / _mm512_reduce_add_ps(vsum), n);
}

/* gate / (1 + e^-gate) * up, like the reference. */
static inline __m512 silu_mul(__m512 g, __m512 u) {
    __m512 den = _mm512_add_ps(_mm512_set1_ps(1.0f), exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g)));
    return _mm512_mul_ps(_mm512_div_ps(g, den), u);
}

void qrm_avx512_silu_mul_f32(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gate + i, silu_mul(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(gate + i, m,
                              silu_mul(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/* 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)): no cancellation for negative x
 * (see float_avx2.c). */
static inline __m512 gelu_mul(__m512 x, __m512 up) {
    const __m512 c2 = _mm512_set1_ps(-2.0f * 0.7978845608028654f);
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 u = _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x);
    __m512 den = _mm512_add_ps(_mm512_set1_ps(1.0f), exp_ps(_mm512_mul_ps(c2, u)));
    return _mm512_mul_ps(_mm512_div_ps(x, den), up);
}

void qrm_avx512_gelu_tanh_mul_f32(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gate + i, gelu_mul(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(gate + i, m,
                              gelu_mul(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/* The reference's expression (products, then difference / sum; no fma). */
static inline void rope16(float *x0p, float *x1p, const float *cos, const float *sin, __mmask16 m) {
    __m512 x0 = _mm512_maskz_loadu_ps(m, x0p), x1 = _mm512_maskz_loadu_ps(m, x1p);
    __m512 c = _mm512_maskz_loadu_ps(m, cos), s = _mm512_maskz_loadu_ps(m, sin);
    _mm512_mask_storeu_ps(x0p, m, _mm512_sub_ps(_mm512_mul_ps(x0, c), _mm512_mul_ps(x1, s)));
    _mm512_mask_storeu_ps(x1p, m, _mm512_add_ps(_mm512_mul_ps(x1, c), _mm512_mul_ps(x0, s)));
}

void qrm_avx512_rope_neox_f32(float *x, const float *cos, const float *sin, int head_dim) {
    const int h = head_dim / 2;
    int i = 0;
    for (; i + 16 <= h; i += 16) rope16(x + i, x + h + i, cos + i, sin + i, 0xffff);
    if (i < h) rope16(x + i, x + h + i, cos + i, sin + i, tail_mask(h - i));
}

/* f32 -> f16 (the K/V cache): vcvtps2ph with round to nearest even, the
 * tail masked. */
void qrm_avx512_f32_to_f16(uint16_t *dst, const float *src, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}
