/* Rewards read from the vocabulary head of a causal LM, end to end on the
 * fixtures of tests/data/models (random weights in Hugging Face layout,
 * float64 expected values computed outside this project; README.md there):
 *
 *   qwen3-yesno-tiny           yes/no judge, tied embeddings (no lm_head),
 *                              config vocab_size 384 > 338 tokenizer entries
 *   mistral-mathshepherd-tiny  Math-Shepherd step tags, good/bad tokens
 *   llama-dpo-tiny             DPO implicit reward: policy/ and reference/
 *
 * f32, against the fixtures' own tolerances: judge and step probabilities
 * within 2e-5 absolute, the full-vocabulary P(yes) within 1e-4 relative,
 * per-token log-probabilities within 1e-4, sums within 1e-4 x the response
 * length. int8 / int4: errors and decisions bounded by what was measured
 * plus a margin (printed). Best-of-N with a shared prefix equals scoring
 * alone bit for bit. */
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

#define MAX_LINES 12

typedef struct {
    int n;
    int32_t *ids[MAX_LINES];
    size_t len[MAX_LINES];
    qj_doc *doc[MAX_LINES];
} lines;

static void add_line(const char *line, size_t len, void *arg) {
    lines *e = arg;
    char err[200];
    qj_doc *d = qj_parse(line, len, err, sizeof err);
    ck_assert_msg(d != NULL, "expected.jsonl: %s", err);
    const qj_value *ids = qj_get_type(qj_root(d), "ids", QJ_ARRAY);
    ck_assert(ids && e->n < MAX_LINES);
    int k = e->n++;
    e->doc[k] = d;
    e->ids[k] = malloc(ids->len * sizeof(int32_t));
    for (uint32_t i = 0; i < ids->len; i++) e->ids[k][i] = (int32_t)ids->u.items[i].u.num;
    e->len[k] = ids->len;
}

static void load(const char *fixture, lines *e) {
    char path[256];
    memset(e, 0, sizeof *e);
    snprintf(path, sizeof path, TEST_DATA "/models/%s/expected.jsonl", fixture);
    tu_for_each_line(path, add_line, e);
    ck_assert_int_eq(e->n, 12);
}

static void free_lines(lines *e) {
    for (int i = 0; i < e->n; i++) free(e->ids[i]), qj_free(e->doc[i]);
}

static double num(const lines *e, int i, const char *key) {
    double v;
    ck_assert_msg(qj_get_num(qj_root(e->doc[i]), key, &v), "line %d: no '%s'", i, key);
    return v;
}

static const qj_value *arr(const lines *e, int i, const char *key) {
    const qj_value *a = qj_get_type(qj_root(e->doc[i]), key, QJ_ARRAY);
    ck_assert_msg(a != NULL, "line %d: no '%s'", i, key);
    return a;
}

typedef struct {
    char *file;
    qrm_model *m;
    qrm_ctx *c;
} fx;

/* Converts src (under tests/data/models) with the head specification. */
static void open_fx(fx *f, const char *src, const char *quant, const qrm_convert_opts *spec_opts,
                    int threads) {
    char err[QRM_ERR_MAX];
    f->file = tu_convert(src, quant, spec_opts);
    f->m = qrm_model_open(f->file, err, sizeof err);
    ck_assert_msg(f->m != NULL, "%s", err);
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = threads;
    f->c = qrm_ctx_new(f->m, &p, err, sizeof err);
    ck_assert_msg(f->c != NULL, "%s", err);
}

static void close_fx(fx *f) {
    qrm_ctx_free(f->c);
    qrm_model_close(f->m);
    tu_remove_converted(f->file);
}

static const qrm_convert_opts judge_pair = {.spec = {.judge_yes = "yes", .judge_no = "no"}};
static const qrm_convert_opts judge_full = {.spec = {.judge_yes = "yes", .judge_no = "no", .judge_full = 1}};
static const qrm_convert_opts shepherd = {.spec = {.step_tag = " \xd0\xba\xd0\xb8", .good = " +", .bad = " -"}};
static const qrm_convert_opts lm = {.spec = {.lm = 1}};

/* ---- judge ---- */

