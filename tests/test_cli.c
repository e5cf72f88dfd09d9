/* `qrm score --input`: one output line per input line, in order, with an
 * error object for every line that cannot be scored and the run going on;
 * echoed fields; best-of-N selection options; the prompt/responses path
 * equals scoring each conversation alone. Driven through the library calls
 * the CLI uses (tools/score_jsonl.c), and the binaries for exit codes.
 * The "heads" group holds the PRM, multi-output and ArmoRM fixtures to their
 * expected.jsonl through the same paths (see its section below). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_opts.h"
#include "convert.h"
#include "json.h"
#include "qrm.h"
#include "score_jsonl.h"
#include "testutil.h"

static char *dir, *model_path;
static qrm_model *model;
static qrm_ctx *ctx;

static void setup(void) {
    char err[QRM_ERR_MAX];
    dir = tu_tmpdir();
    model_path = malloc(strlen(dir) + 16);
    sprintf(model_path, "%s/m.qrm", dir);
    qrm_convert_opts o = {.hf_dir = TEST_DATA "/models/llama3-tiny", .out_path = model_path,
                          .quant = "int8"};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    model = qrm_model_open(model_path, err, sizeof err);
    ck_assert_msg(model != NULL, "%s", err);
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = 2;
    p.max_tokens = 400;
    ctx = qrm_ctx_new(model, &p, err, sizeof err);
    ck_assert_msg(ctx != NULL, "%s", err);
}

static void teardown(void) {
    qrm_ctx_free(ctx);
    qrm_model_close(model);
    unlink(model_path);
    rmdir(dir);
    free(model_path), free(dir);
}

/* Runs text through qrm_score_stream; returns the output (malloc'd). */
static char *run_stream(const char *input, size_t len, const qrm_score_opts *o) {
    FILE *in = fmemopen((void *)input, len, "r");
    char *out = NULL;
    size_t out_len = 0;
    FILE *os = open_memstream(&out, &out_len);
    ck_assert(in && os);
    ck_assert_int_eq(qrm_score_stream(ctx, in, os, o), 0);
    fclose(in);
    fclose(os);
    return out;
}

/* Splits output into lines; returns the count. */
static int split_lines(char *s, char **lines, int max) {
    int n = 0;
    for (char *p = s; *p && n < max;) {
        char *e = strchr(p, '\n');
        ck_assert_msg(e != NULL, "output line without newline");
        *e = 0;
        lines[n++] = p;
        p = e + 1;
    }
    return n;
}

static qj_doc *parse_line(const char *line) {
    char err[200];
    qj_doc *d = qj_parse(line, strlen(line), err, sizeof err);
    ck_assert_msg(d != NULL, "output is not JSON: %s (%s)", line, err);
    ck_assert(qj_root(d)->type == QJ_OBJECT);
    return d;
}

static void assert_error_line(const char *line, const char *id, const char *fragment) {
    qj_doc *d = parse_line(line);
    const char *e = qj_get_str(qj_root(d), "error");
    ck_assert_msg(e != NULL, "expected an error: %s", line);
    ck_assert_msg(strstr(e, fragment) != NULL, "error '%s' lacks '%s'", e, fragment);
    ck_assert(qj_get(qj_root(d), "scores") == NULL);
    if (id) ck_assert_str_eq(qj_get_str(qj_root(d), "id"), id);
    qj_free(d);
}

static double first_score(const char *line) {
    qj_doc *d = parse_line(line);
    const qj_value *s = qj_get_type(qj_root(d), "scores", QJ_ARRAY);
    ck_assert_msg(s && s->len >= 1 && s->u.items[0].type == QJ_NUMBER, "no scores: %s", line);
    double v = s->u.items[0].u.num;
    qj_free(d);
    return v;
}

START_TEST(one_line_per_input_line_in_order) {
    char big[1200];
    strcpy(big, "{\"id\":\"long\",\"ids\":[");
    for (int i = 0; i < 450; i++) strcat(big, i ? ",5" : "5"); /* over the 400-token cap */
    strcat(big, "]}");
    const char *lines[] = {
        "{\"id\":\"a\",\"ids\":[316,5,6,7]}",
        "",
        "   ",
        "{\"id\":\"b\",\"ids\":[316,5,6,7]",          /* bad JSON */
        "[1,2,3]",                                  /* not an object */
        "{\"id\":\"c\"}",                           /* no request field */
        "{\"id\":\"d\",\"ids\":\"1 2 3\"}",         /* wrong type */
        "{\"id\":\"e\",\"ids\":[1,-2,3]}",          /* negative id */
        "{\"id\":\"f\",\"ids\":[1,2.5,3]}",         /* not an integer */
        "{\"id\":\"g\",\"ids\":[1,99999,3]}",       /* out of the vocabulary */
        "{\"id\":\"h\",\"ids\":[]}",                /* empty */
        "{\"id\":\"i\",\"prompt\":\"hi\"}",         /* no responses */
        "{\"id\":\"j\",\"prompt\":\"hi\",\"responses\":[\"a\",7]}",
        "{\"id\":\"k\",\"prompt\":3,\"responses\":[\"a\"]}",
        "{\"id\":\"l\",\"messages\":\"hello\"}",
        "{\"id\":\"m\",\"ids\":[1],\"messages\":[]}", /* two requests */
        "{\"id\":\"n\",\"prompt\":\"caf\xc3\",\"responses\":[\"x\"]}", /* invalid UTF-8 */
        big,
        "{\"id\":\"z\",\"ids\":[316,5,6,7]}",
    };
    const char *frag[] = {NULL, "empty line", "empty line", "invalid JSON", "object",
                          "exactly one of", "'ids' must be", "element 1", "element 1", "99999",
                          "empty", "'responses'", "element 1", "'prompt'", "'messages'",
                          "exactly one of", "UTF-8", "400", NULL};
    const char *ids[] = {"a", NULL, NULL, NULL, NULL, "c", "d", "e", "f", "g", "h", "i", "j",
                         "k", "l", "m", NULL, "long", "z"};
    int n = (int)(sizeof lines / sizeof lines[0]);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(lines[i]) + 1;
    char *input = malloc(total + 1), *p = input;
    for (int i = 0; i < n; i++) p += sprintf(p, "%s\n", lines[i]);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    char *out = run_stream(input, total, &o);
    char *got[64];
    int m = split_lines(out, got, 64);
    ck_assert_int_eq(m, n);
    for (int i = 0; i < n; i++) {
        if (frag[i]) assert_error_line(got[i], ids[i], frag[i]);
        else ck_assert(isfinite(first_score(got[i])));
    }
    /* the same sequence gives the same score before and after the errors */
    ck_assert(first_score(got[0]) == first_score(got[n - 1]));
    free(out), free(input);
}
END_TEST

START_TEST(last_line_without_newline_and_crlf) {
    const char *input = "{\"ids\":[316,5]}\r\n{\"ids\":[316,6]}";
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    char *out = run_stream(input, strlen(input), &o);
    char *got[4];
    ck_assert_int_eq(split_lines(out, got, 4), 2);
    ck_assert(isfinite(first_score(got[0])) && isfinite(first_score(got[1])));
    free(out);
}
END_TEST

START_TEST(echoes_other_fields) {
    const char *input = "{\"id\":7,\"meta\":{\"a\":[1,\"x\"]},\"ids\":[316,5,6],\"tag\":null}\n";
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    char *out = run_stream(input, strlen(input), &o);
    qj_doc *d = parse_line(strtok(out, "\n"));
    const qj_value *r = qj_root(d);
    int64_t id;
    ck_assert(qj_get_int(r, "id", &id) && id == 7);
    ck_assert(qj_get_type(r, "meta", QJ_OBJECT) != NULL);
    ck_assert(qj_get_type(r, "tag", QJ_NULL) != NULL);
    ck_assert(qj_get(r, "ids") == NULL);
    ck_assert(qj_get_type(r, "scores", QJ_ARRAY) != NULL);
    qj_free(d);
    free(out);
}
END_TEST

/* prompt/responses through the shared prefix == each conversation alone */
START_TEST(responses_equal_single_conversations) {
    const char *resp[] = {"7", "Seven is a prime number.", "8", "I like cats."};
    char line[512];
    snprintf(line, sizeof line,
             "{\"prompt\":\"Name a prime.\",\"responses\":[\"%s\",\"%s\",\"%s\",\"%s\"]}\n",
             resp[0], resp[1], resp[2], resp[3]);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    char *out = run_stream(line, strlen(line), &o);
    qj_doc *d = parse_line(strtok(out, "\n"));
    const qj_value *s = qj_get_type(qj_root(d), "scores", QJ_ARRAY);
    ck_assert(s && s->len == 4);
    for (int i = 0; i < 4; i++) {
        int32_t *ids;
        size_t n;
        float alone;
        ck_assert(qrm_encode_prompt_response(ctx, "Name a prime.", 13, resp[i], strlen(resp[i]),
                                             &ids, &n) == 0);
        ck_assert(qrm_score_ids(ctx, ids, n, &alone) == 0);
        ck_assert_msg(fabs(s->u.items[i].u.num - alone) <= 1e-4 + 1e-4 * fabs(alone),
                      "response %d: %g vs %g", i, s->u.items[i].u.num, (double)alone);
        free(ids);
    }
    qj_free(d);
    free(out);
}
END_TEST

static void kept(const char *line, qrm_score_opts *o, int *idx, int *n) {
    char *out = run_stream(line, strlen(line), o);
    qj_doc *d = parse_line(strtok(out, "\n"));
    const qj_value *k = qj_get_type(qj_root(d), "kept", QJ_ARRAY);
    ck_assert(k != NULL);
    *n = (int)k->len;
    for (uint32_t i = 0; i < k->len; i++) {
        int64_t v;
        ck_assert(qj_get_int(&k->u.items[i], "index", &v));
        idx[i] = (int)v;
        ck_assert(qj_get_str(&k->u.items[i], "response") != NULL);
    }
    qj_free(d);
    free(out);
}

