/* The 16-lane vector of arch/float_kernels.inc in plain C: the definition of
 * the canonical float evaluation (arch/float_kernels.h) that the SIMD
 * mappings reproduce. fmaf is fused by the C standard; nothing else here may
 * be contracted (the Makefile passes -ffp-contract=off to every file). */
#ifndef QRM_VEC16_SCALAR_H
#define QRM_VEC16_SCALAR_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "f16.h"

typedef struct { float f[16]; } qv;
typedef struct { unsigned char b[16]; } qm;

#define QV_INLINE static inline
/* Tiles of the float GEMM (tokens x weight rows) and of the P.V sums (rows
 * x 16-lane columns): plain loops here. */
#define QV_GEMM_T 1
#define QV_GEMM_R 1
#define QV_GEMV_R 1
#define QV_WSUM_R 1
#define QV_WSUM_C 1

#define QV_MAP(expr) do { for (int i_ = 0; i_ < 16; i_++) r.f[i_] = (expr); } while (0)

QV_INLINE qv qv_zero(void) { qv r; QV_MAP(0.0f); return r; }
QV_INLINE qv qv_set1(float a) { qv r; QV_MAP(a); return r; }
QV_INLINE qv qv_load(const float *p) { qv r; memcpy(r.f, p, sizeof r.f); return r; }
QV_INLINE void qv_store(float *p, qv v) { memcpy(p, v.f, sizeof v.f); }
QV_INLINE qv qv_load_n(const float *p, int n) {
    qv r = qv_zero();
    memcpy(r.f, p, (size_t)n * sizeof(float));
    return r;
}
QV_INLINE void qv_store_n(float *p, qv v, int n) { memcpy(p, v.f, (size_t)n * sizeof(float)); }
QV_INLINE qv qv_load_h_n(const uint16_t *p, int n) {
    qv r = qv_zero();
    for (int i = 0; i < n; i++) r.f[i] = qrm_f16_to_f32(p[i]);
    return r;
}
QV_INLINE qv qv_load_h(const uint16_t *p) { return qv_load_h_n(p, 16); }
QV_INLINE void qv_store_h_n(uint16_t *p, qv v, int n) {
    for (int i = 0; i < n; i++) p[i] = qrm_f32_to_f16(v.f[i]);
}
QV_INLINE void qv_store_h(uint16_t *p, qv v) { qv_store_h_n(p, v, 16); }

QV_INLINE qv qv_add(qv a, qv b) { qv r; QV_MAP(a.f[i_] + b.f[i_]); return r; }
QV_INLINE qv qv_sub(qv a, qv b) { qv r; QV_MAP(a.f[i_] - b.f[i_]); return r; }
QV_INLINE qv qv_mul(qv a, qv b) { qv r; QV_MAP(a.f[i_] * b.f[i_]); return r; }
QV_INLINE qv qv_div(qv a, qv b) { qv r; QV_MAP(a.f[i_] / b.f[i_]); return r; }
/* a * b + c and c - a * b, one rounding each */
QV_INLINE qv qv_fma(qv a, qv b, qv c) { qv r; QV_MAP(fmaf(a.f[i_], b.f[i_], c.f[i_])); return r; }
QV_INLINE qv qv_fnma(qv a, qv b, qv c) { qv r; QV_MAP(fmaf(-a.f[i_], b.f[i_], c.f[i_])); return r; }
/* Only ever given non-NaN operands where the result is kept (a NaN lane is
 * replaced at the end of fk_exp); fmaxf keeps the number, so no NaN reaches
 * a conversion to int. */
QV_INLINE qv qv_max(qv a, qv b) { qv r; QV_MAP(fmaxf(a.f[i_], b.f[i_])); return r; }
QV_INLINE qv qv_min(qv a, qv b) { qv r; QV_MAP(fminf(a.f[i_], b.f[i_])); return r; }
/* to the nearest integer, ties to even (the default rounding mode) */
QV_INLINE qv qv_round(qv a) { qv r; QV_MAP(nearbyintf(a.f[i_])); return r; }

/* p * 2^n for integral n in [-150, 128] and p in [0.5, 2), rounded once:
 * p * 2^(n>>1) is exact (a normal number), the second factor rounds. */
QV_INLINE float qv_pow2i_(int e) {
    uint32_t bits = (uint32_t)(e + 127) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
QV_INLINE qv qv_ldexp(qv p, qv n) {
    qv r;
    for (int i = 0; i < 16; i++) {
        int e = (int)n.f[i], e1 = e >> 1; /* arithmetic shift: floor(e / 2) */
        r.f[i] = (p.f[i] * qv_pow2i_(e1)) * qv_pow2i_(e - e1);
    }
    return r;
}

#define QV_CMP(expr) do { for (int i_ = 0; i_ < 16; i_++) m.b[i_] = (unsigned char)(expr); } while (0)
QV_INLINE qm qv_isnan(qv a) { qm m; QV_CMP(a.f[i_] != a.f[i_]); return m; }
/* a < b, false where either is NaN */
QV_INLINE qm qv_lt(qv a, qv b) { qm m; QV_CMP(a.f[i_] < b.f[i_]); return m; }
QV_INLINE qm qm_first(int n) { qm m; QV_CMP(i_ < n); return m; }
QV_INLINE qv qv_select(qm m, qv a, qv b) { qv r; QV_MAP(m.b[i_] ? a.f[i_] : b.f[i_]); return r; }

/* The canonical tree over the 16 lanes (arch/float_kernels.h). */
QV_INLINE float qv_hsum(qv v) {
    float s[8], t[4];
    for (int i = 0; i < 8; i++) s[i] = v.f[i] + v.f[i + 8];
    for (int j = 0; j < 4; j++) t[j] = s[2 * j] + s[2 * j + 1];
    return (t[0] + t[1]) + (t[2] + t[3]);
}
QV_INLINE void qv_hsum4(qv a, qv b, qv c, qv d, float *out) {
    out[0] = qv_hsum(a), out[1] = qv_hsum(b), out[2] = qv_hsum(c), out[3] = qv_hsum(d);
}
QV_INLINE float qv_hmax(qv v) {
    float m = v.f[0];
    for (int i = 1; i < 16; i++) m = fmaxf(m, v.f[i]);
    return m;
}

#undef QV_MAP
#undef QV_CMP

#endif
