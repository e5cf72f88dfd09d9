/* `qrm eval`: reads a benchmark file, scores every record with each model
 * (and the reference), combines an ensemble, then hands the scores to the
 * report (tools/eval_report.c). */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_opts.h"
#include "json.h"
#include "platform.h"
#include "score_jsonl.h"

const char *qrm_eval_format_name(qrm_eval_format f) {
    switch (f) {
    case QRM_EVAL_RB1: return "rewardbench";
    case QRM_EVAL_RB2: return "rewardbench2";
    case QRM_EVAL_PAIRS: return "pairs";
    case QRM_EVAL_PB: return "processbench";
    default: return "auto";
    }
}

static int format_parse(const char *s) {
    static const qrm_eval_format all[] = {QRM_EVAL_RB1, QRM_EVAL_RB2, QRM_EVAL_PAIRS, QRM_EVAL_PB};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(s, qrm_eval_format_name(all[i]))) return (int)all[i];
    return -1;
}

static void bad_record(const char *path, const qrm_eval_record *r, const char *msg) {
    fprintf(stderr, "qrm eval: %s:%d%s%s%s: %s; record skipped\n", path, r->line, r->id ? " (id " : "",
            r->id ? r->id : "", r->id ? ")" : "", msg);
}

/* The id as text: a string as is, a number as written. */
static char *id_text(const qj_value *root) {
    const qj_value *v = qj_get(root, "id");
    if (!v) return NULL;
    if (v->type == QJ_STRING) return strdup(v->u.str);
    qj_buf b = {0};
    qj_buf_put_value(&b, v);
    return b.buf;
}

static qrm_eval_format detect(const qj_value *root) {
    if (qj_get(root, "problem") || (qj_get(root, "steps") && qj_get(root, "label"))) return QRM_EVAL_PB;
    if (qj_get(root, "chosen_ids")) return QRM_EVAL_PAIRS;
    const qj_value *c = qj_get(root, "chosen");
    if (!c) return QRM_EVAL_AUTO;
    if (c->type == QJ_ARRAY)
        return c->len && c->u.items[0].type == QJ_STRING ? QRM_EVAL_RB2 : QRM_EVAL_PAIRS;
    if (c->type == QJ_STRING) return qj_get(root, "subset") ? QRM_EVAL_RB1 : QRM_EVAL_PAIRS;
    return QRM_EVAL_AUTO;
}

static int is_messages(const qj_value *a) {
    if (a->type != QJ_ARRAY || !a->len) return 0;
    for (uint32_t i = 0; i < a->len; i++) {
        const qj_value *m = &a->u.items[i];
        if (m->type != QJ_OBJECT || !qj_get_str(m, "role") || !qj_get_str(m, "content")) return 0;
    }
    return 1;
}

static int same_value(const qj_value *a, const qj_value *b) {
    qj_buf x = {0}, y = {0};
    qj_buf_put_value(&x, a);
    qj_buf_put_value(&y, b);
    int same = x.len == y.len && !memcmp(x.buf, y.buf, x.len);
    qj_buf_free(&x), qj_buf_free(&y);
    return same;
}

static int string_array(const qj_value *a) {
    if (!a || a->type != QJ_ARRAY || !a->len) return 0;
    for (uint32_t i = 0; i < a->len; i++)
        if (a->u.items[i].type != QJ_STRING) return 0;
    return 1;
}

/* Checks a record against its format, the model-independent part; fills
 * kind and the response counts. NULL, or the reason it cannot be scored. */
