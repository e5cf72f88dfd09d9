/* `qrm eval`: the metrics as pure functions and the report's aggregation on
 * hand-made scores, with every expected value computed by hand or by
 * tests/data/eval/expected_metrics.py (python3 standard library, written
 * from RewardBench's and ProcessBench's published code, never from qrm);
 * then the command end to end on the fixtures, for structure, consistency
 * (a model against itself agrees fully) and error handling only, since what
 * a random-weight fixture scores has no independent reference here. Also:
 * activation-weighted int4 (qrm-convert --calib, --int4-budget) and the
 * `qrm score` ensemble (several -m). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calib.h"
#include "model.h"
#include "pool.h"
#include "convert.h"
#include "eval.h"
#include "f16.h"
#include "quantize.h"
#include "eval_metrics.h"
#include "eval_report.h"
#include "json.h"
#include "testutil.h"

#define EPS 1e-12
#define ck_near(got, want) ck_assert_msg(fabs((got) - (want)) < EPS, "%s = %.17g, want %.17g", #got, (double)(got), (double)(want))

/* ---- metrics ---- */

START_TEST(rb1_sections_weighted) {
    /* weights from rewardbench/constants.py EXAMPLE_COUNTS; the prior set
     * "my-set" belongs to no section */
    const char *sub[] = {"alpacaeval-easy", "mt-bench-med", "mt-bench-hard", "donotanswer", "math-prm", "hep-go", "my-set"};
    double acc[] = {0.5, 1.0, 0.25, 0.75, 1.0, 0.0, 0.1};
    double sec[4];
    double overall = qrm_rb1_sections(sub, acc, 7, sec);
    ck_near(sec[0], 0.6428571428571429);   /* (0.5*100 + 1*40) / 140 */
    ck_near(sec[1], 0.25);
    ck_near(sec[2], 0.75);
    ck_near(sec[3], 0.8571428571428571);   /* 984 / (984 + 164) */
    ck_near(overall, 0.625);
    ck_assert_int_eq(qrm_rb1_section("xstest-should-respond"), 2);
    ck_assert_int_eq(qrm_rb1_section("anthropic_helpful"), -1);
    ck_assert_int_eq(qrm_rb1_weight("math-prm"), 984);
    /* the paper's score: sections weighted 2, the prior sets' mean 1 */
    const char *pri[] = {"anthropic_helpful", "shp", "alpacaeval-easy"};
    double pacc[] = {0.5, 1.0, 0.0};
    double prior = qrm_rb1_prior_sets(pri, pacc, 3);
    ck_near(prior, 0.75);
    ck_near(qrm_rb1_score_with_prior(sec, prior), 0.6388888888888888);
    ck_assert(isnan(qrm_rb1_prior_sets(sub, acc, 6)));
    ck_near(qrm_rb1_score_with_prior(sec, NAN), 0.625);
    /* a section with none of its subsets is absent, not 0 */
    const char *one[] = {"hep-rust"};
    double a1[] = {0.5};
    ck_near(qrm_rb1_sections(one, a1, 1, sec), 0.5);
    ck_assert(isnan(sec[0]) && isnan(sec[1]) && isnan(sec[2]));
}
END_TEST

START_TEST(pair_and_best_of_n_ties) {
    ck_near(qrm_pair_result(1.0, 0.5), 1);
    ck_near(qrm_pair_result(0.5, 0.5), 0);   /* a tie is a loss */
    ck_near(qrm_pair_result(0.4, 0.5), 0);
    double a[] = {1, 0, 1, 1}, b[] = {0.5, 0.7, 0.1}, c[] = {2, 1, 1, 1};
    ck_near(qrm_bon_result(a, 4), 1.0 / 3);
    ck_near(qrm_bon_result(b, 3), 0);
    ck_near(qrm_bon_result(c, 4), 1);
    /* pre-tokenized best-of-N pairs: the chosen one must beat every rejected one */
    ck_near(qrm_chosen_wins(c, 4), 1);
    ck_near(qrm_chosen_wins(a, 4), 0);   /* tied at the top: a loss, not 1/3 */
    ck_near(qrm_chosen_wins(b, 3), 0);
    double d2[] = {0.5, 0.4};
    ck_near(qrm_chosen_wins(d2, 2), qrm_pair_result(0.5, 0.4));
}
END_TEST

static const double ties_r1[] = {3, 1, 2}, ties_t1[] = {5, 4, 1, 2}, ties_r2[] = {1, 2}, ties_t2[] = {3, 1, 0};

START_TEST(rb2_ties_rule) {
    qrm_ties_sample s[] = {{1, 1, ties_r1, 3, 1}, {0, 1, ties_t1, 4, 2}, {1, 2, ties_r2, 2, 1}, {0, 2, ties_t2, 3, 2}};
    qrm_ties_result r;
    ck_assert_int_eq(qrm_rb2_ties(s, 4, &r), 0);
    ck_near(r.ref_accuracy, 0.5);
    ck_near(r.tied_accuracy, 1.0);
    ck_near(r.correctness_preferred, 0.5);
    ck_near(r.correctness_preferred_hard, 0.0);
    ck_near(r.margin_score, -0.4525741268224332);
    ck_near(r.overall, 0.5454742587317756);
    ck_assert_uint_eq(r.n_paired, 2);
    /* a sample without an incorrect response cannot be scored */
    qrm_ties_sample bad[] = {{1, 1, ties_r1, 3, 3}};
    ck_assert_int_eq(qrm_rb2_ties(bad, 1, &r), -1);
}
END_TEST

static const double pb_s0[] = {0.9, 0.8}, pb_s1[] = {0.9, 0.4}, pb_s2[] = {0.7, 0.6, 0.2},
                    pb_s3[] = {0.5, 0.1}, pb_s4[] = {0.8, 0.3, 0.1};

START_TEST(processbench_rule) {
    const double *st[] = {pb_s0, pb_s1, pb_s2, pb_s3, pb_s4};
    size_t n[] = {2, 2, 3, 2, 3};
    int label[] = {-1, -1, 2, 0, 1}, want[] = {-1, 1, 2, 1, 1}, pred[5];
    for (int i = 0; i < 5; i++) {
        pred[i] = qrm_pb_predict(st[i], n[i], 0.5);
        ck_assert_int_eq(pred[i], want[i]);   /* 0.5 is not below 0.5 */
    }
    double a1, a2, f1;
    qrm_pb_metrics(pred, label, 5, &a1, &a2, &f1);
    ck_near(a1, 2.0 / 3);
    ck_near(a2, 0.5);
    ck_near(f1, 4.0 / 7);
    ck_assert_int_eq(qrm_pb_predict(pb_s3, 2, 0.6), 0);
}
END_TEST

START_TEST(statistics) {
    double x1[] = {1, 2, 3, 4, 5}, y1[] = {1, 3, 2, 5, 4};
    ck_near(qrm_kendall_tau_b(x1, y1, 5), 0.6);
    double x2[] = {1, 2, 2, 3}, y2[] = {1, 2, 3, 3};
    ck_near(qrm_kendall_tau_b(x2, y2, 4), 0.8);   /* 4 / sqrt(5 * 5) */
    double c[] = {1, 1, 1};
    ck_assert(isnan(qrm_kendall_tau_b(c, x1, 3)));
    double px[] = {1, 2, 3, 4}, py[] = {2, 4, 5, 9};
    ck_near(qrm_pearson(px, py, 4), 0.9647638212377322);   /* 11 / sqrt(130) */
    double q[] = {3, 1, 4, 1, 5};
    ck_near(qrm_quantile(q, 5, 0.25), 1.0);
    ck_near(qrm_quantile(q, 5, 0.5), 3.0);
    ck_near(qrm_quantile(q, 5, 0.9), 4.6);
    double m, s;
    qrm_mean_std(px, 4, &m, &s);
    ck_near(m, 2.5);
    ck_near(s, sqrt(1.25));
}
END_TEST

START_TEST(calibration_ece) {
    /* chosen - rejected = 0, ln 3, -ln 3, ln(17/3): p = .5, .75, .25, .85 */
    double ch[] = {0, log(3), 0, log(17.0 / 3)}, rj[] = {0, 0, log(3), 0};
    size_t cnt[10];
    double conf[10], freq[10];
    double ece = qrm_calibration(ch, rj, 4, 10, cnt, conf, freq);
    ck_assert_msg(fabs(ece - 0.1625) < 1e-12, "ece %.17g", ece);
    size_t want[10] = {0, 1, 2, 0, 0, 2, 0, 2, 1, 0};
    for (int b = 0; b < 10; b++) ck_assert_uint_eq(cnt[b], want[b]);
    ck_assert(fabs(conf[7] - 0.75) < 1e-12 && fabs(freq[7] - 0.5) < 1e-12);
    ck_assert(fabs(freq[8] - 1.0) < 1e-12 && fabs(freq[1]) < 1e-12);
}
END_TEST

