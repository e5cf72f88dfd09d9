/* Float building blocks of the forward pass on ARMv8.0 Advanced SIMD.
 * Used by all three ARM families (see kernels_arm.h). Results differ from
 * the scalar reference only by the order of float sums and by the vector
 * exp below. */
#include <arm_neon.h>
#include <math.h>

#include "f16.h"
#include "kernels_arm.h"

/* ---- exp on four lanes ----
 * exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2],
 * with ln 2 split in two so that n * ln2_hi is exact, and exp(r) a degree-7
 * polynomial 1 + r + r^2 P(r) (minimax coefficients, as in Cephes' expf).
 * Max relative error, measured against double exp on every 1/64 step of
 * [-103, 88.7] and 2^21 random points of [-104, 89]: 1.19e-7 (1 ulp) where
 * the result is a normal float; subnormal results (x < -87.3) are within
 * 0.77 of the subnormal spacing. Overflow gives +inf, x < -104 gives 0, NaN stays NaN. */
QRM_ARM_INLINE float32x4_t exp_f32x4(float32x4_t x) {
    const float32x4_t log2e = vdupq_n_f32(1.44269504088896341f);
    const float32x4_t ln2_hi = vdupq_n_f32(0.693145751953125f); /* 15 significant bits */
    const float32x4_t ln2_lo = vdupq_n_f32(1.428606765330187e-06f);
    /* vminq/vmaxq propagate NaN (fminnm would replace it by the bound). */
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0f)), vdupq_n_f32(89.0f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, log2e));
    float32x4_t r = vfmsq_f32(x, n, ln2_hi);
    r = vfmsq_f32(r, n, ln2_lo);
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t ni = vcvtq_s32_f32(n); /* -150..129 (NaN -> 0) */
    uint32x4_t big = vcagtq_f32(x, vdupq_n_f32(87.0f));
    if (vmaxvq_u32(big) == 0) /* common case: 2^n is a normal float */
        return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), vshlq_n_s32(ni, 23)));
    /* Near overflow or underflow: scale in two normal steps, so that the
     * final multiply rounds once (into a subnormal, or to inf). */
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    int32x4_t bias = vdupq_n_s32(127);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}

void qrm_neon_exp4_f32(const float *x, float *out) { vst1q_f32(out, exp_f32x4(vld1q_f32(x))); }

/* ---- reductions and elementwise ops ---- */

float qrm_neon_dot_f32(const float *a, const float *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) { /* four chains hide the fmla latency */
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float acc = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) acc += a[i] * b[i];
    return acc;
}

void qrm_neon_axpy_f32(float *y, float a, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

void qrm_neon_scale_f32(float *y, float a, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++) y[i] *= a;
}

void qrm_neon_rmsnorm_f32(float *out, const float *x, const float *w, int n, float eps) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
        s0 = vfmaq_f32(s0, a, a);
        s1 = vfmaq_f32(s1, b, b);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t a = vld1q_f32(x + i);
        s0 = vfmaq_f32(s0, a, a);
    }
    float ss = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), inv), vld1q_f32(w + i)));
    for (; i < n; i++) out[i] = x[i] * inv * w[i];
}

/* exp of one lane through the vector routine, so tails match the body. */
static float exp1(float x) {
    float in[4] = {x, x, x, x}, out[4];
    qrm_neon_exp4_f32(in, out);
    return out[0];
}

void qrm_neon_softmax_f32(float *x, int n) {
    float mx = -INFINITY;
    int i = 0;
    if (n >= 4) {
        float32x4_t m = vld1q_f32(x);
        for (i = 4; i + 4 <= n; i += 4) m = vmaxnmq_f32(m, vld1q_f32(x + i));
        mx = vmaxnmvq_f32(m);
    }
    for (; i < n; i++) mx = fmaxf(mx, x[i]);
    float32x4_t vmx = vdupq_n_f32(mx), vs = vdupq_n_f32(0);
    float sum = 0.0f;
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = exp_f32x4(vsubq_f32(vld1q_f32(x + i), vmx));
        vst1q_f32(x + i, e);
        vs = vaddq_f32(vs, e);
    }
    for (; i < n; i++) {
        x[i] = exp1(x[i] - mx);
        sum += x[i];
    }
    sum += vaddvq_f32(vs);
    qrm_neon_scale_f32(x, 1.0f / sum, n);
}

/* silu(g) * u = g / (1 + exp(-g)) * u */
void qrm_neon_silu_mul_f32(float *gate, const float *up, int n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t g = vld1q_f32(gate + i);
        float32x4_t s = vdivq_f32(g, vaddq_f32(one, exp_f32x4(vnegq_f32(g))));
        vst1q_f32(gate + i, vmulq_f32(s, vld1q_f32(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + exp1(-gate[i])) * up[i];
}

/* gelu_tanh(g) = g/2 (1 + tanh(v)) = g / (1 + exp(-2v)), v = sqrt(2/pi) (g + 0.044715 g^3).
 * The sigmoid form has no cancellation where tanh(v) is near -1. */
QRM_ARM_INLINE float32x4_t gelu_tanh_f32x4(float32x4_t g) {
    const float32x4_t m2c = vdupq_n_f32(-2.0f * 0.7978845608028654f);
    float32x4_t g3 = vmulq_f32(vmulq_f32(g, g), g);
    float32x4_t v = vfmaq_n_f32(g, g3, 0.044715f);
    float32x4_t e = exp_f32x4(vmulq_f32(v, m2c));
    return vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e));
}

void qrm_neon_gelu_tanh_mul_f32(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(gate + i, vmulq_f32(gelu_tanh_f32x4(vld1q_f32(gate + i)), vld1q_f32(up + i)));
    if (i < n) { /* tail through a padded vector */
        float g[4] = {0, 0, 0, 0}, out[4];
        for (int j = 0; j < n - i; j++) g[j] = gate[i + j];
        vst1q_f32(out, gelu_tanh_f32x4(vld1q_f32(g)));
        for (int j = 0; j < n - i; j++) gate[i + j] = out[j] * up[i + j];
    }
}

void qrm_neon_rope_neox_f32(float *x, const float *cos, const float *sin, int head_dim) {
    int h = head_dim / 2, i = 0;
    for (; i + 4 <= h; i += 4) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + h);
        float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
        vst1q_f32(x + i, vfmsq_f32(vmulq_f32(x0, c), x1, s));
        vst1q_f32(x + i + h, vfmaq_f32(vmulq_f32(x1, c), x0, s));
    }
    for (; i < h; i++) {
        float x0 = x[i], x1 = x[i + h];
        x[i] = x0 * cos[i] - x1 * sin[i];
        x[i + h] = x1 * cos[i] + x0 * sin[i];
    }
}

/* f32 -> f16 (the K/V cache): fcvtn (ARMv8.0) rounds as FPCR says, which is
 * to nearest even unless a caller changed it; the tail in portable C. */
void qrm_neon_f32_to_f16(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) dst[i] = qrm_f32_to_f16(src[i]);
}
