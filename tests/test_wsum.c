/* wsum_rows_f32 and wsum_rows_f16 (attention's scores over the transposed K
 * cache and probabilities times V, in f32 or in an f16 KV cache) of every
 * family against the scalar reference, on odd sizes, tails, row counts and
 * strided rows; and each row's result bit-identical whether computed alone
 * or among M rows. Tolerance: TOL_WSUM_REL
 * (tests/tolerances.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "f16.h"
#include "kernels.h"
#include "testutil.h"
#include "tolerances.h"


static unsigned next(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 9;
}

#define FAMILY_NAME(f) #f,
static const char *names[] = {QRM_FAMILIES_SIMD(FAMILY_NAME)};
#define N_NAMES (sizeof names / sizeof names[0])

static float initial(size_t i) { return (float)(i % 17) * 0.5f - 3.0f; }

static void wsum(const qrm_kernels *k, int f16, float *out, size_t ldo, const float *w,
                 size_t ldw, int M, const float *rows, const uint16_t *rows_h, size_t ldr, int n,
                 int d) {
    if (f16) k->wsum_rows_f16(out, ldo, w, ldw, M, rows_h, ldr, n, d);
    else k->wsum_rows_f32(out, ldo, w, ldw, M, rows, ldr, n, d);
}

/* One shape for one family, V in f32 or f16: against scalar within the
 * tolerance, the stride gaps untouched, each row bit-identical alone. */
static void check_shape(const qrm_kernels *k, int f16, int M, int n, int d, unsigned *seed) {
    const qrm_kernels *ref = qrm_kernels_scalar();
    /* strides wider than the rows, so a kernel that ignores them fails */
    size_t ldw = (size_t)n + 3, ldo = (size_t)d + 5, ldr = (size_t)d + 2;
    float *w = malloc(sizeof(float) * (M * ldw + 1)), *rows = malloc(sizeof(float) * (n * ldr + 1));
    uint16_t *rows_h = malloc(sizeof(uint16_t) * (n * ldr + 1));
    float *o1 = malloc(sizeof(float) * M * ldo), *o2 = malloc(sizeof(float) * M * ldo);
    float *o3 = malloc(sizeof(float) * ldo), *mag = malloc(sizeof(float) * M * ldo);
    for (size_t i = 0; i < M * ldw; i++) w[i] = (float)(next(seed) % 1000) / 1000.0f;
    for (size_t i = 0; i < n * ldr; i++) {
        rows[i] = (float)((int)(next(seed) % 2001) - 1000) / 100.0f;
        rows_h[i] = qrm_f32_to_f16(rows[i]);
    }
    for (size_t i = 0; i < M * ldo; i++) o1[i] = o2[i] = initial(i), mag[i] = fabsf(o1[i]);
    for (int m = 0; m < M; m++)
        for (int t = 0; t < n; t++)
            for (int i = 0; i < d; i++) mag[m * ldo + i] += fabsf(w[m * ldw + t] * rows[t * ldr + i]);
    wsum(ref, f16, o1, ldo, w, ldw, M, rows, rows_h, ldr, n, d);
    wsum(k, f16, o2, ldo, w, ldw, M, rows, rows_h, ldr, n, d);
    for (int m = 0; m < M; m++) {
        for (int i = 0; i < d; i++)
            ck_assert_msg(fabsf(o1[m * ldo + i] - o2[m * ldo + i]) <=
                              TOL_WSUM_REL * mag[m * ldo + i] + 1e-6f,
                          "%s f%d M=%d d=%d n=%d m=%d i=%d: %g vs %g", k->name, f16 ? 16 : 32, M,
                          d, n, m, i, (double)o2[m * ldo + i], (double)o1[m * ldo + i]);
        for (size_t i = d; i < ldo; i++) /* the stride's gap is not written */
            ck_assert_msg(o2[m * ldo + i] == initial(m * ldo + i), "%s M=%d d=%d: wrote past a row",
                          k->name, M, d);
        for (int i = 0; i < d; i++) o3[i] = initial(m * ldo + i);
        wsum(k, f16, o3, ldo, w + m * ldw, ldw, 1, rows, rows_h, ldr, n, d);
        ck_assert_msg(memcmp(o3, o2 + m * ldo, (size_t)d * sizeof(float)) == 0,
                      "%s f%d M=%d d=%d n=%d: row %d differs alone", k->name, f16 ? 16 : 32, M, d,
                      n, m);
    }
    free(w), free(rows), free(rows_h), free(o1), free(o2), free(o3), free(mag);
}

START_TEST(wsum_matches_scalar) {
    int sizes_d[] = {1, 3, 4, 8, 15, 16, 17, 31, 32, 33, 64, 96, 128, 130, 256};
    int sizes_n[] = {0, 1, 2, 7, 64, 300};
    int sizes_m[] = {1, 2, 3, 4, 5, 7, 8, 16, 17};
    unsigned seed = 7;
    int tested = 0;
    for (size_t f = 0; f < N_NAMES; f++) {
        char err[200];
        const qrm_kernels *k = qrm_kernels_by_name(names[f], qrm_cpu_features_get(), err, sizeof err);
        if (!k) continue;
        tested++;
        for (size_t a = 0; a < sizeof sizes_d / sizeof sizes_d[0]; a++)
            for (size_t b = 0; b < sizeof sizes_n / sizeof sizes_n[0]; b++)
                for (size_t c = 0; c < sizeof sizes_m / sizeof sizes_m[0]; c++)
                    for (int f16 = 0; f16 < 2; f16++)
                        check_shape(k, f16, sizes_m[c], sizes_n[b], sizes_d[a], &seed);
    }
    if (!tested) printf("wsum: no SIMD family on this CPU, nothing compared\n");
}
END_TEST

