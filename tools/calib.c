/* Activation statistics for qrm-convert --calib (see calib.h). */
#include "calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
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

/* The token sequences of one calibration line, in *ids / *len (malloc'd,
 * *n of them): the line shapes of `qrm score --input` ({"ids"},
 * {"messages"}, {"prompt", "responses": [...]}), plus {"text"} and a prompt
 * with "response" / "chosen" / "rejected" strings. 0, or -1 with err. */
static int line_sequences(qrm_ctx *ctx, int per_step, const qj_value *root, int32_t ***ids, size_t **len, int *n,
                          char *err, size_t errlen) {
    const qj_value *v, *resp[3];
    const char *prompt = qj_get_str(root, "prompt");
    const qj_value *list = qj_get(root, "responses");
    /* room for the most sequences any shape below gives */
    size_t cap = list && list->type == QJ_ARRAY && list->len > 3 ? list->len : 3;
    *n = 0;
    *ids = calloc(cap, sizeof **ids);
    *len = calloc(cap, sizeof **len);
    if (!*ids || !*len) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ((v = qj_get(root, "ids"))) {
        (*ids)[0] = qrm_ids_from_json(v, &(*len)[0], err, errlen);
        if (!(*ids)[0]) return -1;
        *n = 1;
        return 0;
    }
    if ((v = qj_get(root, "text")) && v->type == QJ_STRING) {
        if (qrm_tokenize(ctx, v->u.str, v->len, 1, &(*ids)[0], &(*len)[0])) goto fail;
        *n = 1;
        return 0;
    }
    if ((v = qj_get(root, "messages"))) {
        qj_buf b = {0};
        qj_buf_put_value(&b, v);
        int rc = b.oom ? QRM_ENOMEM : qrm_encode_chat(ctx, b.buf, b.len, &(*ids)[0], &(*len)[0], NULL);
        qj_buf_free(&b);
        if (rc) goto fail;
        *n = 1;
        return 0;
    }
    if (!prompt) {
        snprintf(err, errlen, "no 'ids', 'text', 'messages' or 'prompt'");
        return -1;
    }
    int nr = 0;
    if (list) {
        if (list->type != QJ_ARRAY || !list->len) {
            snprintf(err, errlen, "'responses' must be a non-empty array of strings");
            return -1;
        }
        for (uint32_t k = 0; k < list->len; k++) {
            if (list->u.items[k].type != QJ_STRING) {
                snprintf(err, errlen, "'responses' element %u is not a string", k);
                return -1;
            }
        }
    } else {
        static const char *const keys[] = {"response", "chosen", "rejected"};
        for (int k = 0; k < 3; k++)
            if ((v = qj_get(root, keys[k])) && v->type == QJ_STRING) resp[nr++] = v;
        if (!nr) {
            snprintf(err, errlen, "'prompt' without 'responses' or a 'response', 'chosen' or 'rejected' string");
            return -1;
        }
    }
    for (int k = 0; k < (list ? (int)list->len : nr); k++) {
        v = list ? &list->u.items[k] : resp[k];
        /* a PRM reads only its step separators, and the forward stops at
         * the last one read: a response without one would run nothing, so
         * it is one step */
        const char *step = v->u.str;
        size_t step_len = v->len;
        if (per_step ? qrm_encode_steps(ctx, prompt, strlen(prompt), &step, &step_len, 1, &(*ids)[k], &(*len)[k])
                     : qrm_encode_prompt_response(ctx, prompt, strlen(prompt), v->u.str, v->len, &(*ids)[k],
                                                  &(*len)[k]))
            goto fail;
        *n = k + 1;
    }
    return 0;
fail:
    snprintf(err, errlen, "%s", qrm_ctx_error(ctx));
    return -1;
}

/* Runs every calibration line through ctx (the hook collects). Counts the
 * lines and tokens when count is set (the first pass). 0, or -1 with err. */