static const char *check_record(qrm_eval_format f, const qj_value *root, qrm_eval_record *r,
                                char *buf, size_t buflen) {
    const qj_value *prompt = qj_get(root, "prompt");
    const qj_value *sub = qj_get(root, "subset");
    if (sub && sub->type != QJ_STRING) return "'subset' must be a string";
    if (f == QRM_EVAL_PB) {
        const qj_value *steps = qj_get(root, "steps");
        int64_t label;
        if (!qj_get_str(root, "problem")) return "missing string field 'problem'";
        if (!steps) return "missing field 'steps'";
        if (!string_array(steps)) return "'steps' must be a non-empty array of strings";
        if (!qj_get(root, "label")) return "missing field 'label'";
        if (!qj_get_int(root, "label", &label)) return "'label' must be an integer";
        if (label < -1 || label >= (int64_t)steps->len) {
            snprintf(buf, buflen, "'label' %lld is not -1 or a step index (0..%u)", (long long)label,
                     steps->len - 1);
            return buf;
        }
        r->kind = QRM_EV_STEPS, r->n_resp = 1, r->n_correct = 0, r->label = (int)label;
        r->n_units = steps->len;
        return NULL;
    }
    const qj_value *ci = qj_get(root, "chosen_ids"), *ri = qj_get(root, "rejected_ids");
    if (f == QRM_EVAL_PAIRS && (ci || ri)) {
        if (!ci || !ri) return ci ? "missing field 'rejected_ids'" : "missing field 'chosen_ids'";
        /* rejected_ids: one sequence, or several (best-of-N: the chosen one must beat them all) */
        int nested = ri->type == QJ_ARRAY && ri->len && ri->u.items[0].type == QJ_ARRAY;
        size_t n_rej = nested ? ri->len : 1;
        for (size_t s = 0; s <= n_rej; s++) {
            const qj_value *a = s == 0 ? ci : nested ? &ri->u.items[s - 1] : ri;
            char name[48];
            if (nested && s) snprintf(name, sizeof name, "'rejected_ids' element %zu", s - 1);
            else snprintf(name, sizeof name, "'%s'", s ? "rejected_ids" : "chosen_ids");
            if (a->type != QJ_ARRAY || !a->len) {
                snprintf(buf, buflen, "%s must be a non-empty array of token ids", name);
                return buf;
            }
            size_t n;
            int32_t *ids = qrm_ids_from_json(a, &n, buf, buflen);
            if (!ids) return buf;
            free(ids);
            if (s && same_value(ci, a)) {
                if (!nested) return "the chosen response is also the rejected one";
                snprintf(buf, buflen, "the chosen response is also rejected response %zu", s - 1);
                return buf;
            }
        }
        r->kind = QRM_EV_IDS, r->n_resp = 1 + n_rej, r->n_correct = 1, r->n_units = r->n_resp;
        return NULL;
    }
    const qj_value *c = qj_get(root, "chosen"), *j = qj_get(root, "rejected");
    if (!c) return "missing field 'chosen'";
    if (!j) return "missing field 'rejected'";
    if (f == QRM_EVAL_RB2) {
        if (!prompt || prompt->type != QJ_STRING) return "missing string field 'prompt'";
        if (!string_array(c)) return "'chosen' must be a non-empty array of strings";
        if (!string_array(j)) return "'rejected' must be a non-empty array of strings";
        for (uint32_t a = 0; a < c->len; a++)
            for (uint32_t b = 0; b < j->len; b++)
                if (same_value(&c->u.items[a], &j->u.items[b])) {
                    snprintf(buf, buflen, "chosen response %u is also rejected response %u", a, b);
                    return buf;
                }
        r->kind = QRM_EV_TEXT, r->n_resp = c->len + j->len, r->n_correct = c->len;
        r->n_units = r->n_resp;
        r->ties_ref = -1;
        if (sub && !strcasecmp(sub->u.str, "ties")) {
            const char *id = qj_get_str(root, "id"), *colon = id ? strchr(id, ':') : NULL;
            char *end;
            long pid = colon ? strtol(colon + 1, &end, 10) : 0;
            if (!colon || end == colon + 1 || *end)
                return "a Ties record needs an id \"ref:N\" or \"tied:N\"";
            if (!strncmp(id, "ref:", 4)) r->ties_ref = 1;
            else if (!strncmp(id, "tied:", 5)) r->ties_ref = 0;
            else return "a Ties record needs an id \"ref:N\" or \"tied:N\"";
            r->ties_id = pid;
        }
        return NULL;
    }
    /* RewardBench v1 and plain pairs: strings with a prompt, or conversations */
    if (c->type == QJ_STRING || j->type == QJ_STRING) {
        if (c->type != QJ_STRING || j->type != QJ_STRING) return "'chosen' and 'rejected' must both be strings";
        if (!prompt || prompt->type != QJ_STRING) return "missing string field 'prompt'";
        r->kind = QRM_EV_TEXT;
    } else {
        if (!is_messages(c) || !is_messages(j))
            return "'chosen' and 'rejected' must be strings or non-empty arrays of {\"role\", \"content\"} messages";
        if (prompt && prompt->type != QJ_STRING && !is_messages(prompt))
            return "'prompt' must be a string or an array of messages";
        r->kind = QRM_EV_MESSAGES;
    }
    if (same_value(c, j)) return "the chosen response is also the rejected one";
    r->n_resp = 2, r->n_correct = 1, r->n_units = 2;
    return NULL;
}

