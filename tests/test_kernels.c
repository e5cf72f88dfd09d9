/* Kernel families against the scalar reference, and the reference against
 * direct computations.
 *
 * Every family compiled into this binary whose CPU support is present is
 * tested, whatever QRM_ISA says (families the CPU lacks are reported as
 * skipped on stdout). Integer parts must match exactly: those cases use
 * power-of-two scales and bounded values so that every float operation is
 * exact too, and compare with ==. Random data is compared with the named
 * tolerances below, each against a double-precision computation of the same
 * formula (the scalar reference is held to the same bound, so the bound is
 * known to be fair).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "qrm.h"
#include "f16.h"
#include "kernels.h"
#include "kernels_ref.h"
#include "testutil.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "kernel_shapes.h"
#include "tolerances.h"

/* ---- families under test ---- */

#define FAMILY_NAME(f) #f,
static const char *family_names[] = {QRM_FAMILIES_SIMD(FAMILY_NAME)};
#define N_FAMILIES ((int)(sizeof family_names / sizeof family_names[0]))

/* The family's table, or NULL when this CPU cannot run it. */
static const qrm_kernels *family(int i) {
    char err[160];
    return qrm_kernels_by_name(family_names[i], qrm_cpu_features_get(), err, sizeof err);
}

/* ---- deterministic random numbers ---- */

static uint64_t rng;
static void seed(uint64_t s) { rng = s * 0x9e3779b97f4a7c15ull + 1; }
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 17);
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rnd_unit(void) { return (float)(rnd() & 0xffffff) / 16777216.0f; } /* [0, 1) */
static float rnd_sym(float a) { return a * (2 * rnd_unit() - 1); }

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    ck_assert_msg(p != NULL, "out of memory");
    return p;
}

/* ==== the packed layouts, built here from their description in kernels.h ==== */

static void pack_q8(const int8_t *W, int N, int K, uint8_t *out) {
    int G = K / QRM_QK;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            int p = n / 16, r = n % 16, g = k / 32, kk = k % 32;
            out[((size_t)p * G + g) * 512 + (kk / 4) * 64 + r * 4 + kk % 4] = (uint8_t)W[(size_t)n * K + k];
        }
}

static void pack_q4(const int8_t *W, int N, int K, uint8_t *out) {
    int G = K / QRM_QK;
    memset(out, 0, (size_t)N * K / 2);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            int p = n / 16, r = n % 16, g = k / 32, kk = k % 32;
            int e = (kk / 4) * 64 + r * 4 + kk % 4;
            uint8_t u = (uint8_t)(W[(size_t)n * K + k] + 8);
            uint8_t *b = &out[((size_t)p * G + g) * 256 + (e & 255)];
            *b |= e < 256 ? u : (uint8_t)(u << 4);
        }
}

static size_t scale_index(int N, int K, int n, int g) {
    (void)N;
    int G = K / QRM_QK;
    return ((size_t)(n / 16) * G + g) * 16 + n % 16;
}

/* ==== layout accessors against hand-built blocks ==== */

START_TEST(test_ref_q8_layout_by_hand) {
    /* N = 32, K = 64: 2 panels x 2 groups of 512 bytes. W[19][45]: panel 1,
     * row 3, group 1, kk 13 = step 3, byte 1: block (1 * 2 + 1) = 3 ->
     * 3 * 512 + 3 * 64 + 3 * 4 + 1 = 1741. */
    uint8_t q[4 * 512] = {0};
    uint16_t d[2 * 2 * 16] = {0};
    qrm_qweight w = {QRM_WQ8, 32, 64, q, d, 0};
    q[1741] = 0x85; /* -123 */
    for (int n = 0; n < 32; n++)
        for (int k = 0; k < 64; k++)
            ck_assert_int_eq(qrm_ref_q8_get(&w, n, k), (n == 19 && k == 45) ? -123 : 0);
    /* scale of row 19, group 1: index (1 * 2 + 1) * 16 + 3 = 51 */
    d[51] = 0x4200; /* 3.0 */
    ck_assert(qrm_ref_w_scale(&w, 19, 1) == 3.0f);
    ck_assert(qrm_ref_w_scale(&w, 19, 0) == 0.0f);
    ck_assert(qrm_ref_w_scale(&w, 3, 1) == 0.0f);
}
END_TEST

START_TEST(test_ref_q4_layout_by_hand) {
    /* Same shape, 256-byte blocks. Element index e = 64 * step + 4 * row + j;
     * byte e & 255, low nibble for e < 256, high nibble otherwise; value = nibble - 8.
     * W[19][45]: block 3, e = 3 * 64 + 12 + 1 = 205 -> byte 768 + 205 = 973, low.
     * W[2][50]: block 1 (panel 0, group 1), kk 18: e = 4 * 64 + 8 + 2 = 266 ->
     * byte 256 + 10 = 266, high. Its low nibble is e = 10: row 2, step 0, j 2:
     * W[2][32 + 2]. */
    uint8_t q[4 * 256];
    memset(q, 0x88, sizeof q); /* every element 0 */
    uint16_t d[64] = {0};
    qrm_qweight w = {QRM_WQ4, 32, 64, q, d, 0};
    q[973] = 0x8f;             /* low nibble 15 -> 7, high stays 8 -> 0 */
    q[266] = (0x0 << 4) | 0x3; /* high 0 -> -8 (W[2][50]), low 3 -> -5 (W[2][34]) */
    for (int n = 0; n < 32; n++)
        for (int k = 0; k < 64; k++) {
            int want = 0;
            if (n == 19 && k == 45) want = 7;
            if (n == 2 && k == 50) want = -8;
            if (n == 2 && k == 34) want = -5;
            ck_assert_msg(qrm_ref_q4_get(&w, n, k) == want, "W[%d][%d] = %d, want %d", n, k,
                          qrm_ref_q4_get(&w, n, k), want);
        }
}
END_TEST

START_TEST(test_ref_layouts_roundtrip) {
    /* every element of a random matrix comes back through the accessors */
    enum { N = 48, K = 96 };
    static int8_t W[N * K];
    static uint8_t q8[N * K], q4[N * K / 2];
    seed(11);
    for (int i = 0; i < N * K; i++) W[i] = (int8_t)rnd_int(-128, 127);
    pack_q8(W, N, K, q8);
    qrm_qweight w8 = {QRM_WQ8, N, K, q8, NULL, 0};
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) ck_assert_int_eq(qrm_ref_q8_get(&w8, n, k), W[n * K + k]);
    for (int i = 0; i < N * K; i++) W[i] = (int8_t)rnd_int(-8, 7);
    pack_q4(W, N, K, q4);
    qrm_qweight w4 = {QRM_WQ4, N, K, q4, NULL, 0};
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) ck_assert_int_eq(qrm_ref_q4_get(&w4, n, k), W[n * K + k]);
}
END_TEST

/* ==== activation quantization ==== */

/* x[M][ldx] -> a, compared exactly (q, d bits, s) with the reference group function. */
static void check_quantize(const qrm_kernels *k, const float *x, int M, int K, size_t ldx,
                           const char *what) {
    int G = K / QRM_QK;
    qrm_qact a = {M, K, xcalloc((size_t)M * K, 1), xcalloc((size_t)M * G, sizeof(float)),
                  xcalloc((size_t)M * G, sizeof(int32_t))};
    k->quantize_act(x, ldx, &a);
    for (int m = 0; m < M; m++)
        for (int g = 0; g < G; g++) {
            int8_t q[QRM_QK];
            float d;
            int32_t s;
            qrm_ref_quantize_group(x + m * ldx + g * QRM_QK, q, &d, &s);
            size_t gi = (size_t)m * G + g;
            ck_assert_msg(memcmp(&d, &a.d[gi], sizeof d) == 0, "%s %s: m %d g %d: d %a, want %a",
                          k->name, what, m, g, (double)a.d[gi], (double)d);
            ck_assert_msg(a.s[gi] == s, "%s %s: m %d g %d: s %d, want %d", k->name, what, m, g,
                          a.s[gi], s);
            for (int i = 0; i < QRM_QK; i++)
                ck_assert_msg(a.q[(size_t)m * K + g * QRM_QK + i] == q[i],
                              "%s %s: m %d k %d: q %d, want %d (x = %a)", k->name, what, m,
                              g * QRM_QK + i, a.q[(size_t)m * K + g * QRM_QK + i], q[i],
                              (double)x[m * ldx + g * QRM_QK + i]);
        }
    free(a.q), free(a.d), free(a.s);
}

