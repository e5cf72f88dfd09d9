/* Scoring contexts: creation, the KV cache, and the scoring entry points
 * (whole sequence, incremental, shared prefix) built on qrm_forward. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
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
    if ((int)p->kv_type < QRM_KV_AUTO || (int)p->kv_type > QRM_KV_Q8) {
        snprintf(err, errlen,
                 "unknown KV cache type %d (QRM_KV_AUTO, QRM_KV_F32, QRM_KV_F16 or QRM_KV_Q8)",
                 (int)p->kv_type);
        return NULL;
    }
    if (p->kv_type == QRM_KV_Q8 && m->hp.head_dim % QRM_QK) {
        snprintf(err, errlen,
                 "KV cache q8 needs a head_dim that is a multiple of %d; this model's is %d "
                 "(use f16)", QRM_QK, m->hp.head_dim);
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
    c->abort_cb = p->abort_cb, c->abort_user = p->abort_user;
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
    c->kv_k8 = p->kv_type == QRM_KV_Q8;
    c->kv_f16 = c->kv_k8 || p->kv_type == QRM_KV_F16 || (p->kv_type == QRM_KV_AUTO && quantized);
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
    c->kx_h = c->kv_f16 && !c->kv_k8 ? xalloc(T * kvd * 2) : NULL; /* only an f16 K cache needs it */
    c->vx = xalloc(T * kvd * 4);
    c->att = xalloc(T * qd * 4);
    c->ffn_a = xalloc(T * F * 4);
    c->ffn_b = xalloc(T * F * 4);
    c->qa.q = xalloc(T * kmax);
    c->qa.d = xalloc(T * (kmax / QRM_QK + 1) * 4);
    c->qa.s = xalloc(T * (kmax / QRM_QK + 1) * 4);
    c->inv_freq = xalloc((size_t)hp->head_dim / 2 * sizeof(double));
    c->rope_cs = xalloc(T * (size_t)hp->head_dim * 4);
    c->hid = xalloc(T * D * 4);
    /* About 16 query rows per block: enough that each key and value row
     * loaded serves many FMAs, few enough that a block's tokens share most
     * of their keys (causal masking wastes under att_tokens keys per row). */
    int group = hp->n_heads / hp->n_kv_heads;
    c->att_tokens = group >= QRM_ATT_ROWS ? 1 : QRM_ATT_ROWS / group;
    c->att_rows = c->att_tokens * group;
    c->att_qb = xalloc((size_t)c->n_threads * c->att_rows * hp->head_dim * 4);
    c->att_ob = xalloc((size_t)c->n_threads * c->att_rows * hp->head_dim * 4);
    c->att_blk = xalloc((T + 1) * sizeof(int32_t));
    if (c->kv_k8) { /* int8 keys: their staging, and each thread's quantized queries */
        size_t hd = (size_t)hp->head_dim, rows = (size_t)c->n_threads * c->att_rows;
        c->kxq.q = xalloc(T * kvd), c->kxq.d = xalloc(T * kvd / QRM_QK * 4);
        c->kxq.s = xalloc(T * kvd / QRM_QK * 4);
        c->qxq.q = xalloc(T * qd), c->qxq.d = xalloc(T * qd / QRM_QK * 4);
        c->qxq.s = xalloc(T * qd / QRM_QK * 4);
        c->att_qa.q = xalloc(rows * hd), c->att_qa.d = xalloc(rows * hd / QRM_QK * 4);
        c->att_qa.s = xalloc(rows * hd / QRM_QK * 4);
        c->att_inv = xalloc(rows * 4);
    }
    int k8_ok = !c->kv_k8 || (c->kxq.q && c->kxq.d && c->kxq.s && c->qxq.q && c->qxq.d && c->qxq.s &&
                              c->att_qa.q && c->att_qa.d &&
                              c->att_qa.s && c->att_inv);
    if (!c->pool || !c->x || !c->xb || !c->q || !c->kx || (c->kv_f16 && !c->kv_k8 && !c->kx_h) ||
        !k8_ok || !c->vx ||
        !c->att || !c->ffn_a || !c->ffn_b || !c->qa.q || !c->qa.d || !c->qa.s || !c->inv_freq ||
        !c->rope_cs || !c->hid || !c->att_qb || !c->att_ob || !c->att_blk) {
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
    qrm_free_huge(c->kcache, c->kcache_bytes), qrm_free_huge(c->vcache, c->vcache_bytes);
    free(c->slot_pos), free(c->att_scores);
    free(c->kscale), free(c->kxq.q), free(c->kxq.d), free(c->kxq.s);
    free(c->qxq.q), free(c->qxq.d), free(c->qxq.s);
    free(c->att_qa.q), free(c->att_qa.d), free(c->att_qa.s), free(c->att_kscr);
    free(c->vscale), free(c->vones), free(c->att_pf), free(c->att_pa.q), free(c->att_pa.d);
    free(c->att_pa.s), free(c->att_inv);
    free(c->x), free(c->xb), free(c->q), free(c->kx), free(c->kx_h), free(c->vx), free(c->att);
    free(c->ffn_a), free(c->ffn_b), free(c->qa.q), free(c->qa.d), free(c->qa.s);
    free(c->inv_freq), free(c->rope_cs), free(c->hid), free(c->head_scratch);
    free(c->att_qb), free(c->att_ob), free(c->att_blk);
    qrm_template_free(c->chat_template);
    free(c);
}

