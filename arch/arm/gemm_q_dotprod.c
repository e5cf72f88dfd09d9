/* Quantized GEMM (q8 / q4 weights x q8 activations) with sdot by element
 * (ARMv8.2 dotprod). A 16-byte register of the packed layout holds 4 rows x
 * 4 consecutive k (arch/kernels.h), which is exactly the first operand of
 * sdot v.4s, w.16b, a.4b[lane]: lane i of the activation register holds the
 * 4 activations of k4 step i, and each int32 lane of the result gains one
 * row's 4-term dot product. 16 MACs per instruction, no widening steps.
 *
 * Tiles:
 *   prefill  8 rows x 4 tokens: every weight register feeds 4 sdot (one per
 *            token); 8 int32 + 8 float accumulators, 8 activation registers.
 *   GEMV     16 rows x 1 token (M = 1): each weight byte is used once, so
 *            the point is streaming; even and odd k4 steps go to separate
 *            accumulators, giving 8 independent sdot chains.
 * q4 weights are unpacked to 16 x (u - 8) (qrm_arm_unpack_q4x16) and the
 * scale divided by 16, so the integer sums are those of the reference x 16. */
#include "kernels_arm.h"

/* Rows 8*h0 .. 8*(h0 + H) - 1 of panel p, tokens m0 .. m0 + T - 1, all of K.
 * split: even / odd k4 steps in separate accumulators (GEMV latency). */
QRM_ARM_INLINE void tile_dotprod(const qrm_qact *a, int m0, int T, const qrm_qweight *w, int p,
                                 int h0, int H, int q4, int split, int from_y, float *y,
                                 size_t ldy) {
    const int G = w->K / QRM_QK;
    const float unit = q4 ? 1.0f / 16.0f : 1.0f;
    float32x4_t facc[4][4];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int c = 0; c < 2 * H; c++) /* from_y: gemm_q8_acc */
            facc[t][c] = from_y ? vld1q_f32(y + (size_t)(m0 + t) * ldy + (size_t)p * QRM_PANEL +
                                            (size_t)(8 * h0 + 4 * c))
                                : vdupq_n_f32(0.0f);

    for (int g = 0; g < G; g++) {
        const uint8_t *blk = qrm_arm_block(w, p, g, q4);
        int32x4_t acc[2][4][4]; /* [parity][t][c]: chunk c = 4 rows */
        int8x16_t a0[4], a1[4]; /* k 0..15 and 16..31 of the group */
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const int8_t *qa = a->q + (size_t)(m0 + t) * a->K + (size_t)g * QRM_QK;
            a0[t] = vld1q_s8(qa);
            a1[t] = vld1q_s8(qa + 16);
#pragma GCC unroll 4
            for (int c = 0; c < 2 * H; c++) acc[0][t][c] = acc[1][t][c] = vdupq_n_s32(0);
        }
#define CHUNK(c) ((size_t)(2 * h0 + (c)) * 16)
        /* one k4 step: weights WV (4 rows per chunk) against lane L of AV */
#define STEP(WV, AV, L, PAR)                                                                 \
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++)                                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < 2 * H; c++)                              \
            acc[split ? (PAR) : 0][t][c] = vdotq_laneq_s32(acc[split ? (PAR) : 0][t][c],     \
                                                           WV[c], AV[t], L);
        if (!q4) {
            const int8_t *b8 = (const int8_t *)blk;
#define Q8STEP(K4, AV, L)                                                                    \
    do {                                                                                     \
        int8x16_t wv[4];                                                                     \
        _Pragma("GCC unroll 4") for (int c = 0; c < 2 * H; c++) wv[c] =                      \
            vld1q_s8(b8 + (K4) * 64 + CHUNK(c));                                             \
        STEP(wv, AV, L, (K4) & 1)                                                            \
    } while (0)
            Q8STEP(0, a0, 0);
            Q8STEP(1, a0, 1);
            Q8STEP(2, a0, 2);
            Q8STEP(3, a0, 3);
            Q8STEP(4, a1, 0);
            Q8STEP(5, a1, 1);
            Q8STEP(6, a1, 2);
            Q8STEP(7, a1, 3);
#undef Q8STEP
        } else {
            /* raw bytes of k4 step K4 hold K4 (low nibbles) and K4 + 4 (high) */
#define Q4STEPS(K4)                                                                          \
    do {                                                                                     \
        int8x16_t lo[4], hi[4];                                                              \
        _Pragma("GCC unroll 4") for (int c = 0; c < 2 * H; c++)                              \
            qrm_arm_unpack_q4x16(vld1q_u8(blk + (K4) * 64 + CHUNK(c)), &lo[c], &hi[c]);      \
        STEP(lo, a0, K4, 0)                                                                  \
        STEP(hi, a1, K4, 1)                                                                  \
    } while (0)
            Q4STEPS(0);
            Q4STEPS(1);
            Q4STEPS(2);
            Q4STEPS(3);
#undef Q4STEPS
        }