START_TEST(test_ref_quantize_group) {
    /* by hand: amax 127 -> id 1, so x rounds to itself, half to even */
    float x[QRM_QK] = {127.0f, -127.0f, 2.5f, 3.5f, -2.5f, 0.5f, -0.5f, 1.5f, 126.5f, -0.0f};
    int8_t want[QRM_QK] = {127, -127, 2, 4, -2, 0, 0, 2, 126, 0};
    int8_t q[QRM_QK];
    float d;
    int32_t s;
    qrm_ref_quantize_group(x, q, &d, &s);
    int sum = 0;
    for (int i = 0; i < QRM_QK; i++) {
        ck_assert_int_eq(q[i], want[i]);
        sum += want[i];
    }
    ck_assert_int_eq(s, sum);
    ck_assert(d == 1.0f);
    /* all zero: d = 0, q = 0 */
    memset(x, 0, sizeof x);
    qrm_ref_quantize_group(x, q, &d, &s);
    ck_assert(d == 0.0f && s == 0);
    for (int i = 0; i < QRM_QK; i++) ck_assert_int_eq(q[i], 0);
    /* non-finite values (a hostile model's weights make them): defined, no
     * (int) of a NaN (make test-sanitize runs this under UBSan). A NaN is
     * skipped by the maximum and quantizes to 0; an infinity makes the
     * scale infinite and every value 0 (x * 0 is NaN for it, 0 for the rest). */
    memset(x, 0, sizeof x);
    x[0] = NAN, x[1] = 127.0f, x[2] = -3.0f;
    qrm_ref_quantize_group(x, q, &d, &s);
    ck_assert(d == 1.0f && q[0] == 0 && q[1] == 127 && q[2] == -3 && s == 124);
    x[3] = INFINITY;
    qrm_ref_quantize_group(x, q, &d, &s);
    ck_assert(isinf(d) && s == 0);
    for (int i = 0; i < QRM_QK; i++) ck_assert_int_eq(q[i], 0);
}
END_TEST

START_TEST(test_quantize_act) {
    const qrm_kernels *k = family(_i);
    if (!k) return;
    enum { M = 7, K = 1024, LDX = K + 13 };
    float *x = xcalloc((size_t)M * LDX, sizeof(float));
    seed(21);
    for (int i = 0; i < M * LDX; i++) x[i] = rnd_sym(3.0f);
    check_quantize(k, x, M, K, LDX, "random");

    /* Groups of special values, one group per pattern. */
    for (int i = 0; i < M * LDX; i++) x[i] = 0;
    float *row = x;
    int g = 0;
    /* 0: ties at id = 1 (amax 127) */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = (float)(i - 16) + 0.5f;
    row[g * 32 + 31] = 127.0f;
    g++;
    /* 1: ties at id = 2 (amax 63.5): x = n/2 + 1/4 -> n + 0.5 */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = (float)(i - 16) * 0.5f + 0.25f;
    row[g * 32 + 7] = -63.5f;
    g++;
    /* 2: all zero (d = 0) */
    g++;
    /* 3: negative zeros and one tiny value */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = -0.0f;
    row[g * 32 + 5] = 1e-30f;
    g++;
    /* 4: huge values */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = rnd_sym(3e37f);
    g++;
    /* 4b: below QRM_QACT_MIN_AMAX, where 127 / amax would overflow: zeros */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = (i % 2 ? 1 : -1) * 3e-38f * (float)(i + 1) / 32.0f;
    g++;
    /* 5: one value dominates */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = rnd_sym(1e-3f);
    row[g * 32 + 30] = -1000.0f;
    g++;
    /* 6: all equal */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = 0.3f;
    g++;
    /* 7: alternating extremes */
    for (int i = 0; i < QRM_QK; i++) row[g * 32 + i] = i % 2 ? -5.0f : 5.0f;
    g++;
    /* the next rows: random values with ties sprinkled in */
    for (int m = 1; m < M; m++)
        for (int i = 0; i < K; i++) {
            float v = (float)rnd_int(-127, 127);
            x[m * LDX + i] = rnd() % 3 ? v + 0.5f * (float)(rnd() % 2) : rnd_sym(100.0f);
            if (i % 32 == 0) x[m * LDX + i] = 127.0f;
        }
    check_quantize(k, x, M, K, LDX, "special");
    /* every row and tail of one token: K = 32 */
    check_quantize(k, x, 1, 32, 32, "K=32");
    /* sixteen groups at once, then five one by one (quantize_avx512.c): the
     * special groups again, now at the end of a row */
    memmove(x + 13 * QRM_QK, x, 8 * QRM_QK * sizeof(float));
    check_quantize(k, x, 3, 21 * QRM_QK, LDX, "K=672");
    free(x);
}
END_TEST

/* ==== quantized GEMM ==== */

enum { MODE_RANDOM, MODE_EXTREME, MODE_POW2 };
static const char *mode_names[] = {"random", "extreme", "pow2"};

typedef struct {
    int type, M, N, K, G, mode;
    int8_t *W;       /* [N][K] */
    uint8_t *packed;
    uint16_t *scales;
    qrm_qweight w;
    qrm_qact a;
    double *exact;   /* [M][N] the formula in double */
    double *mag;     /* [M][N] sum_g |da dw isum| */
} qcase;

static void qcase_build(qcase *c, int type, int M, int N, int K, int mode, uint64_t s) {
    memset(c, 0, sizeof *c);
    c->type = type, c->M = M, c->N = N, c->K = K, c->G = K / QRM_QK, c->mode = mode;
    int G = c->G, wmin = type == QRM_WQ8 ? -128 : -8, wmax = type == QRM_WQ8 ? 127 : 7;
    seed(s);
    c->W = xcalloc((size_t)N * K, 1);
    c->scales = xcalloc((size_t)N * G, sizeof(uint16_t));
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            int8_t *wg = c->W + (size_t)n * K + g * QRM_QK;
            uint16_t *sc = &c->scales[scale_index(N, K, n, g)];
            int zero = mode != MODE_EXTREME && rnd() % 10 == 0; /* some all-zero groups */
            for (int i = 0; i < QRM_QK; i++) {
                int v = mode == MODE_EXTREME ? (rnd() % 2 ? wmin : wmax) : rnd_int(wmin, wmax);
                wg[i] = (int8_t)(zero ? 0 : v);
            }
            if (mode == MODE_EXTREME && g % 3 == 0) /* whole groups at the minimum */
                for (int i = 0; i < QRM_QK; i++) wg[i] = (int8_t)wmin;
            if (mode == MODE_RANDOM) *sc = qrm_f32_to_f16(0.001f + 0.05f * rnd_unit());
            else if (mode == MODE_EXTREME) *sc = 0x3c00; /* 1 */
            else *sc = rnd() % 2 ? 0x3c00 : 0x4000;      /* 1 or 2 */
        }
    size_t qbytes = (size_t)N * K / (type == QRM_WQ8 ? 1 : 2);
    c->packed = xcalloc(qbytes, 1);
    if (type == QRM_WQ8) pack_q8(c->W, N, K, c->packed);
    else pack_q4(c->W, N, K, c->packed);
    c->w = (qrm_qweight){type, N, K, c->packed, c->scales, 0};

    c->a = (qrm_qact){M, K, xcalloc((size_t)M * K, 1), xcalloc((size_t)M * G, sizeof(float)),
                      xcalloc((size_t)M * G, sizeof(int32_t))};
    for (int m = 0; m < M; m++)
        for (int g = 0; g < G; g++) {
            int8_t *q = c->a.q + (size_t)m * K + g * QRM_QK;
            int zero = rnd() % 8 == 0, sum = 0, amax = mode == MODE_POW2 ? 31 : 127;
            for (int i = 0; i < QRM_QK; i++) {
                int v = mode == MODE_EXTREME ? (rnd() % 2 ? 127 : -127) : rnd_int(-amax, amax);
                if (mode == MODE_EXTREME && g % 2 == 0) v = -127; /* meets the -128 groups */
                if (zero) v = 0;
                q[i] = (int8_t)v;
                sum += v;
            }
            c->a.s[(size_t)m * G + g] = sum;
            float d = mode == MODE_RANDOM ? 0.001f + 0.1f * rnd_unit()
                      : mode == MODE_EXTREME ? 1.0f : (rnd() % 2 ? 1.0f : 2.0f);
            c->a.d[(size_t)m * G + g] = zero ? 0.0f : d;
        }

    c->exact = xcalloc((size_t)M * N, sizeof(double));
    c->mag = xcalloc((size_t)M * N, sizeof(double));
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double y = 0, mag = 0;
            for (int g = 0; g < G; g++) {
                long isum = 0;
                for (int i = 0; i < QRM_QK; i++)
                    isum += (long)c->a.q[(size_t)m * K + g * 32 + i] * c->W[(size_t)n * K + g * 32 + i];
                double t = (double)c->a.d[(size_t)m * G + g] *
                           (double)qrm_f16_to_f32(c->scales[scale_index(N, K, n, g)]) * (double)isum;
                y += t, mag += fabs(t);
            }
            c->exact[(size_t)m * N + n] = y, c->mag[(size_t)m * N + n] = mag;
        }
}

