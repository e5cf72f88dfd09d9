/* Scoring contexts: creation, the KV cache, and the scoring entry points
 * (whole sequence, incremental, shared prefix) built on qrm_forward. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "ctx.h"
#include "platform.h"

int qrm_ctx_fail(qrm_ctx *c, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return status;
}

const char *qrm_ctx_error(const qrm_ctx *c) { return c->err; }
const char *qrm_ctx_isa(const qrm_ctx *c) { return c->k->name; }
size_t qrm_ctx_length(const qrm_ctx *c) { return c->len; }
const qrm_model *qrm_ctx_model(const qrm_ctx *c) { return c->m; }

void qrm_ctx_params_default(qrm_ctx_params *p) {
    memset(p, 0, sizeof *p);
}

/* RoPE inverse frequencies, with Llama-3 rope_scaling when present. */
static void init_inv_freq(qrm_ctx *c) {
    const qrm_hparams *hp = &c->m->hp;
    int hd = hp->head_dim;
    for (int i = 0; i < hd / 2; i++) {
        double f = 1.0 / pow(hp->rope_theta, (double)(2 * i) / hd);
        if (hp->rope_factor > 0) {
            double lo_wl = hp->rope_orig_max_pos / hp->rope_low_freq_factor;
            double hi_wl = hp->rope_orig_max_pos / hp->rope_high_freq_factor;
            double wl = 2 * M_PI / f;
            if (wl > lo_wl) {
                f /= hp->rope_factor;
            } else if (wl >= hi_wl) {
                double s = (hp->rope_orig_max_pos / wl - hp->rope_low_freq_factor) /
                           (hp->rope_high_freq_factor - hp->rope_low_freq_factor);
                f = (1 - s) * f / hp->rope_factor + s * f;
            }
        }
        c->inv_freq[i] = f;
    }
}

static void *xalloc(size_t n) { return calloc(n ? n : 1, 1); }

