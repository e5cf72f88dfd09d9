/* wsum_rows_f32 (attention's probabilities times V) of every family against
 * the scalar reference, on odd sizes and tails. Tolerance: each output is a
 * sum of n products accumulated in order; SIMD families fuse multiply and
 * add (one rounding instead of two), so they may differ by about n ulps of
 * the running sum: TOL_WSUM_REL relative to the sum of |w| |v|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels.h"
#include "testutil.h"

#define TOL_WSUM_REL 1e-5f

START_TEST(wsum_matches_scalar) {
    static const char *names[] = {"avx2", "avx512", "neon", "dotprod", "i8mm"};
    const qrm_kernels *ref = qrm_kernels_scalar();
    int sizes_d[] = {1, 3, 4, 8, 15, 16, 17, 31, 32, 33, 64, 96, 128, 130, 256};
    int sizes_n[] = {0, 1, 2, 7, 64, 300};
    unsigned seed = 7;
    int tested = 0;
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char err[200];
        const qrm_kernels *k = qrm_kernels_by_name(names[f], qrm_cpu_features_get(), err, sizeof err);
        if (!k) continue;
        tested++;
        for (size_t a = 0; a < sizeof sizes_d / sizeof sizes_d[0]; a++)
            for (size_t b = 0; b < sizeof sizes_n / sizeof sizes_n[0]; b++) {
                int d = sizes_d[a], n = sizes_n[b];
                float *w = malloc(sizeof(float) * (n + 1)), *rows = malloc(sizeof(float) * (n * d + 1));
                float *o1 = malloc(sizeof(float) * d), *o2 = malloc(sizeof(float) * d),
                      *mag = calloc((size_t)d, sizeof(float));
                for (int i = 0; i < n; i++) {
                    seed = seed * 1103515245u + 12345u;
                    w[i] = (float)((seed >> 9) % 1000) / 1000.0f;
                }
                for (int i = 0; i < n * d; i++) {
                    seed = seed * 1103515245u + 12345u;
                    rows[i] = (float)((int)((seed >> 9) % 2001) - 1000) / 100.0f;
                }
                for (int i = 0; i < d; i++) o1[i] = o2[i] = (float)i * 0.5f - 3.0f, mag[i] = fabsf(o1[i]);
                for (int t = 0; t < n; t++)
                    for (int i = 0; i < d; i++) mag[i] += fabsf(w[t] * rows[t * d + i]);
                ref->wsum_rows_f32(o1, w, rows, n, d);
                k->wsum_rows_f32(o2, w, rows, n, d);
                for (int i = 0; i < d; i++)
                    ck_assert_msg(fabsf(o1[i] - o2[i]) <= TOL_WSUM_REL * mag[i] + 1e-6f,
                                  "%s d=%d n=%d i=%d: %g vs %g", names[f], d, n, i, (double)o2[i],
                                  (double)o1[i]);
                free(w), free(rows), free(o1), free(o2), free(mag);
            }
    }
    if (!tested) printf("wsum: no SIMD family on this CPU, nothing compared\n");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("wsum");
    TCase *tc = tcase_create("attention");
    tcase_add_test(tc, wsum_matches_scalar);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
