/* The scalar reference family: plain C, no intrinsics. Every SIMD kernel is
 * tested against these (tests/test_kernels.c), and they define the meaning
 * of the packed weight layouts (arch/kernels.h). Written for clarity first. */
#include <math.h>

#include "f16.h"
#include "kernels.h"
#include "kernels_ref.h"

/* ---- packed-layout accessors (the definition of the q8 / q4 layouts) ---- */

int8_t qrm_ref_q8_get(const qrm_qweight *w, int n, int k) {
    int G = w->K / QRM_QK, p = n / QRM_PANEL, r = n % QRM_PANEL, g = k / QRM_QK, kk = k % QRM_QK;
    size_t block = ((size_t)p * G + g) * 512;
    return (int8_t)w->q[block + (size_t)(kk / 4) * 64 + r * 4 + kk % 4];
}

int qrm_ref_q4_get(const qrm_qweight *w, int n, int k) {
    int G = w->K / QRM_QK, p = n / QRM_PANEL, r = n % QRM_PANEL, g = k / QRM_QK, kk = k % QRM_QK;
    size_t block = ((size_t)p * G + g) * 256;
    int e = (kk / 4) * 64 + r * 4 + kk % 4;
    uint8_t byte = w->q[block + (e & 255)];
    return (e < 256 ? (byte & 15) : (byte >> 4)) - 8;
}

float qrm_ref_w_scale(const qrm_qweight *w, int n, int g) {
    int G = w->K / QRM_QK, p = n / QRM_PANEL, r = n % QRM_PANEL;
    return qrm_f16_to_f32(w->d[((size_t)p * G + g) * QRM_PANEL + r]);
}

/* ---- activation quantization ---- */

void qrm_ref_quantize_group(const float *x, int8_t *q, float *d, int32_t *s) {
    float amax = 0.0f;
    for (int i = 0; i < QRM_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
    float id = amax >= QRM_QACT_MIN_AMAX ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < QRM_QK; i++) {
        /* nearbyintf rounds half to even in the default mode, like cvtps2dq / fcvtns */
        int v = (int)nearbyintf(x[i] * id);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[i] = (int8_t)v;
        sum += v;
    }
    *d = amax / 127.0f;
    *s = sum;
}

static void quantize_act_scalar(const float *x, size_t ldx, qrm_qact *a) {
    int G = a->K / QRM_QK;
    for (int m = 0; m < a->M; m++)
        for (int g = 0; g < G; g++)
            qrm_ref_quantize_group(x + m * ldx + g * QRM_QK, a->q + (size_t)m * a->K + g * QRM_QK,
                                   a->d + (size_t)m * G + g, a->s + (size_t)m * G + g);
}

/* ---- quantized GEMM ---- */

static int q8_get(const qrm_qweight *w, int n, int k) { return qrm_ref_q8_get(w, n, k); }

/* Both packed types: exact int32 sums per group, then scaled in float. */
static void gemm_q_scalar(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                          size_t ldy, int (*get)(const qrm_qweight *, int, int)) {
    int G = w->K / QRM_QK;
    for (int m = 0; m < a->M; m++) {
        const int8_t *qa = a->q + (size_t)m * a->K;
        for (int n = p0 * QRM_PANEL; n < p1 * QRM_PANEL; n++) {
            float acc = 0.0f;
            for (int g = 0; g < G; g++) {
                int32_t isum = 0;
                for (int kk = 0; kk < QRM_QK; kk++)
                    isum += qa[g * QRM_QK + kk] * get(w, n, g * QRM_QK + kk);
                acc += a->d[(size_t)m * G + g] * qrm_ref_w_scale(w, n, g) * (float)isum;
            }
            y[m * ldy + n] = acc;
        }
    }
}

static void gemm_q8_scalar(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                           size_t ldy) {
    gemm_q_scalar(a, w, p0, p1, y, ldy, q8_get);
}

static void gemm_q4_scalar(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                           size_t ldy) {
    gemm_q_scalar(a, w, p0, p1, y, ldy, qrm_ref_q4_get);
}