static int run_lines(qrm_calib *c, qrm_ctx *ctx, const qrm_model *m, hook_state *hs, const char *path,
                     const char *data, size_t dlen, int count, char *err, size_t errlen) {
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    char e2[QRM_ERR_MAX];
    int line = 0;
    for (const char *s = data, *nl; s < data + dlen; s = nl + 1) {
        nl = memchr(s, '\n', (size_t)(data + dlen - s));
        if (!nl) nl = data + dlen;
        line++;
        hs->line = line;
        size_t n = (size_t)(nl - s);
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
        if (!n) continue;
        qj_doc *d = qj_parse(s, n, e2, sizeof e2);
        int32_t **ids = NULL;
        size_t *len = NULL;
        int nseq = 0;
        int ns = d && !line_sequences(ctx, info.per_step, qj_root(d), &ids, &len, &nseq, e2, sizeof e2) ? nseq : -1;
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
                if (count && !c->n_refused++)
                    snprintf(c->refused, sizeof c->refused, "line %d: %s", line, qrm_ctx_error(ctx));
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
            if (count) c->n_tokens += len[k];
        }
        for (int k = 0; ids && k < nseq; k++) free(ids[k]);
        free(ids), free(len);
        qj_free(d);
        if (ns < 0) {
            snprintf(err, errlen, "calibration file %s, line %d: %s", path, line, e2);
            return -1;
        }
        if (count && !refused) c->n_lines++;
    }
    if (count && !c->n_tokens) {
        snprintf(err, errlen, "calibration file %s has no usable line", path);
        return -1;
    }
    return 0;
}

static const qrm_tensor *tensor_of(const qrm_model *m, const qrm_calib_tensor *ct) {
    if (ct->role < 0) return &m->head.t[ct->head_slot]; /* a vocabulary head's matrix */
    return (const qrm_tensor *)((const char *)&m->layers[ct->layer] + qrm_role_get(ct->role)->offset);
}

/* Room for one matrix's statistics in c->t (name, shape, layer set by the caller). */
static int add_tensor(qrm_calib *c, int N, int K) {
    qrm_calib_tensor *ct = &c->t[c->n];
    ct->N = N, ct->K = K;
    ct->method = -1;
    ct->sum = calloc((size_t)ct->K, sizeof *ct->sum);
    ct->imp = calloc((size_t)ct->K, sizeof *ct->imp);
    ct->x = malloc((size_t)ct->K * QRM_CALIB_ROWS * sizeof *ct->x);
    ct->line = malloc(QRM_CALIB_ROWS * sizeof *ct->line);
    ct->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)c->n;
    if (!ct->sum || !ct->imp || !ct->x || !ct->line) return -1;
    c->n++;
    return 0;
}

/* Layer l's matrices from their collected activations: imp, the choice,
 * and the dequantized result written over the float weights of the file. */