/* qrm_ctx_reserve for int8 K and V (ctx.h): K's blocks keep their panels
 * (slot order comes first, so a block's prefix moves); V's panels each hold
 * kv_cap32 / 32 groups, so each panel moves to its new stride. Zeroed, so
 * that slots not yet written are finite (gemm_q8 computes their columns). */
static qrm_status reserve_q8(qrm_ctx *c, size_t want) {
    const qrm_hparams *hp = &c->m->hp;
    size_t hd = (size_t)hp->head_dim, blocks = (size_t)hp->n_layers * hp->n_kv_heads;
    size_t rows = (size_t)c->n_threads * c->att_rows, G = hd / QRM_QK, panels = hd / QRM_PANEL;
    size_t old16 = qrm_ctx_kv_cap16(c), want16 = (want + 15) & ~(size_t)15;
    size_t old32 = qrm_ctx_kv_cap32(c), want32 = (want + 31) & ~(size_t)31;
    size_t go = old32 / QRM_QK, gn = want32 / QRM_QK, blk = QRM_PANEL * QRM_QK;
    size_t kbytes = blocks * want16 * hd, vbytes = blocks * want32 * hd;
    uint8_t *kc = qrm_alloc_huge(kbytes), *vc = kc ? qrm_alloc_huge(vbytes) : NULL;
    int why = kc && vc ? ENOMEM : errno; /* the mapping's reason, or malloc's below */
    uint16_t *ks = calloc(blocks * want16 * G, 2), *ones = malloc(hd * gn * sizeof(uint16_t));
    float *vs = calloc(blocks * want, sizeof(float));
    float *kscr = malloc(rows * want16 * sizeof(float)), *pf = malloc(rows * want32 * sizeof(float));
    int8_t *pq = malloc(rows * want32);
    float *pd = malloc(rows * gn * sizeof(float));
    int32_t *psum = malloc(rows * gn * sizeof(int32_t)), *sp = calloc(want, sizeof *sp);
    float *as = malloc(rows * want * sizeof(float));
    if (!kc || !vc || !ks || !ones || !vs || !kscr || !pf || !pq || !pd || !psum || !sp || !as) {
        qrm_free_huge(kc, kbytes), qrm_free_huge(vc, vbytes);
        free(ks), free(ones), free(vs), free(kscr), free(pf), free(pq);
        free(pd), free(psum), free(sp), free(as);
        return qrm_ctx_fail(c, QRM_ENOMEM, "cannot allocate a KV cache of %zu tokens: %s", want, strerror(why));
    }
    for (size_t i = 0; i < hd * gn; i++) ones[i] = 0x3c00; /* f16 1.0: V^T's scales, every panel and group */
    /* only the slots held (c->len), in whole panels and groups: the rest of
     * the old cache is stale, and the new one is zero there */
    size_t len = c->len, len16 = (len + 15) & ~(size_t)15, gl = (len + QRM_QK - 1) / QRM_QK;
    for (size_t b = 0; b < blocks && len; b++) {
        memcpy(kc + b * want16 * hd, (uint8_t *)c->kcache + b * old16 * hd, len16 * hd);
        memcpy(ks + b * want16 * G, c->kscale + b * old16 * G, len16 * G * 2);
        for (size_t p = 0; p < panels; p++)
            memcpy(vc + b * want32 * hd + p * gn * blk, (uint8_t *)c->vcache + b * old32 * hd + p * go * blk,
                   gl * blk);
        memcpy(vs + b * want, c->vscale + b * c->kv_cap, len * sizeof(float));
    }
    if (len) memcpy(sp, c->slot_pos, len * sizeof *sp);
    qrm_free_huge(c->kcache, c->kcache_bytes), qrm_free_huge(c->vcache, c->vcache_bytes);
    free(c->kscale), free(c->vones), free(c->vscale);
    free(c->att_kscr), free(c->att_pf), free(c->att_pa.q), free(c->att_pa.d), free(c->att_pa.s);
    free(c->slot_pos), free(c->att_scores);
    c->kcache = kc, c->vcache = vc, c->kscale = ks, c->vones = ones, c->vscale = vs;
    c->kcache_bytes = kbytes, c->vcache_bytes = vbytes;
    c->att_kscr = kscr, c->att_pf = pf, c->att_pa.q = pq, c->att_pa.d = pd, c->att_pa.s = psum;
    c->slot_pos = sp, c->att_scores = as;
    c->kv_cap = want;
    return QRM_OK;
}

