/* `qrm score` with several -m: an ensemble over a JSONL file. Each model
 * scores every line exactly as `qrm score --input` does (its own tokenizer
 * and template, tools/score_jsonl.c); the scores are standardized per model
 * over the whole file and combined (tools/eval_metrics.c), which is why the
 * whole file is read before the first line is written. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_opts.h"
#include "eval.h"
#include "eval_metrics.h"
#include "json.h"
#include "platform.h"
#include "score_jsonl.h"

static const char ens_epilog[] =
    "Lines as for one model (ids, messages, prompt + responses). Each model's scores are\n"
    "standardized (z-score with that model's mean and std over every score of the file),\n"
    "then combined per response by --combine. A line gets \"scores\" (combined) and\n"
    "\"model_scores\" (each model's raw scores, in -m order), or \"error\". Heads with several\n"
    "outputs use the first. The single-model options (--best, --ids, ...) do not apply.\n"
    "Exit status: 0, 1 when a model, the input or the output fails, 2 for a usage error.\n";

enum { N_MODEL, N_INPUT, N_COMBINE, N_THREADS, N_MAX_TOKENS, N_N };

/* Lines of the file, without their newline. */
static char **read_lines(const char *path, size_t *n) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    struct stat st;
    if (!f || fstat(fileno(f), &st) || S_ISDIR(st.st_mode)) {
        if (f && f != stdin) fclose(f);
        return NULL;
    }
    char **lines = NULL, *line = NULL;
    size_t cap = 0, lcap = 0;
    ssize_t r;
    *n = 0;
    while ((r = getline(&line, &cap, f)) >= 0) {
        if (r > 0 && line[r - 1] == '\n') line[--r] = 0;
        if (*n == lcap) {
            lcap = lcap ? 2 * lcap : 64;
            char **nl = realloc(lines, lcap * sizeof *nl);
            if (!nl) break;
            lines = nl;
        }
        lines[(*n)++] = strdup(line);
    }
    free(line);
    if (f != stdin) fclose(f);
    return lines ? lines : calloc(1, sizeof *lines);
}

/* The first output of each entry of "scores": a number, or an object's first member. */
static int first_outputs(const qj_value *scores, double *out) {
    for (uint32_t i = 0; i < scores->len; i++) {
        const qj_value *v = &scores->u.items[i];
        if (v->type == QJ_OBJECT && v->len) v = &v->u.members[0].value;
        if (v->type != QJ_NUMBER) return -1;
        out[i] = v->u.num;
    }
    return 0;
}

