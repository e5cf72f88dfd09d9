/* `qrm eval`: a reward model (or an ensemble) judged on a preference or
 * process benchmark file, optionally against a reference model
 * (tools/eval.c reads and scores, tools/eval_report.c computes and prints,
 * tools/eval_svg.c draws). */
#ifndef QRM_EVAL_H
#define QRM_EVAL_H

#include <stddef.h>
#include <stdio.h>

#include "eval_metrics.h"
#include "qrm.h"

typedef enum { QRM_EVAL_AUTO, QRM_EVAL_RB1, QRM_EVAL_RB2, QRM_EVAL_PAIRS, QRM_EVAL_PB } qrm_eval_format;
const char *qrm_eval_format_name(qrm_eval_format f);

/* How a record's responses are given. */
enum { QRM_EV_TEXT, QRM_EV_MESSAGES, QRM_EV_IDS, QRM_EV_STEPS };

typedef struct {
    int line;                /* 1-based line of the data file */
    char *id;                /* the record's id as text, or NULL */
    char *subset;            /* NULL when the record has none */
    int kind;                /* QRM_EV_* */
    size_t n_resp, n_correct;   /* responses; the first n_correct are chosen */
    int label;               /* ProcessBench: first wrong step, -1 if none */
    size_t first, n_units;   /* its scores: units [first, first + n_units) (steps for ProcessBench) */
    int skipped;
    int ties_ref;            /* RewardBench 2 Ties: 1 "ref", 0 "tied", -1 unparsable id */
    long ties_id;
    void *doc;               /* the parsed line (qj_doc) */
} qrm_eval_record;

/* Everything the report needs: the records and, per unit, the final score
 * (combined over the ensemble), the reference's score (when --against) and
 * the response length in tokens (sequence formats). */
typedef struct {
    qrm_eval_format format;
    const char *data_path;
    qrm_eval_record *rec;
    size_t n_rec, n_units;
    double *score, *ref_score, *length;
    double threshold;        /* ProcessBench */
    /* provenance */
    int n_models;
    const char *const *model_paths;
    const qrm_model *const *models;
    const char *ref_path;
    const qrm_model *ref_model;
    const char *combine;     /* the --combine text, NULL for one model */
    const char *kv;          /* --kv of the -m models ("f32", "f16", "q8"), NULL: the default */
    /* DPO policies: the reference (--ref), or the reference-free mode */
    const char *dpo_ref_path;
    const qrm_model *dpo_ref_model;
    const char *dpo_mode;
} qrm_eval_data;

/* Prints the readable report, or the one JSON document. */
int qrm_eval_report(const qrm_eval_data *d, FILE *out, int json);
/* Writes reliability.svg, histogram.svg and length.svg into dir (created if
 * needed); the ones that do not apply (ProcessBench: only the histogram of
 * step scores) are left out. 0, or -1 with err. */
int qrm_eval_svg(const qrm_eval_data *d, const char *dir, char *err, size_t errlen);
/* The model's provenance as readable lines, each starting with indent. */
void qrm_print_provenance(FILE *out, const qrm_model *m, const char *indent);

int qrm_cli_eval(int argc, char **argv);
/* `qrm score` with several -m (tools/eval_score.c). */
int qrm_cli_score_ensemble(int argc, char **argv);

#endif
