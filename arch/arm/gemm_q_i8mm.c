/* Quantized GEMM (q8 / q4 weights x q8 activations) with smmla (ARMv8.6
 * i8mm). smmla multiplies a 2x8 int8 matrix by the transpose of another
 * 2x8 one into a 2x2 int32 tile: 32 MACs per instruction, twice sdot.
 *
 * Operands: the first is two tokens (A, B) x 8 consecutive k, i.e. 8 bytes
 * of each token's activations side by side. The second must be two weight
 * rows x the same 8 k, but the packed layout (arch/kernels.h) stores 4 k of
 * 4 rows per register: [r0 k0-3 | r1 k0-3 | r2 k0-3 | r3 k0-3] for one k4
 * step and the same for the next. zip1 / zip2 of those two registers at
 * 32-bit granularity give [r0 k0-7 | r1 k0-7] and [r2 k0-7 | r3 k0-7].
 * The result tile of rows (r, r+1) holds [A r, A r+1, B r, B r+1]; float
 * accumulators keep that order and are unzipped once, when stored.
 *
 * Tile: 8 rows x 4 tokens (two token pairs): every zipped weight register
 * feeds 2 smmla; 8 int32 + 8 float accumulators. An odd last token and
 * M = 1 go to the dotprod kernels (GEMV).
 *
 * Instruction count (no i8mm hardware here to time it; aarch64-linux-gnu-gcc
 * 12 -O2, counted in the disassembly): one 32-k group of the q8 8x4 tile is
 * 163 instructions for 32 smmla = 1024 MACs, 6.3 MACs per instruction (the
 * dotprod 8x4 tile: 159 for 64 sdot, 6.4). The rest is 24 zips (the packed
 * layout holds 4 k per row, smmla wants 8), the per-group float scaling and
 * addressing: the shared file layout, not smmla, sets the limit. */
#include "kernels_arm.h"

#define S32(v) vreinterpretq_s32_s8(v)
#define S8(v) vreinterpretq_s8_s32(v)

/* Rows 8*h .. 8*h + 7 of panel p for token pairs (m0 + 2i, m0 + 2i + 1), i < P. */
QRM_ARM_INLINE void tile_i8mm(const qrm_qact *a, int m0, int P, const qrm_qweight *w, int p,
                              int h, int q4, float *y, size_t ldy) {
    const int G = w->K / QRM_QK;
    const float unit = q4 ? 1.0f / 16.0f : 1.0f;
    const size_t c0 = (size_t)(2 * h) * 16, c1 = c0 + 16; /* rows 0-3 and 4-7 of the half */
    float32x4_t facc[2][4]; /* [pair][row pair rp]: [A 2rp, A 2rp+1, B 2rp, B 2rp+1] */
#pragma GCC unroll 2
    for (int i = 0; i < P; i++)
#pragma GCC unroll 4
        for (int rp = 0; rp < 4; rp++) facc[i][rp] = vdupq_n_f32(0.0f);

    for (int g = 0; g < G; g++) {
        const uint8_t *blk = qrm_arm_block(w, p, g, q4);
        int32x4_t acc[2][4];
        /* av[i][o]: octet o of pair i's two tokens side by side, from two
         * 16-byte loads per token and a 64-bit zip (8-byte loads and an
         * insert cost twice the instructions) */
        int8x16_t av[2][4];
#pragma GCC unroll 2
        for (int i = 0; i < P; i++) {
            const int8_t *qa = a->q + (size_t)(m0 + 2 * i) * a->K + (size_t)g * QRM_QK;
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                int64x2_t ra = vreinterpretq_s64_s8(vld1q_s8(qa + 16 * half));
                int64x2_t rb = vreinterpretq_s64_s8(vld1q_s8(qa + a->K + 16 * half));
                av[i][2 * half] = vreinterpretq_s8_s64(vzip1q_s64(ra, rb));
                av[i][2 * half + 1] = vreinterpretq_s8_s64(vzip2q_s64(ra, rb));
            }
#pragma GCC unroll 4
            for (int rp = 0; rp < 4; rp++) acc[i][rp] = vdupq_n_s32(0);
        }
        /* k 8o .. 8o + 7 from weight registers WE (k4 step 2o) and WO (2o + 1),
         * each [rows 0-3, rows 4-7] */
#define OCTET(WE, WO, o)                                                                     \
    do {                                                                                     \
        int8x16_t b[4];                                                                      \
        b[0] = S8(vzip1q_s32(S32(WE[0]), S32(WO[0])));                                       \
        b[1] = S8(vzip2q_s32(S32(WE[0]), S32(WO[0])));                                       \
        b[2] = S8(vzip1q_s32(S32(WE[1]), S32(WO[1])));                                       \
        b[3] = S8(vzip2q_s32(S32(WE[1]), S32(WO[1])));                                       \
        _Pragma("GCC unroll 2") for (int i = 0; i < P; i++) {                                \
            _Pragma("GCC unroll 4") for (int rp = 0; rp < 4; rp++)                           \
                acc[i][rp] = vmmlaq_s32(acc[i][rp], av[i][o], b[rp]);                        \
        }                                                                                    \
    } while (0)
        if (!q4) {
            const int8_t *b8 = (const int8_t *)blk;
#pragma GCC unroll 4
            for (int o = 0; o < 4; o++) {
                const int8_t *e = b8 + (size_t)(2 * o) * 64, *od = e + 64;
                int8x16_t we[2] = {vld1q_s8(e + c0), vld1q_s8(e + c1)};
                int8x16_t wo[2] = {vld1q_s8(od + c0), vld1q_s8(od + c1)};
                OCTET(we, wo, o);
            }
        } else {
            /* raw bytes of k4 steps 2o, 2o+1 hold octet o (low nibbles) and o + 2 (high) */
#pragma GCC unroll 2
            for (int o = 0; o < 2; o++) {
                const uint8_t *e = blk + (size_t)(2 * o) * 64, *od = e + 64;
                int8x16_t we[2], wo[2], we4[2], wo4[2];
                qrm_arm_unpack_q4x16(vld1q_u8(e + c0), &we[0], &we4[0]);
                qrm_arm_unpack_q4x16(vld1q_u8(e + c1), &we[1], &we4[1]);
                qrm_arm_unpack_q4x16(vld1q_u8(od + c0), &wo[0], &wo4[0]);
                qrm_arm_unpack_q4x16(vld1q_u8(od + c1), &wo[1], &wo4[1]);
                OCTET(we, wo, o);
                OCTET(we4, wo4, o + 2);
            }
        }
#undef OCTET
        /* scales in the tile's order: [dw r, dw r+1, dw r, dw r+1] x [dA, dA, dB, dB] */
        float32x4_t d03, d47, dwp[4];
        qrm_arm_wscale8(w, p, g, h, &d03, &d47);
        /* one dup of a 64-bit lane each */
        dwp[0] = vreinterpretq_f32_f64(vdupq_laneq_f64(vreinterpretq_f64_f32(d03), 0));
        dwp[1] = vreinterpretq_f32_f64(vdupq_laneq_f64(vreinterpretq_f64_f32(d03), 1));
        dwp[2] = vreinterpretq_f32_f64(vdupq_laneq_f64(vreinterpretq_f64_f32(d47), 0));
        dwp[3] = vreinterpretq_f32_f64(vdupq_laneq_f64(vreinterpretq_f64_f32(d47), 1));
#pragma GCC unroll 2
        for (int i = 0; i < P; i++) {
            const float *da = a->d + (size_t)(m0 + 2 * i) * G + g;
            float32x4_t dap = vcombine_f32(vdup_n_f32(da[0] * unit), vdup_n_f32(da[G] * unit));
#pragma GCC unroll 4
            for (int rp = 0; rp < 4; rp++)
                facc[i][rp] =
                    vfmaq_f32(facc[i][rp], vcvtq_f32_s32(acc[i][rp]), vmulq_f32(dwp[rp], dap));
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < P; i++) {
        float *ya = y + (size_t)(m0 + 2 * i) * ldy + (size_t)p * QRM_PANEL + (size_t)(8 * h);
        float *yb = ya + ldy;
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++) { /* rows 4q .. 4q + 3 */
            float64x2_t lo = vreinterpretq_f64_f32(facc[i][2 * q]);
            float64x2_t hi = vreinterpretq_f64_f32(facc[i][2 * q + 1]);
            vst1q_f32(ya + 4 * q, vreinterpretq_f32_f64(vzip1q_f64(lo, hi)));
            vst1q_f32(yb + 4 * q, vreinterpretq_f32_f64(vzip2q_f64(lo, hi)));
        }
    }
}

