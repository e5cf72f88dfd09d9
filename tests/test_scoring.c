/* Scoring modes agree with one another: shared-prefix best-of-N scores equal
 * independent full-sequence scores; incremental scores at every position
 * equal full-sequence scores of that prefix; limits give clear errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "convert.h"
#include "ctx.h"
#include "profile.h"
#include "qrm.h"
#include "testutil.h"


static const char *fixtures[] = {"llama3-tiny", "qwen3-tiny", "gemma2-tiny"};
static const char *quants[] = {"f32", "int8", "int4"};

typedef struct {
    char *dir, *file;
    qrm_model *m;
    qrm_ctx *c;
} fx;

static void open_fx(fx *f, const char *name, const char *quant, size_t max_tokens) {
    char src[256], err[QRM_ERR_MAX];
    f->dir = tu_tmpdir();
    f->file = malloc(strlen(f->dir) + 32);
    sprintf(f->file, "%s/m.qrm", f->dir);
    snprintf(src, sizeof src, TEST_DATA "/models/%s", name);
    qrm_convert_opts o = {.hf_dir = src, .out_path = f->file, .quant = quant};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    f->m = qrm_model_open(f->file, err, sizeof err);
    ck_assert_msg(f->m != NULL, "%s", err);
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = getenv("TEST_THREADS") ? atoi(getenv("TEST_THREADS")) : 2;
    p.max_tokens = max_tokens;
    f->c = qrm_ctx_new(f->m, &p, err, sizeof err);
    ck_assert_msg(f->c != NULL, "%s", err);
}

static void close_fx(fx *f) {
    qrm_ctx_free(f->c);
    qrm_model_close(f->m);
    unlink(f->file);
    rmdir(f->dir);
    free(f->file), free(f->dir);
}

/* Bit for bit: every kernel computes a token's numbers the same way whatever
 * batch, tile, attention block or thread split it lands in
 * (tests/test_kernel_invariance.c, tests/test_wsum.c), so a score may not
 * depend on how the tokens were fed. A tolerance here would hide exactly
 * that. */
static void assert_same(float got, float want, const char *what, int i) {
    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s %d: %.9g vs %.9g", what, i,
                  (double)got, (double)want);
}

/* deterministic pseudo-random ids in [0, 316) (the fixtures' vocab is 320
 * with specials from 316; 319 is pad) */
static void fill_ids(int32_t *ids, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 16) % 316);
    }
}

START_TEST(shared_prefix_equals_independent) {
    const char *name = fixtures[_i % 3], *quant = quants[_i / 3];
    fx f;
    open_fx(&f, name, quant, 0);
    enum { NP = 37, NR = 5 };
    /* response lengths cross the sliding window (16) of gemma2 */
    static const size_t rl[NR] = {1, 9, 30, 17, 3};
    int32_t prefix[NP], resp[NR][40], full[NP + 40];
    const int32_t *rp[NR];
    prefix[0] = 316; /* BOS */
    fill_ids(prefix + 1, NP - 1, 7);
    for (int r = 0; r < NR; r++) {
        fill_ids(resp[r], (int)rl[r], 100u + (unsigned)r);
        rp[r] = resp[r];
    }
    float shared[NR], alone;
    ck_assert_msg(qrm_score_shared_prefix(f.c, prefix, NP, rp, rl, NR, shared) == 0, "%s",
                  qrm_ctx_error(f.c));
    for (int r = 0; r < NR; r++) {
        memcpy(full, prefix, sizeof prefix);
        memcpy(full + NP, resp[r], rl[r] * sizeof(int32_t));
        ck_assert(qrm_score_ids(f.c, full, NP + rl[r], &alone) == 0);
        assert_same(shared[r], alone, "response", r);
    }
    /* an empty prefix is N independent sequences in one batch */
    ck_assert(qrm_score_shared_prefix(f.c, prefix, 0, rp, rl, NR, shared) == 0);
    for (int r = 0; r < NR; r++) {
        ck_assert(qrm_score_ids(f.c, resp[r], rl[r], &alone) == 0);
        assert_same(shared[r], alone, "no-prefix response", r);
    }
    close_fx(&f);
}
END_TEST

