/* gated: ArmoRM (LlamaForRewardModelWithGating, RLHFlow's modeling_custom.py).
 *
 *   r       = the token before the first pad (the last token without pad):
 *             argmax(ids == pad) - 1, modulo the length, as the remote code
 *   g       = the start of the last occurrence of the gating pattern
 *             ("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
 *             encoded by the model's tokenizer): the end of the last user turn
 *   rewards = R h[r]                                       (K objectives)
 *   x       = h[g]; x = relu(W_i x + b_i) for each hidden layer; x = W_n x + b_n
 *   gate    = softmax(x / temperature) * logit_scale       (sums to logit_scale)
 *   score   = sum_j gate_j (rewards M)_j                   (M: reward_transform_matrix)
 *
 * Outputs: score, the K rewards (named), the K gate weights ("gate:" + name).
 * A sequence without the pattern cannot be scored (the remote code raises). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "head.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

enum { REG, SCALE, TRANSFORM, GATE0 };
#define GATE_W(i) (GATE0 + 2 * (i))
#define GATE_B(i) (GATE0 + 2 * (i) + 1)
#define MAX_GATE_LAYERS ((QRM_HEAD_MAX_TENSORS - GATE0) / 2)
#define MAX_OBJ ((QRM_MAX_OUTPUTS - 1) / 2)

/* The model card's objective order for the 19 objectives of ArmoRM-Llama3-8B. */
static const char *const armorm_names[19] = {
    "helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence",
    "helpsteer-complexity", "helpsteer-verbosity", "ultrafeedback-overall_score",
    "ultrafeedback-instruction_following", "ultrafeedback-truthfulness",
    "ultrafeedback-honesty", "ultrafeedback-helpfulness", "beavertails-is_safe",
    "prometheus-score", "argilla-overall_quality", "argilla-judge_lm", "code-complexity",
    "code-style", "code-explanation", "code-instruction-following", "code-readability",
};