START_TEST(judge_f32_matches_reference) {
    lines e;
    load("qwen3-yesno-tiny", &e);
    for (int threads = 1; threads <= 2; threads++)
        for (int full = 0; full <= 1; full++) {
            fx f;
            open_fx(&f, "qwen3-yesno-tiny", "f32", full ? &judge_full : &judge_pair, threads);
            double worst = 0;
            for (int i = 0; i < e.n; i++) {
                float s;
                ck_assert_msg(qrm_score_ids(f.c, e.ids[i], e.len[i], &s) == 0, "%s", qrm_ctx_error(f.c));
                double want = num(&e, i, full ? "p_yes_full" : "score");
                double tol = full ? 1e-4 * want : 2e-5, d = fabs(s - want);
                worst = fmax(worst, d / tol);
                ck_assert_msg(d <= tol, "%s judge line %d: got %.9g expected %.9g", full ? "full" : "pair",
                              i, (double)s, want);
            }
            printf("qwen3-yesno-tiny %s judge f32 (%d threads): worst |d| = %.3f of the tolerance\n",
                   full ? "full" : "pair", threads, worst);
            close_fx(&f);
        }
    free_lines(&e);
}
END_TEST

/* The pair judge keeps two vocabulary rows: its parameters are the
 * backbone's and 2 x hidden; the full judge and the lm head keep the whole
 * (tied) matrix, 384 rows of the config's vocabulary, not the tokenizer's
 * 338. */
START_TEST(judge_keeps_only_what_it_reads) {
    fx a, b, c;
    open_fx(&a, "qwen3-yesno-tiny", "f32", &judge_pair, 1);
    open_fx(&b, "qwen3-yesno-tiny", "f32", &judge_full, 1);
    open_fx(&c, "qwen3-yesno-tiny", "f32", &lm, 1);
    qrm_model_info ia, ib, ic;
    qrm_model_get_info(a.m, &ia), qrm_model_get_info(b.m, &ib), qrm_model_get_info(c.m, &ic);
    ck_assert_int_eq(ib.n_params - ia.n_params, (384 - 2) * 64);
    ck_assert_int_eq(ic.n_params, ib.n_params);
    ck_assert_str_eq(ia.head, "judge");
    ck_assert(ic.logprobs && !ia.logprobs && !ia.per_step);
    close_fx(&a), close_fx(&b), close_fx(&c);
    /* the metadata says how the head is stored: the pair's two rows f32, the
     * full vocabulary int4 like the backbone, llama-dpo-tiny's 329 rows f16 */
    static const struct {
        const char *src;
        const qrm_convert_opts *spec;
        const char *kept;
    } st[] = {{"qwen3-yesno-tiny", &judge_pair, "biases, head (f32)"},
              {"qwen3-yesno-tiny", &judge_full, "biases, the vocabulary head stored as the other matrices"},
              {"llama-dpo-tiny/policy", &lm, "biases, the vocabulary head (f16: its rows are not a multiple of 16)"}};
    for (int i = 0; i < 3; i++) {
        open_fx(&a, st[i].src, "int4", st[i].spec, 1);
        const char *meta = qrm_model_metadata_json(a.m);
        ck_assert_msg(strstr(meta, st[i].kept), "%s: %s", st[i].src, meta);
        close_fx(&a);
    }
}
END_TEST

/* ---- Math-Shepherd ---- */

START_TEST(step_tag_f32_matches_reference) {
    lines e;
    load("mistral-mathshepherd-tiny", &e);
    fx f;
    open_fx(&f, "mistral-mathshepherd-tiny", "f32", &shepherd, 2);
    qrm_model_info info;
    qrm_model_get_info(f.m, &info);
    ck_assert(info.per_step);
    double worst = 0;
    int steps = 0;
    for (int i = 0; i < e.n; i++) {
        qrm_scores s;
        ck_assert_msg(qrm_score(f.c, e.ids[i], e.len[i], &s) == 0, "%s", qrm_ctx_error(f.c));
        const qj_value *pos = arr(&e, i, "step_positions"), *sc = arr(&e, i, "step_scores");
        ck_assert_int_eq(s.n_points, pos->len);
        for (size_t k = 0; k < s.n_points; k++, steps++) {
            ck_assert_int_eq(s.positions[k], (int32_t)pos->u.items[k].u.num);
            double d = fabs(s.values[k] - sc->u.items[k].u.num);
            worst = fmax(worst, d / 2e-5);
            ck_assert_msg(d <= 2e-5, "line %d step %zu: got %.9g expected %.9g", i, k,
                          (double)s.values[k], sc->u.items[k].u.num);
        }
        qrm_scores_free(&s);
    }
    printf("mistral-mathshepherd-tiny f32: %d steps, worst |d| = %.3f of the tolerance\n", steps, worst);
    close_fx(&f);
    free_lines(&e);
}
END_TEST

