/* prm: a process reward model, Qwen2.5-Math-PRM (Qwen2ForProcessRewardModel,
 * remote code modeling_qwen2_rm.py). At every step separator token
 * (<extra_0>): logits = W2 relu(W1 h + b1) + b2, two classes, and the
 * step's score is softmax(logits)[1], the positive class. Every occurrence
 * of the separator counts, in order; a sequence without one has no steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "head.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

enum { W1, B1, W2, B2 };

static int from_hf(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen) {
    int H = src->hp->hidden, nd;
    int64_t s[2];
    if (!src->shape(src->ctx, "score.0.weight", &nd, s))
        FAIL("missing tensor 'score.0.weight' (the PRM head's first layer)");
    if (nd != 2 || s[1] != H || s[0] < 1 || s[0] > (1 << 16))
        FAIL("tensor 'score.0.weight' has shape [%lld%s], expected [N, %d] (hidden_size inputs)",
             (long long)s[0], nd == 2 ? (s[1] == H ? ", hidden_size" : ", not hidden_size") : "", H);
    h->fc_dim = (int)s[0];
    if (!src->shape(src->ctx, "score.2.weight", &nd, s))
        FAIL("missing tensor 'score.2.weight' (the PRM head's second layer)");
    if (nd != 2 || s[0] != 2 || s[1] != h->fc_dim)
        FAIL("tensor 'score.2.weight' has shape [%lld%s], expected [2, %d] (two classes over score.0's %d outputs)",
             (long long)s[0], nd == 2 ? ", ..." : "", h->fc_dim, h->fc_dim);
    const char *sep = src->step_separator ? src->step_separator : "<extra_0>";
    if (qrm_head_single_token(src, "step separator", sep, &h->sep_id, err, errlen)) return -1;
    h->n_outputs = 1;
    static const char *const dflt[] = {"step"};
    return qrm_head_set_labels(h, src->labels, dflt, err, errlen);
}

static void to_json(const qrm_head *h, qj_buf *b) {
    qj_buf_printf(b, ",\"separator_id\":%d,\"hidden\":%d,\"classes\":2,\"positive_class\":1",
                  (int)h->sep_id, h->fc_dim);
}

static int from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err, size_t errlen) {
    int64_t sep, dim, classes, pos;
    if (!qj_get_int(o, "separator_id", &sep) || sep < 0 || sep >= hp->vocab_size)
        FAIL("metadata: head 'separator_id' missing or not a token id");
    if (!qj_get_int(o, "hidden", &dim) || dim < 1 || dim > (1 << 16))
        FAIL("metadata: head 'hidden' missing or out of range");
    if (!qj_get_int(o, "classes", &classes) || classes != 2 ||
        !qj_get_int(o, "positive_class", &pos) || pos != 1)
        FAIL("metadata: a prm head has 2 classes and reads class 1");
    h->sep_id = (int32_t)sep, h->fc_dim = (int)dim, h->n_outputs = 1;
    return 0;
}

static int tensors(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *t) {
    t[0] = QRM_HEAD_F32("prm.fc1", "score.0.weight", h->fc_dim, hp->hidden, 2, W1);
    t[1] = QRM_HEAD_F32("prm.fc1_bias", "score.0.bias", h->fc_dim, 1, 1, B1);
    t[2] = QRM_HEAD_F32("prm.fc2", "score.2.weight", 2, h->fc_dim, 2, W2);
    t[3] = QRM_HEAD_F32("prm.fc2_bias", "score.2.bias", 2, 1, 1, B2);
    return 4;
}


static int apply(const qrm_head *h, const qrm_head_run *run, const int32_t *ids,
                 const int32_t *pos, const float *hid, int rows, int D, float *out) {
    const qrm_kernels *k = run->k;
    (void)ids, (void)pos;
    if (rows == 0) return 0;
    /* in blocks of up to 64 rows: the hidden layer's scratch stays small */
    float *a = malloc((size_t)(rows < 64 ? rows : 64) * h->fc_dim * sizeof *a), l[2 * 64];
    if (!a) return -1;
    for (int r0 = 0; r0 < rows; r0 += 64) {
        int m = rows - r0 < 64 ? rows - r0 : 64;
        qrm_head_dense(k, &h->t[W1], &h->t[B1], hid + (size_t)r0 * D, m, a);
        for (size_t i = 0; i < (size_t)m * h->fc_dim; i++) a[i] = a[i] > 0 ? a[i] : 0;
        qrm_head_dense(k, &h->t[W2], &h->t[B2], a, m, l);
        /* softmax over the two classes, class 1: 1 / (1 + e^(l0 - l1)) */
        for (int r = 0; r < m; r++)
            out[r0 + r] = (float)(1.0 / (1.0 + exp((double)l[2 * r] - (double)l[2 * r + 1])));
    }
    free(a);
    return 0;
}

const qrm_head_ops qrm_head_prm = {
    .kind = "prm",
    .hf_suffix = "ForProcessRewardModel",
    .point_per_row = 1,
    .steps = QRM_STEPS_CHAT,
    .per_row = 1,
    .from_hf = from_hf,
    .to_json = to_json,
    .from_json = from_json,
    .tensors = tensors,
    .positions = qrm_head_separator_positions,
    .apply = apply,
};