START_TEST(best_top_k_min_score) {
    const char *line = "{\"prompt\":\"Q\",\"responses\":[\"a\",\"bb\",\"ccc\",\"dddd\",\"e e\"]}\n";
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    char *out = run_stream(line, strlen(line), &o);
    qj_doc *d = parse_line(strtok(out, "\n"));
    const qj_value *s = qj_get_type(qj_root(d), "scores", QJ_ARRAY);
    ck_assert(qj_get(qj_root(d), "kept") == NULL);
    double sc[5];
    int order[5] = {0, 1, 2, 3, 4};
    for (int i = 0; i < 5; i++) sc[i] = s->u.items[i].u.num;
    for (int i = 0; i < 5; i++) /* selection sort by score, descending */
        for (int j = i + 1; j < 5; j++)
            if (sc[order[j]] > sc[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
    qj_free(d);
    free(out);
    int idx[8], n;
    o.mode = QRM_KEEP_BEST;
    kept(line, &o, idx, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(idx[0], order[0]);
    o.mode = QRM_KEEP_TOP_K, o.top_k = 3;
    kept(line, &o, idx, &n);
    ck_assert_int_eq(n, 3);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(idx[i], order[i]);
    o.top_k = 9;
    kept(line, &o, idx, &n);
    ck_assert_int_eq(n, 5);
    o.mode = QRM_KEEP_MIN_SCORE, o.min_score = sc[order[2]];
    kept(line, &o, idx, &n);
    ck_assert_int_eq(n, 3); /* in input order */
    for (int i = 1; i < n; i++) ck_assert(idx[i] > idx[i - 1]);
    for (int i = 0; i < n; i++) ck_assert(sc[idx[i]] >= sc[order[2]]);
}
END_TEST

/* The binaries: exit codes and the contract's output shapes. build/qrm is
 * the native build, so QRM_ISA (set to an ARM family under qemu) is dropped. */
START_TEST(cli_exit_codes) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) {
        printf(QRM_TEST_BIN_DIR "/qrm not built: skipping the binary checks\n");
        return;
    }
    char cmd[1024];
    char *isa = getenv("QRM_ISA") ? strdup(getenv("QRM_ISA")) : NULL;
    unsetenv("QRM_ISA");
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --ids '316 5 6' >/dev/null 2>&1", model_path);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s/missing.qrm --ids '1' >/dev/null 2>&1", dir);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --ids '1 x' >/dev/null 2>&1", model_path);
    ck_assert_int_ne(system(cmd), 0);
    /* bad lines do not change the exit status */
    snprintf(cmd, sizeof cmd,
             "printf '\\n{bad\\n{\"ids\":[316]}\\n' | " QRM_TEST_BIN_DIR "/qrm score -m %s --input - > %s/out.jsonl",
             model_path, dir);
    ck_assert_int_eq(system(cmd), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    size_t len;
    char *out = tu_read_file(path, &len);
    char *got[8];
    ck_assert_int_eq(split_lines(out, got, 8), 3);
    free(out);
    unlink(path);
    snprintf(cmd, sizeof cmd, "QRM_ISA=nonsense " QRM_TEST_BIN_DIR "/qrm info >/dev/null 2>&1");
    ck_assert_int_ne(system(cmd), 0);
    if (isa) setenv("QRM_ISA", isa, 1);
    free(isa);
}
END_TEST

/* The command line refuses what it cannot honour: every case exits with the
 * given status and one stderr line naming the problem. */
static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* Echoed fields never clash with the fields qrm writes: those go into one
 * "input" object (an input field "input" too), the others stay in order. */
START_TEST(echo_never_duplicates_a_key) {
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    const char *in = "{\"id\":1,\"scores\":[9],\"kept\":\"x\",\"input\":5,\"ids\":[316,5],\"note\":\"n\"}\n"
                     "{\"error\":\"mine\",\"ids\":[316]}\n"
                     "{\"score\":1,\"ids\":[999999]}\n";
    char *out = run_stream(in, strlen(in), &o);
    char *got[4];
    ck_assert_int_eq(split_lines(out, got, 4), 3);
    ck_assert_msg(starts_with(got[0], "{\"id\":1,\"note\":\"n\",\"input\":{\"scores\":[9],\"kept\":\"x\",\"input\":5},\"scores\":["), "%s", got[0]);
    ck_assert_msg(starts_with(got[1], "{\"input\":{\"error\":\"mine\"},\"scores\":["), "%s", got[1]);
    ck_assert_msg(starts_with(got[2], "{\"input\":{\"score\":1},\"error\":\"token id 999999"), "%s", got[2]);
    for (int i = 0; i < 3; i++) { /* every line parses, with each key once */
        char err[200];
        qj_doc *d = qj_parse(got[i], strlen(got[i]), err, sizeof err);
        ck_assert_msg(d != NULL, "%s: %s", got[i], err);
        const qj_value *r = qj_root(d);
        for (uint32_t a = 0; a < r->len; a++)
            for (uint32_t c = a + 1; c < r->len; c++)
                ck_assert_msg(strcmp(r->u.members[a].key, r->u.members[c].key), "%s twice in %s",
                              r->u.members[a].key, got[i]);
        qj_free(d);
    }
    free(out);
}
END_TEST

/* qrm verify: an intact file passes; a flipped bit in a weight (which the
 * loader cannot see) and a damaged header are found and named, in one line;
 * score --verify scores nothing from a damaged file. */
static int run_status(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(verify_finds_damaged_weights) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) return;
    char cmd[2048], damaged[512], out[512];
    snprintf(damaged, sizeof damaged, "%s/damaged.qrm", dir);
    snprintf(out, sizeof out, "%s/verify.txt", dir);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm verify -m %s > %s 2>&1", model_path, out);
    ck_assert_int_eq(run_status(cmd), 0);
    size_t len;
    char *text = tu_read_file(out, &len);
    ck_assert_msg(strstr(text, "intact") && strstr(text, "data sha256"), "%s", text);
    free(text);
    /* one bit of one weight, and the header's file size */
    size_t n;
    uint8_t *img = (uint8_t *)tu_read_file(model_path, &n);
    uint64_t off = 0;
    for (int i = 0; i < 8; i++) off |= (uint64_t)img[56 + i] << (8 * i);
    ck_assert(off + 4096 < n);
    for (int what = 0; what < 2; what++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, img, n);
        if (what == 0) copy[off + 4000] ^= 0x10;
        else copy[16] ^= 1;
        FILE *f = fopen(damaged, "wb");
        ck_assert(f && fwrite(copy, 1, n, f) == n);
        fclose(f);
        free(copy);
        snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm verify -m %s > %s 2>&1", damaged, out);
        ck_assert_int_eq(run_status(cmd), 1);
        text = tu_read_file(out, &len);
        ck_assert_msg(strstr(text, what == 0 ? "the tensor data is damaged" : "file size") != NULL, "%s", text);
        ck_assert_msg(strchr(text, '\n') == text + len - 1, "one line: %s", text);
        free(text);
        /* without --verify a damaged weight scores; with it, nothing is printed */
        snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --ids '316 5 6' --verify > %s 2>/dev/null", damaged, out);
        ck_assert_int_eq(run_status(cmd), 1);
        text = tu_read_file(out, &len);
        ck_assert_int_eq(len, 0);
        free(text);
    }
    free(img);
    unlink(damaged), unlink(out);
}
END_TEST

/* --load copy (the file copied into huge-page memory) prints the very
 * score the mapped file gives. */
START_TEST(score_load_copy_same_output) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) return;
    char cmd[2048], out[2][512];
    for (int k = 0; k < 2; k++) {
        snprintf(out[k], sizeof out[k], "%s/load-%d.txt", dir, k);
        snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --ids '316 5 6 7 8' --load %s > %s", model_path,
                 k ? "copy" : "map", out[k]);
        ck_assert_int_eq(run_status(cmd), 0);
    }
    size_t l0, l1;
    char *t0 = tu_read_file(out[0], &l0), *t1 = tu_read_file(out[1], &l1);
    ck_assert_msg(l0 > 1 && l0 == l1 && memcmp(t0, t1, l0) == 0, "map: %s copy: %s", t0, t1);
    free(t0), free(t1);
    unlink(out[0]), unlink(out[1]);
}
END_TEST

START_TEST(cli_refuses_what_it_cannot_honour) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) return;
    char *isa = getenv("QRM_ISA") ? strdup(getenv("QRM_ISA")) : NULL;
    unsetenv("QRM_ISA");
    static const struct {
        const char *args;
        int status;
        const char *want;
    } cases[] = {
        {"--input x --min-score abc", 2, "--min-score: 'abc' is not a number"},
        {"--input x --min-score 0.5abc", 2, "--min-score: '0.5abc' is not a number"},
        {"--ids 1 -t abc", 2, "-t: 'abc' is not an integer"},
        {"--ids 1 -t 100000", 2, "-t: '100000' is not an integer in [0,"},
        {"--ids 1 --max-tokens abc", 2, "--max-tokens: 'abc' is not an integer"},
        {"--input x --top-k 1.5", 2, "--top-k: '1.5' is not an integer"},
        {"--input x --best --top-k 2", 2, "give one"},
        {"--input x --top-k 2 --min-score 0.9", 2, "give one"},
        {"--ids 1 --kv int8", 2, "--kv: 'int8' is not f32, f16 or q8"},
        {"--input x --aggregate max", 2, "--aggregate: 'max' is not min, last, mean or prod"},
        {"--ids", 2, "--ids needs a value"},
        {"--ids 1 --frobnicate", 2, "unknown option '--frobnicate'"},
        {"--prompt p", 2, "--prompt takes either --response or --step"},
        {"--ids 1 --input x", 2, "give exactly one of --ids, --text, --prompt or --input"},
        {"--text t --ids 1", 2, "give exactly one of --ids, --text, --prompt or --input"},
        {"--ids 1 -t 1 --threads=2", 2, "--threads is given twice ('1' and '2'): give one"},
        {"--ids 1 --threads=x", 2, "--threads: 'x' is not an integer"},
        {"--ids 1 -c 2 --ctx-size 3", 2, "--ctx-size is given twice ('2' and '3'): give one"},
        {"--ids 1 --kv=f8", 2, "--kv: 'f8' is not f32, f16 or q8"},
        {"--ids 1 --load huge", 2, "--load: 'huge' is not map or copy"},
        {"--ids 1 --kv q8", 1, "KV cache q8 needs a head_dim that is a multiple of 32; this model's is 16"},
        {"--input x --best --best", 2, "--best is given twice"},
        {"--input x --min-score 1e999", 2, "--min-score: '1e999' is not a number"},
        {"--ids ' 1' -t ' 1'", 2, "-t: ' 1' is not an integer"},
        {"--prompt p --step a --system s", 2, "--system goes with --prompt and --response"},
        {"--ids 1 extra", 2, "unexpected argument 'extra'"},
        {"--prompt p --response r --chat-template /nonexistent/t.jinja", 1, "--chat-template: "},
        {"--text $(printf '\\377')", 2, "--text is not valid UTF-8 (byte 0)"},
        {"--prompt p --response $(printf '\\377')", 2, "--response is not valid UTF-8 (byte 0)"},
        {"--input tests", 1, "--input 'tests' is a directory"},
        {"--ids '316 5 6' > /dev/full", 1, "writing the output failed"},
        {"--input - < /dev/null > /dev/full", 0, ""},
    };
    char cmd[1024], path[512];
    snprintf(path, sizeof path, "%s/err.txt", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s %s 2> %s", model_path, cases[i].args, path);
        int st = system(cmd);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == cases[i].status, "'%s': exit %d, not %d",
                      cases[i].args, WEXITSTATUS(st), cases[i].status);
        size_t len;
        char *err = tu_read_file(path, &len);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "'%s': stderr '%s' lacks '%s'", cases[i].args, err,
                      cases[i].want);
        free(err);
    }
    /* a JSONL run whose output cannot be written says so */
    snprintf(cmd, sizeof cmd, "echo '{\"ids\":[316,5]}' | " QRM_TEST_BIN_DIR "/qrm score -m %s --input - > /dev/full 2> %s",
             model_path, path);
    int st = system(cmd);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    unlink(path);
    if (isa) setenv("QRM_ISA", isa, 1);
    free(isa);
}
END_TEST

/* qrm_ctx_set_chat_template: this context renders with its own template,
 * the model's other contexts keep the model's; a template that does not
 * compile is refused and the previous one kept; length 0 restores the
 * model's. */
static int32_t *encode_pr(qrm_ctx *c, const char *p, const char *r, size_t *n) {
    int32_t *ids = NULL;
    ck_assert_msg(qrm_encode_prompt_response(c, p, strlen(p), r, strlen(r), &ids, n) == QRM_OK, "%s",
                  qrm_ctx_error(c));
    return ids;
}

static void assert_ids_eq(const int32_t *a, size_t na, const int32_t *b, size_t nb, const char *what) {
    ck_assert_msg(na == nb, "%s: %zu ids, want %zu", what, na, nb);
    for (size_t i = 0; i < na; i++) ck_assert_msg(a[i] == b[i], "%s: id %zu is %d, want %d", what, i, a[i], b[i]);
}

START_TEST(ctx_chat_template_override) {
    char err[QRM_ERR_MAX];
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = 1;
    qrm_ctx *other = qrm_ctx_new(model, &p, err, sizeof err);
    ck_assert_msg(other != NULL, "%s", err);
    size_t n0, n1, n2, nt;
    int32_t *model_ids = encode_pr(ctx, "Hi there", "Hello!", &n0);
    static const char own[] = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}";
    ck_assert_int_eq(qrm_ctx_set_chat_template(ctx, own, strlen(own)), QRM_OK);
    int32_t *own_ids = encode_pr(ctx, "Hi there", "Hello!", &n1), *text_ids = NULL;
    /* the input rule on the rendered text: the tokenizer's special tokens, no template */
    static const char rendered[] = "[user] Hi there\n[assistant] Hello!\n";
    ck_assert_int_eq(qrm_tokenize(ctx, rendered, strlen(rendered), 1, &text_ids, &nt), QRM_OK);
    assert_ids_eq(own_ids, n1, text_ids, nt, "own template vs its rendering");
    int32_t *other_ids = encode_pr(other, "Hi there", "Hello!", &n2);
    assert_ids_eq(other_ids, n2, model_ids, n0, "another context");
    free(other_ids);
    /* refused, naming the problem; the context keeps its template */
    static const char bad[] = "{% for m in messages %}{{ m.content }";
    ck_assert_int_eq(qrm_ctx_set_chat_template(ctx, bad, strlen(bad)), QRM_ETEXT);
    ck_assert_msg(qrm_ctx_error(ctx)[0] != 0, "no message");
    other_ids = encode_pr(ctx, "Hi there", "Hello!", &n2);
    assert_ids_eq(other_ids, n2, own_ids, n1, "after a refused template");
    free(other_ids);
    ck_assert_int_eq(qrm_ctx_set_chat_template(ctx, NULL, 0), QRM_OK);
    other_ids = encode_pr(ctx, "Hi there", "Hello!", &n2);
    assert_ids_eq(other_ids, n2, model_ids, n0, "restored");
    free(other_ids), free(own_ids), free(text_ids), free(model_ids);
    qrm_ctx_free(other);
}
END_TEST

/* qrm score --text, --system, --chat-template through the binary: each is
 * the score of the ids the library gives for the same input. */