/* The tagged-text input rule: "prompt step1 TAG\n\nstep2 TAG", with the
 * special tokens the tokenizer adds (the real Mistral tokenizer's BOS). */
START_TEST(step_tag_input_rule) {
    fx f;
    open_fx(&f, "mistral-mathshepherd-tiny", "f32", &shepherd, 1);
    const char *steps[] = {"a", "b"}, *blank[] = {"a\n\nb"};
    size_t sl[] = {1, 1}, bl[] = {4};
    int32_t *ids, *want;
    size_t n, nw;
    ck_assert(qrm_encode_steps(f.c, "q", 1, steps, sl, 2, &ids, &n) == 0);
    const char *text = "q a \xd0\xba\xd0\xb8\n\nb \xd0\xba\xd0\xb8";
    ck_assert(qrm_tokenize(f.c, text, strlen(text), 1, &want, &nw) == 0);
    ck_assert_int_eq(n, nw);
    ck_assert(!memcmp(ids, want, n * sizeof *ids));
    free(ids), free(want);
    ck_assert_int_eq(qrm_encode_steps(f.c, "q", 1, blank, bl, 1, &ids, &n), QRM_EINVAL);
    ck_assert(strstr(qrm_ctx_error(f.c), "blank line") != NULL);
    /* a step that starts with the tag's word joins the space before it into
     * one more tag: refused by counting the tags */
    const char *lead[] = {"\xd0\xba\xd0\xb8 then"};
    size_t ll[] = {strlen(lead[0])};
    ck_assert_int_eq(qrm_encode_steps(f.c, "q", 1, lead, ll, 1, &ids, &n), QRM_EINVAL);
    ck_assert_msg(strstr(qrm_ctx_error(f.c), "encode to 2 step separators") != NULL, "%s", qrm_ctx_error(f.c));
    close_fx(&f);
}
END_TEST

/* ---- DPO ---- */

static void open_pair(fx *pol, fx *ref, const char *quant, int threads) {
    open_fx(pol, "llama-dpo-tiny/policy", quant, &lm, threads);
    open_fx(ref, "llama-dpo-tiny/reference", quant, &lm, threads);
}

static double sum_from(const qrm_scores *s) {
    double t = 0;
    for (size_t i = 0; i < s->n_points; i++) t += s->values[i];
    return t;
}

