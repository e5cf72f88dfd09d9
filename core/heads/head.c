/* What every head shares: the common metadata members and the labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "head.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

/* text for a one-line message: control bytes as \n, \t or \xHH */
void qrm_printable(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') k += (size_t)snprintf(out + k, n - k, "\\n");
        else if (c == '\t') k += (size_t)snprintf(out + k, n - k, "\\t");
        else if (c < 0x20 || c == 0x7f) k += (size_t)snprintf(out + k, n - k, "\\x%02x", c);
        else out[k++] = (char)c;
    }
    out[k] = 0;
}

void qrm_head_to_json(const qrm_head *h, qj_buf *b) {
    qj_buf_printf(b, "{\"kind\":\"%s\"", h->ops->kind);
    h->ops->to_json(h, b);
    qj_buf_printf(b, ",\"n_outputs\":%d,\"labels\":[", h->n_outputs);
    for (int i = 0; i < h->n_outputs; i++) {
        if (i) qj_buf_puts(b, ",");
        qj_buf_put_string(b, h->label[i], strlen(h->label[i]));
    }
    qj_buf_puts(b, "]}");
}

int qrm_head_check_labels(const qrm_head *h, char *err, size_t errlen) {
    for (int i = 0; i < h->n_outputs; i++) {
        if (!h->label[i][0]) FAIL("output %d has an empty name", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(h->label[i], h->label[j])) {
                char shown[QRM_LABEL_MAX * 4];
                qrm_printable(h->label[i], shown, sizeof shown);
                FAIL("the output name '%s' is used twice", shown);
            }
    }
    return 0;
}

static int put_label(qrm_head *h, int i, const char *s, size_t len, char *err, size_t errlen) {
    if (len >= QRM_LABEL_MAX) {
        char shown[QRM_LABEL_MAX * 4];
        qrm_printable(s, shown, sizeof shown); /* the start of it */
        FAIL("output name '%s...' is longer than %d bytes", shown, QRM_LABEL_MAX - 1);
    }
    memcpy(h->label[i], s, len);
    h->label[i][len] = 0;
    return 0;
}

int qrm_head_set_labels(qrm_head *h, const char *csv, const char *const *dflt, char *err,
                        size_t errlen) {
    if (csv) {
        int i = 0;
        for (const char *s = csv;; i++) {
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            if (i >= h->n_outputs) FAIL("--labels names more than the head's %d outputs", h->n_outputs);
            if (put_label(h, i, s, len, err, errlen)) return -1;
            if (!e) break;
            s = e + 1;
        }
        if (i + 1 != h->n_outputs)
            FAIL("--labels names %d outputs, the head has %d", i + 1, h->n_outputs);
    } else {
        for (int i = 0; i < h->n_outputs; i++)
            if (put_label(h, i, dflt[i], strlen(dflt[i]), err, errlen)) return -1;
    }
    return qrm_head_check_labels(h, err, errlen);
}

int qrm_head_from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err,
                       size_t errlen) {
    memset(h, 0, sizeof *h);
    h->pad_id = hp->pad_token_id;
    if (!o || o->type != QJ_OBJECT) FAIL("metadata: 'head' is missing or not an object");
    const char *kind = qj_get_str(o, "kind");
    h->ops = qrm_head_by_kind(kind);
    if (!h->ops) {
        char kinds[128], shown[64];
        qrm_head_list(kinds, sizeof kinds, 0);
        qrm_printable(kind ? kind : "(missing)", shown, sizeof shown);
        FAIL("metadata: unknown head kind '%s' (this build reads %s)", shown, kinds);
    }
    for (int i = 0; i < QRM_HEAD_MAX_TENSORS; i++) h->t[i].type = QRM_T_COUNT;
    if (h->ops->from_json(h, o, hp, err, errlen)) return -1;
    if (h->n_outputs < 1 || h->n_outputs > QRM_MAX_OUTPUTS)
        FAIL("metadata: head has %d outputs, out of range [1, %d]", h->n_outputs, QRM_MAX_OUTPUTS);
    int64_t stated;
    if (qj_get(o, "n_outputs") && (!qj_get_int(o, "n_outputs", &stated) || stated != h->n_outputs))
        FAIL("metadata: head 'n_outputs' does not match the %s head's %d outputs", h->ops->kind,
             h->n_outputs);
    const qj_value *labels = qj_get(o, "labels");
    if (!labels) {
        /* older files carry no names */
        for (int i = 0; i < h->n_outputs; i++)
            snprintf(h->label[i], QRM_LABEL_MAX, h->n_outputs == 1 ? "score" : "output_%d", i);
        return 0;
    }
    if (labels->type != QJ_ARRAY || (int)labels->len != h->n_outputs)
        FAIL("metadata: head 'labels' must list one name per output (%d)", h->n_outputs);
    for (int i = 0; i < h->n_outputs; i++) {
        const qj_value *v = &labels->u.items[i];
        if (v->type != QJ_STRING) FAIL("metadata: head 'labels' entries must be strings");
        if (memchr(v->u.str, 0, v->len)) FAIL("metadata: a head label contains a NUL byte");
        if (put_label(h, i, v->u.str, v->len, err, errlen)) return -1;
    }
    if (qrm_head_check_labels(h, err, errlen)) {
        char msg[QRM_ERR_MAX];
        snprintf(msg, sizeof msg, "%s", err);
        FAIL("metadata: head labels: %s", msg);
    }
    return 0;
}

void qrm_head_dense(const qrm_kernels *k, const qrm_tensor *w, const qrm_tensor *b,
                     const float *x, int rows, float *y) {
    int N = (int)w->ne0, K = (int)w->ne1;
    k->gemm_f32(x, (size_t)K, rows, w->data, K, 0, N, y, (size_t)N);
    if (!b) return;
    const float *bias = b->data;
    for (int r = 0; r < rows; r++)
        for (int n = 0; n < N; n++) y[(size_t)r * N + n] += bias[n];
}

int qrm_head_separator_positions(const qrm_head *h, const int32_t *ids, size_t n, int32_t *pos,
                                 size_t *npos, char *err, size_t errlen) {
    (void)err, (void)errlen;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == h->sep_id) pos[k++] = (int32_t)i;
    *npos = k;
    return 0;
}

int qrm_head_single_token(const qrm_head_source *src, const char *what, const char *text,
                          int32_t *id, char *err, size_t errlen) {
    int32_t *ids = NULL;
    size_t n = 0;
    char shown[64];
    qrm_printable(text, shown, sizeof shown);
    if (src->encode(src->ctx, text, &ids, &n, err, errlen)) return -1;
    if (n != 1) {
        char pieces[160] = "";
        size_t len = 0;
        for (size_t i = 0; i < n && len < sizeof pieces; i++) {
            char piece[48], p2[48];
            src->piece(src->ctx, ids[i], piece, sizeof piece);
            qrm_printable(piece, p2, sizeof p2);
            len += (size_t)snprintf(pieces + len, sizeof pieces - len, "%s'%s'", i ? " " : "", p2);
        }
        free(ids);
        if (n == 0) FAIL("%s '%s' encodes to no token", what, shown);
        FAIL("%s '%s' is not one token in this tokenizer: it encodes to %zu (%s)", what, shown, n, pieces);
    }
    *id = ids[0];
    free(ids);
    return 0;
}
