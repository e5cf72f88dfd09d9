/* Activation quantization on ARMv8.0 Advanced SIMD, bit-identical to
 * qrm_ref_quantize_group: the same float ops in the same order (max of |x|,
 * one division for 127 / amax, one multiply per element), and fcvtns rounds
 * half to even like nearbyintf in the default rounding mode. */
#include <arm_neon.h>

#include "kernels_arm.h"

static void quantize_group(const float *x, int8_t *q, float *d, int32_t *s) {
    float32x4_t v[8];
    for (int i = 0; i < 8; i++) v[i] = vld1q_f32(x + 4 * i);
    /* fmaxnm ignores a NaN like fmaxf does; start from 0 like the reference */
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int i = 0; i < 8; i++) m = vmaxnmq_f32(m, vabsq_f32(v[i]));
    float amax = vmaxnmvq_f32(m);
    float id = amax >= QRM_QACT_MIN_AMAX ? 127.0f / amax : 0.0f;
    const int32x4_t lim = vdupq_n_s32(127);
    int32x4_t sum = vdupq_n_s32(0), c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], id));
        c[i] = vmaxq_s32(vminq_s32(c[i], lim), vnegq_s32(lim));
        sum = vaddq_s32(sum, c[i]);
    }
    for (int i = 0; i < 8; i += 4) {
        int16x8_t lo = vcombine_s16(vmovn_s32(c[i]), vmovn_s32(c[i + 1]));
        int16x8_t hi = vcombine_s16(vmovn_s32(c[i + 2]), vmovn_s32(c[i + 3]));
        vst1q_s8(q + 4 * i, vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));
    }
    *d = amax / 127.0f;
    *s = vaddvq_s32(sum);
}

void qrm_neon_quantize_act(const float *x, size_t ldx, qrm_qact *a) {
    int G = a->K / QRM_QK;
    for (int m = 0; m < a->M; m++)
        for (int g = 0; g < G; g++)
            quantize_group(x + (size_t)m * ldx + (size_t)g * QRM_QK,
                           a->q + (size_t)m * a->K + (size_t)g * QRM_QK,
                           a->d + (size_t)m * G + g, a->s + (size_t)m * G + g);
}
