/* `qrm score`: one sequence from the command line, or a JSONL stream where
 * every input line gets exactly one output line, in order, flushed as soon
 * as it is scored. A line that cannot be scored gets {"error": ...} and
 * the run goes on. */
#include "score_jsonl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "platform.h"

#define MAX_LINE (64u << 20)

static void put_scores(qj_buf *b, const float *s, int no) {
    if (no == 1) {
        qj_buf_printf(b, "%.9g", (double)s[0]);
        return;
    }
    qj_buf_puts(b, "[");
    for (int o = 0; o < no; o++) qj_buf_printf(b, "%s%.9g", o ? "," : "", (double)s[o]);
    qj_buf_puts(b, "]");
}

/* ids from a JSON array of integers; NULL and a message when it is not one. */
static int32_t *ids_from_json(const qj_value *a, size_t *n, char *err, size_t errlen) {
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
    float score;
} ranked;

static int by_score_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->index - y->index;
}

/* The kept responses for --best / --top-k / --min-score. */
static void put_kept(qj_buf *b, const qj_value *responses, const float *scores, int no,
                     const qrm_score_opts *o) {
    uint32_t n = responses->len;
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) {
        b->oom = 1;
        return;
    }
    for (uint32_t i = 0; i < n; i++) r[i].index = (int)i, r[i].score = scores[(size_t)i * no];
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
        if (o->mode == QRM_KEEP_MIN_SCORE && !(r[i].score >= (float)o->min_score)) continue;
        const qj_value *resp = &responses->u.items[r[i].index];
        qj_buf_printf(b, "%s{\"index\":%d,\"response\":", first ? "" : ",", r[i].index);
        qj_buf_put_string(b, resp->u.str, resp->len);
        qj_buf_puts(b, ",\"score\":");
        put_scores(b, scores + (size_t)r[i].index * no, no);
        qj_buf_puts(b, "}");
        first = 0;
    }
    qj_buf_puts(b, "]");
    free(r);
}

/* Scores one prompt with N responses: each conversation is encoded with the
 * model's input rule, the longest common token prefix runs once, and the
 * rest of every response runs in one batch against it. */
static int score_responses(qrm_ctx *c, const qj_value *prompt, const qj_value *responses,
                           float *scores, size_t *n_tokens, char *err, size_t errlen) {
    uint32_t n = responses->len;
    int32_t **ids = calloc(n, sizeof *ids);
    size_t *len = calloc(n, sizeof *len);
    int rc = -1;
    if (!ids || !len) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const qj_value *r = &responses->u.items[i];
        if (qrm_encode_prompt_response(c, prompt->u.str, prompt->len, r->u.str, r->len, &ids[i],
                                       &len[i])) {
            snprintf(err, errlen, "response %u: %s", i, qrm_ctx_error(c));
            goto out;
        }
        if (len[i] == 0) {
            snprintf(err, errlen, "response %u encodes to no tokens", i);
            goto out;
        }
        *n_tokens += len[i];
    }
    /* longest common prefix, leaving every response at least one token */
    size_t p = len[0] - 1;
    for (uint32_t i = 1; i < n; i++) {
        size_t j = 0;
        while (j < p && j < len[i] - 1 && ids[i][j] == ids[0][j]) j++;
        p = j;
    }
    const int32_t **tails = malloc(n * sizeof *tails);
    size_t *tail_len = malloc(n * sizeof *tail_len);
    if (!tails || !tail_len) {
        free(tails), free(tail_len);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) tails[i] = ids[i] + p, tail_len[i] = len[i] - p;
    rc = qrm_score_shared_prefix(c, ids[0], p, tails, tail_len, n, scores);
    if (rc) snprintf(err, errlen, "%s", qrm_ctx_error(c));
    free(tails), free(tail_len);
out:
    for (uint32_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids), free(len);
    return rc ? -1 : 0;
}

static int is_request_key(const char *k) {
    return !strcmp(k, "ids") || !strcmp(k, "prompt") || !strcmp(k, "responses") ||
           !strcmp(k, "messages");
}

