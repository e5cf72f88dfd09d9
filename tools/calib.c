/* Activation statistics for qrm-convert --calib (see calib.h). */
#include "calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "json.h"
#include "model.h"
#include "platform.h"
#include "quantize.h"
#include "safetensors.h"
#include "f16.h"
#include "kernels.h"
#include "score_jsonl.h"
#include "sha256.h"

typedef struct {
    qrm_calib *c;
    int line;                 /* the calibration line being run */
    const qrm_tensor **ptr;   /* [c->n]: the model's tensor of each entry */
} hook_state;

/* Runs in the thread that calls the matmuls, before they start. */
static void on_matmul(void *arg, const qrm_tensor *w, const float *x, int M, int K) {
    hook_state *h = arg;
    for (int i = 0; i < h->c->n; i++) {
        if (h->ptr[i] != w) continue;
        qrm_calib_tensor *t = &h->c->t[i];
        for (int m = 0; m < M; m++) {
            const float *row = x + (size_t)m * K;
            for (int k = 0; k < K; k++) t->sum[k] += (double)row[k] * row[k];
            /* reservoir sampling (Vitter's R): every row seen so far is held
             * with the same probability, whatever the order of the lines */
            size_t slot = t->seen < QRM_CALIB_ROWS ? t->seen : SIZE_MAX;
            if (slot == SIZE_MAX) {
                t->rng = t->rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t j = (size_t)((t->rng >> 33) % (t->seen + 1));
                if (j < QRM_CALIB_ROWS) slot = j;
            }
            t->seen++;
            if (slot != SIZE_MAX) {
                memcpy(t->x + slot * (size_t)K, row, (size_t)K * sizeof *row);
                t->line[slot] = h->line;
                if (t->nx < QRM_CALIB_ROWS) t->nx++;
            }
        }
        t->n += M;
        return;
    }
}

/* The token sequences of one calibration line (up to two). */
static int line_sequences(qrm_ctx *ctx, int per_step, const qj_value *root, int32_t **ids, size_t *len,
                          char *err, size_t errlen) {
    const qj_value *v;
    const char *prompt = qj_get_str(root, "prompt");
    if ((v = qj_get(root, "ids"))) {
        ids[0] = qrm_ids_from_json(v, &len[0], err, errlen);
        return ids[0] ? 1 : -1;
    }
    if ((v = qj_get(root, "text")) && v->type == QJ_STRING) {
        if (qrm_tokenize(ctx, v->u.str, v->len, 1, &ids[0], &len[0])) goto fail;
        return 1;
    }
    if ((v = qj_get(root, "messages"))) {
        qj_buf b = {0};
        qj_buf_put_value(&b, v);
        int rc = b.oom ? QRM_ENOMEM : qrm_encode_chat(ctx, b.buf, b.len, &ids[0], &len[0], NULL);
        qj_buf_free(&b);
        if (rc) goto fail;
        return 1;
    }
    if (!prompt) {
        snprintf(err, errlen, "no 'ids', 'text', 'messages' or 'prompt'");
        return -1;
    }
    static const char *const keys[] = {"response", "chosen", "rejected"};
    int n = 0;
    for (int k = 0; k < 3; k++) {
        v = qj_get(root, keys[k]);
        if (!v || v->type != QJ_STRING) continue;
        /* a PRM reads only its step separators, and the forward stops at
         * the last one read: a response without one would run nothing, so
         * it is one step */
        const char *step = v->u.str;
        size_t step_len = v->len;
        if (per_step ? qrm_encode_steps(ctx, prompt, strlen(prompt), &step, &step_len, 1, &ids[n], &len[n])
                     : qrm_encode_prompt_response(ctx, prompt, strlen(prompt), v->u.str, v->len, &ids[n], &len[n]))
            goto fail;
        n++;
    }
    if (!n) snprintf(err, errlen, "'prompt' without a 'response', 'chosen' or 'rejected' string");
    return n ? n : -1;
fail:
    snprintf(err, errlen, "%s", qrm_ctx_error(ctx));
    return -1;
}

