/* The metrics of `qrm eval` as pure functions on score arrays, so that each
 * one is tested on hand-made numbers (tests/test_eval.c) apart from any model.
 *
 * Where a benchmark defines a metric, the function follows that benchmark's
 * published code (cited at each function), ties included. */
#ifndef QRM_EVAL_METRICS_H
#define QRM_EVAL_METRICS_H

#include <stddef.h>

/* ---- RewardBench (v1) ---- */
#define QRM_RB1_N_SECTIONS 4
extern const char *const qrm_rb1_section_names[QRM_RB1_N_SECTIONS];
/* The section of a RewardBench subset (0..3: Chat, Chat Hard, Safety,
 * Reasoning), -1 for a subset outside the four sections (the prior sets). */
int qrm_rb1_section(const char *subset);
/* RewardBench's weight of a subset (its EXAMPLE_COUNTS entry), 0 if none. */
int qrm_rb1_weight(const char *subset);
/* Section scores from per-subset accuracies; sec[k] is NAN for a section
 * none of the given subsets belongs to. Returns the overall score: the mean
 * of the sections present (NAN if none). */
double qrm_rb1_sections(const char *const *subsets, const double *acc, size_t n,
                        double sec[QRM_RB1_N_SECTIONS]);

/* The prior sets (anthropic_helpful, anthropic_hhh, shp, summarize): the
 * mean of those present, NAN if none. */
double qrm_rb1_prior_sets(const char *const *subsets, const double *acc, size_t n);
/* The paper's score: sections weighted 2 and the prior sets 1, over those
 * present (analysis/get_benchmark_results.py). */
double qrm_rb1_score_with_prior(const double sec[QRM_RB1_N_SECTIONS], double prior);

/* A pair's result: 1 when chosen scores strictly higher, else 0 (a tie is a loss). */
double qrm_pair_result(double chosen, double rejected);
/* A pair with several rejected responses (pre-tokenized best-of-N): 1 when
 * s[0], the chosen one, beats every other of the n strictly, else 0. */
double qrm_chosen_wins(const double *s, size_t n);
/* Best-of-n with s[0] the chosen response: 1/k when s[0] is the maximum and
 * k responses share it, else 0. */
double qrm_bon_result(const double *s, size_t n);

/* RewardBench 2's Ties subset. Each sample is one row: its kind ("ref" or
 * "tied"), its prompt id, and its scores, the first n_correct correct. */
typedef struct {
    int is_ref;
    long prompt_id;
    const double *scores;
    size_t n, n_correct;
} qrm_ties_sample;
typedef struct {
    double ref_accuracy, tied_accuracy, correctness_preferred, correctness_preferred_hard,
        margin_score, overall;
    size_t n_paired;   /* prompts with both a ref and a tied sample */
} qrm_ties_result;
/* -1 if a sample lacks a correct or an incorrect response. */
int qrm_rb2_ties(const qrm_ties_sample *s, size_t n, qrm_ties_result *out);

/* ---- ProcessBench ---- */
/* The predicted label: the first step whose score is below threshold, -1 if none. */
int qrm_pb_predict(const double *step_scores, size_t n, double threshold);
/* Accuracy on the erroneous samples (label != -1), on the correct ones, and
 * their harmonic mean; NAN for an empty group (and then for f1). */
void qrm_pb_metrics(const int *pred, const int *label, size_t n, double *acc_error,
                    double *acc_correct, double *f1);

/* ---- statistics ---- */
/* Kendall's tau-b; NAN when either side is constant or n < 2. */
double qrm_kendall_tau_b(const double *x, const double *y, size_t n);
double qrm_pearson(const double *x, const double *y, size_t n);   /* NAN if undefined */
/* Quantile p of n values with linear interpolation between order statistics
 * (numpy's default); sorts a copy. */
double qrm_quantile(const double *v, size_t n, double p);
void qrm_mean_std(const double *v, size_t n, double *mean, double *std);   /* population std */

/* Calibration of Bradley-Terry probabilities p_i = sigmoid(s_chosen - s_rejected).
 * Each pair counts in both orders, (p, outcome 1) and (1 - p, outcome 0), so
 * the diagram asks "when the model says 70 %, is it right 70 % of the time"
 * rather than comparing against an outcome that is always 1. nbins equal-width
 * bins over [0, 1]; count/conf/freq (may be NULL) get each bin's number of
 * points, mean probability and observed frequency. Returns the expected
 * calibration error: sum over bins of count/N * |freq - conf|. */
double qrm_calibration(const double *chosen, const double *rejected, size_t n, int nbins,
                       size_t *count, double *conf, double *freq);

/* Ensembles: how per-model standardized scores make one. */
typedef enum { QRM_COMBINE_MEAN, QRM_COMBINE_MIN, QRM_COMBINE_MEDIAN, QRM_COMBINE_MEAN_STD } qrm_combine_kind;
typedef struct {
    qrm_combine_kind kind;
    double k;          /* mean-std:K */
} qrm_combine;
/* "mean", "min", "median", "mean-std:K"; -1 otherwise. */
int qrm_combine_parse(const char *s, qrm_combine *out);
/* z[m][i] = (s[m][i] - mean_m) / std_m over each model's n scores, then
 * out[i] = combine over the n_models values of response i (mean-std: mean
 * minus k times their population std). A model with std 0 gives z = 0. */
void qrm_combine_scores(const double *const *s, size_t n_models, size_t n, const qrm_combine *c,
                        double *out);

#endif