START_TEST(ensemble_combine) {
    double s0[] = {1, 2, 3}, s1[] = {10, 30, 20}, out[3];
    const double *s[] = {s0, s1};
    qrm_combine c;
    const double r = 1.224744871391589;   /* sqrt(3/2) */
    ck_assert_int_eq(qrm_combine_parse("mean", &c), 0);
    qrm_combine_scores(s, 2, 3, &c, out);
    ck_near(out[0], -r);
    ck_near(out[1], 0.6123724356957945);
    ck_near(out[2], 0.6123724356957945);
    ck_assert_int_eq(qrm_combine_parse("min", &c), 0);
    qrm_combine_scores(s, 2, 3, &c, out);
    ck_near(out[0], -r);
    ck_near(out[1], 0);
    ck_near(out[2], 0);
    ck_assert_int_eq(qrm_combine_parse("median", &c), 0);
    qrm_combine_scores(s, 2, 3, &c, out);
    ck_near(out[1], 0.6123724356957945);   /* the median of two is their mean */
    ck_assert_int_eq(qrm_combine_parse("mean-std:1", &c), 0);
    ck_near(c.k, 1);
    qrm_combine_scores(s, 2, 3, &c, out);
    ck_near(out[0], -r);
    ck_near(out[1], 0);
    ck_near(out[2], 0);
    ck_assert_int_eq(qrm_combine_parse("mean-std:", &c), -1);
    ck_assert_int_eq(qrm_combine_parse("mean-std:x", &c), -1);
    ck_assert_int_eq(qrm_combine_parse("max", &c), -1);
}
END_TEST

/* ---- the report's aggregation on hand-made scores ---- */

static qrm_eval_record mkrec(const char *subset, size_t first, size_t n_resp, size_t n_correct, int skipped) {
    qrm_eval_record r = {0};
    r.subset = (char *)subset;
    r.first = first, r.n_units = n_resp, r.n_resp = n_resp, r.n_correct = n_correct;
    r.skipped = skipped;
    r.ties_ref = -1;
    return r;
}

START_TEST(report_rewardbench) {
    /* alpacaeval-easy: a win and a tie (a loss); mt-bench-hard: a loss;
     * donotanswer: a win; a skipped record; a prior set: a win */
    double s[] = {1.0, 0.0, 0.5, 0.5, 2, 3, 0.2, -0.1, 9, 9, 1, 0};
    double len[] = {10, 5, 3, 3, 2, 8, 4, 9, 1, 1, 7, 1};
    qrm_eval_record rec[] = {mkrec("alpacaeval-easy", 0, 2, 1, 0), mkrec("alpacaeval-easy", 2, 2, 1, 0),
                             mkrec("mt-bench-hard", 4, 2, 1, 0), mkrec("donotanswer", 6, 2, 1, 0),
                             mkrec("donotanswer", 8, 2, 1, 1), mkrec("anthropic_helpful", 10, 2, 1, 0)};
    qrm_eval_data d = {.format = QRM_EVAL_RB1, .rec = rec, .n_rec = 6, .n_units = 12, .score = s, .length = len};
    qrm_eval_metrics m;
    ck_assert_int_eq(qrm_eval_compute(&d, s, &m), 0);
    ck_assert_uint_eq(m.n_records, 6);
    ck_assert_uint_eq(m.n_scored, 5);
    ck_assert_uint_eq(m.n_skipped, 1);
    ck_assert_uint_eq(m.n_subsets, 4);
    ck_assert_str_eq(m.subsets[0].name, "alpacaeval-easy");
    ck_near(m.subsets[0].score, 0.5);
    ck_near(m.subsets[1].score, 0);
    ck_near(m.subsets[2].score, 1);
    ck_assert_uint_eq(m.subsets[2].n, 1);   /* the skipped record is not counted */
    ck_near(m.sections[0], 0.5);
    ck_near(m.sections[1], 0);
    ck_near(m.sections[2], 1);
    ck_assert(isnan(m.sections[3]));
    ck_near(m.overall, 0.5);                /* (0.5 + 0 + 1) / 3 */
    ck_near(m.accuracy, 0.6);               /* 3 of 5 pairs */
    /* chosen longer: records 0 and 5, both won; shorter: 2 (lost) and 3 (won) */
    ck_assert_uint_eq(m.n_len[0], 2);
    ck_near(m.acc_len[0], 1);
    ck_assert_uint_eq(m.n_len[1], 2);
    ck_near(m.acc_len[1], 0.5);
    ck_assert_uint_eq(m.summary[0].n, 5);
    ck_near(m.summary[0].mean, (1.0 + 0.5 + 2 + 0.2 + 1) / 5);
    ck_near(m.summary[1].max, 3);
    qrm_eval_metrics_free(&m);
}
END_TEST

START_TEST(report_rewardbench2) {
    double s[] = {3, 1, 2, 0, 1, 1, 0, 0, 0, 1, 2, 3, 3, 1, 2, 5, 4, 1, 2, 1, 2, 3, 1, 0};
    double len[24] = {0};
    qrm_eval_record rec[] = {mkrec("Factuality", 0, 4, 1, 0), mkrec("Factuality", 4, 4, 1, 0),
                             mkrec("Math", 8, 4, 1, 0),       mkrec("Ties", 12, 3, 1, 0),
                             mkrec("Ties", 15, 4, 2, 0),      mkrec("Ties", 19, 2, 1, 0),
                             mkrec("Ties", 21, 3, 2, 0)};
    int kinds[] = {1, 0, 1, 0};
    long ids[] = {1, 1, 2, 2};
    for (int i = 0; i < 4; i++) rec[3 + i].ties_ref = kinds[i], rec[3 + i].ties_id = ids[i];
    qrm_eval_data d = {.format = QRM_EVAL_RB2, .rec = rec, .n_rec = 7, .n_units = 24, .score = s, .length = len};
    qrm_eval_metrics m;
    ck_assert_int_eq(qrm_eval_compute(&d, s, &m), 0);
    ck_assert_uint_eq(m.n_subsets, 3);
    ck_near(m.subsets[0].score, 0.75);
    ck_near(m.subsets[1].score, 0);
    ck_assert(m.subsets[2].is_ties);
    ck_near(m.subsets[2].score, 0.5454742587317756);
    ck_near(m.overall, 0.43182475291059186);
    ck_near(m.accuracy, 0.5);
    qrm_eval_metrics_free(&m);
}
END_TEST

START_TEST(report_processbench) {
    double s[] = {0.9, 0.8, 0.9, 0.4, 0.7, 0.6, 0.2, 0.5, 0.1, 0.8, 0.3, 0.1};
    qrm_eval_record rec[] = {mkrec(NULL, 0, 1, 0, 0), mkrec(NULL, 2, 1, 0, 0), mkrec(NULL, 4, 1, 0, 0),
                             mkrec(NULL, 7, 1, 0, 0), mkrec(NULL, 9, 1, 0, 0)};
    size_t nu[] = {2, 2, 3, 2, 3};
    int label[] = {-1, -1, 2, 0, 1};
    for (int i = 0; i < 5; i++) rec[i].n_units = nu[i], rec[i].label = label[i];
    qrm_eval_data d = {.format = QRM_EVAL_PB, .rec = rec, .n_rec = 5, .n_units = 12, .score = s, .threshold = 0.5};
    qrm_eval_metrics m;
    ck_assert_int_eq(qrm_eval_compute(&d, s, &m), 0);
    ck_near(m.pb_acc_error, 2.0 / 3);
    ck_near(m.pb_acc_correct, 0.5);
    ck_near(m.pb_f1, 4.0 / 7);
    ck_near(m.overall, 4.0 / 7);
    ck_assert_uint_eq(m.pb_n_error, 3);
    /* steps before the first wrong one: 7; the first wrong steps 0.2, 0.5, 0.3 */
    ck_assert_uint_eq(m.summary[0].n, 7);
    ck_assert_uint_eq(m.summary[1].n, 3);
    ck_near(m.summary[1].mean, (0.2 + 0.5 + 0.3) / 3);
    qrm_eval_metrics_free(&m);
}
END_TEST

