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

/* The reference-free DPO variants (RewardBench's --ref_free_type). */
typedef enum { QRM_DPO_SUM, QRM_DPO_AVG, QRM_DPO_NORM } qrm_dpo_mode;

typedef struct {
    int mode;           /* QRM_KEEP_* for prompt/responses lines */
    int top_k;
    double min_score;
    int progress;       /* a progress line on stderr */
    qrm_aggregate aggregate;
    int rank_by;        /* the output that ranks and filters (index; 0 by default) */
    /* a log-probability model (DPO): its reference, or NULL for a
     * reference-free variant; the per-token log-probabilities on request */
    qrm_ctx *ref;
    qrm_dpo_mode dpo_mode;
    int logprobs;
} qrm_score_opts;

/* Parses "min", "last", "mean", "prod"; -1 otherwise. */
int qrm_aggregate_parse(const char *s);
/* The aggregate of n step scores; NAN when n is 0. */
double qrm_aggregate_steps(const float *s, size_t n, qrm_aggregate a);

/* One input line -> one JSON object appended to b (no newline). */
void qrm_score_line(qrm_ctx *c, const char *line, size_t len, const qrm_score_opts *o, qj_buf *b,
                    size_t *n_tokens);
/* Helpers shared by the line kinds (tools/score_jsonl.c). */
void qrm_put_key(qj_buf *b, const char *key);
void qrm_put_num(qj_buf *b, double v);   /* %.9g, NaN as null */
int32_t *qrm_ids_from_json(const qj_value *a, size_t *n, char *err, size_t errlen);
/* The longest prefix ids[0..n) share, at most bound tokens and leaving every
 * sequence at least one token of its own (each len[i] >= 1). */
size_t qrm_common_prefix(const int32_t *const *ids, const size_t *len, size_t n, size_t bound);
void qrm_put_kept(qj_buf *b, const qrm_model *m, const qj_value *responses, const double *rank,
                  const qrm_scores *s, const qrm_score_opts *o);
/* A line on a log-probability model: DPO rewards (tools/score_dpo.c).
 * Appends the result members to b, or returns -1 with err. */
int qrm_dpo_line(qrm_ctx *c, const qj_value *root, const qrm_score_opts *o, qj_buf *b,
                 size_t *n_tokens, char *err, size_t errlen);
int qrm_dpo_mode_parse(const char *s);   /* "sum", "avg", "norm"; -1 otherwise */
/* The reward from the log-probabilities of the tokens at positions >= first
 * (a point at position p is the log-probability of token p + 1): the policy's
 * sum minus the reference's, or without ref the reference-free mode. */
double qrm_dpo_reward(const qrm_scores *pol, const qrm_scores *ref, int32_t first, qrm_dpo_mode mode);
/* A conversation (JSON array of {"role", "content"}; the last turn is the
 * response) as a DPO sequence by RewardBench's rule: ids, their count, and
 * where the response starts. */
int qrm_dpo_encode_conversation(qrm_ctx *c, const char *json, size_t len, int32_t **ids, size_t *n, size_t *start,
                                char *err, size_t errlen);
/* The same for a user prompt and an assistant response (JSON strings). */
int qrm_dpo_encode_pair(qrm_ctx *c, const qj_value *prompt, const qj_value *resp, int32_t **ids, size_t *n,
                        size_t *start, char *err, size_t errlen);
/* The log-probabilities of n DPO sequences (ids, len, start) in the policy c
 * and, when ref, the reference into pol[] and refs[]: the longest common token
 * prefix before the earliest start runs once in each model. 0, or -1 with err. */
int qrm_dpo_logprobs(qrm_ctx *c, qrm_ctx *ref, int32_t *const *ids, const size_t *len, const size_t *start,
                     size_t n, qrm_scores *pol, qrm_scores *refs, char *err, size_t errlen);

/* The longest line scored, in bytes: QRM_LINE_BYTES_PER_TOKEN (64) per
 * token of the context's KV cap, at most 64 MiB. A longer line gets an
 * error naming its length, without being parsed or tokenized. */
size_t qrm_line_limit(const qrm_ctx *c);
/* Every line of in -> one line of out, flushed as it is written; an
 * over-long line is read to its end without being kept. */
int qrm_score_stream(qrm_ctx *c, FILE *in, FILE *out, const qrm_score_opts *o);
/* `qrm score ARGS...`; returns the exit status. */
int qrm_cli_score(int argc, char **argv);

#endif
