/* `qrm score`: one sequence from the command line, or a JSONL stream where
 * every input line gets exactly one output line, in order, flushed as soon
 * as it is scored. A line that cannot be scored gets {"error": ...} and
 * the run goes on. */
#include "score_jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_opts.h"
#include "cpu.h"
#include "ctx.h"
#include "json.h"
#include "utf8.h"
#include "verify.h"
#include "platform.h"

/* A line holds at most as many tokens as the context's KV cap (every
 * sequence of a line shares one cache), and JSON text takes a few bytes per
 * token: about 4 for English, 6-12 for \u-escaped scripts, up to 11 for an
 * id. A line longer than QRM_LINE_BYTES_PER_TOKEN bytes per token of the
 * cap cannot be one that fits, so it is refused by its length before it is
 * parsed or tokenized (echoed fields count too). QRM_LINE_MAX bounds what
 * is ever held in memory, whatever the cap. */
#define QRM_LINE_BYTES_PER_TOKEN 64
#define QRM_LINE_MAX ((size_t)64 << 20)

size_t qrm_line_limit(const qrm_ctx *c) {
    size_t tokens = c->kv_limit;
    return tokens > QRM_LINE_MAX / QRM_LINE_BYTES_PER_TOKEN ? QRM_LINE_MAX : tokens * QRM_LINE_BYTES_PER_TOKEN;
}

/* line is 1-based, 0 when unknown */
static void line_too_long(char *err, size_t errlen, size_t line, size_t len, const qrm_ctx *c) {
    char which[48] = "the line";
    if (line) snprintf(which, sizeof which, "line %zu", line);
    snprintf(err, errlen, "%s is %zu bytes, over the limit of %zu (%d bytes per token of the %zu-token context); not scored",
             which, len, qrm_line_limit(c), QRM_LINE_BYTES_PER_TOKEN, c->kv_limit);
}

int qrm_aggregate_parse(const char *s) {
    static const char *names[] = {"min", "last", "mean", "prod"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

double qrm_aggregate_steps(const float *s, size_t n, qrm_aggregate a) {
    if (n == 0) return NAN;
    double r = a == QRM_AGG_PROD ? 1 : a == QRM_AGG_MIN ? INFINITY : 0;
    for (size_t i = 0; i < n; i++) {
        if (a == QRM_AGG_MIN) r = fmin(r, s[i]);
        else if (a == QRM_AGG_PROD) r *= s[i];
        else r += s[i];
    }
    return a == QRM_AGG_LAST ? s[n - 1] : a == QRM_AGG_MEAN ? r / (double)n : r;
}

void qrm_put_num(qj_buf *b, double v) {
    if (isnan(v)) qj_buf_puts(b, "null");
    else qj_buf_printf(b, "%.9g", v);
}

/* One score point: a number for a one-output head, else an object keyed by
 * the outputs' names. */
static void put_point(qj_buf *b, const qrm_model *m, const float *v, int no) {
    if (no == 1) {
        qrm_put_num(b, v[0]);
        return;
    }
    qj_buf_puts(b, "{");
    for (int o = 0; o < no; o++) {
        const char *name = qrm_model_output_name(m, o);
        if (o) qj_buf_puts(b, ",");
        qj_buf_put_string(b, name, strlen(name));
        qj_buf_puts(b, ":");
        qrm_put_num(b, v[o]);
    }
    qj_buf_puts(b, "}");
}

/* "key": after the object's opening brace or a previous member. */
void qrm_put_key(qj_buf *b, const char *key) {
    qj_buf_puts(b, b->len && b->buf[b->len - 1] == '{' ? "\"" : ",\"");
    qj_buf_puts(b, key);
    qj_buf_puts(b, "\":");
}

/* "step_scores", "step_positions" and the aggregate "score" of a PRM point set. */
static void put_steps(qj_buf *b, const qrm_scores *s, const qrm_score_opts *o) {
    qrm_put_key(b, "step_scores");
    qj_buf_puts(b, "[");
    for (size_t i = 0; i < s->n_points; i++) {
        if (i) qj_buf_puts(b, ",");
        qrm_put_num(b, s->values[i]);
    }
    qj_buf_puts(b, "]");
    qrm_put_key(b, "step_positions");
    qj_buf_puts(b, "[");
    for (size_t i = 0; i < s->n_points; i++) qj_buf_printf(b, "%s%d", i ? "," : "", (int)s->positions[i]);
    qj_buf_puts(b, "]");
    qrm_put_key(b, "score");
    qrm_put_num(b, qrm_aggregate_steps(s->values, s->n_points, o->aggregate));
}

/* The number that ranks a result: the aggregate of a PRM's steps, else the
 * --rank-by output of its one point. */
static double rank_value(const qrm_model *m, const qrm_scores *s, const qrm_score_opts *o) {
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    if (info.per_step) return qrm_aggregate_steps(s->values, s->n_points, o->aggregate);
    return s->values[o->rank_by];
}

/* ids from a JSON array of integers; NULL and a message when it is not one. */
int32_t *qrm_ids_from_json(const qj_value *a, size_t *n, char *err, size_t errlen) {
    if (a->type != QJ_ARRAY) {
        snprintf(err, errlen, "'ids' must be an array of integers");
        return NULL;
    }
    int32_t *ids = malloc((a->len ? a->len : 1) * sizeof *ids);
    if (!ids) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < a->len; i++) {
        const qj_value *v = &a->u.items[i];
        if (v->type != QJ_NUMBER || !v->is_int || v->u.num < 0 || v->u.num > 2147483647.0) {
            snprintf(err, errlen, "'ids' element %u is not a non-negative integer", i);
            free(ids);
            return NULL;
        }
        ids[i] = (int32_t)v->u.num;
    }
    *n = a->len;
    return ids;
}

typedef struct {
    int index;
    double score;
} ranked;

static int by_score_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    /* NaN (a PRM answer without steps) ranks last */
    int xn = isnan(x->score), yn = isnan(y->score);
    if (xn != yn) return xn - yn;
    if (!xn && x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->index - y->index;
}

/* The kept responses for --best / --top-k / --min-score, ranked by rank[i];
 * each shows its score point from s, or with s NULL its rank value. */
void qrm_put_kept(qj_buf *b, const qrm_model *m, const qj_value *responses, const double *rank,
                  const qrm_scores *s, const qrm_score_opts *o) {
    uint32_t n = responses->len;
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) {
        b->oom = 1;
        return;
    }
    for (uint32_t i = 0; i < n; i++) r[i].index = (int)i, r[i].score = rank[i];
    int keep = (int)n;
    if (o->mode == QRM_KEEP_BEST || o->mode == QRM_KEEP_TOP_K) {
        qsort(r, n, sizeof *r, by_score_desc);
        int k = o->mode == QRM_KEEP_BEST ? 1 : o->top_k;
        if (k < keep) keep = k;
    }
    qj_buf_puts(b, ",\"kept\":[");
    int first = 1;
    for (int i = 0; i < keep; i++) {
        /* compared as floats: a score printed with %.9g and passed back as
         * --min-score reads as exactly that float */
        if (o->mode == QRM_KEEP_MIN_SCORE && !((float)r[i].score >= (float)o->min_score)) continue;
        qj_buf_printf(b, "%s{\"index\":%d,\"response\":", first ? "" : ",", r[i].index);
        qj_buf_put_value(b, &responses->u.items[r[i].index]);
        qj_buf_puts(b, ",\"score\":");
        if (!s) qrm_put_num(b, r[i].score);
        else put_point(b, m, s[r[i].index].values, s[r[i].index].n_values);
        qj_buf_puts(b, "}");
        first = 0;
    }
    qj_buf_puts(b, "]");
    free(r);
}

