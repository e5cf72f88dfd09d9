/* Every kernel family gives the scalar reference's bits (arch/float_kernels.h):
 * the float kernels, activation quantization and both quantized GEMMs, on
 * random data in every tail length and on the edges of e^x's range. The
 * families are the ones this CPU runs (qrm_kernels_runnable); on x86 that is
 * avx2 and avx512 natively, on ARM neon, dotprod and i8mm under qemu. The
 * accuracy of the reference itself is tested in test_kernels.c. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "f16.h"
#include "kernels.h"
#include "kernel_shapes.h"
#include "testutil.h"

static const qrm_kernels *fams[8];
static int n_fams;

static void find_families(void) {
    char buf[128], err[160];
    qrm_kernels_runnable(qrm_cpu_features_get(), buf, sizeof buf);
    for (char *tok = strtok(buf, " "); tok && n_fams < 8; tok = strtok(NULL, " "))
        if (strcmp(tok, "scalar") != 0) {
            const qrm_kernels *k = qrm_kernels_by_name(tok, qrm_cpu_features_get(), err, sizeof err);
            if (k) fams[n_fams++] = k;
        }
}

static uint64_t rng;
static void seed(uint64_t s) { rng = s * 0x9e3779b97f4a7c15ull + 7; }
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 17);
}
static float rnd_sym(float a) { return a * (2.0f * (float)(rnd() & 0xffffff) / 16777216.0f - 1.0f); }

static void *xalloc(size_t n) {
    void *p = calloc(n ? n : 1, 1);
    ck_assert_msg(p != NULL, "out of memory");
    return p;
}

/* The first differing float of two outputs, as a test failure. */
static void same_bits(const float *want, const float *got, size_t n, const char *fam,
                      const char *what, int a, int b) {
    for (size_t i = 0; i < n; i++) {
        uint32_t x, y;
        memcpy(&x, want + i, 4), memcpy(&y, got + i, 4);
        if (x != y && !(isnan(want[i]) && isnan(got[i])))
            ck_abort_msg("%s %s (%d, %d): element %zu is %.9g (0x%08x), scalar gives %.9g (0x%08x)",
                         fam, what, a, b, i, (double)got[i], y, (double)want[i], x);
    }
}

/* ---- element-wise kernels and reductions, every length 0..70 and a few long ones ---- */

static const int lens[] = {0,  1,  2,  3,  5,  7,  8,  9,  15, 16, 17, 23, 31, 32,  33,  47,
                           48, 63, 64, 65, 70, 96, 100, 127, 128, 129, 255, 1000, 1024, 1027};
#define N_LENS ((int)(sizeof lens / sizeof lens[0]))

