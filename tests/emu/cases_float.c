/* Float GEMM (f32 and f16 weights) and the float building blocks of the
 * forward pass, each against a double evaluation with the tolerances of
 * tests/test_kernels.c; scale_f32 exactly. Sizes leave every tail length of
 * a 16-wide vector. */
#include <string.h>

#include "cases.h"
#include "f16.h"
#include "harness.h"

#ifdef HOST
#include <math.h>
#endif

/* ---------------- gemm_f32 / gemm_f16 ---------------- */

#include "../kernel_shapes.h"

enum { W_F32, W_F16, W_F16_ANY }; /* W_F16_ANY: any finite half, subnormals and +-65504 too */

static void gemm_float_one(int wtype, int si, const float *x, size_t ldx, const float *wf,
                           const uint16_t *wh) {
    int M = fshapes[si].M, N = fshapes[si].N, K = fshapes[si].K;
    int n0 = fshapes[si].n0, n1 = fshapes[si].n1;
    size_t ldy = (size_t)N + 3, ny = strided(M, ldy, N);
    float *y = case_alloc(ny * 4);
    for (size_t i = 0; i < ny; i++) y[i] = SENTINEL;
    case_name("gemm_f%d M=%d N=%d K=%d n=[%d,%d)%s", wtype == W_F32 ? 32 : 16, M, N, K, n0, n1,
              wtype == W_F16_ANY ? " (any finite half)" : "");
    if (wtype == W_F32) kern->gemm_f32(x, ldx, M, wf, K, n0, n1, y, ldy);
    else kern->gemm_f16(x, ldx, M, wh, K, n0, n1, y, ldy);
    record(y, ny * 4);
#ifdef HOST
    check_begin();
    for (size_t i = 0; i < ny; i++) {
        int m = (int)(i / ldy), n = (int)(i % ldy);
        if (n < n0 || n >= n1) {
            if (y[i] != SENTINEL) check_fail("y[%d][%d] written", m, n);
            continue;
        }
        double want = 0, mag = 0;
        for (int k = 0; k < K; k++) {
            size_t wi = (size_t)n * K + k;
            double t = (double)x[m * ldx + k] *
                       (wtype == W_F32 ? (double)wf[wi] : (double)qrm_f16_to_f32(wh[wi]));
            want += t, mag += fabs(t);
        }
        if (!(fabs((double)y[i] - want) <= TOL_DOT_REL(K) * mag))
            check_fail("y[%d][%d] = %.9g, want %.9g (sum |terms| %g)", m, n, (double)y[i], want,
                       mag);
    }
    check_end();
#endif
}

static void case_gemm_float(int si) {
    int M = fshapes[si].M, N = fshapes[si].N, K = fshapes[si].K;
    size_t ldx = (size_t)K + 2, nx = strided(M, ldx, K);
    case_begin();
    float *x = case_alloc(nx * 4), *wf = case_alloc((size_t)N * K * 4);
    uint16_t *wh = case_alloc((size_t)N * K * 2);
    rng_seed((uint64_t)(300 + si));
    for (size_t i = 0; i < nx; i++) x[i] = rnd_sym(2.0f);
    for (int i = 0; i < N * K; i++) wf[i] = rnd_sym(0.5f), wh[i] = qrm_f32_to_f16(wf[i]);
    input_hash(x, nx * 4), input_hash(wf, (size_t)N * K * 4);
    gemm_float_one(W_F32, si, x, ldx, wf, wh);
    input_hash(x, nx * 4), input_hash(wh, (size_t)N * K * 2);
    gemm_float_one(W_F16, si, x, ldx, wf, wh);
    for (int i = 0; i < N * K; i++) {
        uint16_t h = (uint16_t)rnd();
        wh[i] = (h & 0x7c00) == 0x7c00 ? h & 0x83ff : h; /* inf / NaN -> a subnormal */
    }
    input_hash(x, nx * 4), input_hash(wh, (size_t)N * K * 2);
    gemm_float_one(W_F16_ANY, si, x, ldx, wf, wh);
    case_end();
}