/* A JSON array of non-empty strings as pointers and lengths (into the doc). */
static int string_list(const qj_value *a, const char *what, const char ***strs, size_t **lens,
                       char *err, size_t errlen) {
    if (a->type != QJ_ARRAY || a->len == 0) {
        snprintf(err, errlen, "'%s' must be a non-empty array of strings", what);
        return -1;
    }
    *strs = malloc(a->len * sizeof **strs);
    *lens = malloc(a->len * sizeof **lens);
    if (!*strs || !*lens) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < a->len; i++) {
        if (a->u.items[i].type != QJ_STRING) {
            snprintf(err, errlen, "'%s' element %u is not a string", what, i);
            return -1;
        }
        (*strs)[i] = a->u.items[i].u.str;
        (*lens)[i] = a->u.items[i].len;
    }
    return 0;
}

/* Encodes a prompt with one response: a string (a user and an assistant
 * turn), or for a PRM an array of steps. */
static int encode_response(qrm_ctx *c, const qj_value *prompt, const qj_value *r, int per_step,
                           int32_t **ids, size_t *n, char *err, size_t errlen) {
    if (!per_step) {
        if (r->type != QJ_STRING) {
            snprintf(err, errlen, "a response must be a string");
            return -1;
        }
        if (qrm_encode_prompt_response(c, prompt->u.str, prompt->len, r->u.str, r->len, ids, n)) {
            snprintf(err, errlen, "%s", qrm_ctx_error(c));
            return -1;
        }
        return 0;
    }
    if (r->type != QJ_ARRAY) {
        snprintf(err, errlen, "a process reward model scores steps: give each response as an array of step strings");
        return -1;
    }
    const char **steps = NULL;
    size_t *lens = NULL;
    int rc = string_list(r, "steps", &steps, &lens, err, errlen);
    if (!rc && qrm_encode_steps(c, prompt->u.str, prompt->len, steps, lens, r->len, ids, n)) {
        snprintf(err, errlen, "%s", qrm_ctx_error(c));
        rc = -1;
    }
    free(steps), free(lens);
    return rc;
}

size_t qrm_common_prefix(const int32_t *const *ids, const size_t *len, size_t n, size_t bound) {
    size_t p = bound;
    for (size_t i = 1; i < n; i++) {
        size_t j = 0;
        while (j < p && j < len[i] - 1 && ids[i][j] == ids[0][j]) j++;
        p = j;
    }
    return p;
}

/* Scores one prompt with N responses: each conversation is encoded with the
 * model's input rule, the longest common token prefix runs once, and the
 * rest of every response runs in one batch against it. */
