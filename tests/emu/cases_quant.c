/* Activation quantization and the quantized GEMMs (q8, q4): every result is
 * compared bit for bit where the arithmetic is exact (quantization itself,
 * extreme and power-of-two modes, saturation) and within TOL_GEMM_Q_REL of a
 * double evaluation otherwise. Shapes are those of tests/test_kernels.c
 * (its GEMV {1, 3072, 1024} is {1, 512, 1024} here, to save emulated time),
 * plus 4-token and odd-panel tiles. */
#include <string.h>

#include "cases.h"
#include "f16.h"
#include "harness.h"

#ifdef HOST
#include <math.h>
#include "kernels_ref.h"
#endif

#define QK QRM_QK

/* ---------------- quantize_act ---------------- */

static void quantize_and_record(const float *x, int M, int K, size_t ldx, const char *what) {
    int G = K / QK;
    qrm_qact a = {M, K, case_alloc((size_t)M * K), case_alloc((size_t)M * G * 4),
                  case_alloc((size_t)M * G * 4)};
    case_name("quantize_act %s M=%d K=%d", what, M, K);
    kern->quantize_act(x, ldx, &a);
    record(a.q, (size_t)M * K);
    record(a.d, (size_t)M * G * 4);
    record(a.s, (size_t)M * G * 4);
#ifdef HOST
    check_begin();
    for (int m = 0; m < M; m++)
        for (int g = 0; g < G; g++) {
            int8_t q[QK];
            float d;
            int32_t s;
            qrm_ref_quantize_group(x + m * ldx + g * QK, q, &d, &s);
            size_t gi = (size_t)m * G + g;
            if (memcmp(&d, &a.d[gi], 4))
                check_fail("m %d g %d: d %a, want %a", m, g, (double)a.d[gi], (double)d);
            if (a.s[gi] != s) check_fail("m %d g %d: s %d, want %d", m, g, a.s[gi], s);
            for (int i = 0; i < QK; i++) {
                int8_t got = a.q[(size_t)m * K + g * QK + i];
                if (got != q[i])
                    check_fail("m %d k %d: q %d, want %d (x = %a)", m, g * QK + i, got, q[i],
                               (double)x[m * ldx + g * QK + i]);
            }
        }
    check_end();
#endif
}

/* Row 0 of the special input: one group per edge (ties, -0, the bottom and
 * top of the float range, QRM_QACT_MIN_AMAX exactly, a negative maximum). */
static void fill_special_groups(float *row) {
    float *g = row;
    for (int i = 0; i < QK; i++) g[i] = (float)(i - 16) + 0.5f;
    g[31] = 127.0f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = (float)(i - 16) * 0.5f + 0.25f;
    g[7] = -63.5f;
    g += QK;
    g += QK; /* all zero */
    for (int i = 0; i < QK; i++) g[i] = -0.0f;
    g[5] = 1e-30f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = rnd_sym(3e37f);
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = (i % 2 ? 1 : -1) * 3e-38f * (float)(i + 1) / 32.0f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = rnd_sym(1e-3f);
    g[30] = -1000.0f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = 0.3f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = i % 2 ? -5.0f : 5.0f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = rnd_sym(3.4e38f);
    g[3] = -3.4028235e38f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = (i % 2 ? -1 : 1) * 1e-40f * (float)i; /* subnormals */
    g[9] = 1e-30f;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = (i % 2 ? -1 : 1) * QRM_QACT_MIN_AMAX * (float)i / 31.0f;
    g[31] = -QRM_QACT_MIN_AMAX;
    g += QK;
    for (int i = 0; i < QK; i++) g[i] = (float)(i - 16) * 0.25f + 0.125f; /* every q a tie */
    g[0] = -31.75f;
}