START_TEST(dpo_f32_matches_reference) {
    lines e;
    load("llama-dpo-tiny", &e);
    fx pol, ref;
    open_pair(&pol, &ref, "f32", 1 + _i);
    double worst_lp = 0, worst_sum = 0;
    for (int i = 0; i < e.n; i++) {
        size_t start = (size_t)num(&e, i, "response_start"), nr = (size_t)num(&e, i, "n_response");
        qrm_scores p, r;
        ck_assert_msg(qrm_logprobs(pol.c, e.ids[i], e.len[i], start, &p) == 0, "%s", qrm_ctx_error(pol.c));
        ck_assert(qrm_logprobs(ref.c, e.ids[i], e.len[i], start, &r) == 0);
        ck_assert_int_eq(p.n_points, nr);
        const qj_value *lp = arr(&e, i, "logp_policy"), *lr = arr(&e, i, "logp_ref");
        for (size_t k = 0; k < nr; k++) {
            ck_assert_int_eq(p.positions[k], (int32_t)(start + k - 1)); /* row t - 1 predicts t */
            double d1 = fabs(p.values[k] - lp->u.items[k].u.num), d2 = fabs(r.values[k] - lr->u.items[k].u.num);
            worst_lp = fmax(worst_lp, fmax(d1, d2) / 1e-4);
            ck_assert_msg(d1 <= 1e-4 && d2 <= 1e-4, "line %d token %zu: policy %.9g vs %.9g, ref %.9g vs %.9g",
                          i, k, (double)p.values[k], lp->u.items[k].u.num, (double)r.values[k],
                          lr->u.items[k].u.num);
        }
        double tol = 1e-4 * (double)nr;
        double reward = sum_from(&p) - sum_from(&r), sq = 0;
        for (size_t k = 0; k < nr; k++) sq += (double)p.values[k] * p.values[k];
        double got[4] = {reward, sum_from(&p), sum_from(&p) / (double)nr, -sqrt(sq)};
        const char *keys[4] = {"reward", "ref_free_sum", "ref_free_avg", "ref_free_norm"};
        for (int k = 0; k < 4; k++) {
            double d = fabs(got[k] - num(&e, i, keys[k]));
            worst_sum = fmax(worst_sum, d / tol);
            ck_assert_msg(d <= tol, "line %d %s: %.9g vs %.9g", i, keys[k], got[k], num(&e, i, keys[k]));
        }
        qrm_scores_free(&p), qrm_scores_free(&r);
    }
    printf("llama-dpo-tiny f32 (%d threads): log-probs worst %.3f, sums worst %.3f of the tolerance\n",
           1 + _i, worst_lp, worst_sum);
    close_fx(&pol), close_fx(&ref);
    free_lines(&e);
}
END_TEST

/* Best-of-N: each pair's chosen and rejected share their prompt; scoring
 * both responses against the shared prefix gives what each gives alone. */
START_TEST(logprobs_best_of_n_equals_alone) {
    lines e;
    load("llama-dpo-tiny", &e);
    fx pol, ref;
    open_pair(&pol, &ref, _i ? "int8" : "f32", 2);
    for (int i = 0; i + 1 < e.n; i += 2) {
        size_t start = (size_t)num(&e, i, "response_start");
        ck_assert_int_eq(start, (size_t)num(&e, i + 1, "response_start"));
        const int32_t *resp[2] = {e.ids[i] + start, e.ids[i + 1] + start};
        size_t rl[2] = {e.len[i] - start, e.len[i + 1] - start};
        qrm_scores shared[2];
        ck_assert_msg(qrm_logprobs_best_of_n(pol.c, e.ids[i], start, resp, rl, 2, start, shared) == 0,
                      "%s", qrm_ctx_error(pol.c));
        for (int k = 0; k < 2; k++) {
            qrm_scores alone;
            ck_assert(qrm_logprobs(pol.c, e.ids[i + k], e.len[i + k], start, &alone) == 0);
            ck_assert_int_eq(alone.n_points, shared[k].n_points);
            ck_assert(!memcmp(alone.values, shared[k].values, alone.n_points * sizeof(float)));
            ck_assert(!memcmp(alone.positions, shared[k].positions, alone.n_points * sizeof(int32_t)));
            qrm_scores_free(&alone), qrm_scores_free(&shared[k]);
        }
    }
    close_fx(&pol), close_fx(&ref);
    free_lines(&e);
}
END_TEST

/* Errors: log-probabilities need the lm head and a response; the lm head
 * has a point per token, not one score. */
