/* The numbers of a `qrm eval` report (tools/eval_report.c), shared with the
 * SVG writer and the tests. */
#ifndef QRM_EVAL_REPORT_H
#define QRM_EVAL_REPORT_H

#include "eval.h"

#define QRM_EVAL_BINS 10
#define QRM_EVAL_NQ 5   /* quantiles 0.05, 0.25, 0.5, 0.75, 0.95 */

typedef struct {
    const char *name;
    size_t n;
    double sum, score;
    int is_ties;
} qrm_eval_subset;

typedef struct {
    size_t n;
    double mean, std, min, max, q[QRM_EVAL_NQ];
} qrm_eval_dist;

typedef struct {
    size_t n_records, n_scored, n_skipped;
    qrm_eval_subset *subsets;
    size_t n_subsets;
    double overall;            /* the format's headline score */
    double accuracy;           /* pairs / best-of-N records outside Ties */
    size_t n_plain;
    double sections[QRM_RB1_N_SECTIONS];
    double prior, with_prior;  /* RewardBench's prior sets, and the paper's weighting */
    int has_ties;
    qrm_ties_result ties;
    double pb_acc_error, pb_acc_correct, pb_f1;
    size_t pb_n_error, pb_n_correct;
    size_t pb_label_hits;     /* samples whose predicted label is right */
    /* score distributions: chosen / rejected (ProcessBench: the steps
     * before the first wrong one / the first wrong step) */
    double *dist[2];
    size_t n_dist[2];
    qrm_eval_dist summary[2];
    /* pairs for the diagnostics: scores and lengths of chosen and rejected */
    double *pc, *pr, *plc, *plr;
    size_t n_pairs;
    double len_corr, acc_len[2];   /* [0] chosen longer, [1] chosen shorter */
    size_t n_len[2];
    double ece, bin_conf[QRM_EVAL_BINS], bin_freq[QRM_EVAL_BINS];
    size_t bin_n[QRM_EVAL_BINS];
} qrm_eval_metrics;

typedef struct {
    size_t n_decisions, same, n_samples, same_samples, n_units;
    double agreement, tau_b, max_diff, ref_range, max_rel;
} qrm_eval_agreement_t;

int qrm_eval_compute(const qrm_eval_data *d, const double *scores, qrm_eval_metrics *m);
void qrm_eval_metrics_free(qrm_eval_metrics *m);
int qrm_eval_agreement(const qrm_eval_data *d, qrm_eval_agreement_t *a);

#endif