static void qcase_free(qcase *c) {
    free(c->W), free(c->packed), free(c->scales), free(c->a.q), free(c->a.d), free(c->a.s);
    free(c->exact), free(c->mag);
}

#define SENTINEL 7777.0f

/* Runs one family's GEMM on panels [p0, p1) and checks every output (exact
 * modes: ==, random: TOL_GEMM_Q_REL) and that nothing else was written. */
static void qcase_check(const qcase *c, const qrm_kernels *k, int p0, int p1) {
    size_t ldy = (size_t)c->N + 5;
    float *y = xcalloc((size_t)c->M * ldy, sizeof(float));
    for (size_t i = 0; i < (size_t)c->M * ldy; i++) y[i] = SENTINEL;
    if (c->type == QRM_WQ8) k->gemm_q8(&c->a, &c->w, p0, p1, y, ldy);
    else k->gemm_q4(&c->a, &c->w, p0, p1, y, ldy);
    for (int m = 0; m < c->M; m++)
        for (size_t n = 0; n < ldy; n++) {
            float got = y[m * ldy + n];
            int inside = (int)n >= p0 * 16 && (int)n < p1 * 16;
            if (!inside) {
                ck_assert_msg(got == SENTINEL, "%s q%d M=%d N=%d K=%d p=[%d,%d): y[%d][%zu] written",
                              k->name, c->type == QRM_WQ8 ? 8 : 4, c->M, c->N, c->K, p0, p1, m, n);
                continue;
            }
            double want = c->exact[(size_t)m * c->N + n], mag = c->mag[(size_t)m * c->N + n];
            int ok = c->mode == MODE_RANDOM ? fabs((double)got - want) <= TOL_GEMM_Q_REL * mag
                                            : (double)got == want;
            ck_assert_msg(ok, "%s q%d %s M=%d N=%d K=%d p=[%d,%d): y[%d][%zu] = %.9g, want %.9g "
                              "(sum of |terms| %.9g)",
                          k->name, c->type == QRM_WQ8 ? 8 : 4, mode_names[c->mode], c->M, c->N,
                          c->K, p0, p1, m, n, (double)got, want, mag);
        }
    free(y);
}


/* The reference and every family on one shape, both weight types, all modes. */
START_TEST(test_gemm_q) {
    int M = qshapes[_i].M, N = qshapes[_i].N, K = qshapes[_i].K;
    int p0 = qshapes[_i].p0, p1 = qshapes[_i].p1;
    for (int type = QRM_WQ8; type <= QRM_WQ4; type++)
        for (int mode = MODE_RANDOM; mode <= MODE_POW2; mode++) {
            qcase c;
            qcase_build(&c, type, M, N, K, mode, (uint64_t)(_i * 100 + type * 10 + mode));
            qcase_check(&c, qrm_kernels_scalar(), p0, p1);
            for (int f = 0; f < N_FAMILIES; f++) {
                const qrm_kernels *k = family(f);
                if (k) qcase_check(&c, k, p0, p1);
            }
            qcase_free(&c);
        }
}
END_TEST

/* gemm_q8_acc: every family gives the scalar reference's bits from a y
 * that is not zero, and a sum over K split into gemm_q8 of the first groups
 * then gemm_q8_acc of the rest is bit for bit gemm_q8 over all of K (what
 * attention's P.V over two key segments relies on). Panel by panel: a
 * panel's groups are contiguous in the packed layout, so a K range of one
 * panel is itself a packed matrix. */
START_TEST(test_gemm_q8_acc) {
    int M = qshapes[_i].M, N = qshapes[_i].N, K = qshapes[_i].K, G = K / QRM_QK;
    int p0 = qshapes[_i].p0, p1 = qshapes[_i].p1, g1 = G / 2 > 0 ? G / 2 : 1;
    qcase c;
    qcase_build(&c, QRM_WQ8, M, N, K, MODE_RANDOM, (uint64_t)(_i * 100 + 77));
    size_t ldy = (size_t)N + 3, ny = (size_t)M * ldy;
    float *y0 = xcalloc(ny, sizeof(float)), *y = xcalloc(ny, sizeof(float));
    float *whole = xcalloc(ny, sizeof(float)), *split = xcalloc(ny, sizeof(float));
    seed((uint64_t)_i + 5);
    for (size_t i = 0; i < ny; i++) y0[i] = rnd_unit() * 4.0f - 2.0f;
    memcpy(y, y0, ny * sizeof(float));
    qrm_kernels_scalar()->gemm_q8_acc(&c.a, &c.w, p0, p1, y, ldy);
    float *want = xcalloc(ny, sizeof(float));
    memcpy(want, y, ny * sizeof(float));
    /* the two halves of K as their own activations and panels */
    qrm_qact a1 = {M, g1 * QRM_QK, xcalloc((size_t)M * K, 1), xcalloc((size_t)M * G, 4), xcalloc((size_t)M * G, 4)};
    qrm_qact a2 = {M, K - g1 * QRM_QK, xcalloc((size_t)M * K, 1), xcalloc((size_t)M * G, 4), xcalloc((size_t)M * G, 4)};
    for (int m = 0; m < M; m++) {
        memcpy(a1.q + (size_t)m * a1.K, c.a.q + (size_t)m * K, (size_t)a1.K);
        memcpy(a2.q + (size_t)m * a2.K, c.a.q + (size_t)m * K + a1.K, (size_t)a2.K);
        for (int g = 0; g < G; g++) {
            (g < g1 ? a1.d : a2.d)[(size_t)m * (g < g1 ? g1 : G - g1) + (g < g1 ? g : g - g1)] = c.a.d[(size_t)m * G + g];
            (g < g1 ? a1.s : a2.s)[(size_t)m * (g < g1 ? g1 : G - g1) + (g < g1 ? g : g - g1)] = c.a.s[(size_t)m * G + g];
        }
    }
    for (int f = -1; f < N_FAMILIES; f++) {
        const qrm_kernels *k = f < 0 ? qrm_kernels_scalar() : family(f);
        if (!k) continue;
        memcpy(y, y0, ny * sizeof(float));
        k->gemm_q8_acc(&c.a, &c.w, p0, p1, y, ldy);
        for (size_t i = 0; i < ny; i++)
            ck_assert_msg(memcmp(&y[i], &want[i], 4) == 0, "%s gemm_q8_acc M=%d N=%d K=%d: y[%zu] = %a, scalar %a",
                          k->name, M, N, K, i, (double)y[i], (double)want[i]);
        if (G < 2) continue;
        memcpy(whole, y0, ny * sizeof(float));
        memcpy(split, y0, ny * sizeof(float));
        k->gemm_q8(&c.a, &c.w, p0, p1, whole, ldy);
        for (int p = p0; p < p1; p++) {
            qrm_qweight w1 = {QRM_WQ8, QRM_PANEL, a1.K, c.packed + (size_t)p * G * 512,
                              c.scales + (size_t)p * G * QRM_PANEL, 0};
            qrm_qweight w2 = {QRM_WQ8, QRM_PANEL, a2.K, c.packed + ((size_t)p * G + g1) * 512,
                              c.scales + ((size_t)p * G + g1) * QRM_PANEL, 0};
            k->gemm_q8(&a1, &w1, 0, 1, split + (size_t)p * QRM_PANEL, ldy);
            k->gemm_q8_acc(&a2, &w2, 0, 1, split + (size_t)p * QRM_PANEL, ldy);
        }
        for (size_t i = 0; i < ny; i++)
            ck_assert_msg(memcmp(&split[i], &whole[i], 4) == 0,
                          "%s M=%d N=%d K=%d: y[%zu] split at group %d = %a, whole %a", k->name, M, N,
                          K, i, g1, (double)split[i], (double)whole[i]);
        /* the same halves as views of the whole matrix (pgroups = G, q and d
         * at the half's first group), every panel of the range in one call */
        memcpy(split, y0, ny * sizeof(float));
        qrm_qweight v1 = {.type = QRM_WQ8, .N = N, .K = a1.K, .q = c.packed, .d = c.scales, .pgroups = G};
        qrm_qweight v2 = {.type = QRM_WQ8, .N = N, .K = a2.K, .q = c.packed + (size_t)g1 * 512,
                          .d = c.scales + (size_t)g1 * QRM_PANEL, .pgroups = G};
        k->gemm_q8(&a1, &v1, p0, p1, split, ldy);
        k->gemm_q8_acc(&a2, &v2, p0, p1, split, ldy);
        for (size_t i = 0; i < ny; i++)
            ck_assert_msg(memcmp(&split[i], &whole[i], 4) == 0,
                          "%s M=%d N=%d K=%d: y[%zu] split at group %d by views = %a, whole %a", k->name, M,
                          N, K, i, g1, (double)split[i], (double)whole[i]);
    }
    free(a1.q), free(a1.d), free(a1.s), free(a2.q), free(a2.d), free(a2.s);
    free(y0), free(y), free(want), free(whole), free(split);
    qcase_free(&c);
}
END_TEST

