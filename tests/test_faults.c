/* Fault injection (tests/fault_inject.h): for each public entry point, fail
 * its 1st, 2nd, 3rd, ... allocation, and in a second loop its 1st, 2nd, ...
 * file-IO call, until the call runs without reaching the fault. Every
 * injected fault must end in a clean error (a non-empty one-line message)
 * or in the very result of the unfaulted call; never a crash, never a leak
 * (this suite runs under `make test-sanitize`, where LeakSanitizer checks
 * each test's process), and a failed conversion leaves no file behind.
 *
 * Each operation runs once unarmed first, counting its calls; the loop then
 * fails every one of the first FULL_STEPS and of the last TAIL_STEPS, and a
 * stride of those between (about STRIDED_STEPS), so that a long run of alike
 * calls (a real tokenizer's loads, the converter's writes) stays within a
 * few seconds under AddressSanitizer; some operations set a smaller budget.
 * The counts are printed. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat_template.h"
#include "convert.h"
#include "fault_inject.h"
#include "json.h"
#include "platform.h"
#include "qrm.h"
#include "score_jsonl.h"
#include "testutil.h"
#include "tokenizer.h"
#include "verify.h"

#define FULL_STEPS 400
#define STRIDED_STEPS 200
#define TAIL_STEPS 8

/* One operation under test. prepare and finish run unarmed around each
 * attempt (a fresh context, say); run is the armed call: 0, or -1 with its
 * message in err. run keeps its result for finish, which compares it with
 * the first run's: run itself must not assert, Check allocates and writes
 * when it does. */
typedef struct op op;
struct op {
    const char *name;
    void (*prepare)(op *o);
    int (*run)(op *o, char *err, size_t errlen);
    void (*finish)(op *o, int rc);
    int first;  /* the counting run: record the reference result */
    void *state;
    long full, strided; /* the step budget (0: FULL_STEPS, STRIDED_STEPS) */
};

static const char *kind_name(fi_kind k) { return k == FI_ALLOC ? "allocations" : "IO calls"; }

/* Non-empty, one line, and saying what happened: out of memory for an
 * allocation; for IO the system's reason or that reading/writing failed,
 * never a claim about the data ("missing file", "template too large"). */
static void assert_clean_error(const op *o, fi_kind k, long n, const char *err) {
    static const char *const io_words[] = {"Input/output error", "No space left on device",
                                           "Cannot allocate memory", "error reading", "cannot read",
                                           "cannot seek", "failed"};
    ck_assert_msg(err[0] != 0, "%s: failing %s #%ld gave an empty error", o->name, kind_name(k), n);
    ck_assert_msg(strchr(err, '\n') == NULL, "%s: failing %s #%ld: error '%s' is not one line",
                  o->name, kind_name(k), n, err);
    int says = 0;
    /* strerror(ENOMEM) too: linked statically (test-aarch64), libc's own
     * allocations are wrapped as well, and fopen fails with ENOMEM */
    if (k == FI_ALLOC) says = strstr(err, "out of memory") || strstr(err, "Cannot allocate memory");
    for (size_t i = 0; k == FI_IO && i < sizeof io_words / sizeof io_words[0]; i++)
        says |= strstr(err, io_words[i]) != NULL;
    ck_assert_msg(says, "%s: failing %s #%ld: error '%s' does not say so", o->name, kind_name(k), n, err);
}

/* Returns how many calls of that kind the operation makes. */
static long fault_loop(op *o, fi_kind kind) {
    char err[QRM_ERR_MAX * 2];
    double t0 = qrm_now();
    clock_t c0 = clock();
    o->first = 1;
    if (o->prepare) o->prepare(o);
    fi_arm(kind, 0);
    int rc = o->run(o, err, sizeof err);
    long total = fi_disarm();
    ck_assert_msg(rc == 0, "%s: fails without a fault: %s", o->name, err);
    if (o->finish) o->finish(o, rc);
    o->first = 0;
    long full = o->full ? o->full : FULL_STEPS, strided = o->strided ? o->strided : STRIDED_STEPS;
    long stride = total > full ? (total - full) / strided + 1 : 1;
    long injected = 0, absorbed = 0;
    for (long n = 1;;) {
        if (o->prepare) o->prepare(o);
        err[0] = 0;
        fi_arm(kind, n);
        rc = o->run(o, err, sizeof err);
        int fired = fi_fired();
        fi_disarm();
        if (o->finish) o->finish(o, rc);
        if (!fired) {
            ck_assert_msg(rc == 0, "%s: fails without a fault: %s", o->name, err);
            break;
        }
        injected++;
        if (rc) {
            assert_clean_error(o, kind, n, err);
        } else {
            absorbed++; /* finish checked that the result is the unfaulted one */
            snprintf(err, sizeof err, "absorbed");
        }
        if (getenv("QRM_FAULT_VERBOSE")) fprintf(stderr, "%s: %s #%ld: %s\n", o->name, kind_name(kind), n, err);
        /* every one of the first `full` and of the last TAIL_STEPS calls
         * (where the finishing work is: flush, close, rename), a stride between */
        long tail = total - TAIL_STEPS;
        long next = n < full || n >= tail ? n + 1 : n + stride;
        n = n < tail && next > tail ? tail : next;
    }
    printf("%-44s %6ld %-11s %4ld failed (%ld absorbed) %6.2f s (%.2f s CPU)\n", o->name, total, kind_name(kind),
           injected, absorbed, qrm_now() - t0, (double)(clock() - c0) / CLOCKS_PER_SEC);
    fflush(stdout);
    return total;
}

