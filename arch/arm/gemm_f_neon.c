/* Float GEMMs (f32 and f16 weights, row-major W[N][K]) on ARMv8.0 Advanced
 * SIMD. Both operands run along K, so a tile of T tokens x R weight rows
 * keeps T*R vector accumulators and loads T + R vectors per 4 k: every
 * loaded weight vector serves T tokens, every activation vector R rows.
 *   M >= 2: 4 tokens x 4 rows (16 fmla per 8 loads)
 *   M == 1: 1 token x 8 rows (8 independent fmla chains, enough to hide
 *           the fmla latency while the weights stream from memory)
 * f16 weights are widened with fcvtl, which is exact (ARMv8.0, no +fp16). */
#include <arm_neon.h>

#include "f16.h"
#include "kernels_arm.h"

QRM_ARM_INLINE float32x4_t load_w4(const void *w, int is_f16, size_t i) {
    if (is_f16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
    return vld1q_f32((const float *)w + i);
}

QRM_ARM_INLINE float w_at(const void *w, int is_f16, size_t i) {
    return is_f16 ? qrm_f16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

/* y[m0 + t][n + r] for t < T, r < R (T <= 4, R <= 8, T * R <= 16). */
QRM_ARM_INLINE void tile_f(const float *x, size_t ldx, int T, const void *w, int is_f16, int K,
                           int n, int R, float *y, size_t ldy) {
    float32x4_t acc[4][8];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) acc[t][r] = vdupq_n_f32(0.0f);
    int k = 0;
    for (; k + 4 <= K; k += 4) {
        float32x4_t xv[4], wv[8];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) xv[t] = vld1q_f32(x + t * ldx + k);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = load_w4(w, is_f16, (size_t)(n + r) * K + k);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[t][r] = vfmaq_f32(acc[t][r], xv[t], wv[r]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            float s = vaddvq_f32(acc[t][r]);
            for (int kk = k; kk < K; kk++)
                s += x[t * ldx + kk] * w_at(w, is_f16, (size_t)(n + r) * K + kk);
            y[t * ldy + n + r] = s;
        }
}

QRM_ARM_INLINE void gemm_f(const float *x, size_t ldx, int M, const void *w, int is_f16, int K,
                           int n0, int n1, float *y, size_t ldy) {
    if (M == 1) {
        int n = n0;
        for (; n + 8 <= n1; n += 8) tile_f(x, ldx, 1, w, is_f16, K, n, 8, y, ldy);
        for (; n < n1; n++) tile_f(x, ldx, 1, w, is_f16, K, n, 1, y, ldy);
        return;
    }
    /* Token blocks of 16 keep their activations in L1 while the weight rows
     * of [n0, n1) stream past once per block. */
    for (int mb = 0; mb < M; mb += 16) {
        int me = mb + 16 < M ? mb + 16 : M;
        for (int n = n0; n < n1; n += 4) {
            int R = n1 - n < 4 ? n1 - n : 4;
            for (int m = mb; m < me; m += 4) {
                int T = me - m < 4 ? me - m : 4;
                const float *xm = x + (size_t)m * ldx;
                float *ym = y + (size_t)m * ldy;
                /* constant T and R let every accumulator live in a register */
                if (T == 4 && R == 4) tile_f(xm, ldx, 4, w, is_f16, K, n, 4, ym, ldy);
                else if (R == 4 && T == 3) tile_f(xm, ldx, 3, w, is_f16, K, n, 4, ym, ldy);
                else if (R == 4 && T == 2) tile_f(xm, ldx, 2, w, is_f16, K, n, 4, ym, ldy);
                else /* edges: one token x one row at a time */
                    for (int t = 0; t < T; t++)
                        for (int r = 0; r < R; r++)
                            tile_f(xm + t * ldx, ldx, 1, w, is_f16, K, n + r, 1, ym + t * ldy,
                                   ldy);
            }
        }
    }
}

void qrm_neon_gemm_f32(const float *x, size_t ldx, int M, const float *w, int K, int n0, int n1,
                       float *y, size_t ldy) {
    gemm_f(x, ldx, M, w, 0, K, n0, n1, y, ldy);
}

void qrm_neon_gemm_f16(const float *x, size_t ldx, int M, const uint16_t *w, int K, int n0,
                       int n1, float *y, size_t ldy) {
    gemm_f(x, ldx, M, w, 1, K, n0, n1, y, ldy);
}