void cases_quantize_act(void) {
    enum { M = 7, K = 1024, LDX = K + 13 };
    size_t nx = strided(M, LDX, K);
    case_begin();
    float *x = case_alloc(nx * 4);
    rng_seed(21);
    for (size_t i = 0; i < nx; i++) x[i] = rnd_sym(3.0f);
    input_hash(x, nx * 4);
    quantize_and_record(x, M, K, LDX, "random");

    memset(x, 0, nx * 4);
    fill_special_groups(x);
    /* other rows: integers and halves under a group max of 127 (d = 1, so
     * every half is a rounding tie), and some random values */
    for (int m = 1; m < M; m++)
        for (int i = 0; i < K; i++) {
            float v = (float)rnd_int(-127, 127);
            x[m * LDX + i] = rnd() % 3 ? v + 0.5f * (float)(rnd() % 2) : rnd_sym(100.0f);
            if (i % QK == 0) x[m * LDX + i] = 127.0f;
        }
    input_hash(x, nx * 4);
    quantize_and_record(x, M, K, LDX, "special");

    float *one = case_alloc(QK * 4);
    memcpy(one, x, QK * 4);
    input_hash(one, QK * 4);
    quantize_and_record(one, 1, QK, QK, "one group");
    case_end();
}

/* ---------------- packing (docs/FORMAT.md) ---------------- */

static void pack_q8(const int8_t *W, int N, int K, uint8_t *out) {
    int G = K / QK;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            int p = n / 16, r = n % 16, g = k / QK, kk = k % QK;
            out[((size_t)p * G + g) * 512 + (kk / 4) * 64 + r * 4 + kk % 4] =
                (uint8_t)W[(size_t)n * K + k];
        }
}

static void pack_q4(const int8_t *W, int N, int K, uint8_t *out) {
    int G = K / QK;
    memset(out, 0, (size_t)N * K / 2);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            int p = n / 16, r = n % 16, g = k / QK, kk = k % QK;
            int e = (kk / 4) * 64 + r * 4 + kk % 4;
            uint8_t u = (uint8_t)(W[(size_t)n * K + k] + 8);
            uint8_t *b = &out[((size_t)p * G + g) * 256 + (e & 255)];
            *b |= e < 256 ? u : (uint8_t)(u << 4);
        }
}

static size_t scale_index(int K, int n, int g) {
    return ((size_t)(n / 16) * (K / QK) + g) * 16 + n % 16;
}

/* ---------------- gemm_q8 / gemm_q4 ---------------- */

enum { MODE_RANDOM, MODE_EXTREME, MODE_POW2 };
static const char *const mode_names[] = {"random", "extreme", "pow2"};

/* M % 4 = 0..3, one and two token blocks (130), GEMV (M = 1) and GEMM, panel
 * ranges that start and end anywhere. */
#include "../kernel_shapes.h"

/* Weights W[N][K] in [wmin, wmax] with their f16 scales, by mode: random;
 * extreme (only wmin / wmax, whole groups of wmin); pow2 (scales 1 or 2). */
static void make_weights(int mode, int N, int K, int wmin, int wmax, int8_t *W, uint16_t *scales) {
    int G = K / QK;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            int8_t *wg = W + (size_t)n * K + g * QK;
            int zero = mode != MODE_EXTREME && rnd() % 10 == 0;
            for (int i = 0; i < QK; i++) {
                int v = mode == MODE_EXTREME ? (rnd() % 2 ? wmin : wmax) : rnd_int(wmin, wmax);
                wg[i] = (int8_t)(zero ? 0 : v);
            }
            if (mode == MODE_EXTREME && g % 3 == 0)
                for (int i = 0; i < QK; i++) wg[i] = (int8_t)wmin;
            uint16_t *sc = &scales[scale_index(K, n, g)];
            if (mode == MODE_RANDOM) *sc = qrm_f32_to_f16(0.001f + 0.05f * rnd_unit());
            else if (mode == MODE_EXTREME) *sc = 0x3c00;
            else *sc = rnd() % 2 ? 0x3c00 : 0x4000;
        }
}

/* Quantized activations by mode: extreme is all +-127 (whole groups of -127),
 * pow2 keeps every product exact. One group in 8 is all zero (d = 0). */
