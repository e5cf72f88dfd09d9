/* The scalar reference family: plain C, no intrinsics. Every SIMD kernel is
 * tested against these (tests/test_kernels.c), and they define the meaning
 * of the packed weight layouts (arch/kernels.h). Written for clarity first.
 * The float kernels are the shared ones (arch/scalar/float_scalar.c). */
#include <math.h>

#include "f16.h"
#include "float_kernels.h"
#include "kernels.h"
#include "kernels_ref.h"

/* ---- packed-layout accessors (the definition of the q8 / q4 layouts) ---- */

int8_t qrm_ref_q8_get(const qrm_qweight *w, int n, int k) {
    int p = n / QRM_PANEL, r = n % QRM_PANEL, g = k / QRM_QK, kk = k % QRM_QK;
    size_t block = ((size_t)p * qrm_qw_pgroups(w) + g) * 512;
    return (int8_t)w->q[block + (size_t)(kk / 4) * 64 + r * 4 + kk % 4];
}

int qrm_ref_q4_get(const qrm_qweight *w, int n, int k) {
    int p = n / QRM_PANEL, r = n % QRM_PANEL, g = k / QRM_QK, kk = k % QRM_QK;
    size_t block = ((size_t)p * qrm_qw_pgroups(w) + g) * 256;
    int e = (kk / 4) * 64 + r * 4 + kk % 4;
    uint8_t byte = w->q[block + (e & 255)];
    return (e < 256 ? (byte & 15) : (byte >> 4)) - 8;
}

float qrm_ref_w_scale(const qrm_qweight *w, int n, int g) {
    int p = n / QRM_PANEL, r = n % QRM_PANEL;
    return qrm_f16_to_f32(w->d[((size_t)p * qrm_qw_pgroups(w) + g) * QRM_PANEL + r]);
}

/* ---- activation quantization ---- */

void qrm_ref_quantize_group(const float *x, int8_t *q, float *d, int32_t *s) {
    float amax = 0.0f;
    for (int i = 0; i < QRM_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
    float id = amax >= QRM_QACT_MIN_AMAX ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < QRM_QK; i++) {
        /* nearbyintf rounds half to even in the default mode, like cvtps2dq /
         * fcvtns. Clamped before the conversion: a NaN or an infinity (a
         * hostile model's weights can make them) must not reach (int), which
         * is undefined for them; a NaN gives 0. The families agree on every
         * finite x; on non-finite ones the score is meaningless anyway. */
        float t = x[i] * id;
        int v = t >= 127.0f ? 127 : t <= -127.0f ? -127 : t == t ? (int)nearbyintf(t) : 0;
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

/* Both packed types: exact int32 sums per group, then folded in with one
 * fused multiply-add per group in ascending order (the canonical float part
 * every family computes, arch/kernels.h). */
static void gemm_q_scalar(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                          size_t ldy, int (*get)(const qrm_qweight *, int, int), int from_y) {
    int G = w->K / QRM_QK;
    for (int m = 0; m < a->M; m++) {
        const int8_t *qa = a->q + (size_t)m * a->K;
        for (int n = p0 * QRM_PANEL; n < p1 * QRM_PANEL; n++) {
            float acc = from_y ? y[m * ldy + n] : 0.0f;
            for (int g = 0; g < G; g++) {
                int32_t isum = 0;
                for (int kk = 0; kk < QRM_QK; kk++)
                    isum += qa[g * QRM_QK + kk] * get(w, n, g * QRM_QK + kk);
                float dd = qrm_ref_w_scale(w, n, g) * a->d[(size_t)m * G + g];
                acc = fmaf((float)isum, dd, acc);
            }
            y[m * ldy + n] = acc;
        }
    }
}

static void gemm_q8_scalar(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                           size_t ldy) {
    gemm_q_scalar(a, w, p0, p1, y, ldy, q8_get, 0);
}

static void gemm_q8_acc_scalar(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                               size_t ldy) {
    gemm_q_scalar(a, w, p0, p1, y, ldy, q8_get, 1);
}

static void gemm_q4_scalar(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                           size_t ldy) {
    gemm_q_scalar(a, w, p0, p1, y, ldy, qrm_ref_q4_get, 0);
}

QRM_DEFINE_FAMILY(scalar, quantize_act_scalar, gemm_q8_scalar, gemm_q8_acc_scalar, gemm_q4_scalar, qrm_scalar_)