/* Grows the KV cache to cap slots, keeping what it holds. V is laid out
 * [layer][kv head][slot][head_dim], K in tiles [layer][kv head][tile]
 * [head_dim][QRM_KTILE] (ctx.h), so growing moves the start of each block:
 * the slots the context holds (c->len), not the whole old capacity. */
qrm_status qrm_ctx_reserve(qrm_ctx *c, size_t cap) {
    if (cap <= c->kv_cap) return QRM_OK;
    if (cap > c->kv_limit)
        return qrm_ctx_fail(c, QRM_ETOOLONG,
                            "needs %zu tokens of KV cache, over the limit of %zu", cap, c->kv_limit);
    size_t want = c->kv_cap * 2 > cap ? c->kv_cap * 2 : cap;
    if (want > c->kv_limit) want = c->kv_limit;
    const qrm_hparams *hp = &c->m->hp;
    size_t hd = (size_t)hp->head_dim, blocks = (size_t)hp->n_layers * hp->n_kv_heads;
    size_t es = c->kv_esize, rows = (size_t)c->n_threads * c->att_rows;
    if (c->kv_k8) return reserve_q8(c, want);
    size_t old64 = qrm_ctx_kv_cap64(c), want64 = (want + QRM_KTILE - 1) / QRM_KTILE * QRM_KTILE;
    size_t kbytes = blocks * hd * want64 * es, vbytes = blocks * want * hd * es;
    char *kc = qrm_alloc_huge(kbytes), *vc = kc ? qrm_alloc_huge(vbytes) : NULL;
    int why = kc && vc ? ENOMEM : errno; /* the mapping's reason, or malloc's below */
    int32_t *sp = calloc(want, sizeof *sp);
    float *as = malloc(rows * want * sizeof(float));
    if (!kc || !vc || !sp || !as) {
        qrm_free_huge(kc, kbytes), qrm_free_huge(vc, vbytes), free(sp), free(as);
        return qrm_ctx_fail(c, QRM_ENOMEM, "cannot allocate a KV cache of %zu tokens: %s", want, strerror(why));
    }
    /* only the slots held (c->len; K in whole tiles): after a reset, nothing */
    size_t len = c->len, len64 = (len + QRM_KTILE - 1) / QRM_KTILE * QRM_KTILE;
    for (size_t b = 0; b < blocks && len; b++)
        memcpy(vc + b * want * hd * es, (char *)c->vcache + b * c->kv_cap * hd * es, len * hd * es);
    for (size_t b = 0; b < blocks && len; b++) /* K's tiles stay where they are in a block (ctx.h) */
        memcpy(kc + b * hd * want64 * es, (char *)c->kcache + b * hd * old64 * es, hd * len64 * es);
    if (len) memcpy(sp, c->slot_pos, len * sizeof *sp);
    qrm_free_huge(c->kcache, c->kcache_bytes), qrm_free_huge(c->vcache, c->vcache_bytes);
    free(c->slot_pos), free(c->att_scores);
    c->kcache = kc, c->vcache = vc, c->slot_pos = sp, c->att_scores = as;
    c->kcache_bytes = kbytes, c->vcache_bytes = vbytes;
    c->kv_cap = want;
    return QRM_OK;
}

qrm_status qrm_ctx_reset(qrm_ctx *c) {
    c->len = 0;
    return QRM_OK;
}

/* ---- running tokens ---- */

/* Where a run's tokens go: explicit per-token arrays (best-of-N responses),
 * or, when pos is NULL, a plain segment: positions pos0.., slots slot0..,
 * every token seeing [0, pe0) and its own range from os0. */
