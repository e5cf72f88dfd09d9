/* Kernels the three ARM families share. Each family's table points at the
 * functions of the least demanding family that does the job well:
 *   neon    (ARMv8.0 Advanced SIMD)      every float op, quantize_act, the
 *                                         int8 GEMM with smull/smlal
 *   dotprod (+ sdot, compiled with fp16)  the int8 GEMM with sdot by element
 *   i8mm    (+ smmla)                     the int8 GEMM with smmla; M = 1 and
 *                                         an odd last token go to dotprod
 * Float kernels need nothing beyond ARMv8.0 (fcvtl converts f16), so the
 * faster families reuse the neon ones: same function pointers.
 *
 * Integer arithmetic of the GEMMs assumes activations in [-127, 127], which
 * quantize_act guarantees (qrm_qact); q8 weights may use all of [-128, 127].
 * Only compiled for aarch64 (arch/arm/ is not built elsewhere). */
#ifndef QRM_KERNELS_ARM_H
#define QRM_KERNELS_ARM_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

#include "float_kernels.h"
#include "kernels.h"

#define QRM_ARM_INLINE static inline __attribute__((always_inline))

/* A GEMM tile: kept out of line, and under GCC without the first
 * instruction-scheduling pass, which hoists every load of the unrolled
 * tile to the top and then spills accumulators to the stack (measured:
 * 35 spill loads/stores in the 8x2 neon tile with it, none without). */
#if defined(__GNUC__) && !defined(__clang__)
#define QRM_ARM_TILE __attribute__((noinline, optimize("no-schedule-insns")))
#else
#define QRM_ARM_TILE __attribute__((noinline))
#endif

/* ---- helpers of the int8 GEMMs, inlined into each family ---- */

/* The packed block of panel p, group g (arch/kernels.h): 512 bytes for q8, 256 for q4. */
QRM_ARM_INLINE const uint8_t *qrm_arm_block(const qrm_qweight *w, int p, int g, int q4) {
    size_t bytes = q4 ? 256 : 512;
    return w->q + ((size_t)p * qrm_qw_pgroups(w) + (size_t)g) * bytes;
}

/* q4 bytes -> two vectors of int8 weights times 16: byte b holds element b
 * in its low nibble u (value u - 8) and element b + 256 in its high nibble.
 * After xor 0x88 a nibble reads as the signed 4-bit value u - 8, so
 * shifting it to the top of the byte gives 16 (u - 8) exactly, in
 * [-128, 112]: the same range as q8, and the caller divides the scale by 16.
 * Two instructions per 16 weights plus one xor per 32. */
QRM_ARM_INLINE void qrm_arm_unpack_q4x16(uint8x16_t raw, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t t = veorq_u8(raw, vdupq_n_u8(0x88));
    *lo = vreinterpretq_s8_u8(vshlq_n_u8(t, 4));
    *hi = vreinterpretq_s8_u8(vandq_u8(t, vdupq_n_u8(0xF0)));
}

/* The 8 f16 weight scales of rows 8h..8h+7 of panel p, group g, as floats. */
QRM_ARM_INLINE void qrm_arm_wscale8(const qrm_qweight *w, int p, int g, int h, float32x4_t *lo,
                                    float32x4_t *hi) {
    const uint16_t *d =
        w->d + ((size_t)p * qrm_qw_pgroups(w) + (size_t)g) * QRM_PANEL + (size_t)h * 8;
    uint16x8_t v = vld1q_u16(d);
    *lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(v)));
    *hi = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(v)));
}

/* quantize_neon.c */
void qrm_neon_quantize_act(const float *x, size_t ldx, qrm_qact *a);

/* gemm_q_neon.c, gemm_q_dotprod.c, gemm_q_i8mm.c: see qrm_kernels.gemm_q8 (i8mm's
 * gemm_q8_acc is dotprod's: the family's CPUs have both) */
QRM_QGEMM(qrm_neon_gemm_q8);
QRM_QGEMM(qrm_neon_gemm_q8_acc);
QRM_QGEMM(qrm_neon_gemm_q4);
QRM_QGEMM(qrm_dotprod_gemm_q8);
QRM_QGEMM(qrm_dotprod_gemm_q8_acc);
QRM_QGEMM(qrm_dotprod_gemm_q4);
QRM_QGEMM(qrm_i8mm_gemm_q8);
QRM_QGEMM(qrm_i8mm_gemm_q4);

/* float_neon.c: the float kernels of all three families */
QRM_DECLARE_FLOAT_KERNELS(qrm_neon_);

#endif