/* gemm_q4 on a view (pgroups wider than K / 32): groups g1.. of every panel
 * of a matrix in one call, against the same groups of each panel as a
 * matrix of its own; the bits must match in every family. */
START_TEST(test_gemm_q4_view) {
    int M = qshapes[_i].M, N = qshapes[_i].N, K = qshapes[_i].K, G = K / QRM_QK;
    int p0 = qshapes[_i].p0, p1 = qshapes[_i].p1, g1 = G / 2;
    if (G < 2) return;
    qcase c;
    qcase_build(&c, QRM_WQ4, M, N, K, MODE_RANDOM, (uint64_t)(_i * 100 + 78));
    size_t ldy = (size_t)N + 3, ny = (size_t)M * ldy;
    float *view = xcalloc(ny, sizeof(float)), *alone = xcalloc(ny, sizeof(float));
    qrm_qact a2 = {M, K - g1 * QRM_QK, xcalloc((size_t)M * K, 1), xcalloc((size_t)M * G, 4), xcalloc((size_t)M * G, 4)};
    for (int m = 0; m < M; m++) {
        memcpy(a2.q + (size_t)m * a2.K, c.a.q + (size_t)m * K + g1 * QRM_QK, (size_t)a2.K);
        for (int g = g1; g < G; g++) {
            a2.d[(size_t)m * (G - g1) + g - g1] = c.a.d[(size_t)m * G + g];
            a2.s[(size_t)m * (G - g1) + g - g1] = c.a.s[(size_t)m * G + g];
        }
    }
    for (int f = -1; f < N_FAMILIES; f++) {
        const qrm_kernels *k = f < 0 ? qrm_kernels_scalar() : family(f);
        if (!k) continue;
        qrm_qweight v = {.type = QRM_WQ4, .N = N, .K = a2.K, .q = c.packed + (size_t)g1 * 256,
                         .d = c.scales + (size_t)g1 * QRM_PANEL, .pgroups = G};
        k->gemm_q4(&a2, &v, p0, p1, view, ldy);
        for (int p = p0; p < p1; p++) {
            qrm_qweight w = {QRM_WQ4, QRM_PANEL, a2.K, c.packed + ((size_t)p * G + g1) * 256,
                             c.scales + ((size_t)p * G + g1) * QRM_PANEL, 0};
            k->gemm_q4(&a2, &w, 0, 1, alone + (size_t)p * QRM_PANEL, ldy);
        }
        for (int m = 0; m < M; m++)
            for (int n = p0 * QRM_PANEL; n < p1 * QRM_PANEL; n++) {
                size_t i = (size_t)m * ldy + (size_t)n;
                ck_assert_msg(memcmp(&view[i], &alone[i], 4) == 0, "%s gemm_q4 view M=%d N=%d K=%d: y[%d][%d] = %a, panel alone %a",
                              k->name, M, N, K, m, n, (double)view[i], (double)alone[i]);
            }
    }
    free(a2.q), free(a2.d), free(a2.s), free(view), free(alone);
    qcase_free(&c);
}
END_TEST

/* The largest group sums there are: every activation -127 against weights
 * -128 (q8) / -8 (q4), and +127 against 127 / 7, K = 1024 (y = 16646144 and
 * 1040384: still exact in float). Saturating int16 paths would fail here. */
START_TEST(test_gemm_q_saturation) {
    enum { M = 3, N = 32, K = 1024, G = K / QRM_QK };
    for (int type = QRM_WQ8; type <= QRM_WQ4; type++)
        for (int sign = -1; sign <= 1; sign += 2) {
            int8_t *W = xcalloc((size_t)N * K, 1);
            uint8_t *q = xcalloc((size_t)N * K, 1);
            uint16_t *d = xcalloc((size_t)N * G, 2);
            int wv = type == QRM_WQ8 ? (sign < 0 ? -128 : 127) : (sign < 0 ? -8 : 7);
            for (int i = 0; i < N * K; i++) W[i] = (int8_t)wv;
            for (int i = 0; i < N * G; i++) d[i] = 0x3c00;
            if (type == QRM_WQ8) pack_q8(W, N, K, q);
            else pack_q4(W, N, K, q);
            qrm_qweight w = {type, N, K, q, d, 0};
            qrm_qact a = {M, K, xcalloc((size_t)M * K, 1), xcalloc((size_t)M * G, 4),
                          xcalloc((size_t)M * G, 4)};
            for (int i = 0; i < M * K; i++) a.q[i] = (int8_t)(127 * sign);
            for (int i = 0; i < M * G; i++) a.d[i] = 1.0f, a.s[i] = 32 * 127 * sign;
            float want = (float)((double)K * 127 * wv * sign);
            float y[M * N];
            for (int f = -1; f < N_FAMILIES; f++) {
                const qrm_kernels *k = f < 0 ? qrm_kernels_scalar() : family(f);
                if (!k) continue;
                memset(y, 0, sizeof y);
                (type == QRM_WQ8 ? k->gemm_q8 : k->gemm_q4)(&a, &w, 0, N / 16, y, N);
                for (int i = 0; i < M * N; i++)
                    ck_assert_msg(y[i] == want, "%s q%d sign %d: y[%d] = %.9g, want %.9g", k->name,
                                  type == QRM_WQ8 ? 8 : 4, sign, i, (double)y[i], (double)want);
            }
            free(W), free(q), free(d), free(a.q), free(a.d), free(a.s);
        }
}
END_TEST

/* quantize_act feeding gemm: the path the forward pass takes, on one family
 * and on scalar, compared within TOL_GEMM_Q_REL of each other. */
