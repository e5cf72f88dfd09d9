/* The same score on every machine: for every model fixture, at f32, f16,
 * int8 and int4, with an f32, an f16 and (head_dim a multiple of 32) an int8-key
 * KV cache, every kernel family this
 * CPU runs and 1 or 2 threads give the same bits as the scalar family on one
 * thread, whether a sequence is scored whole, after a shared prefix
 * (best-of-N) or appended piece by piece.
 *
 * Across machines: each (fixture, quant, KV) case also gets a fingerprint
 * (FNV-1a over the bits of every value it produced), compared with the one
 * recorded in tests/data/determinism/fingerprints.txt. The record is not a
 * reference for correctness (the fixtures' own expected scores are, in the
 * other suites); it is what one machine computed, so that the others (ARM
 * under qemu, another x86) are checked against it. Rewrite it, after a change
 * that means to alter the float evaluation, with
 *   QRM_WRITE_FINGERPRINTS=tests/data/determinism/fingerprints.txt build/tests/test_determinism
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels.h"
#include "qrm.h"
#include "testutil.h"

#define FINGERPRINTS TEST_DATA "/determinism/fingerprints.txt"

static const qrm_convert_opts lm = {.spec = {.lm = 1}};
static const qrm_convert_opts judge = {.spec = {.judge_yes = "yes", .judge_no = "no", .judge_full = 1}};
static const qrm_convert_opts shepherd = {.spec = {.step_tag = " \xd0\xba\xd0\xb8", .good = " +", .bad = " -"}};
static const struct {
    const char *name;
    const qrm_convert_opts *opts;
} fixtures[] = {
    {"qwen3-tiny", NULL},         {"llama3-tiny", NULL},         {"gemma2-tiny", NULL},
    {"qwen2-prm-tiny", NULL},     {"llama3-armorm-tiny", NULL},  {"llama3-helpsteer2-tiny", NULL},
    {"llama-dpo-tiny/policy", &lm}, {"qwen3-yesno-tiny", &judge}, {"mistral-mathshepherd-tiny", &shepherd},
};
#define N_FIXTURES ((int)(sizeof fixtures / sizeof fixtures[0]))
static const char *quants[] = {"f32", "f16", "int8", "int4"};

/* ---- what one run produces ---- */

typedef struct {
    float *v;
    size_t n, cap;
} floats;

static void put(floats *f, const float *v, size_t n) {
    if (n == 0) return; /* v may be NULL then */
    if (f->n + n > f->cap) {
        f->cap = (f->n + n) * 2;
        f->v = realloc(f->v, f->cap * sizeof(float));
        ck_assert(f->v != NULL);
    }
    memcpy(f->v + f->n, v, n * sizeof(float));
    f->n += n;
}

static void put_scores(floats *f, qrm_scores *s) {
    put(f, s->values, s->n_points * (size_t)s->n_values);
    qrm_scores_free(s);
}

enum { N_SEQ = 3, PREFIX = 19 };
static const size_t resp_len[N_SEQ] = {5, 11, 1};

/* Every way of scoring the fixture's sequences, appended to out. A step-tag
 * head scores only at its tag: step_id >= 0 puts it at every third
 * response position and at the end (random ids would almost never hold it,
 * and the case would compare nothing). */