static void both_loops(op *o) {
    fault_loop(o, FI_ALLOC);
    fault_loop(o, FI_IO);
}

/* ---- models ---- */

static char *model_path;   /* qwen3-tiny at int8, converted once per test process */

static void suite_setup(void) { model_path = tu_convert("qwen3-tiny", "int8", NULL); }
static void suite_teardown(void) { tu_remove_converted(model_path); }

static int open_close(const char *path, char *err, size_t errlen) {
    qrm_model *m = qrm_model_open(path, err, errlen);
    if (!m) return -1;
    qrm_model_close(m);
    return 0;
}

static int run_model_open(op *o, char *err, size_t errlen) { return open_close(model_path, err, errlen); }

/* o->state's first member is the path */
static int run_model_open_path(op *o, char *err, size_t errlen) {
    return open_close(*(const char **)o->state, err, errlen);
}

START_TEST(model_open) {
    op o = {.name = "qrm_model_open", .run = run_model_open};
    both_loops(&o);
}
END_TEST

/* the copy into memory maps twice (the file, then anonymous memory) */
static int run_model_open_copy(op *o, char *err, size_t errlen) {
    qrm_model *m = qrm_model_open_with(model_path, QRM_LOAD_COPY, err, errlen);
    if (!m) return -1;
    qrm_model_close(m);
    return 0;
}

START_TEST(model_open_copy) {
    op o = {.name = "qrm_model_open_with(QRM_LOAD_COPY)", .run = run_model_open_copy};
    both_loops(&o);
}
END_TEST

typedef struct {
    void *buf;
    size_t len;
} image;

static int run_model_open_memory(op *o, char *err, size_t errlen) {
    image *im = o->state;
    qrm_model *m = qrm_model_open_memory(im->buf, im->len, err, errlen);
    if (!m) return -1;
    qrm_model_close(m);
    return 0;
}

START_TEST(model_open_memory) {
    size_t len;
    char *text = tu_read_file(model_path, &len);
    image im = {aligned_alloc(64, (len + 63) / 64 * 64), len};
    ck_assert(im.buf != NULL);
    memcpy(im.buf, text, len);
    free(text);
    op o = {.name = "qrm_model_open_memory", .run = run_model_open_memory, .state = &im};
    both_loops(&o);
    free(im.buf);
}
END_TEST

/* ---- contexts and scoring ---- */

typedef struct {
    const char *path;      /* the model file */
    const char *line;      /* for qrm_score_line */
    qrm_score_opts opts;
    qrm_model *m;
    qrm_ctx *c;
    int n_threads;         /* the context's: 2 runs the pool, 1 does not */
    qrm_kv_type kv_type;   /* the context's KV cache (QRM_KV_AUTO unless a test says) */
    float ref[8], got[8];
    int n_ref, n_got;
    char *ref_line;        /* qrm_score_line's unfaulted output */
    char *got_line;
} scoring;

static qrm_ctx *new_ctx(scoring *s, char *err, size_t errlen);
static const int32_t ids[] = {316, 191, 103, 82, 15, 202, 88, 40, 41, 42, 43, 44};
#define N_IDS (sizeof ids / sizeof ids[0])

static void open_model(scoring *s) {
    char err[QRM_ERR_MAX];
    s->m = qrm_model_open(s->path, err, sizeof err);
    ck_assert_msg(s->m != NULL, "%s", err);
}

static void close_model(scoring *s) {
    qrm_model_close(s->m);
    s->m = NULL;
}

static qrm_ctx *new_ctx(scoring *s, char *err, size_t errlen) {
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = s->n_threads;
    p.kv_type = s->kv_type;
    return qrm_ctx_new(s->m, &p, err, errlen);
}