qrm_ctx *qrm_ctx_new(const qrm_model *m, const qrm_ctx_params *p, char *err, size_t errlen) {
    qrm_ctx_params dp;
    if (!p) {
        qrm_ctx_params_default(&dp);
        p = &dp;
    }
    if (p->kv_type < QRM_KV_AUTO || p->kv_type > QRM_KV_F16) {
        snprintf(err, errlen, "unknown KV cache type %d (QRM_KV_AUTO, QRM_KV_F32 or QRM_KV_F16)",
                 p->kv_type);
        return NULL;
    }
    const qrm_kernels *k;
    if (p->isa) k = qrm_kernels_by_name(p->isa, qrm_cpu_features_get(), err, (int)errlen);
    else k = qrm_kernels_select(err, (int)errlen);
    if (!k) return NULL;
    qrm_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const qrm_hparams *hp = &m->hp;
    c->m = m;
    c->k = k;
    c->n_threads = p->n_threads > 0 ? p->n_threads : qrm_cpu_count();
    /* KV cap in slots (tokens over all sequences of a call). Default: the
     * model's context, or more if 2 GiB allows (best-of-N needs prompt +
     * N responses). */
    /* a quantized model: any of its matrices quantized (the converter may
     * leave a matrix whose shape does not fit the panels in f16) */
    const qrm_tensor *mats[] = {&m->layers[0].wq, &m->layers[0].wk, &m->layers[0].wv,
                                &m->layers[0].wo, &m->layers[0].w_gate, &m->layers[0].w_up,
                                &m->layers[0].w_down};
    int quantized = 0;
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
        quantized |= mats[i]->type == QRM_T_Q8 || mats[i]->type == QRM_T_Q4;
    c->kv_f16 = p->kv_type == QRM_KV_F16 || (p->kv_type == QRM_KV_AUTO && quantized);
    c->kv_esize = c->kv_f16 ? 2 : 4;
    size_t slot_bytes = qrm_ctx_kv_bytes_per_token(c);
    size_t by_memory = ((size_t)2 << 30) / slot_bytes;
    c->kv_limit = p->max_tokens ? p->max_tokens
                  : by_memory > (size_t)hp->max_positions ? by_memory : (size_t)hp->max_positions;
    size_t T = QRM_UBATCH, D = (size_t)hp->hidden, qd = (size_t)hp->n_heads * hp->head_dim,
           kvd = (size_t)hp->n_kv_heads * hp->head_dim, F = (size_t)hp->ffn;
    size_t kmax = D > qd ? D : qd;
    if (F > kmax) kmax = F;
    c->pool = qrm_pool_new(c->n_threads);
    c->x = xalloc(T * D * 4);
    c->xb = xalloc(T * D * 4);
    c->q = xalloc(T * qd * 4);
    c->kx = xalloc(T * kvd * 4);
    c->vx = xalloc(T * kvd * 4);
    c->att = xalloc(T * qd * 4);
    c->ffn_a = xalloc(T * F * 4);
    c->ffn_b = xalloc(T * F * 4);
    c->qa.q = xalloc(T * kmax);
    c->qa.d = xalloc(T * (kmax / QRM_QK + 1) * 4);
    c->qa.s = xalloc(T * (kmax / QRM_QK + 1) * 4);
    c->inv_freq = xalloc((size_t)hp->head_dim / 2 * sizeof(double));
    c->rope_cs = xalloc(T * (size_t)hp->head_dim * 4);
    c->scores = xalloc(T * (size_t)hp->n_outputs * 4);
    /* About 16 query rows per block: enough that each key and value row
     * loaded serves many FMAs, few enough that a block's tokens share most
     * of their keys (causal masking wastes under att_tokens keys per row). */
    int group = hp->n_heads / hp->n_kv_heads;
    c->att_tokens = group >= QRM_ATT_ROWS ? 1 : QRM_ATT_ROWS / group;
    c->att_rows = c->att_tokens * group;
    c->att_qb = xalloc((size_t)c->n_threads * c->att_rows * hp->head_dim * 4);
    c->att_ob = xalloc((size_t)c->n_threads * c->att_rows * hp->head_dim * 4);
    c->att_blk = xalloc((T + 1) * sizeof(int32_t));
    if (!c->pool || !c->x || !c->xb || !c->q || !c->kx || !c->vx || !c->att || !c->ffn_a ||
        !c->ffn_b || !c->qa.q || !c->qa.d || !c->qa.s || !c->inv_freq || !c->rope_cs ||
        !c->scores || !c->att_qb || !c->att_ob || !c->att_blk) {
        qrm_ctx_free(c);
        snprintf(err, errlen, "out of memory allocating the context");
        return NULL;
    }
    init_inv_freq(c);
    return c;
}

void qrm_ctx_free(qrm_ctx *c) {
    if (!c) return;
    qrm_pool_free(c->pool);
    free(c->kcache), free(c->vcache), free(c->slot_pos), free(c->att_scores);
    free(c->x), free(c->xb), free(c->q), free(c->kx), free(c->vx), free(c->att);
    free(c->ffn_a), free(c->ffn_b), free(c->qa.q), free(c->qa.d), free(c->qa.s);
    free(c->inv_freq), free(c->rope_cs), free(c->scores);
    free(c->att_qb), free(c->att_ob), free(c->att_blk);
    free(c);
}

/* Grows the KV cache to cap slots, keeping what it holds. The cache is laid
 * out [layer][kv head][slot][head_dim], so growing moves each block. */