/* What an attention block does: M rows over n keys, row m's probabilities 0
 * past its own n - (M-1-m) keys, must give row m's bits alone over its own
 * keys (the trailing zeros add 0 * V = 0 at the end of every sum). Every
 * family, scalar included. */
START_TEST(block_with_trailing_zeros) {
    enum { M = 15, N = 70, D = 72 };
    unsigned seed = 11;
    float w[M * N], v[N * D], block[M * D], alone[D];
    uint16_t vh[N * D];
    for (int m = 0; m < M; m++)
        for (int t = 0; t < N; t++)
            w[m * N + t] = t < N - (M - 1 - m) ? (float)(next(&seed) % 1000) / 70000.0f : 0.0f;
    for (int i = 0; i < N * D; i++) {
        v[i] = (float)((int)(next(&seed) % 2001) - 1000) / 100.0f;
        vh[i] = qrm_f32_to_f16(v[i]);
    }
    for (int f = -1; f < (int)N_NAMES; f++) {
        char err[200];
        const qrm_kernels *k = f < 0 ? qrm_kernels_scalar()
                                     : qrm_kernels_by_name(names[f], qrm_cpu_features_get(), err, sizeof err);
        if (!k) continue;
        for (int f16 = 0; f16 < 2; f16++) {
            memset(block, 0, sizeof block);
            wsum(k, f16, block, D, w, N, M, v, vh, D, N, D);
            for (int m = 0; m < M; m++) {
                memset(alone, 0, sizeof alone);
                wsum(k, f16, alone, D, w + m * N, N, 1, v, vh, D, N - (M - 1 - m), D);
                ck_assert_msg(memcmp(alone, block + m * D, sizeof alone) == 0,
                              "%s f%d: row %d of the block differs from the row alone over its keys",
                              k->name, f16 ? 16 : 32, m);
            }
        }
    }
}
END_TEST

/* The scalar family is the definition (arch/kernels.h): each output one
 * fused multiply-add per t in ascending t, from its value in out. A plain
 * loop of fmaf gives those bits, so this checks the reference itself, on
 * the shapes each of its paths takes: tiles, and a few rows over long rows
 * in blocks of rows (a token's attention: M <= 4, n past a block, d past a
 * tile, the last block short). */
START_TEST(scalar_is_the_definition) {
    static const int shapes[][3] = {{1, 40, 100}, {2, 128, 544}, {3, 17, 33}, {4, 300, 130},
                                    {5, 64, 96},  {2, 16, 256},  {1, 15, 17}, {16, 70, 72}};
    const qrm_kernels *ref = qrm_kernels_scalar();
    unsigned seed = 5;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int M = shapes[c][0], n = shapes[c][1], d = shapes[c][2];
        size_t ldw = (size_t)n + 1, ldo = (size_t)d + 3, ldr = (size_t)d + 7;
        float *w = malloc(sizeof(float) * M * ldw), *rows = malloc(sizeof(float) * n * ldr);
        uint16_t *rows_h = malloc(sizeof(uint16_t) * n * ldr);
        float *got = malloc(sizeof(float) * M * ldo), *want = malloc(sizeof(float) * M * ldo);
        for (size_t i = 0; i < M * ldw; i++) w[i] = (float)((int)(next(&seed) % 2001) - 1000) / 1000.0f;
        for (size_t i = 0; i < n * ldr; i++) {
            rows[i] = (float)((int)(next(&seed) % 2001) - 1000) / 100.0f;
            rows_h[i] = qrm_f32_to_f16(rows[i]);
        }
        for (int f16 = 0; f16 < 2; f16++) {
            for (size_t i = 0; i < M * ldo; i++) got[i] = want[i] = initial(i);
            for (int m = 0; m < M; m++)
                for (int i = 0; i < d; i++)
                    for (int t = 0; t < n; t++) {
                        float v = f16 ? qrm_f16_to_f32(rows_h[t * ldr + i]) : rows[t * ldr + i];
                        want[m * ldo + i] = fmaf(w[m * ldw + t], v, want[m * ldo + i]);
                    }
            wsum(ref, f16, got, ldo, w, ldw, M, rows, rows_h, ldr, n, d);
            ck_assert_msg(memcmp(got, want, sizeof(float) * M * ldo) == 0,
                          "scalar f%d M=%d n=%d d=%d: not one fmaf per t in ascending t", f16 ? 16 : 32, M, n,
                          d);
            /* no rows: nothing written, in every family (the row-block
             * path's choice of tile once divided by M) */
            for (int f = -1; f < (int)N_NAMES; f++) {
                char err[200];
                const qrm_kernels *k = f < 0 ? ref : qrm_kernels_by_name(names[f], qrm_cpu_features_get(), err, sizeof err);
                if (!k) continue;
                memcpy(got, want, sizeof(float) * M * ldo);
                wsum(k, f16, got, ldo, w, ldw, 0, rows, rows_h, ldr, n, d);
                ck_assert_msg(memcmp(got, want, sizeof(float) * M * ldo) == 0, "%s M=0 wrote", k->name);
            }
        }
        free(w), free(rows), free(rows_h), free(got), free(want);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("wsum");
    TCase *tc = tcase_create("attention");
    /* Check's default 4 s does not hold under the sanitizers or qemu on a busy 2-core machine */
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, wsum_matches_scalar);
    tcase_add_test(tc, block_with_trailing_zeros);
    tcase_add_test(tc, scalar_is_the_definition);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