START_TEST(logprob_errors) {
    fx f, j;
    open_fx(&f, "llama-dpo-tiny/policy", "f32", &lm, 1);
    open_fx(&j, "qwen3-yesno-tiny", "f32", &judge_pair, 1);
    int32_t ids[] = {324, 10, 11, 12};
    qrm_scores s;
    float v;
    ck_assert_int_eq(qrm_logprobs(f.c, ids, 4, 0, &s), QRM_EINVAL);
    ck_assert_int_eq(qrm_logprobs(f.c, ids, 4, 4, &s), QRM_EINVAL);
    ck_assert_int_eq(qrm_logprobs(j.c, ids, 4, 1, &s), QRM_EINVAL);
    ck_assert(strstr(qrm_ctx_error(j.c), "--head lm") != NULL);
    ck_assert_int_eq(qrm_score_ids(f.c, ids, 4, &v), QRM_EINVAL);
    ck_assert(qrm_score(f.c, ids, 4, &s) == 0); /* every next token */
    ck_assert_int_eq(s.n_points, 3);
    qrm_scores_free(&s);
    /* the last token is read (as the target of the row before it) but never
     * run: its id is checked all the same */
    int32_t bad[] = {324, 10, 11, 2000000000};
    ck_assert_int_eq(qrm_logprobs(f.c, bad, 4, 1, &s), QRM_EINVAL);
    ck_assert_msg(strstr(qrm_ctx_error(f.c), "token id 2000000000 at 3 is out of range") != NULL, "%s",
                  qrm_ctx_error(f.c));
    const int32_t *resp[1] = {bad + 2};
    size_t rl[1] = {2};
    ck_assert_int_eq(qrm_logprobs_best_of_n(f.c, bad, 2, resp, rl, 1, 2, &s), QRM_EINVAL);
    close_fx(&f), close_fx(&j);
}
END_TEST

/* The JSONL lines of a DPO run: an ids line gives the reward; a messages
 * line is encoded by RewardBench's rule (BOS prepended to the template's own,
 * the response from the assistant header on, EOS appended); a prompt with
 * responses gives, bit for bit, the rewards of the same conversations alone. */
static void line(qrm_ctx *c, const qrm_score_opts *o, const char *in, qj_buf *b) {
    size_t nt = 0;
    b->len = 0;
    qrm_score_line(c, in, strlen(in), o, b, &nt);
    qj_buf_puts(b, "");
}

START_TEST(dpo_lines) {
    lines e;
    load("llama-dpo-tiny", &e);
    fx pol, ref;
    open_pair(&pol, &ref, "f32", 2);
    qrm_score_opts o = {.ref = ref.c, .logprobs = 1};
    qj_buf b = {0};
    char in[4096], err[200];
    /* an ids line: the fixture's reward */
    int k = snprintf(in, sizeof in, "{\"id\":3,\"ids\":[");
    for (size_t i = 0; i < e.len[3]; i++) k += snprintf(in + k, sizeof in - (size_t)k, "%s%d", i ? "," : "", e.ids[3][i]);
    snprintf(in + k, sizeof in - (size_t)k, "],\"response_start\":%d}", (int)num(&e, 3, "response_start"));
    line(pol.c, &o, in, &b);
    qj_doc *d = qj_parse(b.buf, b.len, err, sizeof err);
    ck_assert_msg(d != NULL, "%s: %s", b.buf, err);
    const qj_value *sc = qj_get_type(qj_root(d), "scores", QJ_ARRAY);
    ck_assert_msg(sc && fabs(sc->u.items[0].u.num - num(&e, 3, "reward")) <= 1e-4 * num(&e, 3, "n_response"), "%s", b.buf);
    ck_assert_int_eq(qj_get_type(qj_root(d), "logprobs", QJ_ARRAY)->u.items[0].len, (uint32_t)num(&e, 3, "n_response"));
    qj_free(d);
    /* messages: the RewardBench sequence */
    const char *msgs = "{\"messages\":[{\"role\":\"user\",\"content\":\"Name a prime.\"},"
                       "{\"role\":\"assistant\",\"content\":\"Seven.\"}]}";
    line(pol.c, &o, msgs, &b);
    char *alone = strdup(b.buf);
    int32_t *ids;
    size_t n, start;
    const char *conv = "[{\"role\":\"user\",\"content\":\"Name a prime.\"},{\"role\":\"assistant\",\"content\":\"Seven.\"}]";
    ck_assert(qrm_encode_dpo(pol.c, conv, strlen(conv), &ids, &n, &start) == 0);
    ck_assert_int_eq(ids[0], 324); /* two BOS */
    ck_assert_int_eq(ids[1], 324);
    ck_assert_int_eq(ids[n - 1], 328); /* <|eot_id|> twice */
    ck_assert_int_eq(ids[n - 2], 328);
    ck_assert_int_eq(ids[start], 326);                                 /* the assistant header */
    ck_assert_int_eq(ids[start - 1], 328);                             /* the user turn's end */
    free(ids);
    /* best-of-N equals alone */
    line(pol.c, &o, "{\"prompt\":\"Name a prime.\",\"responses\":[\"Seven.\",\"Eight is not.\"]}", &b);
    d = qj_parse(b.buf, b.len, err, sizeof err);
    qj_doc *a = qj_parse(alone, strlen(alone), err, sizeof err);
    ck_assert(d && a);
    ck_assert(qj_get_type(qj_root(d), "scores", QJ_ARRAY)->u.items[0].u.num ==
              qj_get_type(qj_root(a), "scores", QJ_ARRAY)->u.items[0].u.num);
    qj_free(d), qj_free(a), free(alone);
    /* errors, one line each */
    line(pol.c, &o, "{\"ids\":[1,2,3]}", &b);
    ck_assert_msg(strstr(b.buf, "needs 'response_start'") != NULL, "%s", b.buf);
    line(pol.c, &o, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &b);
    ck_assert_msg(strstr(b.buf, "ends with the assistant's response") != NULL, "%s", b.buf);
    line(pol.c, &o, "{\"ids\":[1,2,3],\"response_start\":3}", &b);
    ck_assert_msg(strstr(b.buf, "\"error\"") != NULL, "%s", b.buf);
    qj_buf_free(&b);
    close_fx(&pol), close_fx(&ref);
    free_lines(&e);
}
END_TEST