int qrm_ctx_reserve(qrm_ctx *c, size_t cap) {
    if (cap <= c->kv_cap) return QRM_OK;
    if (cap > c->kv_limit)
        return qrm_ctx_fail(c, QRM_ETOOLONG,
                            "needs %zu tokens of KV cache, over the limit of %zu", cap, c->kv_limit);
    size_t want = c->kv_cap * 2 > cap ? c->kv_cap * 2 : cap;
    if (want > c->kv_limit) want = c->kv_limit;
    const qrm_hparams *hp = &c->m->hp;
    size_t hd = (size_t)hp->head_dim, blocks = (size_t)hp->n_layers * hp->n_kv_heads;
    size_t es = c->kv_esize;
    char *kc = malloc(blocks * want * hd * es);
    char *vc = malloc(blocks * want * hd * es);
    int32_t *sp = calloc(want, sizeof *sp);
    float *as = malloc((size_t)c->n_threads * c->att_rows * want * sizeof(float));
    if (!kc || !vc || !sp || !as) {
        free(kc), free(vc), free(sp), free(as);
        return qrm_ctx_fail(c, QRM_ENOMEM, "out of memory for a KV cache of %zu tokens", want);
    }
    for (size_t b = 0; b < blocks && c->kv_cap; b++) {
        memcpy(kc + b * want * hd * es, (char *)c->kcache + b * c->kv_cap * hd * es, c->kv_cap * hd * es);
        memcpy(vc + b * want * hd * es, (char *)c->vcache + b * c->kv_cap * hd * es, c->kv_cap * hd * es);
    }
    if (c->kv_cap) memcpy(sp, c->slot_pos, c->kv_cap * sizeof *sp);
    free(c->kcache), free(c->vcache), free(c->slot_pos), free(c->att_scores);
    c->kcache = kc, c->vcache = vc, c->slot_pos = sp, c->att_scores = as;
    c->kv_cap = want;
    return QRM_OK;
}

int qrm_ctx_reset(qrm_ctx *c) {
    c->len = 0;
    return QRM_OK;
}

/* The score position rule (HF *ForSequenceClassification): the rightmost
 * token that is not the pad token; the last token if all are pad. */
static size_t score_position(const qrm_ctx *c, const int32_t *ids, size_t n) {
    int32_t pad = c->m->hp.pad_token_id;
    for (size_t i = n; i-- > 0;)
        if (ids[i] != pad) return i;
    return n - 1;
}

/* Runs ids as slots [slot0, slot0 + n) with positions pos0.., attending to
 * [0, prefix_end) and to their own segment from own_start. With all_scores,
 * every token's score goes there; with last, the last token's; with
 * neither, no score is computed (a shared prompt). */
static int run_segment(qrm_ctx *c, const int32_t *ids, size_t n, int32_t pos0, int32_t slot0,
                       int32_t prefix_end, int32_t own_start, float *all_scores, float *last) {
    int32_t pos[QRM_UBATCH], slot[QRM_UBATCH], pe[QRM_UBATCH], os[QRM_UBATCH];
    int no = c->m->hp.n_outputs;
    for (size_t done = 0; done < n;) {
        int chunk = n - done > QRM_UBATCH ? QRM_UBATCH : (int)(n - done);
        int final = done + (size_t)chunk == n;
        for (int i = 0; i < chunk; i++) {
            pos[i] = pos0 + (int32_t)(done + (size_t)i);
            slot[i] = slot0 + (int32_t)(done + (size_t)i);
            pe[i] = prefix_end;
            os[i] = own_start;
        }
        int32_t last_row = chunk - 1;
        qrm_batch b = {.n = chunk, .ids = ids + done, .pos = pos, .slot = slot,
                       .prefix_end = pe, .own_start = os,
                       .n_out = all_scores ? -1 : (final && last) ? 1 : 0, .out_rows = &last_row};
        int rc = qrm_forward(c, &b);
        if (rc) return rc;
        if (all_scores) memcpy(all_scores + done * no, c->scores, (size_t)chunk * no * sizeof(float));
        if (final && last)
            memcpy(last, c->scores + (all_scores ? (size_t)(chunk - 1) * no : 0), (size_t)no * sizeof(float));
        done += (size_t)chunk;
    }
    return QRM_OK;
}

int qrm_ctx_append(qrm_ctx *c, const int32_t *ids, size_t n, float *all_scores, float *last) {
    if (n == 0) return qrm_ctx_fail(c, QRM_EINVAL, "no tokens to append");
    if (c->len + n > (size_t)c->m->hp.max_positions)
        return qrm_ctx_fail(c, QRM_ETOOLONG, "sequence of %zu tokens exceeds the model's %d positions",
                            c->len + n, c->m->hp.max_positions);
    int rc = qrm_ctx_reserve(c, c->len + n);
    if (rc) return rc;
    rc = run_segment(c, ids, n, (int32_t)c->len, (int32_t)c->len, 0, 0, all_scores, last);
    if (rc) return rc;
    c->len += n;
    return QRM_OK;
}

