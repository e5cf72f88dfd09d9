/* Rewards read from the vocabulary head (lm_head, or the tied embedding
 * matrix) of a *ForCausalLM checkpoint, at the positions that produce a
 * score only. Three kinds, chosen at conversion by a head specification:
 *
 *   judge     a token-probability judge (Qwen3-Reranker style): at the last
 *             token, P(yes) normalized against no, softmax([z_no, z_yes])[1]
 *             = sigmoid(z_yes - z_no) ("pair"), or over the whole vocabulary,
 *             exp(z_yes - logsumexp(z)) ("full")
 *   step_tag  a Math-Shepherd PRM: at every step-tag token, the logits row of
 *             that position, softmax([z_good, z_bad])[0]
 *   lm        the whole head: the log-probability of every next token,
 *             log_softmax(z[t - 1])[ids[t]] (DPO implicit rewards)
 *
 * A pair judge and a step-tag head keep only the two vocabulary rows they
 * read (f32), so the file is no bigger than a classification one; a full
 * judge and the lm head keep the whole matrix, quantized like the others.
 * The full softmax runs over every row of the head (config vocab_size, which
 * real Qwen configs pad past the tokenizer), as transformers does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "head.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

enum { ROWS, LM };

/* Where the checkpoint keeps the vocabulary head: lm_head.weight, or with
 * tied embeddings the embedding matrix (never a zero head). */
static int find_lm(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen) {
    int nd, V = src->hp->vocab_size, D = src->hp->hidden;
    int64_t s[2];
    const char *name = "lm_head.weight";
    if (!src->shape(src->ctx, name, &nd, s)) {
        if (!qj_get_bool(src->cfg, "tie_word_embeddings", src->tie_default))
            FAIL("missing tensor 'lm_head.weight' (and config.json does not set tie_word_embeddings)");
        name = "model.embed_tokens.weight";
        if (!src->shape(src->ctx, name, &nd, s)) FAIL("missing tensor '%s'", name);
    }
    if (nd != 2 || s[0] != V || s[1] != D)
        FAIL("tensor '%s' has the wrong shape: expected [%d, %d] (vocab_size, hidden_size)", name, V, D);
    snprintf(h->lm_src, sizeof h->lm_src, "%s", name);
    /* Gemma2's logits are soft-capped: the vocabulary head's output, so here
     * it applies (a score head never sees it) */
    const qj_value *cap = qj_get(src->cfg, "final_logit_softcapping");
    if (cap && cap->type != QJ_NULL) {
        if (cap->type != QJ_NUMBER || !(cap->u.num >= 0) || !((float)cap->u.num < 1e30f))
            FAIL("config.json: 'final_logit_softcapping' must be a non-negative number");
        h->logit_softcap = (float)cap->u.num;
    }
    return 0;
}

/* The head's logits as HF computes them: soft-capped where the model caps. */
static void softcap(const qrm_head *h, float *z, int n) {
    float cap = h->logit_softcap;
    if (cap > 0)
        /* tanh in double: libm's float tanhf is not the same function on
         * every architecture; the double one rounds to the same float */
        for (int i = 0; i < n; i++) z[i] = cap * (float)tanh((double)(z[i] / cap));
}

static void put_softcap(const qrm_head *h, qj_buf *b) {
    if (h->logit_softcap > 0) qj_buf_printf(b, ",\"logit_softcap\":%.9g", (double)h->logit_softcap);
}

static int read_softcap(qrm_head *h, const qj_value *o, char *err, size_t errlen) {
    double cap = 0;
    if (qj_get(o, "logit_softcap") && (!qj_get_num(o, "logit_softcap", &cap) || !(cap >= 0) || !((float)cap < 1e30f)))
        FAIL("metadata: head 'logit_softcap' must be a non-negative number");
    h->logit_softcap = (float)cap;
    return 0;
}

static int token(const qrm_head_source *src, const char *what, const char *text, int32_t *id,
                 char *err, size_t errlen) {
    if (!text || !*text) FAIL("the head specification has no %s", what);
    return qrm_head_single_token(src, what, text, id, err, errlen);
}

/* ---- judge ---- */