START_TEST(report_agreement) {
    double s[] = {1, 0, 0, 1, 3, 2}, t[] = {2, 0, 1, 0.5, 4, 1};
    qrm_eval_record rec[] = {mkrec(NULL, 0, 2, 1, 0), mkrec(NULL, 2, 2, 1, 0), mkrec(NULL, 4, 2, 1, 0)};
    qrm_eval_data d = {.format = QRM_EVAL_PAIRS, .rec = rec, .n_rec = 3, .n_units = 6, .score = s, .ref_score = t};
    qrm_eval_agreement_t a;
    ck_assert_int_eq(qrm_eval_agreement(&d, &a), 0);
    ck_assert_uint_eq(a.n_decisions, 3);
    ck_assert_uint_eq(a.same, 2);
    ck_near(a.tau_b, 0.5929994533288809);
    ck_near(a.max_rel, 0.25);   /* |1 - 2| ... largest difference 1 over the range 4 */
}
END_TEST


/* ---- activation-aware int4 (qrm-convert --calib) ---- */

static double gauss(unsigned *st) {
    /* Box-Muller on a small LCG: reproducible without libc's rand state */
    double u1, u2;
    *st = *st * 1103515245u + 12345u;
    u1 = ((*st >> 8) + 0.5) / 16777216.0;
    *st = *st * 1103515245u + 12345u;
    u2 = ((*st >> 8) + 0.5) / 16777216.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* With outlier input channels (4 of 64 ten times larger, as trained models
 * have), weighting the scale search by E[x^2] must lower the matmul's output
 * error on those activations; with equal weights it must change nothing. */
START_TEST(weighted_q4_lowers_output_error) {
    enum { N = 16, K = 64, T = 256 };
    static float w[N][K], x[T][K];
    float imp[K] = {0}, ones[K];
    unsigned st = 12345;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) w[n][k] = (float)gauss(&st);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) x[t][k] = (float)(gauss(&st) * (k % 16 == 3 ? 10 : 1));
    for (int k = 0; k < K; k++) {
        for (int t = 0; t < T; t++) imp[k] += x[t][k] * x[t][k] / T;
        ones[k] = 1;
    }
    double err[2] = {0};
    for (int v = 0; v < 2; v++) {
        static float dq[N][K];
        for (int n = 0; n < N; n++)
            for (int g = 0; g < K / 32; g++) {
                int8_t q[32], q1[32];
                uint16_t d = qrm_quantize_group_q4_weighted(&w[n][g * 32], v ? imp + g * 32 : NULL, q);
                for (int i = 0; i < 32; i++) dq[n][g * 32 + i] = qrm_f16_to_f32(d) * q[i];
                if (!v) {   /* weights of 1 are the unweighted search, bit for bit */
                    uint16_t d1 = qrm_quantize_group_q4_weighted(&w[n][g * 32], ones + g * 32, q1);
                    ck_assert_uint_eq(d1, d);
                    ck_assert(!memcmp(q, q1, 32));
                    uint16_t d0 = qrm_quantize_group_q4(&w[n][g * 32], q1);
                    ck_assert_uint_eq(d0, d);
                }
            }
        for (int t = 0; t < T; t++)
            for (int n = 0; n < N; n++) {
                double e = 0;
                for (int k = 0; k < K; k++) e += (double)x[t][k] * (w[n][k] - dq[n][k]);
                err[v] += e * e;
            }
    }
    printf("int4 output error with outlier channels: weighted / plain = %.3f\n", err[1] / err[0]);
    ck_assert_msg(err[1] < 0.8 * err[0], "weighted %g, plain %g", err[1], err[0]);
}
END_TEST

/* The packed int4 tensor read back by hand (arch/kernels.h's layout:
 * panels of 16 rows, per group 256 bytes of nibbles + 8, then f16 scales). */
static float unpack_q4(const uint8_t *buf, int N, int K, int n, int k) {
    int G = K / 32, p = n / 16, r = n % 16, g = k / 32, kk = k % 32;
    int e = (kk / 4) * 64 + r * 4 + kk % 4;
    uint8_t b = buf[((size_t)p * G + g) * 256 + (e & 255)];
    int v = (e < 256 ? b & 15 : b >> 4) - 8;
    const uint16_t *sc = (const uint16_t *)(buf + (size_t)N * K / 2);
    return qrm_f16_to_f32(sc[((size_t)p * G + g) * 16 + r]) * (float)v;
}

/* sum over rows of ||(W - dequant) x||^2, the dequantized weights unpacked above */
static double packed_output_error(const float *w, const uint8_t *buf, int N, int K, const float *x, int T) {
    double err = 0;
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++) {
            double e = 0;
            for (int k = 0; k < K; k++) e += (double)x[(size_t)t * K + k] * (w[(size_t)n * K + k] - unpack_q4(buf, N, K, n, k));
            err += e * e;
        }
    return err;
}

/* Whole-matrix calibrated int4 (GPTQ among the candidates, chosen on
 * held-out lines): with correlated inputs (8 latent factors mixed into 64
 * channels, as the residual stream of a trained model is far from white)
 * the output error on fresh rows of that distribution, read back from the
 * packed bytes, must fall well below the plain search's; with white inputs
 * the held-out choice must not cost more than noise. */
START_TEST(calibrated_q4_lowers_output_error) {
    enum { N = 32, K = 64, T = 512, F = 8 };
    static float w[N * K], x[T * K], fresh[T * K], mix[F][K];
    static uint8_t cal[N * K / 2 + N * K / 16], pl[N * K / 2 + N * K / 16];
    static int line[T];
    float imp[K];
    unsigned st = 777;
    for (int i = 0; i < N * K; i++) w[i] = (float)gauss(&st);
    for (int f = 0; f < F; f++)
        for (int k = 0; k < K; k++) mix[f][k] = (float)gauss(&st);
    for (int white = 0; white < 2; white++) {
        for (int set = 0; set < 2; set++) {
            float *dst = set ? fresh : x;
            for (int t = 0; t < T; t++) {
                float z[F];
                for (int f = 0; f < F; f++) z[f] = (float)gauss(&st);
                for (int k = 0; k < K; k++) {
                    double v = 0.1 * gauss(&st);
                    if (white) v = gauss(&st);
                    else
                        for (int f = 0; f < F; f++) v += z[f] * mix[f][k];
                    dst[(size_t)t * K + k] = (float)v;
                }
            }
        }
        for (int k = 0; k < K; k++) {
            double s2 = 0;
            for (int t = 0; t < T; t++) s2 += (double)x[(size_t)t * K + k] * x[(size_t)t * K + k];
            imp[k] = (float)(s2 / T);
        }
        for (int t = 0; t < T; t++) line[t] = t / 16;   /* 32 "lines" of 16 rows */
        qrm_q4_choice ch;
        ck_assert_int_eq(qrm_quantize_q4_calibrated(w, N, K, imp, x, line, T, cal, &ch, NULL), 0);
        for (int p = 0; p < N / 16; p++) qrm_quantize_panel(QRM_WQ4, w + (size_t)p * 16 * K, K, p, N, pl);
        double ec = packed_output_error(w, cal, N, K, fresh, T), ep = packed_output_error(w, pl, N, K, fresh, T);
        printf("calibrated int4, %s inputs: method %d, output error on fresh rows %.3f of plain\n",
               white ? "white" : "correlated", ch.method, ec / ep);
        if (white) ck_assert_msg(ec < 1.05 * ep, "calibrated %g, plain %g", ec, ep);
        else {
            ck_assert_int_eq(ch.method, 2);
            ck_assert_msg(ec < 0.5 * ep, "calibrated %g, plain %g", ec, ep);
        }
    }
}
END_TEST

/* The converter's pool runs GPTQ's Hessian, factorizations and sweeps and
 * the candidates' errors; the packed bytes and the choice must not depend
 * on it. K = 192 reaches the threaded columns of the Cholesky factor. */