static int quantize_layer(qrm_calib *c, const qrm_model *m, int l, const char *tmp, qrm_pool *pool, char *err,
                          size_t errlen) {
    int fd = open(tmp, O_RDWR);
    if (fd < 0) {
        snprintf(err, errlen, "calibration: cannot write %s", tmp);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < c->n && !rc; i++) {
        qrm_calib_tensor *t = &c->t[i];
        if (t->layer != l) continue;
        /* a channel never active would get weight 0 and let its weight go
         * anywhere; a floor of 1e-3 of the tensor's mean keeps it bounded */
        double mean = 0;
        for (int k = 0; k < t->K; k++) mean += t->sum[k];
        mean = t->n > 0 ? mean / t->K / t->n : 0;
        for (int k = 0; k < t->K; k++)
            t->imp[k] = (float)((t->n > 0 ? t->sum[k] / t->n : 0) + 1e-3 * mean + 1e-30);
        if (t->nx > 0) {
            const qrm_tensor *w = tensor_of(m, t);
            size_t nw = (size_t)t->N * t->K;
            float *deq = malloc(nw * sizeof *deq);
            t->packed = malloc(qrm_quant_size(QRM_WQ4, t->N, t->K));
            qrm_q4_choice ch;
            if (!deq || !t->packed ||
                qrm_quantize_q4_calibrated(w->data, t->N, t->K, t->imp, t->x, t->line, t->nx, t->packed, &ch, pool)) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
            } else {
                t->method = ch.method;
                t->heldout_ratio = ch.heldout_plain > 0 ? ch.heldout_chosen / ch.heldout_plain : 1;
                qrm_dequantize_q4(t->packed, t->N, t->K, deq);
                off_t at = (off_t)((const uint8_t *)w->data - m->base);
                if (pwrite(fd, deq, nw * sizeof *deq, at) != (ssize_t)(nw * sizeof *deq)) {
                    snprintf(err, errlen, "calibration: cannot write %s", tmp);
                    rc = -1;
                }
            }
            free(deq);
        }
        free(t->x), free(t->line);   /* the sample has served */
        t->x = NULL, t->line = NULL;
    }
    if (close(fd) && !rc) {
        snprintf(err, errlen, "calibration: cannot write %s", tmp);
        rc = -1;
    }
    return rc;
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
    int rc = -1, n_layers = 1, n_passes = 1;
    char e2[QRM_ERR_MAX];
    if (qrm_convert(&fo, e2, sizeof e2)) {
        snprintf(err, errlen, "calibration: %s", e2);
        goto out;
    }
    for (int l = 0; l < n_passes; l++) {
        /* reopened each layer: the file now holds the layers quantized so far */
        m = qrm_model_open(tmp, e2, sizeof e2);
        qrm_ctx_params p;
        qrm_ctx_params_default(&p);
        ctx = m ? qrm_ctx_new(m, &p, e2, sizeof e2) : NULL;
        if (!ctx) {
            snprintf(err, errlen, "calibration: %s", e2);
            goto out;
        }
        if (l == 0) {
            n_layers = m->hp.n_layers;
            /* every quantizable matrix of the backbone, then a vocabulary
             * head's whole matrix (DPO's lm head, a judge over the full
             * vocabulary) where int4 can store it */
            qrm_head_tensor ht[QRM_HEAD_MAX_TENSORS];
            int nh = m->head.ops->tensors(&m->head, &m->hp, ht);
            int cap = qrm_role_count() * n_layers + nh;
            c->t = calloc((size_t)cap, sizeof *c->t);
            hs.ptr = calloc((size_t)cap, sizeof *hs.ptr);
            if (!c->t || !hs.ptr) goto oom;
            for (int r = 0; r < qrm_role_count(); r++) {
                const qrm_role *role = qrm_role_get(r);
                if (role->kind != QRM_ROLE_MATRIX || !role->per_layer) continue;
                for (int j = 0; j < n_layers; j++) {
                    const qrm_tensor *t = (const qrm_tensor *)((const char *)&m->layers[j] + role->offset);
                    if (t->type == QRM_T_COUNT || t->ne1 <= 0) continue;
                    qrm_calib_tensor *ct = &c->t[c->n];
                    snprintf(ct->name, sizeof ct->name, role->name, j);
                    ct->role = r, ct->layer = j;
                    if (add_tensor(c, (int)t->ne0, (int)t->ne1)) goto oom;
                }
            }
            n_passes = n_layers;
            for (int i = 0; i < nh; i++) {
                if (ht[i].kind != QRM_ROLE_MATRIX || ht[i].ne0 % QRM_PANEL || ht[i].ne1 % QRM_QK) continue;
                qrm_calib_tensor *ct = &c->t[c->n];
                snprintf(ct->name, sizeof ct->name, "%.*s", (int)sizeof ct->name - 1, ht[i].name);
                /* its inputs are the final hidden states: a pass after the last layer's */
                ct->role = -1, ct->head_slot = ht[i].slot, ct->layer = n_layers;
                if (add_tensor(c, (int)ht[i].ne0, (int)ht[i].ne1)) goto oom;
                n_passes = n_layers + 1;
            }
        }
        for (int i = 0; i < c->n; i++) hs.ptr[i] = c->t[i].layer == l ? tensor_of(m, &c->t[i]) : NULL;
        ctx->act_hook = on_matmul;
        ctx->act_arg = &hs;
        if (run_lines(c, ctx, m, &hs, path, data, dlen, l == 0, err, errlen) ||
            quantize_layer(c, m, l, tmp, ctx->pool, err, errlen))
            goto out;
        qrm_ctx_free(ctx), ctx = NULL;
        qrm_model_close(m), m = NULL;
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
    for (int i = 0; c->t && i < c->n; i++) free(c->t[i].sum), free(c->t[i].imp), free(c->t[i].x), free(c->t[i].line), free(c->t[i].packed);
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