static int judge_from_hf(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen) {
    const qrm_head_spec *sp = src->spec;
    if (!sp->judge_yes || !sp->judge_no) FAIL("a judge needs --judge-tokens YES,NO");
    if (token(src, "yes token", sp->judge_yes, &h->tok[0], err, errlen) ||
        token(src, "no token", sp->judge_no, &h->tok[1], err, errlen))
        return -1;
    if (h->tok[0] == h->tok[1]) FAIL("the yes and no tokens are the same token (%d)", (int)h->tok[0]);
    h->full_norm = sp->judge_full;
    h->n_outputs = 1;
    static const char *const dflt[] = {"score"};
    if (find_lm(h, src, err, errlen)) return -1;
    return qrm_head_set_labels(h, src->labels, dflt, err, errlen);
}

static void judge_to_json(const qrm_head *h, qj_buf *b) {
    qj_buf_printf(b, ",\"yes_id\":%d,\"no_id\":%d,\"norm\":\"%s\",\"position\":\"last\"",
                  (int)h->tok[0], (int)h->tok[1], h->full_norm ? "full" : "pair");
    put_softcap(h, b);
}

static int read_ids(qrm_head *h, const qj_value *o, const qrm_hparams *hp, const char *const *keys,
                    int n, char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        int64_t v;
        if (!qj_get_int(o, keys[i], &v) || v < 0 || v >= hp->vocab_size)
            FAIL("metadata: head '%s' missing or not a token id", keys[i]);
        h->tok[i] = (int32_t)v;
    }
    return 0;
}

static int judge_from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err,
                           size_t errlen) {
    static const char *const keys[] = {"yes_id", "no_id"};
    if (read_ids(h, o, hp, keys, 2, err, errlen)) return -1;
    const char *norm = qj_get_str(o, "norm");
    if (!norm || (strcmp(norm, "pair") && strcmp(norm, "full")))
        FAIL("metadata: head 'norm' must be \"pair\" or \"full\"");
    h->full_norm = !strcmp(norm, "full");
    h->n_outputs = 1;
    return read_softcap(h, o, err, errlen);
}

/* The two rows a pair head reads, or the whole matrix. */
static int vocab_tensors(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *t, int whole,
                         const char *rows_name) {
    if (whole) {
        t[0] = QRM_HEAD_F32("lm_head", "", hp->vocab_size, hp->hidden, 2, LM);
        t[0].kind = QRM_ROLE_MATRIX;
    } else {
        t[0] = QRM_HEAD_F32("", "", 2, hp->hidden, 2, ROWS);
        snprintf(t[0].name, sizeof t[0].name, "%s", rows_name);
        t[0].n_rows = 2, t[0].rows[0] = h->tok[0], t[0].rows[1] = h->tok[1];
        t[0].src_ne0 = hp->vocab_size;
    }
    snprintf(t[0].hf_name, sizeof t[0].hf_name, "%s", h->lm_src);
    return 1;
}

static int judge_tensors(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *t) {
    return vocab_tensors(h, hp, t, h->full_norm, "judge.rows");
}

static int last_position(const qrm_head *h, const int32_t *ids, size_t n, int32_t *pos,
                         size_t *npos, char *err, size_t errlen) {
    (void)h, (void)ids, (void)err, (void)errlen;
    pos[0] = (int32_t)(n - 1);
    *npos = 1;
    return 0;
}

/* log(sum(exp(z))) of one logits row, max-shifted: the exps by the kernel
 * family's e^x (the canonical one, so every family agrees bit for bit, and
 * vectorized: a double exp per entry cost 0.3 s per 128 rows of a 152k
 * vocabulary), blocks of 256 summed in float in order, the blocks in double;
 * the error is ~1e-7 relative, far under the 1e-4 a log-probability needs. */
