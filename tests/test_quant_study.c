/* Weight quantizers (tools/quantize.c) against the simple schemes they were
 * chosen over, on a fixed pseudo-random Gaussian sample (the fixtures'
 * weights are Gaussian too). The numbers behind the choice are in README.md
 * ("Quantization"); these checks keep them true:
 *
 *   - q8 absmax: every weight within half a step, relative RMS error 0.54%.
 *   - q4 search: never worse than the plain Q4_0 scale (d = max / -8) on any
 *     group, since that scale is one of its candidates; overall relative RMS
 *     error 8.11% against 8.61% (Q4_0) and 9.74% (d = amax / 7) on this
 *     sample.
 *
 * Everything is deterministic (own generator, no threads), so the bounds
 * can sit close to the measured values. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "f16.h"
#include "kernels.h"
#include "quantize.h"
#include "testutil.h"

#define N_GROUPS 2048

static uint64_t rng_state;

static double uniform01(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

/* N_GROUPS groups of QRM_QK standard normal values (Box-Muller), seed fixed */
static void gaussian_groups(float *x) {
    rng_state = 12345;
    for (int i = 0; i < N_GROUPS * QRM_QK; i++)
        x[i] = (float)(sqrt(-2 * log(uniform01())) * cos(2 * M_PI * uniform01()));
}

/* squared error of one group reconstructed as d * q */
static double group_sq_error(const float *x, uint16_t d16, const int8_t *q) {
    double d = qrm_f16_to_f32(d16), e = 0;
    for (int i = 0; i < QRM_QK; i++) e += pow(x[i] - d * q[i], 2);
    return e;
}

static double group_energy(const float *x) {
    double s = 0;
    for (int i = 0; i < QRM_QK; i++) s += (double)x[i] * x[i];
    return s;
}

/* The plain 4-bit schemes, rounded and clamped like the shipped one. */
static uint16_t q4_fixed_scale(const float *x, float d, int8_t *q) {
    uint16_t d16 = qrm_f32_to_f16(d);
    float df = qrm_f16_to_f32(d16);
    for (int i = 0; i < QRM_QK; i++) {
        int v = df != 0 ? (int)lrintf(x[i] / df) : 0;
        q[i] = (int8_t)(v > 7 ? 7 : v < -8 ? -8 : v);
    }
    return d16;
}

static float signed_extreme(const float *x) {
    float v = 0;
    for (int i = 0; i < QRM_QK; i++)
        if (fabsf(x[i]) > fabsf(v)) v = x[i];
    return v;
}

static float x_buf[N_GROUPS * QRM_QK];

START_TEST(q8_within_half_step_and_error_as_measured) {
    gaussian_groups(x_buf);
    double err = 0, energy = 0;
    for (int g = 0; g < N_GROUPS; g++) {
        const float *x = x_buf + g * QRM_QK;
        int8_t q[QRM_QK];
        uint16_t d16 = qrm_quantize_group_q8(x, q);
        double d = qrm_f16_to_f32(d16);
        for (int i = 0; i < QRM_QK; i++) {
            ck_assert_int_ge(q[i], -127);
            /* half a step, plus the f16 rounding of the scale at the extremes */
            ck_assert_msg(fabs(x[i] - d * q[i]) <= 0.5 * d + 127 * d / 1024,
                          "group %d elem %d: %g reconstructed as %g", g, i, (double)x[i], d * q[i]);
        }
        err += group_sq_error(x, d16, q);
        energy += group_energy(x);
    }
    double rel = 100 * sqrt(err / energy);
    printf("q8 absmax: relative RMS error %.3f%%\n", rel);
    ck_assert_msg(rel <= 0.55, "q8 relative RMS error %.3f%% (measured 0.54%%)", rel);
}
END_TEST

START_TEST(q4_search_beats_plain_scales) {
    gaussian_groups(x_buf);
    double e_search = 0, e_q40 = 0, e_absmax = 0, energy = 0;
    for (int g = 0; g < N_GROUPS; g++) {
        const float *x = x_buf + g * QRM_QK;
        int8_t q[QRM_QK], q40[QRM_QK], qam[QRM_QK];
        uint16_t d_search = qrm_quantize_group_q4(x, q);
        for (int i = 0; i < QRM_QK; i++) ck_assert(q[i] >= -8 && q[i] <= 7);
        float vmax = signed_extreme(x);
        uint16_t d_q40 = q4_fixed_scale(x, vmax / -8.0f, q40);
        uint16_t d_am = q4_fixed_scale(x, fabsf(vmax) / 7.0f, qam);
        double es = group_sq_error(x, d_search, q), e0 = group_sq_error(x, d_q40, q40);
        /* Q4_0's scale is one of the search's candidates (the search sums in
         * float, hence the relative slack) */
        ck_assert_msg(es <= e0 * (1 + 1e-5) + 1e-12, "group %d: search %g > Q4_0 %g", g, es, e0);
        e_search += es, e_q40 += e0, e_absmax += group_sq_error(x, d_am, qam);
        energy += group_energy(x);
    }
    double rs = 100 * sqrt(e_search / energy), r0 = 100 * sqrt(e_q40 / energy),
           ra = 100 * sqrt(e_absmax / energy);
    printf("q4 relative RMS error: search %.3f%%, Q4_0 %.3f%%, absmax/7 %.3f%%\n", rs, r0, ra);
    ck_assert_msg(rs <= 8.3, "q4 search relative RMS error %.3f%% (measured 8.20%% with the +-0.2 sweep)", rs);
    ck_assert_msg(rs <= 0.96 * r0, "q4 search %.3f%% is not clearly below Q4_0 %.3f%%", rs, r0);
    ck_assert_msg(rs <= 0.86 * ra, "q4 search %.3f%% is not clearly below absmax/7 %.3f%%", rs, ra);
}
END_TEST

START_TEST(zero_group_gives_zero_scale) {
    float x[QRM_QK] = {0};
    int8_t q[QRM_QK];
    memset(q, 1, sizeof q);
    ck_assert_uint_eq(qrm_quantize_group_q8(x, q), 0);
    for (int i = 0; i < QRM_QK; i++) ck_assert_int_eq(q[i], 0);
    memset(q, 1, sizeof q);
    ck_assert_uint_eq(qrm_quantize_group_q4(x, q), 0);
    for (int i = 0; i < QRM_QK; i++) ck_assert_int_eq(q[i], 0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("quant_study");
    TCase *tc = tcase_create("weight quantizers");
    /* Check's default 4 s does not hold under the sanitizers or qemu on a busy 2-core machine */
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, q8_within_half_step_and_error_as_measured);
    tcase_add_test(tc, q4_search_beats_plain_scales);
    tcase_add_test(tc, zero_group_gives_zero_scale);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