static int cfg_int(const qj_value *cfg, const char *key, int dflt, int lo, int hi, int *out,
                   char *err, size_t errlen) {
    const qj_value *v = qj_get(cfg, key);
    int64_t x = dflt;
    if (v && v->type != QJ_NULL && !qj_number_to_int(v, &x)) FAIL("config.json: '%s' is not an integer", key);
    if (x < lo || x > hi) FAIL("config.json: '%s' = %lld is out of range [%d, %d]", key, (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int expect(const qrm_head_source *src, const char *name, int nd_want, int64_t ne0,
                  int64_t ne1, const char *why, char *err, size_t errlen) {
    int nd;
    int64_t s[2];
    if (!src->shape(src->ctx, name, &nd, s)) FAIL("missing tensor '%s' (%s)", name, why);
    if (nd != nd_want || s[0] != ne0 || (nd == 2 && s[1] != ne1)) {
        char got[48];
        if (nd == 1) snprintf(got, sizeof got, "[%lld]", (long long)s[0]);
        else snprintf(got, sizeof got, "[%lld, %lld]%s", (long long)s[0], (long long)s[1], nd > 2 ? "..." : "");
        if (nd_want == 1)
            FAIL("tensor '%s' has shape %s, expected [%lld] (%s)", name, got, (long long)ne0, why);
        FAIL("tensor '%s' has shape %s, expected [%lld, %lld] (%s)", name, got, (long long)ne0,
             (long long)ne1, why);
    }
    return 0;
}

/* Labels: score, the objectives, their gate weights. */
static int set_labels(qrm_head *h, const char *csv, char *err, size_t errlen) {
    qrm_head obj = {.n_outputs = h->n_obj};
    char names[MAX_OBJ][QRM_LABEL_MAX];
    const char *dflt[MAX_OBJ];
    for (int i = 0; i < h->n_obj; i++) {
        snprintf(names[i], sizeof names[i], "objective_%d", i);
        dflt[i] = h->n_obj == 19 ? armorm_names[i] : names[i];
    }
    if (qrm_head_set_labels(&obj, csv, dflt, err, errlen)) return -1;
    snprintf(h->label[0], QRM_LABEL_MAX, "score");
    for (int i = 0; i < h->n_obj; i++) {
        if (strlen(obj.label[i]) + 5 >= QRM_LABEL_MAX) FAIL("objective name '%s' is too long", obj.label[i]);
        snprintf(h->label[1 + i], QRM_LABEL_MAX, "%s", obj.label[i]);
        snprintf(h->label[1 + h->n_obj + i], QRM_LABEL_MAX, "gate:%s", obj.label[i]);
    }
    /* an objective called "score" or "gate:x" would clash with the others */
    return qrm_head_check_labels(h, err, errlen);
}

static int from_hf(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen) {
    const qj_value *cfg = src->cfg;
    int H = src->hp->hidden, n_hidden, dim;
    const qj_value *no = qj_get(cfg, "num_objectives");
    if (!no || no->type == QJ_NULL)
        FAIL("config.json: missing 'num_objectives' (the gating network is built from it)");
    if (cfg_int(cfg, "num_objectives", 0, 1, MAX_OBJ, &h->n_obj, err, errlen) ||
        cfg_int(cfg, "gating_n_hidden", 3, 0, MAX_GATE_LAYERS - 1, &n_hidden, err, errlen) ||
        cfg_int(cfg, "gating_hidden_dim", 1024, 1, 1 << 16, &dim, err, errlen))
        return -1;
    double temp = 10;
    const qj_value *tv = qj_get(cfg, "gating_temperature");
    if (tv && tv->type != QJ_NULL) {
        temp = tv->type == QJ_NUMBER ? tv->u.num : -1;
    }
    /* checked as the float it is stored and used as */
    h->temperature = (float)temp;
    if (!(h->temperature > 0) || !isfinite(h->temperature))
        FAIL("config.json: 'gating_temperature' must be a positive number a float can hold");
    h->gate_layers = n_hidden + 1;
    h->gate_dim = n_hidden ? dim : h->n_obj;
    int K = h->n_obj, nd;
    int64_t s[2];
    if (src->shape(src->ctx, "regression_layer.weight", &nd, s) && nd == 2 && s[1] == H && s[0] != K)
        FAIL("config.json: num_objectives is %d but 'regression_layer.weight' has %lld rows", K,
             (long long)s[0]);
    if (expect(src, "regression_layer.weight", 2, K, H, "the objectives", err, errlen) ||
        expect(src, "reward_transform_matrix", 2, K, K, "the objectives' transform", err, errlen) ||
        expect(src, "gating.logit_scale", 1, 1, 1, "the gate's scale", err, errlen))
        return -1;
    for (int i = 0; i < h->gate_layers; i++) {
        char w[64], b[64];
        snprintf(w, sizeof w, "gating.layers.%d.weight", i);
        snprintf(b, sizeof b, "gating.layers.%d.bias", i);
        int64_t out = i == n_hidden ? K : dim, in = i == 0 ? H : dim;
        if (expect(src, w, 2, out, in, "gating_n_hidden and gating_hidden_dim in config.json", err, errlen) ||
            expect(src, b, 1, out, 1, "the gating layer's bias", err, errlen))
            return -1;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "gating.layers.%d.weight", h->gate_layers);
    if (src->shape(src->ctx, extra, &nd, s))
        FAIL("the checkpoint has '%s': more gating layers than gating_n_hidden = %d says", extra, n_hidden);
    const char *pattern = src->gating_pattern ? src->gating_pattern
                          : "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    int32_t *ids = NULL;
    size_t n = 0;
    if (src->encode(src->ctx, pattern, &ids, &n, err, errlen)) return -1;
    if (n == 0 || n > QRM_PATTERN_MAX) {
        free(ids);
        FAIL("the gating pattern encodes to %zu tokens (1 to %d allowed)", n, QRM_PATTERN_MAX);
    }
    memcpy(h->pattern, ids, n * sizeof *ids);
    h->n_pattern = (int)n;
    free(ids);
    h->n_outputs = 1 + 2 * K;
    return set_labels(h, src->labels, err, errlen);
}

static void to_json(const qrm_head *h, qj_buf *b) {
    qj_buf_printf(b, ",\"n_objectives\":%d,\"gate_layers\":%d,\"gate_dim\":%d,\"temperature\":%.9g,"
                     "\"reward_position\":\"before_first_pad\",\"gating_pattern\":[",
                  h->n_obj, h->gate_layers, h->gate_dim, (double)h->temperature);
    for (int i = 0; i < h->n_pattern; i++) qj_buf_printf(b, "%s%d", i ? "," : "", (int)h->pattern[i]);
    qj_buf_puts(b, "]");
}

static int from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err, size_t errlen) {
    int64_t k, layers, dim;
    double t;
    if (!qj_get_int(o, "n_objectives", &k) || k < 1 || k > MAX_OBJ)
        FAIL("metadata: head 'n_objectives' missing or out of range [1, %d]", MAX_OBJ);
    if (!qj_get_int(o, "gate_layers", &layers) || layers < 1 || layers > MAX_GATE_LAYERS)
        FAIL("metadata: head 'gate_layers' missing or out of range [1, %d]", MAX_GATE_LAYERS);
    if (!qj_get_int(o, "gate_dim", &dim) || dim < 1 || dim > (1 << 16))
        FAIL("metadata: head 'gate_dim' missing or out of range");
    if (!qj_get_num(o, "temperature", &t) || !((float)t > 0) || !isfinite((float)t))
        FAIL("metadata: head 'temperature' missing or not a positive float");
    const qj_value *p = qj_get_type(o, "gating_pattern", QJ_ARRAY);
    if (!p || p->len < 1 || p->len > QRM_PATTERN_MAX)
        FAIL("metadata: head 'gating_pattern' must list 1 to %d token ids", QRM_PATTERN_MAX);
    for (uint32_t i = 0; i < p->len; i++) {
        int64_t id;
        if (!qj_number_to_int(&p->u.items[i], &id) || id < 0 || id >= hp->vocab_size)
            FAIL("metadata: head 'gating_pattern' entry %u is not a token id", i);
        h->pattern[i] = (int32_t)id;
    }
    h->n_pattern = (int)p->len;
    h->n_obj = (int)k, h->gate_layers = (int)layers, h->gate_dim = (int)dim;
    h->temperature = (float)t;
    h->n_outputs = 1 + 2 * h->n_obj;
    return 0;
}

static int tensors(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *t) {
    int K = h->n_obj, n = 0;
    t[n++] = QRM_HEAD_F32("armo.regression", "regression_layer.weight", K, hp->hidden, 2, REG);
    t[n++] = QRM_HEAD_F32("armo.logit_scale", "gating.logit_scale", 1, 1, 1, SCALE);
    t[n++] = QRM_HEAD_F32("armo.transform", "reward_transform_matrix", K, K, 2, TRANSFORM);
    for (int i = 0; i < h->gate_layers; i++) {
        int64_t out = i == h->gate_layers - 1 ? K : h->gate_dim, in = i == 0 ? hp->hidden : h->gate_dim;
        qrm_head_tensor *w = &t[n++], *b = &t[n++];
        *w = QRM_HEAD_F32("", "", out, in, 2, GATE_W(i));
        *b = QRM_HEAD_F32("", "", out, 1, 1, GATE_B(i));
        snprintf(w->name, sizeof w->name, "armo.gate.%d", i);
        snprintf(w->hf_name, sizeof w->hf_name, "gating.layers.%d.weight", i);
        snprintf(b->name, sizeof b->name, "armo.gate.%d_bias", i);
        snprintf(b->hf_name, sizeof b->hf_name, "gating.layers.%d.bias", i);
    }
    return n;
}

static int positions(const qrm_head *h, const int32_t *ids, size_t n, int32_t *pos, size_t *npos,
                     char *err, size_t errlen) {
    size_t P = (size_t)h->n_pattern, first_pad = 0;
    while (first_pad < n && ids[first_pad] != h->pad_id) first_pad++;
    /* argmax(ids == pad) - 1 modulo n: no pad, or a pad first, gives n - 1 */
    pos[0] = (int32_t)(first_pad == n || first_pad == 0 ? n - 1 : first_pad - 1);
    for (size_t j = n >= P ? n - P + 1 : 0; j-- > 0;)
        if (!memcmp(ids + j, h->pattern, P * sizeof *ids)) {
            pos[1] = (int32_t)j;
            *npos = 2;
            return 0;
        }
    FAIL("the gating pattern (the end of the last user turn, %d tokens) does not occur in the sequence",
         h->n_pattern);
}

static int apply(const qrm_head *h, const qrm_head_run *run, const int32_t *ids,
                 const int32_t *pos, const float *hid, int rows, int D, float *out) {
    const qrm_kernels *k = run->k;
    (void)ids, (void)pos;
    int K = h->n_obj, dim = h->gate_dim > K ? h->gate_dim : K;
    if (rows != 2) return -1;
    float *x = malloc((size_t)dim * 2 * sizeof *x);
    if (!x) return -1;
    float *y = x + dim, *rewards = out + 1, *gate = out + 1 + K;
    qrm_head_dense(k, &h->t[REG], NULL, hid, 1, rewards);
    const float *in = hid + D;
    for (int i = 0; i < h->gate_layers; i++) {
        qrm_head_dense(k, &h->t[GATE_W(i)], &h->t[GATE_B(i)], in, 1, y);
        int N = (int)h->t[GATE_W(i)].ne0;
        if (i + 1 < h->gate_layers)
            for (int j = 0; j < N; j++) y[j] = y[j] > 0 ? y[j] : 0;
        memcpy(x, y, (size_t)N * sizeof *x);
        in = x;
    }
    /* softmax(x / T) * logit_scale, in double: K is small */
    double mx = -INFINITY, sum = 0, scale = ((const float *)h->t[SCALE].data)[0];
    for (int j = 0; j < K; j++) mx = fmax(mx, (double)x[j] / h->temperature);
    for (int j = 0; j < K; j++) sum += exp((double)x[j] / h->temperature - mx);
    for (int j = 0; j < K; j++) gate[j] = (float)(exp((double)x[j] / h->temperature - mx) / sum * scale);
    /* score = sum_j gate_j sum_i rewards_i M[i][j] */
    const float *M = h->t[TRANSFORM].data;
    double score = 0;
    for (int j = 0; j < K; j++) {
        double adj = 0;
        for (int i = 0; i < K; i++) adj += (double)rewards[i] * M[(size_t)i * K + j];
        score += (double)gate[j] * adj;
    }
    out[0] = (float)score;
    free(x);
    return 0;
}

const qrm_head_ops qrm_head_gated = {
    .kind = "gated",
    .hf_suffix = "ForRewardModelWithGating",
    .from_hf = from_hf,
    .to_json = to_json,
    .from_json = from_json,
    .tensors = tensors,
    .positions = positions,
    .apply = apply,
};
