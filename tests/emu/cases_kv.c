/* The KV-cache kernels: wsum_rows_f32 / wsum_rows_f16 (attention's
 * probabilities times V) and f32_to_f16 (what the cache stores). */
#include <string.h>

#include "cases.h"
#include "f16.h"
#include "f16_ties.h"
#include "harness.h"

#ifdef HOST
#include <math.h>
#endif

/* ---------------- wsum_rows_f32 / wsum_rows_f16 ---------------- */

static unsigned lcg_next(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 9;
}

#ifdef HOST
/* Each output: within TOL_WSUM_REL of a double evaluation (tests/test_wsum.c);
 * the same bits as the in-order fmaf chain (what kernels.h asks: ascending t,
 * and arch/float_kernels.inc: one fma per t); the same bits as its row computed alone
 * (batch invariance); the stride gaps untouched. */
static void check_wsum(const float *o0, const float *got, const float *alone, size_t nout,
                       size_t ldo, const float *w, size_t ldw, const float *rows, size_t ldr, int M,
                       int n, int d) {
    check_begin();
    for (size_t i = 0; i < nout; i++) {
        int m = (int)(i / ldo), c = (int)(i % ldo);
        if (c >= d) {
            if (got[i] != SENTINEL || alone[i] != SENTINEL)
                check_fail("row %d col %d (stride gap) written", m, c);
            continue;
        }
        double want = o0[i], mag = fabs((double)o0[i]);
        float chain = o0[i];
        for (int t = 0; t < n; t++) {
            double p = (double)w[m * ldw + t] * rows[(size_t)t * ldr + c];
            want += p, mag += fabs(p);
            chain = fmaf(w[m * ldw + t], rows[(size_t)t * ldr + c], chain);
        }
        if (!(fabs((double)got[i] - want) <= TOL_WSUM_REL * mag + 1e-6))
            check_fail("m %d i %d: %.9g, want %.9g", m, c, (double)got[i], want);
        if (memcmp(&got[i], &alone[i], 4))
            check_fail("m %d i %d: %.9g among M=%d rows, %.9g alone", m, c, (double)got[i], M,
                       (double)alone[i]);
        if (got[i] != chain)
            check_fail("m %d i %d: %.9g, the in-order fma chain gives %.9g", m, c, (double)got[i],
                       (double)chain);
    }
    check_end();
}
#endif

/* M = 1..11 covers every mix of the 4-row, 2-row and 1-row tiles; d every
 * tail of the 32- and 16-wide column tiles; n = 0 must leave out alone.
 * f16 rows: half converted from the f32 values, half any finite half
 * (subnormals included); the check uses their exact f32 values. */
static void case_wsum(int f16, int M, int d, int n, unsigned *seed) {
    size_t ldo = (size_t)d + 3, ldw = (size_t)n + 2, ldr = (size_t)d + 2;
    size_t nw = strided(M, ldw, n), nv = (size_t)n * ldr, nout = strided(M, ldo, d);
    case_begin();
    float *w = case_alloc(nw * 4), *rows = case_alloc(nv * 4);
    uint16_t *rows_h = case_alloc(nv * 2);
    float *o0 = case_alloc(nout * 4), *got = case_alloc(nout * 4), *alone = case_alloc(nout * 4);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(lcg_next(seed) % 1000) / 1000.0f;
    for (size_t i = 0; i < nv; i++) rows[i] = (float)((int)(lcg_next(seed) % 2001) - 1000) / 100.0f;
    for (size_t i = 0; i < nv; i++) {
        if (i % 2 == 0) {
            rows_h[i] = qrm_f32_to_f16(rows[i]);
            continue;
        }
        uint16_t h = (uint16_t)(lcg_next(seed) >> 1);
        rows_h[i] = (h & 0x7c00) == 0x7c00 ? h & 0x83ff : h; /* inf / NaN -> a subnormal */
    }
    if (f16)
        for (size_t i = 0; i < nv; i++) rows[i] = qrm_f16_to_f32(rows_h[i]);
    for (size_t i = 0; i < nout; i++) {
        size_t m = i / ldo, c = i % ldo;
        o0[i] = c < (size_t)d ? (float)c * 0.5f - 3.0f + (float)m : SENTINEL;
    }
    input_hash(w, nw * 4), input_hash(rows, nv * 4), input_hash(rows_h, nv * 2),
        input_hash(o0, nout * 4);
    memcpy(got, o0, nout * 4);
    memcpy(alone, o0, nout * 4);
    case_name("wsum_rows_f%d M=%d d=%d n=%d", f16 ? 16 : 32, M, d, n);
    if (f16) {
        kern->wsum_rows_f16(got, ldo, w, ldw, M, rows_h, ldr, n, d);
        for (int m = 0; m < M; m++)
            kern->wsum_rows_f16(alone + m * ldo, ldo, w + m * ldw, ldw, 1, rows_h, ldr, n, d);
    } else {
        kern->wsum_rows_f32(got, ldo, w, ldw, M, rows, ldr, n, d);
        for (int m = 0; m < M; m++)
            kern->wsum_rows_f32(alone + m * ldo, ldo, w + m * ldw, ldw, 1, rows, ldr, n, d);
    }
    record(got, nout * 4);
    record(alone, nout * 4);
#ifdef HOST
    check_wsum(o0, got, alone, nout, ldo, w, ldw, rows, ldr, M, n, d);
#endif
    case_end();
}

