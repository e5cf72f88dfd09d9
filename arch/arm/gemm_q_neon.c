/* Quantized GEMM (q8 / q4 weights x q8 activations) on ARMv8.0 Advanced
 * SIMD, without sdot: smull / smlal multiply 8 int8 pairs into int16 lanes,
 * and sadalp folds neighbouring int16 lanes into int32 accumulators.
 *
 * A weight register holds 4 rows x 4 consecutive k (arch/kernels.h). The
 * activation's matching 4 bytes are broadcast to all four rows (dup of one
 * 32-bit lane), so smull of the low halves gives rows 0-1 x k0..3 and smull2
 * of the high halves rows 2-3. smlal adds the next k4 step into the same
 * int16 lanes: two products of |w| <= 128 and |a| <= 127 stay below 32767.
 * sadalp then sums pairs into int32 lanes [r0 k01, r0 k23, r1 k01, r1 k23],
 * and one addp per group reduces them to one lane per row.
 *
 * Per 4 rows x 8 k: 2 smull + 2 smlal + 2 sadalp = 64 MACs in 6 instructions.
 * Tiles: prefill 8 rows x 2 tokens (every weight vector serves 2 tokens),
 * GEMV (M = 1) 16 rows x 1 token, so the weights stream past once. */
#include "kernels_arm.h"

/* Two k4 steps of 4 rows for one token: lo covers rows 0-1, hi rows 2-3. */
QRM_ARM_INLINE void mac2(int32x4_t *lo, int32x4_t *hi, int8x16_t we, int8x16_t ae, int8x16_t wo,
                         int8x16_t ao) {
    int16x8_t l = vmull_s8(vget_low_s8(we), vget_low_s8(ae));
    l = vmlal_s8(l, vget_low_s8(wo), vget_low_s8(ao));
    int16x8_t h = vmull_high_s8(we, ae);
    h = vmlal_high_s8(h, wo, ao);
    *lo = vpadalq_s16(*lo, l);
    *hi = vpadalq_s16(*hi, h);
}

#define DUP_LANE(v, lane) vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(v), lane))

/* Rows 8*h0 .. 8*(h0 + H) - 1 of panel p for tokens m0 .. m0 + T - 1, all of K.
 * Chunk c < 2H is 4 rows: weight bytes (2*h0 + c) * 16 of each k4 line. */
QRM_ARM_INLINE void tile_neon(const qrm_qact *a, int m0, int T, const qrm_qweight *w, int p,
                              int h0, int H, int q4, int from_y, float *y, size_t ldy) {
    const int G = w->K / QRM_QK;
    const float unit = q4 ? 1.0f / 16.0f : 1.0f; /* q4 weights come out times 16 */
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
        int32x4_t acc[4][8]; /* [t][2c] rows 0-1 of chunk c, [t][2c + 1] rows 2-3 */
        int8x16_t a0[4], a1[4]; /* k 0..15 and 16..31 of the group */
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const int8_t *qa = a->q + (size_t)(m0 + t) * a->K + (size_t)g * QRM_QK;
            a0[t] = vld1q_s8(qa);
            a1[t] = vld1q_s8(qa + 16);
#pragma GCC unroll 8
            for (int c = 0; c < 4 * H; c++) acc[t][c] = vdupq_n_s32(0);
        }
        /* k4 steps (L, L+1) of activation register AV against weights WE, WO */
#define PAIR(WE, WO, AV, L)                                                                  \
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {                                    \
        int8x16_t e = DUP_LANE(AV[t], L), o = DUP_LANE(AV[t], (L) + 1);                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < 2 * H; c++)                              \
            mac2(&acc[t][2 * c], &acc[t][2 * c + 1], WE[c], e, WO[c], o);                    \
    }