/* Gemma2's causal LM soft-caps its logits (final_logit_softcapping 30 in the
 * gemma2-tiny config, whose embeddings are tied by Gemma2's default): a
 * vocabulary head applies the cap, a score head never does. */
START_TEST(gemma2_vocabulary_head_is_softcapped) {
    char *dir = tu_tmpdir(), path[512], err[QRM_ERR_MAX];
    const char *files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        size_t len;
        snprintf(path, sizeof path, TEST_DATA "/models/gemma2-tiny/%s", files[i]);
        char *d = tu_read_file(path, &len);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "wb");
        ck_assert(f && fwrite(d, 1, len, f) == len);
        fclose(f);
        free(d);
    }
    size_t len;
    char *cfg = tu_read_file(TEST_DATA "/models/gemma2-tiny/config.json", &len);
    char *at = strstr(cfg, "Gemma2ForSequenceClassification");
    ck_assert(at != NULL);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    fprintf(f, "%.*sGemma2ForCausalLM%s", (int)(at - cfg), cfg, at + strlen("Gemma2ForSequenceClassification"));
    fclose(f);
    free(cfg);
    char out[600];
    snprintf(out, sizeof out, "%s/lm.qrm", dir);
    qrm_convert_opts o = {.hf_dir = dir, .out_path = out, .quant = "f32", .spec = {.lm = 1}};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "%s", err);
    qrm_model *m = qrm_model_open(out, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert(strstr(qrm_model_metadata_json(m), "\"logit_softcap\":30") != NULL);
    qrm_ctx *c = qrm_ctx_new(m, NULL, err, sizeof err);
    int32_t ids[] = {316, 20, 30, 40, 50, 60};
    qrm_scores s;
    ck_assert(qrm_logprobs(c, ids, 6, 1, &s) == 0);
    /* capped logits lie in (-30, 30): no log-probability can fall below
     * -60 - log(vocab) */
    for (size_t k = 0; k < s.n_points; k++)
        ck_assert_msg(s.values[k] < 0 && s.values[k] > -60 - log(320.0), "%g", (double)s.values[k]);
    qrm_scores_free(&s);
    qrm_ctx_free(c);
    qrm_model_close(m);
    const char *all[] = {"lm.qrm", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, all[i]);
        unlink(path);
    }
    rmdir(dir);
    free(dir);
}
END_TEST

/* ---- quantized agreement ---- */

/* Measured (this suite's log, f16 KV cache, avx512 / avx2 / scalar): int8:
 * judge 0.029 / at most 1 of 66 pairs flipped, steps 0.019 / 13 of 1176,
 * DPO rewards 0.63 (the rewards span -13 to 5) / 0 of 6 decisions changed; int4:
 * 0.35 / 18, 0.18 / 102, 3.75 / 1. int4 on these tiny random-weight models
 * is lossy, as on the other fixtures. Bounds: those plus a margin. */