#define TILE_FN(name, P, Q4)                                                                   \
    static QRM_ARM_TILE void name(const qrm_qact *a, int m0, const qrm_qweight *w, int p, int h, \
                                  float *y, size_t ldy) {                                      \
        tile_i8mm(a, m0, P, w, p, h, Q4, y, ldy);                                              \
    }
TILE_FN(q8_8x4, 2, 0)
TILE_FN(q8_8x2, 1, 0)
TILE_FN(q4_8x4, 2, 1)
TILE_FN(q4_8x2, 1, 1)
#undef TILE_FN

typedef void tile_fn(const qrm_qact *a, int m0, const qrm_qweight *w, int p, int h, float *y,
                     size_t ldy);
typedef void gemm_fn(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                     size_t ldy);

static void gemm_i8mm(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy, tile_fn *t8x4, tile_fn *t8x2, gemm_fn *one_token) {
    int pairs_end = a->M & ~1;
    /* Blocks of 32 tokens: their activations stay in L1 while each weight
     * panel is read once per block. */
    for (int mb = 0; mb < pairs_end; mb += 32) {
        int me = mb + 32 < pairs_end ? mb + 32 : pairs_end;
        for (int p = p0; p < p1; p++)
            for (int h = 0; h < 2; h++) {
                int m = mb;
                for (; m + 4 <= me; m += 4) t8x4(a, m, w, p, h, y, ldy);
                if (m < me) t8x2(a, m, w, p, h, y, ldy);
            }
    }
    if (a->M & 1) { /* the last token alone: the dotprod GEMV */
        int m = a->M - 1, G = a->K / QRM_QK;
        qrm_qact last = {1, a->K, a->q + (size_t)m * a->K, a->d + (size_t)m * G,
                         a->s ? a->s + (size_t)m * G : NULL};
        one_token(&last, w, p0, p1, y + (size_t)m * ldy, ldy);
    }
}

void qrm_i8mm_gemm_q8(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy) {
    gemm_i8mm(a, w, p0, p1, y, ldy, q8_8x4, q8_8x2, qrm_dotprod_gemm_q8);
}

void qrm_i8mm_gemm_q4(const qrm_qact *a, const qrm_qweight *w, int p0, int p1, float *y,
                      size_t ldy) {
    gemm_i8mm(a, w, p0, p1, y, ldy, q4_8x4, q4_8x2, qrm_dotprod_gemm_q4);
}