#define CHUNK(c) ((size_t)(2 * h0 + (c)) * 16)
        if (!q4) {
            const int8_t *b8 = (const int8_t *)blk;
#define Q8PAIR(K4, AV, L)                                                                    \
    do {                                                                                     \
        int8x16_t we[4], wo[4];                                                              \
        _Pragma("GCC unroll 4") for (int c = 0; c < 2 * H; c++) {                            \
            we[c] = vld1q_s8(b8 + (K4) * 64 + CHUNK(c));                                     \
            wo[c] = vld1q_s8(b8 + ((K4) + 1) * 64 + CHUNK(c));                               \
        }                                                                                    \
        PAIR(we, wo, AV, L)                                                                  \
    } while (0)
            Q8PAIR(0, a0, 0);
            Q8PAIR(2, a0, 2);
            Q8PAIR(4, a1, 0);
            Q8PAIR(6, a1, 2);
#undef Q8PAIR
        } else {
            /* the raw bytes of k4 steps K4, K4+1 also hold K4+4, K4+5 (high nibbles) */
#define Q4PAIRS(K4)                                                                          \
    do {                                                                                     \
        uint8x16_t te[4], to[4]; /* raw bytes xor 0x88 (see qrm_arm_unpack_q4x16) */         \
        int8x16_t we[4], wo[4];                                                              \
        _Pragma("GCC unroll 4") for (int c = 0; c < 2 * H; c++) {                            \
            te[c] = veorq_u8(vld1q_u8(blk + (K4) * 64 + CHUNK(c)), vdupq_n_u8(0x88));        \
            to[c] = veorq_u8(vld1q_u8(blk + ((K4) + 1) * 64 + CHUNK(c)), vdupq_n_u8(0x88));  \
            we[c] = vreinterpretq_s8_u8(vshlq_n_u8(te[c], 4));                               \
            wo[c] = vreinterpretq_s8_u8(vshlq_n_u8(to[c], 4));                               \
        }                                                                                    \
        PAIR(we, wo, a0, K4)                                                                 \
        _Pragma("GCC unroll 4") for (int c = 0; c < 2 * H; c++) {                            \
            we[c] = vreinterpretq_s8_u8(vandq_u8(te[c], vdupq_n_u8(0xF0)));                  \
            wo[c] = vreinterpretq_s8_u8(vandq_u8(to[c], vdupq_n_u8(0xF0)));                  \
        }                                                                                    \
        PAIR(we, wo, a1, K4)                                                                 \
    } while (0)
            Q4PAIRS(0);
            Q4PAIRS(2);
#undef Q4PAIRS
        }
#undef CHUNK
#undef PAIR
        /* y += da * dw * isum, with dw / 16 for q4 (exact: a power of two) */
        float32x4_t dw[4];
#pragma GCC unroll 2
        for (int hh = 0; hh < H; hh++) qrm_arm_wscale8(w, p, g, h0 + hh, &dw[2 * hh], &dw[2 * hh + 1]);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            float da = a->d[(size_t)(m0 + t) * G + g] * unit;
#pragma GCC unroll 4
            for (int c = 0; c < 2 * H; c++) {
                int32x4_t isum = vpaddq_s32(acc[t][2 * c], acc[t][2 * c + 1]);
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

/* The tile shapes in use, each compiled with constant T, H and q4 so that
 * accumulators live in registers. */
#define TILE_FN(name, T, H, Q4, FROM_Y)                                                       \
    static QRM_ARM_TILE void name(const qrm_qact *a, int m0, const qrm_qweight *w, \
                                               int p, int h0, float *y, size_t ldy) {         \
        tile_neon(a, m0, T, w, p, h0, H, Q4, FROM_Y, y, ldy);                               \
    }
TILE_FN(q8_8x2, 2, 1, 0, 0)
TILE_FN(q8_8x1, 1, 1, 0, 0)
TILE_FN(q8_16x1, 1, 2, 0, 0)
TILE_FN(q8acc_8x2, 2, 1, 0, 1)
TILE_FN(q8acc_8x1, 1, 1, 0, 1)
TILE_FN(q8acc_16x1, 1, 2, 0, 1)
TILE_FN(q4_8x2, 2, 1, 1, 0)
TILE_FN(q4_8x1, 1, 1, 1, 0)
TILE_FN(q4_16x1, 1, 2, 1, 0)
#undef TILE_FN

typedef void tile_fn(const qrm_qact *a, int m0, const qrm_qweight *w, int p, int h0, float *y,
                     size_t ldy);

static void gemm_neon(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy, tile_fn *t8x2, tile_fn *t8x1, tile_fn *t16x1) {
    if (a->M == 1) {
        for (int p = p0; p < p1; p++) t16x1(a, 0, w, p, 0, y, ldy);
        return;
    }
    /* Blocks of 32 tokens: their activations stay in L1/L2 while each weight
     * panel is read once per block. */
    for (int mb = 0; mb < a->M; mb += 32) {
        int me = mb + 32 < a->M ? mb + 32 : a->M;
        for (int p = p0; p < p1; p++)
            for (int h = 0; h < 2; h++) {
                int m = mb;
                for (; m + 2 <= me; m += 2) t8x2(a, m, w, p, h, y, ldy);
                if (m < me) t8x1(a, m, w, p, h, y, ldy);
            }
    }
}

void qrm_neon_gemm_q8(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy) {
    gemm_neon(a, w, p0, p1, y, ldy, q8_8x2, q8_8x1, q8_16x1);
}

void qrm_neon_gemm_q8_acc(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                          size_t ldy) {
    gemm_neon(a, w, p0, p1, y, ldy, q8acc_8x2, q8acc_8x1, q8acc_16x1);
}

void qrm_neon_gemm_q4(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy) {
    gemm_neon(a, w, p0, p1, y, ldy, q4_8x2, q4_8x1, q4_16x1);
}
