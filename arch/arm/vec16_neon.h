/* The 16-lane vector of arch/float_kernels.inc on ARMv8.0 Advanced SIMD:
 * four q registers, lanes 0-3, 4-7, 8-11, 12-15. Everything used is in the
 * base AArch64 ISA (fcvtl / fcvtn convert f16, fmla / fmls are fused), so
 * the neon, dotprod and i8mm families share these kernels. Tails go through
 * a zero-padded copy. */
#ifndef QRM_VEC16_NEON_H
#define QRM_VEC16_NEON_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

typedef struct { float32x4_t v[4]; } qv;
/* A qm holds the complement of the lanes it selects: vceqq gives "not NaN"
 * in one instruction (no vmvnq) and qv_select's vbslq takes its operands the
 * other way round. */
typedef struct { uint32x4_t v[4]; } qm;

#define QV_INLINE static inline __attribute__((always_inline))
/* A vector is four registers. The float GEMM runs its token tiles in four
 * lane parts, one K pass each (QV_PARTS below, QV_GEMM_PPP_OF): 5 tokens x
 * 4 rows of 4-lane accumulators (20 chains; with the 5 activation and 1
 * weight registers 26 of the 32): 9 loads per 20 fmla, 32 instructions a
 * step (4 x 4: 27 per 16 fmla; 6 x 4 and 4 x 6 executed more). A lone
 * token's tile takes the four parts together, one pass over its rows
 * (which stream from memory): 1 x 4 rows of four-register accumulators,
 * each operand's 16 lanes loaded by one ld1 (qp_load_parts); 1 x 6 ran
 * f32 4 % fewer instructions but f16 16 % more (out of registers for the
 * widened halves). A 2-token tile takes two parts a pass (16 accumulators,
 * half the passes: 0.93 / 0.82 of the instructions of one part a pass,
 * f32 / f16); 3 x 4 with two (24 accumulators) executed 1 % / 13 % more.
 * P.V tiles of 4 rows x 16 outputs. */
#define QV_GEMM_T 5
#define QV_GEMM_R 4
#define QV_GEMV_R 4
#define QV_GEMM_PPP_OF(T, R) ((R) > 1 && (T) * (R) <= 8 ? 2 : 1)
#define QV_WSUM_R 4
#define QV_WSUM_C 1

/* Written out, not a loop: GCC 12 at -O2 leaves a 4-trip loop rolled, and
 * then the four registers of every qv live in memory (a load, an operation
 * and a store per register, and a loop branch, for every operation). */
#define QV_EACH(stmt)                                                                            \
    do {                                                                                         \
        { const int j_ = 0; stmt; }                                                              \
        { const int j_ = 1; stmt; }                                                              \
        { const int j_ = 2; stmt; }                                                              \
        { const int j_ = 3; stmt; }                                                              \
    } while (0)

QV_INLINE qm qm_first(int n) {
    static const uint32_t iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    qm m;
    QV_EACH(m.v[j_] = vcgeq_u32(vld1q_u32(iota + 4 * j_), vdupq_n_u32((uint32_t)n)));
    return m;
}

QV_INLINE qv qv_zero(void) { qv r; QV_EACH(r.v[j_] = vdupq_n_f32(0.0f)); return r; }
QV_INLINE qv qv_set1(float a) { qv r; QV_EACH(r.v[j_] = vdupq_n_f32(a)); return r; }
QV_INLINE qv qv_load(const float *p) { qv r; QV_EACH(r.v[j_] = vld1q_f32(p + 4 * j_)); return r; }
QV_INLINE void qv_store(float *p, qv v) { QV_EACH(vst1q_f32(p + 4 * j_, v.v[j_])); }
QV_INLINE qv qv_load_n(const float *p, int n) {
    float buf[16] = {0};
    memcpy(buf, p, (size_t)n * sizeof *p);
    return qv_load(buf);
}
QV_INLINE void qv_store_n(float *p, qv v, int n) {
    float buf[16];
    qv_store(buf, v);
    memcpy(p, buf, (size_t)n * sizeof *p);
}
QV_INLINE qv qv_load_h(const uint16_t *p) {
    qv r;
    QV_EACH(r.v[j_] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 4 * j_))));
    return r;
}
QV_INLINE qv qv_load_h_n(const uint16_t *p, int n) {
    uint16_t buf[16] = {0};
    memcpy(buf, p, (size_t)n * sizeof *p);
    return qv_load_h(buf);
}
QV_INLINE void qv_store_h(uint16_t *p, qv v) {
    QV_EACH(vst1_u16(p + 4 * j_, vreinterpret_u16_f16(vcvt_f16_f32(v.v[j_]))));
}
QV_INLINE void qv_store_h_n(uint16_t *p, qv v, int n) {
    uint16_t buf[16];
    qv_store_h(buf, v);
    memcpy(p, buf, (size_t)n * sizeof *p);
}

QV_INLINE qv qv_add(qv a, qv b) { qv r; QV_EACH(r.v[j_] = vaddq_f32(a.v[j_], b.v[j_])); return r; }
QV_INLINE qv qv_sub(qv a, qv b) { qv r; QV_EACH(r.v[j_] = vsubq_f32(a.v[j_], b.v[j_])); return r; }
QV_INLINE qv qv_mul(qv a, qv b) { qv r; QV_EACH(r.v[j_] = vmulq_f32(a.v[j_], b.v[j_])); return r; }
QV_INLINE qv qv_div(qv a, qv b) { qv r; QV_EACH(r.v[j_] = vdivq_f32(a.v[j_], b.v[j_])); return r; }
/* fmaxnm / fminnm: a NaN operand gives the other one, as x86 max does for
 * the second, so the NaN lanes of fk_exp stay finite until replaced */
