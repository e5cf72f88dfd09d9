/* The `qrm score` command and its JSONL stream (tools/score_jsonl.c), as
 * library calls so that tests can drive them. */
#ifndef QRM_SCORE_JSONL_H
#define QRM_SCORE_JSONL_H

#include <stddef.h>
#include <stdio.h>

#include "json.h"
#include "qrm.h"

enum { QRM_KEEP_ALL, QRM_KEEP_BEST, QRM_KEEP_TOP_K, QRM_KEEP_MIN_SCORE };
/* How a PRM's step scores become one score (search-and-learn's choices). */
typedef enum { QRM_AGG_MIN, QRM_AGG_LAST, QRM_AGG_MEAN, QRM_AGG_PROD } qrm_aggregate;

typedef struct {
    int mode;           /* QRM_KEEP_* for prompt/responses lines */
    int top_k;
    double min_score;
    int progress;       /* a progress line on stderr */
    qrm_aggregate aggregate;
    int rank_by;        /* the output that ranks and filters (index; 0 by default) */
} qrm_score_opts;

/* Parses "min", "last", "mean", "prod"; -1 otherwise. */
int qrm_aggregate_parse(const char *s);
/* The aggregate of n step scores; NAN when n is 0. */
double qrm_aggregate_steps(const float *s, size_t n, qrm_aggregate a);

/* One input line -> one JSON object appended to b (no newline). */
void qrm_score_line(qrm_ctx *c, const char *line, size_t len, const qrm_score_opts *o, qj_buf *b,
                    size_t *n_tokens);
/* Every line of in -> one line of out, flushed as it is written. */
int qrm_score_stream(qrm_ctx *c, FILE *in, FILE *out, const qrm_score_opts *o);
/* `qrm score ARGS...`; returns the exit status. */
int qrm_cli_score(int argc, char **argv);

#endif