static int run_ctx_new(op *o, char *err, size_t errlen) {
    qrm_ctx *c = new_ctx(o->state, err, errlen);
    if (!c) return -1;
    qrm_ctx_free(c);
    return 0;
}

START_TEST(ctx_new) {
    scoring s = {.path = model_path, .n_threads = 2};
    open_model(&s);
    op o = {.name = "qrm_ctx_new (2 threads)", .run = run_ctx_new, .state = &s};
    both_loops(&o);
    close_model(&s);
}
END_TEST

/* A fresh model and context for every attempt: the model builds its
 * tokenizer and chat template on the first text call, and that build must
 * meet the faults too. */
static void prepare_ctx(op *o) {
    scoring *s = o->state;
    char err[QRM_ERR_MAX];
    open_model(s);
    s->c = new_ctx(s, err, sizeof err);
    ck_assert_msg(s->c != NULL, "%s", err);
}

static int ctx_failed(const scoring *s, int rc, char *err, size_t errlen) {
    snprintf(err, errlen, "%s", qrm_ctx_error(s->c));
    return rc;
}

static void keep(scoring *s, const float *v, int n) {
    if (n > 8) n = 8;
    memcpy(s->got, v, (size_t)n * sizeof *v);
    s->n_got = n;
}

static void compare(op *o) {
    scoring *s = o->state;
    ck_assert_int_eq(s->n_got, s->n_ref);
    for (int i = 0; i < s->n_got; i++)
        ck_assert_msg(memcmp(&s->got[i], &s->ref[i], sizeof s->got[i]) == 0, "%s: value %d is %.9g, not %.9g",
                      o->name, i, (double)s->got[i], (double)s->ref[i]);
    if (s->ref_line)
        ck_assert_msg(s->got_line && !strcmp(s->got_line, s->ref_line), "%s: '%s' differs from '%s'", o->name,
                      s->got_line ? s->got_line : "(none)", s->ref_line);
}

static void forget(scoring *s) {
    free(s->got_line);
    s->got_line = NULL;
    s->n_got = 0;
}

/* The result must be the unfaulted one; after a failed call the context
 * must still work: the same call again gives that result. */
static void finish_ctx(op *o, int rc) {
    scoring *s = o->state;
    if (rc == 0 && o->first) {
        memcpy(s->ref, s->got, sizeof s->ref);
        s->n_ref = s->n_got;
        free(s->ref_line);
        s->ref_line = s->got_line, s->got_line = NULL;
    } else {
        if (rc) {
            char err[QRM_ERR_MAX * 2];
            forget(s);
            ck_assert_msg(o->run(o, err, sizeof err) == 0, "%s: the context is unusable after a fault: %s",
                          o->name, err);
        }
        compare(o);
    }
    forget(s);
    qrm_ctx_free(s->c);
    s->c = NULL;
    close_model(s);
}

static int run_score(op *o, char *err, size_t errlen) {
    scoring *s = o->state;
    qrm_scores out = {0};
    int rc = qrm_score(s->c, ids, N_IDS, &out);
    if (rc == 0) keep(s, out.values, (int)(out.n_points * (size_t)out.n_values));
    qrm_scores_free(&out);
    return rc ? ctx_failed(s, rc, err, errlen) : 0;
}

static int run_score_ids(op *o, char *err, size_t errlen) {
    scoring *s = o->state;
    float v[QRM_MAX_OUTPUTS];
    int rc = qrm_score_ids(s->c, ids, N_IDS, v);
    if (rc == 0) keep(s, v, 1);
    return rc ? ctx_failed(s, rc, err, errlen) : 0;
}

static int run_best_of_n(op *o, char *err, size_t errlen) {
    scoring *s = o->state;
    static const int32_t r0[] = {40, 41, 42}, r1[] = {43}, r2[] = {44, 45, 46, 47, 48};
    const int32_t *resp[] = {r0, r1, r2};
    const size_t len[] = {3, 1, 5};
    qrm_scores out[3];
    memset(out, 0, sizeof out);
    int rc = qrm_score_best_of_n(s->c, ids, 7, resp, len, 3, out);
    if (rc == 0) {
        float v[3] = {out[0].values[0], out[1].values[0], out[2].values[0]};
        keep(s, v, 3);
    }
    for (int i = 0; i < 3; i++) qrm_scores_free(&out[i]);
    return rc ? ctx_failed(s, rc, err, errlen) : 0;
}