/* A conversation from the prompt (none, a user turn, or messages) and one side's messages. */
static void conversation(const qj_value *prompt, const qj_value *side, qj_buf *b) {
    qj_buf_puts(b, "[");
    int first = 1;
    if (prompt && prompt->type == QJ_STRING) {
        qj_buf_puts(b, "{\"role\":\"user\",\"content\":");
        qj_buf_put_string(b, prompt->u.str, prompt->len);
        qj_buf_puts(b, "}");
        first = 0;
    } else if (prompt) {
        for (uint32_t i = 0; i < prompt->len; i++, first = 0) {
            if (!first) qj_buf_puts(b, ",");
            qj_buf_put_value(b, &prompt->u.items[i]);
        }
    }
    for (uint32_t i = 0; i < side->len; i++, first = 0) {
        if (!first) qj_buf_puts(b, ",");
        qj_buf_put_value(b, &side->u.items[i]);
    }
    qj_buf_puts(b, "]");
}

/* The i-th response of a record (chosen first, then rejected). */
static const qj_value *response(const qj_value *root, const qrm_eval_record *r, size_t i) {
    const qj_value *c = qj_get(root, "chosen"), *j = qj_get(root, "rejected");
    if (c->type == QJ_ARRAY && r->kind == QRM_EV_TEXT)
        return i < c->len ? &c->u.items[i] : &j->u.items[i - c->len];
    return i == 0 ? c : j;
}

/* The i-th sequence of a pre-tokenized record: chosen_ids, then
 * rejected_ids (one sequence, or several in an array of arrays). */
static const qj_value *ids_response(const qj_value *root, size_t i) {
    const qj_value *rj = qj_get(root, "rejected_ids");
    if (i == 0) return qj_get(root, "chosen_ids");
    return rj->u.items[0].type == QJ_ARRAY ? &rj->u.items[i - 1] : rj;
}

/* Encodes the record's sequences with this model's rules. */
static int encode(qrm_ctx *c, const qrm_eval_record *r, int32_t **ids, size_t *len, char *err,
                  size_t errlen) {
    const qj_value *root = qj_root(r->doc);
    const qj_value *prompt = qj_get(root, "prompt");
    for (size_t i = 0; i < r->n_resp; i++) {
        int rc = 0;
        if (r->kind == QRM_EV_IDS) {
            ids[i] = qrm_ids_from_json(ids_response(root, i), &len[i], err, errlen);
            if (!ids[i]) return -1;
            continue;
        }
        if (r->kind == QRM_EV_STEPS) {
            const qj_value *st = qj_get(root, "steps");
            const char *pb = qj_get_str(root, "problem");
            const char **s = malloc(st->len * sizeof *s);
            size_t *sl = malloc(st->len * sizeof *sl);
            if (!s || !sl) rc = QRM_ENOMEM;
            for (uint32_t k = 0; !rc && k < st->len; k++) s[k] = st->u.items[k].u.str, sl[k] = st->u.items[k].len;
            if (!rc)
                rc = qrm_encode_steps(c, pb, qj_get(root, "problem")->len, s, sl, st->len, &ids[i], &len[i]);
            free(s), free(sl);
        } else if (r->kind == QRM_EV_MESSAGES) {
            qj_buf b = {0};
            conversation(prompt, response(root, r, i), &b);
            rc = b.oom ? QRM_ENOMEM : qrm_encode_chat(c, b.buf, b.len, &ids[i], &len[i], NULL);
            qj_buf_free(&b);
        } else {
            const qj_value *v = response(root, r, i);
            rc = qrm_encode_prompt_response(c, prompt->u.str, prompt->len, v->u.str, v->len, &ids[i], &len[i]);
        }
        if (rc) {
            snprintf(err, errlen, "response %zu: %s", i, rc == QRM_ENOMEM ? "out of memory" : qrm_ctx_error(c));
            return -1;
        }
        if (!len[i]) {
            snprintf(err, errlen, "response %zu encodes to no tokens", i);
            return -1;
        }
    }
    return 0;
}

/* Scores one record: out gets its n_units scores (output 0 of a sequence
 * head; each step's value for a step head), lens the response lengths in
 * tokens after the prefix its sequences share (NULL: not wanted). */