static int score_responses(qrm_ctx *c, const qj_value *prompt, const qj_value *responses,
                           int per_step, qrm_scores *scores, size_t *n_tokens, char *err,
                           size_t errlen) {
    uint32_t n = responses->len;
    int32_t **ids = calloc(n, sizeof *ids);
    size_t *len = calloc(n, sizeof *len);
    int rc = -1;
    if (!ids || !len) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        char e[QRM_ERR_MAX - 32];
        if (encode_response(c, prompt, &responses->u.items[i], per_step, &ids[i], &len[i], e, sizeof e)) {
            snprintf(err, errlen, "response %u: %s", i, e);
            goto out;
        }
        if (len[i] == 0) {
            snprintf(err, errlen, "response %u encodes to no tokens", i);
            goto out;
        }
        *n_tokens += len[i];
    }
    /* longest common prefix, leaving every response at least one token */
    size_t p = qrm_common_prefix((const int32_t *const *)ids, len, n, len[0] - 1);
    const int32_t **tails = malloc(n * sizeof *tails);
    size_t *tail_len = malloc(n * sizeof *tail_len);
    if (!tails || !tail_len) {
        free(tails), free(tail_len);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) tails[i] = ids[i] + p, tail_len[i] = len[i] - p;
    rc = qrm_score_best_of_n(c, ids[0], p, tails, tail_len, n, scores);
    if (rc) snprintf(err, errlen, "%s", qrm_ctx_error(c));
    free(tails), free(tail_len);
out:
    for (uint32_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids), free(len);
    return rc ? -1 : 0;
}

/* The fields qrm writes into an output line. */
static int is_output_key(const char *k) {
    static const char *const keys[] = {"scores", "kept", "error", "step_scores", "step_positions",
                                       "score", "logprobs", "ref_logprobs", "response_start",
                                       "input"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i])) return 1;
    return 0;
}

static int is_request_key(const char *k) {
    return !strcmp(k, "ids") || !strcmp(k, "prompt") || !strcmp(k, "responses") ||
           !strcmp(k, "messages") || !strcmp(k, "steps") || !strcmp(k, "response_start");
}

/* The ids of a one-sequence line: "ids", "messages", or "prompt" + "steps". */
static int32_t *line_ids(qrm_ctx *c, const qj_value *root, int per_step, size_t *n, char *err,
                         size_t errlen) {
    const qj_value *ids_v = qj_get(root, "ids"), *messages = qj_get(root, "messages"),
                   *prompt = qj_get(root, "prompt"), *steps = qj_get(root, "steps");
    int32_t *ids = NULL;
    if (ids_v) return qrm_ids_from_json(ids_v, n, err, errlen);
    if (messages) {
        qj_buf mb = {0};
        qj_buf_put_value(&mb, messages);
        int oom = mb.oom;
        int rc = oom ? QRM_ENOMEM : messages->type != QJ_ARRAY ? QRM_EINVAL
                 : qrm_encode_chat(c, mb.buf, mb.len, &ids, n, NULL);
        qj_buf_free(&mb);
        /* the context holds a message only when qrm_encode_chat failed */
        if (rc)
            snprintf(err, errlen, "%s", oom ? "out of memory"
                     : messages->type != QJ_ARRAY
                     ? "'messages' must be an array of {\"role\", \"content\"} objects"
                     : qrm_ctx_error(c));
        return rc ? NULL : ids;
    }
    if (!per_step) {
        snprintf(err, errlen, "'steps' needs a process reward model; this model scores whole responses");
        return NULL;
    }
    if (!prompt || prompt->type != QJ_STRING) {
        snprintf(err, errlen, "'prompt' must be a string");
        return NULL;
    }
    if (encode_response(c, prompt, steps, 1, &ids, n, err, errlen)) return NULL;
    return ids;
}