static char *run_out(const char *cmd, int *status) {
    FILE *f = popen(cmd, "r");
    ck_assert(f != NULL);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static char *ids_arg(const int32_t *ids, size_t n) {
    char *s = malloc(n * 12 + 1);
    size_t at = 0;
    s[0] = 0;
    for (size_t i = 0; i < n; i++) at += (size_t)sprintf(s + at, "%s%d", i ? " " : "", ids[i]);
    return s;
}

START_TEST(cli_text_system_chat_template) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) return;
    char *isa = getenv("QRM_ISA") ? strdup(getenv("QRM_ISA")) : NULL;
    unsetenv("QRM_ISA");
    char cmd[2048], tpath[512];
    int st;
    int32_t *ids;
    size_t n;
    /* --text: qrm_tokenize with the special tokens */
    static const char text[] = "user: What is 2+2?<|eot_id|>assistant: 4<|eot_id|>";
    ck_assert_int_eq(qrm_tokenize(ctx, text, strlen(text), 1, &ids, &n), QRM_OK);
    char *ia = ids_arg(ids, n);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --ids '%s'", model_path, ia);
    char *want = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --text '%s'", model_path, text);
    char *got = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(got, want);
    free(got), free(want), free(ia), free(ids);
    /* --text of a rendered conversation (the template writes BOS): the
     * conversation's score, the BOS not doubled */
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --prompt Hi --response Hello", model_path);
    want = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --text '<|begin_of_text|>user: Hi<|eot_id|>assistant: Hello<|eot_id|>'",
             model_path);
    got = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(got, want);
    free(got), free(want);
    /* --system: the messages line with a system turn */
    snprintf(cmd, sizeof cmd,
             "echo '{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"},"
             "{\"role\":\"assistant\",\"content\":\"Hello\"}]}' | " QRM_TEST_BIN_DIR "/qrm score -m %s --input - | "
             "sed 's/.*\"scores\":\\[\\([^]]*\\)\\].*/\\1/'", model_path);
    want = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --system 'Be brief.' --prompt Hi --response Hello", model_path);
    got = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_msg(strtod(got, NULL) == strtod(want, NULL), "--system: %s, the messages line: %s", got, want);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --prompt Hi --response Hello", model_path);
    char *plain = run_out(cmd, &st);
    ck_assert_msg(strcmp(plain, got), "--system changed nothing: %s", got);
    free(got), free(want);
    /* llama.cpp's spellings: -p, -c / --ctx-size=N */
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score --model=%s -p Hi --response Hello --ctx-size=400 --threads=1", model_path);
    got = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(got, plain);
    free(got), free(plain);
    /* --chat-template FILE: the rendering of that template, scored as --text */
    snprintf(tpath, sizeof tpath, "%s/t.jinja", dir);
    FILE *f = fopen(tpath, "w");
    ck_assert(f != NULL);
    fputs("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --prompt Hi --response Hello --chat-template %s", model_path, tpath);
    got = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --text '<user>Hi<assistant>Hello'", model_path);
    want = run_out(cmd, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(got, want);
    free(got), free(want);
    /* a template that does not compile: exit 1, nothing scored */
    f = fopen(tpath, "w");
    fputs("{% for m in messages %}", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --prompt Hi --response Hello --chat-template %s 2>/dev/null",
             model_path, tpath);
    got = run_out(cmd, &st);
    ck_assert_int_eq(st, 1);
    ck_assert_str_eq(got, "");
    free(got);
    unlink(tpath);
    if (isa) setenv("QRM_ISA", isa, 1);
    free(isa);
}
END_TEST

/* Every program and command answers --help (exit 0, on stdout, every option
 * with its default) and --version. */
START_TEST(cli_help_and_version) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) return;
    static const char *const cmds[] = {QRM_TEST_BIN_DIR "/qrm", QRM_TEST_BIN_DIR "/qrm info", QRM_TEST_BIN_DIR "/qrm score", QRM_TEST_BIN_DIR "/qrm tokenize",
                                       QRM_TEST_BIN_DIR "/qrm verify", QRM_TEST_BIN_DIR "/qrm serve", QRM_TEST_BIN_DIR "/qrm-convert",
                                       QRM_TEST_BIN_DIR "/qrm-bench", QRM_TEST_BIN_DIR "/qrm-bench kernels", QRM_TEST_BIN_DIR "/qrm-bench e2e",
                                       QRM_TEST_BIN_DIR "/qrm-bench bestofn", QRM_TEST_BIN_DIR "/qrm-bench heads", QRM_TEST_BIN_DIR "/qrm-bench dpo",
                                       QRM_TEST_BIN_DIR "/qrm-bench tokenizer", QRM_TEST_BIN_DIR "/qrm-bench dram",
                                       QRM_TEST_BIN_DIR "/qrm-bench serve", QRM_TEST_BIN_DIR "/qrm-bench scaling"};
    char cmd[512];
    int st;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strstr(cmds[i], "-convert") ? access(QRM_TEST_BIN_DIR "/qrm-convert", X_OK) : strstr(cmds[i], "-bench") ? access(QRM_TEST_BIN_DIR "/qrm-bench", X_OK) : 0) continue;
        snprintf(cmd, sizeof cmd, "%s --help 2>/dev/null", cmds[i]);
        char *out = run_out(cmd, &st);
        ck_assert_msg(st == 0 && strstr(out, "usage: "), "%s --help: exit %d: %s", cmds[i], st, out);
        /* every option line of a command's help shows its default */
        if (strchr(cmds[i], ' ')) {
            for (char *l = strstr(out, "\n  -"); l; l = strstr(l + 1, "\n  -")) {
                char *e = strchr(l + 1, '\n');
                size_t len = e ? (size_t)(e - l) : strlen(l);
                if (!strncmp(l, "\n  -h, --help", 13) || !strncmp(l, "\n  --version", 12)) continue;
                char line[512];
                snprintf(line, sizeof line, "%.*s", (int)len, l + 1);
                if (!strstr(line, "(default") && !strstr(line, "(required)")) {
                    /* a long label puts the help on the next line */
                    ck_assert_msg(e && (strstr(e + 1, "(default") || strstr(e + 1, "(required)")) &&
                                  (!strchr(e + 1, '\n') || strstr(e + 1, "(default") < strchr(e + 1, '\n') ||
                                   strstr(e + 1, "(required)") < strchr(e + 1, '\n')),
                                  "%s --help: '%s' without a default", cmds[i], line);
                }
            }
        }
        free(out);
        snprintf(cmd, sizeof cmd, "%s --version", cmds[i]);
        out = run_out(cmd, &st);
        ck_assert_msg(st == 0 && strstr(out, QRM_VERSION_STRING), "%s --version: exit %d: %s", cmds[i], st, out);
        free(out);
    }
}
END_TEST

/* qrm-convert: one summary line on stdout (path, size, quantization,
 * seconds), none with -q; without -o the file is ./HF_DIR-QUANT.qrm, and an
 * existing one is kept unless --force. */
START_TEST(convert_summary_and_default_name) {
    if (access(QRM_TEST_BIN_DIR "/qrm-convert", X_OK) != 0) return;
    char cwd[1024], cmd[4096];
    ck_assert(getcwd(cwd, sizeof cwd) != NULL);
    int st;
    snprintf(cmd, sizeof cmd, "cd %s && %s/" QRM_TEST_BIN_DIR "/qrm-convert %s/" TEST_DATA "/models/qwen3-tiny/ --quant f16", dir, cwd, cwd);
    char *out = run_out(cmd, &st);
    ck_assert_msg(st == 0, "exit %d", st);
    ck_assert_msg(!strncmp(out, "qrm-convert: wrote qwen3-tiny-f16.qrm (", 39) && strstr(out, " MiB, f16, ") &&
                  strstr(out, " s)\n") && strchr(out, '\n') == out + strlen(out) - 1, "summary: '%s'", out);
    free(out);
    char path[600];
    snprintf(path, sizeof path, "%s/qwen3-tiny-f16.qrm", dir);
    ck_assert(access(path, R_OK) == 0);
    struct stat a, b;
    ck_assert(stat(path, &a) == 0);
    snprintf(cmd, sizeof cmd, "cd %s && %s/" QRM_TEST_BIN_DIR "/qrm-convert %s/" TEST_DATA "/models/qwen3-tiny --quant f16 2>&1", dir, cwd, cwd);
    out = run_out(cmd, &st);
    ck_assert_msg(st == 1 && strstr(out, "qwen3-tiny-f16.qrm exists: give --force"), "exit %d: %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd %s && %s/" QRM_TEST_BIN_DIR "/qrm-convert %s/" TEST_DATA "/models/qwen3-tiny --quant f16 --force -q", dir, cwd, cwd);
    out = run_out(cmd, &st);
    ck_assert_msg(st == 0 && out[0] == 0, "--force -q: exit %d, stdout '%s'", st, out);
    free(out);
    ck_assert(stat(path, &b) == 0 && b.st_size == a.st_size);
    unlink(path);
}
END_TEST

/* qrm-bench: arguments are all checked before a synthetic model is written;
 * --json leaves stdout one JSON line (the table on stderr); the models'
 * folder is named on stderr. */
START_TEST(bench_json_and_argument_checks) {
    if (access(QRM_TEST_BIN_DIR "/qrm-bench", X_OK) != 0) return;
    char cmd[2048], mdir[600];
    int st;
    snprintf(mdir, sizeof mdir, "%s/bench-models", dir);
    static const char *const bad[] = {"e2e --seq abc", "e2e --seq 0", "e2e --shape qwen9", "e2e --quant q3",
                                      "bestofn --n 1.5", "heads --seq 32", "dpo --reps -1", "e2e --bogus",
                                      "e2e --svg /nonexistent/dir/x.svg", "dram -t x", "serve -n 0",
                                      "tokenizer --seconds 1e9", "kernels -f", "scaling -t 1", "scaling --reps 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm-bench %s --models-dir %s 2>&1", bad[i], mdir);
        char *out = run_out(cmd, &st);
        ck_assert_msg(st == 2 && out[0], "qrm-bench %s: exit %d, '%s'", bad[i], st, out);
        ck_assert_msg(access(mdir, F_OK) != 0, "qrm-bench %s made %s before refusing", bad[i], mdir);
        free(out);
    }
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm-bench serve -m %s -n 4 -c 1 --len 8 -t 1 --json 2>/dev/null", model_path);
    char *out = run_out(cmd, &st);
    ck_assert_msg(st == 0, "serve --json: exit %d", st);
    ck_assert_msg(out[0] == '{' && strchr(out, '\n') == out + strlen(out) - 1, "stdout is not one JSON line: %s", out);
    qj_free(parse_line(out));
    free(out);
}
END_TEST

/* The parser itself (tools/cli_opts.c): an option is matched by its whole
 * name (--n is not --name), --opt=V and -x V, "--" ends the options, "-" is
 * an argument, repeatable options keep every value, an int is read whole
 * and in range, a choice gives its index, an exclusive group refuses two. */
START_TEST(cli_opts_parser) {
    static const cli_opt o[] = {
        {"--n", 'n', CLI_INT, "N", "1", "n", .lo = 1, .hi = 10},
        {"--name", 0, CLI_STRING, "S", NULL, "name", .alt = "--label"},
        {"--step", 0, CLI_STRING, "S", NULL, "step", .many = 1},
        {"--kv", 0, CLI_CHOICE, NULL, "f16", "kv", .choices = "f32|f16"},
        {"--x", 0, CLI_FLAG, NULL, NULL, "x", .group = 1},
        {"--y", 0, CLI_DOUBLE, "Y", NULL, "y", .group = 1},
    };
    static const cli_spec spec = {.prog = "t", .usage = "t ...", .opts = o, .n_opts = 6, .max_pos = 2};
    cli_val v[6];
    const char *pos[2];
    int np;
    char *a1[] = {"--name=a=b", "-n", "3", "--step", "s1", "-", "--kv", "f32", "--step=s2", "--", "--x"};
    ck_assert_int_eq(cli_parse(&spec, 11, a1, v, pos, &np), 0);
    ck_assert_str_eq(v[1].str, "a=b");
    ck_assert_int_eq(v[0].i, 3);
    ck_assert_int_eq(v[2].count, 2);
    ck_assert_str_eq(v[2].all[0], "s1");
    ck_assert_str_eq(v[2].all[1], "s2");
    ck_assert_int_eq(v[3].choice, 0);
    ck_assert_int_eq(v[4].count, 0);
    ck_assert_int_eq(np, 2);
    ck_assert_str_eq(pos[0], "-");
    ck_assert_str_eq(pos[1], "--x");
    cli_free(&spec, v);
    char *a2[] = {"--label", "L", "--y", "-2.5e1"};
    ck_assert_int_eq(cli_parse(&spec, 4, a2, v, pos, &np), 0);
    ck_assert_str_eq(v[1].str, "L");
    ck_assert(v[5].d == -25.0);
    cli_free(&spec, v);
    /* a value that reads like --help is still a value */
    char *a3[] = {"--name", "--help"};
    ck_assert_int_eq(cli_parse(&spec, 2, a3, v, pos, &np), 0);
    ck_assert_str_eq(v[1].str, "--help");
    cli_free(&spec, v);
    static const char *const bad[][3] = {
        {"--n", "11", NULL}, {"--n", "1.0", NULL}, {"--n", "", NULL},     {"--n", " 2", NULL},
        {"--nam", "x", NULL}, {"--kv", "F32", NULL}, {"--y", "nan", NULL}, {"--y", "1", "--x"},
        {"--name", "a", "--label"}, {"--x=1", NULL, NULL}, {"a", "b", "c"}, {"--step", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[4] = {0};
        int argc = 0;
        for (int k = 0; k < 3 && bad[i][k]; k++) argv[argc++] = (char *)bad[i][k];
        if (i == 8) argv[argc++] = "b"; /* --name a --label b: one option given twice */
        ck_assert_msg(cli_parse(&spec, argc, argv, v, pos, &np) == -1, "case %zu (%s %s) was accepted", i,
                      bad[i][0], bad[i][1] ? bad[i][1] : "");
    }
}
END_TEST

/* Every command's output to a full disk (/dev/full) is an error with a
 * message and exit 1, never a silent success. */
START_TEST(cli_full_disk_is_an_error) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0 || access("/dev/full", W_OK) != 0) {
        printf(QRM_TEST_BIN_DIR "/qrm not built or no /dev/full: skipping the full-disk checks\n");
        return;
    }
    char in[512], chat[512], errp[512], cmd[2048];
    snprintf(in, sizeof in, "%s/text.jsonl", dir);
    snprintf(chat, sizeof chat, "%s/chat.jsonl", dir);
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    FILE *f = fopen(in, "w");
    ck_assert(f != NULL);
    fputs("{\"text\":\"hello\"}\n", f);
    fclose(f);
    f = fopen(chat, "w");
    ck_assert(f != NULL);
    fputs("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n", f);
    fclose(f);
    const char *m = model_path;
    char cases[16][600];
    int n = 0;
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm score -m %s --prompt hi --response hello", m);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm score -m %s --ids '316 5' --max-tokens 100", m);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm score -m %s --input %s", m, chat);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm score --help");
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm tokenize -m %s --text hello", m);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm tokenize --tokenizer " TEST_DATA "/models/llama3-tiny --text hello");
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm tokenize -m %s --input %s", m, in);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm tokenize -m %s --chat %s", m, chat);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm info");
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm info -m %s", m);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm verify -m %s", m);
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm --version");
    snprintf(cases[n++], 600, QRM_TEST_BIN_DIR "/qrm-convert --version");
    for (int i = 0; i < n; i++) {
        /* the same command to /dev/null succeeds: only the full disk fails it */
        snprintf(cmd, sizeof cmd, "%.600s > /dev/null 2> %s", cases[i], errp);
        int st = system(cmd);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "'%s' fails without a full disk", cases[i]);
        snprintf(cmd, sizeof cmd, "%.600s > /dev/full 2> %s", cases[i], errp);
        st = system(cmd);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "'%s' > /dev/full: exit %d, not 1", cases[i],
                      WEXITSTATUS(st));
        size_t len;
        char *err = tu_read_file(errp, &len);
        ck_assert_msg(strstr(err, "writing the output failed: No space left on device\n") != NULL &&
                          strchr(err, '\n') == err + len - 1,
                      "'%s' > /dev/full: stderr '%s' is not the one line", cases[i], err);
        free(err);
    }
    unlink(in), unlink(chat), unlink(errp);
}
END_TEST