static void run_all(qrm_ctx *c, int logprobs, int per_row, int text, int vocab, int32_t step_id,
                    floats *out) {
    int32_t ids[N_SEQ][64];
    size_t len[N_SEQ], prefix = PREFIX;
    if (text) { /* a head that needs a real chat turn (ArmoRM's gating pattern) */
        static const char *responses[N_SEQ] = {"Four.", "It is 4, since 2 + 2 = 4.", "5"};
        for (int s = 0; s < N_SEQ; s++) {
            int32_t *t;
            ck_assert(qrm_encode_prompt_response(c, "What is 2+2?", 12, responses[s], strlen(responses[s]), &t,
                                                 &len[s]) == 0);
            ck_assert(len[s] <= 64);
            memcpy(ids[s], t, len[s] * sizeof *t);
            qrm_free(t);
        }
        for (prefix = 0; prefix + 1 < len[0] && prefix + 1 < len[1] && prefix + 1 < len[2] &&
                         ids[0][prefix] == ids[1][prefix] && ids[0][prefix] == ids[2][prefix];
             prefix++) {
        }
    } else {
        uint32_t r = 12345;
        for (int s = 0; s < N_SEQ; s++) {
            len[s] = PREFIX + resp_len[s];
            for (size_t t = 0; t < len[s]; t++) {
                r = r * 1103515245u + 12345u;
                ids[s][t] = s > 0 && t < PREFIX ? ids[0][t] : (int32_t)((r >> 8) % (uint32_t)vocab);
                if (step_id >= 0 && t >= PREFIX && (t % 3 == 0 || t + 1 == len[s])) ids[s][t] = step_id;
            }
        }
    }
    const int32_t *resp[N_SEQ];
    size_t rlen[N_SEQ];
    for (int s = 0; s < N_SEQ; s++) resp[s] = ids[s] + prefix, rlen[s] = len[s] - prefix;
    qrm_scores sc[N_SEQ];
    size_t n0 = out->n, w1 = 0, w1n = 0; /* where sequence 1's values went, how many */
    /* whole sequences */
    for (int s = 0; s < N_SEQ; s++) {
        qrm_scores one;
        int rc = logprobs ? qrm_logprobs(c, ids[s], len[s], prefix, &one) : qrm_score(c, ids[s], len[s], &one);
        ck_assert_msg(rc == 0, "scoring failed: %s", qrm_ctx_error(c));
        if (s == 1) w1 = out->n;
        put_scores(out, &one);
        if (s == 1) w1n = out->n - w1;
    }
    /* after a shared prefix */
    int rc = logprobs ? qrm_logprobs_best_of_n(c, ids[0], prefix, resp, rlen, N_SEQ, prefix, sc)
                      : qrm_score_best_of_n(c, ids[0], prefix, resp, rlen, N_SEQ, sc);
    ck_assert_msg(rc == 0, "best-of-N failed: %s", qrm_ctx_error(c));
    size_t n1 = out->n;
    for (int s = 0; s < N_SEQ; s++) put_scores(out, &sc[s]);
    /* the shared prefix changes no bit (prefix 19: not on a 32-slot group) */
    ck_assert_msg(out->n - n1 == n1 - n0, "best-of-N gave %zu values, whole sequences %zu", out->n - n1, n1 - n0);
    for (size_t i = 0; i < n1 - n0; i++)
        ck_assert_msg(memcmp(&out->v[n0 + i], &out->v[n1 + i], 4) == 0,
                      "value %zu: %.9g after the shared prefix, %.9g scored whole", i,
                      (double)out->v[n1 + i], (double)out->v[n0 + i]);
    /* incrementally, in pieces of 7 tokens, every position's head */
    if (per_row) {
        const qrm_model *m = qrm_ctx_model(c);
        qrm_model_info info;
        qrm_model_get_info(m, &info);
        size_t n = len[1], k = (size_t)info.n_outputs;
        float *all = malloc(n * k * sizeof(float));
        ck_assert(all != NULL);
        ck_assert(qrm_ctx_reset(c) == 0);
        for (size_t t = 0; t < n; t += 7) {
            size_t piece = n - t < 7 ? n - t : 7;
            ck_assert_msg(qrm_ctx_append(c, ids[1] + t, piece, all + t * k, NULL) == 0, "append failed: %s",
                          qrm_ctx_error(c));
        }
        /* a head with one point: appended in pieces (the KV cache grown on
         * the way), the last position's values are those scored whole */
        for (size_t i = 0; w1n == k && i < k; i++)
            ck_assert_msg(memcmp(&all[(n - 1) * k + i], &out->v[w1 + i], 4) == 0,
                          "output %zu: %.9g appended in pieces, %.9g scored whole", i,
                          (double)all[(n - 1) * k + i], (double)out->v[w1 + i]);
        put(out, all, n * k);
        free(all);
    }
}

