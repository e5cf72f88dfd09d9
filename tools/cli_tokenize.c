/* `qrm tokenize`: token ids of text, JSONL lines, or conversations rendered by the chat
 * template (the interface of ../shared/CONTRACT.md, "Tokenizing"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_template.h"
#include "cli_commands.h"
#include "cli_opts.h"
#include "cpu.h"
#include "format.h"
#include "json.h"
#include "platform.h"
#include "qrm.h"
#include "text.h"
#include "tokenizer.h"
#include "verify.h"

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "qrm: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

/* ---- tokenize ---- */

static qrm_tokenizer *load_tokenizer_dir(const char *dir) {
    char err[QRM_ERR_MAX], path[4096];
    size_t tl, cl;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    char *tj = qrm_read_file(path, &tl, err, sizeof err);
    if (!tj) die("%s", err);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *cj = qrm_read_file(path, &cl, err, sizeof err);
    if (!cj) die("%s", err);
    qrm_tokenizer *t = qrm_tokenizer_new(tj, tl, cj, cl, err, sizeof err);
    free(tj), free(cj);
    if (!t) die("%s", err);
    return t;
}

static void print_ids(const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
}

/* Reads lines of a file ("-" for stdin) and calls fn on each. */
static void for_lines(const char *path, void (*fn)(const char *, size_t, void *), void *arg) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) die("cannot open '%s'", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
        fn(line, (size_t)n, arg);
        fflush(stdout);
    }
    free(line);
    if (f != stdin) fclose(f);
}

typedef struct {
    qrm_tokenizer *tok;
    qrm_template *tmpl;
    qj_doc *vars;
    int special;
} tok_state;

static void tokenize_line(const char *line, size_t len, void *arg) {
    tok_state *s = arg;
    char err[QRM_ERR_MAX];
    qj_doc *d = qj_parse(line, len, err, sizeof err);
    const char *text = d ? qj_get_str(qj_root(d), "text") : NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    qj_buf b = {0};
    if (!d) {
        qj_buf_puts(&b, "{\"error\":");
        qj_buf_put_string(&b, err, strlen(err));
        qj_buf_puts(&b, "}");
    } else if (!text) {
        qj_buf_puts(&b, "{\"error\":\"missing string field 'text'\"}");
    } else if (qrm_tokenizer_encode(s->tok, text, qj_get(qj_root(d), "text")->len, s->special, &ids,
                                    &n, err, sizeof err)) {
        qj_buf_puts(&b, "{\"error\":");
        qj_buf_put_string(&b, err, strlen(err));
        qj_buf_puts(&b, "}");
    } else {
        qj_buf_puts(&b, "{\"ids\":[");
        for (size_t i = 0; i < n; i++) qj_buf_printf(&b, "%s%d", i ? "," : "", ids[i]);
        qj_buf_puts(&b, "]}");
    }
    fwrite(b.buf, 1, b.len, stdout);
    putchar('\n');
    qj_buf_free(&b);
    free(ids);
    qj_free(d);
}

static void chat_line(const char *line, size_t len, void *arg) {
    tok_state *s = arg;
    char err[QRM_ERR_MAX], *out = NULL;
    size_t out_len = 0, n = 0;
    int32_t *ids = NULL;
    qj_doc *d = qj_parse(line, len, err, sizeof err);
    const qj_value *msgs = d ? qj_get(qj_root(d), "messages") : NULL;
    qj_buf b = {0};
    if (d && !msgs) snprintf(err, sizeof err, "missing field 'messages'");
    if (d && msgs && !s->tmpl) snprintf(err, sizeof err, "the tokenizer has no chat_template");
    if (d && msgs && s->tmpl &&
        qrm_template_render(s->tmpl, msgs, qj_root(s->vars), 0, &out, &out_len, err, sizeof err) == 0 &&
        qrm_tokenizer_encode(s->tok, out, out_len, 0, &ids, &n, err, sizeof err) == 0) {
        qj_buf_puts(&b, "{\"rendered\":");
        qj_buf_put_string(&b, out, out_len);
        qj_buf_puts(&b, ",\"ids\":[");
        for (size_t i = 0; i < n; i++) qj_buf_printf(&b, "%s%d", i ? "," : "", ids[i]);
        qj_buf_puts(&b, "]}");
    } else {
        qj_buf_puts(&b, "{\"error\":");
        qj_buf_put_string(&b, err, strlen(err));
        qj_buf_puts(&b, "}");
    }
    fwrite(b.buf, 1, b.len, stdout);
    putchar('\n');
    qj_buf_free(&b);
    free(ids), free(out);
    qj_free(d);
}