void qrm_score_line(qrm_ctx *c, const char *line, size_t len, const qrm_score_opts *o,
                    qj_buf *b, size_t *n_tokens) {
    char err[QRM_ERR_MAX] = "";
    const qrm_model *m = qrm_ctx_model(c);
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    int no = info.n_outputs;
    qj_doc *d = NULL;
    float *scores = NULL;
    size_t mark;
    qj_buf_puts(b, "{");
    mark = b->len;

    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    if (k == len) {
        snprintf(err, sizeof err, "empty line");
        goto error;
    }
    if (len > MAX_LINE) {
        snprintf(err, sizeof err, "line longer than %u bytes", MAX_LINE);
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
    /* echo the caller's other fields first, in their order */
    for (uint32_t i = 0; i < root->len; i++) {
        const qj_member *mem = &root->u.members[i];
        if (is_request_key(mem->key)) continue;
        if (b->len > mark) qj_buf_puts(b, ",");
        qj_buf_put_string(b, mem->key, mem->key_len);
        qj_buf_puts(b, ":");
        qj_buf_put_value(b, &mem->value);
    }
    mark = b->len;
    const qj_value *ids_v = qj_get(root, "ids"), *prompt = qj_get(root, "prompt"),
                   *responses = qj_get(root, "responses"), *messages = qj_get(root, "messages");
    if (!!ids_v + !!messages + !!(prompt || responses) != 1) {
        snprintf(err, sizeof err, "a line needs exactly one of 'ids', 'messages', or 'prompt' with 'responses'");
        goto error;
    }
    if (ids_v || messages) {
        int32_t *ids = NULL;
        size_t n = 0;
        scores = malloc((size_t)no * sizeof *scores);
        if (!scores) {
            snprintf(err, sizeof err, "out of memory");
            goto error;
        }
        if (ids_v) {
            ids = ids_from_json(ids_v, &n, err, sizeof err);
            if (!ids) goto error;
        } else {
            qj_buf mb = {0};
            qj_buf_put_value(&mb, messages);
            int rc = mb.oom ? QRM_ENOMEM : messages->type != QJ_ARRAY ? QRM_EINVAL
                     : qrm_encode_chat(c, mb.buf, mb.len, &ids, &n, NULL);
            qj_buf_free(&mb);
            if (rc) {
                snprintf(err, sizeof err, "%s", messages->type != QJ_ARRAY
                         ? "'messages' must be an array of {\"role\", \"content\"} objects"
                         : qrm_ctx_error(c));
                goto error;
            }
        }
        int rc = qrm_score_ids(c, ids, n, scores);
        free(ids);
        *n_tokens += n;
        if (rc) {
            snprintf(err, sizeof err, "%s", qrm_ctx_error(c));
            goto error;
        }
        qj_buf_puts(b, b->len > 1 ? ",\"scores\":[" : "\"scores\":[");
        put_scores(b, scores, no);
        qj_buf_puts(b, "]");
    } else {
        if (!prompt || prompt->type != QJ_STRING) {
            snprintf(err, sizeof err, "'prompt' must be a string");
            goto error;
        }
        if (!responses || responses->type != QJ_ARRAY || responses->len == 0) {
            snprintf(err, sizeof err, "'responses' must be a non-empty array of strings");
            goto error;
        }
        for (uint32_t i = 0; i < responses->len; i++)
            if (responses->u.items[i].type != QJ_STRING) {
                snprintf(err, sizeof err, "'responses' element %u is not a string", i);
                goto error;
            }
        scores = malloc((size_t)responses->len * no * sizeof *scores);
        if (!scores) {
            snprintf(err, sizeof err, "out of memory");
            goto error;
        }
        if (score_responses(c, prompt, responses, scores, n_tokens, err, sizeof err)) goto error;
        qj_buf_puts(b, b->len > 1 ? ",\"scores\":[" : "\"scores\":[");
        for (uint32_t i = 0; i < responses->len; i++) {
            if (i) qj_buf_puts(b, ",");
            put_scores(b, scores + (size_t)i * no, no);
        }
        qj_buf_puts(b, "]");
        if (o->mode != QRM_KEEP_ALL) put_kept(b, responses, scores, no, o);
    }
    qj_buf_puts(b, "}");
    free(scores);
    qj_free(d);
    return;
error:
    b->len = mark; /* drop a partial result, keep the echoed fields */
    qj_buf_puts(b, b->len > 1 ? ",\"error\":" : "\"error\":");
    qj_buf_put_string(b, err, strlen(err));
    qj_buf_puts(b, "}");
    free(scores);
    qj_free(d);
}

int qrm_score_stream(qrm_ctx *c, FILE *in, FILE *out, const qrm_score_opts *o) {
    char *line = NULL;
    size_t cap = 0, n_lines = 0, n_tokens = 0;
    ssize_t n;
    qj_buf b = {0};
    double t0 = qrm_now(), last = t0;
    long total = -1;
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) total = (long)st.st_size;
    long consumed = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        consumed += n;
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n') len--;
        b.len = 0;
        qrm_score_line(c, line, len, o, &b, &n_tokens);
        if (b.oom) {
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

static int usage(void) {
    fprintf(stderr, "usage: qrm score -m FILE.qrm [-t N] (--ids \"1 2 3\" | --prompt P --response R |\n"
                    "       --input FILE.jsonl|-) [--best | --top-k K | --min-score S] [--max-tokens N]\n"
                    "       [--kv f32|f16]\n");
    return 2;
}

int qrm_cli_score(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *prompt = NULL, *response = NULL, *input = NULL;
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") && v) model = v, i++;
        else if (!strcmp(a, "-t") && v) p.n_threads = atoi(v), i++;
        else if (!strcmp(a, "--ids") && v) ids_s = v, i++;
        else if (!strcmp(a, "--prompt") && v) prompt = v, i++;
        else if (!strcmp(a, "--response") && v) response = v, i++;
        else if (!strcmp(a, "--input") && v) input = v, i++;
        else if (!strcmp(a, "--max-tokens") && v) p.max_tokens = (size_t)atol(v), i++;
        else if (!strcmp(a, "--kv") && v && !strcmp(v, "f32")) p.kv_type = QRM_KV_F32, i++;
        else if (!strcmp(a, "--kv") && v && !strcmp(v, "f16")) p.kv_type = QRM_KV_F16, i++;
        else if (!strcmp(a, "--best")) o.mode = QRM_KEEP_BEST;
        else if (!strcmp(a, "--top-k") && v) o.mode = QRM_KEEP_TOP_K, o.top_k = atoi(v), i++;
        else if (!strcmp(a, "--min-score") && v) o.mode = QRM_KEEP_MIN_SCORE, o.min_score = atof(v), i++;
        else {
            fprintf(stderr, "qrm score: unknown or incomplete option '%s'\n", a);
            return usage();
        }
    }
    if (!model || (!!ids_s + !!(prompt || response) + !!input) != 1 || (!!prompt != !!response))
        return usage();
    if (p.n_threads < 0 || (o.mode == QRM_KEEP_TOP_K && o.top_k < 1)) return usage();
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(model, err, sizeof err);
    if (!m) {
        fprintf(stderr, "qrm: %s\n", err);
        return 1;
    }
    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
    if (!c) {
        fprintf(stderr, "qrm: %s\n", err);
        qrm_model_close(m);
        return 1;
    }
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    int rc = 0;
    if (input) {
        FILE *in = strcmp(input, "-") ? fopen(input, "rb") : stdin;
        if (!in) {
            fprintf(stderr, "qrm: cannot open '%s'\n", input);
            rc = 1;
        } else {
            o.progress = isatty(2);
            rc = qrm_score_stream(c, in, stdout, &o) ? 1 : 0;
            if (in != stdin) fclose(in);
        }
    } else {
        int32_t *ids = NULL;
        size_t n = 0;
        float scores[64];
        if (ids_s) {
            size_t cap = strlen(ids_s) / 2 + 2;
            ids = malloc(cap * sizeof *ids);
            const char *s = ids_s;
            while (ids && *s) {
                while (*s == ' ' || *s == ',' || *s == '\t') s++;
                if (!*s) break;
                char *end;
                long v = strtol(s, &end, 10);
                if (end == s || v < 0 || v > 2147483647L || n >= cap) {
                    fprintf(stderr, "qrm: --ids: '%s' is not a list of token ids\n", ids_s);
                    rc = 1;
                    break;
                }
                ids[n++] = (int32_t)v;
                s = end;
            }
        } else if (qrm_encode_prompt_response(c, prompt, strlen(prompt), response,
                                              strlen(response), &ids, &n)) {
            fprintf(stderr, "qrm: %s\n", qrm_ctx_error(c));
            rc = 1;
        }
        if (!rc && qrm_score_ids(c, ids, n, scores)) {
            fprintf(stderr, "qrm: %s\n", qrm_ctx_error(c));
            rc = 1;
        }
        if (!rc) {
            for (int i = 0; i < info.n_outputs; i++) printf("%s%.9g", i ? " " : "", (double)scores[i]);
            printf("\n");
        }
        free(ids);
    }
    qrm_ctx_free(c);
    qrm_model_close(m);
    return rc;
}