START_TEST(calibrated_q4_same_with_threads) {
    enum { N = 48, K = 192, T = 256 };
    static float w[N * K], x[T * K];
    static uint8_t one[N * K / 2 + N * K / 16], many[N * K / 2 + N * K / 16];
    static int line[T];
    float imp[K] = {0};
    unsigned st = 4242;
    for (int i = 0; i < N * K; i++) w[i] = (float)gauss(&st);
    for (int t = 0; t < T; t++) {
        double common = gauss(&st);   /* correlated inputs: GPTQ wins */
        for (int k = 0; k < K; k++) {
            x[(size_t)t * K + k] = (float)(common + 0.2 * gauss(&st));
            imp[k] += x[(size_t)t * K + k] * x[(size_t)t * K + k] / T;
        }
        line[t] = t / 8;
    }
    qrm_q4_choice a, b;
    ck_assert_int_eq(qrm_quantize_q4_calibrated(w, N, K, imp, x, line, T, one, &a, NULL), 0);
    for (int threads = 2; threads <= 3; threads++) {
        qrm_pool *pool = qrm_pool_new(threads);
        ck_assert_ptr_nonnull(pool);
        memset(many, 0, sizeof many);
        ck_assert_int_eq(qrm_quantize_q4_calibrated(w, N, K, imp, x, line, T, many, &b, pool), 0);
        qrm_pool_free(pool);
        ck_assert_int_eq(a.method, 2);
        ck_assert_int_eq(b.method, a.method);
        ck_assert(b.heldout_chosen == a.heldout_chosen && b.heldout_plain == a.heldout_plain);
        ck_assert(!memcmp(one, many, sizeof one));
    }
}
END_TEST

/* --calib through the converter: the calibration file's sha256 (from
 * sha256sum, not from qrm) lands in the provenance; misuse is an error that
 * names the line and leaves no file behind. */
START_TEST(calib_convert_records_provenance) {
    char *d = tu_tmpdir(), out[600], err[QRM_ERR_MAX];
    snprintf(out, sizeof out, "%s/aw.qrm", d);
    qrm_convert_opts o = {.hf_dir = TEST_DATA "/models/llama3-tiny", .out_path = out, .quant = "int4",
                          .calib = TEST_DATA "/eval/calib.jsonl"};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    qrm_model *m = qrm_model_open(out, err, sizeof err);
    ck_assert_msg(m, "%s", err);
    const char *meta = qrm_model_metadata_json(m);
    ck_assert(strstr(meta, "\"calibration_sha256\":\"db17f35fdcc79d10c1bfd1a0bdd5bd39507e5f774c9692b74c8c16e7b45dffb0\""));
    ck_assert(strstr(meta, "activation-weighted"));
    ck_assert(!strstr(meta, ".calib-f32.tmp"));
    qrm_model_close(m);
    ck_assert_int_eq(access(out, F_OK), 0);
    unlink(out);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.calib-f32.tmp", out);
    ck_assert_int_ne(access(tmp, F_OK), 0);   /* the float model is gone */
    o.quant = "int8";
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "int4"), "%s", err);
    o.quant = "int4";
    /* ArmoRM's head refuses lines without a user turn (the file's "text"
     * and "ids" lines): they are skipped, not an error */
    o.hf_dir = TEST_DATA "/models/llama3-armorm-tiny";
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    unlink(out);
    o.hf_dir = TEST_DATA "/models/llama3-tiny";
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", d);
    FILE *f = fopen(bad, "w");
    fputs("{\"text\": \"fine\"}\n{\"prompt\": \"no response\"}\n", f);
    fclose(f);
    o.calib = bad;
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "line 2"), "%s", err);
    ck_assert_int_ne(access(out, F_OK), 0);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    /* the line shapes of qrm score --input (CONTRACT.md): prompt with
     * responses, messages, ids; every response of a line is run */
    f = fopen(bad, "w");
    fputs("{\"prompt\": \"Hi there\", \"responses\": [\"Hello!\", \"Go away.\", \"Hey.\"]}\n"
          "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n"
          "{\"ids\": [316, 5, 6, 7]}\n",
          f);
    fclose(f);
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    m = qrm_model_open(out, err, sizeof err);
    ck_assert_msg(m, "%s", err);
    int32_t *ids[3];
    size_t n[3], total = 4;   /* the ids line */
    static const char *const resp[] = {"Hello!", "Go away.", "Hey."};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(qrm_model_encode_prompt_response(m, "Hi there", 8, resp[k], strlen(resp[k]), &ids[k], &n[k],
                                                          err, sizeof err), QRM_OK);
        total += n[k];
        free(ids[k]);
    }
    int32_t *mi;
    size_t mn;
    static const char conv[] = "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]";
    ck_assert_int_eq(qrm_model_encode_chat(m, conv, strlen(conv), &mi, &mn, NULL, err, sizeof err), QRM_OK);
    free(mi);
    total += mn;
    char want[64];
    snprintf(want, sizeof want, "\"calibration_tokens\":%zu", total);
    ck_assert_msg(strstr(qrm_model_metadata_json(m), want), "want %s in %s", want, qrm_model_metadata_json(m));
    qrm_model_close(m);
    unlink(out);
    f = fopen(bad, "w");
    fputs("{\"prompt\": \"Hi\", \"responses\": [\"ok\", 3]}\n", f);
    fclose(f);
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "line 1: 'responses' element 1 is not a string"), "%s", err);
    unlink(bad);
    rmdir(d);
    free(d);
}
END_TEST


static char *data_sha(const char *path) {
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    ck_assert_msg(m, "%s", err);
    const char *meta = qrm_model_metadata_json(m);
    qj_doc *d = qj_parse(meta, strlen(meta), err, sizeof err);
    char *sha = strdup(qj_get_str(qj_get(qj_root(d), "integrity"), "data_sha256"));
    qj_free(d);
    qrm_model_close(m);
    return sha;
}

/* Calibration must reach the backbone whatever the head: a PRM reads only
 * its step separators (a response becomes one step, or nothing would run)
 * and ArmoRM refuses lines without a user turn (skipped); either way the
 * calibrated data differs from plain int4's. */
START_TEST(calib_reaches_prm_and_gated) {
    static const char *const models[] = {"qwen2-prm-tiny", "llama3-armorm-tiny"};
    char *d = tu_tmpdir(), a[600], b[600], dir[600], err[QRM_ERR_MAX];
    snprintf(a, sizeof a, "%s/a.qrm", d);
    snprintf(b, sizeof b, "%s/b.qrm", d);
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, TEST_DATA "/models/%s", models[i]);
        qrm_convert_opts o = {.hf_dir = dir, .out_path = a, .quant = "int4", .calib = TEST_DATA "/eval/calib.jsonl"};
        ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s: %s", models[i], err);
        o.calib = NULL, o.out_path = b;
        ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s: %s", models[i], err);
        char *sa = data_sha(a), *sb = data_sha(b);
        ck_assert_msg(strcmp(sa, sb), "%s: calibration changed nothing", models[i]);
        free(sb);
        /* the sampling and the layer-by-layer choice are deterministic */
        o.calib = TEST_DATA "/eval/calib.jsonl";
        ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s: %s", models[i], err);
        sb = data_sha(b);
        ck_assert_str_eq(sa, sb);
        free(sa), free(sb);
        unlink(a), unlink(b);
    }
    rmdir(d);
    free(d);
}
END_TEST

/* A vocabulary head stored int4 (a judge over the full vocabulary: 384 rows
 * in qwen3-yesno-tiny) is calibrated like the backbone, from the final hidden
 * states of the model whose layers are already quantized (a pass after the
 * last layer's); one int4 cannot store (llama-dpo-tiny's 329 rows stay f16)
 * and a judge's two f32 rows are not collected at all. */
START_TEST(calib_reaches_vocabulary_head) {
    char *d = tu_tmpdir(), out[600], one[600], err[QRM_ERR_MAX];
    snprintf(out, sizeof out, "%s/h.qrm", d);
    /* the cases without a head to calibrate need only one line (this test
     * runs under qemu and the sanitizers too) */
    snprintf(one, sizeof one, "%s/one.jsonl", d);
    FILE *f = fopen(one, "w");
    fputs("{\"prompt\": \"What is 2+2?\", \"response\": \"4\"}\n", f);
    fclose(f);
    static const struct {
        const char *dir;
        qrm_head_spec spec;
        int head;
    } cases[] = {{"qwen3-yesno-tiny", {.judge_yes = "yes", .judge_no = "no", .judge_full = 1}, 1},
                 {"qwen3-yesno-tiny", {.judge_yes = "yes", .judge_no = "no"}, 0},
                 {"llama-dpo-tiny/policy", {.lm = 1}, 0}};
    for (int i = 0; i < 3; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, TEST_DATA "/models/%s", cases[i].dir);
        qrm_convert_opts o = {.hf_dir = dir, .out_path = out, .quant = "int4", .spec = cases[i].spec};
        qrm_calib c;
        ck_assert_msg(qrm_calib_collect(&o, cases[i].head ? TEST_DATA "/eval/calib.jsonl" : one, &c, err, sizeof err) == 0,
                      "%s", err);
        const qrm_calib_tensor *h = NULL;
        int layers = 0;
        for (int k = 0; k < c.n; k++) {
            if (c.t[k].role < 0) h = &c.t[k];
            else layers = c.t[k].layer + 1 > layers ? c.t[k].layer + 1 : layers;
        }
        ck_assert_msg(!h == !cases[i].head, "case %d: head collected: %d", i, h != NULL);
        if (h) {
            ck_assert_str_eq(h->name, "lm_head");
            ck_assert_int_eq(h->layer, layers);
            ck_assert(h->N == 384 && h->K == 64);
            /* one row per sequence: the judge reads the last position */
            ck_assert_msg(h->n >= 20 && h->packed && h->method >= 0, "rows %g, method %d", h->n, h->method);
            ck_assert(qrm_calib_find(&c, "lm_head", 64) == h);
            /* and the converter stores exactly that choice (calibration is
             * deterministic: calib_reaches_prm_and_gated) */
            o.calib = TEST_DATA "/eval/calib.jsonl";
            ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
            qrm_model *m = qrm_model_open(out, err, sizeof err);
            ck_assert_msg(m != NULL, "%s", err);
            const qrm_tensor *t = &m->head.t[h->head_slot];
            size_t bytes = qrm_quant_size(QRM_WQ4, h->N, h->K);
            ck_assert_msg(t->type == QRM_T_Q4 && t->nbytes == bytes && !memcmp(t->data, h->packed, bytes),
                          "the file's head is not the calibrated one");
            qrm_model_close(m);
            unlink(out);
        }
        qrm_calib_free(&c);
    }
    unlink(one);
    rmdir(d);
    free(d);
}
END_TEST