/* An over-long JSONL line is refused by its byte length (64 bytes per token
 * of the context's KV cap), before it is parsed or tokenized, with an error
 * naming the line and its length; the stream goes on. */
START_TEST(over_long_line_refused_by_length) {
    size_t limit = qrm_line_limit(ctx);
    ck_assert_uint_eq(limit, 400 * 64);  /* setup's max_tokens */
    size_t cap = 3 * limit + 1000, k = 0;
    char *input = malloc(cap);
    ck_assert(input != NULL);
    k += (size_t)sprintf(input + k, "{\"id\":\"a\",\"ids\":[316,5,6]}\n");
    /* one byte over, and not JSON past its start: a parse would say so */
    size_t start = k, line2 = k;
    k += (size_t)sprintf(input + k, "{\"id\":\"b\",\"ids\":[316,");
    while (k - start < limit + 1) input[k++] = '#';
    input[k++] = '\n';
    /* exactly at the limit: scored */
    start = k;
    k += (size_t)sprintf(input + k, "{\"id\":\"c\",\"ids\":[316,5,6],\"pad\":\"");
    while (k - start < limit - 2) input[k++] = 'x';
    k += (size_t)sprintf(input + k, "\"}\n");
    ck_assert_uint_eq(k - start, limit + 1);
    /* far over, the last line, without a newline */
    for (size_t i = 0; i < limit + 500; i++) input[k++] = ' ';
    k += (size_t)sprintf(input + k, "{\"ids\":[316]}");
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    char *out = run_stream(input, k, &o), *lines[8];
    ck_assert_int_eq(split_lines(out, lines, 8), 4);
    double a = first_score(lines[0]);
    char want[160];
    snprintf(want, sizeof want, "line 2 is %zu bytes, over the limit of %zu (64 bytes per token of the 400-token context)",
             limit + 1, limit);
    assert_error_line(lines[1], NULL, want);
    ck_assert_msg(strstr(lines[1], "\"id\"") == NULL, "an over-long line is not parsed: %s", lines[1]);
    ck_assert(first_score(lines[2]) == a);
    snprintf(want, sizeof want, "line 4 is %zu bytes", limit + 500 + strlen("{\"ids\":[316]}"));
    assert_error_line(lines[3], NULL, want);
    free(out);
    /* the library call refuses it too, without a line number */
    qj_buf b = {0};
    size_t n_tokens = 0;
    qrm_score_line(ctx, input + line2, limit + 1, &o, &b, &n_tokens);
    ck_assert_int_eq(n_tokens, 0);
    ck_assert_msg(strstr(b.buf, "the line is") != NULL, "%s", b.buf);
    qj_buf_free(&b);
    free(input);
}
END_TEST

/* A text too long for the model's positions (more than 64 bytes each) is
 * refused by its length, before the template and the tokenizer run; a
 * shorter one gets as far as the tokenizer (and then its token count). */
START_TEST(text_longer_than_the_positions_refused_by_length) {
    qrm_model_info info;
    qrm_model_get_info(model, &info);
    size_t limit = (size_t)64 * (size_t)info.max_positions, rl = 1;
    char *big = malloc(limit + 2);
    ck_assert(big != NULL);
    memset(big, 'a', limit + 1);
    big[limit + 1] = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    /* prompt + response one byte over */
    ck_assert_int_eq(qrm_encode_prompt_response(ctx, big, limit, "b", rl, &ids, &n), QRM_ETOOLONG);
    ck_assert_msg(strstr(qrm_ctx_error(ctx), "bytes, more than the model's") != NULL, "%s", qrm_ctx_error(ctx));
    ck_assert(ids == NULL && n == 0);
    /* under the bound (the roles' bytes count too): tokenized, into more tokens than
     * positions, which scoring refuses later */
    ck_assert_int_eq(qrm_encode_prompt_response(ctx, big, limit - 64, "b", rl, &ids, &n), QRM_OK);
    free(ids);
    /* the JSON form and the steps of a PRM line go through the same check */
    qj_buf b = {0};
    qj_buf_puts(&b, "[{\"role\":\"user\",\"content\":\"");
    qj_buf_puts(&b, big);
    qj_buf_puts(&b, "\"}]");
    ck_assert_int_eq(qrm_encode_chat(ctx, b.buf, b.len, &ids, &n, NULL), QRM_ETOOLONG);
    qj_buf_free(&b);
    free(big);
}
END_TEST

/* ---- heads: a process reward model, a multi-output linear head, ArmoRM ----
 *
 * The three head fixtures of tests/data/models (README.md there), converted
 * to f32, scored through qrm_score_line / qrm_score_stream and the binary,
 * and held to their expected.jsonl (float64 reference) within 1e-4 relative
 * with a 1e-6 absolute floor (the JSON prints %.9g). */

enum { HX_PRM, HX_ARMO, HX_HS2, HX_N };
static const char *const hx_fixture[HX_N] = {"qwen2-prm-tiny", "llama3-armorm-tiny",
                                            "llama3-helpsteer2-tiny"};
static const char *const hs2_names[5] = {"helpfulness", "correctness", "coherence", "complexity",
                                         "verbosity"};
static char *hx_dir, *hx_path[HX_N];
static qrm_model *hx_model[HX_N];
static qrm_ctx *hx_ctx[HX_N];

static void hx_setup(void) {
    char err[QRM_ERR_MAX], src[256];
    hx_dir = tu_tmpdir();
    for (int w = 0; w < HX_N; w++) {
        hx_path[w] = malloc(strlen(hx_dir) + 64);
        sprintf(hx_path[w], "%s/%s.qrm", hx_dir, hx_fixture[w]);
        snprintf(src, sizeof src, TEST_DATA "/models/%s", hx_fixture[w]);
        qrm_convert_opts o = {.hf_dir = src, .out_path = hx_path[w], .quant = "f32"};
        ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "convert %s: %s", hx_fixture[w], err);
        hx_model[w] = qrm_model_open(hx_path[w], err, sizeof err);
        ck_assert_msg(hx_model[w] != NULL, "%s: %s", hx_fixture[w], err);
        qrm_ctx_params p;
        qrm_ctx_params_default(&p);
        p.n_threads = 2;
        hx_ctx[w] = qrm_ctx_new(hx_model[w], &p, err, sizeof err);
        ck_assert_msg(hx_ctx[w] != NULL, "%s: %s", hx_fixture[w], err);
    }
}

static void hx_teardown(void) {
    for (int w = 0; w < HX_N; w++) {
        qrm_ctx_free(hx_ctx[w]);
        qrm_model_close(hx_model[w]);
        if (hx_path[w]) unlink(hx_path[w]);
        free(hx_path[w]);
        hx_ctx[w] = NULL, hx_model[w] = NULL, hx_path[w] = NULL;
    }
    rmdir(hx_dir);
    free(hx_dir);
}

static int hx_close(double got, double want) {
    return fabs(got - want) <= fmax(1e-6, 1e-4 * fabs(want));
}

/* expected.jsonl of a fixture, one parsed document per line */
typedef struct {
    int n;
    qj_doc *doc[16];
} hx_expected;

static void hx_add_line(const char *line, size_t len, void *arg) {
    hx_expected *e = arg;
    char err[200];
    ck_assert(e->n < 16);
    e->doc[e->n] = qj_parse(line, len, err, sizeof err);
    ck_assert_msg(e->doc[e->n] != NULL, "expected.jsonl line %d: %s", e->n + 1, err);
    e->n++;
}

static void hx_load(int w, hx_expected *e) {
    char path[256];
    e->n = 0;
    snprintf(path, sizeof path, TEST_DATA "/models/%s/expected.jsonl", hx_fixture[w]);
    tu_for_each_line(path, hx_add_line, e);
    ck_assert_msg(e->n == 12, "%s: %d expected lines, want 12", path, e->n);
}

static void hx_free_expected(hx_expected *e) {
    for (int i = 0; i < e->n; i++) qj_free(e->doc[i]);
}

static const qj_value *hx_ex(const hx_expected *e, int i) { return qj_root(e->doc[i]); }

/* One request line through qrm_score_line; the output object (malloc'd). */
static char *hx_score(int w, const char *line, const qrm_score_opts *o) {
    qj_buf b = {0};
    size_t n_tokens = 0;
    qrm_score_line(hx_ctx[w], line, strlen(line), o, &b, &n_tokens);
    ck_assert_msg(!b.oom && b.buf, "%s: no output for %s", hx_fixture[w], line);
    ck_assert_msg(!strchr(b.buf, '\n'), "output spans lines: %s", b.buf);
    return b.buf;
}

/* A line {"KEY": value} or {"K1": v1, "K2": v2} from values of a fixture line. */
static char *hx_request(const char *k1, const qj_value *v1, const char *k2, const qj_value *v2) {
    qj_buf b = {0};
    qj_buf_puts(&b, "{");
    qj_buf_put_string(&b, k1, strlen(k1));
    qj_buf_puts(&b, ":");
    qj_buf_put_value(&b, v1);
    if (k2) {
        qj_buf_puts(&b, ",");
        qj_buf_put_string(&b, k2, strlen(k2));
        qj_buf_puts(&b, ":");
        qj_buf_put_value(&b, v2);
    }
    qj_buf_puts(&b, "}");
    ck_assert(!b.oom);
    return b.buf;
}

static const char *hx_skip_string(const char *p) { /* p at the opening quote; returns the closing one */
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1]) p++;
    return p;
}

/* The end of the JSON value starting at v (one past it). */
static const char *hx_value_end(const char *v) {
    int d = 0;
    const char *e = v;
    for (; *e; e++) {
        if (*e == '"') {
            e = hx_skip_string(e);
            if (!*e) break;
            if (d == 0) return e + 1;
        } else if (*e == '[' || *e == '{') {
            d++;
        } else if (*e == ']' || *e == '}') {
            if (d == 0) break;
            if (--d == 0) return e + 1;
        } else if (*e == ',' && d == 0) {
            break;
        }
    }
    return e;
}

/* The text of top-level member KEY of a one-line JSON object, exactly as
 * printed (malloc'd), or NULL when absent. */
static char *hx_raw_member(const char *s, const char *key) {
    size_t kl = strlen(key);
    int depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '"') {
            const char *q = hx_skip_string(p);
            if (!*q) return NULL;
            if (depth == 1 && q[1] == ':' && (size_t)(q - p - 1) == kl && !memcmp(p + 1, key, kl)) {
                const char *v = q + 2;
                return strndup(v, (size_t)(hx_value_end(v) - v));
            }
            p = q;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        }
    }
    return NULL;
}

/* Splits the text of a JSON array into its elements' texts (malloc'd);
 * returns the count. */