static uint64_t fnv(const floats *f) {
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *p = (const unsigned char *)f->v;
    for (size_t i = 0; i < f->n * sizeof(float); i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The recorded fingerprint of a case, or 0 when none is recorded. */
static uint64_t recorded(const char *key) {
    FILE *fp = fopen(FINGERPRINTS, "r");
    if (!fp) return 0;
    char line[256], k[200];
    uint64_t v = 0, found = 0;
    while (fgets(line, sizeof line, fp))
        if (line[0] != '#' && sscanf(line, "%199s %" SCNx64, k, &v) == 2 && strcmp(k, key) == 0) found = v;
    fclose(fp);
    return found;
}

START_TEST(same_bits_everywhere) {
    const char *fx = fixtures[_i].name;
    char runnable[128];
    qrm_kernels_runnable(qrm_cpu_features_get(), runnable, sizeof runnable);
    const char *write = getenv("QRM_WRITE_FINGERPRINTS");
    for (int qi = 0; qi < 4; qi++) {
        char *path = tu_convert(fx, quants[qi], fixtures[_i].opts);
        char err[256];
        qrm_model *m = qrm_model_open(path, err, sizeof err);
        ck_assert_msg(m != NULL, "%s: %s", path, err);
        qrm_model_info info;
        qrm_model_get_info(m, &info);
        /* heads that read each position alone can be appended to */
        int per_row = !strcmp(info.head, "linear") || !strcmp(info.head, "prm");
        int32_t step_id = -1;
        const char *tag = fixtures[_i].opts ? fixtures[_i].opts->spec.step_tag : NULL;
        if (tag) {
            int32_t *t;
            size_t nt;
            ck_assert_msg(qrm_model_tokenize(m, tag, strlen(tag), 0, &t, &nt, err, sizeof err) == 0 && nt > 0,
                          "%s: cannot tokenize the step tag: %s", fx, err);
            step_id = t[nt - 1];
            qrm_free(t);
        }
        for (int kv = QRM_KV_F32; kv <= QRM_KV_Q8; kv++) {
            if (kv == QRM_KV_Q8 && info.head_dim % QRM_QK) continue; /* q8 keys need it */
            const char *kvn = kv == QRM_KV_F32 ? "f32" : kv == QRM_KV_F16 ? "f16" : "q8";
            floats ref = {0};
            int first = 1;
            char fams[128];
            snprintf(fams, sizeof fams, "%s", runnable);
            for (char *save = NULL, *isa = strtok_r(fams, " ", &save); isa; isa = strtok_r(NULL, " ", &save))
                for (int threads = 1; threads <= 2; threads++) {
                    qrm_ctx_params p;
                    qrm_ctx_params_default(&p);
                    p.isa = isa, p.n_threads = threads, p.kv_type = kv;
                    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
                    ck_assert_msg(c != NULL, "%s: %s", isa, err);
                    floats got = {0};
                    run_all(c, info.logprobs, per_row, !strcmp(info.head, "gated"), info.vocab_size, step_id,
                            &got);
                    qrm_ctx_free(c);
                    /* scalar comes last in the runnable list: compare all
                     * with the first run, whichever it is */
                    if (first) {
                        ref = got, first = 0;
                        continue;
                    }
                    ck_assert_msg(got.n == ref.n, "%s %s kv=%s %s t=%d: %zu values, first run %zu", fx,
                                  quants[qi], kvn, isa, threads, got.n, ref.n);
                    for (size_t i = 0; i < got.n; i++)
                        ck_assert_msg(memcmp(&got.v[i], &ref.v[i], 4) == 0,
                                      "%s %s kv=%s: %s with %d thread(s) gives %.9g at value %zu, "
                                      "the first family %.9g",
                                      fx, quants[qi], kvn, isa, threads,
                                      (double)got.v[i], i, (double)ref.v[i]);
                    free(got.v);
                }
            char key[200];
            snprintf(key, sizeof key, "%s/%s/kv-%s", fx, quants[qi], kvn);
            ck_assert_msg(ref.n > 0, "%s: the scoring gave no values to compare", key);
            uint64_t h = fnv(&ref), want = recorded(key);
            if (write) {
                FILE *fp = fopen(write, "a");
                ck_assert_msg(fp != NULL, "cannot append to %s", write);
                fprintf(fp, "%s %016" PRIx64 "\n", key, h);
                fclose(fp);
            } else {
                ck_assert_msg(want != 0, "%s: no fingerprint recorded in %s", key, FINGERPRINTS);
                ck_assert_msg(h == want, "%s: fingerprint %016" PRIx64 ", recorded %016" PRIx64
                              " (this machine scores differently from the one that recorded it)",
                              key, h, want);
            }
            free(ref.v);
        }
        qrm_model_close(m);
        tu_remove_converted(path);
    }
}
END_TEST

static Suite *determinism_suite(void) {
    Suite *s = suite_create("determinism");
    TCase *t = tcase_create("families");
    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, same_bits_everywhere, 0, N_FIXTURES);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    char runnable[128];
    qrm_kernels_runnable(qrm_cpu_features_get(), runnable, sizeof runnable);
    printf("test_determinism: families %s, 1 and 2 threads\n", runnable);
    fflush(stdout);
    return tu_run(determinism_suite());
}