typedef struct {
    const int32_t *ids, *pos, *slot, *pe, *os;
    int32_t pos0, slot0, pe0, os0;
} tok_src;

/* Runs src's tokens [0, n) in chunks of QRM_UBATCH and copies the final
 * hidden states of the rows want[0..n_want) (ascending, unique, < n) to
 * hid[k][hidden]. */
static int run_tokens(qrm_ctx *c, const tok_src *src, size_t n, const int32_t *want,
                      size_t n_want, float *hid) {
    int32_t pos[QRM_UBATCH], slot[QRM_UBATCH], pe[QRM_UBATCH], os[QRM_UBATCH], rows[QRM_UBATCH];
    size_t D = (size_t)c->m->hp.hidden, w = 0;
    for (size_t done = 0; done < n;) {
        int rc = qrm_ctx_check_abort(c);
        if (rc) return rc;
        int chunk = n - done > QRM_UBATCH ? QRM_UBATCH : (int)(n - done);
        qrm_batch b = {.n = chunk, .ids = src->ids + done, .out_rows = rows};
        if (src->pos) {
            b.pos = src->pos + done, b.slot = src->slot + done;
            b.prefix_end = src->pe + done, b.own_start = src->os + done;
        } else {
            for (int i = 0; i < chunk; i++) {
                pos[i] = src->pos0 + (int32_t)(done + (size_t)i);
                slot[i] = src->slot0 + (int32_t)(done + (size_t)i);
                pe[i] = src->pe0, os[i] = src->os0;
            }
            b.pos = pos, b.slot = slot, b.prefix_end = pe, b.own_start = os;
        }
        size_t w0 = w;
        while (w < n_want && (size_t)want[w] < done + (size_t)chunk)
            rows[b.n_out++] = (int32_t)((size_t)want[w++] - done);
        rc = qrm_forward(c, &b);
        if (rc) return rc;
        memcpy(hid + w0 * D, c->xb, (w - w0) * D * sizeof(float));
        done += (size_t)chunk;
    }
    return QRM_OK;
}

static const qrm_head *head_of(const qrm_ctx *c) { return &c->m->head; }

qrm_status qrm_ctx_append(qrm_ctx *c, const int32_t *ids, size_t n, float *all_scores, float *last) {
    const qrm_head *h = head_of(c);
    int no = h->n_outputs, D = c->m->hp.hidden;
    if (n == 0) return qrm_ctx_fail(c, QRM_EINVAL, "no tokens to append");
    if ((all_scores || last) && !h->ops->per_row)
        return qrm_ctx_fail(c, QRM_EINVAL, "a %s head needs the whole sequence: use qrm_score",
                            h->ops->kind);
    if (c->len + n > (size_t)c->m->hp.max_positions)
        return qrm_ctx_fail(c, QRM_ETOOLONG, "sequence of %zu tokens exceeds the model's %d positions",
                            c->len + n, c->m->hp.max_positions);
    int rc = qrm_ctx_reserve(c, c->len + n);
    if (rc) return rc;
    int32_t want[QRM_UBATCH];
    for (size_t done = 0; done < n && !rc;) {
        size_t chunk = n - done > QRM_UBATCH ? QRM_UBATCH : n - done;
        int final = done + chunk == n;
        /* every row for all_scores, the last one for last, else none */
        size_t n_want = all_scores ? chunk : final && last ? 1 : 0;
        for (size_t i = 0; i < n_want; i++) want[i] = all_scores ? (int32_t)i : (int32_t)(chunk - 1);
        tok_src src = {.ids = ids + done, .pos0 = (int32_t)(c->len + done),
                       .slot0 = (int32_t)(c->len + done)};
        qrm_head_run run = qrm_ctx_head_run(c);
        rc = run_tokens(c, &src, chunk, want, n_want, c->hid);
        if (!rc && n_want && h->ops->apply(h, &run, ids + done, want, c->hid, (int)n_want, D,
                                           all_scores ? all_scores + done * no : last))
            rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory in the head");
        if (!rc && all_scores && final && last)
            memcpy(last, all_scores + (n - 1) * no, (size_t)no * sizeof(float));
        done += chunk;
    }
    if (!rc) c->len += n;
    /* the one rule after an abort, whatever call it stopped: an empty context */
    if (rc == QRM_EABORTED) c->len = 0;
    return rc;
}

void qrm_scores_free(qrm_scores *s) {
    if (!s) return;
    free(s->values), free(s->positions);
    memset(s, 0, sizeof *s);
}