static int hx_raw_items(const char *arr, char **items, int max) {
    ck_assert_msg(arr && arr[0] == '[', "not an array: %s", arr ? arr : "(absent)");
    int n = 0;
    const char *p = arr + 1;
    while (*p && *p != ']') {
        const char *e = hx_value_end(p);
        ck_assert_msg(n < max, "more than %d items in %s", max, arr);
        items[n++] = strndup(p, (size_t)(e - p));
        p = *e == ',' ? e + 1 : e;
    }
    return n;
}

static void hx_free_items(char **items, int n) {
    for (int i = 0; i < n; i++) free(items[i]);
}

static qj_doc *hx_parse(const char *line) {
    char err[200];
    qj_doc *d = qj_parse(line, strlen(line), err, sizeof err);
    ck_assert_msg(d != NULL, "output is not JSON: %s (%s)", line, err);
    ck_assert_msg(qj_root(d)->type == QJ_OBJECT, "output is not an object: %s", line);
    return d;
}

/* The numbers of array KEY of an output object; returns the count. */
static int hx_nums(const qj_value *obj, const char *key, double *out, int max, const char *line) {
    const qj_value *a = qj_get_type(obj, key, QJ_ARRAY);
    ck_assert_msg(a != NULL, "no '%s' array in %s", key, line);
    ck_assert_msg((int)a->len <= max, "'%s' has %u items (max %d): %s", key, a->len, max, line);
    for (uint32_t i = 0; i < a->len; i++) {
        ck_assert_msg(a->u.items[i].type == QJ_NUMBER, "'%s'[%u] is not a number: %s", key, i, line);
        out[i] = a->u.items[i].u.num;
    }
    return (int)a->len;
}

/* A PRM one-sequence output against fixture line i: step_scores within the
 * tolerance, step_positions exactly, "score" the min of the printed steps. */
static void hx_check_prm_output(const char *out, const qj_value *want, int line, const char *how) {
    qj_doc *d = hx_parse(out);
    const qj_value *r = qj_root(d);
    ck_assert_msg(qj_get(r, "error") == NULL, "PRM line %d (%s): %s", line, how, out);
    double got[32], exp[32], gp[32], ep[32];
    int n = hx_nums(r, "step_scores", got, 32, out), ne = hx_nums(want, "step_scores", exp, 32, "expected");
    int np = hx_nums(r, "step_positions", gp, 32, out);
    hx_nums(want, "step_positions", ep, 32, "expected");
    ck_assert_msg(n == ne && np == ne, "PRM line %d (%s): %d step scores, %d positions, want %d: %s",
                  line, how, n, np, ne, out);
    double mn = INFINITY;
    for (int k = 0; k < n; k++) {
        ck_assert_msg(hx_close(got[k], exp[k]), "PRM line %d (%s) step_scores[%d]: got %.9g, want %.9g",
                      line, how, k, got[k], exp[k]);
        ck_assert_msg(gp[k] == ep[k], "PRM line %d (%s) step_positions[%d]: got %g, want %g", line, how,
                      k, gp[k], ep[k]);
        mn = fmin(mn, got[k]);
    }
    double s;
    ck_assert_msg(qj_get_num(r, "score", &s), "PRM line %d (%s): no numeric 'score': %s", line, how, out);
    ck_assert_msg(s == mn, "PRM line %d (%s): score %.9g is not the min %.9g of the printed steps", line,
                  how, s, mn);
    qj_free(d);
}

START_TEST(heads_prm_ids_lines_match_reference) {
    hx_expected e;
    hx_load(HX_PRM, &e);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    for (int i = 0; i < e.n; i++) {
        char *line = hx_request("ids", qj_get(hx_ex(&e, i), "ids"), NULL, NULL);
        char *out = hx_score(HX_PRM, line, &o);
        hx_check_prm_output(out, hx_ex(&e, i), i + 1, "ids");
        free(line), free(out);
    }
    /* no separator: no step, and no aggregate */
    char *out = hx_score(HX_PRM, "{\"ids\":[1,2,3]}", &o);
    ck_assert_msg(!strcmp(out, "{\"step_scores\":[],\"step_positions\":[],\"score\":null}"),
                  "ids without a separator: %s", out);
    free(out);
    hx_free_expected(&e);
}
END_TEST

/* "prompt" + "steps" (lines 9-12) and "messages" (lines 5-12) give the
 * reference values, and exactly the ids line's output. */
START_TEST(heads_prm_steps_and_messages_lines) {
    hx_expected e;
    hx_load(HX_PRM, &e);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    int n_steps = 0, n_msgs = 0;
    for (int i = 0; i < e.n; i++) {
        const qj_value *r = hx_ex(&e, i), *steps = qj_get(r, "steps"), *msgs = qj_get(r, "messages");
        char *line = hx_request("ids", qj_get(r, "ids"), NULL, NULL);
        char *by_ids = hx_score(HX_PRM, line, &o);
        free(line);
        if (steps) {
            line = hx_request("prompt", qj_get(r, "prompt"), "steps", steps);
            char *out = hx_score(HX_PRM, line, &o);
            hx_check_prm_output(out, r, i + 1, "prompt/steps");
            ck_assert_msg(!strcmp(out, by_ids), "PRM line %d: prompt/steps gives %s, ids give %s", i + 1,
                          out, by_ids);
            free(line), free(out);
            n_steps++;
        }
        if (msgs) {
            line = hx_request("messages", msgs, NULL, NULL);
            char *out = hx_score(HX_PRM, line, &o);
            hx_check_prm_output(out, r, i + 1, "messages");
            ck_assert_msg(!strcmp(out, by_ids), "PRM line %d: messages give %s, ids give %s", i + 1, out,
                          by_ids);
            free(line), free(out);
            n_msgs++;
        }
        free(by_ids);
    }
    ck_assert_int_eq(n_steps, 4);
    ck_assert_int_eq(n_msgs, 8);
    hx_free_expected(&e);
}
END_TEST

/* Responses for the best-of-N checks on the PRM (steps of the fixture's
 * lines 11 and 12 are added in front). One is a step-prefix of another,
 * one is a duplicate (a tie). */
static const char *const prm_extra_responses[] = {
    "[\"So x = 17.\"]",
    "[\"So x = 17.\",\"Then 18 times 36 is 648.\"]",
    "[\"68 + 59 = 127.\",\"The answer is 71.\"]",
    "[\"So x = 17.\"]",
    "[\"Step 1: add 12 and 59.\",\"12 + 59 = 71.\",\"The answer is $\\\\boxed{71}$.\"]",
};
#define N_PRM_RESP (2 + (int)(sizeof prm_extra_responses / sizeof prm_extra_responses[0]))

/* {"prompt": P, "responses": [steps of line 11, steps of line 12, extras]};
 * resp[i] gets each response's JSON text (malloc'd). */
static char *prm_best_of_n_line(const hx_expected *e, const qj_value *prompt, char **resp) {
    qj_buf b = {0};
    for (int i = 0; i < 2; i++) {
        qj_buf r = {0};
        qj_buf_put_value(&r, qj_get(hx_ex(e, 10 + i), "steps"));
        resp[i] = r.buf;
    }
    for (int i = 2; i < N_PRM_RESP; i++) resp[i] = strdup(prm_extra_responses[i - 2]);
    qj_buf_puts(&b, "{\"prompt\":");
    qj_buf_put_value(&b, prompt);
    qj_buf_puts(&b, ",\"responses\":[");
    for (int i = 0; i < N_PRM_RESP; i++) qj_buf_printf(&b, "%s%s", i ? "," : "", resp[i]);
    qj_buf_puts(&b, "]}");
    ck_assert(!b.oom);
    return b.buf;
}

START_TEST(heads_prm_best_of_n_equals_steps_alone) {
    hx_expected e;
    hx_load(HX_PRM, &e);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    for (int pl = 10; pl < 12; pl++) { /* the prompts of lines 11 and 12 */
        const qj_value *prompt = qj_get(hx_ex(&e, pl), "prompt");
        char *resp[N_PRM_RESP];
        char *line = prm_best_of_n_line(&e, prompt, resp);
        char *out = hx_score(HX_PRM, line, &o);
        ck_assert_msg(strstr(out, "\"error\"") == NULL, "best-of-N line failed: %s -> %s", line, out);
        ck_assert_msg(hx_raw_member(out, "kept") == NULL, "'kept' without --best/--top-k: %s", out);
        char *ss = hx_raw_member(out, "step_scores"), *sc = hx_raw_member(out, "scores");
        char *ss_items[16], *sc_items[16];
        ck_assert_int_eq(hx_raw_items(ss, ss_items, 16), N_PRM_RESP);
        ck_assert_int_eq(hx_raw_items(sc, sc_items, 16), N_PRM_RESP);
        for (int i = 0; i < N_PRM_RESP; i++) {
            qj_buf one = {0};
            qj_buf_puts(&one, "{\"prompt\":");
            qj_buf_put_value(&one, prompt);
            qj_buf_printf(&one, ",\"steps\":%s}", resp[i]);
            char *alone = hx_score(HX_PRM, one.buf, &o);
            char *a_ss = hx_raw_member(alone, "step_scores"), *a_sc = hx_raw_member(alone, "score");
            ck_assert_msg(a_ss && a_sc, "steps line failed: %s -> %s", one.buf, alone);
            ck_assert_msg(!strcmp(ss_items[i], a_ss),
                          "prompt %d response %d %s: best-of-N step_scores %s, alone %s", pl + 1, i,
                          resp[i], ss_items[i], a_ss);
            ck_assert_msg(!strcmp(sc_items[i], a_sc), "prompt %d response %d: best-of-N score %s, alone %s",
                          pl + 1, i, sc_items[i], a_sc);
            /* the fixture's own steps for this prompt: the reference values */
            if (i == pl - 10) hx_check_prm_output(alone, hx_ex(&e, pl), pl + 1, "steps in best-of-N");
            free(a_ss), free(a_sc), free(alone);
            qj_buf_free(&one);
        }
        /* the duplicate responses 2 and 5 score the same */
        ck_assert_str_eq(ss_items[2], ss_items[5]);
        hx_free_items(ss_items, N_PRM_RESP), hx_free_items(sc_items, N_PRM_RESP);
        hx_free_items(resp, N_PRM_RESP);
        free(ss), free(sc), free(line), free(out);
    }
    hx_free_expected(&e);
}
END_TEST

static const char *const agg_names[4] = {"min", "last", "mean", "prod"};

/* The aggregate of the printed step scores (each %.9g of a float, read back
 * as that float). */
static double hx_aggregate(const double *printed, int n, int mode) {
    if (n == 0) return NAN;
    double r = mode == QRM_AGG_PROD ? 1 : mode == QRM_AGG_MIN ? INFINITY : 0;
    for (int i = 0; i < n; i++) {
        double v = (float)printed[i];
        r = mode == QRM_AGG_MIN ? fmin(r, v) : mode == QRM_AGG_PROD ? r * v : r + v;
    }
    return mode == QRM_AGG_LAST ? (float)printed[n - 1] : mode == QRM_AGG_MEAN ? r / n : r;
}

static void hx_check_aggregate(double got, const double *steps, int n, int mode, const char *what) {
    double want = hx_aggregate(steps, n, mode);
    if (mode == QRM_AGG_MIN || mode == QRM_AGG_LAST)
        ck_assert_msg((float)got == (float)want, "%s --aggregate %s: got %.9g, want %.9g", what,
                      agg_names[mode], got, want);
    else
        ck_assert_msg(fabs(got - want) <= 1e-7 * fabs(want) + 1e-30,
                      "%s --aggregate %s: got %.9g, want %.9g", what, agg_names[mode], got, want);
}

START_TEST(heads_prm_aggregate_modes) {
    for (int m = 0; m < 4; m++) {
        ck_assert_int_eq(qrm_aggregate_parse(agg_names[m]), m);
    }
    ck_assert_int_eq(qrm_aggregate_parse("max"), -1);
    ck_assert_int_eq(qrm_aggregate_parse(""), -1);
    hx_expected e;
    hx_load(HX_PRM, &e);
    const qj_value *r12 = hx_ex(&e, 11);
    char *steps_line = hx_request("prompt", qj_get(r12, "prompt"), "steps", qj_get(r12, "steps"));
    char *resp[N_PRM_RESP];
    char *bon_line = prm_best_of_n_line(&e, qj_get(r12, "prompt"), resp);
    double single[4];
    for (int m = 0; m < 4; m++) {
        qrm_score_opts o = {.mode = QRM_KEEP_ALL, .aggregate = (qrm_aggregate)m};
        char what[64];
        /* one sequence: "score" */
        char *out = hx_score(HX_PRM, steps_line, &o);
        qj_doc *d = hx_parse(out);
        double st[32];
        int n = hx_nums(qj_root(d), "step_scores", st, 32, out);
        ck_assert_msg(n == 4, "line 12 has 4 steps: %s", out);
        ck_assert_msg(qj_get_num(qj_root(d), "score", &single[m]), "no score: %s", out);
        snprintf(what, sizeof what, "PRM line 12 steps");
        hx_check_aggregate(single[m], st, n, m, what);
        qj_free(d), free(out);
        /* best-of-N: "scores" */
        out = hx_score(HX_PRM, bon_line, &o);
        d = hx_parse(out);
        const qj_value *ss = qj_get_type(qj_root(d), "step_scores", QJ_ARRAY);
        double sc[16];
        ck_assert_int_eq(hx_nums(qj_root(d), "scores", sc, 16, out), N_PRM_RESP);
        ck_assert_msg(ss && (int)ss->len == N_PRM_RESP, "step_scores: %s", out);
        for (int i = 0; i < N_PRM_RESP; i++) {
            const qj_value *a = &ss->u.items[i];
            ck_assert_msg(a->type == QJ_ARRAY && a->len >= 1 && a->len <= 32, "response %d: %s", i, out);
            for (uint32_t k = 0; k < a->len; k++) st[k] = a->u.items[k].u.num;
            snprintf(what, sizeof what, "best-of-N response %d", i);
            hx_check_aggregate(sc[i], st, (int)a->len, m, what);
        }
        qj_free(d), free(out);
    }
    /* line 12's four aggregates are all different numbers: the option is applied */
    for (int a = 0; a < 4; a++)
        for (int b = a + 1; b < 4; b++)
            ck_assert_msg(fabs(single[a] - single[b]) > 1e-3, "--aggregate %s and %s both give %.9g",
                          agg_names[a], agg_names[b], single[a]);
    hx_free_items(resp, N_PRM_RESP);
    free(steps_line), free(bon_line);
    hx_free_expected(&e);
}
END_TEST