void qrm_score_line(qrm_ctx *c, const char *line, size_t len, const qrm_score_opts *o,
                    qj_buf *b, size_t *n_tokens) {
    char err[QRM_ERR_MAX] = "";
    const qrm_model *m = qrm_ctx_model(c);
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    qj_doc *d = NULL;
    qrm_scores one = {0}, *many = NULL;
    uint32_t n_many = 0;
    size_t mark;
    qj_buf_puts(b, "{");
    mark = b->len;

    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    if (k == len) {
        snprintf(err, sizeof err, "empty line");
        goto error;
    }
    if (len > qrm_line_limit(c)) {
        line_too_long(err, sizeof err, 0, len, c);
        goto error;
    }
    char jerr[200];
    d = qj_parse(line, len, jerr, sizeof jerr);
    if (!d) {
        snprintf(err, sizeof err, "invalid JSON: %s", jerr);
        goto error;
    }
    const qj_value *root = qj_root(d);
    if (root->type != QJ_OBJECT) {
        snprintf(err, sizeof err, "a line must be a JSON object");
        goto error;
    }
    /* echo the caller's other fields first, in their order; those named as
     * a field qrm writes (or "input") go inside one "input" object, so an
     * output line never holds a key twice */
    int clashes = 0;
    for (int pass = 0; pass < 2; pass++) {
        int first = 1;
        for (uint32_t i = 0; i < root->len; i++) {
            const qj_member *mem = &root->u.members[i];
            if (is_request_key(mem->key)) continue;
            int clash = is_output_key(mem->key);
            clashes += pass == 0 && clash;
            if (clash != pass) continue;
            if (pass == 1 && first) qj_buf_puts(b, b->len > mark ? ",\"input\":{" : "\"input\":{");
            else if (pass == 1 || b->len > mark) qj_buf_puts(b, ",");
            first = 0;
            qj_buf_put_string(b, mem->key, mem->key_len);
            qj_buf_puts(b, ":");
            qj_buf_put_value(b, &mem->value);
        }
        if (pass == 1 && clashes) qj_buf_puts(b, "}");
    }
    mark = b->len;
    if (info.logprobs) {
        if (qrm_dpo_line(c, root, o, b, n_tokens, err, sizeof err)) goto error;
        qj_buf_puts(b, "}");
        goto done;
    }
    const qj_value *ids_v = qj_get(root, "ids"), *prompt = qj_get(root, "prompt"),
                   *responses = qj_get(root, "responses"), *messages = qj_get(root, "messages"),
                   *steps = qj_get(root, "steps");
    if (!!ids_v + !!messages + !!steps + !!responses != 1 || (prompt && !steps && !responses) ||
        ((steps || responses) && !prompt)) {
        snprintf(err, sizeof err, "a line needs exactly one of 'ids', 'messages', 'prompt' with "
                                  "'responses', or 'prompt' with 'steps'");
        goto error;
    }
    if (!responses) {
        size_t n = 0;
        int32_t *ids = line_ids(c, root, info.per_step, &n, err, sizeof err);
        if (!ids) goto error;
        int rc = qrm_score(c, ids, n, &one);
        free(ids);
        *n_tokens += n;
        if (rc) {
            snprintf(err, sizeof err, "%s", qrm_ctx_error(c));
            goto error;
        }
        if (info.per_step) {
            put_steps(b, &one, o);
        } else {
            qrm_put_key(b, "scores");
            qj_buf_puts(b, "[");
            put_point(b, m, one.values, one.n_values);
            qj_buf_puts(b, "]");
        }
    } else {
        if (prompt->type != QJ_STRING) {
            snprintf(err, sizeof err, "'prompt' must be a string");
            goto error;
        }
        if (responses->type != QJ_ARRAY || responses->len == 0) {
            snprintf(err, sizeof err, "'responses' must be a non-empty array");
            goto error;
        }
        for (uint32_t i = 0; i < responses->len; i++)
            if (responses->u.items[i].type != (info.per_step ? QJ_ARRAY : QJ_STRING)) {
                snprintf(err, sizeof err, "'responses' element %u is not %s", i,
                         info.per_step ? "an array of steps (this model scores steps)" : "a string");
                goto error;
            }
        n_many = responses->len;
        many = calloc(n_many, sizeof *many);
        if (!many) {
            snprintf(err, sizeof err, "out of memory");
            goto error;
        }
        if (score_responses(c, prompt, responses, info.per_step, many, n_tokens, err, sizeof err))
            goto error;
        if (info.per_step) {
            qrm_put_key(b, "step_scores");
            qj_buf_puts(b, "[");
            for (uint32_t i = 0; i < n_many; i++) {
                qj_buf_puts(b, i ? ",[" : "[");
                for (size_t j = 0; j < many[i].n_points; j++)
                    qj_buf_printf(b, "%s%.9g", j ? "," : "", (double)many[i].values[j]);
                qj_buf_puts(b, "]");
            }
            qj_buf_puts(b, "]");
        }
        qrm_put_key(b, "scores");
        qj_buf_puts(b, "[");
        for (uint32_t i = 0; i < n_many; i++) {
            if (i) qj_buf_puts(b, ",");
            if (info.per_step) qrm_put_num(b, qrm_aggregate_steps(many[i].values, many[i].n_points, o->aggregate));
            else put_point(b, m, many[i].values, many[i].n_values);
        }
        qj_buf_puts(b, "]");
        if (o->mode != QRM_KEEP_ALL) {
            double *rank = malloc(n_many * sizeof *rank);
            if (!rank) {
                snprintf(err, sizeof err, "out of memory");
                goto error;
            }
            for (uint32_t i = 0; i < n_many; i++) rank[i] = rank_value(m, &many[i], o);
            qrm_put_kept(b, m, responses, rank, info.per_step ? NULL : many, o);
            free(rank);
        }
    }
    qj_buf_puts(b, "}");
    goto done;
error:
    b->len = mark; /* drop a partial result, keep the echoed fields */
    qrm_put_key(b, "error");
    qj_buf_put_string(b, err, strlen(err));
    qj_buf_puts(b, "}");
done:
    qrm_scores_free(&one);
    for (uint32_t i = 0; many && i < n_many; i++) qrm_scores_free(&many[i]);
    free(many);
    qj_free(d);
}

/* One line of in, without its newline, into *buf: at most limit bytes are
 * kept, a longer line is read to its end and dropped, so memory stays
 * bounded whatever the input. Returns the line's whole length (which may be
 * more than was kept; *oom when the buffer could not grow), or -1 at the end
 * of the input. *raw gets the bytes consumed, newline included. */