START_TEST(test_elementwise) {
    int n = lens[_i];
    float *a = xalloc((size_t)(n + 1) * 4), *b = xalloc((size_t)(n + 1) * 4);
    float *w = xalloc((size_t)(n + 1) * 4), *ref = xalloc((size_t)(n + 1) * 4);
    float *got = xalloc((size_t)(n + 1) * 4);
    uint16_t *href = xalloc((size_t)(n + 1) * 2), *hgot = xalloc((size_t)(n + 1) * 2);
    const qrm_kernels *s = qrm_kernels_scalar();
    seed((uint64_t)n + 1);
    for (int i = 0; i < n; i++) a[i] = rnd_sym(12.0f), b[i] = rnd_sym(3.0f), w[i] = 0.5f + rnd_sym(0.5f);
    for (int f = 0; f < n_fams; f++) {
        const qrm_kernels *k = fams[f];
        float d0 = s->dot_f32(a, b, n), d1 = k->dot_f32(a, b, n);
        same_bits(&d0, &d1, 1, k->name, "dot", n, 0);
#define SAME_INPLACE(what, call)                                                                  \
    do {                                                                                          \
        memcpy(ref, a, (size_t)n * 4), memcpy(got, a, (size_t)n * 4);                             \
        {                                                                                         \
            const qrm_kernels *kk = s;                                                            \
            float *y = ref;                                                                       \
            call;                                                                                 \
        }                                                                                         \
        {                                                                                         \
            const qrm_kernels *kk = k;                                                            \
            float *y = got;                                                                       \
            call;                                                                                 \
        }                                                                                         \
        same_bits(ref, got, (size_t)n, k->name, what, n, 0);                                      \
    } while (0)
        SAME_INPLACE("axpy", kk->axpy_f32(y, -0.7f, b, n));
        SAME_INPLACE("scale", kk->scale_f32(y, 1.3f, n));
        SAME_INPLACE("scale_mul", kk->scale_mul_f32(y, y, 0.37f, b, n));
        SAME_INPLACE("rmsnorm", kk->rmsnorm_f32(y, y, w, n, 1e-6f));
        SAME_INPLACE("softmax", kk->softmax_f32(y, n));
        SAME_INPLACE("silu_mul", kk->silu_mul_f32(y, b, n));
        SAME_INPLACE("gelu_tanh_mul", kk->gelu_tanh_mul_f32(y, b, n));
        SAME_INPLACE("exp", kk->exp_f32(y, y, n));
        if (n % 2 == 0 && n > 0) SAME_INPLACE("rope", kk->rope_neox_f32(y, w, b, n));
        /* softmax with masked keys (-inf), as causal attention has */
        for (int i = 0; i < n; i++) a[i] = i % 3 == 1 ? -INFINITY : a[i];
        SAME_INPLACE("softmax masked", kk->softmax_f32(y, n));
        {   /* and spread wide: the terms flushed to 0 (below 2^-125 of the sum) */
            float *keep = xalloc((size_t)(n + 1) * 4);
            memcpy(keep, a, (size_t)n * 4);
            for (int i = 0; i < n; i++) a[i] = i % 3 == 1 ? -INFINITY : rnd_sym(150.0f);
            SAME_INPLACE("softmax wide", kk->softmax_f32(y, n));
            SAME_INPLACE("softmax_unscaled wide", (void)kk->softmax_unscaled_f32(y, n));
            memcpy(a, keep, (size_t)n * 4);
            free(keep);
        }
        SAME_INPLACE("softmax_unscaled masked", (void)kk->softmax_unscaled_f32(y, n));
        {   /* and the 1 / sum it returns */
            memcpy(ref, a, (size_t)n * sizeof(float)), memcpy(got, a, (size_t)n * sizeof(float));
            float ri = s->softmax_unscaled_f32(ref, n), gi = k->softmax_unscaled_f32(got, n);
            ck_assert_msg(memcmp(&ri, &gi, sizeof ri) == 0, "%s softmax_unscaled n=%d: 1 / sum %a, scalar %a",
                          k->name, n, (double)gi, (double)ri);
        }
        s->f32_to_f16(href, b, n), k->f32_to_f16(hgot, b, n);
        ck_assert_msg(memcmp(href, hgot, (size_t)n * 2) == 0, "%s f32_to_f16 n=%d differs", k->name, n);
        for (int i = 0; i < n; i++) a[i] = rnd_sym(12.0f);
#undef SAME_INPLACE
    }
    free(a), free(b), free(w), free(ref), free(got), free(href), free(hgot);
}
END_TEST

/* e^x over its whole range: underflow to 0 and through the subnormals, the
 * overflow threshold, infinities, zeros of both signs; silu and gelu there. */
START_TEST(test_exp_range) {
    enum { N = 4096 + 16 };
    float *x = xalloc(N * 4), *ref = xalloc(N * 4), *got = xalloc(N * 4), *up = xalloc(N * 4);
    for (int i = 0; i < 4096; i++) x[i] = -110.0f + 200.0f * (float)i / 4096.0f, up[i] = 1.0f;
    const float edges[16] = {-INFINITY, INFINITY, 0.0f,      -0.0f,   88.72283935546875f, 88.7229f,
                             -103.972084045410f,  -103.98f,  -87.3f,  -87.34f, -100.0f, -1e-30f,
                             1e-30f, 88.0f, -88.0f, 44.0f};
    for (int i = 0; i < 16; i++) x[4096 + i] = edges[i], up[4096 + i] = 1.0f;
    const qrm_kernels *s = qrm_kernels_scalar();
    for (int f = 0; f < n_fams; f++) {
        const qrm_kernels *k = fams[f];
        s->exp_f32(ref, x, N), k->exp_f32(got, x, N);
        same_bits(ref, got, N, k->name, "exp over the range", N, 0);
        memcpy(ref, x, N * 4), memcpy(got, x, N * 4);
        s->silu_mul_f32(ref, up, N), k->silu_mul_f32(got, up, N);
        same_bits(ref, got, N, k->name, "silu over the range", N, 0);
        memcpy(ref, x, N * 4), memcpy(got, x, N * 4);
        s->gelu_tanh_mul_f32(ref, up, N), k->gelu_tanh_mul_f32(got, up, N);
        same_bits(ref, got, N, k->name, "gelu over the range", N, 0);
    }
    free(x), free(ref), free(got), free(up);
}
END_TEST