/* ---- float GEMM ---- */

static void gemm_f32_scalar(const float *x, size_t ldx, int M, const float *w, int K, int n0,
                            int n1, float *y, size_t ldy) {
    for (int m = 0; m < M; m++)
        for (int n = n0; n < n1; n++) {
            const float *xr = x + m * ldx, *wr = w + (size_t)n * K;
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc += xr[k] * wr[k];
            y[m * ldy + n] = acc;
        }
}

static void gemm_f16_scalar(const float *x, size_t ldx, int M, const uint16_t *w, int K, int n0,
                            int n1, float *y, size_t ldy) {
    for (int m = 0; m < M; m++)
        for (int n = n0; n < n1; n++) {
            const float *xr = x + m * ldx;
            const uint16_t *wr = w + (size_t)n * K;
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc += xr[k] * qrm_f16_to_f32(wr[k]);
            y[m * ldy + n] = acc;
        }
}

/* ---- float building blocks ---- */

static float dot_f32_scalar(const float *a, const float *b, int n) {
    float acc = 0.0f;
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

static void axpy_f32_scalar(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_f32_scalar(float *y, float a, int n) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

static void rmsnorm_f32_scalar(float *out, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * inv * w[i];
}

static void softmax_f32_scalar(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

static void silu_mul_f32_scalar(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void gelu_tanh_mul_f32_scalar(float *gate, const float *up, int n) {
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int i = 0; i < n; i++) {
        float x = gate[i];
        gate[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x))) * up[i];
    }
}

static void rope_neox_f32_scalar(float *x, const float *cos, const float *sin, int head_dim) {
    int h = head_dim / 2;
    for (int i = 0; i < h; i++) {
        float x0 = x[i], x1 = x[i + h];
        x[i] = x0 * cos[i] - x1 * sin[i];
        x[i + h] = x1 * cos[i] + x0 * sin[i];
    }
}

static void wsum_rows_f32_scalar(float *out, size_t ldo, const float *w, size_t ldw, int M,
                                 const float *rows, int n, int d) {
    for (int m = 0; m < M; m++)
        for (int t = 0; t < n; t++)
            for (int i = 0; i < d; i++) out[m * ldo + i] += w[m * ldw + t] * rows[(size_t)t * d + i];
}

static void wsum_rows_f16_scalar(float *out, size_t ldo, const float *w, size_t ldw, int M,
                                 const uint16_t *rows, int n, int d) {
    for (int m = 0; m < M; m++)
        for (int t = 0; t < n; t++)
            for (int i = 0; i < d; i++)
                out[m * ldo + i] += w[m * ldw + t] * qrm_f16_to_f32(rows[(size_t)t * d + i]);
}

static void f32_to_f16_scalar(uint16_t *dst, const float *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = qrm_f32_to_f16(src[i]);
}

static const qrm_kernels scalar_kernels = {
    .name = "scalar",
    .quantize_act = quantize_act_scalar,
    .gemm_q8 = gemm_q8_scalar,
    .gemm_q4 = gemm_q4_scalar,
    .gemm_f32 = gemm_f32_scalar,
    .gemm_f16 = gemm_f16_scalar,
    .dot_f32 = dot_f32_scalar,
    .axpy_f32 = axpy_f32_scalar,
    .scale_f32 = scale_f32_scalar,
    .rmsnorm_f32 = rmsnorm_f32_scalar,
    .softmax_f32 = softmax_f32_scalar,
    .silu_mul_f32 = silu_mul_f32_scalar,
    .gelu_tanh_mul_f32 = gelu_tanh_mul_f32_scalar,
    .rope_neox_f32 = rope_neox_f32_scalar,
    .wsum_rows_f32 = wsum_rows_f32_scalar,
    .wsum_rows_f16 = wsum_rows_f16_scalar,
    .f32_to_f16 = f32_to_f16_scalar,
};

const qrm_kernels *qrm_kernels_scalar(void) { return &scalar_kernels; }