/* The points of a sequence ids from the head's positions and the hidden
 * states gathered at them (hid[k] is position pos[k]). */
static int finish_scores(qrm_ctx *c, const int32_t *ids, const int32_t *pos, size_t npos,
                         const float *hid, qrm_scores *out) {
    const qrm_head *h = head_of(c);
    size_t points = h->ops->point_per_row ? npos : 1;
    qrm_head_run run = qrm_ctx_head_run(c);
    out->n_points = points;
    out->n_values = h->n_outputs;
    out->values = malloc((points ? points : 1) * (size_t)h->n_outputs * sizeof(float));
    out->positions = malloc((points ? points : 1) * sizeof(int32_t));
    if (!out->values || !out->positions) return qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
    memcpy(out->positions, pos, points * sizeof(int32_t));
    if (npos && h->ops->apply(h, &run, ids, pos, hid, (int)npos, c->m->hp.hidden, out->values))
        return qrm_ctx_fail(c, QRM_ENOMEM, "out of memory in the head");
    return QRM_OK;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sorted, unique copy of pos[0..n) into u (which may be pos itself);
 * returns the count. */
static size_t unique_sorted(const int32_t *pos, size_t n, int32_t *u) {
    if (u != pos) memcpy(u, pos, n * sizeof *u);
    qsort(u, n, sizeof *u, cmp_i32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || u[k - 1] != u[i]) u[k++] = u[i];
    return k;
}

static size_t index_of(const int32_t *u, size_t n, int32_t p) {
    size_t lo = 0, hi = n;
    while (lo + 1 < hi) {
        size_t mid = (lo + hi) / 2;
        if (u[mid] <= p) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Every id in [0, vocab): checked before anything runs, since a head may
 * read ids past the last position the forward pass computes (the lm head
 * reads the token after each row). */
static int check_ids(qrm_ctx *c, const int32_t *ids, size_t n, const char *what) {
    int32_t V = c->m->hp.vocab_size;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return qrm_ctx_fail(c, QRM_EINVAL, "%stoken id %d at %zu is out of range [0, %d)", what,
                                ids[i], i, V);
    return QRM_OK;
}

/* The positions the head reads, less those before min_pos (a log-prob head
 * scores only the response); in place, order kept. */
static size_t drop_before(int32_t *pos, size_t npos, int32_t min_pos) {
    size_t k = 0;
    for (size_t i = 0; i < npos; i++)
        if (pos[i] >= min_pos) pos[k++] = pos[i];
    return k;
}

static int score_from(qrm_ctx *c, const int32_t *ids, size_t n, int32_t min_pos, qrm_scores *out) {
    const qrm_head *h = head_of(c);
    size_t D = (size_t)c->m->hp.hidden, npos = 0;
    memset(out, 0, sizeof *out);
    if (n == 0) return qrm_ctx_fail(c, QRM_EINVAL, "empty token sequence");
    if (n > (size_t)c->m->hp.max_positions)
        return qrm_ctx_fail(c, QRM_ETOOLONG, "sequence of %zu tokens exceeds the model's %d positions",
                            n, c->m->hp.max_positions);
    int rc = check_ids(c, ids, n, "");
    if (rc) return rc;
    int32_t *pos = malloc((n + 2) * sizeof *pos), *u = malloc((n + 2) * sizeof *u);
    float *hu = NULL, *hid = NULL;
    if (!pos || !u) {
        rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        goto out;
    }
    if (h->ops->positions(h, ids, n, pos, &npos, c->err, sizeof c->err)) {
        rc = QRM_EINVAL;
        goto out;
    }
    npos = drop_before(pos, npos, min_pos);
    size_t nu = unique_sorted(pos, npos, u);
    /* Tokens after the last position read cannot change what is read there
     * (causal attention): they are not run. */
    size_t run = nu ? (size_t)u[nu - 1] + 1 : 0;
    c->len = 0;
    if (run && (rc = qrm_ctx_reserve(c, run))) goto out;
    /* the rows in the head's order: when that is already ascending and
     * unique (a step or lm head), gathered once */
    int direct = nu == npos && !memcmp(u, pos, npos * sizeof *pos);
    hu = malloc((nu ? nu : 1) * D * sizeof *hu);
    hid = direct ? hu : malloc((npos ? npos : 1) * D * sizeof *hid);
    if (!hu || !hid) {
        rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        goto out;
    }
    if (nu) {
        tok_src src = {.ids = ids};
        rc = run_tokens(c, &src, run, u, nu, hu);
        c->len = 0;
        if (rc) goto out;
    }
    if (!direct)
        for (size_t k = 0; k < npos; k++) memcpy(hid + k * D, hu + index_of(u, nu, pos[k]) * D, D * sizeof *hid);
    rc = finish_scores(c, ids, pos, npos, hid, out);
out:
    if (hid != hu) free(hid);
    free(pos), free(u), free(hu);
    if (rc) qrm_scores_free(out);
    return rc;
}

qrm_status qrm_score(qrm_ctx *c, const int32_t *ids, size_t n, qrm_scores *out) {
    return score_from(c, ids, n, 0, out);
}

/* start: the first token whose log-probability is wanted (>= 1: the first
 * token has no prediction); the row before it predicts it. */
static int check_logprobs(qrm_ctx *c, size_t n, size_t start) {
    if (strcmp(head_of(c)->ops->kind, "lm"))
        return qrm_ctx_fail(c, QRM_EINVAL, "log-probabilities need the whole vocabulary head (convert with --head lm); this model's head is %s",
                            head_of(c)->ops->kind);
    if (start < 1 || start >= n)
        return qrm_ctx_fail(c, QRM_EINVAL, "response_start %zu must be in [1, %zu): at least one prompt and one response token",
                            start, n);
    return QRM_OK;
}

qrm_status qrm_logprobs(qrm_ctx *c, const int32_t *ids, size_t n, size_t start, qrm_scores *out) {
    memset(out, 0, sizeof *out);
    int rc = check_logprobs(c, n, start);
    return rc ? rc : score_from(c, ids, n, (int32_t)start - 1, out);
}

qrm_status qrm_score_ids(qrm_ctx *c, const int32_t *ids, size_t n, float *scores) {
    const qrm_head *h = head_of(c);
    if (h->ops->point_per_row)
        return qrm_ctx_fail(c, QRM_EINVAL, "a %s head gives a score per %s: use qrm_score", h->ops->kind,
                            h->ops->steps ? "step" : "token");
    qrm_scores s;
    int rc = qrm_score(c, ids, n, &s);
    if (!rc) memcpy(scores, s.values, (size_t)h->n_outputs * sizeof(float));
    qrm_scores_free(&s);
    return rc;
}

/* One response of a best-of-N call: the head's positions in the whole
 * sequence, and the tokens of the response that must run. */
typedef struct {
    int32_t *pos;
    size_t npos, run;           /* run: response tokens up to the last position read */
    size_t off;                 /* its first token's index in the batch */
    size_t slot;                /* its first slot, after the prompt's */
} resp_plan;

static int best_of_n_from(qrm_ctx *c, const int32_t *prefix, size_t np,
                          const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                          int32_t min_pos, qrm_scores *out) {
    const qrm_head *h = head_of(c);
    const qrm_hparams *hp = &c->m->hp;
    size_t D = (size_t)hp->hidden, total = 0, slots = 0, n_pre = 0, n_rows = 0, max_len = 0;
    int rc = QRM_OK;
    for (size_t r = 0; r < n_resp; r++) memset(&out[r], 0, sizeof out[r]);
    if (n_resp == 0) return qrm_ctx_fail(c, QRM_EINVAL, "no responses to score");
    if (check_ids(c, prefix, np, "prompt: ")) return QRM_EINVAL;
    for (size_t r = 0; r < n_resp; r++) {
        char what[48];
        snprintf(what, sizeof what, "response %zu: ", r);
        if (check_ids(c, resp[r], resp_len[r], what)) return QRM_EINVAL;
        if (resp_len[r] == 0) return qrm_ctx_fail(c, QRM_EINVAL, "response %zu is empty", r);
        if (np + resp_len[r] > (size_t)hp->max_positions)
            return qrm_ctx_fail(c, QRM_ETOOLONG,
                                "prompt + response %zu is %zu tokens, over the model's %d positions",
                                r, np + resp_len[r], hp->max_positions);
        if (resp_len[r] > max_len) max_len = resp_len[r];
    }
    resp_plan *plan = calloc(n_resp, sizeof *plan);
    int32_t *seq = malloc((np + max_len + 2) * sizeof *seq), *pre = NULL, *rows = NULL, *buf = NULL;
    float *hpre = NULL, *hrows = NULL, *hid = NULL;
    if (!plan || !seq) {
        rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        goto out;
    }
    /* the head's positions in each whole sequence */
    memcpy(seq, prefix, np * sizeof *seq);
    for (size_t r = 0; r < n_resp; r++) {
        size_t n = np + resp_len[r];
        memcpy(seq + np, resp[r], resp_len[r] * sizeof *seq);
        plan[r].pos = malloc((n + 2) * sizeof(int32_t));
        if (!plan[r].pos) {
            rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
            goto out;
        }
        char e[QRM_ERR_MAX];
        if (h->ops->positions(h, seq, n, plan[r].pos, &plan[r].npos, e, sizeof e)) {
            rc = qrm_ctx_fail(c, QRM_EINVAL, "response %zu: %s", r, e);
            goto out;
        }
        plan[r].npos = drop_before(plan[r].pos, plan[r].npos, min_pos);
        for (size_t k = 0; k < plan[r].npos; k++) {
            size_t p = (size_t)plan[r].pos[k];
            if (p < np) n_pre++;
            else if (p - np + 1 > plan[r].run) plan[r].run = p - np + 1;
        }
        n_rows += plan[r].npos;
        plan[r].off = total;
        total += plan[r].run;
        /* int8 V: own ranges start on a 32-slot group (pv_q8, forward.c) */
        plan[r].slot = c->kv_k8 ? (slots + QRM_QK - 1) / QRM_QK * QRM_QK : slots;
        slots = plan[r].slot + plan[r].run;
    }
    /* the prefix's rows that any response reads, and the responses' rows,
     * as indices into the batch of responses (both ascending, unique) */
    pre = malloc((n_pre + 1) * sizeof *pre);
    rows = malloc((n_rows + 1) * sizeof *rows);
    buf = malloc((total * 5 + 1) * sizeof *buf);
    if (!pre || !rows || !buf) {
        rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        goto out;
    }
    size_t k_pre = 0, k_rows = 0;
    for (size_t r = 0; r < n_resp; r++)
        for (size_t k = 0; k < plan[r].npos; k++) {
            size_t p = (size_t)plan[r].pos[k];
            if (p < np) pre[k_pre++] = (int32_t)p;
            else rows[k_rows++] = (int32_t)(plan[r].off + p - np);
        }
    n_pre = unique_sorted(pre, k_pre, pre);
    n_rows = unique_sorted(rows, k_rows, rows);
    hpre = malloc((n_pre + 1) * D * sizeof *hpre);
    hrows = malloc((n_rows + 1) * D * sizeof *hrows);
    if (!hpre || !hrows) {
        rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        goto out;
    }
    c->len = 0;
    rc = qrm_ctx_reserve(c, np + slots);
    /* the prompt once, as slots [0, np) */
    tok_src psrc = {.ids = prefix};
    if (!rc && np) rc = run_tokens(c, &psrc, np, pre, n_pre, hpre);
    if (rc) goto out;
    /* every response after it, in one batch: response r owns the slots
     * [np + slot_r, np + slot_r + run_r) and sees the prompt's plus its own */
    int32_t *ids = buf, *pos = buf + total, *slot = buf + 2 * total, *pe = buf + 3 * total,
            *os = buf + 4 * total;
    for (size_t r = 0; r < n_resp; r++)
        for (size_t j = 0; j < plan[r].run; j++) {
            size_t t = plan[r].off + j;
            ids[t] = resp[r][j];
            pos[t] = (int32_t)(np + j);
            slot[t] = (int32_t)(np + plan[r].slot + j);
            pe[t] = (int32_t)np;
            os[t] = (int32_t)(np + plan[r].slot);
        }
    tok_src rsrc = {.ids = ids, .pos = pos, .slot = slot, .pe = pe, .os = os};
    if (total) rc = run_tokens(c, &rsrc, total, rows, n_rows, hrows);
    c->len = 0;
    /* each response's points from the rows it reads (a vocabulary head's
     * are a pass over the whole vocabulary each: a place to stop too) */
    for (size_t r = 0; r < n_resp && !rc; r++) {
        if ((rc = qrm_ctx_check_abort(c))) break;
        free(hid);
        hid = malloc((plan[r].npos + 1) * D * sizeof *hid);
        if (!hid) {
            rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < plan[r].npos; k++) {
            int32_t p = plan[r].pos[k];
            const float *src = (size_t)p < np ? hpre + index_of(pre, n_pre, p) * D
                               : hrows + index_of(rows, n_rows, (int32_t)(plan[r].off + (size_t)p - np)) * D;
            memcpy(hid + k * D, src, D * sizeof *hid);
        }
        memcpy(seq + np, resp[r], resp_len[r] * sizeof *seq);
        rc = finish_scores(c, seq, plan[r].pos, plan[r].npos, hid, &out[r]);
    }
out:
    for (size_t r = 0; plan && r < n_resp; r++) free(plan[r].pos);
    free(plan), free(seq), free(pre), free(rows), free(buf), free(hpre), free(hrows), free(hid);
    if (rc)
        for (size_t r = 0; r < n_resp; r++) qrm_scores_free(&out[r]);
    return rc;
}

/* best_of_n_from with an int8 V cache, whose probabilities are quantized
 * per 32-slot group: the shared prompt ends on a group boundary, its last
 * np % 32 tokens run again in front of each response, so that each
 * response's groups are the groups of its sequence scored whole (bit for
 * bit the same scores, at the price of under 32 tokens per response). */
static int best_of_n_grouped(qrm_ctx *c, const int32_t *prefix, size_t np,
                             const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                             int32_t min_pos, qrm_scores *out) {
    size_t tail = c->kv_k8 ? np % QRM_QK : 0;
    if (tail == 0 || n_resp == 0) return best_of_n_from(c, prefix, np, resp, resp_len, n_resp, min_pos, out);
    for (size_t r = 0; r < n_resp; r++) memset(&out[r], 0, sizeof out[r]);
    if (check_ids(c, prefix, np, "prompt: ")) return QRM_EINVAL;
    for (size_t r = 0; r < n_resp; r++) { /* here, so that messages count the response's own tokens */
        char what[48];
        snprintf(what, sizeof what, "response %zu: ", r);
        if (check_ids(c, resp[r], resp_len[r], what)) return QRM_EINVAL;
        if (resp_len[r] == 0) return qrm_ctx_fail(c, QRM_EINVAL, "response %zu is empty", r);
    }
    int32_t **ext = calloc(n_resp, sizeof *ext);
    size_t *ext_len = calloc(n_resp, sizeof *ext_len);
    int rc = ext && ext_len ? QRM_OK : qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
    for (size_t r = 0; r < n_resp && !rc; r++) {
        ext_len[r] = tail + resp_len[r];
        ext[r] = malloc(ext_len[r] * sizeof(int32_t));
        if (!ext[r]) {
            rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
            break;
        }
        memcpy(ext[r], prefix + np - tail, tail * sizeof(int32_t));
        memcpy(ext[r] + tail, resp[r], resp_len[r] * sizeof(int32_t));
    }
    if (!rc)
        rc = best_of_n_from(c, prefix, np - tail, (const int32_t *const *)ext, ext_len, n_resp, min_pos, out);
    for (size_t r = 0; ext && r < n_resp; r++) free(ext[r]);
    free(ext), free(ext_len);
    return rc;
}

qrm_status qrm_score_best_of_n(qrm_ctx *c, const int32_t *prefix, size_t np,
                               const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                               qrm_scores *out) {
    return best_of_n_grouped(c, prefix, np, resp, resp_len, n_resp, 0, out);
}

qrm_status qrm_logprobs_best_of_n(qrm_ctx *c, const int32_t *prefix, size_t np,
                                  const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                                  size_t start, qrm_scores *out) {
    for (size_t r = 0; r < n_resp; r++) memset(&out[r], 0, sizeof out[r]);
    for (size_t r = 0; r < n_resp; r++) {
        int rc = check_logprobs(c, np + resp_len[r], start);
        if (rc) return rc;
    }
    return best_of_n_grouped(c, prefix, np, resp, resp_len, n_resp, (int32_t)start - 1, out);
}

qrm_status qrm_score_shared_prefix(qrm_ctx *c, const int32_t *prefix, size_t np,
                                   const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                                   float *scores) {
    const qrm_head *h = head_of(c);
    if (h->ops->point_per_row)
        return qrm_ctx_fail(c, QRM_EINVAL, "a %s head gives a score per %s: use qrm_score_best_of_n",
                            h->ops->kind, h->ops->steps ? "step" : "token");
    qrm_scores *s = calloc(n_resp ? n_resp : 1, sizeof *s);
    if (!s) return qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
    int rc = qrm_score_best_of_n(c, prefix, np, resp, resp_len, n_resp, s);
    for (size_t r = 0; r < n_resp; r++) {
        if (!rc) memcpy(scores + r * (size_t)h->n_outputs, s[r].values, (size_t)h->n_outputs * sizeof(float));
        qrm_scores_free(&s[r]);
    }
    free(s);
    return rc;
}