/* ---- float GEMM (attention scores, float weights) ---- */


START_TEST(test_gemm_float) {
    int M = fshapes[_i].M, N = fshapes[_i].N, K = fshapes[_i].K;
    int n0 = fshapes[_i].n0, n1 = fshapes[_i].n1;
    size_t ldx = (size_t)K + 3, ldy = (size_t)N + 1;
    float *x = xalloc((size_t)M * ldx * 4), *w = xalloc((size_t)N * K * 4);
    uint16_t *wh = xalloc((size_t)N * K * 2);
    float *ref = xalloc((size_t)M * ldy * 4), *got = xalloc((size_t)M * ldy * 4);
    seed(100 + (uint64_t)_i);
    for (size_t i = 0; i < (size_t)M * ldx; i++) x[i] = rnd_sym(2.0f);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = rnd_sym(1.0f), wh[i] = qrm_f32_to_f16(w[i]);
    const qrm_kernels *s = qrm_kernels_scalar();
    for (int f = 0; f < n_fams; f++)
        for (int f16 = 0; f16 < 2; f16++) {
            memset(ref, 0, (size_t)M * ldy * 4), memset(got, 0, (size_t)M * ldy * 4);
            if (f16) s->gemm_f16(x, ldx, M, wh, K, n0, n1, ref, ldy), fams[f]->gemm_f16(x, ldx, M, wh, K, n0, n1, got, ldy);
            else s->gemm_f32(x, ldx, M, w, K, n0, n1, ref, ldy), fams[f]->gemm_f32(x, ldx, M, w, K, n0, n1, got, ldy);
            same_bits(ref, got, (size_t)M * ldy, fams[f]->name, f16 ? "gemm_f16 (M, K)" : "gemm_f32 (M, K)", M, K);
        }
    free(x), free(w), free(wh), free(ref), free(got);
}
END_TEST

/* ---- attention's P.V ---- */

START_TEST(test_wsum) {
    static const int ds[] = {1, 15, 16, 17, 33, 64, 128, 130};
    int d = ds[_i];
    const qrm_kernels *s = qrm_kernels_scalar();
    for (int M = 1; M <= 9; M += 2)
        for (int n = 1; n <= 40; n += 13) {
            size_t ldo = (size_t)d + 2, ldw = (size_t)n + 1;
            size_t ldr = (size_t)d + 1; /* rows strided, as the transposed K cache is */
            float *w = xalloc((size_t)M * ldw * 4), *rows = xalloc((size_t)n * ldr * 4);
            uint16_t *rh = xalloc((size_t)n * ldr * 2);
            float *ref = xalloc((size_t)M * ldo * 4), *got = xalloc((size_t)M * ldo * 4);
            seed((uint64_t)(d * 1000 + M * 50 + n));
            for (size_t i = 0; i < (size_t)M * ldw; i++) w[i] = rnd_sym(1.0f);
            for (size_t i = 0; i < (size_t)n * ldr; i++) rows[i] = rnd_sym(4.0f), rh[i] = qrm_f32_to_f16(rows[i]);
            for (int f = 0; f < n_fams; f++)
                for (int f16 = 0; f16 < 2; f16++) {
                    for (size_t i = 0; i < (size_t)M * ldo; i++) ref[i] = got[i] = (float)(i % 7) - 3.0f;
                    if (f16) s->wsum_rows_f16(ref, ldo, w, ldw, M, rh, ldr, n, d), fams[f]->wsum_rows_f16(got, ldo, w, ldw, M, rh, ldr, n, d);
                    else s->wsum_rows_f32(ref, ldo, w, ldw, M, rows, ldr, n, d), fams[f]->wsum_rows_f32(got, ldo, w, ldw, M, rows, ldr, n, d);
                    same_bits(ref, got, (size_t)M * ldo, fams[f]->name, f16 ? "wsum_rows_f16 (M, n)" : "wsum_rows_f32 (M, n)", M, n);
                }
            free(w), free(rows), free(rh), free(ref), free(got);
        }
}
END_TEST