/* --int4-budget: 8.5 bits keeps every matrix int8 (the very data of
 * --quant int8), 4.5 none (the data of plain --calib int4); in between, the
 * mean stays within the budget and the choice is recorded. */
START_TEST(int4_budget_bounds) {
    char *d = tu_tmpdir(), a[600], b[600], err[QRM_ERR_MAX];
    snprintf(a, sizeof a, "%s/a.qrm", d);
    snprintf(b, sizeof b, "%s/b.qrm", d);
    qrm_convert_opts o = {.hf_dir = TEST_DATA "/models/llama3-tiny", .out_path = a, .quant = "int4",
                          .calib = TEST_DATA "/eval/calib.jsonl", .int4_budget = 8.5};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    qrm_convert_opts o8 = {.hf_dir = TEST_DATA "/models/llama3-tiny", .out_path = b, .quant = "int8"};
    ck_assert_msg(qrm_convert(&o8, err, sizeof err) == 0, "%s", err);
    char *sa = data_sha(a), *sb = data_sha(b);
    ck_assert_str_eq(sa, sb);
    free(sa), free(sb);
    o.int4_budget = 4.5;
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    o.int4_budget = 0, o.out_path = b;
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    sa = data_sha(a), sb = data_sha(b);
    ck_assert_str_eq(sa, sb);
    free(sa), free(sb);
    o.int4_budget = 5.0, o.out_path = a;
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    qrm_model *m = qrm_model_open(a, err, sizeof err);
    ck_assert_msg(m, "%s", err);
    const char *meta = qrm_model_metadata_json(m);
    qj_doc *doc = qj_parse(meta, strlen(meta), err, sizeof err);
    const qj_value *q = qj_get(qj_root(doc), "quant");
    double bits;
    ck_assert(qj_get_num(q, "bits_per_weight", &bits) && bits > 4.5 && bits <= 5.0);
    ck_assert(qj_get(q, "int8_tensors")->len > 0);
    qj_free(doc);
    qrm_model_close(m);
    o.quant = "int8";
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    o.quant = "int4", o.int4_budget = 9;
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "4.5"), "%s", err);
    unlink(a), unlink(b);
    rmdir(d);
    free(d);
}
END_TEST

/* ---- the command, end to end ---- */

static char *tmp;
static char *m8, *m32, *prm, *q3;

static void e2e_setup(void) {
    tmp = tu_tmpdir();
    m8 = tu_convert("llama3-tiny", "int8", NULL);
    m32 = tu_convert("llama3-tiny", "f32", NULL);
    prm = tu_convert("qwen2-prm-tiny", "int8", NULL);
    q3 = tu_convert("qwen3-tiny", "int8", NULL);
}

static void e2e_teardown(void) {
    tu_remove_converted(m8), tu_remove_converted(m32), tu_remove_converted(prm), tu_remove_converted(q3);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    free(tmp);
}

static int have_cli(void) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) == 0) return 1;
    printf(QRM_TEST_BIN_DIR "/qrm not built: skipping the end-to-end checks\n");
    return 0;
}

/* Runs `build/qrm eval ARGS --json`; returns the exit status, the parsed
 * stdout in *doc (NULL if not JSON) and stderr in *err (malloc'd). */