typedef struct {
    double judge, step, reward;
    int judge_flips, step_flips, decisions;
} qbound;
static const qbound bounds[2] = {{0.05, 0.04, 1.2, 3, 25, 1}, {0.5, 0.3, 6.0, 26, 140, 2}};

static int count_flips(const double *want, const double *got, int n) {
    int f = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) f += (want[i] < want[j]) != (got[i] < got[j]);
    return f;
}

START_TEST(quantized_agreement_bounded) {
    const char *quant = _i ? "int4" : "int8";
    const qbound *b = &bounds[_i];
    lines e;
    fx f;
    /* judge */
    load("qwen3-yesno-tiny", &e);
    open_fx(&f, "qwen3-yesno-tiny", quant, &judge_pair, 2);
    double want[64], got[64], worst = 0;
    for (int i = 0; i < e.n; i++) {
        float s;
        ck_assert(qrm_score_ids(f.c, e.ids[i], e.len[i], &s) == 0);
        want[i] = num(&e, i, "score"), got[i] = s;
        worst = fmax(worst, fabs(got[i] - want[i]));
    }
    int flips = count_flips(want, got, e.n);
    printf("judge %s: max |d| = %.4f, %d of 66 pairs flipped\n", quant, worst, flips);
    ck_assert_msg(worst <= b->judge && flips <= b->judge_flips, "judge %s: %.4f, %d flips", quant, worst, flips);
    close_fx(&f);
    free_lines(&e);
    /* steps */
    load("mistral-mathshepherd-tiny", &e);
    open_fx(&f, "mistral-mathshepherd-tiny", quant, &shepherd, 2);
    int n = 0;
    worst = 0;
    for (int i = 0; i < e.n; i++) {
        qrm_scores s;
        ck_assert(qrm_score(f.c, e.ids[i], e.len[i], &s) == 0);
        const qj_value *sc = arr(&e, i, "step_scores");
        for (size_t k = 0; k < s.n_points && n < 64; k++, n++) {
            want[n] = sc->u.items[k].u.num, got[n] = s.values[k];
            worst = fmax(worst, fabs(got[n] - want[n]));
        }
        qrm_scores_free(&s);
    }
    flips = count_flips(want, got, n);
    printf("steps %s: max |d| = %.4f, %d of %d pairs flipped\n", quant, worst, flips, n * (n - 1) / 2);
    ck_assert_msg(worst <= b->step && flips <= b->step_flips, "steps %s: %.4f, %d flips", quant, worst, flips);
    close_fx(&f);
    free_lines(&e);
    /* DPO: rewards and the chosen-vs-rejected decision of each pair */
    load("llama-dpo-tiny", &e);
    fx ref;
    open_pair(&f, &ref, quant, 2);
    double r[MAX_LINES];
    worst = 0;
    for (int i = 0; i < e.n; i++) {
        size_t start = (size_t)num(&e, i, "response_start");
        qrm_scores p, q;
        ck_assert(qrm_logprobs(f.c, e.ids[i], e.len[i], start, &p) == 0);
        ck_assert(qrm_logprobs(ref.c, e.ids[i], e.len[i], start, &q) == 0);
        r[i] = sum_from(&p) - sum_from(&q);
        worst = fmax(worst, fabs(r[i] - num(&e, i, "reward")));
        qrm_scores_free(&p), qrm_scores_free(&q);
    }
    int changed = 0;
    for (int i = 0; i + 1 < e.n; i += 2)
        changed += (num(&e, i, "reward") > num(&e, i + 1, "reward")) != (r[i] > r[i + 1]);
    printf("dpo %s: max |d reward| = %.4f, %d of 6 decisions changed\n", quant, worst, changed);
    ck_assert_msg(worst <= b->reward && changed <= b->decisions, "dpo %s: %.4f, %d changed", quant, worst, changed);
    close_fx(&f), close_fx(&ref);
    free_lines(&e);
}
END_TEST

/* ---- conversion errors of a head specification ---- */