static double logsumexp(const qrm_kernels *k, const float *z, int n) {
    float mx = z[0];
    for (int i = 1; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    double s = 0;
    float e[256];
    for (int i0 = 0; i0 < n; i0 += 256) {
        int len = n - i0 < 256 ? n - i0 : 256;
        for (int i = 0; i < len; i++) e[i] = z[i0 + i] - mx;
        k->exp_f32(e, e, len);
        float b = 0;
        for (int i = 0; i < len; i++) b += e[i];
        s += b;
    }
    return mx + log(s);
}

/* Logits of rows x the whole head, in blocks of rows (the logits of 64
 * rows of a 152k vocabulary are 39 MB): fn gets each row's logits, rows
 * spread over the context's threads. */
#define LM_BLOCK 64
typedef struct {
    void (*fn)(void *arg, int row, const float *z, int V);
    void *arg;
    const float *z;
    int r0, V;
} rows_job;

static void row_task(void *p, int r, int thread) {
    rows_job *j = p;
    (void)thread;
    j->fn(j->arg, j->r0 + r, j->z + (size_t)r * j->V, j->V);
}

static int lm_rows(const qrm_head *h, const qrm_head_run *run, const float *hid, int rows, int D,
                   void (*fn)(void *arg, int row, const float *z, int V), void *arg) {
    int V = (int)h->t[LM].ne0, block = rows < LM_BLOCK ? rows : LM_BLOCK;
    float *z = run->scratch(run->ctx, (size_t)block * V * sizeof *z);
    if (!z) return -1;
    for (int r0 = 0; r0 < rows; r0 += block) {
        int m = rows - r0 < block ? rows - r0 : block;
        run->matmul(run->ctx, &h->t[LM], hid + (size_t)r0 * D, m, z);
        rows_job j = {fn, arg, z, r0, V};
        run->parallel(run->ctx, m, row_task, &j);
    }
    return 0;
}

typedef struct {
    const qrm_head *h;
    const int32_t *ids, *pos;
    float *out;
    const qrm_kernels *k;
} lm_arg;

static void judge_full_row(void *p, int row, const float *zc, int V) {
    lm_arg *a = p;
    float *z = (float *)zc; /* the row is the head's own scratch */
    softcap(a->h, z, V);
    double lse = logsumexp(a->k, z, V);
    a->out[row] = (float)exp((double)z[a->h->tok[0]] - lse);
}

/* Two logits from the two kept rows, or from the whole matrix. */
static void two_logits(const qrm_head *h, const qrm_head_run *run, const float *x, int D,
                       float *z) {
    const float *w = h->t[ROWS].data;
    z[0] = run->k->dot_f32(x, w, D);
    z[1] = run->k->dot_f32(x, w + D, D);
    softcap(h, z, 2);
}

/* softmax of the two kept rows' logits, the first: P(yes) against no,
 * P(good) against bad. */
static int pair_apply(const qrm_head *h, const qrm_head_run *run, const int32_t *ids,
                      const int32_t *pos, const float *hid, int rows, int D, float *out) {
    (void)ids, (void)pos;
    for (int r = 0; r < rows; r++) {
        float z[2];
        two_logits(h, run, hid + (size_t)r * D, D, z);
        out[r] = (float)(1.0 / (1.0 + exp((double)z[1] - (double)z[0])));
    }
    return 0;
}

static int judge_apply(const qrm_head *h, const qrm_head_run *run, const int32_t *ids,
                       const int32_t *pos, const float *hid, int rows, int D, float *out) {
    if (h->full_norm) {
        lm_arg a = {h, ids, pos, out, run->k};
        return lm_rows(h, run, hid, rows, D, judge_full_row, &a);
    }
    return pair_apply(h, run, ids, pos, hid, rows, D, out);
}

const qrm_head_ops qrm_head_judge = {
    .kind = "judge",
    .per_row = 1,
    .from_hf = judge_from_hf,
    .to_json = judge_to_json,
    .from_json = judge_from_json,
    .tensors = judge_tensors,
    .positions = last_position,
    .apply = judge_apply,
};

/* ---- step_tag (Math-Shepherd) ---- */

static int tag_from_hf(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen) {
    const qrm_head_spec *sp = src->spec;
    if (!sp->step_tag || !sp->good || !sp->bad) FAIL("a step-tag PRM needs --step-tag TAG --good GOOD --bad BAD");
    if (token(src, "good token", sp->good, &h->tok[0], err, errlen) ||
        token(src, "bad token", sp->bad, &h->tok[1], err, errlen) ||
        token(src, "step tag", sp->step_tag, &h->sep_id, err, errlen))
        return -1;
    if (h->tok[0] == h->tok[1]) FAIL("the good and bad tokens are the same token (%d)", (int)h->tok[0]);
    /* the tag as written: a SentencePiece decoder would drop its leading space */
    if (strlen(sp->step_tag) >= sizeof h->tag_text) FAIL("the step tag is longer than %zu bytes", sizeof h->tag_text - 1);
    snprintf(h->tag_text, sizeof h->tag_text, "%s", sp->step_tag);
    h->n_outputs = 1;
    static const char *const dflt[] = {"step"};
    if (find_lm(h, src, err, errlen)) return -1;
    return qrm_head_set_labels(h, src->labels, dflt, err, errlen);
}

static void tag_to_json(const qrm_head *h, qj_buf *b) {
    qj_buf_printf(b, ",\"step_tag_id\":%d,\"good_id\":%d,\"bad_id\":%d,\"step_tag\":", (int)h->sep_id,
                  (int)h->tok[0], (int)h->tok[1]);
    qj_buf_put_string(b, h->tag_text, strlen(h->tag_text));
    put_softcap(h, b);
}

static int tag_from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err,
                         size_t errlen) {
    static const char *const keys[] = {"good_id", "bad_id"};
    int64_t tag;
    if (read_ids(h, o, hp, keys, 2, err, errlen)) return -1;
    if (!qj_get_int(o, "step_tag_id", &tag) || tag < 0 || tag >= hp->vocab_size)
        FAIL("metadata: head 'step_tag_id' missing or not a token id");
    h->sep_id = (int32_t)tag;
    h->n_outputs = 1;
    const qj_value *t = qj_get(o, "step_tag");
    if (!t || t->type != QJ_STRING || t->len == 0 || t->len >= sizeof h->tag_text || memchr(t->u.str, 0, t->len))
        FAIL("metadata: head 'step_tag' must be the tag's text (1 to %zu bytes)", sizeof h->tag_text - 1);
    memcpy(h->tag_text, t->u.str, t->len + 1);
    return read_softcap(h, o, err, errlen);
}

