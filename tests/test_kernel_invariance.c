/* Batch invariance of every kernel family: the result for one token must not
 * depend on which other tokens share its call, on its place in a register
 * tile, or on how the weight panels were split between threads. Bitwise.
 *
 * Why: shared-prefix best-of-N puts a response's tokens in a batch with other
 * responses, incremental scoring feeds tokens in pieces, and the pool splits
 * panels by the number of threads. A score must be the same number in every
 * case, and a float difference of one ulp can flip an activation's int8
 * rounding and grow through the layers (tests/test_scoring.c shows it end to
 * end; this suite pins it to the kernel). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "f16.h"
#include "kernels.h"
#include "testutil.h"

static uint32_t rng = 12345;
static uint32_t next(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static float frand(void) { return (float)(next() % 20001) / 10000.0f - 1.0f; }

typedef struct {
    const char *name;
    const qrm_kernels *k;
} family;

static int families(family *out) {
#define FAMILY_NAME(f) #f,
    static const char *names[] = {QRM_FAMILIES_BUILT(FAMILY_NAME)};
    int n = 0;
    char err[200];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const qrm_kernels *k = qrm_kernels_by_name(names[i], qrm_cpu_features_get(), err, sizeof err);
        if (k) out[n].name = names[i], out[n].k = k, n++;
    }
    return n;
}

enum { M = 37, N = 96, K = 160 };

/* Random packed weights of the given type. */
static void make_weights(qrm_qweight *w, int type, uint8_t *q, uint16_t *d) {
    size_t qbytes = type == QRM_WQ8 ? (size_t)N * K : (size_t)N * K / 2;
    for (size_t i = 0; i < qbytes; i++) {
        uint8_t b = (uint8_t)next();
        q[i] = type == QRM_WQ8 && b == 0x80 ? 0x81 : b;
    }
    for (size_t i = 0; i < (size_t)N * K / QRM_QK; i++) d[i] = qrm_f32_to_f16(0.001f + 0.01f * (float)(next() % 100) / 100.0f);
    *w = (qrm_qweight){.type = type, .N = N, .K = K, .q = q, .d = d};
}

static void quantize(const qrm_kernels *k, const float *x, int m, qrm_qact *a, int8_t *q,
                     float *d, int32_t *s) {
    a->M = m, a->K = K, a->q = q, a->d = d, a->s = s;
    k->quantize_act(x, K, a);
}

START_TEST(gemm_q_invariant) {
    family fam[8];
    int nf = families(fam);
    float *x = malloc(sizeof(float) * M * K);
    for (int i = 0; i < M * K; i++) x[i] = frand() * (i % 17 == 0 ? 8.0f : 1.0f);
    uint8_t *wq = malloc((size_t)N * K);
    uint16_t *wd = malloc((size_t)N * K / QRM_QK * 2);
    int8_t *aq = malloc((size_t)M * K);
    float *ad = malloc(sizeof(float) * M * K / QRM_QK), *all = malloc(sizeof(float) * M * N),
          *part = malloc(sizeof(float) * M * N);
    int32_t *as = malloc(sizeof(int32_t) * M * K / QRM_QK);
    for (int type = QRM_WQ8; type <= QRM_WQ4; type++) {
        qrm_qweight w;
        make_weights(&w, type, wq, wd);
        for (int f = 0; f < nf; f++) {
            const qrm_kernels *k = fam[f].k;
            void (*gemm)(const qrm_qact *, const qrm_qweight *, int, int, float *, size_t) =
                type == QRM_WQ8 ? k->gemm_q8 : k->gemm_q4;
            qrm_qact a;
            quantize(k, x, M, &a, aq, ad, as);
            gemm(&a, &w, 0, N / QRM_PANEL, all, N);
            /* token by token, and in uneven slices of tokens */
            int cuts[] = {1, 2, 3, 5, 7, 19};
            for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
                for (int m0 = 0; m0 < M; m0 += cuts[c]) {
                    int mm = M - m0 < cuts[c] ? M - m0 : cuts[c];
                    qrm_qact sub = {.M = mm, .K = K, .q = aq + (size_t)m0 * K,
                                    .d = ad + (size_t)m0 * (K / QRM_QK),
                                    .s = as + (size_t)m0 * (K / QRM_QK)};
                    gemm(&sub, &w, 0, N / QRM_PANEL, part + (size_t)m0 * N, N);
                }
                ck_assert_msg(memcmp(all, part, sizeof(float) * M * N) == 0,
                              "%s gemm_q%d: tokens in slices of %d differ from one call",
                              fam[f].name, type == QRM_WQ8 ? 8 : 4, cuts[c]);
            }
            /* panels split as threads would split them */
            for (int p = 0; p < N / QRM_PANEL; p++) gemm(&a, &w, p, p + 1, part, N);
            ck_assert_msg(memcmp(all, part, sizeof(float) * M * N) == 0,
                          "%s gemm_q%d: per-panel calls differ", fam[f].name,
                          type == QRM_WQ8 ? 8 : 4);
        }
    }
    free(x), free(wq), free(wd), free(aq), free(ad), free(all), free(part), free(as);
}
END_TEST

START_TEST(gemm_float_invariant) {
    family fam[8];
    int nf = families(fam);
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
    uint16_t *wh = malloc(sizeof(uint16_t) * N * K);
    float *all = malloc(sizeof(float) * M * N), *part = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) x[i] = frand();
    for (int i = 0; i < N * K; i++) w[i] = frand() * 0.1f, wh[i] = qrm_f32_to_f16(w[i]);
    for (int f = 0; f < nf; f++) {
        const qrm_kernels *k = fam[f].k;
        for (int h = 0; h < 2; h++) {
            if (h) k->gemm_f16(x, K, M, wh, K, 0, N, all, N);
            else k->gemm_f32(x, K, M, w, K, 0, N, all, N);
            /* every token alone; then columns one at a time and in odd ranges
             * (attention scores of a slot come from either) */
            for (int m = 0; m < M; m++) {
                if (h) k->gemm_f16(x + (size_t)m * K, K, 1, wh, K, 0, N, part + (size_t)m * N, N);
                else k->gemm_f32(x + (size_t)m * K, K, 1, w, K, 0, N, part + (size_t)m * N, N);
            }
            ck_assert_msg(memcmp(all, part, sizeof(float) * M * N) == 0,
                          "%s gemm_f%d: a token alone differs from the batch", fam[f].name,
                          h ? 16 : 32);
            int edges[] = {0, 1, 4, 7, 8, 13, 16, 31, 50, 64, 95, N};
            for (size_t e = 0; e + 1 < sizeof edges / sizeof edges[0]; e++) {
                if (h) k->gemm_f16(x, K, M, wh, K, edges[e], edges[e + 1], part, N);
                else k->gemm_f32(x, K, M, w, K, edges[e], edges[e + 1], part, N);
            }
            ck_assert_msg(memcmp(all, part, sizeof(float) * M * N) == 0,
                          "%s gemm_f%d: column ranges differ from one call", fam[f].name,
                          h ? 16 : 32);
        }
    }
    free(x), free(w), free(wh), free(all), free(part);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("kernel_invariance");
    TCase *tc = tcase_create("batch");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, gemm_q_invariant);
    tcase_add_test(tc, gemm_float_invariant);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