static int run_eval(const char *args, qj_doc **doc, char **err) {
    char cmd[4096], out[600], errp[600];
    snprintf(out, sizeof out, "%s/out.json", tmp);
    snprintf(errp, sizeof errp, "%s/err.txt", tmp);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm eval %s > %s 2> %s", args, out, errp);
    int st = system(cmd);
    size_t n;
    char *text = tu_read_file(out, &n), e[QRM_ERR_MAX];
    *doc = qj_parse(text, n, e, sizeof e);
    free(text);
    *err = tu_read_file(errp, &n);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double num(const qj_value *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const qj_value *v = o;
    for (char *k = strtok(buf, "."); k && v; k = strtok(NULL, ".")) v = qj_get(v, k);
    ck_assert_msg(v && v->type == QJ_NUMBER, "no number at %s", path);
    return v->u.num;
}

START_TEST(e2e_each_format_against_itself) {
    if (!have_cli()) return;
    static const struct {
        const char *file, *format;
        int records;
        int prm;
    } cases[] = {
        {"rewardbench", "rewardbench", 11, 0}, {"rewardbench2", "rewardbench2", 6, 0},
        {"pairs", "pairs", 4, 0},              {"pairs_messages", "pairs", 3, 0},
        {"pairs_ids", "pairs", 6, 0},          {"processbench", "processbench", 5, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[2048];
        const char *m = cases[i].prm ? prm : m8;
        snprintf(args, sizeof args, "-m %s --against %s --data tests/data/eval/%s.jsonl --json", m, m, cases[i].file);
        qj_doc *d;
        char *err;
        ck_assert_msg(run_eval(args, &d, &err) == 0, "%s: %s", cases[i].file, err);
        ck_assert_msg(d != NULL, "%s: stdout is not one JSON document", cases[i].file);
        const qj_value *r = qj_root(d);
        ck_assert_str_eq(qj_get_str(r, "format"), cases[i].format);
        ck_assert_int_eq((int)num(r, "records"), cases[i].records);
        ck_assert_int_eq((int)num(r, "scored"), cases[i].records);
        ck_assert_int_eq((int)num(r, "skipped"), 0);
        /* a model against itself: the same decisions, tau 1, no difference */
        ck_assert_msg(num(r, "agreement") == 1, "%s", cases[i].file);
        ck_assert_msg(num(r, "agreement_detail.kendall_tau_b") == 1, "%s", cases[i].file);
        ck_assert_msg(num(r, "agreement_detail.max_diff_over_range") == 0, "%s", cases[i].file);
        ck_assert(num(r, "score") == num(r, "reference.score"));
        /* the provenance travels with the report */
        const qj_value *models = qj_get(r, "models");
        ck_assert(models && models->len == 1);
        ck_assert(qj_get(qj_get(&models->u.items[0], "metadata"), "provenance"));
        if (!strcmp(cases[i].format, "rewardbench")) {
            ck_assert(qj_get(qj_get(r, "sections"), "Chat Hard"));
            ck_assert(qj_get(r, "calibration") && qj_get(r, "length_bias"));
        }
        qj_free(d);
        free(err);
    }
}
END_TEST

/* int8 against f32: scores of one fixture in two quantizations, so the
 * report must be within the quantization's reach of agreement (a loose
 * bound: the decisions of this file are far from ties under f32). */
START_TEST(e2e_int8_against_f32) {
    if (!have_cli()) return;
    char args[2048];
    snprintf(args, sizeof args, "-m %s --against %s --data tests/data/eval/rewardbench.jsonl --json", m8, m32);
    qj_doc *d;
    char *err;
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    const qj_value *r = qj_root(d);
    double rel = num(r, "agreement_detail.max_diff_over_range");
    ck_assert_msg(rel > 0 && rel < 0.1, "max diff / range %g", rel);
    ck_assert(num(r, "agreement_detail.kendall_tau_b") > 0.8);
    ck_assert_int_eq((int)num(r, "agreement_detail.decisions"), 11);
    qj_free(d);
    free(err);
}
END_TEST

/* --kv q8 on the -m model, the same file as the reference with its default
 * cache: the report says so, the scores move (an int8 cache) but not by
 * much, and a model whose head_dim does not allow it is refused. */
START_TEST(e2e_kv_q8_against_default) {
    if (!have_cli()) return;
    char args[2048];
    snprintf(args, sizeof args, "-m %s --kv q8 --against %s --data tests/data/eval/rewardbench.jsonl --json", q3, q3);
    qj_doc *d;
    char *err;
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    const qj_value *r = qj_root(d);
    ck_assert_str_eq(qj_get_str(r, "kv"), "q8");
    double rel = num(r, "agreement_detail.max_diff_over_range");
    ck_assert_msg(rel > 0 && rel < 0.1, "max diff / range %g", rel);
    ck_assert_int_eq((int)num(r, "agreement_detail.decisions"), 11);
    qj_free(d);
    free(err);
    snprintf(args, sizeof args, "-m %s --kv q8 --data tests/data/eval/pairs.jsonl", m8);
    ck_assert_int_eq(run_eval(args, &d, &err), 1);
    ck_assert_msg(strstr(err, "KV cache q8 needs a head_dim that is a multiple of 32"), "stderr: %s", err);
    qj_free(d);
    free(err);
}
END_TEST

START_TEST(e2e_bad_records_are_named_and_skipped) {
    if (!have_cli()) return;
    char args[2048];
    snprintf(args, sizeof args, "-m %s --data tests/data/eval/bad.jsonl --json", m8);
    qj_doc *d;
    char *err;
    ck_assert_int_eq(run_eval(args, &d, &err), 0);
    const qj_value *r = qj_root(d);
    ck_assert_int_eq((int)num(r, "records"), 7);   /* the blank line is not a record */
    ck_assert_int_eq((int)num(r, "scored"), 2);
    ck_assert_int_eq((int)num(r, "skipped"), 5);
    static const char *const want[] = {
        "bad.jsonl:2 (id nochosen): missing field 'chosen'",
        "bad.jsonl:3 (id same): the chosen response is also the rejected one",
        "bad.jsonl:4 (id type): 'chosen' and 'rejected' must both be strings",
        "bad.jsonl:5: not valid JSON",
        "bad.jsonl:8: missing string field 'prompt'",
    };
    for (size_t i = 0; i < 5; i++) ck_assert_msg(strstr(err, want[i]), "missing '%s' in:\n%s", want[i], err);
    int lines = 0;
    for (const char *p = err; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 5);
    qj_free(d);
    free(err);
}
END_TEST

START_TEST(e2e_ensemble_and_usage) {
    if (!have_cli()) return;
    char args[2048];
    qj_doc *d;
    char *err;
    /* an ensemble of one model twice, against that model: the reference is
     * standardized the same way, so the scores are the same */
    snprintf(args, sizeof args, "-m %s -m %s --combine mean-std:1 --against %s --data tests/data/eval/pairs.jsonl --json",
             m8, m8, m8);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    ck_assert_str_eq(qj_get_str(qj_root(d), "combine"), "mean-std:1");
    ck_assert(num(qj_root(d), "agreement_detail.max_diff_over_range") < 1e-12);
    ck_assert_int_eq(qj_get(qj_root(d), "models")->len, 2);
    qj_free(d), free(err);
    /* two different models each with its own tokenizer and template */
    snprintf(args, sizeof args, "-m %s -m %s --data tests/data/eval/rewardbench.jsonl --json", m8, q3);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    ck_assert_int_eq((int)num(qj_root(d), "scored"), 11);
    qj_free(d), free(err);
    /* usage errors exit 2; a head that does not fit the data exits 1 */
    const char *bad[] = {"--data tests/data/eval/pairs.jsonl --json", "-m X --json",
                         "-m X --data Y --combine mean", "-m X -m Y --data Z --combine max",
                         "-m X --data Y --threshold 2", "-m X --data Y --format nope"};
    for (size_t i = 0; i < 6; i++) {
        ck_assert_msg(run_eval(bad[i], &d, &err) == 2, "%s", bad[i]);
        qj_free(d), free(err);
    }
    /* the shared option parser: strict numbers named by their option, --help
     * with every option and its default, --version; both exit 0 */
    ck_assert_int_eq(run_eval("-m X --data Y -t 2x", &d, &err), 2);
    ck_assert_msg(strstr(err, "-t: '2x'"), "%s", err);
    qj_free(d), free(err);
    ck_assert_int_eq(run_eval("-m X --data Y --max-tokens=0", &d, &err), 2);
    ck_assert_msg(strstr(err, "--max-tokens"), "%s", err);
    qj_free(d), free(err);
    char *help;
    {
        char cmd[1400], hp[600];
        snprintf(hp, sizeof hp, "%s/help.txt", tmp);
        snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm eval --help > %s && " QRM_TEST_BIN_DIR "/qrm eval --version >> %s", hp, hp);
        ck_assert_int_eq(system(cmd), 0);
        size_t n;
        help = tu_read_file(hp, &n);
    }
    static const char *const each[] = {"--model", "--data", "--format", "--against", "--threshold", "--combine",
                                       "--json", "--svg", "--threads", "--max-tokens", "(default: 0.5)",
                                       "(default: mean)", "file format"};
    for (size_t i = 0; i < sizeof each / sizeof *each; i++) ck_assert_msg(strstr(help, each[i]), "%s", each[i]);
    free(help);
    snprintf(args, sizeof args, "-m %s --data tests/data/eval/processbench.jsonl", m8);
    ck_assert_int_eq(run_eval(args, &d, &err), 1);
    ck_assert_msg(strstr(err, "process reward model"), "%s", err);
    qj_free(d), free(err);
    snprintf(args, sizeof args, "-m %s --data %s", m8, tmp);
    ck_assert_int_eq(run_eval(args, &d, &err), 1);
    qj_free(d), free(err);
}
END_TEST


/* qrm score with two -m: "scores" is the combination of each model's
 * z-scores, recomputed here from the "model_scores" it prints (over the
 * lines every model scored); the bad line gets an error and the rest go on. */
START_TEST(e2e_score_ensemble) {
    if (!have_cli()) return;
    char in[600], outp[600], cmd[3000];
    snprintf(in, sizeof in, "%s/ens.jsonl", tmp);
    snprintf(outp, sizeof outp, "%s/ens.out", tmp);
    FILE *f = fopen(in, "w");
    fputs("{\"id\":1,\"prompt\":\"Hi\",\"responses\":[\"Hello\",\"Go away\",\"Hey there\"]}\n"
          "{\"id\":2,\"ids\":[316,5,6,7]}\nnot json\n"
          "{\"id\":4,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s -m %s --combine mean-std:0.5 --input %s > %s", m8, q3, in, outp);
    ck_assert_int_eq(system(cmd), 0);
    size_t n;
    char *text = tu_read_file(outp, &n), *save = NULL;
    double raw[2][8], comb[8];
    int nr = 0;
    int line = 0;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
        char e[QRM_ERR_MAX];
        qj_doc *d = qj_parse(l, strlen(l), e, sizeof e);
        ck_assert_msg(d, "%s", l);
        const qj_value *r = qj_root(d);
        if (line == 2) {
            ck_assert(qj_get_str(r, "error") != NULL);
        } else {
            const qj_value *sc = qj_get(r, "scores"), *ms = qj_get(r, "model_scores");
            ck_assert(sc && ms && ms->len == 2);
            for (uint32_t j = 0; j < sc->len; j++, nr++) {
                comb[nr] = sc->u.items[j].u.num;
                for (int k = 0; k < 2; k++) raw[k][nr] = ms->u.items[k].u.items[j].u.num;
            }
        }
        qj_free(d);
    }
    ck_assert_int_eq(line, 4);
    ck_assert_int_eq(nr, 5);
    double z[2][8];
    for (int k = 0; k < 2; k++) {
        double mu = 0, var = 0;
        for (int i = 0; i < nr; i++) mu += raw[k][i] / nr;
        for (int i = 0; i < nr; i++) var += (raw[k][i] - mu) * (raw[k][i] - mu) / nr;
        for (int i = 0; i < nr; i++) z[k][i] = (raw[k][i] - mu) / sqrt(var);
    }
    for (int i = 0; i < nr; i++) {
        double want = (z[0][i] + z[1][i]) / 2 - 0.5 * fabs(z[0][i] - z[1][i]) / 2;
        /* the printed raw scores have 9 digits */
        ck_assert_msg(fabs(comb[i] - want) < 1e-6, "response %d: %.9g, want %.9g", i, comb[i], want);
    }
    free(text);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s -m %s --input %s --best >/dev/null 2>&1", m8, q3, in);
    int st = system(cmd);
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s -m %s --input %s -t 1.5 >/dev/null 2>&1", m8, q3, in);
    st = system(cmd);
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s -m %s --help | grep -q -- '--combine mean|min|median'", m8, q3);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s -m %s --input %s >/dev/null 2>&1", m8, prm, in);
    st = system(cmd);
    ck_assert_int_eq(WEXITSTATUS(st), 1);
}
END_TEST