static void make_activations(int mode, qrm_qact *a) {
    int M = a->M, K = a->K, G = K / QK;
    for (int m = 0; m < M; m++)
        for (int g = 0; g < G; g++) {
            int8_t *q = a->q + (size_t)m * K + g * QK;
            int zero = rnd() % 8 == 0, sum = 0, amax = mode == MODE_POW2 ? 31 : 127;
            for (int i = 0; i < QK; i++) {
                int v = mode == MODE_EXTREME ? (rnd() % 2 ? 127 : -127) : rnd_int(-amax, amax);
                if (mode == MODE_EXTREME && g % 2 == 0) v = -127;
                if (zero) v = 0;
                q[i] = (int8_t)v;
                sum += v;
            }
            a->s[(size_t)m * G + g] = sum;
            float d = mode == MODE_RANDOM    ? 0.001f + 0.1f * rnd_unit()
                      : mode == MODE_EXTREME ? 1.0f
                                             : (rnd() % 2 ? 1.0f : 2.0f);
            a->d[(size_t)m * G + g] = zero ? 0.0f : d;
        }
}

#ifdef HOST
/* y against a double evaluation (random mode) or exactly, and equal to the
 * scalar family (exact modes); columns outside the panels left alone. */
static void check_gemm_q(int mode, const qrm_qact *a, const qrm_qweight *w, const int8_t *W,
                         int p0, int p1, const float *y, size_t ldy, size_t ny) {
    int K = a->K, G = K / QK;
    float *ys = case_alloc(ny * 4);
    for (size_t i = 0; i < ny; i++) ys[i] = SENTINEL;
    const qrm_kernels *sc = qrm_kernels_scalar();
    (w->type == QRM_WQ8 ? sc->gemm_q8 : sc->gemm_q4)(a, w, p0, p1, ys, ldy);
    check_begin();
    for (size_t i = 0; i < ny; i++) {
        int m = (int)(i / ldy), n = (int)(i % ldy);
        float got = y[i];
        if (n < p0 * 16 || n >= p1 * 16) {
            if (got != SENTINEL) check_fail("y[%d][%d] written (%.9g)", m, n, (double)got);
            continue;
        }
        double want = 0, mag = 0;
        for (int g = 0; g < G; g++) {
            long isum = 0;
            for (int k = g * QK; k < (g + 1) * QK; k++)
                isum += (long)a->q[(size_t)m * K + k] * W[(size_t)n * K + k];
            double t = (double)a->d[(size_t)m * G + g] *
                       (double)qrm_f16_to_f32(w->d[scale_index(K, n, g)]) * (double)isum;
            want += t, mag += fabs(t);
        }
        int ok = mode == MODE_RANDOM ? fabs((double)got - want) <= TOL_GEMM_Q_REL * mag
                                     : (double)got == want && got == ys[i];
        if (!ok)
            check_fail("y[%d][%d] = %.9g, want %.9g, scalar %.9g (sum |terms| %.9g)", m, n,
                       (double)got, want, (double)ys[i], mag);
    }
    check_end();
}
#endif

static void case_gemm_q(int si, int type, int mode) {
    int M = qshapes[si].M, N = qshapes[si].N, K = qshapes[si].K;
    int p0 = qshapes[si].p0, p1 = qshapes[si].p1, G = K / QK;
    int q8 = type == QRM_WQ8;
    case_begin();
    case_name("gemm_q%d %s M=%d N=%d K=%d p=[%d,%d)", q8 ? 8 : 4, mode_names[mode], M, N, K, p0,
              p1);
    rng_seed((uint64_t)(si * 100 + type * 10 + mode));
    int8_t *W = case_alloc((size_t)N * K);
    uint16_t *scales = case_alloc((size_t)N * G * 2);
    make_weights(mode, N, K, q8 ? -128 : -8, q8 ? 127 : 7, W, scales);
    size_t qbytes = (size_t)N * K / (q8 ? 1 : 2);
    uint8_t *packed = case_alloc(qbytes);
    (q8 ? pack_q8 : pack_q4)(W, N, K, packed);
    qrm_qweight w = {type, N, K, packed, scales, 0};
    qrm_qact a = {M, K, case_alloc((size_t)M * K), case_alloc((size_t)M * G * 4),
                  case_alloc((size_t)M * G * 4)};
    make_activations(mode, &a);
    input_hash(packed, qbytes), input_hash(scales, (size_t)N * G * 2);
    input_hash(a.q, (size_t)M * K), input_hash(a.d, (size_t)M * G * 4),
        input_hash(a.s, (size_t)M * G * 4);
    size_t ldy = (size_t)N + 5, ny = strided(M, ldy, N);
    float *y = case_alloc(ny * 4);
    for (size_t i = 0; i < ny; i++) y[i] = SENTINEL;
    (q8 ? kern->gemm_q8 : kern->gemm_q4)(&a, &w, p0, p1, y, ldy);
    record(y, ny * 4);
#ifdef HOST
    check_gemm_q(mode, &a, &w, W, p0, p1, y, ldy, ny);
#endif
    case_end();
}