/* Many responses: the batch spans several QRM_UBATCH chunks. */
START_TEST(shared_prefix_many_responses) {
    fx f;
    open_fx(&f, "qwen3-tiny", "int8", 0);
    enum { NP = 20, NR = 40, RL = 31 };
    int32_t prefix[NP], resp[NR][RL], full[NP + RL];
    const int32_t *rp[NR];
    size_t rl[NR];
    fill_ids(prefix, NP, 3);
    for (int r = 0; r < NR; r++) {
        rl[r] = RL - (size_t)(r % 7);
        fill_ids(resp[r], (int)rl[r], 1000u + (unsigned)r);
        rp[r] = resp[r];
    }
    float shared[NR], alone;
    ck_assert(qrm_score_shared_prefix(f.c, prefix, NP, rp, rl, NR, shared) == 0);
    for (int r = 0; r < NR; r++) {
        memcpy(full, prefix, sizeof prefix);
        memcpy(full + NP, resp[r], rl[r] * sizeof(int32_t));
        ck_assert(qrm_score_ids(f.c, full, NP + rl[r], &alone) == 0);
        assert_same(shared[r], alone, "response", r);
    }
    close_fx(&f);
}
END_TEST

START_TEST(incremental_equals_full) {
    const char *name = fixtures[_i % 3], *quant = quants[_i / 3];
    fx f;
    open_fx(&f, name, quant, 0);
    enum { N = 45 };
    int32_t ids[N];
    ids[0] = 316;
    fill_ids(ids + 1, N - 1, 42);
    float inc[N], last, full;
    /* pieces of uneven sizes, every position's score returned */
    ck_assert(qrm_ctx_reset(f.c) == 0);
    size_t pieces[] = {1, 1, 5, 13, 2, 23};
    size_t at = 0;
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        ck_assert(qrm_ctx_append(f.c, ids + at, pieces[p], inc + at, &last) == 0);
        at += pieces[p];
        assert_same(last, inc[at - 1], "last", (int)at);
        ck_assert_uint_eq(qrm_ctx_length(f.c), at);
    }
    ck_assert_uint_eq(at, N);
    for (int n = 1; n <= N; n++) {
        ck_assert(qrm_score_ids(f.c, ids, (size_t)n, &full) == 0);
        assert_same(inc[n - 1], full, "position", n);
    }
    close_fx(&f);
}
END_TEST

START_TEST(limits_are_clear_errors) {
    fx f;
    open_fx(&f, "llama3-tiny", "int8", 64);
    int32_t ids[600];
    fill_ids(ids, 600, 9);
    float s;
    /* over the context's KV cap */
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 65, &s), QRM_ETOOLONG);
    ck_assert_msg(strstr(qrm_ctx_error(f.c), "limit") != NULL, "%s", qrm_ctx_error(f.c));
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 64, &s), 0);
    /* shared prefix over the cap */
    const int32_t *rp[2] = {ids, ids};
    size_t rl[2] = {30, 30};
    float two[2];
    ck_assert_int_eq(qrm_score_shared_prefix(f.c, ids, 10, rp, rl, 2, two), QRM_ETOOLONG);
    rl[0] = rl[1] = 20;
    ck_assert_int_eq(qrm_score_shared_prefix(f.c, ids, 10, rp, rl, 2, two), 0);
    close_fx(&f);

    open_fx(&f, "llama3-tiny", "int8", 0);
    /* over the model's 512 positions */
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 513 < 600 ? 513 : 600, &s), QRM_ETOOLONG);
    ck_assert_msg(strstr(qrm_ctx_error(f.c), "512") != NULL, "%s", qrm_ctx_error(f.c));
    /* bad ids and empty input */
    int32_t bad[3] = {1, 320, 2};
    ck_assert_int_eq(qrm_score_ids(f.c, bad, 3, &s), QRM_EINVAL);
    ck_assert_msg(strstr(qrm_ctx_error(f.c), "320") != NULL, "%s", qrm_ctx_error(f.c));
    bad[1] = -1;
    ck_assert_int_eq(qrm_score_ids(f.c, bad, 3, &s), QRM_EINVAL);
    ck_assert_int_eq(qrm_score_ids(f.c, bad, 0, &s), QRM_EINVAL);
    /* the context still works after errors */
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 10, &s), 0);
    /* an unknown KV cache type is refused by name */
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.kv_type = 7;
    char err[QRM_ERR_MAX] = "";
    ck_assert(qrm_ctx_new(f.m, &p, err, sizeof err) == NULL);
    ck_assert_msg(strstr(err, "KV cache type 7") != NULL, "%s", err);
    close_fx(&f);
}
END_TEST