/* The keys CONTRACT.md promises outside scripts: "n", "accuracy" (the
 * RewardBench score for RewardBench data), "subsets" keyed by name with "n"
 * and "accuracy", "agreement" as a fraction; and pre-tokenized records whose
 * "rejected_ids" holds several sequences (the chosen one must beat them
 * all), checked against scores from the library itself. */
START_TEST(e2e_contract_keys_and_ids_best_of_n) {
    if (!have_cli()) return;
    qj_doc *d;
    char *err, args[2048];
    snprintf(args, sizeof args, "-m %s --against %s --data tests/data/eval/rewardbench.jsonl --json", m8, m32);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    const qj_value *r = qj_root(d);
    ck_assert_int_eq((int)num(r, "n"), 11);
    ck_assert(num(r, "accuracy") == num(r, "score"));   /* the RewardBench score */
    ck_assert(num(r, "pair_accuracy") >= 0 && num(r, "pair_accuracy") <= 1);
    const qj_value *sub = qj_get(r, "subsets");
    ck_assert(sub && sub->type == QJ_OBJECT);
    ck_assert_int_eq((int)num(r, "subsets.alpacaeval-easy.n"), 2);
    double acc = num(r, "subsets.alpacaeval-easy.accuracy");
    ck_assert(acc == 0 || acc == 0.5 || acc == 1);
    double ag = num(r, "agreement");
    ck_assert(ag == num(r, "agreement_detail.rate") && ag >= 0 && ag <= 1);
    qj_free(d);
    free(err);
    /* ProcessBench: a record's decision is its predicted label, not a step's */
    char *p32 = tu_convert("qwen2-prm-tiny", "f32", NULL), *p4 = tu_convert("qwen2-prm-tiny", "int4", NULL);
    snprintf(args, sizeof args, "-m %s --against %s --data tests/data/eval/processbench.jsonl --json", p4, p32);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    r = qj_root(d);
    ck_assert_int_eq((int)num(r, "n"), 5);
    ck_assert(num(r, "agreement") == num(r, "agreement_detail.same_label") / num(r, "agreement_detail.samples"));
    ck_assert(num(r, "accuracy") >= 0 && num(r, "accuracy") <= 1);
    qj_free(d);
    free(err);
    tu_remove_converted(p32), tu_remove_converted(p4);

    static const int32_t seqs[][5] = {{316, 5, 6, 7}, {316, 5, 6, 9}, {316, 5, 8}, {316, 40, 41}, {316, 40, 43}, {316, 7}};
    static const size_t lens[] = {4, 4, 3, 3, 3, 2};
    double s[6];
    char e[QRM_ERR_MAX];
    qrm_model *mod = qrm_model_open(m8, e, sizeof e);
    ck_assert_msg(mod, "%s", e);
    qrm_ctx *c = qrm_ctx_new(mod, NULL, e, sizeof e);
    ck_assert_msg(c, "%s", e);
    for (int i = 0; i < 6; i++) {
        qrm_scores sc;
        ck_assert_int_eq(qrm_score(c, seqs[i], lens[i], &sc), QRM_OK);
        s[i] = sc.values[0];
        qrm_scores_free(&sc);
    }
    qrm_ctx_free(c);
    qrm_model_close(mod);
    char in[600];
    snprintf(in, sizeof in, "%s/bon_ids.jsonl", tmp);
    FILE *f = fopen(in, "w");
    fputs("{\"chosen_ids\":[316,5,6,7],\"rejected_ids\":[[316,5,6,9],[316,5,8]]}\n"
          "{\"chosen_ids\":[316,40,41],\"rejected_ids\":[[316,40,43],[316,7]]}\n"
          "{\"chosen_ids\":[316,40,41],\"rejected_ids\":[316,40,43]}\n"
          "{\"chosen_ids\":[316,40,41],\"rejected_ids\":[[316,40,43],[316,40,41]]}\n"
          "{\"chosen_ids\":[316,40,41],\"rejected_ids\":[[316,40,43],7]}\n",
          f);
    fclose(f);
    snprintf(args, sizeof args, "-m %s --data %s --json", m8, in);
    ck_assert_int_eq(run_eval(args, &d, &err), 0);
    r = qj_root(d);
    ck_assert_int_eq((int)num(r, "n"), 3);
    ck_assert_int_eq((int)num(r, "skipped"), 2);
    double want = ((s[0] > s[1] && s[0] > s[2]) + (s[3] > s[4] && s[3] > s[5]) + (s[3] > s[4])) / 3.0;
    ck_assert_msg(fabs(num(r, "accuracy") - want) < 1e-8, "accuracy %g, want %g", num(r, "accuracy"), want);   /* 9 digits */
    ck_assert_int_eq((int)num(r, "distribution.rejected.n"), 5);
    ck_assert_msg(strstr(err, ":4: the chosen response is also rejected response 1"), "%s", err);
    ck_assert_msg(strstr(err, ":5: 'rejected_ids' element 1 must be a non-empty array of token ids"), "%s", err);
    qj_free(d);
    free(err);
}
END_TEST

/* DPO policies: qrm eval scores each response by its implicit reward, which
 * must be what `qrm score --ref` prints for the same prompt and responses
 * (its DPO path is checked against the fixture's float64 values in
 * test_vocab); the decisions and the distribution follow from those. */