static int tag_tensors(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *t) {
    return vocab_tensors(h, hp, t, 0, "step_tag.rows");
}

const qrm_head_ops qrm_head_step_tag = {
    .kind = "step_tag",
    .point_per_row = 1,
    .steps = QRM_STEPS_TAGGED_TEXT,
    .per_row = 1,
    .from_hf = tag_from_hf,
    .to_json = tag_to_json,
    .from_json = tag_from_json,
    .tensors = tag_tensors,
    .positions = qrm_head_separator_positions,
    .apply = pair_apply,
};

/* ---- lm: log-probabilities of the next tokens ---- */

static int lm_from_hf(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen) {
    h->n_outputs = 1;
    static const char *const dflt[] = {"logprob"};
    if (find_lm(h, src, err, errlen)) return -1;
    return qrm_head_set_labels(h, src->labels, dflt, err, errlen);
}

static void lm_to_json(const qrm_head *h, qj_buf *b) {
    qj_buf_puts(b, ",\"value\":\"log_softmax(logits[t - 1])[ids[t]]\"");
    put_softcap(h, b);
}

static int lm_from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err,
                        size_t errlen) {
    (void)hp;
    h->n_outputs = 1;
    return read_softcap(h, o, err, errlen);
}

static int lm_tensors(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *t) {
    return vocab_tensors(h, hp, t, 1, NULL);
}

/* Every position but the last predicts the token after it. */
static int lm_positions(const qrm_head *h, const int32_t *ids, size_t n, int32_t *pos,
                        size_t *npos, char *err, size_t errlen) {
    (void)h, (void)ids, (void)err, (void)errlen;
    for (size_t i = 0; i + 1 < n; i++) pos[i] = (int32_t)i;
    *npos = n - 1;
    return 0;
}

static void lm_row(void *p, int row, const float *zc, int V) {
    lm_arg *a = p;
    float *z = (float *)zc;
    softcap(a->h, z, V);
    int32_t next = a->ids[a->pos[row] + 1];
    double lse = logsumexp(a->k, z, V);
    a->out[row] = (float)((double)z[next] - lse);
}

static int lm_apply(const qrm_head *h, const qrm_head_run *run, const int32_t *ids,
                    const int32_t *pos, const float *hid, int rows, int D, float *out) {
    lm_arg a = {h, ids, pos, out, run->k};
    return lm_rows(h, run, hid, rows, D, lm_row, &a);
}

const qrm_head_ops qrm_head_lm = {
    .kind = "lm",
    .point_per_row = 1,
    .from_hf = lm_from_hf,
    .to_json = lm_to_json,
    .from_json = lm_from_json,
    .tensors = lm_tensors,
    .positions = lm_positions,
    .apply = lm_apply,
};