static long long read_line(FILE *in, char **buf, size_t *cap, size_t limit, int *oom, size_t *raw) {
    size_t n = 0;
    int ch = EOF;
    *oom = 0;
    flockfile(in);
    while ((ch = getc_unlocked(in)) != EOF && ch != '\n') {
        if (n < limit && !*oom) {
            if (n + 1 >= *cap) {
                size_t nc = *cap ? *cap * 2 : 4096;
                if (nc > limit + 1) nc = limit + 1;
                char *nb = realloc(*buf, nc);
                if (!nb) *oom = 1;
                else *buf = nb, *cap = nc;
            }
            if (!*oom) (*buf)[n] = (char)ch;
        }
        n++;
    }
    funlockfile(in);
    *raw = n + (ch == '\n');
    return ch == EOF && n == 0 ? -1 : (long long)n;
}

int qrm_score_stream(qrm_ctx *c, FILE *in, FILE *out, const qrm_score_opts *o) {
    char *line = NULL;
    size_t cap = 0, n_lines = 0, n_tokens = 0, limit = qrm_line_limit(c), raw;
    long long n;
    int oom;
    qj_buf b = {0};
    double t0 = qrm_now(), last = t0;
    long total = -1;
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) total = (long)st.st_size;
    long consumed = 0;
    while ((n = read_line(in, &line, &cap, limit, &oom, &raw)) >= 0) {
        consumed += (long)raw;
        size_t len = (size_t)n;
        b.len = 0;
        if (len > limit) {
            char err[QRM_ERR_MAX];
            line_too_long(err, sizeof err, n_lines + 1, len, c);
            qj_buf_puts(&b, "{\"error\":");
            qj_buf_put_string(&b, err, strlen(err));
            qj_buf_puts(&b, "}");
        } else if (!oom) {
            qrm_score_line(c, line, len, o, &b, &n_tokens);
        }
        if (b.oom || oom) {
            b.len = 0;
            b.oom = 0;
            qj_buf_puts(&b, "{\"error\":\"out of memory\"}");
        }
        fwrite(b.buf, 1, b.len, out);
        fputc('\n', out);
        fflush(out);
        n_lines++;
        double now = qrm_now();
        if (o->progress && now - last > 0.5) {
            double el = now - t0;
            fprintf(stderr, "\r%zu lines, %.1f lines/s, %.0f tokens/s", n_lines, n_lines / el,
                    n_tokens / el);
            if (total > 0 && consumed > 0)
                fprintf(stderr, ", ETA %.0f s", el * (double)(total - consumed) / (double)consumed);
            fprintf(stderr, "   ");
            last = now;
        }
    }
    if (o->progress && n_lines) fprintf(stderr, "\n");
    free(line);
    qj_buf_free(&b);
    return ferror(out) ? -1 : 0;
}

/* ---- the command ---- */

#define MAX_STEPS 1024

/* One sequence from the command line: its point(s) on one line, the values
 * of a point space-separated; a PRM prints its step scores. */
typedef struct {
    const char *ids, *text, *system, *prompt, *response;
    const char **steps;
    int n_steps;
} one_input;

static int encode_one(qrm_ctx *c, const one_input *in, int32_t **ids, size_t *n) {
    if (in->text) {
        /* the input rule without the template: the special tokens added, and a
         * doubled leading BOS dropped, so the text of a rendered conversation
         * (which starts with the template's BOS) scores as the conversation */
        int rc = qrm_tokenize(c, in->text, strlen(in->text), 1, ids, n);
        int32_t *pre = NULL;
        size_t np = 0;
        if (!rc && *n >= 2 && (*ids)[0] == (*ids)[1] && qrm_tokenize(c, "", 0, 1, &pre, &np) == QRM_OK && np >= 1 &&
            pre[0] == (*ids)[0]) {
            memmove(*ids, *ids + 1, (*n - 1) * sizeof **ids);
            (*n)--;
        }
        free(pre);
        return rc;
    }
    if (in->n_steps) {
        size_t lens[MAX_STEPS];
        for (int i = 0; i < in->n_steps; i++) lens[i] = strlen(in->steps[i]);
        return qrm_encode_steps(c, in->prompt, strlen(in->prompt), in->steps, lens, (size_t)in->n_steps, ids, n);
    }
    if (!in->system)
        return qrm_encode_prompt_response(c, in->prompt, strlen(in->prompt), in->response, strlen(in->response),
                                          ids, n);
    qj_buf b = {0};
    qj_buf_puts(&b, "[{\"role\":\"system\",\"content\":");
    qj_buf_put_string(&b, in->system, strlen(in->system));
    qj_buf_puts(&b, "},{\"role\":\"user\",\"content\":");
    qj_buf_put_string(&b, in->prompt, strlen(in->prompt));
    qj_buf_puts(&b, "},{\"role\":\"assistant\",\"content\":");
    qj_buf_put_string(&b, in->response, strlen(in->response));
    qj_buf_puts(&b, "}]");
    /* on a lost buffer the JSON is cut short, and qrm_encode_chat says so */
    int rc = qrm_encode_chat(c, b.oom ? "" : b.buf, b.oom ? 0 : b.len, ids, n, NULL);
    qj_buf_free(&b);
    return rc;
}