static int score_record(qrm_ctx *c, const qrm_eval_record *r, double *out, double *lens, char *err,
                        size_t errlen) {
    size_t n = r->n_resp;
    int32_t **ids = calloc(n, sizeof *ids);
    size_t *len = calloc(n, sizeof *len);
    const int32_t **tails = calloc(n, sizeof *tails);
    size_t *tail_len = calloc(n, sizeof *tail_len);
    qrm_scores *s = calloc(n, sizeof *s);
    int rc = -1;
    if (!ids || !len || !tails || !tail_len || !s) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (encode(c, r, ids, len, err, errlen)) goto out;
    if (r->kind == QRM_EV_STEPS) {
        if (qrm_score(c, ids[0], len[0], &s[0])) {
            snprintf(err, errlen, "%s", qrm_ctx_error(c));
            goto out;
        }
        if (s[0].n_points != r->n_units) {
            snprintf(err, errlen, "the model read %zu step scores for %zu steps", s[0].n_points, r->n_units);
            goto out;
        }
        for (size_t k = 0; k < r->n_units; k++) out[k] = s[0].values[k * (size_t)s[0].n_values];
        rc = 0;
        goto out;
    }
    size_t p = qrm_common_prefix((const int32_t *const *)ids, len, n, len[0] - 1);
    for (size_t i = 0; i < n; i++) tails[i] = ids[i] + p, tail_len[i] = len[i] - p;
    if (qrm_score_best_of_n(c, ids[0], p, tails, tail_len, n, s)) {
        snprintf(err, errlen, "%s", qrm_ctx_error(c));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = s[i].values[0];
        if (lens) lens[i] = (double)tail_len[i];
    }
    rc = 0;
out:
    for (size_t i = 0; s && i < n; i++) qrm_scores_free(&s[i]);
    for (size_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids), free(len), free(tails), free(tail_len), free(s);
    return rc;
}

/* DPO: a policy (a file converted with --head lm) scores a response by its
 * implicit reward, RewardBench's rule (rewardbench/dpo.py): the sum over the
 * response's tokens of log p_policy - log p_reference, or without a
 * reference the reference-free mode (tools/score_dpo.c). Every response is
 * encoded with its prompt as a conversation; the token prefix they share runs
 * once in each model. */
typedef struct {
    int on;              /* the -m models are DPO policies */
    qrm_ctx *ref;        /* --ref's context, or NULL: reference-free */
    qrm_dpo_mode mode;
} ev_dpo;

static int score_record_dpo(qrm_ctx *c, const ev_dpo *dpo, const qrm_eval_record *r, double *out, double *lens,
                            char *err, size_t errlen) {
    const qj_value *root = qj_root(r->doc);
    const qj_value *prompt = qj_get(root, "prompt");
    size_t n = r->n_resp;
    if (r->kind == QRM_EV_IDS) {
        snprintf(err, errlen, "a DPO model needs where each response starts: give text or messages, "
                              "not chosen_ids/rejected_ids");
        return -1;
    }
    int32_t **ids = calloc(n, sizeof *ids);
    size_t *len = calloc(n, sizeof *len), *start = calloc(n, sizeof *start);
    qrm_scores *pol = calloc(n, sizeof *pol), *ref = calloc(n, sizeof *ref);
    int rc = -1;
    if (!ids || !len || !start || !pol || !ref) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char e[QRM_ERR_MAX - 32];
        int erc;
        if (r->kind == QRM_EV_MESSAGES) {
            qj_buf b = {0};
            conversation(prompt, response(root, r, i), &b);
            erc = b.oom ? (snprintf(e, sizeof e, "out of memory"), -1)
                        : qrm_dpo_encode_conversation(c, b.buf, b.len, &ids[i], &len[i], &start[i], e, sizeof e);
            qj_buf_free(&b);
        } else {
            erc = qrm_dpo_encode_pair(c, prompt, response(root, r, i), &ids[i], &len[i], &start[i], e, sizeof e);
        }
        if (erc) {
            snprintf(err, errlen, "response %zu: %s", i, e);
            goto out;
        }
    }
    if (qrm_dpo_logprobs(c, dpo->ref, ids, len, start, n, pol, ref, err, errlen)) goto out;
    for (size_t i = 0; i < n; i++) {
        out[i] = qrm_dpo_reward(&pol[i], dpo->ref ? &ref[i] : NULL, (int32_t)start[i] - 1, dpo->mode);
        if (lens) lens[i] = (double)(len[i] - start[i]);
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        if (ids) free(ids[i]);
        if (pol) qrm_scores_free(&pol[i]);
        if (ref) qrm_scores_free(&ref[i]);
    }
    free(ids), free(len), free(start), free(pol), free(ref);
    return rc;
}

/* ---- the command ---- */