void cases_gemm_float(void) {
    for (int si = 0; si < (int)(sizeof fshapes / sizeof fshapes[0]); si++) case_gemm_float(si);
}

/* ---------------- vectors ---------------- */

static const int vec_sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1000, 1027};
#define N_VEC_SIZES ((int)(sizeof vec_sizes / sizeof vec_sizes[0]))

static float *copy_of(const float *src, int n) {
    float *p = case_alloc((size_t)n * 4);
    memcpy(p, src, (size_t)n * 4);
    return p;
}

void cases_dot_axpy_scale(void) {
    for (int si = -1; si < N_VEC_SIZES; si++) {
        int n = si < 0 ? 0 : vec_sizes[si];
        case_begin();
        float *a = case_alloc((size_t)n * 4), *b = case_alloc((size_t)n * 4),
              *y0 = case_alloc((size_t)n * 4);
        rng_seed((uint64_t)(400 + n));
        for (int i = 0; i < n; i++)
            a[i] = rnd_sym(3.0f), b[i] = rnd_sym(3.0f), y0[i] = rnd_sym(1.0f);
        input_hash(a, (size_t)n * 4), input_hash(b, (size_t)n * 4), input_hash(y0, (size_t)n * 4);

        case_name("dot_f32 n=%d", n);
        float dot = kern->dot_f32(a, b, n);
        record(&dot, 4);
#ifdef HOST
        check_begin();
        double want = 0, mag = 0;
        for (int i = 0; i < n; i++) want += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
        if (!(fabs((double)dot - want) <= TOL_DOT_REL(n) * mag))
            check_fail("%.9g, want %.9g", (double)dot, want);
        check_end();
#endif
        float *y = copy_of(y0, n);
        case_name("axpy_f32 n=%d", n);
        kern->axpy_f32(y, -0.75f, a, n);
        record(y, (size_t)n * 4);
#ifdef HOST
        check_begin();
        for (int i = 0; i < n; i++) {
            double w = (double)y0[i] - 0.75 * a[i];
            double tol = TOL_AXPY_REL * (fabs((double)y0[i]) + fabs(0.75 * a[i]));
            if (!(fabs((double)y[i] - w) <= tol))
                check_fail("y[%d] = %.9g, want %.9g", i, (double)y[i], w);
        }
        check_end();
#endif
        memcpy(y, y0, (size_t)n * 4);
        case_name("scale_f32 n=%d", n);
        kern->scale_f32(y, 1.3f, n);
        record(y, (size_t)n * 4);
#ifdef HOST
        check_begin();
        for (int i = 0; i < n; i++)
            if (y[i] != y0[i] * 1.3f)
                check_fail("y[%d] = %.9g, want %.9g", i, (double)y[i], (double)(y0[i] * 1.3f));
        check_end();
#endif
        case_name("scale_mul_f32 n=%d", n);
        kern->scale_mul_f32(y, a, 0.37f, b, n);
        record(y, (size_t)n * 4);
#ifdef HOST
        check_begin();
        for (int i = 0; i < n; i++)
            if (y[i] != a[i] * 0.37f * b[i])
                check_fail("y[%d] = %.9g, want %.9g", i, (double)y[i], (double)(a[i] * 0.37f * b[i]));
        check_end();
#endif
        case_end();
    }
}