static void convert_fails(const char *src, const qrm_convert_opts *spec, const char *want) {
    char in[256], err[QRM_ERR_MAX], *dir = tu_tmpdir(), out[512];
    snprintf(in, sizeof in, TEST_DATA "/models/%s", src);
    snprintf(out, sizeof out, "%s/x.qrm", dir);
    qrm_convert_opts o = *spec;
    o.hf_dir = in, o.out_path = out, o.quant = "int8";
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
    ck_assert(access(out, F_OK) != 0);
    rmdir(dir);
    free(dir);
}

START_TEST(head_spec_errors) {
    qrm_convert_opts none = {0};
    convert_fails("qwen3-yesno-tiny", &none, "give one head specification");
    qrm_convert_opts two = {.spec = {.judge_yes = "yes", .judge_no = "no", .lm = 1}};
    convert_fails("qwen3-yesno-tiny", &two, "give one head specification");
    /* a string that is not one token shows its pieces */
    qrm_convert_opts multi = {.spec = {.judge_yes = "yes please", .judge_no = "no"}};
    convert_fails("qwen3-yesno-tiny", &multi, "yes token 'yes please' is not one token in this tokenizer: it encodes to");
    qrm_convert_opts same = {.spec = {.judge_yes = "yes", .judge_no = "yes"}};
    convert_fails("qwen3-yesno-tiny", &same, "the yes and no tokens are the same token");
    /* the bare tag is another token than the spaced one: both convert, only one is right;
     * a tag the tokenizer splits is refused */
    qrm_convert_opts badtag = {.spec = {.step_tag = "step tag", .good = " +", .bad = " -"}};
    convert_fails("mistral-mathshepherd-tiny", &badtag, "step tag 'step tag' is not one token");
    /* a classification checkpoint has its own head */
    convert_fails("llama3-tiny", &judge_pair, "has its own head");
}
END_TEST

/* qrm-convert --head-spec: the fixtures' own reward_head.json files, and a
 * judge whose "norm" asks for the full vocabulary. */
START_TEST(head_spec_files) {
    if (access(QRM_TEST_BIN_DIR "/qrm-convert", X_OK) != 0) return; /* the binary is built by make test */
    char *dir = tu_tmpdir(), cmd[1024], path[600];
    snprintf(path, sizeof path, "%s/full.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"kind\": \"judge\", \"yes\": \"yes\", \"no\": \"no\", \"norm\": \"full\"}", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm-convert " TEST_DATA "/models/qwen3-yesno-tiny -o %s/j.qrm -q --quant f32 --head-spec %s", dir, path);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/j.qrm", dir);
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert(strstr(qrm_model_metadata_json(m), "\"norm\":\"full\"") != NULL);
    qrm_model_close(m);
    unlink(path);
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm-convert " TEST_DATA "/models/mistral-mathshepherd-tiny -o %s/s.qrm -q --quant f32 "
             "--head-spec " TEST_DATA "/models/mistral-mathshepherd-tiny/reward_head.json", dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/s.qrm", dir);
    m = qrm_model_open(path, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert(strstr(qrm_model_metadata_json(m), "\"kind\":\"step_tag\",\"step_tag_id\":319,\"good_id\":321,\"bad_id\":320") != NULL);
    qrm_model_close(m);
    unlink(path);
    snprintf(path, sizeof path, "%s/full.json", dir);
    unlink(path);
    rmdir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("vocab");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, judge_f32_matches_reference);
    tcase_add_test(tc, judge_keeps_only_what_it_reads);
    tcase_add_test(tc, step_tag_f32_matches_reference);
    tcase_add_test(tc, step_tag_input_rule);
    tcase_add_loop_test(tc, dpo_f32_matches_reference, 0, 2);
    tcase_add_loop_test(tc, logprobs_best_of_n_equals_alone, 0, 2);
    tcase_add_test(tc, logprob_errors);
    tcase_add_test(tc, dpo_lines);
    tcase_add_test(tc, gemma2_vocabulary_head_is_softcapped);
    tcase_add_loop_test(tc, quantized_agreement_bounded, 0, 2);
    tcase_add_test(tc, head_spec_errors);
    tcase_add_test(tc, head_spec_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