/* A prompt/responses line: chat template, tokenizer, best-of-N, ranking. */
static int run_score_line(op *o, char *err, size_t errlen) {
    scoring *s = o->state;
    qj_buf b = {0};
    size_t n_tokens = 0;
    qrm_score_line(s->c, s->line, strlen(s->line), &s->opts, &b, &n_tokens);
    int rc = 0;
    if (b.oom) { /* qrm_score_stream writes {"error":"out of memory"} */
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else {
        char jerr[200];
        fi_pause();
        qj_doc *d = qj_parse(b.buf, b.len, jerr, sizeof jerr);
        const char *e = d ? qj_get_str(qj_root(d), "error") : NULL;
        if (!d || e) {
            /* not JSON fails the comparison in finish_ctx */
            snprintf(err, errlen, "%s", d ? e : "the output line is not JSON");
            rc = d ? -1 : 0;
        }
        if (!e) s->got_line = strndup(b.buf, b.len);
        qj_free(d);
        fi_resume();
    }
    qj_buf_free(&b);
    return rc;
}

/* threads 2: the pool runs; 1 where there are many attempts (thread
 * creation is the dear part of an attempt under ASan) */
static void scoring_test_kv(const char *name, int (*run)(op *, char *, size_t), int threads,
                            qrm_kv_type kv) {
    scoring s = {.path = model_path, .n_threads = threads, .kv_type = kv, .opts = {.mode = QRM_KEEP_BEST},
                 .line = "{\"id\":7,\"prompt\":\"What is 2+2?\",\"responses\":[\"4\",\"five\",\"It is 4.\"]}"};
    op o = {.name = name, .prepare = prepare_ctx, .run = run, .finish = finish_ctx, .state = &s};
    both_loops(&o);
    free(s.ref_line);
}

static void scoring_test(const char *name, int (*run)(op *, char *, size_t), int threads) {
    scoring_test_kv(name, run, threads, QRM_KV_AUTO);
}

START_TEST(score) { scoring_test("qrm_score", run_score, 2); }
END_TEST
START_TEST(score_ids) { scoring_test("qrm_score_ids", run_score_ids, 2); }
END_TEST
START_TEST(best_of_n) { scoring_test("qrm_score_best_of_n", run_best_of_n, 2); }
END_TEST
START_TEST(score_line) { scoring_test("qrm_score_line", run_score_line, 1); }
END_TEST

/* Incremental: reserve, then two appends reading every position. */
static int run_append(op *o, char *err, size_t errlen) {
    scoring *s = o->state;
    float all[N_IDS], last;
    int rc = qrm_ctx_reserve(s->c, N_IDS);
    if (!rc) rc = qrm_ctx_append(s->c, ids, 5, all, NULL);
    if (!rc) rc = qrm_ctx_append(s->c, ids + 5, N_IDS - 5, all + 5, &last);
    if (rc == 0) keep(s, all + N_IDS - 3, 3);
    return rc ? ctx_failed(s, rc, err, errlen) : 0;
}

/* The JSONL stream into a file: every line is the unfaulted one or an
 * error object, and a failed write of the output is reported (-1). */
static int run_stream(op *o, char *err, size_t errlen) {
    static const char input[] = "{\"id\":1,\"ids\":[316,5,6,7]}\n"
                                "{\"id\":2,\"prompt\":\"Hi\",\"responses\":[\"Hello\",\"Go\"]}\n"
                                "\n{\"id\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    scoring *s = o->state;
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/qrm-fault-stream-XXXXXX", tmp);
    fi_pause();
    int fd = mkstemp(path);
    /* "wb": the shim marks a failed write by reading the stream (see fault_inject.c) */
    FILE *in = fmemopen((void *)input, sizeof input - 1, "r"), *out = fd >= 0 ? fopen(path, "wb") : NULL;
    ck_assert(in && out);
    close(fd);
    fi_resume();
    int rc = qrm_score_stream(s->c, in, out, &s->opts);
    fi_pause();
    fclose(in), fclose(out);
    free(s->got_line);
    s->got_line = tu_read_file(path, NULL);
    unlink(path);
    fi_resume();
    if (rc) snprintf(err, errlen, "writing the output failed");
    return rc;
}

/* Line by line: the reference line or {"error": one line}. */
static void finish_stream(op *o, int rc) {
    scoring *s = o->state;
    if (rc == 0 && !o->first) {
        char *got = s->got_line, *ref = s->ref_line;
        int lines = 0;
        while (*ref) {
            char *ge = strchr(got, '\n'), *re = strchr(ref, '\n');
            ck_assert_msg(ge && re, "%s: line %d missing: '%s'", o->name, lines + 1, s->got_line);
            size_t gl = (size_t)(ge - got);
            if (gl != (size_t)(re - ref) || memcmp(got, ref, gl)) {
                char jerr[200];
                qj_doc *d = qj_parse(got, gl, jerr, sizeof jerr);
                const char *e = d ? qj_get_str(qj_root(d), "error") : NULL;
                ck_assert_msg(e && *e && !strchr(e, '\n'), "%s: line %d is '%.*s'", o->name, lines + 1, (int)gl, got);
                qj_free(d);
            }
            got = ge + 1, ref = re + 1, lines++;
        }
        ck_assert_msg(*got == 0, "%s: more lines than the input's", o->name);
        forget(s);
    }
    if (rc == 0 && o->first) {
        free(s->ref_line);
        s->ref_line = s->got_line, s->got_line = NULL;
    }
    forget(s);
    qrm_ctx_free(s->c);
    s->c = NULL;
    close_model(s);
}

START_TEST(append) { scoring_test("qrm_ctx_reserve + qrm_ctx_append", run_append, 2); }
END_TEST
/* the int8 KV cache: its own reserve (panels moved), staging and scratch;
 * best-of-N with a 7-token prompt runs it in front of each response */
START_TEST(best_of_n_kv_q8) { scoring_test_kv("qrm_score_best_of_n, --kv q8", run_best_of_n, 2, QRM_KV_Q8); }
END_TEST
START_TEST(append_kv_q8) { scoring_test_kv("qrm_ctx_append, --kv q8", run_append, 2, QRM_KV_Q8); }
END_TEST

START_TEST(stream) {
    scoring s = {.path = model_path, .n_threads = 1, .opts = {.mode = QRM_KEEP_BEST}};
    op o = {.name = "qrm_score_stream", .prepare = prepare_ctx, .run = run_stream, .finish = finish_stream, .state = &s};
    both_loops(&o);
    free(s.ref_line);
}
END_TEST

static int run_verify(op *o, char *err, size_t errlen) { return qrm_verify_file(model_path, err, errlen); }

START_TEST(verify) {
    op o = {.name = "qrm_verify_file", .run = run_verify};
    both_loops(&o);
}
END_TEST

/* ---- tokenizer: load from the files, then encode ---- */

typedef struct {
    const char *dir;
    int32_t *ref, *got;
    size_t n_ref, n_got;
} tokenizing;

static int run_tokenize(op *o, char *err, size_t errlen) {
    tokenizing *t = o->state;
    static const char text[] = "Hello, world! Fault injection: 1234 \xc3\xa9t\xc3\xa9  <|eot_id|> done.";
    char path[512];
    size_t tl, cl;
    snprintf(path, sizeof path, "%s/tokenizer.json", t->dir);
    char *tj = qrm_read_file(path, &tl, err, errlen);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", t->dir);
    char *cj = tj ? qrm_read_file(path, &cl, err, errlen) : NULL;
    qrm_tokenizer *tok = cj ? qrm_tokenizer_new(tj, tl, cj, cl, err, errlen) : NULL;
    free(tj), free(cj);
    if (!tok) return -1;
    int32_t *out = NULL;
    size_t n = 0;
    int rc = qrm_tokenizer_encode(tok, text, strlen(text), 1, &out, &n, err, errlen);
    qrm_tokenizer_free(tok);
    if (rc) return -1;
    t->got = out, t->n_got = n;
    return 0;
}

static void finish_tokenize(op *o, int rc) {
    tokenizing *t = o->state;
    if (rc == 0 && o->first) {
        free(t->ref);
        t->ref = t->got, t->n_ref = t->n_got;
    } else if (rc == 0) {
        ck_assert_msg(t->n_got == t->n_ref && !memcmp(t->got, t->ref, t->n_ref * sizeof *t->ref),
                      "%s: other ids", o->name);
        free(t->got);
    }
    t->got = NULL;
}

START_TEST(tokenizer_fixture) {
    tokenizing t = {.dir = TEST_DATA "/models/qwen3-tiny"};
    op o = {.name = "tokenizer (fixture BPE)", .run = run_tokenize, .finish = finish_tokenize, .state = &t};
    both_loops(&o);
    free(t.ref);
}
END_TEST

/* A real tokenizer (the SentencePiece-style Mistral one: the fixture is
 * byte-level BPE). Its tables come in bulk: 90 allocations, but a load of
 * 1.8 MB of JSON takes 0.05-0.1 s under ASan, so every one of the first 24
 * and the last 8 fails, and 12 strided ones between. The 11 MB Qwen3 tokenizer takes some 40 s
 * even without ASan (0.3 s a load, 137 allocations): only with
 * QRM_FAULT_SLOW=1. */
static void real_tokenizer(const char *name) {
    char dir[256], opname[96];
    snprintf(dir, sizeof dir, TEST_DATA "/tokenizers/%s", name);
    snprintf(opname, sizeof opname, "tokenizer (%s)", name);
    tokenizing t = {.dir = dir};
    op o = {.name = opname, .run = run_tokenize, .finish = finish_tokenize, .state = &t, .full = 24, .strided = 12};
    both_loops(&o);
    free(t.ref);
}

START_TEST(tokenizer_mistral) { real_tokenizer("mistral"); }
END_TEST
START_TEST(tokenizer_qwen3) {
    if (getenv("QRM_FAULT_SLOW")) real_tokenizer("qwen3");
    else printf("tokenizer (qwen3): skipped (QRM_FAULT_SLOW=1 runs it)\n");
}
END_TEST

/* ---- a real chat template: compile, render ---- */

typedef struct {
    const char *src;
    qj_doc *conv, *vars;
    char *ref, *got;
} templating;

static int run_template(op *o, char *err, size_t errlen) {
    templating *t = o->state;
    qrm_template *tm = qrm_template_compile(t->src, strlen(t->src), err, errlen);
    if (!tm) return -1;
    size_t len;
    int rc = qrm_template_render(tm, qj_get(qj_root(t->conv), "messages"), qj_root(t->vars), 1, &t->got, &len,
                                 err, errlen);
    qrm_template_free(tm);
    return rc ? -1 : 0;
}

static void finish_template(op *o, int rc) {
    templating *t = o->state;
    if (rc == 0 && o->first) {
        free(t->ref);
        t->ref = t->got;
    } else if (rc == 0) {
        ck_assert_msg(!strcmp(t->got, t->ref), "%s: rendered '%s', not '%s'", o->name, t->got, t->ref);
        free(t->got);
    }
    t->got = NULL;
}

START_TEST(chat_template_qwen3) {
    char err[200];
    size_t len;
    char *cfg_text = tu_read_file(TEST_DATA "/tokenizers/qwen3/tokenizer_config.json", &len);
    qj_doc *cfg = qj_parse(cfg_text, len, err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    static const char conv[] =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"2+2?\"},"
        "{\"role\":\"assistant\",\"content\":\"<think>\\nadd\\n</think>\\n\\n4\"},{\"role\":\"user\",\"content\":\"And 3+3?\"}]}";
    static const char vars[] = "{\"bos_token\":null,\"eos_token\":\"<|im_end|>\",\"enable_thinking\":false}";
    templating t = {.src = qj_get_str(qj_root(cfg), "chat_template"), .conv = qj_parse(conv, strlen(conv), err, sizeof err),
                    .vars = qj_parse(vars, strlen(vars), err, sizeof err)};
    ck_assert(t.src && t.conv && t.vars);
    op o = {.name = "chat template (qwen3)", .run = run_template, .finish = finish_template, .state = &t};
    both_loops(&o);
    free(t.ref);
    qj_free(t.conv), qj_free(t.vars), qj_free(cfg);
    free(cfg_text);
}
END_TEST

/* ---- conversion ---- */

typedef struct {
    const char *fixture, *quant;     /* under tests/data/models, or hf_dir */
    const char *hf_dir;
    const qrm_convert_opts *extra;   /* head options, or NULL */
    char *dir, out[512];
    char *ref;                        /* the unfaulted output, its date blanked */
    size_t ref_len;
} converting;

/* The file without its creation time, the one thing two runs may differ in. */
static char *read_undated(const char *path, size_t *len) {
    char *text = tu_read_file(path, len), *at = memmem(text, *len, "\"created\":\"", 11);
    ck_assert(at != NULL);
    memset(at, 'x', 32);
    return text;
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int run_convert(op *o, char *err, size_t errlen) {
    converting *cv = o->state;
    char src[256];
    if (cv->hf_dir) snprintf(src, sizeof src, "%s", cv->hf_dir);
    else snprintf(src, sizeof src, TEST_DATA "/models/%s", cv->fixture);
    qrm_convert_opts opts = {0};
    if (cv->extra) opts = *cv->extra;
    opts.hf_dir = src, opts.out_path = cv->out, opts.quant = cv->quant;
    return qrm_convert(&opts, err, errlen);
}

/* A failed conversion leaves nothing; a successful one the unfaulted file. */
static void finish_convert(op *o, int rc) {
    converting *cv = o->state;
    if (rc) {
        ck_assert_msg(dir_entries(cv->dir) == 0, "%s: a failed conversion left a file in %s", o->name, cv->dir);
        return;
    }
    char err[QRM_ERR_MAX * 2];
    ck_assert_int_eq(dir_entries(cv->dir), 1);
    ck_assert_msg(qrm_verify_file(cv->out, err, sizeof err) == 0, "%s: %s", o->name, err);
    size_t len;
    char *text = read_undated(cv->out, &len);
    if (!cv->ref) {
        cv->ref = text, cv->ref_len = len;
    } else {
        ck_assert_msg(len == cv->ref_len && !memcmp(text, cv->ref, len), "%s: the file differs", o->name);
        free(text);
    }
    unlink(cv->out);
}

/* The IO loop fails each of the first 40 calls (every read of the inputs,
 * the output's creation and first writes), then 20 strided ones of the
 * writer's hundred-odd alike fwrites, and always the last (the rename). */
static void convert_in_tmpdir(converting *cv, const char *name, int both) {
    cv->dir = tu_tmpdir();
    snprintf(cv->out, sizeof cv->out, "%s/model.qrm", cv->dir);
    op o = {.name = name, .run = run_convert, .finish = finish_convert, .state = cv};
    fault_loop(&o, FI_ALLOC);
    o.full = 40, o.strided = 20;
    if (both) fault_loop(&o, FI_IO);
    rmdir(cv->dir);
    free(cv->dir), free(cv->ref);
}

START_TEST(convert) {
    converting cv = {.fixture = "qwen3-tiny", .quant = "int8"};
    convert_in_tmpdir(&cv, "qrm_convert (qwen3-tiny int8)", 1);
}
END_TEST

/* A sharded checkpoint (model.safetensors.index.json and two shards) made
 * from qwen3-tiny: the converter's index path, one mapping per shard. */
static void write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert(fwrite(p, 1, n, f) == n);
    ck_assert(fclose(f) == 0);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char path[512];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", from_dir, name);
    char *text = tu_read_file(path, &n);
    write_file(to_dir, name, text, n);
    free(text);
}

static const char *const shard[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};

static void write_sharded(const char *src, const char *hf) {
    static const char *const others[] = {"config.json", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) copy_file(src, hf, others[i]);
    char path[512], err[200];
    size_t n;
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    char *st = tu_read_file(path, &n);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)(uint8_t)st[i] << (8 * i);
    qj_doc *d = qj_parse(st + 8, hlen, err, sizeof err);
    ck_assert_msg(d != NULL, "%s", err);
    const qj_value *root = qj_root(d);
    qj_buf index = {0};
    qj_buf_puts(&index, "{\"weight_map\":{");
    for (int p = 0; p < 2; p++) {
        qj_buf h = {0}, data = {0};
        qj_buf_puts(&h, "{");
        for (uint32_t i = 0, k = 0; i < root->len; i++) {
            const qj_member *m = &root->u.members[i];
            if (!strcmp(m->key, "__metadata__") || (int)(i % 2) != p) continue;
            const qj_value *offs = qj_get_type(&m->value, "data_offsets", QJ_ARRAY);
            size_t b = (size_t)offs->u.items[0].u.num, e = (size_t)offs->u.items[1].u.num;
            qj_buf_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":", k++ ? "," : "", m->key,
                          qj_get_str(&m->value, "dtype"));
            qj_buf_put_value(&h, qj_get(&m->value, "shape"));
            qj_buf_printf(&h, ",\"data_offsets\":[%zu,%zu]}", data.len, data.len + (e - b));
            qj_buf_put(&data, st + 8 + hlen + b, e - b);
            qj_buf_printf(&index, "%s\"%s\":\"%s\"", index.len > 16 ? "," : "", m->key, shard[p]);
        }
        qj_buf_puts(&h, "}");
        qj_buf out = {0};
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        qj_buf_put(&out, (const char *)len8, 8);
        qj_buf_put(&out, h.buf, h.len);
        qj_buf_put(&out, data.buf, data.len);
        ck_assert(!out.oom);
        write_file(hf, shard[p], out.buf, out.len);
        qj_buf_free(&h), qj_buf_free(&data), qj_buf_free(&out);
    }
    qj_buf_puts(&index, "}}");
    write_file(hf, "model.safetensors.index.json", index.buf, index.len);
    qj_buf_free(&index);
    qj_free(d);
    free(st);
}

