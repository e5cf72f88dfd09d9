/* linear: HF *ForSequenceClassification. scores = W h (+ b) at the score
 * position: the rightmost token that is not the pad token (the last token
 * when every token is pad), as transformers pools. One output per label
 * (num_labels / id2label, in index order), no sigmoid or softmax: a
 * regression head (HelpSteer2-style attributes) reports raw values. */
#include <stdio.h>
#include <string.h>

#include "head.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

enum { W, B };

static int from_hf(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen) {
    const qj_value *cfg = src->cfg;
    /* num_labels, or the size of id2label (HF's default is 2) */
    const qj_value *id2label = qj_get_type(cfg, "id2label", QJ_OBJECT);
    int n = id2label ? (int)id2label->len : 2;
    const qj_value *nl = qj_get(cfg, "num_labels");
    if (nl && nl->type != QJ_NULL) {
        int64_t v;
        if (!qj_number_to_int(nl, &v)) FAIL("config.json: 'num_labels' is not an integer");
        if (v < 1 || v > QRM_MAX_OUTPUTS)
            FAIL("config.json: 'num_labels' = %lld is out of range [1, %d]", (long long)v, QRM_MAX_OUTPUTS);
        if (id2label && v != n) FAIL("config.json: num_labels is %lld but id2label has %d entries", (long long)v, n);
        n = (int)v;
    }
    if (n < 1 || n > QRM_MAX_OUTPUTS)
        FAIL("config.json: %d labels is out of range [1, %d]", n, QRM_MAX_OUTPUTS);
    h->n_outputs = n;
    char names[QRM_MAX_OUTPUTS][QRM_LABEL_MAX];
    const char *dflt[QRM_MAX_OUTPUTS];
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], n == 1 ? "score" : "LABEL_%d", i);
        if (id2label && n > 1) {
            char key[16];
            snprintf(key, sizeof key, "%d", i);
            const char *name = qj_get_str(id2label, key);
            if (!name) FAIL("config.json: id2label has no string entry \"%d\"", i);
            if (strlen(name) >= QRM_LABEL_MAX) {
                char shown[QRM_LABEL_MAX * 4];
                qrm_printable(name, shown, sizeof shown);
                FAIL("config.json: id2label name '%s' is too long", shown);
            }
            snprintf(names[i], sizeof names[i], "%s", name);
        }
        dflt[i] = names[i];
    }
    int ndim;
    int64_t shape[2];
    h->has_bias = src->shape(src->ctx, "score.bias", &ndim, shape);
    return qrm_head_set_labels(h, src->labels, dflt, err, errlen);
}

static void to_json(const qrm_head *h, qj_buf *b) {
    qj_buf_printf(b, ",\"bias\":%s,\"position\":\"last_non_pad\"", h->has_bias ? "true" : "false");
}

static int from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err, size_t errlen) {
    int64_t n;
    (void)hp;
    if (!qj_get_int(o, "n_outputs", &n)) FAIL("metadata: head 'n_outputs' missing or not an integer");
    if (n < 1 || n > QRM_MAX_OUTPUTS)
        FAIL("metadata: head 'n_outputs' = %lld out of range [1, %d]", (long long)n, QRM_MAX_OUTPUTS);
    h->n_outputs = (int)n;
    h->has_bias = qj_get_bool(o, "bias", 0);
    return 0;
}

static int tensors(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *t) {
    t[0] = QRM_HEAD_F32("score", "score.weight", h->n_outputs, hp->hidden, 2, W);
    if (!h->has_bias) return 1;
    t[1] = QRM_HEAD_F32("score_bias", "score.bias", h->n_outputs, 1, 1, B);
    return 2;
}

static int positions(const qrm_head *h, const int32_t *ids, size_t n, int32_t *pos, size_t *npos,
                     char *err, size_t errlen) {
    (void)err, (void)errlen;
    size_t at = n - 1;
    for (size_t i = n; i-- > 0;)
        if (ids[i] != h->pad_id) {
            at = i;
            break;
        }
    pos[0] = (int32_t)at;
    *npos = 1;
    return 0;
}

static int apply(const qrm_head *h, const qrm_head_run *run, const int32_t *ids,
                 const int32_t *pos, const float *hid, int rows, int D, float *out) {
    const qrm_kernels *k = run->k;
    (void)ids, (void)pos;
    const float *w = h->t[W].data, *b = h->has_bias ? h->t[B].data : NULL;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < h->n_outputs; o++)
            out[(size_t)r * h->n_outputs + o] =
                k->dot_f32(hid + (size_t)r * D, w + (size_t)o * D, D) + (b ? b[o] : 0.0f);
    return 0;
}

const qrm_head_ops qrm_head_linear = {
    .kind = "linear",
    .hf_suffix = "ForSequenceClassification",
    .per_row = 1,
    .from_hf = from_hf,
    .to_json = to_json,
    .from_json = from_json,
    .tensors = tensors,
    .positions = positions,
    .apply = apply,
};