/* HF reads the score at the rightmost non-pad token: trailing pads change nothing. */
START_TEST(trailing_pad_is_ignored) {
    fx f;
    open_fx(&f, "qwen3-tiny", "f32", 0);
    int32_t ids[12];
    fill_ids(ids, 9, 5);
    float a, b;
    ck_assert(qrm_score_ids(f.c, ids, 9, &a) == 0);
    ids[9] = ids[10] = ids[11] = 319;
    ck_assert(qrm_score_ids(f.c, ids, 12, &b) == 0);
    ck_assert_float_eq(a, b);
    close_fx(&f);
}
END_TEST

/* One model, several threads, a context each: the model is read-only and
 * shared, so every thread gets the scores a lone context gets. */
typedef struct {
    const qrm_model *m;
    const int32_t *ids;
    int n;
    float out[8];
    int rc;
    int32_t text_ids[64];
    size_t n_text;
} worker_arg;

static void *score_worker(void *p) {
    worker_arg *w = p;
    char err[QRM_ERR_MAX];
    qrm_ctx_params cp;
    qrm_ctx_params_default(&cp);
    cp.n_threads = 1;
    qrm_ctx *c = qrm_ctx_new(w->m, &cp, err, sizeof err);
    w->rc = c ? 0 : -1;
    for (int k = 0; c && k < 8 && !w->rc; k++) w->rc = qrm_score_ids(c, w->ids, (size_t)(w->n - k), &w->out[k]);
    /* the tokenizer and template are built once per model, by whichever
     * context asks first, and shared */
    int32_t *ids = NULL;
    if (c && !w->rc) w->rc = qrm_encode_prompt_response(c, "Name a prime.", 13, "Seven.", 6, &ids, &w->n_text);
    if (ids && w->n_text <= 64) memcpy(w->text_ids, ids, w->n_text * sizeof *ids);
    free(ids);
    qrm_ctx_free(c);
    return NULL;
}