START_TEST(test_quantize_then_gemm) {
    const qrm_kernels *k = family(_i);
    if (!k) return;
    enum { M = 5, N = 64, K = 256, G = K / QRM_QK };
    float *x = xcalloc(M * K, sizeof(float));
    seed(5);
    for (int i = 0; i < M * K; i++) x[i] = rnd_sym(2.0f);
    int8_t *W = xcalloc(N * K, 1);
    uint8_t *q = xcalloc(N * K, 1);
    uint16_t *d = xcalloc(N * G, 2);
    for (int i = 0; i < N * K; i++) W[i] = (int8_t)rnd_int(-128, 127);
    for (int i = 0; i < N * G; i++) d[i] = qrm_f32_to_f16(0.01f + 0.01f * rnd_unit());
    pack_q8(W, N, K, q);
    qrm_qweight w = {QRM_WQ8, N, K, q, d, 0};
    qrm_qact a1 = {M, K, xcalloc(M * K, 1), xcalloc(M * G, 4), xcalloc(M * G, 4)};
    qrm_qact a2 = {M, K, xcalloc(M * K, 1), xcalloc(M * G, 4), xcalloc(M * G, 4)};
    float y1[M * N], y2[M * N];
    qrm_kernels_scalar()->quantize_act(x, K, &a1);
    qrm_kernels_scalar()->gemm_q8(&a1, &w, 0, N / 16, y1, N);
    k->quantize_act(x, K, &a2);
    k->gemm_q8(&a2, &w, 0, N / 16, y2, N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double mag = 0;
            for (int g = 0; g < G; g++) {
                long is = 0;
                for (int i = 0; i < 32; i++) is += (long)a1.q[m * K + g * 32 + i] * W[n * K + g * 32 + i];
                mag += fabs((double)a1.d[m * G + g] * qrm_ref_w_scale(&w, n, g) * (double)is);
            }
            ck_assert_msg(fabs((double)y1[m * N + n] - y2[m * N + n]) <= 2 * TOL_GEMM_Q_REL * mag,
                          "%s: y[%d][%d] = %.9g, scalar %.9g", k->name, m, n, (double)y2[m * N + n],
                          (double)y1[m * N + n]);
        }
    free(x), free(W), free(q), free(d);
    free(a1.q), free(a1.d), free(a1.s), free(a2.q), free(a2.d), free(a2.s);
}
END_TEST

/* ==== float GEMM ==== */


static void check_gemm_f(const qrm_kernels *k, int f16, int M, int N, int K, int n0, int n1,
                         const float *x, size_t ldx, const float *wf, const uint16_t *wh) {
    size_t ldy = (size_t)N + 3;
    float *y = xcalloc((size_t)M * ldy, sizeof(float));
    for (size_t i = 0; i < (size_t)M * ldy; i++) y[i] = SENTINEL;
    if (f16) k->gemm_f16(x, ldx, M, wh, K, n0, n1, y, ldy);
    else k->gemm_f32(x, ldx, M, wf, K, n0, n1, y, ldy);
    for (int m = 0; m < M; m++)
        for (size_t n = 0; n < ldy; n++) {
            float got = y[m * ldy + n];
            if ((int)n < n0 || (int)n >= n1) {
                ck_assert_msg(got == SENTINEL, "%s gemm_f%d M=%d K=%d n=[%d,%d): y[%d][%zu] written",
                              k->name, f16 ? 16 : 32, M, K, n0, n1, m, n);
                continue;
            }
            double want = 0, mag = 0;
            for (int i = 0; i < K; i++) {
                double wv = f16 ? (double)qrm_f16_to_f32(wh[n * K + i]) : (double)wf[n * K + i];
                double t = (double)x[m * ldx + i] * wv;
                want += t, mag += fabs(t);
            }
            ck_assert_msg(fabs((double)got - want) <= TOL_DOT_REL(K) * mag,
                          "%s gemm_f%d M=%d K=%d: y[%d][%zu] = %.9g, want %.9g (sum |terms| %g)",
                          k->name, f16 ? 16 : 32, M, K, m, n, (double)got, want, mag);
        }
    free(y);
}

START_TEST(test_gemm_float) {
    int M = fshapes[_i].M, N = fshapes[_i].N, K = fshapes[_i].K;
    size_t ldx = (size_t)K + 2;
    float *x = xcalloc((size_t)M * ldx, sizeof(float));
    float *wf = xcalloc((size_t)N * K, sizeof(float));
    uint16_t *wh = xcalloc((size_t)N * K, sizeof(uint16_t));
    seed(300 + _i);
    for (size_t i = 0; i < (size_t)M * ldx; i++) x[i] = rnd_sym(2.0f);
    for (int i = 0; i < N * K; i++) wf[i] = rnd_sym(0.5f), wh[i] = qrm_f32_to_f16(wf[i]);
    for (int f = -1; f < N_FAMILIES; f++) {
        const qrm_kernels *k = f < 0 ? qrm_kernels_scalar() : family(f);
        if (!k) continue;
        check_gemm_f(k, 0, M, N, K, fshapes[_i].n0, fshapes[_i].n1, x, ldx, wf, wh);
        check_gemm_f(k, 1, M, N, K, fshapes[_i].n0, fshapes[_i].n1, x, ldx, wf, wh);
    }
    free(x), free(wf), free(wh);
}
END_TEST

/* ==== float building blocks ==== */

static const int vec_sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1000, 1027};
#define N_VEC_SIZES ((int)(sizeof vec_sizes / sizeof vec_sizes[0]))

/* An output buffer of n floats plus 8 guard values after it. */
static float *guarded(int n) {
    float *p = xcalloc((size_t)n + 8, sizeof(float));
    for (int i = n; i < n + 8; i++) p[i] = SENTINEL;
    return p;
}
static void check_guard(const float *p, int n, const char *fam, const char *what) {
    for (int i = n; i < n + 8; i++)
        ck_assert_msg(p[i] == SENTINEL, "%s %s n=%d: wrote past the end (index %d)", fam, what, n, i);
}

/* The scalar reference and every family, each against double precision. */
#define FOR_EACH_KERNELS(k)                                                                       \
    for (int f_ = -1; f_ < N_FAMILIES; f_++)                                                      \
        for (const qrm_kernels *k = f_ < 0 ? qrm_kernels_scalar() : family(f_); k; k = NULL)

START_TEST(test_dot_axpy_scale) {
    for (int si = -1; si < N_VEC_SIZES; si++) {
        int n = si < 0 ? 0 : vec_sizes[si];
        float *a = xcalloc((size_t)n, sizeof(float)), *b = xcalloc((size_t)n, sizeof(float));
        float *y0 = xcalloc((size_t)n, sizeof(float));
        seed(400 + n);
        for (int i = 0; i < n; i++) a[i] = rnd_sym(3.0f), b[i] = rnd_sym(3.0f), y0[i] = rnd_sym(1.0f);
        double dot = 0, mag = 0;
        for (int i = 0; i < n; i++) dot += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
        FOR_EACH_KERNELS(k) {
            float got = k->dot_f32(a, b, n);
            ck_assert_msg(fabs((double)got - dot) <= TOL_DOT_REL(n) * mag,
                          "%s dot n=%d: %.9g, want %.9g", k->name, n, (double)got, dot);
            float *y = guarded(n);
            memcpy(y, y0, (size_t)n * sizeof(float));
            k->axpy_f32(y, -0.75f, a, n);
            check_guard(y, n, k->name, "axpy");
            for (int i = 0; i < n; i++) {
                double want = (double)y0[i] - 0.75 * a[i];
                double tol = TOL_AXPY_REL * (fabs((double)y0[i]) + fabs(0.75 * a[i]));
                ck_assert_msg(fabs((double)y[i] - want) <= tol, "%s axpy n=%d: y[%d] = %.9g, want %.9g",
                              k->name, n, i, (double)y[i], want);
            }
            memcpy(y, y0, (size_t)n * sizeof(float));
            k->scale_f32(y, 1.3f, n);
            check_guard(y, n, k->name, "scale");
            for (int i = 0; i < n; i++) /* one rounding everywhere: exact match */
                ck_assert_msg(y[i] == y0[i] * 1.3f, "%s scale n=%d: y[%d] = %.9g, want %.9g", k->name,
                              n, i, (double)y[i], (double)(y0[i] * 1.3f));
            k->scale_mul_f32(y, a, 0.37f, b, n);
            check_guard(y, n, k->name, "scale_mul");
            for (int i = 0; i < n; i++) /* two roundings, (a s) first: exact */
                ck_assert_msg(y[i] == a[i] * 0.37f * b[i], "%s scale_mul n=%d: y[%d] = %.9g, want %.9g",
                              k->name, n, i, (double)y[i], (double)(a[i] * 0.37f * b[i]));
            free(y);
        }
        free(a), free(b), free(y0);
    }
}
END_TEST