/* kept[] of an output: indices, and the raw "score" and "response" texts */
typedef struct {
    int n, index[16];
    char *score[16], *response[16];
} hx_kept;

static void hx_get_kept(const char *out, hx_kept *k) {
    char *raw = hx_raw_member(out, "kept"), *items[16];
    ck_assert_msg(raw != NULL, "no 'kept': %s", out);
    k->n = hx_raw_items(raw, items, 16);
    for (int i = 0; i < k->n; i++) {
        qj_doc *d = hx_parse(items[i]);
        int64_t v;
        ck_assert_msg(qj_get_int(qj_root(d), "index", &v), "kept[%d] has no index: %s", i, out);
        k->index[i] = (int)v;
        k->score[i] = hx_raw_member(items[i], "score");
        k->response[i] = hx_raw_member(items[i], "response");
        ck_assert_msg(k->score[i] && k->response[i], "kept[%d] lacks score/response: %s", i, out);
        qj_free(d);
    }
    hx_free_items(items, k->n);
    free(raw);
}

static void hx_free_kept(hx_kept *k) {
    for (int i = 0; i < k->n; i++) free(k->score[i]), free(k->response[i]);
    k->n = 0;
}

/* Indices sorted by value, highest first, ties in input order. */
static void hx_order(const double *v, int n, int *order) {
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: stable */
        for (int j = i; j > 0 && v[order[j]] > v[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
}

/* --best, --top-k and --min-score on a prompt/responses line, ranked by
 * value[i] (what "scores"[i] says for ranking); sc_raw[i] is the text the
 * kept entry's "score" must repeat, resp[i] the response's text. */
static void hx_check_selection(int w, const char *line, qrm_score_opts base, const double *value,
                               char **sc_raw, char **resp, int n, const char *what) {
    int order[16];
    hx_order(value, n, order);
    hx_kept k;
    qrm_score_opts o = base;
    o.mode = QRM_KEEP_BEST;
    char *out = hx_score(w, line, &o);
    hx_get_kept(out, &k);
    ck_assert_msg(k.n == 1, "%s --best kept %d: %s", what, k.n, out);
    ck_assert_msg(k.index[0] == order[0], "%s --best kept response %d (%g), the highest is %d (%g)", what,
                  k.index[0], value[k.index[0]], order[0], value[order[0]]);
    ck_assert_msg(!strcmp(k.score[0], sc_raw[order[0]]), "%s --best: kept score %s, scores[%d] is %s",
                  what, k.score[0], order[0], sc_raw[order[0]]);
    ck_assert_msg(!strcmp(k.response[0], resp[order[0]]), "%s --best: kept response %s, want %s", what,
                  k.response[0], resp[order[0]]);
    hx_free_kept(&k), free(out);

    o.mode = QRM_KEEP_TOP_K, o.top_k = 3;
    out = hx_score(w, line, &o);
    hx_get_kept(out, &k);
    ck_assert_msg(k.n == 3, "%s --top-k 3 kept %d: %s", what, k.n, out);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(k.index[i] == order[i], "%s --top-k 3: kept[%d] is response %d, want %d: %s", what,
                      i, k.index[i], order[i], out);
        ck_assert_msg(!strcmp(k.score[i], sc_raw[order[i]]) && !strcmp(k.response[i], resp[order[i]]),
                      "%s --top-k 3: kept[%d] does not repeat response %d's score/text: %s", what, i,
                      order[i], out);
    }
    hx_free_kept(&k), free(out);

    o.mode = QRM_KEEP_TOP_K, o.top_k = n + 4;
    out = hx_score(w, line, &o);
    hx_get_kept(out, &k);
    ck_assert_msg(k.n == n, "%s --top-k %d kept %d of %d", what, n + 4, k.n, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(k.index[i] == order[i], "%s --top-k all: kept[%d] is %d, want %d", what, i,
                      k.index[i], order[i]);
    hx_free_kept(&k), free(out);

    o.mode = QRM_KEEP_MIN_SCORE, o.min_score = value[order[2]];
    out = hx_score(w, line, &o);
    hx_get_kept(out, &k);
    int j = 0;
    for (int i = 0; i < n; i++) {
        if (!(value[i] >= value[order[2]])) continue;
        ck_assert_msg(j < k.n && k.index[j] == i, "%s --min-score %.9g: response %d (%.9g) missing or out "
                      "of input order: %s", what, value[order[2]], i, value[i], out);
        j++;
    }
    ck_assert_msg(j == k.n, "%s --min-score %.9g kept %d, want %d: %s", what, value[order[2]], k.n, j, out);
    hx_free_kept(&k), free(out);
}

START_TEST(heads_prm_best_top_k_rank_by_aggregate) {
    hx_expected e;
    hx_load(HX_PRM, &e);
    char *resp[N_PRM_RESP];
    char *line = prm_best_of_n_line(&e, qj_get(hx_ex(&e, 11), "prompt"), resp);
    int best[4];
    for (int m = 0; m < 4; m++) {
        qrm_score_opts o = {.mode = QRM_KEEP_ALL, .aggregate = (qrm_aggregate)m};
        char *out = hx_score(HX_PRM, line, &o);
        qj_doc *d = hx_parse(out);
        double sc[16];
        char *raw = hx_raw_member(out, "scores"), *sc_raw[16];
        ck_assert_int_eq(hx_nums(qj_root(d), "scores", sc, 16, out), N_PRM_RESP);
        ck_assert_int_eq(hx_raw_items(raw, sc_raw, 16), N_PRM_RESP);
        char what[64];
        snprintf(what, sizeof what, "PRM --aggregate %s", agg_names[m]);
        hx_check_selection(HX_PRM, line, o, sc, sc_raw, resp, N_PRM_RESP, what);
        int order[16];
        hx_order(sc, N_PRM_RESP, order);
        best[m] = order[0];
        hx_free_items(sc_raw, N_PRM_RESP);
        free(raw), qj_free(d), free(out);
    }
    printf("PRM best-of-%d, best by min/last/mean/prod: %d %d %d %d\n", N_PRM_RESP, best[0], best[1],
           best[2], best[3]);
    /* the data separates the modes (min: a one-step answer at 0.31; last: line 11's steps end at
     * 0.55 after a 0.25 step), so a ranking that ignored --aggregate would show */
    ck_assert_msg(best[QRM_AGG_MIN] != best[QRM_AGG_LAST],
                  "--aggregate min and last both pick response %d: the data cannot show the ranking "
                  "follows the aggregate", best[QRM_AGG_MIN]);
    hx_free_items(resp, N_PRM_RESP);
    free(line);
    hx_free_expected(&e);
}
END_TEST

/* Error lines on the PRM: one error object each, the caller's "id" echoed,
 * no partial result, and the lines around them scored as usual. */
START_TEST(heads_prm_error_lines) {
    const char *good = "{\"id\":\"ok\",\"prompt\":\"What is 12 + 59?\",\"steps\":[\"a\",\"b\"]}";
    static const struct {
        const char *line, *frag1, *frag2;
    } bad[] = {
        {"{\"id\":\"sep\",\"prompt\":\"Q\",\"steps\":[\"a\",\"b<extra_0>c\"]}", "step 1", "separator"},
        {"{\"id\":\"sep-end\",\"prompt\":\"Q\",\"steps\":[\"a<extra_0>\"]}", "step 0", "separator"},
        {"{\"id\":\"empty\",\"prompt\":\"Q\",\"steps\":[\"a\",\"\"]}", "step 1", "empty"},
        {"{\"id\":\"none\",\"prompt\":\"Q\",\"steps\":[]}", "'steps'", "non-empty"},
        {"{\"id\":\"num\",\"prompt\":\"Q\",\"steps\":[\"a\",3]}", "element 1", "string"},
        {"{\"id\":\"strresp\",\"prompt\":\"Q\",\"responses\":[\"a\",\"b\"]}", "element 0", "steps"},
        {"{\"id\":\"mixresp\",\"prompt\":\"Q\",\"responses\":[[\"a\"],\"b\"]}", "element 1", "steps"},
        {"{\"id\":\"both\",\"prompt\":\"Q\",\"steps\":[\"a\"],\"responses\":[[\"a\"]]}",
         "exactly one of", ""},
        {"{\"id\":\"nopr\",\"steps\":[\"a\"]}", "exactly one of", ""},
        {"{\"id\":\"rsep\",\"prompt\":\"Q\",\"responses\":[[\"a\"],[\"b<extra_0>\"]]}", "response 1",
         "separator"},
        {"{\"id\":\"rempty\",\"prompt\":\"Q\",\"responses\":[[\"a\"],[\"b\",\"\"]]}", "response 1", "empty"},
        {"{\"id\":\"rnone\",\"prompt\":\"Q\",\"responses\":[[\"a\"],[]]}", "response 1", "non-empty"},
    };
    int nb = (int)(sizeof bad / sizeof bad[0]);
    qj_buf in = {0};
    qj_buf_printf(&in, "%s\n", good);
    for (int i = 0; i < nb; i++) qj_buf_printf(&in, "%s\n", bad[i].line);
    qj_buf_printf(&in, "%s\n", good);
    FILE *fi = fmemopen(in.buf, in.len, "r");
    char *out = NULL;
    size_t out_len = 0;
    FILE *fo = open_memstream(&out, &out_len);
    ck_assert(fi && fo);
    qrm_score_opts o = {.mode = QRM_KEEP_BEST};
    ck_assert_int_eq(qrm_score_stream(hx_ctx[HX_PRM], fi, fo, &o), 0);
    fclose(fi), fclose(fo);
    char *got[32];
    int n = split_lines(out, got, 32);
    ck_assert_msg(n == nb + 2, "%d output lines for %d input lines", n, nb + 2);
    for (int i = 0; i < nb; i++) {
        qj_doc *d = hx_parse(got[i + 1]);
        const qj_value *r = qj_root(d);
        const char *err = qj_get_str(r, "error");
        ck_assert_msg(err != NULL, "no error for %s: %s", bad[i].line, got[i + 1]);
        ck_assert_msg(strstr(err, bad[i].frag1) && strstr(err, bad[i].frag2),
                      "error for %s is '%s', lacks '%s' / '%s'", bad[i].line, err, bad[i].frag1,
                      bad[i].frag2);
        const char *id = qj_get_str(r, "id");
        ck_assert_msg(id && !strncmp(bad[i].line + 7, id, strlen(id)), "id not echoed: %s", got[i + 1]);
        ck_assert_msg(!qj_get(r, "step_scores") && !qj_get(r, "scores") && !qj_get(r, "score") &&
                      !qj_get(r, "kept"), "partial result in an error line: %s", got[i + 1]);
        ck_assert_msg(r->len == 2, "an error line has 'id' and 'error' only: %s", got[i + 1]);
        qj_free(d);
    }
    ck_assert_msg(strstr(got[0], "\"step_scores\":[") && !strstr(got[0], "error"), "%s", got[0]);
    ck_assert_msg(!strcmp(got[0], got[n - 1]), "the same line before and after the errors: %s vs %s",
                  got[0], got[n - 1]);
    free(out);
    qj_buf_free(&in);
}
END_TEST

/* "steps" and step lists are for a PRM only. */
START_TEST(heads_steps_refused_by_sequence_heads) {
    static const struct {
        const char *line, *frag;
    } bad[] = {
        {"{\"id\":1,\"prompt\":\"Q\",\"steps\":[\"a\",\"b\"]}", "needs a process reward model"},
        {"{\"id\":2,\"prompt\":\"Q\",\"steps\":[\"a<extra_0>\"]}", "needs a process reward model"},
        {"{\"id\":3,\"prompt\":\"Q\",\"responses\":[[\"a\"],[\"b\"]]}", "element 0 is not a string"},
        {"{\"id\":4,\"prompt\":\"Q\",\"steps\":[\"a\"],\"responses\":[\"a\"]}", "exactly one of"},
    };
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    for (int w = HX_ARMO; w <= HX_HS2; w++)
        for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
            char *out = hx_score(w, bad[i].line, &o);
            qj_doc *d = hx_parse(out);
            const char *err = qj_get_str(qj_root(d), "error");
            ck_assert_msg(err && strstr(err, bad[i].frag), "%s: %s gives %s, want an error with '%s'",
                          hx_fixture[w], bad[i].line, out, bad[i].frag);
            ck_assert_msg(!qj_get(qj_root(d), "scores"), "%s: partial result %s", hx_fixture[w], out);
            qj_free(d), free(out);
        }
}
END_TEST

/* A one-point output: "scores" is [one object]; its keys are the model's
 * output names in order; values[] gets its values. */
static void hx_point(const qj_value *pt, const qrm_model *m, double *values, const char *out) {
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    ck_assert_msg(pt->type == QJ_OBJECT, "a score point is not an object: %s", out);
    ck_assert_msg((int)pt->len == info.n_outputs, "%u values, the model has %d outputs: %s", pt->len,
                  info.n_outputs, out);
    for (int k = 0; k < info.n_outputs; k++) {
        const qj_member *mem = &pt->u.members[k];
        ck_assert_msg(!strcmp(mem->key, qrm_model_output_name(m, k)), "key %d is '%s', output %d is '%s': %s",
                      k, mem->key, k, qrm_model_output_name(m, k), out);
        ck_assert_msg(mem->value.type == QJ_NUMBER, "'%s' is not a number: %s", mem->key, out);
        values[k] = mem->value.u.num;
    }
}

static void hx_one_point(const char *out, const qrm_model *m, double *values) {
    qj_doc *d = hx_parse(out);
    const qj_value *s = qj_get_type(qj_root(d), "scores", QJ_ARRAY);
    ck_assert_msg(s && s->len == 1, "want \"scores\": [one object]: %s", out);
    ck_assert_msg(!qj_get(qj_root(d), "step_scores") && !qj_get(qj_root(d), "score"),
                  "PRM fields on a sequence head: %s", out);
    hx_point(&s->u.items[0], m, values, out);
    qj_free(d);
}

START_TEST(heads_multi_output_objects_match_reference) {
    qrm_model_info info;
    qrm_model_get_info(hx_model[HX_HS2], &info);
    ck_assert_int_eq(info.n_outputs, 5);
    for (int k = 0; k < 5; k++) ck_assert_str_eq(qrm_model_output_name(hx_model[HX_HS2], k), hs2_names[k]);
    hx_expected e;
    hx_load(HX_HS2, &e);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    for (int i = 0; i < e.n; i++) {
        char *line = hx_request("ids", qj_get(hx_ex(&e, i), "ids"), NULL, NULL);
        char *out = hx_score(HX_HS2, line, &o);
        double got[QRM_MAX_OUTPUTS], want[8];
        hx_one_point(out, hx_model[HX_HS2], got);
        ck_assert_int_eq(hx_nums(hx_ex(&e, i), "scores", want, 8, "expected"), 5);
        for (int k = 0; k < 5; k++)
            ck_assert_msg(hx_close(got[k], want[k]), "helpsteer2 line %d '%s': got %.9g, want %.9g", i + 1,
                          hs2_names[k], got[k], want[k]);
        free(line), free(out);
    }
    hx_free_expected(&e);
}
END_TEST

static const char *const hs2_responses[] = {
    "\"7\"", "\"Seven is a prime number.\"", "\"8\"", "\"I like cats.\"",
    "\"The primes below ten are 2, 3, 5 and 7.\"", "\"Nine.\"", "\"2\"",
};
#define N_HS2_RESP ((int)(sizeof hs2_responses / sizeof hs2_responses[0]))

/* --rank-by NAME: the output that ranks (--best, --top-k) and filters
 * (--min-score); every kept entry repeats its response's whole point. */
static void hx_check_rank_by(int w, const char *line, int n_resp, char **resp, int *best) {
    qrm_model_info info;
    qrm_model_get_info(hx_model[w], &info);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    char *out = hx_score(w, line, &o);
    qj_doc *d = hx_parse(out);
    const qj_value *s = qj_get_type(qj_root(d), "scores", QJ_ARRAY);
    ck_assert_msg(s && (int)s->len == n_resp, "want %d points: %s", n_resp, out);
    static double v[16][QRM_MAX_OUTPUTS];
    for (int i = 0; i < n_resp; i++) hx_point(&s->u.items[i], hx_model[w], v[i], out);
    char *raw = hx_raw_member(out, "scores"), *pt_raw[16];
    ck_assert_int_eq(hx_raw_items(raw, pt_raw, 16), n_resp);
    for (int r = 0; r < info.n_outputs; r++) {
        double col[16];
        for (int i = 0; i < n_resp; i++) col[i] = v[i][r];
        qrm_score_opts base = {.mode = QRM_KEEP_ALL, .rank_by = r};
        char what[96];
        snprintf(what, sizeof what, "%s --rank-by %s", hx_fixture[w], qrm_model_output_name(hx_model[w], r));
        hx_check_selection(w, line, base, col, pt_raw, resp, n_resp, what);
        int order[16];
        hx_order(col, n_resp, order);
        best[r] = order[0];
    }
    hx_free_items(pt_raw, n_resp);
    free(raw), qj_free(d), free(out);
}

START_TEST(heads_rank_by_chooses_the_output) {
    char *resp[N_HS2_RESP];
    qj_buf b = {0};
    qj_buf_puts(&b, "{\"prompt\":\"Name a prime.\",\"responses\":[");
    for (int i = 0; i < N_HS2_RESP; i++) {
        resp[i] = (char *)hs2_responses[i];
        qj_buf_printf(&b, "%s%s", i ? "," : "", resp[i]);
    }
    qj_buf_puts(&b, "]}");
    int best[QRM_MAX_OUTPUTS];
    hx_check_rank_by(HX_HS2, b.buf, N_HS2_RESP, resp, best);
    printf("helpsteer2 best of %d by output:", N_HS2_RESP);
    int distinct = 0;
    for (int r = 0; r < 5; r++) {
        printf(" %s=%d", hs2_names[r], best[r]);
        if (best[r] != best[0]) distinct = 1;
    }
    printf("\n");
    ck_assert_msg(distinct, "every output picks response %d: the data cannot show --rank-by", best[0]);
    /* the default ranks by output 0 */
    qrm_score_opts o0 = {.mode = QRM_KEEP_BEST}, o1 = {.mode = QRM_KEEP_BEST, .rank_by = 0};
    char *a = hx_score(HX_HS2, b.buf, &o0), *c = hx_score(HX_HS2, b.buf, &o1);
    ck_assert_str_eq(a, c);
    free(a), free(c);
    qj_buf_free(&b);

    /* ArmoRM: the score, each objective and each gate weight rank alike */
    qj_buf_puts(&b, "{\"prompt\":\"Name a prime.\",\"responses\":[");
    for (int i = 0; i < N_HS2_RESP; i++) qj_buf_printf(&b, "%s%s", i ? "," : "", resp[i]);
    qj_buf_puts(&b, "]}");
    hx_check_rank_by(HX_ARMO, b.buf, N_HS2_RESP, resp, best);
    qj_buf_free(&b);
}
END_TEST

/* A prompt/responses line on a sequence head: each point, as printed, is
 * the point of that conversation scored alone as a "messages" line. */
static void hx_check_responses_alone(int w, const char *prompt, const char *const *resp, int n) {
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    qj_buf b = {0};
    qj_buf_puts(&b, "{\"prompt\":");
    qj_buf_put_string(&b, prompt, strlen(prompt));
    qj_buf_puts(&b, ",\"responses\":[");
    for (int i = 0; i < n; i++) {
        if (i) qj_buf_puts(&b, ",");
        qj_buf_put_string(&b, resp[i], strlen(resp[i]));
    }
    qj_buf_puts(&b, "]}");
    char *out = hx_score(w, b.buf, &o), *raw = hx_raw_member(out, "scores"), *pts[16];
    ck_assert_msg(raw && hx_raw_items(raw, pts, 16) == n, "%s: %s -> %s", hx_fixture[w], b.buf, out);
    for (int i = 0; i < n; i++) {
        b.len = 0;
        qj_buf_puts(&b, "{\"messages\":[{\"role\":\"user\",\"content\":");
        qj_buf_put_string(&b, prompt, strlen(prompt));
        qj_buf_puts(&b, "},{\"role\":\"assistant\",\"content\":");
        qj_buf_put_string(&b, resp[i], strlen(resp[i]));
        qj_buf_puts(&b, "}]}");
        char *alone = hx_score(w, b.buf, &o), *a_raw = hx_raw_member(alone, "scores");
        ck_assert_msg(a_raw != NULL, "%s: %s -> %s", hx_fixture[w], b.buf, alone);
        ck_assert_msg(strlen(a_raw) == strlen(pts[i]) + 2 && !strncmp(a_raw + 1, pts[i], strlen(pts[i])),
                      "%s response %d '%s': best-of-N point %s, alone %s", hx_fixture[w], i, resp[i],
                      pts[i], a_raw);
        free(a_raw), free(alone);
    }
    hx_free_items(pts, n);
    free(raw), free(out);
    qj_buf_free(&b);
}

START_TEST(heads_armorm_names_and_values) {
    const qrm_model *m = hx_model[HX_ARMO];
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    ck_assert_str_eq(info.head, "gated");
    ck_assert_int_eq(info.per_step, 0);
    ck_assert_int_eq(info.n_outputs, 11);
    char name[32];
    ck_assert_str_eq(qrm_model_output_name(m, 0), "score");
    for (int k = 0; k < 5; k++) {
        snprintf(name, sizeof name, "objective_%d", k);
        ck_assert_str_eq(qrm_model_output_name(m, 1 + k), name);
        snprintf(name, sizeof name, "gate:objective_%d", k);
        ck_assert_str_eq(qrm_model_output_name(m, 6 + k), name);
    }
    ck_assert_ptr_null(qrm_model_output_name(m, 11));
    hx_expected e;
    hx_load(HX_ARMO, &e);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    int n_msgs = 0;
    for (int i = 0; i < e.n; i++) {
        const qj_value *r = hx_ex(&e, i);
        double want[11], s;
        ck_assert(qj_get_num(r, "score", &s));
        want[0] = s;
        ck_assert_int_eq(hx_nums(r, "rewards", want + 1, 5, "expected"), 5);
        ck_assert_int_eq(hx_nums(r, "gating_output", want + 6, 5, "expected"), 5);
        for (int form = 0; form < 2; form++) {
            const char *key = form ? "messages" : "ids";
            if (!qj_get(r, key)) continue;
            n_msgs += form;
            char *line = hx_request(key, qj_get(r, key), NULL, NULL);
            char *out = hx_score(HX_ARMO, line, &o);
            double got[QRM_MAX_OUTPUTS];
            hx_one_point(out, m, got);
            for (int k = 0; k < 11; k++)
                ck_assert_msg(hx_close(got[k], want[k]), "ArmoRM line %d (%s) '%s': got %.9g, want %.9g",
                              i + 1, key, qrm_model_output_name(m, k), got[k], want[k]);
            free(line), free(out);
        }
    }
    ck_assert_int_eq(n_msgs, 10);
    hx_free_expected(&e);

    /* no gating pattern: an error object, and the run goes on */
    const char *input = "{\"id\":\"raw\",\"ids\":[316,5,6,7]}\n"
                        "{\"id\":\"user-only\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi.\"}]}\n"
                        "{\"id\":\"ok\",\"prompt\":\"Hi.\",\"responses\":[\"Hello.\"]}\n";
    FILE *fi = fmemopen((void *)input, strlen(input), "r");
    char *out = NULL;
    size_t out_len = 0;
    FILE *fo = open_memstream(&out, &out_len);
    ck_assert(fi && fo);
    ck_assert_int_eq(qrm_score_stream(hx_ctx[HX_ARMO], fi, fo, &o), 0);
    fclose(fi), fclose(fo);
    char *got[8];
    ck_assert_int_eq(split_lines(out, got, 8), 3);
    assert_error_line(got[0], "raw", "gating pattern");
    assert_error_line(got[1], "user-only", "gating pattern");
    double v[QRM_MAX_OUTPUTS];
    hx_one_point(got[2], m, v);
    for (int k = 0; k < 11; k++) ck_assert_msg(isfinite(v[k]), "%s", got[2]);
    free(out);
    /* best-of-N with a shared prefix == each conversation alone, bit for bit
     * (the gate is read in the shared prompt, the rewards in each response) */
    static const char *const resp[] = {"Hello.", "Hi there, how can I help?", "", "Hello."};
    hx_check_responses_alone(HX_ARMO, "Hi.", resp, 4);
    hx_check_responses_alone(HX_HS2, "Hi.", resp, 4);
}
END_TEST

/* ---- the binary ---- */

/* Runs a shell command; returns its stdout (malloc'd) and exit status. */
static char *hx_run(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "popen %s", cmd);
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* The line of text that starts with prefix (malloc'd, without newline). */
static char *hx_find_line(const char *text, const char *prefix) {
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!strncmp(p, prefix, strlen(prefix))) return strndup(p, len);
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

/* s in single quotes for sh */
static void hx_shell_quote(qj_buf *b, const char *s) {
    qj_buf_puts(b, "'");
    for (; *s; s++) qj_buf_puts(b, *s == '\'' ? "'\\''" : (char[2]){*s, 0});
    qj_buf_puts(b, "'");
}

/* Space-separated numbers; returns the count. */
static int hx_split_nums(const char *s, double *v, int max) {
    int n = 0;
    char *end;
    for (;;) {
        while (*s == ' ') s++;
        if (!*s || *s == '\n') break;
        ck_assert_msg(n < max, "more than %d numbers", max);
        v[n++] = strtod(s, &end);
        ck_assert_msg(end != s, "not a number at '%s'", s);
        s = end;
    }
    return n;
}

START_TEST(heads_cli_binary) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) {
        printf(QRM_TEST_BIN_DIR "/qrm not built: skipping the binary checks of the heads\n");
        return;
    }
    char *isa = getenv("QRM_ISA") ? strdup(getenv("QRM_ISA")) : NULL;
    unsetenv("QRM_ISA");
    qj_buf cmd = {0};
    int st;

    /* qrm info -m: the head and the output names */
    static const char *const head_prefix[HX_N] = {"head: prm,", "head: gated,", "head: linear,"};
    static const char *const outputs[HX_N] = {
        "outputs: step",
        "outputs: score objective_0 objective_1 objective_2 objective_3 objective_4 gate:objective_0 "
        "gate:objective_1 gate:objective_2 gate:objective_3 gate:objective_4",
        "outputs: helpfulness correctness coherence complexity verbosity"};
    for (int w = 0; w < HX_N; w++) {
        cmd.len = 0;
        qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm info -m %s", hx_path[w]);
        char *out = hx_run(cmd.buf, &st);
        ck_assert_msg(st == 0, "%s: exit %d", cmd.buf, st);
        char *head = hx_find_line(out, "head: "), *outs = hx_find_line(out, "outputs:");
        ck_assert_msg(head && !strncmp(head, head_prefix[w], strlen(head_prefix[w])),
                      "%s: head line '%s', want '%s...'", hx_fixture[w], head ? head : "(none)",
                      head_prefix[w]);
        ck_assert_msg(outs && !strcmp(outs, outputs[w]), "%s: '%s', want '%s'", hx_fixture[w],
                      outs ? outs : "(no outputs line)", outputs[w]);
        free(head), free(outs), free(out);
    }

    hx_expected prm, hs2, armo;
    hx_load(HX_PRM, &prm);
    hx_load(HX_HS2, &hs2);
    hx_load(HX_ARMO, &armo);

    /* --prompt P --step S...: the step scores, space-separated, as the JSONL gives them */
    const qj_value *r11 = hx_ex(&prm, 10), *steps = qj_get(r11, "steps");
    cmd.len = 0;
    qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s -t 2 --prompt ", hx_path[HX_PRM]);
    hx_shell_quote(&cmd, qj_get_str(r11, "prompt"));
    for (uint32_t k = 0; k < steps->len; k++) {
        qj_buf_puts(&cmd, " --step ");
        hx_shell_quote(&cmd, steps->u.items[k].u.str);
    }
    char *out = hx_run(cmd.buf, &st);
    ck_assert_msg(st == 0, "%s: exit %d", cmd.buf, st);
    double got[32], want[32];
    int n = hx_split_nums(out, got, 32), nw = hx_nums(r11, "step_scores", want, 32, "expected");
    ck_assert_msg(n == nw, "--step x%d printed %d numbers: %s", nw, n, out);
    for (int k = 0; k < n; k++)
        ck_assert_msg(hx_close(got[k], want[k]), "--step: step %d got %.9g, want %.9g", k, got[k], want[k]);
    /* the same through the binary's JSONL */
    char *line = hx_request("prompt", qj_get(r11, "prompt"), "steps", steps), path[512];
    snprintf(path, sizeof path, "%s/in.jsonl", hx_dir);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fprintf(f, "%s\n", line);
    fclose(f);
    cmd.len = 0;
    qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s -t 2 --input %s", hx_path[HX_PRM], path);
    char *jl = hx_run(cmd.buf, &st);
    ck_assert_msg(st == 0, "%s: exit %d", cmd.buf, st);
    char *ss = hx_raw_member(jl, "step_scores");
    ck_assert_msg(ss != NULL, "%s", jl);
    for (char *p = ss; *p; p++) *p = *p == ',' ? ' ' : *p;
    ck_assert_msg(strchr(out, '\n') != NULL, "--step output without a newline: '%s'", out);
    *strchr(out, '\n') = 0;
    ck_assert_msg(strlen(ss) == strlen(out) + 2 && !strncmp(ss + 1, out, strlen(out)),
                  "--step prints '%s', the JSONL step_scores are %s", out, ss);
    free(ss), free(jl), free(out), free(line);

    /* --ids: every value of the point(s), space-separated */
    static const struct {
        int w, line;
    } ids_cases[] = {{HX_PRM, 3}, {HX_HS2, 2}, {HX_ARMO, 0}, {HX_ARMO, 4}};
    for (int c = 0; c < (int)(sizeof ids_cases / sizeof ids_cases[0]); c++) {
        int w = ids_cases[c].w;
        const qj_value *r = hx_ex(w == HX_PRM ? &prm : w == HX_HS2 ? &hs2 : &armo, ids_cases[c].line),
                       *ids = qj_get(r, "ids");
        cmd.len = 0;
        qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --ids '", hx_path[w]);
        for (uint32_t k = 0; k < ids->len; k++)
            qj_buf_printf(&cmd, "%s%d", k ? " " : "", (int)ids->u.items[k].u.num);
        qj_buf_puts(&cmd, "'");
        out = hx_run(cmd.buf, &st);
        ck_assert_msg(st == 0, "%s --ids: exit %d", hx_fixture[w], st);
        if (w == HX_PRM) {
            nw = hx_nums(r, "step_scores", want, 32, "expected");
        } else if (w == HX_HS2) {
            nw = hx_nums(r, "scores", want, 32, "expected");
        } else {
            ck_assert(qj_get_num(r, "score", &want[0]));
            nw = 1 + hx_nums(r, "rewards", want + 1, 5, "expected");
            nw += hx_nums(r, "gating_output", want + nw, 5, "expected");
        }
        n = hx_split_nums(out, got, 32);
        ck_assert_msg(n == nw, "%s --ids (line %d): %d numbers, want %d: %s", hx_fixture[w],
                      ids_cases[c].line + 1, n, nw, out);
        for (int k = 0; k < n; k++)
            ck_assert_msg(hx_close(got[k], want[k]), "%s --ids (line %d) value %d: got %.9g, want %.9g",
                          hx_fixture[w], ids_cases[c].line + 1, k, got[k], want[k]);
        free(out);
    }

    /* --rank-by: an unknown name is refused, naming it; a PRM refuses any */
    f = fopen(path, "w");
    ck_assert(f != NULL);
    fprintf(f, "{\"prompt\":\"Name a prime.\",\"responses\":[\"7\",\"I like cats.\",\"Nine.\"]}\n");
    fclose(f);
    cmd.len = 0;
    qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --input %s --best --rank-by nosuchoutput 2>&1",
                  hx_path[HX_HS2], path);
    out = hx_run(cmd.buf, &st);
    ck_assert_msg(st == 1, "--rank-by nosuchoutput: exit %d, want 1: %s", st, out);
    ck_assert_msg(strstr(out, "nosuchoutput") && !strchr(out, '{'),
                  "--rank-by nosuchoutput: the message must name it and nothing be scored: %s", out);
    free(out);
    cmd.len = 0;
    qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --input %s --rank-by step 2>&1", hx_path[HX_PRM], path);
    out = hx_run(cmd.buf, &st);
    ck_assert_msg(st == 1 && strstr(out, "step") && !strchr(out, '{'),
                  "--rank-by on a PRM: exit %d (want 1): %s", st, out);
    free(out);
    /* a known name ranks by that output */
    for (int r = 0; r < 5; r++) {
        cmd.len = 0;
        qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --input %s --best --rank-by %s", hx_path[HX_HS2], path,
                      hs2_names[r]);
        out = hx_run(cmd.buf, &st);
        ck_assert_msg(st == 0, "--rank-by %s: exit %d", hs2_names[r], st);
        qj_doc *d = hx_parse(out);
        const qj_value *s = qj_get_type(qj_root(d), "scores", QJ_ARRAY),
                       *k = qj_get_type(qj_root(d), "kept", QJ_ARRAY);
        ck_assert_msg(s && s->len == 3 && k && k->len == 1, "--rank-by %s: %s", hs2_names[r], out);
        double col[3];
        for (int i = 0; i < 3; i++) ck_assert(qj_get_num(&s->u.items[i], hs2_names[r], &col[i]));
        int order[3];
        hx_order(col, 3, order);
        int64_t idx;
        ck_assert(qj_get_int(&k->u.items[0], "index", &idx));
        ck_assert_msg(idx == order[0], "--rank-by %s --best kept %d, the highest %s is response %d: %s",
                      hs2_names[r], (int)idx, hs2_names[r], order[0], out);
        qj_free(d), free(out);
    }

    /* error lines leave the exit status 0, one output line each */
    f = fopen(path, "w");
    ck_assert(f != NULL);
    fprintf(f, "{\"prompt\":\"Q\",\"steps\":[\"a<extra_0>\"]}\n{\"prompt\":\"Q\",\"steps\":[\"\"]}\n"
               "{\"prompt\":\"Q\",\"responses\":[\"a\"]}\n"
               "{\"prompt\":\"Q\",\"steps\":[\"a\"],\"responses\":[[\"a\"]]}\n"
               "{\"prompt\":\"Q\",\"responses\":[[\"a\"],[\"b\",\"c\"]]}\n");
    fclose(f);
    cmd.len = 0;
    qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --input %s --top-k 1 --aggregate last", hx_path[HX_PRM], path);
    out = hx_run(cmd.buf, &st);
    ck_assert_msg(st == 0, "error lines: exit %d: %s", st, out);
    char *lines[8];
    ck_assert_int_eq(split_lines(out, lines, 8), 5);
    for (int i = 0; i < 4; i++) ck_assert_msg(strstr(lines[i], "{\"error\":") == lines[i], "%s", lines[i]);
    ck_assert_msg(strstr(lines[4], "\"kept\":[{\"index\":"), "%s", lines[4]);
    free(out);
    cmd.len = 0;
    qj_buf_printf(&cmd, QRM_TEST_BIN_DIR "/qrm score -m %s --input %s --aggregate max >/dev/null 2>&1",
                  hx_path[HX_PRM], path);
    out = hx_run(cmd.buf, &st);
    ck_assert_msg(st == 2, "--aggregate max: exit %d, want 2 (usage)", st);
    free(out);
    unlink(path);

    hx_free_expected(&prm), hx_free_expected(&hs2), hx_free_expected(&armo);
    qj_buf_free(&cmd);
    if (isa) setenv("QRM_ISA", isa, 1);
    free(isa);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("jsonl");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_line_per_input_line_in_order);
    tcase_add_test(tc, last_line_without_newline_and_crlf);
    tcase_add_test(tc, echoes_other_fields);
    tcase_add_test(tc, responses_equal_single_conversations);
    tcase_add_test(tc, best_top_k_min_score);
    tcase_add_test(tc, cli_exit_codes);
    tcase_add_test(tc, cli_full_disk_is_an_error);
    tcase_add_test(tc, over_long_line_refused_by_length);
    tcase_add_test(tc, text_longer_than_the_positions_refused_by_length);
    tcase_add_test(tc, cli_refuses_what_it_cannot_honour);
    tcase_add_test(tc, verify_finds_damaged_weights);
    tcase_add_test(tc, score_load_copy_same_output);
    tcase_add_test(tc, echo_never_duplicates_a_key);
    tcase_add_test(tc, ctx_chat_template_override);
    tcase_add_test(tc, cli_text_system_chat_template);
    tcase_add_test(tc, cli_help_and_version);
    tcase_add_test(tc, cli_opts_parser);
    tcase_add_test(tc, convert_summary_and_default_name);
    tcase_add_test(tc, bench_json_and_argument_checks);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("heads");
    tcase_set_timeout(th, 240);
    tcase_add_checked_fixture(th, hx_setup, hx_teardown);
    tcase_add_test(th, heads_prm_ids_lines_match_reference);
    tcase_add_test(th, heads_prm_steps_and_messages_lines);
    tcase_add_test(th, heads_prm_best_of_n_equals_steps_alone);
    tcase_add_test(th, heads_prm_aggregate_modes);
    tcase_add_test(th, heads_prm_best_top_k_rank_by_aggregate);
    tcase_add_test(th, heads_prm_error_lines);
    tcase_add_test(th, heads_steps_refused_by_sequence_heads);
    tcase_add_test(th, heads_multi_output_objects_match_reference);
    tcase_add_test(th, heads_rank_by_chooses_the_output);
    tcase_add_test(th, heads_armorm_names_and_values);
    tcase_add_test(th, heads_cli_binary);
    suite_add_tcase(s, th);
    return s;
}

int main(void) { return tu_run(suite()); }