static int score_one(qrm_ctx *c, const one_input *in) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    if (in->ids) {
        size_t cap = strlen(in->ids) / 2 + 2;
        ids = malloc(cap * sizeof *ids);
        const char *s = in->ids;
        while (ids && *s) {
            while (*s == ' ' || *s == ',' || *s == '\t') s++;
            if (!*s) break;
            char *end;
            long v = strtol(s, &end, 10);
            if (end == s || v < 0 || v > 2147483647L || n >= cap) {
                fprintf(stderr, "qrm: --ids: '%s' is not a list of token ids\n", in->ids);
                free(ids);
                return 1;
            }
            ids[n++] = (int32_t)v;
            s = end;
        }
    } else {
        rc = encode_one(c, in, &ids, &n);
    }
    qrm_scores s = {0};
    if (!rc) rc = qrm_score(c, ids, n, &s);
    if (rc) {
        fprintf(stderr, "qrm: %s\n", qrm_ctx_error(c));
    } else {
        for (size_t p = 0; p < s.n_points; p++)
            for (int v = 0; v < s.n_values; v++)
                printf("%s%.9g", p + v ? " " : "", (double)s.values[p * (size_t)s.n_values + v]);
        printf("\n");
    }
    qrm_scores_free(&s);
    free(ids);
    return rc ? 1 : 0;
}

/* Text given on the command line is one UTF-8 rule with JSONL and `qrm
 * tokenize`: invalid bytes are an error, never replaced. */
static int check_utf8(const char *opt, const char *v) {
    if (!v) return 0;
    size_t n = strlen(v), at = qrm_utf8_validate(v, n);
    if (at == n) return 0;
    fprintf(stderr, "qrm score: %s is not valid UTF-8 (byte %zu)\n", opt, at);
    return -1;
}

enum {
    S_MODEL, S_THREADS, S_IDS, S_TEXT, S_PROMPT, S_RESPONSE, S_STEP, S_SYSTEM, S_TEMPLATE, S_INPUT,
    S_BEST, S_TOP_K, S_MIN_SCORE, S_RANK_BY, S_AGGREGATE, S_MAX_TOKENS, S_KV, S_REF, S_DPO_MODE,
    S_LOGPROBS, S_VERIFY, S_LOAD, S_N
};

static const char *const score_groups[] = {"each choose the kept responses: give one"};

static const char score_epilog[] =
    "Exactly one of --ids, --text, --prompt or --input. --text is scored as the rendered chat\n"
    "would be: tokenized with the tokenizer's special tokens (Hugging Face encode(text)), no template.\n"
    "Lines: {\"ids\": [...]}, {\"messages\": [...]}, {\"prompt\": P, \"responses\": [...]},\n"
    "{\"prompt\": P, \"steps\": [...]}, and for DPO {\"ids\": [...], \"response_start\": K}.\n"
    "Exit status: 0, 1 when the model, the input or the output fails, 2 for a usage error.\n";