void cases_rmsnorm(void) {
    for (int si = 0; si < N_VEC_SIZES; si++) {
        int n = vec_sizes[si];
        case_begin();
        float *x = case_alloc((size_t)n * 4), *w = case_alloc((size_t)n * 4);
        rng_seed((uint64_t)(500 + n));
        for (int i = 0; i < n; i++) x[i] = rnd_sym(10.0f), w[i] = 0.5f + rnd_unit();
        for (int in_place = 0; in_place < 2; in_place++) {
            input_hash(x, (size_t)n * 4), input_hash(w, (size_t)n * 4);
            float *out = in_place ? copy_of(x, n) : case_alloc((size_t)n * 4);
            case_name("rmsnorm_f32 n=%d%s", n, in_place ? " in place" : "");
            kern->rmsnorm_f32(out, in_place ? out : x, w, n, 1e-5f);
            record(out, (size_t)n * 4);
#ifdef HOST
            check_begin();
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
            double inv = 1.0 / sqrt(ss / n + 1e-5);
            for (int i = 0; i < n; i++) {
                double want = (double)x[i] * inv * w[i];
                if (!(fabs((double)out[i] - want) <= TOL_RMSNORM_REL(n) * fabs(want)))
                    check_fail("out[%d] = %.9g, want %.9g", i, (double)out[i], want);
            }
            check_end();
#endif
        }
        case_end();
    }
}

#ifdef HOST
static void check_softmax(const float *x0, const float *x, int n) {
    check_begin();
    double mx = -INFINITY, sum = 0, dsum = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, x0[i]);
    for (int i = 0; i < n; i++) {
        double e = exp((double)x0[i] - mx);
        sum += e;
        if (e > 0) dsum += e * fabs((double)x0[i] - mx);
    }
    double dmean = dsum / sum;
    for (int i = 0; i < n; i++) {
        double want = exp((double)x0[i] - mx) / sum;
        double d = want > 0 ? fabs((double)x0[i] - mx) : 0;
        double tol = (TOL_SOFTMAX_REL(n) + U_F32 * (d + dmean)) * want;
        if (want < TOL_SOFTMAX_FLUSH) tol = TOL_SOFTMAX_FLUSH;
        if (!(fabs((double)x[i] - want) <= tol))
            check_fail("x[%d] = %.9g, want %.9g (in %.9g)", i, (double)x[i], want, (double)x0[i]);
        if (x[i] != 0.0f && fabs((double)x[i]) < FLT_MIN)
            check_fail("x[%d] = %a is subnormal (in %.9g)", i, (double)x[i], (double)x0[i]);
    }
    check_end();
}
#endif

/* variants: random; every third -inf (masked keys); all equal and large;
 * a range that reaches exp's underflow and subnormal results. */
void cases_softmax(void) {
    static const char *const variants[] = {"random", "-inf masked", "all 1e4", "+-150"};
    for (int si = 0; si < N_VEC_SIZES; si++)
        for (int variant = 0; variant < 4; variant++) {
            int n = vec_sizes[si];
            case_begin();
            float *x0 = case_alloc((size_t)n * 4);
            rng_seed((uint64_t)(600 + n * 3 + variant));
            for (int i = 0; i < n; i++) x0[i] = rnd_sym(30.0f);
            if (variant == 1)
                for (int i = 1; i < n; i += 3) x0[i] = -__builtin_inff();
            if (variant == 2)
                for (int i = 0; i < n; i++) x0[i] = 1e4f;
            if (variant == 3)
                for (int i = 0; i < n; i++) x0[i] = rnd_sym(150.0f);
            input_hash(x0, (size_t)n * 4);
            float *x = copy_of(x0, n);
            case_name("softmax_f32 n=%d %s", n, variants[variant]);
            kern->softmax_f32(x, n);
            record(x, (size_t)n * 4);
#ifdef HOST
            check_softmax(x0, x, n);
#endif
            /* the same without its last product, then that product here */
            float *u = copy_of(x0, n), *inv = case_alloc(4);
            case_name("softmax_unscaled_f32 n=%d %s", n, variants[variant]);
            *inv = kern->softmax_unscaled_f32(u, n);
            record(u, (size_t)n * 4);
            record(inv, 4);
#ifdef HOST
            for (int i = 0; i < n; i++) u[i] *= *inv;
            check_softmax(x0, u, n);
#endif
            case_end();
        }
}

/* Gates at the edges first (+-0, tiny, exp's overflow and underflow), then a
 * ramp over [-20, 20] and random values. */