/* ---- activation quantization and the quantized GEMMs on random data ---- */


START_TEST(test_gemm_q) {
    int M = qshapes[_i].M, N = qshapes[_i].N, K = qshapes[_i].K, G = K / QRM_QK;
    int p0 = qshapes[_i].p0, p1 = qshapes[_i].p1;
    float *x = xalloc((size_t)M * K * 4);
    qrm_qact a = {M, K, xalloc((size_t)M * K), xalloc((size_t)M * G * 4), xalloc((size_t)M * G * 4)};
    qrm_qact b = {M, K, xalloc((size_t)M * K), xalloc((size_t)M * G * 4), xalloc((size_t)M * G * 4)};
    uint8_t *q = xalloc((size_t)N * K);
    uint16_t *d = xalloc((size_t)N * G * 2);
    float *ref = xalloc((size_t)M * N * 4), *got = xalloc((size_t)M * N * 4);
    seed(200 + (uint64_t)_i);
    /* wide dynamic range: the per-group scales differ by orders of magnitude */
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = rnd_sym(1.0f) * (float)(1 << (rnd() % 12));
    for (size_t i = 0; i < (size_t)N * K; i++) q[i] = (uint8_t)rnd();
    for (size_t i = 0; i < (size_t)N * G; i++) d[i] = qrm_f32_to_f16(rnd_sym(0.05f));
    const qrm_kernels *s = qrm_kernels_scalar();
    s->quantize_act(x, (size_t)K, &a);
    for (int f = 0; f < n_fams; f++) {
        const qrm_kernels *k = fams[f];
        k->quantize_act(x, (size_t)K, &b);
        ck_assert_msg(memcmp(a.q, b.q, (size_t)M * K) == 0 && memcmp(a.d, b.d, (size_t)M * G * 4) == 0 &&
                          memcmp(a.s, b.s, (size_t)M * G * 4) == 0,
                      "%s quantize_act (M=%d K=%d) differs from scalar", k->name, M, K);
        for (int type = QRM_WQ8; type <= QRM_WQ4; type++) {
            qrm_qweight w = {type, N, K, q, d, 0};
            memset(ref, 0, (size_t)M * N * 4), memset(got, 0, (size_t)M * N * 4);
            if (type == QRM_WQ8) s->gemm_q8(&a, &w, p0, p1, ref, (size_t)N), k->gemm_q8(&a, &w, p0, p1, got, (size_t)N);
            else s->gemm_q4(&a, &w, p0, p1, ref, (size_t)N), k->gemm_q4(&a, &w, p0, p1, got, (size_t)N);
            same_bits(ref, got, (size_t)M * N, k->name, type == QRM_WQ8 ? "gemm_q8 (M, K)" : "gemm_q4 (M, K)", M, K);
        }
        /* gemm_q8_acc from a y that is not zero: the q4 product just compared */
        qrm_qweight w8 = {QRM_WQ8, N, K, q, d, 0};
        memcpy(got, ref, (size_t)M * N * 4);
        s->gemm_q8_acc(&a, &w8, p0, p1, ref, (size_t)N), k->gemm_q8_acc(&a, &w8, p0, p1, got, (size_t)N);
        same_bits(ref, got, (size_t)M * N, k->name, "gemm_q8_acc (M, K)", M, K);
    }
    free(x), free(a.q), free(a.d), free(a.s), free(b.q), free(b.d), free(b.s), free(q), free(d);
    free(ref), free(got);
}
END_TEST

static Suite *bitwise_suite(void) {
    Suite *s = suite_create("bitwise");
    TCase *t = tcase_create("families");
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, test_elementwise, 0, N_LENS);
    tcase_add_test(t, test_exp_range);
    tcase_add_loop_test(t, test_gemm_float, 0, N_FSHAPES);
    tcase_add_loop_test(t, test_wsum, 0, 8);
    tcase_add_loop_test(t, test_gemm_q, 0, N_QSHAPES);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    find_families();
    printf("test_bitwise: %d famil%s against scalar:", n_fams, n_fams == 1 ? "y" : "ies");
    for (int f = 0; f < n_fams; f++) printf(" %s", fams[f]->name);
    printf("\n");
    fflush(stdout);
    return tu_run(bitwise_suite());
}