START_TEST(test_rmsnorm) {
    for (int si = 0; si < N_VEC_SIZES; si++) {
        int n = vec_sizes[si];
        float *x = xcalloc((size_t)n, sizeof(float)), *w = xcalloc((size_t)n, sizeof(float));
        seed(500 + n);
        for (int i = 0; i < n; i++) x[i] = rnd_sym(10.0f), w[i] = 0.5f + rnd_unit();
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
        double inv = 1.0 / sqrt(ss / n + 1e-5);
        FOR_EACH_KERNELS(k) {
            for (int inplace = 0; inplace < 2; inplace++) {
                float *out = guarded(n);
                if (inplace) memcpy(out, x, (size_t)n * sizeof(float));
                k->rmsnorm_f32(out, inplace ? out : x, w, n, 1e-5f);
                check_guard(out, n, k->name, "rmsnorm");
                for (int i = 0; i < n; i++) {
                    double want = (double)x[i] * inv * w[i];
                    ck_assert_msg(fabs((double)out[i] - want) <= TOL_RMSNORM_REL(n) * fabs(want),
                                  "%s rmsnorm n=%d%s: out[%d] = %.9g, want %.9g", k->name, n,
                                  inplace ? " in place" : "", i, (double)out[i], want);
                }
                free(out);
            }
        }
        free(x), free(w);
    }
}
END_TEST

START_TEST(test_softmax) {
    for (int si = 0; si < N_VEC_SIZES; si++) {
        int n = vec_sizes[si];
        for (int variant = 0; variant < 4; variant++) {
            float *x0 = xcalloc((size_t)n, sizeof(float));
            seed(600 + n * 3 + variant);
            /* variant 3: spread far enough that many e^(x - max) are below
             * FLT_MIN, where the kernels write 0, never a subnormal */
            for (int i = 0; i < n; i++) x0[i] = rnd_sym(variant == 3 ? 150.0f : 30.0f);
            if (variant == 1) /* masked positions (-inf), never all of them */
                for (int i = 0; i < n; i++)
                    if (i % 3 == 1) x0[i] = -INFINITY;
            if (variant == 2) /* all equal, large */
                for (int i = 0; i < n; i++) x0[i] = 1e4f;
            double mx = -INFINITY, sum = 0, dsum = 0;
            for (int i = 0; i < n; i++) mx = fmax(mx, x0[i]);
            for (int i = 0; i < n; i++) {
                double e = exp((double)x0[i] - mx);
                sum += e;
                if (e > 0) dsum += e * fabs((double)x0[i] - mx);
            }
            double dmean = dsum / sum;
            FOR_EACH_KERNELS(k) {
                float *x = guarded(n);
                memcpy(x, x0, (size_t)n * sizeof(float));
                float *u = guarded(n);
                memcpy(u, x0, (size_t)n * sizeof(float));
                float inv = k->softmax_unscaled_f32(u, n);
                check_guard(u, n, k->name, "softmax_unscaled");
                for (int i = 0; i < n; i++) /* 1 / inv is the sum within an ulp */
                    ck_assert_msg(u[i] == 0.0f || u[i] >= 0x1p-125f / inv * 0.99999f,
                                  "%s softmax_unscaled n=%d variant %d: u[%d] = %a kept below 2^-125 of the sum",
                                  k->name, n, variant, i, (double)u[i]);
                k->softmax_f32(x, n);
                check_guard(x, n, k->name, "softmax");
                /* the unscaled values times the returned 1 / sum are softmax's, bit for bit */
                k->scale_f32(u, inv, n);
                ck_assert_msg(memcmp(u, x, (size_t)n * sizeof(float)) == 0,
                              "%s softmax_unscaled n=%d variant %d: times its 1 / sum differs from softmax",
                              k->name, n, variant);
                ck_assert_msg(fabs(1.0 / (double)inv - sum) <= TOL_SOFTMAX_REL(n) * sum,
                              "%s softmax_unscaled n=%d variant %d: 1 / sum %.9g, want 1 / %.9g", k->name, n,
                              variant, (double)inv, sum);
                /* no subnormal, and 0 for every term below 2^-125 of the sum
                 * (arch/float_kernels.inc): a subnormal operand costs Intel
                 * cores a microcode assist per instruction */
                for (int i = 0; i < n; i++) {
                    ck_assert_msg(x[i] == 0.0f || x[i] >= FLT_MIN,
                                  "%s softmax n=%d variant %d: x[%d] = %a is subnormal", k->name, n, variant, i,
                                  (double)x[i]);
                }
                free(u);
                for (int i = 0; i < n; i++) {
                    double want = exp((double)x0[i] - mx) / sum;
                    double d = want > 0 ? fabs((double)x0[i] - mx) : 0;
                    double tol = (TOL_SOFTMAX_REL(n) + U_F32 * (d + dmean)) * want;
                    if (want < TOL_SOFTMAX_FLUSH) tol = TOL_SOFTMAX_FLUSH;
                    ck_assert_msg(fabs((double)x[i] - want) <= tol,
                                  "%s softmax n=%d variant %d: x[%d] = %.9g, want %.9g (in %.9g)",
                                  k->name, n, variant, i, (double)x[i], want, (double)x0[i]);
                }
                free(x);
            }
            free(x0);
        }
    }
}
END_TEST

/* The gate values of the activation tests: a sweep, extremes and random. */
static float gate_value(int i, int n) {
    static const float special[] = {0.0f, -0.0f, 1e-20f, -1e-20f, 88.0f, -88.0f, 90.0f, -90.0f,
                                    200.0f, -200.0f, 1e-3f, -1e-3f, 15.0f, -15.0f};
    if (i < (int)(sizeof special / sizeof special[0])) return special[i];
    if (i % 2) return -20.0f + 40.0f * (float)i / (float)n;
    return rnd_sym(12.0f);
}

/* e^x itself, on a dense sweep of the range where the result is a normal
 * float, against double precision: every family within TOL_EXP_REL (the
 * bound arch/float_kernels.inc states); below the normal range within
 * FLT_MIN absolutely; the ends exactly 0 and +inf. */
START_TEST(test_exp) {
    enum { N = 200003 };
    float *x = xcalloc(N + 4, sizeof(float)), *y = xcalloc(N + 4, sizeof(float));
    for (int i = 0; i < N; i++) x[i] = -87.0f + (88.7f + 87.0f) * (float)i / (float)(N - 1);
    x[N] = -200.0f, x[N + 1] = -INFINITY, x[N + 2] = 200.0f, x[N + 3] = INFINITY;
    FOR_EACH_KERNELS(k) {
        k->exp_f32(y, x, N + 4);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double want = exp((double)x[i]), rel = fabs((double)y[i] - want) / want;
            if (rel > worst) worst = rel;
            ck_assert_msg(rel <= TOL_EXP_REL, "%s exp(%.9g) = %.9g, want %.9g (relative %.3g)", k->name,
                          (double)x[i], (double)y[i], want, rel);
        }
        ck_assert_msg(y[N] == 0.0f && y[N + 1] == 0.0f && isinf(y[N + 2]) && isinf(y[N + 3]),
                      "%s exp at the ends: %g %g %g %g", k->name, (double)y[N], (double)y[N + 1],
                      (double)y[N + 2], (double)y[N + 3]);
        printf("%s exp over [-87, 88.7]: worst relative error %.3g (%.2f ulp)\n", k->name, worst,
               worst / FLT_EPSILON);
    }
    free(x), free(y);
}
END_TEST

