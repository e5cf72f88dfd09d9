/* DPO implicit rewards, as RewardBench computes them (rewardbench/dpo.py):
 * a response's reward is the sum over its tokens of log p_policy(token)
 * minus log p_reference(token), each a log-softmax over the whole
 * vocabulary of the row before the token; not averaged, no beta. Without a
 * reference model the policy alone gives the reference-free variants: the
 * sum, the mean, or -||logp||_2 of its log-probabilities.
 *
 * Line shapes: {"ids": [...], "response_start": K} (tokens from K on are the
 * response), {"messages": [...]} (the last turn is the response), and
 * {"prompt": P, "responses": [...]} (best-of-N: each response encoded with
 * the prompt by RewardBench's rule, the shared token prefix run once in
 * each model). Output: "scores" holds the rewards; with --logprobs,
 * "logprobs" (and "ref_logprobs") the per-token values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "score_jsonl.h"

int qrm_dpo_mode_parse(const char *s) {
    static const char *names[] = {"sum", "avg", "norm"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

double qrm_dpo_reward(const qrm_scores *pol, const qrm_scores *ref, int32_t first, qrm_dpo_mode mode) {
    double sum = 0, sq = 0;
    size_t n = 0;
    for (size_t i = 0; i < pol->n_points; i++) {
        if (pol->positions[i] < first) continue;
        double v = pol->values[i];
        sum += v, sq += v * v, n++;
    }
    if (ref) {
        for (size_t i = 0; i < ref->n_points; i++)
            if (ref->positions[i] >= first) sum -= ref->values[i];
        return sum;
    }
    return mode == QRM_DPO_AVG ? sum / (double)n : mode == QRM_DPO_NORM ? -sqrt(sq) : sum;
}

static void put_logprobs(qj_buf *b, const qrm_scores *s, int32_t first) {
    qj_buf_puts(b, "[");
    int any = 0;
    for (size_t i = 0; i < s->n_points; i++)
        if (s->positions[i] >= first) {
            qj_buf_printf(b, "%s%.9g", any ? "," : "", (double)s->values[i]);
            any = 1;
        }
    qj_buf_puts(b, "]");
}

int qrm_dpo_encode_conversation(qrm_ctx *c, const char *json, size_t len, int32_t **ids, size_t *n, size_t *start,
                                char *err, size_t errlen) {
    if (qrm_encode_dpo(c, json, len, ids, n, start)) {
        snprintf(err, errlen, "%s", qrm_ctx_error(c));
        return -1;
    }
    return 0;
}

int qrm_dpo_encode_pair(qrm_ctx *c, const qj_value *prompt, const qj_value *resp, int32_t **ids, size_t *n,
                        size_t *start, char *err, size_t errlen) {
    qj_buf mb = {0};
    qj_buf_puts(&mb, "[{\"role\":\"user\",\"content\":");
    qj_buf_put_string(&mb, prompt->u.str, prompt->len);
    qj_buf_puts(&mb, "},{\"role\":\"assistant\",\"content\":");
    qj_buf_put_string(&mb, resp->u.str, resp->len);
    qj_buf_puts(&mb, "}]");
    int rc = mb.oom ? (snprintf(err, errlen, "out of memory"), -1)
                    : qrm_dpo_encode_conversation(c, mb.buf, mb.len, ids, n, start, err, errlen);
    qj_buf_free(&mb);
    return rc;
}

/* One sequence (ids, response_start) in both models. */
static int one_sequence(qrm_ctx *c, const int32_t *ids, size_t n, size_t start,
                        const qrm_score_opts *o, qj_buf *b, char *err, size_t errlen) {
    qrm_scores pol = {0}, ref = {0};
    int rc = 0;
    if (qrm_logprobs(c, ids, n, start, &pol)) rc = -1, snprintf(err, errlen, "%s", qrm_ctx_error(c));
    else if (o->ref && qrm_logprobs(o->ref, ids, n, start, &ref))
        rc = -1, snprintf(err, errlen, "reference: %s", qrm_ctx_error(o->ref));
    if (!rc) {
        int32_t first = (int32_t)start - 1;
        qrm_put_key(b, "scores");
        qj_buf_puts(b, "[");
        qrm_put_num(b, qrm_dpo_reward(&pol, o->ref ? &ref : NULL, first, o->dpo_mode));
        qj_buf_puts(b, "]");
        qrm_put_key(b, "response_start");
        qj_buf_printf(b, "%zu", start);
        if (o->logprobs) {
            qrm_put_key(b, "logprobs");
            qj_buf_puts(b, "[");
            put_logprobs(b, &pol, first);
            qj_buf_puts(b, "]");
            if (o->ref) {
                qrm_put_key(b, "ref_logprobs");
                qj_buf_puts(b, "[");
                put_logprobs(b, &ref, first);
                qj_buf_puts(b, "]");
            }
        }
    }
    qrm_scores_free(&pol), qrm_scores_free(&ref);
    return rc;
}