int qrm_cli_score(int argc, char **argv) {
    /* 0: every core; more than 4 per core only adds contention */
    long max_threads = 4L * qrm_cpu_count();
    const cli_opt opts[S_N] = {
        [S_MODEL] = {"--model", 'm', CLI_STRING, "FILE.qrm", "required", "the model"},
        [S_THREADS] = {"--threads", 't', CLI_INT, "N", "0: every core", "threads", .lo = 0, .hi = max_threads},
        [S_IDS] = {"--ids", 0, CLI_STRING, "\"1 2 3\"", NULL, "score exactly these token ids"},
        [S_TEXT] = {"--text", 0, CLI_STRING, "TEXT", NULL, "score raw text (no chat template)"},
        [S_PROMPT] = {"--prompt", 'p', CLI_STRING, "P", NULL, "the user turn (with --response or --step)"},
        [S_RESPONSE] = {"--response", 0, CLI_STRING, "R", NULL, "the assistant turn, through the chat template"},
        [S_STEP] = {"--step", 0, CLI_STRING, "S", NULL, "a process reward model's step", .many = 1},
        [S_SYSTEM] = {"--system", 0, CLI_STRING, "TEXT", NULL, "a system turn before --prompt/--response"},
        [S_TEMPLATE] = {"--chat-template", 0, CLI_STRING, "FILE", "the model's",
                        "a Jinja chat template replacing the model's", .alt = "--chat-template-file"},
        [S_INPUT] = {"--input", 0, CLI_STRING, "FILE.jsonl|-", NULL,
                     "one JSON object per line, one output line each, in order"},
        [S_BEST] = {"--best", 0, CLI_FLAG, NULL, NULL, "keep the best response of prompt/responses lines",
                    .group = 1},
        [S_TOP_K] = {"--top-k", 0, CLI_INT, "K", NULL, "keep the K best responses", .lo = 1, .hi = 1L << 30,
                     .group = 1},
        [S_MIN_SCORE] = {"--min-score", 0, CLI_DOUBLE, "S", NULL, "keep the responses scoring at least S",
                         .group = 1},
        [S_RANK_BY] = {"--rank-by", 0, CLI_STRING, "NAME", "the first output",
                       "the output that ranks (qrm info -m lists them)"},
        [S_AGGREGATE] = {"--aggregate", 0, CLI_CHOICE, NULL, "min", "a PRM's steps into one score",
                         .choices = "min|last|mean|prod"},
        [S_MAX_TOKENS] = {"--max-tokens", 'c', CLI_INT, "N", "the model's context, or 2 GiB",
                          "KV cache cap in tokens", .lo = 1, .hi = 1L << 30, .alt = "--ctx-size"},
        [S_KV] = {"--kv", 0, CLI_CHOICE, NULL, "f16 for int8/int4 models, f32 otherwise", "KV cache type",
                  .choices = "f32|f16|q8"},
        [S_REF] = {"--ref", 0, CLI_STRING, "REFERENCE.qrm", NULL,
                   "DPO: the reference model (both converted with --head lm)"},
        [S_DPO_MODE] = {"--dpo-mode", 0, CLI_CHOICE, NULL, "sum", "DPO without a reference",
                        .choices = "sum|avg|norm"},
        [S_LOGPROBS] = {"--logprobs", 0, CLI_FLAG, NULL, NULL, "DPO: add the per-token log-probabilities"},
        [S_VERIFY] = {"--verify", 0, CLI_FLAG, NULL, NULL,
                      "check the file's structure and data checksum first (reads it all)"},
        [S_LOAD] = CLI_OPT_LOAD,
    };
    const cli_spec spec = {
        .prog = "qrm score",
        .about = "score token ids, text, a conversation, or a JSONL stream with a .qrm reward model",
        .usage = "qrm score -m FILE.qrm [-t N] (--ids \"1 2 3\" | --text T |\n"
                 "--prompt P [--system S] (--response R | --step S...) | --input FILE.jsonl|-)\n"
                 "[--best | --top-k K | --min-score S] [--rank-by NAME] [--aggregate min|last|mean|prod]\n"
                 "[--max-tokens N] [--kv f32|f16|q8] [--chat-template FILE] [--verify] [--load map|copy]\n"
                 "log-probability models: [--ref REFERENCE.qrm | --dpo-mode sum|avg|norm] [--logprobs]\n",
        .opts = opts,
        .n_opts = S_N,
        .epilog = score_epilog,
        .groups = (const char **)score_groups,
    };
    cli_val v[S_N];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    if (v[S_STEP].count > MAX_STEPS) {
        cli_free(&spec, v);
        return cli_usage_error(&spec, "more than %d --step options", MAX_STEPS);
    }
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    if (v[S_THREADS].count) p.n_threads = (int)v[S_THREADS].i;
    if (v[S_MAX_TOKENS].count) p.max_tokens = (size_t)v[S_MAX_TOKENS].i;
    if (v[S_KV].count) p.kv_type = v[S_KV].choice == 0 ? QRM_KV_F32 : v[S_KV].choice == 1 ? QRM_KV_F16 : QRM_KV_Q8;
    if (v[S_BEST].count) o.mode = QRM_KEEP_BEST;
    if (v[S_TOP_K].count) o.mode = QRM_KEEP_TOP_K, o.top_k = (int)v[S_TOP_K].i;
    if (v[S_MIN_SCORE].count) o.mode = QRM_KEEP_MIN_SCORE, o.min_score = v[S_MIN_SCORE].d;
    if (v[S_AGGREGATE].count) o.aggregate = (qrm_aggregate)v[S_AGGREGATE].choice;
    if (v[S_DPO_MODE].count) o.dpo_mode = (qrm_dpo_mode)v[S_DPO_MODE].choice;
    o.logprobs = v[S_LOGPROBS].count > 0;
    const char *model = v[S_MODEL].str, *input = v[S_INPUT].str, *rank_by = v[S_RANK_BY].str;
    const char *ref_path = v[S_REF].str, *template_path = v[S_TEMPLATE].str;
    int dpo_mode = v[S_DPO_MODE].count > 0, verify = v[S_VERIFY].count > 0;
    qrm_load load = cli_load(&v[S_LOAD]);
    one_input one = {.ids = v[S_IDS].str, .text = v[S_TEXT].str, .system = v[S_SYSTEM].str,
                     .prompt = v[S_PROMPT].str, .response = v[S_RESPONSE].str, .steps = v[S_STEP].all,
                     .n_steps = v[S_STEP].count};
    const char *problem = NULL;
    if (!model) problem = "no model: give -m FILE.qrm";
    else if (!!one.ids + !!one.text + !!one.prompt + !!input != 1)
        problem = "give exactly one of --ids, --text, --prompt or --input";
    else if (one.prompt && !one.response == !one.n_steps) problem = "--prompt takes either --response or --step";
    else if (!one.prompt && (one.response || one.n_steps)) problem = "--response and --step go with --prompt";
    else if (one.system && !one.response) problem = "--system goes with --prompt and --response";
    if (problem) {
        cli_usage_error(&spec, "%s", problem);
        cli_free(&spec, v);
        return 2;
    }
    if (check_utf8("--prompt", one.prompt) || check_utf8("--response", one.response) ||
        check_utf8("--text", one.text) || check_utf8("--system", one.system)) {
        cli_free(&spec, v);
        return 2;
    }
    for (int i = 0; i < one.n_steps; i++)
        if (check_utf8("--step", one.steps[i])) {
            cli_free(&spec, v);
            return 2;
        }
    int rc = 0;
    char err[QRM_ERR_MAX];
    char *tmpl_src = NULL;
    size_t tmpl_len = 0;
    qrm_model *m = NULL, *rm = NULL;
    qrm_ctx *c = NULL;
    qrm_model_info info;
    if (input && strcmp(input, "-")) {
        struct stat st;
        if (stat(input, &st) == 0 && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "qrm: --input '%s' is a directory\n", input);
            rc = 1;
            goto done;
        }
    }
    if (template_path && !(tmpl_src = qrm_read_file(template_path, &tmpl_len, err, sizeof err))) {
        fprintf(stderr, "qrm: --chat-template: %s\n", err);
        rc = 1;
        goto done;
    }
    if (verify) { /* the whole file before any score, as qrm verify */
        char msg[QRM_ERR_MAX + 64];
        if (qrm_verify_file(model, msg, sizeof msg)) {
            fprintf(stderr, "qrm: %s: %s\n", model, msg);
            rc = 1;
            goto done;
        }
    }
    if (!(m = qrm_model_open_with(model, load, err, sizeof err))) {
        fprintf(stderr, "qrm: %s\n", err);
        rc = 1;
        goto done;
    }
    qrm_model_get_info(m, &info);
    if (rank_by) {
        o.rank_by = -1;
        for (int i = 0; i < info.n_outputs; i++)
            if (!strcmp(qrm_model_output_name(m, i), rank_by)) o.rank_by = i;
        if (o.rank_by < 0 || info.per_step) {
            fprintf(stderr, "qrm: --rank-by '%s': %s\n", rank_by,
                    info.per_step ? "a process reward model ranks by --aggregate"
                                  : "not one of the model's outputs (qrm info -m lists them)");
            rc = 1;
            goto done;
        }
    }
    if ((ref_path || dpo_mode || o.logprobs) && !info.logprobs)
        problem = "--ref, --dpo-mode and --logprobs need a log-probability model (converted with --head lm)";
    else if (ref_path && dpo_mode)
        problem = "--dpo-mode chooses a reference-free variant; with --ref the reward is the difference of sums";
    else if (info.logprobs && !input)
        problem = "a log-probability model scores --input lines (ids with response_start, messages, or prompt with responses)";
    if (!problem && ref_path) {
        rm = qrm_model_open_with(ref_path, load, err, sizeof err);
        qrm_model_info ri;
        const char *t1, *c1, *t2, *c2;
        size_t tl1, cl1, tl2, cl2;
        if (!rm) {
            fprintf(stderr, "qrm: --ref: %s\n", err);
            rc = 1;
            goto done;
        }
        qrm_model_get_info(rm, &ri);
        if (!ri.logprobs) problem = "--ref: the reference is not a log-probability model (convert it with --head lm)";
        else if (qrm_model_tokenizer_blobs(m, &t1, &tl1, &c1, &cl1) || qrm_model_tokenizer_blobs(rm, &t2, &tl2, &c2, &cl2) ||
                 tl1 != tl2 || cl1 != cl2 || memcmp(t1, t2, tl1) || memcmp(c1, c2, cl1))
            problem = "--ref: the policy and the reference must share one tokenizer (their tokenizer files differ)";
        else if (ri.vocab_size != info.vocab_size)
            problem = "--ref: the policy and the reference have different vocabulary sizes";
    }
    if (problem) {
        fprintf(stderr, "qrm: %s\n", problem);
        rc = 1;
        goto done;
    }
    c = qrm_ctx_new(m, &p, err, sizeof err);
    if (c && rm && !(o.ref = qrm_ctx_new(rm, &p, err, sizeof err))) {
        qrm_ctx_free(c);
        c = NULL;
    }
    if (!c) {
        fprintf(stderr, "qrm: %s\n", err);
        rc = 1;
        goto done;
    }
    /* the reference renders the same conversations as the policy */
    qrm_ctx *failed = NULL;
    if (tmpl_src && qrm_ctx_set_chat_template(c, tmpl_src, tmpl_len)) failed = c;
    else if (tmpl_src && o.ref && qrm_ctx_set_chat_template(o.ref, tmpl_src, tmpl_len)) failed = o.ref;
    if (failed) {
        fprintf(stderr, "qrm: --chat-template %s: %s\n", template_path, qrm_ctx_error(failed));
        rc = 1;
        goto done;
    }
    if (input) {
        FILE *in = strcmp(input, "-") ? fopen(input, "rb") : stdin;
        if (!in) {
            fprintf(stderr, "qrm: cannot open '%s': %s\n", input, strerror(errno));
            rc = 1;
        } else {
            o.progress = isatty(2);
            rc = qrm_score_stream(c, in, stdout, &o) ? 1 : 0;
            if (ferror(in)) fprintf(stderr, "qrm: reading '%s' failed\n", input), rc = 1;
            if (in != stdin) fclose(in);
        }
    } else {
        rc = score_one(c, &one);
    }
    /* a full disk or a closed pipe is an error, not a lost result */
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "qrm: writing the output failed: %s\n", strerror(errno));
        rc = 1;
    }
done:
    qrm_ctx_free(o.ref);
    qrm_ctx_free(c);
    qrm_model_close(rm);
    qrm_model_close(m);
    free(tmpl_src);
    cli_free(&spec, v);
    return rc;
}