START_TEST(convert_sharded) {
    char *hf = tu_tmpdir();
    write_sharded(TEST_DATA "/models/qwen3-tiny", hf);
    converting cv = {.fixture = NULL, .hf_dir = hf, .quant = "int8"};
    convert_in_tmpdir(&cv, "qrm_convert (qwen3-tiny in two shards)", 1);
    static const char *const names[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                        "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                        "model-00002-of-00002.safetensors"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", hf, names[i]);
        unlink(path);
    }
    rmdir(hf);
    free(hf);
}
END_TEST

/* ---- every head: its conversion, its model, a JSONL line of its kind ---- */

static const qrm_convert_opts judge = {.spec = {.judge_yes = "yes", .judge_no = "no"}};
static const qrm_convert_opts shepherd = {.spec = {.step_tag = " \xd0\xba\xd0\xb8", .good = " +", .bad = " -"}};
static const qrm_convert_opts lm = {.spec = {.lm = 1}};

static const struct {
    const char *fixture, *quant;
    const qrm_convert_opts *extra;
    const char *line;
    qrm_score_opts opts;
} heads[] = {
    {"qwen2-prm-tiny", "int8", NULL, "{\"prompt\":\"2+2?\",\"steps\":[\"2+2 is 4.\",\"So: 4.\"]}", {0}},
    {"llama3-armorm-tiny", "int8", NULL, "{\"prompt\":\"Hi\",\"responses\":[\"Hello!\",\"Go away.\"]}",
     {.mode = QRM_KEEP_BEST}},
    {"llama3-helpsteer2-tiny", "int4", NULL,
     "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello.\"}]}", {0}},
    {"qwen3-yesno-tiny", "f16", &judge, "{\"prompt\":\"Is 7 prime?\",\"responses\":[\"yes\",\"no\"]}",
     {.mode = QRM_KEEP_TOP_K, .top_k = 1}},
    {"mistral-mathshepherd-tiny", "int8", &shepherd,
     "{\"prompt\":\"2+2?\",\"responses\":[[\"2+2=4\",\"4\"],[\"5\"]]}", {.aggregate = QRM_AGG_LAST}},
    {"llama-dpo-tiny/policy", "f32", &lm, "{\"prompt\":\"Name a prime.\",\"responses\":[\"Seven.\",\"Eight.\"]}",
     {.dpo_mode = QRM_DPO_AVG, .logprobs = 1}},
};
#define N_HEADS (int)(sizeof heads / sizeof heads[0])