static float gate_value(int i, int n) {
    static const float edges[] = {0.0f, -0.0f, 1e-20f, -1e-20f, 88.0f, -88.0f, 90.0f,
                                  -90.0f, 200.0f, -200.0f, 1e-3f, -1e-3f, 15.0f, -15.0f};
    if (i < (int)(sizeof edges / sizeof edges[0])) return edges[i];
    if (i % 2) return -20.0f + 40.0f * (float)i / (float)n;
    return rnd_sym(12.0f);
}

void cases_silu_gelu(void) {
    for (int si = 0; si < N_VEC_SIZES; si++) {
        int n = vec_sizes[si] + 14;
        case_begin();
        float *g0 = case_alloc((size_t)n * 4), *up = case_alloc((size_t)n * 4),
              *g = case_alloc((size_t)n * 4);
        rng_seed((uint64_t)(700 + n));
        for (int i = 0; i < n; i++) g0[i] = gate_value(i, n), up[i] = rnd_sym(2.0f);
        for (int gelu = 0; gelu < 2; gelu++) {
            input_hash(g0, (size_t)n * 4), input_hash(up, (size_t)n * 4);
            memcpy(g, g0, (size_t)n * 4);
            case_name("%s n=%d", gelu ? "gelu_tanh_mul_f32" : "silu_mul_f32", n);
            (gelu ? kern->gelu_tanh_mul_f32 : kern->silu_mul_f32)(g, up, n);
            record(g, (size_t)n * 4);
#ifdef HOST
            check_begin();
            for (int i = 0; i < n; i++) {
                double x = g0[i], want, tol;
                if (!gelu) {
                    want = x / (1.0 + exp(-x)) * up[i];
                    tol = TOL_SILU_REL * fabs(want) + TOL_TINY_ABS;
                } else {
                    want = 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) *
                           up[i];
                    tol = TOL_GELU_REL * fabs(want) + TOL_GELU_ABS * fabs(x * up[i]) + TOL_TINY_ABS;
                }
                if (!(fabs((double)g[i] - want) <= tol))
                    check_fail("gate %.9g up %.9g -> %.9g, want %.9g", x, (double)up[i],
                               (double)g[i], want);
            }
            check_end();
#endif
        }
        case_end();
    }
}

void cases_rope(void) {
    static const int dims[] = {2, 6, 14, 16, 32, 34, 64, 80, 128, 256};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        int d = dims[di], h = d / 2;
        case_begin();
        float *x0 = case_alloc((size_t)d * 4), *c = case_alloc((size_t)h * 4),
              *s = case_alloc((size_t)h * 4);
        rng_seed((uint64_t)(800 + d));
        for (int i = 0; i < d; i++) x0[i] = rnd_sym(4.0f);
        for (int i = 0; i < h; i++) c[i] = rnd_sym(1.0f), s[i] = rnd_sym(1.0f);
        input_hash(x0, (size_t)d * 4), input_hash(c, (size_t)h * 4), input_hash(s, (size_t)h * 4);
        float *x = copy_of(x0, d);
        case_name("rope_neox_f32 d=%d", d);
        kern->rope_neox_f32(x, c, s, d);
        record(x, (size_t)d * 4);
#ifdef HOST
        check_begin();
        for (int i = 0; i < h; i++) {
            double a = x0[i], b = x0[i + h];
            double w0 = a * c[i] - b * s[i], w1 = b * c[i] + a * s[i];
            double t0 = TOL_ROPE_REL * (fabs(a * c[i]) + fabs(b * s[i]));
            double t1 = TOL_ROPE_REL * (fabs(b * c[i]) + fabs(a * s[i]));
            if (!(fabs((double)x[i] - w0) <= t0 && fabs((double)x[i + h] - w1) <= t1))
                check_fail("pair %d = (%.9g, %.9g), want (%.9g, %.9g)", i, (double)x[i],
                           (double)x[i + h], w0, w1);
        }
        check_end();
#endif
        case_end();
    }
}