START_TEST(contexts_share_one_model) {
    fx f;
    open_fx(&f, "gemma2-tiny", "int8", 0);
    int32_t ids[60];
    fill_ids(ids, 60, 77);
    worker_arg w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_arg){.m = f.m, .ids = ids, .n = 60};
        ck_assert(pthread_create(&th[i], NULL, score_worker, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    worker_arg alone = {.m = f.m, .ids = ids, .n = 60};
    score_worker(&alone);
    ck_assert_int_eq(alone.rc, 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_msg(memcmp(w[i].out, alone.out, sizeof alone.out) == 0, "thread %d differs", i);
        ck_assert(w[i].n_text == alone.n_text && w[i].n_text > 0 && w[i].n_text <= 64);
        ck_assert(memcmp(w[i].text_ids, alone.text_ids, alone.n_text * sizeof(int32_t)) == 0);
    }
    close_fx(&f);
}
END_TEST

/* An abort callback that lets `left` calls through and then stops. */
typedef struct {
    int calls, left;
} abort_counter;

static int abort_after(void *user) {
    abort_counter *a = user;
    a->calls++;
    return a->left-- <= 0;
}

/* Stopped at every point where the callback is asked (every chunk, layer
 * and best-of-N response): QRM_EABORTED with a message, nothing returned,
 * an empty context, and the next call gives the same bits as a context
 * that was never stopped (ASan: nothing leaks, test-sanitize). */
START_TEST(abort_stops_every_call_cleanly) {
    fx f;
    open_fx(&f, "qwen3-tiny", "int8", 0);
    abort_counter a = {0, 0};
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = 2;
    p.abort_cb = abort_after, p.abort_user = &a;
    char err[QRM_ERR_MAX];
    qrm_ctx *c = qrm_ctx_new(f.m, &p, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    enum { NP = 40, NR = 4, RL = 150 }; /* the responses' batch is two chunks */
    int32_t ids[NP + RL];
    fill_ids(ids, NP + RL, 3);
    const int32_t *rp[NR] = {ids + NP, ids + NP + 1, ids + NP + 2, ids + NP + 3};
    const size_t rl[NR] = {RL - 3, RL - 3, RL - 3, RL - 3};
    float want, want_bon[NR], want_last, got;
    ck_assert_int_eq(qrm_score_ids(f.c, ids, NP + RL, &want), QRM_OK);
    ck_assert_int_eq(qrm_score_shared_prefix(f.c, ids, NP, rp, rl, NR, want_bon), QRM_OK);
    ck_assert_int_eq(qrm_ctx_reset(f.c), QRM_OK);
    ck_assert_int_eq(qrm_ctx_append(f.c, ids, NP + RL, NULL, &want_last), QRM_OK);
    for (int call = 0; call < 3; call++) {
        /* how often an unstopped call asks */
        a = (abort_counter){0, 1 << 30};
        qrm_scores bon[NR];
        int rc = call == 0   ? qrm_score_ids(c, ids, NP + RL, &got)
                 : call == 1 ? qrm_score_best_of_n(c, ids, NP, rp, rl, NR, bon)
                             : (qrm_ctx_reset(c), qrm_ctx_append(c, ids, NP, NULL, NULL) ||
                                (a.calls = 0, qrm_ctx_append(c, ids + NP, RL, NULL, &got)));
        ck_assert_int_eq(rc, QRM_OK);
        if (call == 1)
            for (int r = 0; r < NR; r++) qrm_scores_free(&bon[r]);
        int asks = a.calls;
        ck_assert_int_gt(asks, 2);
        for (int k = 0; k < asks; k++) {
            a = (abort_counter){0, k};
            if (call == 2) {
                /* an append after earlier tokens: those are dropped too */
                a.left = 1 << 30;
                ck_assert_int_eq(qrm_ctx_reset(c), QRM_OK);
                ck_assert_int_eq(qrm_ctx_append(c, ids, NP, NULL, NULL), QRM_OK);
                a = (abort_counter){0, k};
                rc = qrm_ctx_append(c, ids + NP, RL, NULL, &got);
            } else if (call == 1) {
                rc = qrm_score_best_of_n(c, ids, NP, rp, rl, NR, bon);
                for (int r = 0; r < NR; r++) {
                    ck_assert_ptr_null(bon[r].values);
                    ck_assert_int_eq(bon[r].n_points, 0);
                }
            } else {
                rc = qrm_score_ids(c, ids, NP + RL, &got);
            }
            ck_assert_msg(rc == QRM_EABORTED, "call %d stopped at ask %d: %d", call, k, rc);
            ck_assert_int_eq(a.calls, k + 1); /* nothing asked after the stop */
            ck_assert_msg(strstr(qrm_ctx_error(c), "abort") != NULL, "%s", qrm_ctx_error(c));
            ck_assert_int_eq(qrm_ctx_length(c), 0);
        }
        a = (abort_counter){0, 1 << 30};
        if (call == 0) {
            ck_assert_int_eq(qrm_score_ids(c, ids, NP + RL, &got), QRM_OK);
            assert_same(got, want, "after aborts", 0);
        } else if (call == 1) {
            float bonv[NR];
            ck_assert_int_eq(qrm_score_shared_prefix(c, ids, NP, rp, rl, NR, bonv), QRM_OK);
            for (int r = 0; r < NR; r++) assert_same(bonv[r], want_bon[r], "best-of-N after aborts", r);
        } else {
            ck_assert_int_eq(qrm_ctx_append(c, ids, NP + RL, NULL, &got), QRM_OK);
            assert_same(got, want_last, "append after aborts", 0);
        }
    }
    qrm_ctx_free(c);
    close_fx(&f);
}
END_TEST

/* qrm-bench e2e --profile: a profile attached to a context times every
 * stage a pass runs, counts the weight GEMMs' work exactly (2 M N K summed
 * over the matrices), and leaves the score untouched. */
START_TEST(profile_times_every_stage) {
    fx f;
    open_fx(&f, "qwen3-tiny", "int8", 64);
    int32_t ids[24];
    fill_ids(ids, 24, 7);
    float plain, profiled;
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 24, &plain), QRM_OK);
    qrm_profile p;
    memset(&p, 0, sizeof p);
    f.c->prof = &p;
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 24, &profiled), QRM_OK);
    f.c->prof = NULL;
    assert_same(profiled, plain, "profiled score", 0);
    const qrm_hparams *hp = &f.m->hp;
    int L = hp->n_layers, D = hp->hidden, F = hp->ffn, qd = hp->n_heads * hp->head_dim,
        kvd = hp->n_kv_heads * hp->head_dim;
    /* every layer runs each stage once; the last layer's second half only
     * for the one row whose score is wanted */
    ck_assert_int_eq(p.calls[QRM_STAGE_QKV_GEMM], L);
    ck_assert_int_eq(p.calls[QRM_STAGE_ATTENTION], L);
    ck_assert_int_eq(p.calls[QRM_STAGE_DOWN_GEMM], L);
    ck_assert_int_eq(p.calls[QRM_STAGE_EMBED], 1);
    ck_assert_int_eq(p.calls[QRM_STAGE_NORM], L + 1 + L);
    double want_qkv = 2.0 * 24 * D * (double)(qd + 2 * kvd) * L;
    double want_down = 2.0 * (24.0 * (L - 1) + 1) * F * D;
    ck_assert_msg(p.gemm_ops[QRM_STAGE_QKV_GEMM] == want_qkv, "qkv ops %.0f, want %.0f",
                  p.gemm_ops[QRM_STAGE_QKV_GEMM], want_qkv);
    ck_assert_msg(p.gemm_ops[QRM_STAGE_DOWN_GEMM] == want_down, "down ops %.0f, want %.0f",
                  p.gemm_ops[QRM_STAGE_DOWN_GEMM], want_down);
    for (int i = 0; i < QRM_N_STAGES; i++) {
        ck_assert_msg(p.seconds[i] >= 0, "stage %s: %g s", qrm_stage_name(i), p.seconds[i]);
        if (qrm_stage_is_gemm(i))
            ck_assert_msg(p.calls[i] == L && p.gemm_ops[i] > 0 && p.seconds[i] > 0,
                          "stage %s: %ld calls, %.0f ops, %g s", qrm_stage_name(i), p.calls[i],
                          p.gemm_ops[i], p.seconds[i]);
    }
    close_fx(&f);
}
END_TEST