static const char eval_epilog[] =
    "Formats (detected from the fields unless --format):\n"
    "  rewardbench   prompt, chosen, rejected, subset: accuracy per subset, the four\n"
    "                sections with RewardBench's subset weights, their mean (a tie is a loss)\n"
    "  rewardbench2  prompt, chosen [..], rejected [..], subset: best-of-N accuracy (ties at\n"
    "                the top share the credit); the Ties subset by its own rule (ids ref:N/tied:N)\n"
    "  pairs         prompt/chosen/rejected strings, chosen/rejected message lists (prompt:\n"
    "                optional string or messages), or chosen_ids/rejected_ids (rejected_ids may\n"
    "                hold several sequences: the chosen one must beat them all; a tie is a loss)\n"
    "  processbench  problem, steps, label (first wrong step, -1 if none), for a PRM\n"
    "--against reports the same decisions, Kendall tau-b and max |s - s_ref| / (max s_ref - min s_ref).\n"
    "DPO policies (files converted with --head lm) score a response by its implicit reward, as\n"
    "RewardBench does: with --ref the sum of log p_policy - log p_reference over its tokens,\n"
    "without it the reference-free --dpo-mode; an --against file is scored the same way.\n"
    "With several -m, each model's scores are standardized (z-score with that model's mean and\n"
    "std over the file's scored responses) and combined per response by --combine.\n"
    "Bad records are reported on stderr (line and id) and skipped; the report counts them.\n"
    "Exit status: 0, 1 when a model, the data or the output fails, 2 for a usage error.\n";

enum { E_MODEL, E_DATA, E_FORMAT, E_AGAINST, E_REF, E_DPO_MODE, E_THRESHOLD, E_COMBINE, E_JSON, E_SVG, E_THREADS,
       E_MAX_TOKENS, E_KV, E_N };

typedef struct {
    const char *path;
    qrm_model *m;
    qrm_ctx *c;
    double *score;
} ev_model;

static int open_model(ev_model *e, int threads, long max_tokens, qrm_kv_type kv) {
    char err[QRM_ERR_MAX];
    e->m = qrm_model_open(e->path, err, sizeof err);
    if (!e->m) {
        fprintf(stderr, "qrm eval: %s\n", err);
        return -1;
    }
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = threads;
    p.max_tokens = (size_t)max_tokens;
    p.kv_type = kv;
    e->c = qrm_ctx_new(e->m, &p, err, sizeof err);
    if (!e->c) {
        fprintf(stderr, "qrm eval: %s: %s\n", e->path, err);
        return -1;
    }
    return 0;
}

static int check_head(const ev_model *e, qrm_eval_format f, int dpo) {
    qrm_model_info in;
    qrm_model_get_info(e->m, &in);
    if (in.logprobs && !dpo) {
        fprintf(stderr, "qrm eval: %s: a log-probability (DPO) model needs --ref REFERENCE.qrm, or --dpo-mode "
                        "for a reference-free reward\n", e->path);
        return -1;
    }
    if (!in.logprobs && dpo) {
        fprintf(stderr, "qrm eval: %s: --ref and --dpo-mode are for DPO policies (files converted with --head lm); "
                        "this one has a reward head\n", e->path);
        return -1;
    }
    if (in.logprobs && f == QRM_EVAL_PB) {
        fprintf(stderr, "qrm eval: %s: ProcessBench needs a process reward model, not a DPO policy\n", e->path);
        return -1;
    }
    if (f == QRM_EVAL_PB && !in.per_step) {
        fprintf(stderr, "qrm eval: %s: ProcessBench needs a process reward model (a step head); this one scores whole responses\n", e->path);
        return -1;
    }
    if (f != QRM_EVAL_PB && in.per_step) {
        fprintf(stderr, "qrm eval: %s: a process reward model scores steps; %s data needs a sequence head\n",
                e->path, qrm_eval_format_name(f));
        return -1;
    }
    return 0;
}