/* gemm_q8_acc: the sums start from a y that is not zero; bit for bit the
 * scalar family's (the same canonical chain, from y). */
static void case_gemm_q8_acc(int si) {
    int M = qshapes[si].M, N = qshapes[si].N, K = qshapes[si].K;
    int p0 = qshapes[si].p0, p1 = qshapes[si].p1, G = K / QK;
    case_begin();
    case_name("gemm_q8_acc random M=%d N=%d K=%d p=[%d,%d)", M, N, K, p0, p1);
    rng_seed((uint64_t)(si * 100 + 77));
    int8_t *W = case_alloc((size_t)N * K);
    uint16_t *scales = case_alloc((size_t)N * G * 2);
    make_weights(MODE_RANDOM, N, K, -128, 127, W, scales);
    uint8_t *packed = case_alloc((size_t)N * K);
    pack_q8(W, N, K, packed);
    qrm_qweight w = {QRM_WQ8, N, K, packed, scales, 0};
    qrm_qact a = {M, K, case_alloc((size_t)M * K), case_alloc((size_t)M * G * 4),
                  case_alloc((size_t)M * G * 4)};
    make_activations(MODE_RANDOM, &a);
    size_t ldy = (size_t)N + 5, ny = strided(M, ldy, N);
    float *y = case_alloc(ny * 4), *y0 = case_alloc(ny * 4);
    for (size_t i = 0; i < ny; i++) y0[i] = y[i] = rnd_sym(2.0f);
    input_hash(packed, (size_t)N * K), input_hash(scales, (size_t)N * G * 2);
    input_hash(a.q, (size_t)M * K), input_hash(a.d, (size_t)M * G * 4), input_hash(y0, ny * 4);
    kern->gemm_q8_acc(&a, &w, p0, p1, y, ldy);
    record(y, ny * 4);
#ifdef HOST
    qrm_kernels_scalar()->gemm_q8_acc(&a, &w, p0, p1, y0, ldy);
    check_begin();
    for (size_t i = 0; i < ny; i++)
        if (memcmp(&y[i], &y0[i], 4)) check_fail("y[%zu] = %a, scalar %a", i, (double)y[i], (double)y0[i]);
    check_end();
#endif
    case_end();
}

void cases_gemm_q(void) {
    for (int si = 0; si < (int)(sizeof qshapes / sizeof qshapes[0]); si++) {
        for (int type = QRM_WQ8; type <= QRM_WQ4; type++)
            for (int mode = MODE_RANDOM; mode <= MODE_POW2; mode++) case_gemm_q(si, type, mode);
        case_gemm_q8_acc(si);
    }
}

/* The largest sums the int32 accumulators see: K = 1024 of 127 * wmin / wmax,
 * both signs, exact (y = K * 127 * w). */