START_TEST(e2e_dpo_policy) {
    if (!have_cli()) return;
    static const qrm_convert_opts lm = {.spec = {.lm = 1}};
    char *pol = tu_convert("llama-dpo-tiny/policy", "f32", &lm), *pol8 = tu_convert("llama-dpo-tiny/policy", "int8", &lm);
    char *ref = tu_convert("llama-dpo-tiny/reference", "f32", &lm);
    char in[600], outp[600], cmd[3000], args[2048];
    snprintf(in, sizeof in, "%s/dpo.jsonl", tmp);
    snprintf(outp, sizeof outp, "%s/dpo.out", tmp);
    /* pairs.jsonl's text pairs as best-of-2 lines, chosen first */
    size_t n;
    char *pairs = tu_read_file("tests/data/eval/pairs.jsonl", &n), *save = NULL;
    FILE *f = fopen(in, "w");
    int n_text = 0;
    for (char *l = strtok_r(pairs, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char e[QRM_ERR_MAX];
        qj_doc *d = qj_parse(l, strlen(l), e, sizeof e);
        const qj_value *r = qj_root(d), *c = qj_get(r, "chosen");
        if (c && c->type == QJ_STRING) {
            qj_buf b = {0};
            qj_buf_puts(&b, "{\"prompt\":");
            qj_buf_put_value(&b, qj_get(r, "prompt"));
            qj_buf_puts(&b, ",\"responses\":[");
            qj_buf_put_value(&b, c);
            qj_buf_puts(&b, ",");
            qj_buf_put_value(&b, qj_get(r, "rejected"));
            qj_buf_puts(&b, "]}\n");
            fwrite(b.buf, 1, b.len, f);
            qj_buf_free(&b);
            n_text++;
        }
        qj_free(d);
    }
    fclose(f);
    free(pairs);
    ck_assert_int_eq(n_text, 4);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --ref %s --input %s > %s", pol, ref, in, outp);
    ck_assert_int_eq(system(cmd), 0);
    char *text = tu_read_file(outp, &n);
    double cmin = INFINITY, cmax = -INFINITY, rmin = INFINITY, rmax = -INFINITY;
    int wins = 0;
    save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char e[QRM_ERR_MAX];
        qj_doc *d = qj_parse(l, strlen(l), e, sizeof e);
        const qj_value *sc = qj_get(qj_root(d), "scores");
        ck_assert_msg(sc && sc->len == 2, "%s", l);
        double c = sc->u.items[0].u.num, r = sc->u.items[1].u.num;
        wins += c > r;
        cmin = fmin(cmin, c), cmax = fmax(cmax, c), rmin = fmin(rmin, r), rmax = fmax(rmax, r);
        qj_free(d);
    }
    free(text);
    qj_doc *d;
    char *err;
    snprintf(args, sizeof args, "-m %s --ref %s --data tests/data/eval/pairs.jsonl --json", pol, ref);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    const qj_value *r = qj_root(d);
    ck_assert(qj_get(r, "dpo_reference") != NULL);
    ck_assert_int_eq((int)num(r, "scored"), 4);
    ck_assert_msg(fabs(num(r, "accuracy") - wins / 4.0) < 1e-12, "accuracy %g, wins %d", num(r, "accuracy"), wins);
    /* both print 9 significant digits of the same double */
    ck_assert(fabs(num(r, "distribution.chosen.min") - cmin) <= 1e-8 * fabs(cmin));
    ck_assert(fabs(num(r, "distribution.chosen.max") - cmax) <= 1e-8 * fabs(cmax));
    ck_assert(fabs(num(r, "distribution.rejected.min") - rmin) <= 1e-8 * fabs(rmin));
    ck_assert(fabs(num(r, "distribution.rejected.max") - rmax) <= 1e-8 * fabs(rmax));
    qj_free(d);
    free(err);
    /* int8 policy against the f32 one, both against the same reference */
    snprintf(args, sizeof args, "-m %s --against %s --ref %s --data tests/data/eval/rewardbench.jsonl --json", pol8,
             pol, ref);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    r = qj_root(d);
    ck_assert_int_eq((int)num(r, "agreement_detail.decisions"), 11);
    double rel = num(r, "agreement_detail.max_diff_over_range");
    ck_assert_msg(rel > 0 && rel < 0.2, "max diff / range %g", rel);
    qj_free(d);
    free(err);
    /* reference-free */
    snprintf(args, sizeof args, "-m %s --dpo-mode avg --data tests/data/eval/pairs.jsonl --json", pol);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    ck_assert_str_eq(qj_get_str(qj_root(d), "dpo_mode"), "avg");
    qj_free(d);
    free(err);
    /* conversations: the last turn is the response */
    snprintf(args, sizeof args, "-m %s --ref %s --data tests/data/eval/pairs_messages.jsonl --json", pol, ref);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    ck_assert_int_eq((int)num(qj_root(d), "scored"), 3);
    qj_free(d);
    free(err);
    /* pre-tokenized pairs do not say where the response starts */
    snprintf(args, sizeof args, "-m %s --ref %s --data tests/data/eval/pairs_ids.jsonl --json", pol, ref);
    ck_assert_int_eq(run_eval(args, &d, &err), 0);
    ck_assert_int_eq((int)num(qj_root(d), "skipped"), 6);
    ck_assert_msg(strstr(err, "a DPO model needs where each response starts"), "%s", err);
    qj_free(d);
    free(err);
    static const struct {
        const char *fmt;
        int status;
        const char *msg;
    } bad[] = {
        {"-m %s --data tests/data/eval/pairs.jsonl", 1, "needs --ref REFERENCE.qrm, or --dpo-mode"},
        {"-m %s --ref %s --dpo-mode sum --data tests/data/eval/pairs.jsonl", 2, "give it or --ref, not both"},
        {"-m %s --ref %s --data tests/data/eval/processbench.jsonl", 1, "ProcessBench needs a process reward model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, bad[i].fmt, pol, ref);
        ck_assert_int_eq(run_eval(args, &d, &err), bad[i].status);
        ck_assert_msg(strstr(err, bad[i].msg), "%s: %s", args, err);
        qj_free(d);
        free(err);
    }
    snprintf(args, sizeof args, "-m %s --ref %s --data tests/data/eval/pairs.jsonl", m8, ref);
    ck_assert_int_eq(run_eval(args, &d, &err), 1);
    ck_assert_msg(strstr(err, "are for DPO policies"), "%s", err);
    qj_free(d);
    free(err);
    snprintf(args, sizeof args, "-m %s --ref %s --data tests/data/eval/pairs.jsonl", pol, m8);
    ck_assert_int_eq(run_eval(args, &d, &err), 1);
    ck_assert_msg(strstr(err, "not a DPO reference"), "%s", err);
    qj_free(d);
    free(err);
    tu_remove_converted(pol), tu_remove_converted(pol8), tu_remove_converted(ref);
}
END_TEST

/* 1 when two tick labels introduced by marker (the x or the y axis) are equal. */
static int tick_labels_repeat(const char *svg, const char *marker) {
    char seen[64][32];
    int n = 0;
    for (const char *p = strstr(svg, marker); p; p = strstr(p + 1, marker)) {
        const char *a = p + strlen(marker), *b = strchr(a, '<');
        if (!b || b - a >= 32 || n == 64) return 1;
        char lab[32];
        memcpy(lab, a, (size_t)(b - a));
        lab[b - a] = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(seen[i], lab)) return 1;
        strcpy(seen[n++], lab);
    }
    return n < 2;   /* an axis with fewer than two labels is as bad */
}

START_TEST(e2e_svg_and_table) {
    if (!have_cli()) return;
    char args[2048], path[700];
    qj_doc *d;
    char *err;
    snprintf(args, sizeof args, "-m %s --against %s --data tests/data/eval/rewardbench.jsonl --svg %s/svg", m8, m32, tmp);
    ck_assert_msg(run_eval(args, &d, &err) == 0, "%s", err);
    ck_assert(d == NULL);   /* the table, not JSON */
    qj_free(d), free(err);
    static const char *const names[] = {"reliability.svg", "histogram.svg", "length.svg"};
    for (int i = 0; i < 3; i++) {
        size_t n;
        snprintf(path, sizeof path, "%s/svg/%s", tmp, names[i]);
        char *s = tu_read_file(path, &n);
        ck_assert_msg(!strncmp(s, "<svg ", 5) && strstr(s, "</svg>\n") == s + n - 7, "%s", names[i]);
        ck_assert_msg(!tick_labels_repeat(s, "y=\"361\" text-anchor=\"middle\">"), "%s: an x label twice", names[i]);
        ck_assert_msg(!tick_labels_repeat(s, "text-anchor=\"end\">"), "%s: a y label twice", names[i]);
        ck_assert_msg(strstr(s, "stroke-width=\"3\""), "%s has no legend", names[i]);
        free(s);
    }
    snprintf(path, sizeof path, "%s/out.json", tmp);
    size_t n;
    char *table = tu_read_file(path, &n);
    ck_assert(strstr(table, "RewardBench score") && strstr(table, "Kendall tau-b") &&
              strstr(table, "source file: model.safetensors"));
    free(table);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("eval");
    TCase *t = tcase_create("metrics");
    tcase_add_test(t, rb1_sections_weighted);
    tcase_add_test(t, pair_and_best_of_n_ties);
    tcase_add_test(t, rb2_ties_rule);
    tcase_add_test(t, processbench_rule);
    tcase_add_test(t, statistics);
    tcase_add_test(t, calibration_ece);
    tcase_add_test(t, ensemble_combine);
    tcase_add_test(t, report_rewardbench);
    tcase_add_test(t, report_rewardbench2);
    tcase_add_test(t, report_processbench);
    tcase_add_test(t, report_agreement);
    tcase_add_test(t, weighted_q4_lowers_output_error);
    suite_add_tcase(s, t);
    TCase *e = tcase_create("cli");
    tcase_set_timeout(e, 120);
    tcase_add_unchecked_fixture(e, e2e_setup, e2e_teardown);
    tcase_add_test(e, e2e_each_format_against_itself);
    tcase_add_test(e, e2e_int8_against_f32);
    tcase_add_test(e, e2e_kv_q8_against_default);
    tcase_add_test(e, e2e_bad_records_are_named_and_skipped);
    tcase_add_test(e, e2e_ensemble_and_usage);
    tcase_add_test(e, e2e_svg_and_table);
    tcase_add_test(e, e2e_score_ensemble);
    tcase_add_test(e, e2e_dpo_policy);
    tcase_add_test(e, e2e_contract_keys_and_ids_best_of_n);
    tcase_add_test(e, calib_convert_records_provenance);
    tcase_add_test(e, calibrated_q4_lowers_output_error);
    tcase_add_test(e, calibrated_q4_same_with_threads);
    tcase_add_test(e, calib_reaches_prm_and_gated);
    tcase_add_test(e, calib_reaches_vocabulary_head);
    tcase_add_test(e, int4_budget_bounds);
    suite_add_tcase(s, e);
    return s;
}

int main(void) { return tu_run(suite()); }
