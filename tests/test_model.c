/* End-to-end correctness: each fixture reward model (tests/data/models,
 * random weights in Hugging Face layout) is converted and scored; the
 * scores must match the float64 evaluation of the Hugging Face semantics
 * in expected.jsonl (computed outside this project, cross-checked against
 * llama.cpp: see tests/data/models/README.md).
 *
 * f32: |d| <= max(1e-5, 1e-4 |score|) (5e-4 relative for gemma2, the most
 * noise-sensitive fixture). int8 / int4: the error against the reference
 * and the order of all pairs of sequences are bounded by what was measured
 * (README.md, "Quantization") plus a margin; the measured figures are
 * printed so that a change in accuracy is visible in the log. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "json.h"
#include "qrm.h"
#include "testutil.h"

#define MAX_SEQ 16

typedef struct {
    int n;
    int32_t *ids[MAX_SEQ];
    size_t len[MAX_SEQ];
    double score[MAX_SEQ];
} expected;

static void add_line(const char *line, size_t len, void *arg) {
    expected *e = arg;
    char err[200];
    qj_doc *d = qj_parse(line, len, err, sizeof err);
    ck_assert_msg(d != NULL, "expected.jsonl: %s", err);
    const qj_value *ids = qj_get_type(qj_root(d), "ids", QJ_ARRAY);
    double s;
    ck_assert(ids && qj_get_num(qj_root(d), "score", &s));
    ck_assert(e->n < MAX_SEQ);
    e->ids[e->n] = malloc(ids->len * sizeof(int32_t));
    for (uint32_t i = 0; i < ids->len; i++) e->ids[e->n][i] = (int32_t)ids->u.items[i].u.num;
    e->len[e->n] = ids->len;
    e->score[e->n] = s;
    e->n++;
    qj_free(d);
}

static void load_expected(const char *fixture, expected *e) {
    char path[256];
    memset(e, 0, sizeof *e);
    snprintf(path, sizeof path, TEST_DATA "/models/%s/expected.jsonl", fixture);
    tu_for_each_line(path, add_line, e);
    ck_assert_int_eq(e->n, 12);
}

static void free_expected(expected *e) {
    for (int i = 0; i < e->n; i++) free(e->ids[i]);
}

/* Converts a fixture at a quantization into a temporary file; returns its path. */
static char *convert_fixture(const char *fixture, const char *quant) {
    char *dir = tu_tmpdir(), src[256], err[QRM_ERR_MAX];
    char *out = malloc(strlen(dir) + 64);
    sprintf(out, "%s/%s-%s.qrm", dir, fixture, quant);
    snprintf(src, sizeof src, TEST_DATA "/models/%s", fixture);
    qrm_convert_opts o = {.hf_dir = src, .out_path = out, .quant = quant};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "convert %s: %s", fixture, err);
    free(dir);
    return out;
}

static void remove_converted(char *path) {
    unlink(path);
    char *slash = strrchr(path, '/');
    *slash = 0;
    rmdir(path);
    free(path);
}

/* Scores every expected sequence; out[i] gets the score. */
static void score_all(const char *file, const expected *e, float *out, int n_threads) {
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(file, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = n_threads;
    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    for (int i = 0; i < e->n; i++)
        ck_assert_msg(qrm_score_ids(c, e->ids[i], e->len[i], &out[i]) == 0, "%s", qrm_ctx_error(c));
    qrm_ctx_free(c);
    qrm_model_close(m);
}

static const char *fixtures[] = {"llama3-tiny", "qwen3-tiny", "gemma2-tiny"};

START_TEST(f32_matches_reference) {
    const char *fx = fixtures[_i];
    double rel = strcmp(fx, "gemma2-tiny") ? 1e-4 : 5e-4;
    expected e;
    load_expected(fx, &e);
    char *file = convert_fixture(fx, "f32");
    for (int threads = 1; threads <= 2; threads++) {
        float s[MAX_SEQ];
        score_all(file, &e, s, threads);
        double worst = 0;
        for (int i = 0; i < e.n; i++) {
            double tol = fmax(1e-5, rel * fabs(e.score[i])), d = fabs(s[i] - e.score[i]);
            worst = fmax(worst, d / tol);
            ck_assert_msg(d <= tol, "%s seq %d (len %zu): got %.9g expected %.9g (|d| %.3g > %.3g)",
                          fx, i, e.len[i], (double)s[i], e.score[i], d, tol);
        }
        printf("%s f32 (%d threads): worst |d| = %.2f of the tolerance\n", fx, threads, worst);
        fflush(stdout);
    }
    remove_converted(file);
    free_expected(&e);
}
END_TEST

/* Quantized: max |d| against the reference over the fixture's score range,
 * and the number of pairs of sequences whose order flips. */
static void quant_error(const char *fx, const char *quant, double *max_frac, int *flips) {
    expected e;
    load_expected(fx, &e);
    char *file = convert_fixture(fx, quant);
    float s[MAX_SEQ];
    score_all(file, &e, s, 2);
    double lo = INFINITY, hi = -INFINITY, maxd = 0;
    for (int i = 0; i < e.n; i++) {
        lo = fmin(lo, e.score[i]), hi = fmax(hi, e.score[i]);
        maxd = fmax(maxd, fabs(s[i] - e.score[i]));
    }
    *flips = 0;
    for (int i = 0; i < e.n; i++)
        for (int j = i + 1; j < e.n; j++)
            if ((e.score[i] < e.score[j]) != (s[i] < s[j])) (*flips)++;
    *max_frac = maxd / (hi - lo);
    printf("%s %s: max |d| = %.4f = %.2f%% of the score range, %d of %d pairs flipped\n", fx, quant,
           maxd, 100 * *max_frac, *flips, e.n * (e.n - 1) / 2);
    fflush(stdout);
    remove_converted(file);
    free_expected(&e);
}

/* Bounds: the values measured on these fixtures (README.md, "Quantization")
 * plus a margin, per fixture and quantization: a change that loses accuracy
 * fails here. Order is over the 66 pairs of the 12 sequences. */
typedef struct {
    int max_flips;
    double max_frac; /* max |d| / score range */
} bound;

static const bound int8_bounds[3] = {{1, 0.02}, {1, 0.02}, {2, 0.06}};
static const bound int4_bounds[3] = {{10, 0.17}, {3, 0.07}, {15, 0.60}};

static void check_bound(int fx, const char *quant, const bound *b) {
    double frac;
    int flips;
    quant_error(fixtures[fx], quant, &frac, &flips);
    ck_assert_msg(flips <= b->max_flips, "%s %s flips %d pairs (bound %d)", fixtures[fx], quant,
                  flips, b->max_flips);
    ck_assert_msg(frac <= b->max_frac, "%s %s error %.2f%% of the range (bound %.2f%%)",
                  fixtures[fx], quant, 100 * frac, 100 * b->max_frac);
}

START_TEST(int8_error_bounded) { check_bound(_i, "int8", &int8_bounds[_i]); }
END_TEST

START_TEST(int4_error_bounded) { check_bound(_i, "int4", &int4_bounds[_i]); }
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, f32_matches_reference, 0, 3);
    tcase_add_loop_test(tc, int8_error_bounded, 0, 3);
    tcase_add_loop_test(tc, int4_error_bounded, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