START_TEST(test_silu_gelu) {
    for (int si = 0; si < N_VEC_SIZES; si++) {
        int n = vec_sizes[si] + 14;
        float *g0 = xcalloc((size_t)n, sizeof(float)), *up = xcalloc((size_t)n, sizeof(float));
        seed(700 + n);
        for (int i = 0; i < n; i++) g0[i] = gate_value(i, n), up[i] = rnd_sym(2.0f);
        FOR_EACH_KERNELS(k) {
            float *g = guarded(n);
            memcpy(g, g0, (size_t)n * sizeof(float));
            k->silu_mul_f32(g, up, n);
            check_guard(g, n, k->name, "silu");
            for (int i = 0; i < n; i++) {
                double x = g0[i], want = x / (1.0 + exp(-x)) * up[i];
                ck_assert_msg(fabs((double)g[i] - want) <= TOL_SILU_REL * fabs(want) + TOL_TINY_ABS,
                              "%s silu n=%d: gate %.9g up %.9g -> %.9g, want %.9g", k->name, n, x,
                              (double)up[i], (double)g[i], want);
            }
            memcpy(g, g0, (size_t)n * sizeof(float));
            k->gelu_tanh_mul_f32(g, up, n);
            check_guard(g, n, k->name, "gelu");
            for (int i = 0; i < n; i++) {
                double x = g0[i];
                double want = 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) * up[i];
                double tol = TOL_GELU_REL * fabs(want) + TOL_GELU_ABS * fabs(x * up[i]) + TOL_TINY_ABS;
                ck_assert_msg(fabs((double)g[i] - want) <= tol,
                              "%s gelu n=%d: gate %.9g up %.9g -> %.9g, want %.9g", k->name, n, x,
                              (double)up[i], (double)g[i], want);
            }
            free(g);
        }
        free(g0), free(up);
    }
}
END_TEST

START_TEST(test_rope) {
    static const int dims[] = {2, 6, 14, 16, 32, 34, 64, 80, 128, 256};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        int d = dims[di], h = d / 2;
        float *x0 = xcalloc((size_t)d, sizeof(float));
        float *c = xcalloc((size_t)h, sizeof(float)), *s = xcalloc((size_t)h, sizeof(float));
        seed(800 + d);
        for (int i = 0; i < d; i++) x0[i] = rnd_sym(4.0f);
        for (int i = 0; i < h; i++) {
            double th = 37.0 * pow(10000.0, -2.0 * i / d);
            c[i] = (float)cos(th), s[i] = (float)sin(th);
        }
        FOR_EACH_KERNELS(k) {
            float *x = guarded(d);
            memcpy(x, x0, (size_t)d * sizeof(float));
            k->rope_neox_f32(x, c, s, d);
            check_guard(x, d, k->name, "rope");
            for (int i = 0; i < h; i++) {
                double a = x0[i], b = x0[i + h];
                double w0 = a * c[i] - b * s[i], w1 = b * c[i] + a * s[i];
                double t0 = TOL_ROPE_REL * (fabs(a * c[i]) + fabs(b * s[i]));
                double t1 = TOL_ROPE_REL * (fabs(b * c[i]) + fabs(a * s[i]));
                ck_assert_msg(fabs((double)x[i] - w0) <= t0 && fabs((double)x[i + h] - w1) <= t1,
                              "%s rope d=%d: pair %d = (%.9g, %.9g), want (%.9g, %.9g)", k->name, d,
                              i, (double)x[i], (double)x[i + h], w0, w1);
            }
            free(x);
        }
        free(x0), free(c), free(s);
    }
}
END_TEST

/* ==== f16 conversion: portable C against the hardware converter ==== */

#if defined(__x86_64__)
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) {
    return (uint16_t)_mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT));
}
static int hw_f16_available(void) { return qrm_cpu_features_get()->f16c; }
#elif defined(__aarch64__)
static float hw_f16_to_f32(uint16_t h) {
    __fp16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}
static uint16_t hw_f32_to_f16(float f) {
    __fp16 v = (__fp16)f;
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
}
static int hw_f16_available(void) { return 1; }
#else
static float hw_f16_to_f32(uint16_t h) { return qrm_f16_to_f32(h); }
static uint16_t hw_f32_to_f16(float f) { return qrm_f32_to_f16(f); }
static int hw_f16_available(void) { return 0; }
#endif

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

START_TEST(test_f16_to_f32_all) {
    if (!hw_f16_available()) {
        printf("test_kernels: no hardware f16 conversion on this CPU: f16 cross-check skipped\n");
        return;
    }
    for (uint32_t h = 0; h < 65536; h++) {
        float a = qrm_f16_to_f32((uint16_t)h), b = hw_f16_to_f32((uint16_t)h);
        if (isnan(b)) { /* the hardware quiets signalling NaNs; both must be NaN */
            ck_assert_msg(isnan(a), "f16 %04x: %a, want NaN", h, (double)a);
            continue;
        }
        ck_assert_msg(f32_bits(a) == f32_bits(b), "f16 %04x: %a, hardware %a", h, (double)a,
                      (double)b);
    }
}
END_TEST

