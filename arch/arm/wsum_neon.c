/* Attention's weighted sum of V rows for NEON: out += sum_t w[t] V[t], 16
 * outputs in four q registers while the rows stream past. */
#include <arm_neon.h>

#include "kernels_arm.h"

void qrm_neon_wsum_rows_f32(float *out, const float *w, const float *rows, int n, int d) {
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        float32x4_t a0 = vld1q_f32(out + i), a1 = vld1q_f32(out + i + 4);
        float32x4_t a2 = vld1q_f32(out + i + 8), a3 = vld1q_f32(out + i + 12);
        const float *r = rows + i;
        for (int t = 0; t < n; t++, r += d) {
            float wt = w[t];
            a0 = vfmaq_n_f32(a0, vld1q_f32(r), wt);
            a1 = vfmaq_n_f32(a1, vld1q_f32(r + 4), wt);
            a2 = vfmaq_n_f32(a2, vld1q_f32(r + 8), wt);
            a3 = vfmaq_n_f32(a3, vld1q_f32(r + 12), wt);
        }
        vst1q_f32(out + i, a0), vst1q_f32(out + i + 4, a1);
        vst1q_f32(out + i + 8, a2), vst1q_f32(out + i + 12, a3);
    }
    for (; i + 4 <= d; i += 4) {
        float32x4_t a = vld1q_f32(out + i);
        for (int t = 0; t < n; t++) a = vfmaq_n_f32(a, vld1q_f32(rows + (size_t)t * d + i), w[t]);
        vst1q_f32(out + i, a);
    }
    for (; i < d; i++) {
        float a = out[i];
        for (int t = 0; t < n; t++) a = __builtin_fmaf(w[t], rows[(size_t)t * d + i], a);
        out[i] = a;
    }
}