void cases_wsum_rows(int f16) {
    static const int sizes_d[] = {1, 3, 15, 16, 17, 31, 32, 33, 48, 64, 96, 130};
    static const int sizes_n[] = {0, 1, 7, 64};
    unsigned seed = 11;
    for (size_t a = 0; a < sizeof sizes_d / sizeof sizes_d[0]; a++)
        for (size_t b = 0; b < sizeof sizes_n / sizeof sizes_n[0]; b++)
            for (int M = 1; M <= 11; M++) case_wsum(f16, M, sizes_d[a], sizes_n[b], &seed);
}

/* ---------------- f32_to_f16 ---------------- */

/* Random bits (one in three inside the half range, subnormals included; one
 * in five an exact tie), and for longer inputs the range edges first. */
static float f32_to_f16_input(int i, int n) {
    static const float edges[] = {65504.0f, 65519.99f, 65520.0f, 1e10f, 1e38f, 5.96e-8f,
                                  2.98e-8f, 2.9802322e-8f, 2.9802326e-8f, 6.1035156e-5f, 6.1e-5f,
                                  0.0f, -0.0f, -65520.0f, 1e-45f, 3.0e-5f, 1.0f + 0x1p-11f,
                                  1.0f + 0x1p-11f + 0x1p-23f, -3.0001f};
    uint32_t u = rnd() ^ (rnd() << 15);
    if (i % 3 == 0) u = (u & 0x807fffffu) | ((uint32_t)(102 + rnd() % 42) << 23);
    if (i % 5 == 4) u = (u & 0xffffe000u) | 0x1000u;
    float f;
    memcpy(&f, &u, 4);
    if (n > 40 && i < (int)(sizeof edges / sizeof edges[0])) f = edges[i];
    if (n > 40 && i == 20) f = __builtin_inff();
    if (n > 40 && i == 21) f = -__builtin_inff();
    if (n > 40 && i == 22) f = __builtin_nanf("");
    return f;
}

/* Bit for bit qrm_f32_to_f16 (round to nearest even) of the value clamped to
 * +-65504 (the cache saturates) for every non-NaN; a NaN stays a NaN. The
 * one exception is f16_ties.h's. */
void cases_f32_to_f16(void) {
    static const int sizes[] = {0, 1, 7, 15, 16, 17, 31, 33, 100, 1027, 4096};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int n = sizes[si];
        case_begin();
        float *x = case_alloc((size_t)n * 4);
        uint16_t *h = case_alloc((size_t)n * 2);
        rng_seed((uint64_t)(1000 + n));
        for (int i = 0; i < n; i++) x[i] = f32_to_f16_input(i, n);
        input_hash(x, (size_t)n * 4);
        case_name("f32_to_f16 n=%d", n);
        kern->f32_to_f16(h, x, n);
        record_own_check(h, (size_t)n * 2);
#ifdef HOST
        check_begin();
        for (int i = 0; i < n; i++) {
            if (isnan(x[i])) {
                if ((h[i] & 0x7c00) != 0x7c00 || !(h[i] & 0x3ff))
                    check_fail("NaN %a -> %04x", (double)x[i], h[i]);
                continue;
            }
            float sat = x[i] > 65504.0f ? 65504.0f : x[i] < -65504.0f ? -65504.0f : x[i];
            uint16_t want = qrm_f32_to_f16(sat);
            if (h[i] != want && !f16_tie_forgiven(x[i], h[i]))
                check_fail("x[%d] = %a: %04x, want %04x", i, (double)x[i], h[i], want);
        }
        check_end();
#endif
        case_end();
    }
}