/* The IO of conversion and loading is the same code for every head (the
 * qwen3-tiny tests run it); here the allocations, one thread. */
START_TEST(head_kinds) {
    char name[96];
    snprintf(name, sizeof name, "qrm_convert (%s %s)", heads[_i].fixture, heads[_i].quant);
    converting cv = {.fixture = heads[_i].fixture, .quant = heads[_i].quant, .extra = heads[_i].extra};
    convert_in_tmpdir(&cv, name, 0);
    char *path = tu_convert(heads[_i].fixture, heads[_i].quant, heads[_i].extra);
    scoring s = {.path = path, .line = heads[_i].line, .opts = heads[_i].opts, .n_threads = 1};
    snprintf(name, sizeof name, "qrm_model_open (%s)", heads[_i].fixture);
    op open = {.name = name, .run = run_model_open_path, .state = &s};
    fault_loop(&open, FI_ALLOC);
    snprintf(name, sizeof name, "qrm_score_line (%s)", heads[_i].fixture);
    op line = {.name = name, .prepare = prepare_ctx, .run = run_score_line, .finish = finish_ctx, .state = &s};
    fault_loop(&line, FI_ALLOC);
    free(s.ref_line);
    tu_remove_converted(path);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_test(tc, model_open);
    tcase_add_test(tc, model_open_copy);
    tcase_add_test(tc, model_open_memory);
    tcase_add_test(tc, ctx_new);
    tcase_add_test(tc, score);
    tcase_add_test(tc, score_ids);
    tcase_add_test(tc, best_of_n);
    tcase_add_test(tc, score_line);
    tcase_add_test(tc, append);
    tcase_add_test(tc, best_of_n_kv_q8);
    tcase_add_test(tc, append_kv_q8);
    tcase_add_test(tc, stream);
    tcase_add_test(tc, verify);
    tcase_add_test(tc, tokenizer_fixture);
    tcase_add_test(tc, tokenizer_mistral);
    tcase_add_test(tc, tokenizer_qwen3);
    tcase_add_test(tc, chat_template_qwen3);
    tcase_add_test(tc, convert);
    tcase_add_test(tc, convert_sharded);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("heads");
    tcase_set_timeout(th, 300);
    tcase_add_loop_test(th, head_kinds, 0, N_HEADS);
    suite_add_tcase(s, th);
    return s;
}

int main(void) { return tu_run(suite()); }