int qrm_score_ids(qrm_ctx *c, const int32_t *ids, size_t n, float *scores) {
    if (n == 0) return qrm_ctx_fail(c, QRM_EINVAL, "empty token sequence");
    size_t at = score_position(c, ids, n);
    /* Tokens after the score position cannot change the score (causal
     * attention): skip them. */
    c->len = 0;
    int rc = qrm_ctx_append(c, ids, at + 1, NULL, scores);
    c->len = 0;
    return rc;
}

int qrm_score_shared_prefix(qrm_ctx *c, const int32_t *prefix, size_t np,
                            const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                            float *scores) {
    const qrm_hparams *hp = &c->m->hp;
    int no = hp->n_outputs;
    if (n_resp == 0) return qrm_ctx_fail(c, QRM_EINVAL, "no responses to score");
    /* each response is scored at its own score position: drop trailing pads */
    size_t *len = malloc(n_resp * sizeof *len), total = 0;
    if (!len) return qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
    for (size_t r = 0; r < n_resp; r++) {
        len[r] = resp_len[r];
        while (len[r] > 1 && resp[r][len[r] - 1] == hp->pad_token_id) len[r]--;
        if (len[r] == 0) {
            free(len);
            return qrm_ctx_fail(c, QRM_EINVAL, "response %zu is empty", r);
        }
        if (np + len[r] > (size_t)hp->max_positions) {
            size_t total_r = np + len[r];
            free(len);
            return qrm_ctx_fail(c, QRM_ETOOLONG,
                                "prompt + response %zu is %zu tokens, over the model's %d positions",
                                r, total_r, hp->max_positions);
        }
        total += len[r];
    }
    int rc = qrm_ctx_reserve(c, np + total);
    int32_t *buf = rc ? NULL : malloc(total * 5 * sizeof *buf);
    if (!rc && !buf) rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
    c->len = 0;
    /* the prompt once, as slots [0, np) */
    if (!rc && np) rc = run_segment(c, prefix, np, 0, 0, 0, 0, NULL, NULL);
    if (rc) {
        free(len), free(buf);
        return rc;
    }
    /* every response after it, all in one batch (chunked by QRM_UBATCH):
     * response r owns slots [np + off_r, np + off_r + len_r) and sees the
     * prompt's slots plus its own */
    int32_t *ids = buf, *pos = buf + total, *slot = buf + 2 * total, *pe = buf + 3 * total,
            *os = buf + 4 * total;
    size_t t = 0;
    for (size_t r = 0; r < n_resp; r++) {
        int32_t own = (int32_t)(np + t);
        for (size_t j = 0; j < len[r]; j++, t++) {
            ids[t] = resp[r][j];
            pos[t] = (int32_t)(np + j);
            slot[t] = (int32_t)(np + t);
            pe[t] = (int32_t)np;
            os[t] = own;
        }
    }
    size_t r = 0, end_r = len[0]; /* index one past response r's last token */
    int32_t out_rows[QRM_UBATCH];
    for (size_t done = 0; done < total && !rc;) {
        int chunk = total - done > QRM_UBATCH ? QRM_UBATCH : (int)(total - done);
        /* the rows of this chunk that end a response: only their scores are computed */
        int n_out = 0;
        size_t r_first = r;
        for (size_t e = end_r, k = r; k < n_resp && e <= done + (size_t)chunk;) {
            out_rows[n_out++] = (int32_t)(e - 1 - done);
            if (++k < n_resp) e += len[k];
        }
        qrm_batch b = {.n = chunk, .ids = ids + done, .pos = pos + done, .slot = slot + done,
                       .prefix_end = pe + done, .own_start = os + done, .n_out = n_out,
                       .out_rows = out_rows};
        rc = qrm_forward(c, &b);
        done += (size_t)chunk;
        for (int k = 0; !rc && k < n_out; k++) {
            memcpy(scores + (r_first + (size_t)k) * no, c->scores + (size_t)k * no,
                   (size_t)no * sizeof(float));
            if (++r < n_resp) end_r += len[r];
        }
    }
    free(len), free(buf);
    return rc;
}