void cases_gemm_q_saturation(void) {
    enum { M = 3, N = 32, K = 1024, G = K / QK };
    for (int type = QRM_WQ8; type <= QRM_WQ4; type++)
        for (int sign = -1; sign <= 1; sign += 2) {
            int q8 = type == QRM_WQ8, wv = q8 ? (sign < 0 ? -128 : 127) : (sign < 0 ? -8 : 7);
            case_begin();
            case_name("gemm_q%d saturation sign %d M=3 N=32 K=1024", q8 ? 8 : 4, sign);
            int8_t *W = case_alloc((size_t)N * K);
            uint8_t *packed = case_alloc((size_t)N * K / (q8 ? 1 : 2));
            uint16_t *scales = case_alloc((size_t)N * G * 2);
            for (int i = 0; i < N * K; i++) W[i] = (int8_t)wv;
            for (int i = 0; i < N * G; i++) scales[i] = 0x3c00;
            (q8 ? pack_q8 : pack_q4)(W, N, K, packed);
            qrm_qweight w = {type, N, K, packed, scales, 0};
            qrm_qact a = {M, K, case_alloc((size_t)M * K), case_alloc((size_t)M * G * 4),
                          case_alloc((size_t)M * G * 4)};
            for (int i = 0; i < M * K; i++) a.q[i] = (int8_t)(127 * sign);
            for (int i = 0; i < M * G; i++) a.d[i] = 1.0f, a.s[i] = QK * 127 * sign;
            input_hash(packed, (size_t)N * K / (q8 ? 1 : 2)), input_hash(a.q, (size_t)M * K);
            float *y = case_alloc(M * N * 4);
            (q8 ? kern->gemm_q8 : kern->gemm_q4)(&a, &w, 0, N / 16, y, N);
            record(y, M * N * 4);
#ifdef HOST
            check_begin();
            float want = (float)((double)K * 127 * wv * sign);
            for (int i = 0; i < M * N; i++)
                if (y[i] != want)
                    check_fail("y[%d] = %.9g, want %.9g", i, (double)y[i], (double)want);
            check_end();
#endif
            case_end();
        }
}

/* The forward pass' chain: quantize_act's output straight into gemm_q8,
 * against the scalar family's chain. */
void cases_quantize_then_gemm_q8(void) {
    enum { M = 5, N = 64, K = 256, G = K / QK };
    case_begin();
    case_name("quantize_act then gemm_q8 M=5 N=64 K=256");
    float *x = case_alloc(M * K * 4);
    rng_seed(5);
    for (int i = 0; i < M * K; i++) x[i] = rnd_sym(2.0f);
    int8_t *W = case_alloc(N * K);
    uint8_t *packed = case_alloc(N * K);
    uint16_t *scales = case_alloc(N * G * 2);
    for (int i = 0; i < N * K; i++) W[i] = (int8_t)rnd_int(-128, 127);
    for (int i = 0; i < N * G; i++) scales[i] = qrm_f32_to_f16(0.01f + 0.01f * rnd_unit());
    pack_q8(W, N, K, packed);
    input_hash(x, M * K * 4), input_hash(packed, N * K), input_hash(scales, N * G * 2);
    qrm_qweight w = {QRM_WQ8, N, K, packed, scales, 0};
    qrm_qact a = {M, K, case_alloc(M * K), case_alloc(M * G * 4), case_alloc(M * G * 4)};
    float *y = case_alloc(M * N * 4);
    kern->quantize_act(x, K, &a);
    record(a.q, M * K), record(a.d, M * G * 4), record(a.s, M * G * 4);
    kern->gemm_q8(&a, &w, 0, N / 16, y, N);
    record(y, M * N * 4);
#ifdef HOST
    check_begin();
    const qrm_kernels *sc = qrm_kernels_scalar();
    qrm_qact ar = {M, K, case_alloc(M * K), case_alloc(M * G * 4), case_alloc(M * G * 4)};
    float *yr = case_alloc(M * N * 4);
    sc->quantize_act(x, K, &ar);
    sc->gemm_q8(&ar, &w, 0, N / 16, yr, N);
    if (memcmp(ar.q, a.q, M * K) || memcmp(ar.d, a.d, M * G * 4) || memcmp(ar.s, a.s, M * G * 4))
        check_fail("quantized activations differ from scalar");
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double mag = 0;
            for (int g = 0; g < G; g++) {
                long isum = 0;
                for (int k = g * QK; k < (g + 1) * QK; k++)
                    isum += (long)ar.q[m * K + k] * W[n * K + k];
                mag += fabs((double)ar.d[m * G + g] * qrm_ref_w_scale(&w, n, g) * (double)isum);
            }
            if (!(fabs((double)yr[m * N + n] - y[m * N + n]) <= 2 * TOL_GEMM_Q_REL * mag))
                check_fail("y[%d][%d] = %.9g, scalar %.9g", m, n, (double)y[m * N + n],
                           (double)yr[m * N + n]);
        }
    check_end();
#endif
    case_end();
}