int qrm_dpo_logprobs(qrm_ctx *c, qrm_ctx *ref, int32_t *const *ids, const size_t *len, const size_t *start,
                     size_t n, qrm_scores *pol, qrm_scores *refs, char *err, size_t errlen) {
    const int32_t **tails = calloc(n, sizeof *tails);
    size_t *tail_len = calloc(n, sizeof *tail_len), first = SIZE_MAX;
    int rc = -1;
    if (!tails || !tail_len) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (start[i] < first) first = start[i];
    /* the shared prefix ends no later than the first token scored (which
     * leaves every response a token: first < len[i]) */
    size_t p = qrm_common_prefix((const int32_t *const *)ids, len, n, first);
    for (size_t i = 0; i < n; i++) tails[i] = ids[i] + p, tail_len[i] = len[i] - p;
    if (qrm_logprobs_best_of_n(c, ids[0], p, tails, tail_len, n, first, pol)) {
        snprintf(err, errlen, "%s", qrm_ctx_error(c));
        goto out;
    }
    if (ref && qrm_logprobs_best_of_n(ref, ids[0], p, tails, tail_len, n, first, refs)) {
        snprintf(err, errlen, "reference: %s", qrm_ctx_error(ref));
        goto out;
    }
    rc = 0;
out:
    free(tails), free(tail_len);
    return rc;
}

/* Best-of-N: every response with the prompt, the longest common token
 * prefix run once in each model, the tokens from the earliest response start
 * scored, each response's reward from its own start. */
static int responses_line(qrm_ctx *c, const qj_value *prompt, const qj_value *responses,
                          const qrm_score_opts *o, qj_buf *b, size_t *n_tokens, char *err,
                          size_t errlen) {
    uint32_t n = responses->len;
    int32_t **ids = calloc(n, sizeof *ids);
    size_t *len = calloc(n, sizeof *len), *start = calloc(n, sizeof *start);
    qrm_scores *pol = calloc(n, sizeof *pol), *ref = calloc(n, sizeof *ref);
    double *rank = calloc(n, sizeof *rank);
    int rc = -1;
    if (!ids || !len || !start || !pol || !ref || !rank) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        char e[QRM_ERR_MAX - 32];
        if (responses->u.items[i].type != QJ_STRING) {
            snprintf(err, errlen, "'responses' element %u is not a string", i);
            goto out;
        }
        if (qrm_dpo_encode_pair(c, prompt, &responses->u.items[i], &ids[i], &len[i], &start[i], e, sizeof e)) {
            snprintf(err, errlen, "response %u: %s", i, e);
            goto out;
        }
        *n_tokens += len[i];
    }
    if (qrm_dpo_logprobs(c, o->ref, ids, len, start, n, pol, ref, err, errlen)) goto out;
    qrm_put_key(b, "scores");
    qj_buf_puts(b, "[");
    for (uint32_t i = 0; i < n; i++) {
        rank[i] = qrm_dpo_reward(&pol[i], o->ref ? &ref[i] : NULL, (int32_t)start[i] - 1, o->dpo_mode);
        if (i) qj_buf_puts(b, ",");
        qrm_put_num(b, rank[i]);
    }
    qj_buf_puts(b, "]");
    if (o->logprobs)
        for (int r = 0; r < (o->ref ? 2 : 1); r++) {
            qrm_put_key(b, r ? "ref_logprobs" : "logprobs");
            qj_buf_puts(b, "[");
            for (uint32_t i = 0; i < n; i++) {
                if (i) qj_buf_puts(b, ",");
                put_logprobs(b, r ? &ref[i] : &pol[i], (int32_t)start[i] - 1);
            }
            qj_buf_puts(b, "]");
        }
    if (o->mode != QRM_KEEP_ALL) qrm_put_kept(b, qrm_ctx_model(c), responses, rank, NULL, o);
    rc = 0;