static void count_matmul(void *arg, const qrm_tensor *w, const float *x, int M, int K) {
    (void)w, (void)x, (void)M, (void)K;
    ++*(int *)arg;
}

/* A quantized output projection takes its input straight from the attention
 * tasks (each quantizes its rows into c->qa), unless a matmul hook (the
 * calibration's) wants the float rows: then a step of its own quantizes
 * them. Both give the same bytes, so the same score, and the profile shows
 * which ran. */
START_TEST(attention_output_quantized_in_place) {
    fx f;
    open_fx(&f, _i ? "llama3-tiny" : "qwen3-tiny", "int8", 64); /* g x head_dim: 64 and 32 */
    int32_t ids[24];
    fill_ids(ids, 24, 11);
    float fused, apart;
    qrm_profile p;
    memset(&p, 0, sizeof p);
    f.c->prof = &p;
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 24, &fused), QRM_OK);
    ck_assert_int_eq(p.calls[QRM_STAGE_ATT_QUANT], 0);
    memset(&p, 0, sizeof p);
    int hooked = 0;
    f.c->act_hook = count_matmul, f.c->act_arg = &hooked;
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 24, &apart), QRM_OK);
    f.c->act_hook = NULL, f.c->prof = NULL;
    ck_assert_int_eq(p.calls[QRM_STAGE_ATT_QUANT], f.m->hp.n_layers);
    ck_assert_int_gt(hooked, 0);
    assert_same(fused, apart, "score with the output quantized in attention", _i);
    close_fx(&f);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("scoring");
    TCase *tc = tcase_create("modes");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, shared_prefix_equals_independent, 0, 9);
    tcase_add_test(tc, shared_prefix_many_responses);
    tcase_add_loop_test(tc, incremental_equals_full, 0, 9);
    tcase_add_test(tc, limits_are_clear_errors);
    tcase_add_test(tc, trailing_pad_is_ignored);
    tcase_add_test(tc, contexts_share_one_model);
    tcase_add_test(tc, abort_stops_every_call_cleanly);
    tcase_add_test(tc, profile_times_every_stage);
    tcase_add_loop_test(tc, attention_output_quantized_in_place, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