int qrm_calib_collect(const qrm_convert_opts *o, const char *path, qrm_calib *c, char *err,
                      size_t errlen) {
    memset(c, 0, sizeof *c);
    size_t dlen;
    char *data = qrm_read_file(path, &dlen, err, errlen);
    if (!data) return -1;
    qrm_sha256_hex(data, dlen, c->sha256);
    /* the float model, as the converter would write it at f32 */
    size_t plen = strlen(o->out_path) + 32;
    char *tmp = malloc(plen);
    if (!tmp) {
        free(data);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tmp, plen, "%s.calib-f32.tmp", o->out_path);
    qrm_convert_opts fo = *o;
    fo.out_path = tmp, fo.quant = "f32", fo.calib = NULL, fo.verbose = 0, fo.int4_budget = 0;
    qrm_model *m = NULL;
    qrm_ctx *ctx = NULL;
    hook_state hs = {c, 0, NULL};
    int rc = -1;
    char e2[QRM_ERR_MAX];
    if (qrm_convert(&fo, e2, sizeof e2)) {
        snprintf(err, errlen, "calibration: %s", e2);
        goto out;
    }
    m = qrm_model_open(tmp, e2, sizeof e2);
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    ctx = m ? qrm_ctx_new(m, &p, e2, sizeof e2) : NULL;
    if (!ctx) {
        snprintf(err, errlen, "calibration: %s", e2);
        goto out;
    }
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    /* every quantizable matrix of the backbone */
    int cap = qrm_role_count() * m->hp.n_layers;
    c->t = calloc((size_t)cap, sizeof *c->t);
    hs.ptr = calloc((size_t)cap, sizeof *hs.ptr);
    if (!c->t || !hs.ptr) goto oom;
    for (int r = 0; r < qrm_role_count(); r++) {
        const qrm_role *role = qrm_role_get(r);
        if (role->kind != QRM_ROLE_MATRIX || !role->per_layer) continue;
        for (int l = 0; l < m->hp.n_layers; l++) {
            const qrm_tensor *t = (const qrm_tensor *)((const char *)&m->layers[l] + role->offset);
            if (t->type == QRM_T_COUNT || t->ne1 <= 0) continue;
            qrm_calib_tensor *ct = &c->t[c->n];
            snprintf(ct->name, sizeof ct->name, role->name, l);
            ct->K = (int)t->ne1;
            ct->sum = calloc((size_t)ct->K, sizeof *ct->sum);
            ct->imp = calloc((size_t)ct->K, sizeof *ct->imp);
            ct->x = malloc((size_t)ct->K * QRM_CALIB_ROWS * sizeof *ct->x);
            ct->line = malloc(QRM_CALIB_ROWS * sizeof *ct->line);
            ct->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)c->n;
            if (!ct->sum || !ct->imp || !ct->x || !ct->line) goto oom;
            hs.ptr[c->n++] = t;
        }
    }
    ctx->act_hook = on_matmul;
    ctx->act_arg = &hs;
    int line = 0;
    for (char *s = data, *nl; s < data + dlen; s = nl + 1) {
        nl = memchr(s, '\n', (size_t)(data + dlen - s));
        if (!nl) nl = data + dlen;
        line++;
        hs.line = line;
        size_t n = (size_t)(nl - s);
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
        if (!n) continue;
        qj_doc *d = qj_parse(s, n, e2, sizeof e2);
        int32_t *ids[3] = {0};
        size_t len[3] = {0};
        int ns = d ? line_sequences(ctx, info.per_step, qj_root(d), ids, len, e2, sizeof e2) : -1;
        int refused = 0;
        for (int k = 0; k < ns; k++) {
            qrm_scores sc = {0};
            int src = qrm_score(ctx, ids[k], len[k], &sc);
            /* with every id in range, EINVAL is the head refusing the
             * sequence (ArmoRM's gating wants a user turn): such a line
             * gives no activations but is no mistake in the file */
            int in_range = len[k] > 0;
            for (size_t j = 0; j < len[k]; j++) in_range &= ids[k][j] >= 0 && ids[k][j] < m->hp.vocab_size;
            if (src == QRM_EINVAL && in_range) {
                if (!c->n_refused++) snprintf(c->refused, sizeof c->refused, "line %d: %s", line, qrm_ctx_error(ctx));
                refused = 1;
                qrm_scores_free(&sc);
                break;
            }
            if (src) {
                snprintf(e2, sizeof e2, "%s", qrm_ctx_error(ctx));
                ns = -1;
            }
            qrm_scores_free(&sc);
            if (ns < 0) break;
            c->n_tokens += len[k];
        }
        for (int k = 0; k < 3; k++) free(ids[k]);
        qj_free(d);
        if (ns < 0) {
            snprintf(err, errlen, "calibration file %s, line %d: %s", path, line, e2);
            goto out;
        }
        if (!refused) c->n_lines++;
    }
    if (!c->n_tokens) {
        snprintf(err, errlen, "calibration file %s has no usable line", path);
        goto out;
    }
    /* a channel never active would get weight 0 and let its weight go
     * anywhere; a floor of 1e-3 of the tensor's mean keeps it bounded */
    for (int i = 0; i < c->n; i++) {
        qrm_calib_tensor *t = &c->t[i];
        double mean = 0;
        for (int k = 0; k < t->K; k++) mean += t->sum[k];
        mean = t->n > 0 ? mean / t->K / t->n : 0;
        for (int k = 0; k < t->K; k++)
            t->imp[k] = (float)((t->n > 0 ? t->sum[k] / t->n : 0) + 1e-3 * mean + 1e-30);
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    free(hs.ptr);
    qrm_ctx_free(ctx);
    qrm_model_close(m);
    unlink(tmp);
    free(tmp), free(data);
    if (rc) qrm_calib_free(c);
    return rc;
}

const qrm_calib_tensor *qrm_calib_find(const qrm_calib *c, const char *name, int K) {
    for (int i = 0; c && i < c->n; i++)
        if (!strcmp(c->t[i].name, name) && c->t[i].K == K && c->t[i].n > 0) return &c->t[i];
    return NULL;
}

void qrm_calib_free(qrm_calib *c) {
    for (int i = 0; c->t && i < c->n; i++) free(c->t[i].sum), free(c->t[i].imp), free(c->t[i].x), free(c->t[i].line);
    free(c->t);
    memset(c, 0, sizeof *c);
}

double qrm_calib_rel_error(const void *src_tensor, int N, int K, int type, const float *imp) {
    const qrm_st_tensor *src = src_tensor;
    double err = 0, energy = 0;
    float x[QRM_QK];
    int8_t q[QRM_QK];
    for (int n = 0; n < N; n++)
        for (int g = 0; g < K / QRM_QK; g++) {
            for (int i = 0; i < QRM_QK; i++) x[i] = qrm_st_get(src, (size_t)n * K + (size_t)g * QRM_QK + i);
            const float *w = imp ? imp + (size_t)g * QRM_QK : NULL;
            float d = qrm_f16_to_f32(type == QRM_WQ8 ? qrm_quantize_group_q8(x, q) : qrm_quantize_group_q4_weighted(x, w, q));
            for (int i = 0; i < QRM_QK; i++) {
                double r = x[i] - d * q[i], wi = w ? w[i] : 1.0;
                err += wi * r * r;
                energy += wi * (double)x[i] * x[i];
            }
        }
    return energy > 0 ? err / energy : 0;
}