QV_INLINE qv qv_max(qv a, qv b) { qv r; QV_EACH(r.v[j_] = vmaxnmq_f32(a.v[j_], b.v[j_])); return r; }
QV_INLINE qv qv_min(qv a, qv b) { qv r; QV_EACH(r.v[j_] = vminnmq_f32(a.v[j_], b.v[j_])); return r; }
/* The float GEMM in parts (arch/float_kernels.inc): the lanes of an
 * accumulator never meet before the final tree, so a tile runs its K loop
 * once per q register's four lanes, one register per output. With whole
 * 16-lane accumulators only a 2 x 2 tile fit, and each loaded register
 * served two FMAs instead of four. */
#define QV_PARTS 4
#define QP_LANES 4
typedef float32x4_t qp;
QV_INLINE qp qp_zero(void) { return vdupq_n_f32(0.0f); }
QV_INLINE qp qp_load(const float *p) { return vld1q_f32(p); }
QV_INLINE qp qp_load_n(const float *p, int n) {
    float buf[4] = {0};
    memcpy(buf, p, (size_t)n * sizeof *p);
    return vld1q_f32(buf);
}
QV_INLINE qp qp_load_h(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
QV_INLINE qp qp_load_h_n(const uint16_t *p, int n) {
    uint16_t buf[4] = {0};
    memcpy(buf, p, (size_t)n * sizeof *p);
    return qp_load_h(buf);
}
/* np (1, 2 or 4) consecutive parts in one ld1 */
#define QP_LOAD_PARTS 1
QV_INLINE void qp_load_parts(int np, const float *p, qp *d) {
    if (np == 4) {
        float32x4x4_t v = vld1q_f32_x4(p);
        d[0] = v.val[0], d[1] = v.val[1], d[2] = v.val[2], d[3] = v.val[3];
    } else if (np == 2) {
        float32x4x2_t v = vld1q_f32_x2(p);
        d[0] = v.val[0], d[1] = v.val[1];
    } else {
        d[0] = vld1q_f32(p);
    }
}
/* f16: 8 halves per q register, widened by fcvtl / fcvtl2 */
QV_INLINE void qp_load_parts_h(int np, const uint16_t *p, qp *d) {
    if (np == 1) {
        d[0] = qp_load_h(p);
        return;
    }
    for (int i = 0; i < np; i += 2) {
        float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p + 4 * i));
        d[i] = vcvt_f32_f16(vget_low_f16(h)), d[i + 1] = vcvt_high_f32_f16(h);
    }
}
QV_INLINE qp qp_fma(qp a, qp b, qp c) { return vfmaq_f32(c, a, b); }
QV_INLINE qp qp_in_reg(qp v) { return v; }
QV_INLINE qv qv_from_parts(const qp *p) {
    qv r = {{p[0], p[1], p[2], p[3]}};
    return r;
}

QV_INLINE qv qv_fma(qv a, qv b, qv c) {
    qv r;
    QV_EACH(r.v[j_] = vfmaq_f32(c.v[j_], a.v[j_], b.v[j_]));
    return r;
}
QV_INLINE qv qv_fnma(qv a, qv b, qv c) {
    qv r;
    QV_EACH(r.v[j_] = vfmsq_f32(c.v[j_], a.v[j_], b.v[j_]));
    return r;
}
QV_INLINE qv qv_round(qv a) { qv r; QV_EACH(r.v[j_] = vrndnq_f32(a.v[j_])); return r; }
/* (p * 2^(n>>1)) * 2^(n - (n>>1)): exact, then one rounding (as vec16_avx2.h) */
QV_INLINE float32x4_t qv_ldexp4_(float32x4_t p, float32x4_t n) {
    int32x4_t ni = vcvtq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}
QV_INLINE qv qv_ldexp(qv p, qv n) {
    qv r;
    QV_EACH(r.v[j_] = qv_ldexp4_(p.v[j_], n.v[j_]));
    return r;
}

QV_INLINE qm qv_isnan(qv a) { qm m; QV_EACH(m.v[j_] = vceqq_f32(a.v[j_], a.v[j_])); return m; }
/* a < b (false where either is NaN), held as its complement */
QV_INLINE qm qv_lt(qv a, qv b) { qm m; QV_EACH(m.v[j_] = vmvnq_u32(vcltq_f32(a.v[j_], b.v[j_]))); return m; }
QV_INLINE qv qv_select(qm m, qv a, qv b) {
    qv r;
    QV_EACH(r.v[j_] = vbslq_f32(m.v[j_], b.v[j_], a.v[j_]));
    return r;
}

/* The canonical tree (arch/float_kernels.h): s = lanes i + (i + 8) as
 * (v0 + v2, v1 + v3); one pairwise add gives t[0..3]; two more give
 * (t0 + t1) + (t2 + t3). Four vectors share the last pairwise adds. */
QV_INLINE float32x4_t qv_t_(qv v) {
    return vpaddq_f32(vaddq_f32(v.v[0], v.v[2]), vaddq_f32(v.v[1], v.v[3]));
}
QV_INLINE void qv_hsum4(qv a, qv b, qv c, qv d, float *out) {
    float32x4_t ab = vpaddq_f32(qv_t_(a), qv_t_(b)), cd = vpaddq_f32(qv_t_(c), qv_t_(d));
    vst1q_f32(out, vpaddq_f32(ab, cd));
}
QV_INLINE float qv_hsum(qv v) {
    float32x4_t u = vpaddq_f32(qv_t_(v), qv_t_(v));
    return vpadds_f32(vget_low_f32(u));
}
QV_INLINE float qv_hmax(qv v) {
    return vmaxvq_f32(vmaxq_f32(vmaxq_f32(v.v[0], v.v[1]), vmaxq_f32(v.v[2], v.v[3])));
}

#endif
