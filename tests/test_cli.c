/* `qrm score --input`: one output line per input line, in order, with an
 * error object for every line that cannot be scored and the run going on;
 * echoed fields; best-of-N selection options; the prompt/responses path
 * equals scoring each conversation alone. Driven through the library calls
 * the CLI uses (tools/score_jsonl.c), and the binaries for exit codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (access("build/qrm", X_OK) != 0) {
        printf("build/qrm not built: skipping the binary checks\n");
        return;
    }
    char cmd[1024];
    char *isa = getenv("QRM_ISA") ? strdup(getenv("QRM_ISA")) : NULL;
    unsetenv("QRM_ISA");
    snprintf(cmd, sizeof cmd, "build/qrm score -m %s --ids '316 5 6' >/dev/null 2>&1", model_path);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "build/qrm score -m %s/missing.qrm --ids '1' >/dev/null 2>&1", dir);
    ck_assert_int_ne(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "build/qrm score -m %s --ids '1 x' >/dev/null 2>&1", model_path);
    ck_assert_int_ne(system(cmd), 0);
    /* bad lines do not change the exit status */
    snprintf(cmd, sizeof cmd,
             "printf '\\n{bad\\n{\"ids\":[316]}\\n' | build/qrm score -m %s --input - > %s/out.jsonl",
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
    snprintf(cmd, sizeof cmd, "QRM_ISA=nonsense build/qrm info >/dev/null 2>&1");
    ck_assert_int_ne(system(cmd), 0);
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