int qrm_cli_eval(int argc, char **argv) {
    /* 0: every core; more than 4 per core only adds contention */
    long max_threads = 4L * qrm_cpu_count();
    const cli_opt opts[E_N] = {
        [E_MODEL] = {"--model", 'm', CLI_STRING, "FILE.qrm", "required",
                     "the model; several make an ensemble (at most 64)", .many = 1},
        [E_DATA] = {"--data", 0, CLI_STRING, "FILE.jsonl|-", "required", "the benchmark file"},
        [E_FORMAT] = {"--format", 0, CLI_CHOICE, NULL, "detected from the fields", "the data's format",
                      .choices = "rewardbench|rewardbench2|pairs|processbench"},
        [E_AGAINST] = {"--against", 0, CLI_STRING, "REF.qrm", NULL, "agreement with a reference model"},
        [E_REF] = {"--ref", 0, CLI_STRING, "REFERENCE.qrm", NULL, "DPO: the reference model of the -m policies"},
        [E_DPO_MODE] = {"--dpo-mode", 0, CLI_CHOICE, NULL, NULL, "DPO without --ref: the reference-free reward",
                        .choices = "sum|avg|norm"},
        [E_THRESHOLD] = {"--threshold", 0, CLI_DOUBLE, "P", "0.5", "ProcessBench: a step below P is wrong",
                         .dlo = 0, .dhi = 1},
        [E_COMBINE] = {"--combine", 0, CLI_STRING, "mean|min|median|mean-std:K", "mean",
                       "several -m: how the standardized scores combine"},
        [E_JSON] = {"--json", 0, CLI_FLAG, NULL, NULL, "one JSON document on stdout instead of the table"},
        [E_SVG] = {"--svg", 0, CLI_STRING, "DIR", NULL, "reliability.svg, histogram.svg, length.svg"},
        [E_THREADS] = {"--threads", 't', CLI_INT, "N", "0: every core", "threads", .lo = 0, .hi = max_threads},
        [E_MAX_TOKENS] = {"--max-tokens", 'c', CLI_INT, "N", "the model's context, or 2 GiB",
                          "KV cache cap in tokens", .lo = 1, .hi = 1L << 30, .alt = "--ctx-size"},
        [E_KV] = {"--kv", 0, CLI_CHOICE, NULL, "f16 for int8/int4 models, f32 otherwise",
                  "the -m models' KV cache (--against's keeps its default)", .choices = "f32|f16|q8"},
    };
    const cli_spec spec = {
        .prog = "qrm eval",
        .about = "judge a reward model on a benchmark file (RewardBench v1/v2, pairs, ProcessBench)",
        .usage = "qrm eval -m FILE.qrm [-m FILE2.qrm ... [--combine C]] --data FILE.jsonl|-\n"
                 "[--format F] [--against REF.qrm] [--ref REFERENCE.qrm | --dpo-mode M] [--threshold P] [--json]\n"
                 "[--svg DIR] [-t N] [--max-tokens N] [--kv f32|f16|q8]\n",
        .opts = opts,
        .n_opts = E_N,
        .epilog = eval_epilog,
    };
    cli_val v[E_N];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    const char *paths[64];
    int n_models = v[E_MODEL].count;
    for (int k = 0; k < n_models && k < 64; k++) paths[k] = v[E_MODEL].all[k];
    cli_free(&spec, v);   /* the values point into argv, which stays */
    const char *data = v[E_DATA].str, *against = v[E_AGAINST].str, *svg = v[E_SVG].str, *ref_path = v[E_REF].str;
    static const char *const dpo_modes[] = {"sum", "avg", "norm"};
    ev_dpo dpo = {.on = ref_path || v[E_DPO_MODE].count, .mode = (qrm_dpo_mode)(v[E_DPO_MODE].count ? v[E_DPO_MODE].choice : 0)};
    const char *combine_s = v[E_COMBINE].str;
    int json = v[E_JSON].count > 0, fmt = QRM_EVAL_AUTO;
    long threads = v[E_THREADS].count ? v[E_THREADS].i : 0, max_tokens = v[E_MAX_TOKENS].count ? v[E_MAX_TOKENS].i : 0;
    double threshold = v[E_THRESHOLD].count ? v[E_THRESHOLD].d : 0.5;
    qrm_kv_type kv = !v[E_KV].count ? QRM_KV_AUTO
                     : v[E_KV].choice == 0 ? QRM_KV_F32 : v[E_KV].choice == 1 ? QRM_KV_F16 : QRM_KV_Q8;
    qrm_combine comb = {QRM_COMBINE_MEAN, 0};
    if (v[E_FORMAT].count) fmt = format_parse(v[E_FORMAT].str);
    if (!n_models) return cli_usage_error(&spec, "no model: give -m FILE.qrm");
    if (n_models > 64) return cli_usage_error(&spec, "at most 64 models (-m given %d times)", n_models);
    if (!data) return cli_usage_error(&spec, "no data: give --data FILE.jsonl");
    if (combine_s && qrm_combine_parse(combine_s, &comb))
        return cli_usage_error(&spec, "--combine wants mean, min, median or mean-std:K (K >= 0), not '%s'", combine_s);
    if (combine_s && n_models < 2) return cli_usage_error(&spec, "--combine needs several -m models");
    if (ref_path && v[E_DPO_MODE].count)
        return cli_usage_error(&spec, "--dpo-mode is the reference-free reward: give it or --ref, not both");

    FILE *f = strcmp(data, "-") ? fopen(data, "rb") : stdin;
    struct stat st;
    if (!f || fstat(fileno(f), &st) || S_ISDIR(st.st_mode)) {
        fprintf(stderr, "qrm eval: cannot read '%s'%s\n", data, f ? ": a directory" : "");
        if (f && f != stdin) fclose(f);
        return 1;
    }
    /* every record first: the format, the counts, and the z-scores of an
     * ensemble need the whole file */
    qrm_eval_record *rec = NULL;
    size_t n_rec = 0, cap_rec = 0, n_units = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t nr;
    int lineno = 0;
    qrm_eval_format format = (qrm_eval_format)fmt;
    while ((nr = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)nr;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == len) continue;   /* blank lines (a trailing newline) are not records */
        if (n_rec == cap_rec) {
            cap_rec = cap_rec ? 2 * cap_rec : 256;
            qrm_eval_record *nrp = realloc(rec, cap_rec * sizeof *rec);
            if (!nrp) {
                fprintf(stderr, "qrm eval: out of memory\n");
                return 1;
            }
            rec = nrp;
        }
        qrm_eval_record *r = &rec[n_rec++];
        memset(r, 0, sizeof *r);
        r->line = lineno;
        r->ties_ref = -1;
        char err[QRM_ERR_MAX], buf[QRM_ERR_MAX + 32];
        qj_doc *d = qj_parse(line, len, err, sizeof err);
        if (!d) {
            r->skipped = 1;
            /* the reader counts lines within the record; the file line is already named */
            snprintf(buf, sizeof buf, "not valid JSON: %s", strncmp(err, "line 1, ", 8) ? err : err + 8);
            bad_record(data, r, buf);
            continue;
        }
        r->doc = d;
        const qj_value *root = qj_root(d);
        if (root->type != QJ_OBJECT) {
            r->skipped = 1;
            bad_record(data, r, "not a JSON object");
            continue;
        }
        r->id = id_text(root);
        const char *sub = qj_get_str(root, "subset");
        r->subset = sub ? strdup(sub) : NULL;
        if (format == QRM_EVAL_AUTO) format = detect(root);
        if (format == QRM_EVAL_AUTO) {
            r->skipped = 1;
            bad_record(data, r, "no known fields (prompt/chosen/rejected, chosen_ids/rejected_ids, problem/steps/label)");
            continue;
        }
        const char *why = check_record(format, root, r, buf, sizeof buf);
        if (why) {
            r->skipped = 1;
            r->n_units = 0;
            bad_record(data, r, why);
            continue;
        }
        r->first = n_units;
        n_units += r->n_units;
    }
    free(line);
    if (f != stdin) fclose(f);

    int rc = 1;
    ev_model *ms = calloc((size_t)n_models + 2, sizeof *ms);   /* the -m models, --against, --ref */
    double *final = calloc(n_units ? n_units : 1, sizeof *final);
    double *lens = calloc(n_units ? n_units : 1, sizeof *lens);
    if (!ms || !final || !lens) {
        fprintf(stderr, "qrm eval: out of memory\n");
        goto done;
    }
    int n_all = n_models + (against ? 1 : 0);
    for (int k = 0; k < n_all; k++) {
        ms[k].path = k < n_models ? paths[k] : against;
        if (open_model(&ms[k], (int)threads, max_tokens, k < n_models ? kv : QRM_KV_AUTO)) goto done;
        if (format != QRM_EVAL_AUTO && check_head(&ms[k], format, dpo.on)) goto done;
        ms[k].score = calloc(n_units ? n_units : 1, sizeof *ms[k].score);
        if (!ms[k].score) goto done;
    }
    if (ref_path) {   /* the DPO reference: one context shared by every policy */
        ev_model *e = &ms[n_all];
        e->path = ref_path;
        if (open_model(e, (int)threads, max_tokens, QRM_KV_AUTO)) goto done;
        qrm_model_info in;
        qrm_model_get_info(e->m, &in);
        if (!in.logprobs) {
            fprintf(stderr, "qrm eval: --ref %s: not a DPO reference (convert it with --head lm)\n", ref_path);
            goto done;
        }
        dpo.ref = e->c;
    }
    if (format == QRM_EVAL_AUTO) {
        fprintf(stderr, "qrm eval: %s: no record in a known format\n", data);
        goto done;
    }
    if (format == QRM_EVAL_PB && n_models > 1) {
        fprintf(stderr, "qrm eval: an ensemble of process reward models is not supported (the threshold is on one model's probability)\n");
        goto done;
    }
    int progress = isatty(2);
    double t0 = qrm_now(), last = t0;
    size_t done_units = 0;
    for (size_t i = 0; i < n_rec; i++) {
        qrm_eval_record *r = &rec[i];
        if (r->skipped) continue;
        for (int k = 0; k < n_all && !r->skipped; k++) {
            char err[QRM_ERR_MAX], msg[QRM_ERR_MAX + 64];
            double *lk = k ? NULL : lens + r->first;
            if (dpo.on ? score_record_dpo(ms[k].c, &dpo, r, ms[k].score + r->first, lk, err, sizeof err)
                       : score_record(ms[k].c, r, ms[k].score + r->first, lk, err, sizeof err)) {
                snprintf(msg, sizeof msg, "%s: %s", ms[k].path, err);
                bad_record(data, r, msg);
                r->skipped = 1;
            }
        }
        done_units += r->n_units;
        double now = qrm_now();
        if (progress && now - last > 0.5) {
            fprintf(stderr, "\r%zu/%zu records, %.1f records/s, ETA %.0f s   ", i + 1, n_rec,
                    (i + 1) / (now - t0), (now - t0) * (double)(n_units - done_units) / (double)(done_units ? done_units : 1));
            last = now;
        }
    }
    if (progress) fprintf(stderr, "\r%zu/%zu records in %.1f s%30s\n", n_rec, n_rec, qrm_now() - t0, "");

    /* the units of the records every model scored, in order, for the z-scores */
    size_t n_ok = 0;
    for (size_t i = 0; i < n_rec; i++)
        if (!rec[i].skipped) n_ok += rec[i].n_units;
    double *ref = against ? ms[n_models].score : NULL;
    if (n_models > 1) {
        int n_cols = n_models + (ref ? 1 : 0);
        double **cols = calloc((size_t)n_cols, sizeof *cols);
        double *packed = malloc((n_ok ? n_ok : 1) * sizeof *packed);
        for (int k = 0; cols && k < n_cols; k++) {
            cols[k] = malloc((n_ok ? n_ok : 1) * sizeof **cols);
            if (!cols[k]) goto oom;
            size_t o = 0;
            for (size_t i = 0; i < n_rec; i++)
                if (!rec[i].skipped)
                    for (size_t u = 0; u < rec[i].n_units; u++) cols[k][o++] = ms[k].score[rec[i].first + u];
        }
        if (!cols || !packed) goto oom;
        qrm_combine_scores((const double *const *)cols, (size_t)n_models, n_ok, &comb, packed);
        size_t o = 0;
        for (size_t i = 0; i < n_rec; i++)
            if (!rec[i].skipped)
                for (size_t u = 0; u < rec[i].n_units; u++, o++) final[rec[i].first + u] = packed[o];
        if (ref) {
            /* the reference on the same scale as the combined scores */
            qrm_combine one = {QRM_COMBINE_MEAN, 0};
            const double *rc1[1] = {cols[n_models]};
            qrm_combine_scores(rc1, 1, n_ok, &one, packed);
            o = 0;
            for (size_t i = 0; i < n_rec; i++)
                if (!rec[i].skipped)
                    for (size_t u = 0; u < rec[i].n_units; u++, o++) ref[rec[i].first + u] = packed[o];
        }
    oom:
        for (int k = 0; cols && k < n_cols; k++) free(cols[k]);
        free(cols);
        free(packed);
    } else {
        memcpy(final, ms[0].score, (n_units ? n_units : 1) * sizeof *final);
    }

    const qrm_model *mods[64];
    for (int k = 0; k < n_models; k++) mods[k] = ms[k].m;
    qrm_eval_data d = {.format = format, .data_path = data, .rec = rec, .n_rec = n_rec,
                       .n_units = n_units, .score = final, .ref_score = ref, .length = lens,
                       .threshold = threshold, .n_models = n_models, .model_paths = paths,
                       .models = mods, .ref_path = against, .ref_model = against ? ms[n_models].m : NULL,
                       .combine = n_models > 1 ? (combine_s ? combine_s : "mean") : NULL,
                       .kv = kv == QRM_KV_F32 ? "f32" : kv == QRM_KV_F16 ? "f16" : kv == QRM_KV_Q8 ? "q8" : NULL,
                       .dpo_ref_path = ref_path, .dpo_ref_model = ref_path ? ms[n_all].m : NULL,
                       .dpo_mode = dpo.on && !ref_path ? dpo_modes[dpo.mode] : NULL};
    if (svg) {
        char err[QRM_ERR_MAX];
        if (qrm_eval_svg(&d, svg, err, sizeof err)) {
            fprintf(stderr, "qrm eval: %s\n", err);
            goto done;
        }
    }
    if (qrm_eval_report(&d, stdout, json) || fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "qrm eval: cannot write the report\n");
        goto done;
    }
    rc = 0;
done:
    for (int k = 0; ms && k < n_models + (against ? 1 : 0) + (ref_path ? 1 : 0); k++) {
        qrm_ctx_free(ms[k].c);
        qrm_model_close(ms[k].m);
        free(ms[k].score);
    }
    free(ms), free(final), free(lens);
    for (size_t i = 0; i < n_rec; i++) {
        qj_free(rec[i].doc);
        free(rec[i].id), free(rec[i].subset);
    }
    free(rec);
    return rc;
}