enum { K_TOKENIZER, K_MODEL, K_TEXT, K_INPUT, K_CHAT, K_SPECIAL, K_TEMPLATE, K_N };

int qrm_cli_tokenize(int argc, char **argv) {
    const cli_opt opts[K_N] = {
        [K_TOKENIZER] = {"--tokenizer", 0, CLI_STRING, "DIR", NULL,
                         "a Hugging Face folder (tokenizer.json, tokenizer_config.json)", .group = 1},
        [K_MODEL] = {"--model", 'm', CLI_STRING, "FILE.qrm", NULL, "the tokenizer stored in a .qrm file",
                     .group = 1},
        [K_TEXT] = {"--text", 0, CLI_STRING, "TEXT", NULL, "print the ids of TEXT", .group = 2},
        [K_INPUT] = {"--input", 0, CLI_STRING, "FILE.jsonl|-", NULL, "{\"text\": T} lines -> {\"ids\": [...]}",
                     .group = 2},
        [K_CHAT] = {"--chat", 0, CLI_STRING, "FILE.jsonl|-", NULL,
                    "{\"messages\": [...]} lines -> {\"rendered\", \"ids\"}", .group = 2},
        [K_SPECIAL] = {"--special", 0, CLI_FLAG, NULL, NULL, "--text/--input: add the special tokens (BOS...)"},
        [K_TEMPLATE] = {"--chat-template", 0, CLI_STRING, "FILE", "the tokenizer's",
                        "--chat: a Jinja chat template replacing the tokenizer's", .alt = "--chat-template-file"},
    };
    static const char *const groups[] = {"both name the tokenizer: give one",
                                         "each give the text to tokenize: give one"};
    const cli_spec spec = {.prog = "qrm tokenize",
                           .usage = "qrm tokenize (--tokenizer DIR | -m FILE.qrm) (--text T [--special] |\n"
                                    "--input FILE.jsonl [--special] | --chat FILE.jsonl [--chat-template FILE])",
                           .about = "token ids as Hugging Face encode() gives them",
                           .opts = opts, .n_opts = K_N, .groups = (const char **)groups};
    cli_val v[K_N];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    const char *dir = v[K_TOKENIZER].str, *model = v[K_MODEL].str, *text = v[K_TEXT].str,
               *input = v[K_INPUT].str, *chat = v[K_CHAT].str, *tmpl_path = v[K_TEMPLATE].str;
    int special = v[K_SPECIAL].count > 0;
    if (!dir && !model) return cli_usage_error(&spec, "no tokenizer: give --tokenizer DIR or -m FILE.qrm");
    if (!text && !input && !chat) return cli_usage_error(&spec, "nothing to tokenize: give --text, --input or --chat");
    if (tmpl_path && !chat) return cli_usage_error(&spec, "--chat-template goes with --chat");
    if (special && chat) return cli_usage_error(&spec, "--special goes with --text or --input (a chat follows the input rule)");
    char err[QRM_ERR_MAX];
    tok_state s = {.special = special};
    qrm_model *m = NULL;
    if (dir) {
        s.tok = load_tokenizer_dir(dir);
    } else {
        m = qrm_model_open(model, err, sizeof err);
        if (!m) die("%s", err);
        const char *tj, *cj;
        size_t tl, cl;
        if (qrm_model_tokenizer_blobs(m, &tj, &tl, &cj, &cl)) die("%s", "the model file has no tokenizer");
        s.tok = qrm_tokenizer_new(tj, tl, cj, cl, err, sizeof err);
        if (!s.tok) die("%s", err);
    }
    char *own = NULL;
    size_t own_len = 0;
    if (tmpl_path && !(own = qrm_read_file(tmpl_path, &own_len, err, sizeof err)))
        die("--chat-template: %s", err);
    const char *src = own ? own : qrm_tokenizer_chat_template(s.tok);
    if (src && chat) {
        s.tmpl = qrm_template_compile(src, own ? own_len : strlen(src), err, sizeof err);
        if (!s.tmpl) die("%s", err);
    }
    free(own);
    s.vars = qrm_template_vars_for(s.tok);
    if (!s.vars) die("%s", "out of memory");
    int rc = 0;
    if (text) {
        int32_t *ids;
        size_t n;
        if (qrm_tokenizer_encode(s.tok, text, strlen(text), special, &ids, &n, err, sizeof err)) {
            fprintf(stderr, "qrm: %s\n", err);
            rc = 1;
        } else {
            print_ids(ids, n);
            free(ids);
        }
    } else {
        for_lines(input ? input : chat, input ? tokenize_line : chat_line, &s);
    }
    qrm_template_free(s.tmpl);
    qj_free(s.vars);
    qrm_tokenizer_free(s.tok);
    qrm_model_close(m);
    return rc;
}