int qrm_cli_score_ensemble(int argc, char **argv) {
    long max_threads = 4L * qrm_cpu_count();
    const cli_opt opts[N_N] = {
        [N_MODEL] = {"--model", 'm', CLI_STRING, "FILE.qrm", "required", "a model of the ensemble (2 to 64)",
                     .many = 1},
        [N_INPUT] = {"--input", 0, CLI_STRING, "FILE.jsonl|-", "required", "one JSON object per line"},
        [N_COMBINE] = {"--combine", 0, CLI_STRING, "mean|min|median|mean-std:K", "mean",
                       "how the standardized scores combine"},
        [N_THREADS] = {"--threads", 't', CLI_INT, "N", "0: every core", "threads", .lo = 0, .hi = max_threads},
        [N_MAX_TOKENS] = {"--max-tokens", 'c', CLI_INT, "N", "the model's context, or 2 GiB",
                          "KV cache cap in tokens", .lo = 1, .hi = 1L << 30, .alt = "--ctx-size"},
    };
    const cli_spec spec = {
        .prog = "qrm score",
        .about = "an ensemble of reward models over a JSONL file (several -m)",
        .usage = "qrm score -m A.qrm -m B.qrm [...] --input FILE.jsonl|- [--combine C] [-t N] [--max-tokens N]\n",
        .opts = opts,
        .n_opts = N_N,
        .epilog = ens_epilog,
    };
    cli_val v[N_N];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    const char *paths[64];
    int n_models = v[N_MODEL].count;
    for (int k = 0; k < n_models && k < 64; k++) paths[k] = v[N_MODEL].all[k];
    cli_free(&spec, v);   /* the values point into argv, which stays */
    const char *input = v[N_INPUT].str, *combine_s = v[N_COMBINE].str ? v[N_COMBINE].str : "mean";
    long threads = v[N_THREADS].count ? v[N_THREADS].i : 0, max_tokens = v[N_MAX_TOKENS].count ? v[N_MAX_TOKENS].i : 0;
    qrm_combine comb = {QRM_COMBINE_MEAN, 0};
    if (n_models > 64) return cli_usage_error(&spec, "at most 64 models (-m given %d times)", n_models);
    if (qrm_combine_parse(combine_s, &comb))
        return cli_usage_error(&spec, "--combine wants mean, min, median or mean-std:K (K >= 0), not '%s'", combine_s);
    if (!input) return cli_usage_error(&spec, "several -m need --input FILE.jsonl");
    size_t n_lines;
    char **lines = read_lines(input, &n_lines);
    if (!lines) {
        fprintf(stderr, "qrm score: cannot read '%s'\n", input);
        return 1;
    }
    int rc = 1;
    /* per line: the echo and result of model 0, each model's scores */
    qj_doc **first = calloc(n_lines + 1, sizeof *first);
    char **errors = calloc(n_lines + 1, sizeof *errors);
    size_t *n_resp = calloc(n_lines + 1, sizeof *n_resp), *at = calloc(n_lines + 1, sizeof *at);
    double **raw = calloc((size_t)n_models, sizeof *raw);
    if (!first || !errors || !n_resp || !at || !raw) goto out;
    size_t total = 0;
    for (int k = 0; k < n_models; k++) {
        char err[QRM_ERR_MAX];
        qrm_model *m = qrm_model_open(paths[k], err, sizeof err);
        if (!m) {
            fprintf(stderr, "qrm score: %s\n", err);
            goto out;
        }
        qrm_model_info in;
        qrm_model_get_info(m, &in);
        qrm_ctx_params p;
        qrm_ctx_params_default(&p);
        p.n_threads = (int)threads;
        p.max_tokens = (size_t)max_tokens;
        qrm_ctx *c = in.per_step || in.logprobs ? NULL : qrm_ctx_new(m, &p, err, sizeof err);
        if (!c) {
            fprintf(stderr, "qrm score: %s: %s\n", paths[k],
                    in.per_step || in.logprobs ? "an ensemble needs sequence heads (not a PRM or a log-probability model)" : err);
            qrm_model_close(m);
            goto out;
        }
        qrm_score_opts o = {0};
        qj_buf b = {0};
        /* model 0 decides how many scores each line has; the others fill those slots */
        if (k > 0 && !(raw[k] = calloc(total + 1, sizeof **raw))) {
            qrm_ctx_free(c);
            qrm_model_close(m);
            goto out;
        }
        size_t cap0 = 0;
        for (size_t i = 0; i < n_lines; i++) {
            size_t ntok = 0;
            b.len = 0;
            qrm_score_line(c, lines[i], strlen(lines[i]), &o, &b, &ntok);
            qj_doc *d = b.oom ? NULL : qj_parse(b.buf, b.len, err, sizeof err);
            const qj_value *r = d ? qj_root(d) : NULL;
            const char *e = r ? qj_get_str(r, "error") : "out of memory";
            const qj_value *sc = r ? qj_get(r, "scores") : NULL;
            if (!errors[i] && (e || !sc)) {
                char msg[QRM_ERR_MAX + 64];
                snprintf(msg, sizeof msg, "%s: %s", paths[k], e ? e : "no scores");
                errors[i] = strdup(msg);
            }
            if (k == 0 && d && sc && !e) {
                n_resp[i] = sc->len;
                at[i] = total;
                total += sc->len;
                if (total + 1 > cap0) {
                    cap0 = 2 * (total + 1);
                    double *nr = realloc(raw[0], cap0 * sizeof *nr);
                    if (!nr) {
                        qj_free(d);
                        qrm_ctx_free(c);
                        qrm_model_close(m);
                        goto out;
                    }
                    raw[0] = nr;
                }
            }
            if (!errors[i] && sc && (sc->len != n_resp[i] || first_outputs(sc, raw[k] + at[i])))
                errors[i] = strdup(sc->len != n_resp[i] ? "the models give different numbers of scores"
                                                        : "a score is not a number");
            if (k == 0) first[i] = d;
            else qj_free(d);
        }
        qj_buf_free(&b);
        qrm_ctx_free(c);
        qrm_model_close(m);
        if (!raw[k] && !(raw[k] = calloc(1, sizeof **raw))) goto out;
    }
    /* standardize over the responses every model scored */
    size_t n_ok = 0;
    for (size_t i = 0; i < n_lines; i++)
        if (!errors[i]) n_ok += n_resp[i];
    double **cols = calloc((size_t)n_models, sizeof *cols), *comb_out = calloc(n_ok + 1, sizeof *comb_out);
    if (!cols || !comb_out) goto out;
    for (int k = 0; k < n_models; k++) {
        cols[k] = calloc(n_ok + 1, sizeof **cols);
        if (!cols[k]) break;
        size_t o = 0;
        for (size_t i = 0; i < n_lines; i++)
            if (!errors[i])
                for (size_t j = 0; j < n_resp[i]; j++) cols[k][o++] = raw[k][at[i] + j];
    }
    for (int k = 0; k < n_models; k++)
        if (!cols[k]) {
            for (int j = 0; j < n_models; j++) free(cols[j]);
            free(cols), free(comb_out);
            goto out;
        }
    if (n_ok) qrm_combine_scores((const double *const *)cols, (size_t)n_models, n_ok, &comb, comb_out);
    size_t o = 0;
    qj_buf b = {0};
    for (size_t i = 0; i < n_lines; i++) {
        b.len = 0;
        qj_buf_puts(&b, "{");
        const qj_value *r = first[i] ? qj_root(first[i]) : NULL;
        for (uint32_t j = 0; r && j < r->len; j++) {
            const char *key = r->u.members[j].key;
            if (!strcmp(key, "scores") || !strcmp(key, "error") || !strcmp(key, "kept")) continue;
            if (b.len > 1) qj_buf_puts(&b, ",");
            qj_buf_put_string(&b, key, r->u.members[j].key_len);
            qj_buf_puts(&b, ":");
            qj_buf_put_value(&b, &r->u.members[j].value);
        }
        if (errors[i]) {
            qrm_put_key(&b, "error");
            qj_buf_put_string(&b, errors[i], strlen(errors[i]));
        } else {
            qrm_put_key(&b, "scores");
            qj_buf_puts(&b, "[");
            for (size_t j = 0; j < n_resp[i]; j++) {
                if (j) qj_buf_puts(&b, ",");
                qrm_put_num(&b, comb_out[o++]);
            }
            qj_buf_puts(&b, "]");
            qrm_put_key(&b, "model_scores");
            qj_buf_puts(&b, "[");
            for (int k = 0; k < n_models; k++) {
                qj_buf_puts(&b, k ? ",[" : "[");
                for (size_t j = 0; j < n_resp[i]; j++) {
                    if (j) qj_buf_puts(&b, ",");
                    qrm_put_num(&b, raw[k][at[i] + j]);
                }
                qj_buf_puts(&b, "]");
            }
            qj_buf_puts(&b, "]");
        }
        qj_buf_puts(&b, "}\n");
        fwrite(b.buf, 1, b.len, stdout);
    }
    qj_buf_free(&b);
    rc = fflush(stdout) || ferror(stdout) ? 1 : 0;
    if (rc) fprintf(stderr, "qrm score: cannot write the output\n");
    for (int k = 0; k < n_models; k++) free(cols[k]);
    free(cols), free(comb_out);
out:
    for (size_t i = 0; i < n_lines; i++) {
        free(lines[i]);
        if (first) qj_free(first[i]);
        if (errors) free(errors[i]);
    }
    for (int k = 0; raw && k < n_models; k++) free(raw[k]);
    free(lines), free(first), free(errors), free(n_resp), free(at), free(raw);
    return rc;
}