#undef STEP
#undef CHUNK
        float32x4_t dw[4];
#pragma GCC unroll 2
        for (int hh = 0; hh < H; hh++)
            qrm_arm_wscale8(w, p, g, h0 + hh, &dw[2 * hh], &dw[2 * hh + 1]);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            float da = a->d[(size_t)(m0 + t) * G + g] * unit;
#pragma GCC unroll 4
            for (int c = 0; c < 2 * H; c++) {
                int32x4_t isum = split ? vaddq_s32(acc[0][t][c], acc[1][t][c]) : acc[0][t][c];
                facc[t][c] = vfmaq_f32(facc[t][c], vcvtq_f32_s32(isum), vmulq_n_f32(dw[c], da));
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int c = 0; c < 2 * H; c++)
            vst1q_f32(y + (size_t)(m0 + t) * ldy + (size_t)p * QRM_PANEL + (size_t)(8 * h0 + 4 * c),
                      facc[t][c]);
}

#define TILE_FN(name, T, H, Q4, SPLIT, FROM_Y)                                                 \
    static QRM_ARM_TILE void name(const qrm_qact *a, int m0, const qrm_qweight *w, int p,      \
                                  int h0, float *y, size_t ldy) {                              \
        tile_dotprod(a, m0, T, w, p, h0, H, Q4, SPLIT, FROM_Y, y, ldy);                        \
    }
TILE_FN(q8_8x4, 4, 1, 0, 0, 0)
TILE_FN(q8_8x3, 3, 1, 0, 0, 0)
TILE_FN(q8_8x2, 2, 1, 0, 0, 0)
TILE_FN(q8_8x1, 1, 1, 0, 1, 0)
TILE_FN(q8_16x1, 1, 2, 0, 1, 0)
TILE_FN(q8acc_8x4, 4, 1, 0, 0, 1)
TILE_FN(q8acc_8x3, 3, 1, 0, 0, 1)
TILE_FN(q8acc_8x2, 2, 1, 0, 0, 1)
TILE_FN(q8acc_8x1, 1, 1, 0, 1, 1)
TILE_FN(q8acc_16x1, 1, 2, 0, 1, 1)
TILE_FN(q4_8x4, 4, 1, 1, 0, 0)
TILE_FN(q4_8x3, 3, 1, 1, 0, 0)
TILE_FN(q4_8x2, 2, 1, 1, 0, 0)
TILE_FN(q4_8x1, 1, 1, 1, 1, 0)
TILE_FN(q4_16x1, 1, 2, 1, 1, 0)
#undef TILE_FN

typedef void tile_fn(const qrm_qact *a, int m0, const qrm_qweight *w, int p, int h0, float *y,
                     size_t ldy);

/* tiles[0] is the 16-row GEMV, tiles[T] the 8-row tile of T tokens */
static void gemm_dotprod(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                         size_t ldy, tile_fn *const tiles[5]) {
    if (a->M == 1) {
        for (int p = p0; p < p1; p++) tiles[0](a, 0, w, p, 0, y, ldy);
        return;
    }
    /* Blocks of 32 tokens: their activations stay in L1 while each weight
     * panel is read once per block. */
    for (int mb = 0; mb < a->M; mb += 32) {
        int me = mb + 32 < a->M ? mb + 32 : a->M;
        for (int p = p0; p < p1; p++)
            for (int h = 0; h < 2; h++) {
                int m = mb;
                for (; m + 4 <= me; m += 4) tiles[4](a, m, w, p, h, y, ldy);
                if (m < me) tiles[me - m](a, m, w, p, h, y, ldy);
            }
    }
}

void qrm_dotprod_gemm_q8(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                         size_t ldy) {
    static tile_fn *const tiles[5] = {q8_16x1, q8_8x1, q8_8x2, q8_8x3, q8_8x4};
    gemm_dotprod(a, w, p0, p1, y, ldy, tiles);
}

void qrm_dotprod_gemm_q8_acc(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                             size_t ldy) {
    static tile_fn *const tiles[5] = {q8acc_16x1, q8acc_8x1, q8acc_8x2, q8acc_8x3, q8acc_8x4};
    gemm_dotprod(a, w, p0, p1, y, ldy, tiles);
}

void qrm_dotprod_gemm_q4(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                         size_t ldy) {
    static tile_fn *const tiles[5] = {q4_16x1, q4_8x1, q4_8x2, q4_8x3, q4_8x4};
    gemm_dotprod(a, w, p0, p1, y, ldy, tiles);
}