START_TEST(test_f32_to_f16) {
    if (!hw_f16_available()) return;
    /* Every half's neighbourhood: the value, the halfway points to its
     * neighbours and one float ulp either side of them (rounding edges), plus
     * random bit patterns over the whole float range. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float v = qrm_f16_to_f32((uint16_t)h), nx = qrm_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)v + (double)nx) / 2);
        float cand[] = {v, mid, nextafterf(mid, 0), nextafterf(mid, INFINITY), -v, -mid,
                        nextafterf(v, INFINITY)};
        for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
            uint16_t a = qrm_f32_to_f16(cand[i]), b = hw_f32_to_f16(cand[i]);
            ck_assert_msg(a == b, "f32 %a: f16 %04x, hardware %04x", (double)cand[i], a, b);
        }
    }
    seed(900);
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rnd() ^ (rnd() << 15);
        float f;
        memcpy(&f, &u, 4);
        uint16_t a = qrm_f32_to_f16(f), b = hw_f32_to_f16(f);
        if (isnan(f)) {
            ck_assert_msg((a & 0x7c00) == 0x7c00 && (a & 0x3ff), "NaN %08x -> %04x", u, a);
            continue;
        }
        ck_assert_msg(a == b, "f32 %08x (%a): f16 %04x, hardware %04x", u, (double)f, a, b);
    }
    float edges[] = {65504.0f, 65519.99f, 65520.0f, 1e10f, INFINITY, -INFINITY, 5.96e-8f,
                     2.98e-8f, 2.9802322e-8f, 2.9802326e-8f, 6.1035156e-5f, 6.1e-5f, 0.0f, -0.0f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        ck_assert_msg(qrm_f32_to_f16(edges[i]) == hw_f32_to_f16(edges[i]), "f32 %a: %04x, hw %04x",
                      (double)edges[i], qrm_f32_to_f16(edges[i]), hw_f32_to_f16(edges[i]));
}
END_TEST

/* Every family's f32_to_f16 kernel (the KV cache store) against the
 * portable conversion of the value clamped to +-65504, bit for bit, over
 * lengths that leave every tail and values at the rounding and range edges
 * (past 65504 and +-inf: the largest half, never inf); NaN stays NaN. */
START_TEST(test_f32_to_f16_kernels) {
    enum { N = 131 };
    float src[N];
    uint16_t got[N + 1], want[N];
    static const float edges[] = {65504.0f, 65519.99f, 65520.0f, 1e10f, INFINITY, -INFINITY,
                                  -65504.0f, -65519.99f, -65520.0f, -1e10f, 65505.0f,
                                  5.96e-8f, 2.98e-8f, 6.1035156e-5f, 0.0f, -0.0f, 1.0f + 0x1p-11f,
                                  1.0f + 0x1p-11f + 0x1p-23f, -3.0001f};
    seed(901);
    for (int f = -1; f < N_FAMILIES; f++) {
        const qrm_kernels *k = f < 0 ? qrm_kernels_scalar() : family(f);
        if (!k) continue;
        for (int rep = 0; rep < 200; rep++) {
            for (int i = 0; i < N; i++) {
                uint32_t u = rnd() ^ (rnd() << 15);
                if (rep % 3 == 0) src[i] = edges[(size_t)(i + rep) % (sizeof edges / sizeof edges[0])];
                else if (rep % 3 == 1) src[i] = rnd_sym(40.0f);
                else memcpy(&src[i], &u, 4);
                /* the cache saturates at the largest half */
                float sat = src[i] > 65504.0f ? 65504.0f : src[i] < -65504.0f ? -65504.0f : src[i];
                want[i] = qrm_f32_to_f16(sat);
            }
            int n = rep % N + 1;
            got[n] = 0xbeef; /* nothing written past n */
            k->f32_to_f16(got, src, n);
            ck_assert_msg(got[n] == 0xbeef, "%s: wrote past %d", k->name, n);
            for (int i = 0; i < n; i++) {
                if (isnan(src[i])) {
                    ck_assert_msg((got[i] & 0x7c00) == 0x7c00 && (got[i] & 0x3ff), "%s: NaN -> %04x",
                                  k->name, got[i]);
                    continue;
                }
                ck_assert_msg(got[i] == want[i], "%s n=%d i=%d: %a -> %04x, want %04x", k->name, n,
                              i, (double)src[i], got[i], want[i]);
            }
        }
    }
}
END_TEST

/* ==== family selection ==== */

START_TEST(test_select_by_name) {
    char err[160] = "";
    qrm_cpu_features none;
    memset(&none, 0, sizeof none);
    /* unknown names */
    ck_assert(qrm_kernels_by_name("avx3", qrm_cpu_features_get(), err, sizeof err) == NULL);
    ck_assert_msg(strstr(err, "unknown") != NULL, "message: %s", err);
    err[0] = 0;
    ck_assert(qrm_kernels_by_name("", qrm_cpu_features_get(), err, sizeof err) == NULL);
    ck_assert(err[0] != 0);
    /* scalar always works, and is what a featureless CPU gets */
    const qrm_kernels *s = qrm_kernels_by_name("scalar", &none, err, sizeof err);
    ck_assert(s != NULL && s == qrm_kernels_scalar());
    ck_assert(qrm_kernels_best(&none) == qrm_kernels_scalar());
    /* a family of this architecture on a CPU without it */
    for (int f = 0; f < N_FAMILIES; f++) {
        err[0] = 0;
        ck_assert_msg(qrm_kernels_by_name(family_names[f], &none, err, sizeof err) == NULL,
                      "%s accepted on a CPU without features", family_names[f]);
        ck_assert_msg(strstr(err, "not supported") != NULL, "message: %s", err);
    }
    /* a family of the other architecture */
#if defined(__x86_64__)
    const char *foreign = "neon";
#else
    const char *foreign = "avx2";
#endif
    err[0] = 0;
    ck_assert(qrm_kernels_by_name(foreign, qrm_cpu_features_get(), err, sizeof err) == NULL);
    ck_assert_msg(strstr(err, "not built") != NULL, "message: %s", err);
#if defined(__x86_64__)
    /* a CPU with AVX2 + FMA + F16C must get the avx2 family */
    const qrm_cpu_features *cpu = qrm_cpu_features_get();
    if (cpu->avx2 && cpu->fma && cpu->f16c) {
        const qrm_kernels *k = qrm_kernels_by_name("avx2", cpu, err, sizeof err);
        ck_assert_msg(k != NULL, "avx2 refused on an AVX2 CPU: %s", err);
        ck_assert_str_eq(k->name, "avx2");
    }
#endif
}
END_TEST

START_TEST(test_select_env) {
    char err[160] = "";
    ck_assert_int_eq(qrm_set_default_isa("scalar", err, sizeof err), QRM_OK);
    ck_assert(qrm_kernels_select(err, sizeof err) == qrm_kernels_scalar());
    err[0] = 0;
    ck_assert_int_eq(qrm_set_default_isa("no-such-isa", err, sizeof err), QRM_EINVAL);
    ck_assert_msg(strstr(err, "no-such-isa") != NULL, "message: %s", err);
    ck_assert_int_eq(qrm_set_default_isa("", err, sizeof err), QRM_OK);
    ck_assert(qrm_kernels_select(err, sizeof err) == qrm_kernels_best(qrm_cpu_features_get()));
    tu_apply_isa_env();
}
END_TEST

START_TEST(test_tables_complete) {
    for (int f = -1; f < N_FAMILIES; f++) {
        const qrm_kernels *k = f < 0 ? qrm_kernels_scalar() : family(f);
        if (!k) continue;
        ck_assert(k->name != NULL);
        ck_assert_str_eq(k->name, f < 0 ? "scalar" : family_names[f]);
        ck_assert_msg(k->quantize_act && k->gemm_q8 && k->gemm_q8_acc && k->gemm_q4 && k->gemm_f32 && k->gemm_f16 &&
                          k->dot_f32 && k->axpy_f32 && k->scale_f32 && k->scale_mul_f32 && k->rmsnorm_f32 &&
                          k->softmax_f32 && k->softmax_unscaled_f32 && k->silu_mul_f32 && k->gelu_tanh_mul_f32 &&
                          k->rope_neox_f32 && k->wsum_rows_f32 && k->wsum_rows_f16 && k->f32_to_f16 &&
                          k->exp_f32,
                      "%s: a kernel is missing", k->name);
    }
}
END_TEST

static Suite *kernels_suite(void) {
    Suite *s = suite_create("kernels");
    TCase *ref = tcase_create("reference");
    tcase_add_test(ref, test_ref_q8_layout_by_hand);
    tcase_add_test(ref, test_ref_q4_layout_by_hand);
    tcase_add_test(ref, test_ref_layouts_roundtrip);
    tcase_add_test(ref, test_ref_quantize_group);
    suite_add_tcase(s, ref);

    TCase *sel = tcase_create("selection");
    tcase_add_test(sel, test_select_by_name);
    tcase_add_test(sel, test_select_env);
    tcase_add_test(sel, test_tables_complete);
    suite_add_tcase(s, sel);

    TCase *q = tcase_create("quantized");
    tcase_set_timeout(q, 300);
    tcase_add_loop_test(q, test_quantize_act, 0, N_FAMILIES);
    tcase_add_loop_test(q, test_gemm_q, 0, N_QSHAPES);
    tcase_add_loop_test(q, test_gemm_q8_acc, 0, N_QSHAPES);
    tcase_add_loop_test(q, test_gemm_q4_view, 0, N_QSHAPES);
    tcase_add_test(q, test_gemm_q_saturation);
    tcase_add_loop_test(q, test_quantize_then_gemm, 0, N_FAMILIES);
    suite_add_tcase(s, q);

    TCase *fl = tcase_create("float");
    tcase_set_timeout(fl, 300);
    tcase_add_loop_test(fl, test_gemm_float, 0, N_FSHAPES);
    tcase_add_test(fl, test_dot_axpy_scale);
    tcase_add_test(fl, test_rmsnorm);
    tcase_add_test(fl, test_softmax);
    tcase_add_test(fl, test_exp);
    tcase_add_test(fl, test_silu_gelu);
    tcase_add_test(fl, test_rope);
    suite_add_tcase(s, fl);

    TCase *h = tcase_create("f16");
    tcase_set_timeout(h, 300);
    tcase_add_test(h, test_f16_to_f32_all);
    tcase_add_test(h, test_f32_to_f16);
    tcase_add_test(h, test_f32_to_f16_kernels);
    suite_add_tcase(s, h);
    return s;
}

int main(void) {
    /* Say which families run; the rest are skipped, not failed. */
    int tested = 0;
    for (int f = 0; f < N_FAMILIES; f++) {
        char err[160];
        if (qrm_kernels_by_name(family_names[f], qrm_cpu_features_get(), err, sizeof err)) {
            printf("test_kernels: testing family %s\n", family_names[f]);
            tested++;
        } else {
            printf("test_kernels: family %s skipped: %s\n", family_names[f], err);
        }
    }
    if (!tested) printf("test_kernels: only the scalar reference is tested on this CPU\n");
    fflush(stdout);
    return tu_run(kernels_suite());
}