out:
    for (uint32_t i = 0; i < n; i++) {
        if (ids) free(ids[i]);
        if (pol) qrm_scores_free(&pol[i]);
        if (ref) qrm_scores_free(&ref[i]);
    }
    free(ids), free(len), free(start), free(pol), free(ref), free(rank);
    return rc;
}

int qrm_dpo_line(qrm_ctx *c, const qj_value *root, const qrm_score_opts *o, qj_buf *b,
                 size_t *n_tokens, char *err, size_t errlen) {
    const qj_value *ids_v = qj_get(root, "ids"), *start_v = qj_get(root, "response_start"),
                   *messages = qj_get(root, "messages"), *prompt = qj_get(root, "prompt"),
                   *responses = qj_get(root, "responses");
    if (!!ids_v + !!messages + !!responses != 1 || (prompt && !responses) || (responses && !prompt) ||
        qj_get(root, "steps")) {
        snprintf(err, errlen, "a line needs exactly one of 'ids' with 'response_start', 'messages', "
                              "or 'prompt' with 'responses'");
        return -1;
    }
    if (ids_v) {
        int64_t start;
        if (!start_v || !qj_number_to_int(start_v, &start) || start < 1) {
            snprintf(err, errlen, "a log-probability model's 'ids' line needs 'response_start' (an integer >= 1)");
            return -1;
        }
        size_t n = 0;
        int32_t *ids = qrm_ids_from_json(ids_v, &n, err, errlen);
        if (!ids) return -1;
        *n_tokens += n;
        int rc = one_sequence(c, ids, n, (size_t)start, o, b, err, errlen);
        free(ids);
        return rc;
    }
    if (start_v) {
        snprintf(err, errlen, "'response_start' goes with 'ids'");
        return -1;
    }
    if (messages) {
        if (messages->type != QJ_ARRAY) {
            snprintf(err, errlen, "'messages' must be an array of {\"role\", \"content\"} objects");
            return -1;
        }
        qj_buf mb = {0};
        qj_buf_put_value(&mb, messages);
        int32_t *ids = NULL;
        size_t n = 0, start = 0;
        int rc = mb.oom ? (snprintf(err, errlen, "out of memory"), -1)
                        : qrm_dpo_encode_conversation(c, mb.buf, mb.len, &ids, &n, &start, err, errlen);
        qj_buf_free(&mb);
        if (!rc) {
            *n_tokens += n;
            rc = one_sequence(c, ids, n, start, o, b, err, errlen);
        }
        free(ids);
        return rc;
    }
    if (prompt->type != QJ_STRING) {
        snprintf(err, errlen, "'prompt' must be a string");
        return -1;
    }
    if (responses->type != QJ_ARRAY || responses->len == 0) {
        snprintf(err, errlen, "'responses' must be a non-empty array");
        return -1;
    }
    return responses_line(c, prompt, responses, o, b, n_tokens, err, errlen);
}
