/* The forward pass: token ids -> hidden states -> a score at every token.
 *
 * One path serves every supported family; the differences are flags in
 * qrm_hparams (see models/families.c for which family sets which):
 *
 *   x = embed(ids) * embed_scale
 *   for each layer:
 *     h = rmsnorm(x) * attn_norm
 *     q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)
 *     q, k = rmsnorm_per_head(q, k)              (qk_norm: Qwen3)
 *     q, k = rope(q, k, pos)
 *     a = softmax(softcap(q k^T * scale) | causal, window) v
 *     o = a Wo;  o = rmsnorm(o) * attn_post_norm  (sandwich_norms: Gemma2)
 *     x = x + o
 *     h = rmsnorm(x) * ffn_norm
 *     f = (act(h Wgate) * h Wup) Wdown;  f = rmsnorm(f) * ffn_post_norm (Gemma2)
 *     x = x + f
 *   score = (rmsnorm(x) * out_norm) . score_w
 *
 * Work is split between threads by weight panels (matmuls), by tokens
 * (norms, activations) and by (token, head) (attention). */
#include <math.h>
#include <string.h>

#include "ctx.h"
#include "f16.h"

/* ---- parallel matmul: y[M][N] = x[M][K] . W[N][K]^T ---- */

typedef struct {
    qrm_ctx *c;
    const qrm_tensor *w;
    const float *x;
    float *y;
    int M, chunk;
} mm_job;

static void quantize_task(void *arg, int task, int thread) {
    mm_job *j = arg;
    qrm_ctx *c = j->c;
    int K = (int)j->w->ne1, G = K / QRM_QK;
    int m0 = task * j->chunk, m1 = m0 + j->chunk < j->M ? m0 + j->chunk : j->M;
    qrm_qact part = {.M = m1 - m0, .K = K, .q = c->qa.q + (size_t)m0 * K,
                     .d = c->qa.d + (size_t)m0 * G, .s = c->qa.s + (size_t)m0 * G};
    c->k->quantize_act(j->x + (size_t)m0 * K, (size_t)K, &part);
    (void)thread;
}

static void gemm_task(void *arg, int task, int thread) {
    mm_job *j = arg;
    const qrm_tensor *w = j->w;
    const qrm_kernels *k = j->c->k;
    int N = (int)w->ne0, K = (int)w->ne1;
    (void)thread;
    if (w->type == QRM_T_Q8 || w->type == QRM_T_Q4) {
        int panels = N / QRM_PANEL;
        int p0 = task * j->chunk, p1 = p0 + j->chunk < panels ? p0 + j->chunk : panels;
        if (w->type == QRM_T_Q8) k->gemm_q8(&j->c->qa, &w->qw, p0, p1, j->y, (size_t)N);
        else k->gemm_q4(&j->c->qa, &w->qw, p0, p1, j->y, (size_t)N);
    } else {
        int n0 = task * j->chunk, n1 = n0 + j->chunk < N ? n0 + j->chunk : N;
        if (w->type == QRM_T_F32)
            k->gemm_f32(j->x, (size_t)K, j->M, w->data, K, n0, n1, j->y, (size_t)N);
        else
            k->gemm_f16(j->x, (size_t)K, j->M, w->data, K, n0, n1, j->y, (size_t)N);
    }
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

static void matmul(qrm_ctx *c, const qrm_tensor *w, const float *x, int M, float *y) {
    int N = (int)w->ne0, nt = c->n_threads;
    mm_job j = {.c = c, .w = w, .x = x, .y = y, .M = M};
    int quantized = w->type == QRM_T_Q8 || w->type == QRM_T_Q4;
    if (quantized) {
        c->qa.M = M;
        c->qa.K = (int)w->ne1;
        j.chunk = ceil_div(M, nt);
        qrm_pool_run(c->pool, ceil_div(M, j.chunk), quantize_task, &j);
    }
    /* Units are panels of 16 rows. Prefill wants few big tasks (each reuses
     * its panels across all tokens); a single token wants many small ones so
     * that both cores keep streaming weights until the end. */
    int units = quantized ? N / QRM_PANEL : N;
    int per_thread = M >= 16 ? 2 : 8;
    j.chunk = nt == 1 ? units : ceil_div(units, nt * per_thread);
    if (!quantized && j.chunk % QRM_PANEL) j.chunk += QRM_PANEL - j.chunk % QRM_PANEL;
    qrm_pool_run(c->pool, ceil_div(units, j.chunk), gemm_task, &j);
}

static void add_bias(float *y, const qrm_tensor *b, int M) {
    int N = (int)b->ne0;
    const float *bias = b->data;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) y[(size_t)m * N + n] += bias[n];
}

/* ---- per-token work ---- */

typedef struct {
    qrm_ctx *c;
    const qrm_batch *b;
    int layer;
    const float *norm_w;
    const float *src;
    float *dst;
    int dim;
} tok_job;

static void rmsnorm_task(void *arg, int i, int thread) {
    tok_job *j = arg;
    (void)thread;
    j->c->k->rmsnorm_f32(j->dst + (size_t)i * j->dim, j->src + (size_t)i * j->dim, j->norm_w,
                         j->dim, j->c->m->hp.rms_eps);
}

static void rmsnorm_rows(qrm_ctx *c, float *dst, const float *src, const qrm_tensor *w, int n,
                         int dim) {
    tok_job j = {.c = c, .norm_w = w->data, .src = src, .dst = dst, .dim = dim};
    qrm_pool_run(c->pool, n, rmsnorm_task, &j);
}

/* RoPE angles of the batch's positions: cos in [0, hd/2), sin in [hd/2, hd). */
static void rope_tables(qrm_ctx *c, const qrm_batch *b) {
    int half = c->m->hp.head_dim / 2;
    for (int i = 0; i < b->n; i++) {
        float *cs = c->rope_cs + (size_t)i * 2 * half;
        for (int f = 0; f < half; f++) {
            double a = (double)b->pos[i] * c->inv_freq[f];
            cs[f] = (float)cos(a);
            cs[half + f] = (float)sin(a);
        }
    }
}

/* q/k per-head norm (Qwen3), RoPE, and the K/V cache write of one token. */
static void qkv_post_task(void *arg, int i, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    const qrm_hparams *hp = &c->m->hp;
    const qrm_layer *L = &c->m->layers[j->layer];
    int hd = hp->head_dim, half = hd / 2;
    size_t qd = (size_t)hp->n_heads * hd, kvd = (size_t)hp->n_kv_heads * hd;
    float *q = c->q + i * qd, *k = c->kx + i * kvd, *v = c->vx + i * kvd;
    const float *cs = c->rope_cs + (size_t)i * hd;
    (void)thread;
    for (int h = 0; h < hp->n_heads; h++) {
        if (hp->qk_norm) c->k->rmsnorm_f32(q + h * hd, q + h * hd, L->q_norm.data, hd, hp->rms_eps);
        c->k->rope_neox_f32(q + h * hd, cs, cs + half, hd);
    }
    for (int h = 0; h < hp->n_kv_heads; h++) {
        if (hp->qk_norm) c->k->rmsnorm_f32(k + h * hd, k + h * hd, L->k_norm.data, hd, hp->rms_eps);
        c->k->rope_neox_f32(k + h * hd, cs, cs + half, hd);
    }
    for (int h = 0; h < hp->n_kv_heads; h++) {
        size_t off = (((size_t)j->layer * hp->n_kv_heads + h) * c->kv_cap + (size_t)j->b->slot[i]) * hd;
        memcpy(c->kcache + off, k + (size_t)h * hd, (size_t)hd * sizeof(float));
        memcpy(c->vcache + off, v + (size_t)h * hd, (size_t)hd * sizeof(float));
    }
}

/* Attention of one token for the query heads that share one KV head.
 * The visible slots are two contiguous ranges, [0, prefix_end) and
 * [own_start, slot]; a sliding window trims the start of each (positions
 * increase along a range). Scores of all the group's heads over a range are
 * one small GEMM against the head's contiguous key rows. */
static void attention_task(void *arg, int task, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    const qrm_batch *b = j->b;
    const qrm_hparams *hp = &c->m->hp;
    int H = hp->n_heads, KV = hp->n_kv_heads, hd = hp->head_dim, g = H / KV;
    int i = task / KV, kvh = task % KV;
    size_t block = ((size_t)j->layer * KV + kvh) * c->kv_cap * hd;
    const float *K = c->kcache + block, *V = c->vcache + block;
    const float *q = c->q + (size_t)i * H * hd + (size_t)kvh * g * hd;
    float *out = c->att + (size_t)i * H * hd + (size_t)kvh * g * hd;
    float *sc = c->att_scores + (size_t)thread * g * c->kv_cap;
    int window = hp->sliding[j->layer] ? hp->sliding_window : 0;
    int32_t pos = b->pos[i];
    float cap = hp->attn_softcap;

    int32_t r0[2] = {0, b->own_start[i]}, r1[2] = {b->prefix_end[i], b->slot[i] + 1};
    for (int r = 0; r < 2; r++)
        while (window && r0[r] < r1[r] && pos - c->slot_pos[r0[r]] >= window) r0[r]++;
    int n0 = r1[0] - r0[0], n = n0 + (r1[1] - r0[1]);
    /* scores: sc[h][0..n) for the group's heads */
    if (n0 > 0) c->k->gemm_f32(q, (size_t)hd, g, K + (size_t)r0[0] * hd, hd, 0, n0, sc, c->kv_cap);
    if (n > n0)
        c->k->gemm_f32(q, (size_t)hd, g, K + (size_t)r0[1] * hd, hd, 0, n - n0, sc + n0, c->kv_cap);
    for (int h = 0; h < g; h++) {
        float *s = sc + (size_t)h * c->kv_cap;
        c->k->scale_f32(s, hp->attn_scale, n);
        if (cap > 0)
            for (int t = 0; t < n; t++) s[t] = cap * tanhf(s[t] / cap);
        c->k->softmax_f32(s, n);
        float *o = out + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        c->k->wsum_rows_f32(o, s, V + (size_t)r0[0] * hd, n0, hd);
        c->k->wsum_rows_f32(o, s + n0, V + (size_t)r0[1] * hd, n - n0, hd);
    }
}

static void act_task(void *arg, int i, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    int F = c->m->hp.ffn;
    (void)thread;
    if (c->m->hp.act == QRM_ACT_GELU_TANH)
        c->k->gelu_tanh_mul_f32(c->ffn_a + (size_t)i * F, c->ffn_b + (size_t)i * F, F);
    else
        c->k->silu_mul_f32(c->ffn_a + (size_t)i * F, c->ffn_b + (size_t)i * F, F);
}

static void embed(qrm_ctx *c, const qrm_batch *b) {
    const qrm_tensor *e = &c->m->tok_embd;
    int D = c->m->hp.hidden;
    for (int i = 0; i < b->n; i++) {
        float *x = c->x + (size_t)i * D;
        if (e->type == QRM_T_F32) {
            memcpy(x, (const float *)e->data + (size_t)b->ids[i] * D, (size_t)D * sizeof(float));
        } else {
            const uint16_t *row = (const uint16_t *)e->data + (size_t)b->ids[i] * D;
            for (int d = 0; d < D; d++) x[d] = qrm_f16_to_f32(row[d]);
        }
        if (c->m->hp.embed_scale != 1.0f) c->k->scale_f32(x, c->m->hp.embed_scale, D);
    }
}

static void add_rows(qrm_ctx *c, float *x, const float *y, int n, int dim) {
    for (int i = 0; i < n; i++) c->k->axpy_f32(x + (size_t)i * dim, 1.0f, y + (size_t)i * dim, dim);
}

/* First half of a layer: q, k, v of every token, and k, v into the cache. */
static void layer_qkv(qrm_ctx *c, const qrm_batch *b, int l) {
    const qrm_hparams *hp = &c->m->hp;
    const qrm_layer *L = &c->m->layers[l];
    int n = b->n;
    tok_job j = {.c = c, .b = b, .layer = l};
    rmsnorm_rows(c, c->xb, c->x, &L->attn_norm, n, hp->hidden);
    matmul(c, &L->wq, c->xb, n, c->q);
    matmul(c, &L->wk, c->xb, n, c->kx);
    matmul(c, &L->wv, c->xb, n, c->vx);
    if (hp->qkv_bias) {
        add_bias(c->q, &L->bq, n);
        add_bias(c->kx, &L->bk, n);
        add_bias(c->vx, &L->bv, n);
    }
    qrm_pool_run(c->pool, n, qkv_post_task, &j);
}

/* Second half: attention, output projection, feed-forward, residuals. */
static void layer_rest(qrm_ctx *c, const qrm_batch *b, int l) {
    const qrm_hparams *hp = &c->m->hp;
    const qrm_layer *L = &c->m->layers[l];
    int n = b->n, D = hp->hidden;
    tok_job j = {.c = c, .b = b, .layer = l};
    qrm_pool_run(c->pool, n * hp->n_kv_heads, attention_task, &j);
    matmul(c, &L->wo, c->att, n, c->xb);
    if (hp->sandwich_norms) rmsnorm_rows(c, c->xb, c->xb, &L->attn_post_norm, n, D);
    add_rows(c, c->x, c->xb, n, D);

    rmsnorm_rows(c, c->xb, c->x, &L->ffn_norm, n, D);
    matmul(c, &L->w_gate, c->xb, n, c->ffn_a);
    matmul(c, &L->w_up, c->xb, n, c->ffn_b);
    qrm_pool_run(c->pool, n, act_task, &j);
    matmul(c, &L->w_down, c->ffn_a, n, c->xb);
    if (hp->sandwich_norms) rmsnorm_rows(c, c->xb, c->xb, &L->ffn_post_norm, n, D);
    add_rows(c, c->x, c->xb, n, D);
}

int qrm_forward(qrm_ctx *c, const qrm_batch *b) {
    const qrm_hparams *hp = &c->m->hp;
    int D = hp->hidden;
    for (int i = 0; i < b->n; i++) {
        if (b->ids[i] < 0 || b->ids[i] >= hp->vocab_size)
            return qrm_ctx_fail(c, QRM_EINVAL, "token id %d out of range [0, %d)", b->ids[i],
                                hp->vocab_size);
        c->slot_pos[b->slot[i]] = b->pos[i];
    }
    embed(c, b);
    rope_tables(c, b);
    for (int l = 0; l + 1 < hp->n_layers; l++) {
        layer_qkv(c, b, l);
        layer_rest(c, b, l);
    }
    /* The last layer: every token's k and v go into the cache (later tokens
     * attend to them), but only the rows whose score is wanted need the
     * rest. Those rows are moved to the front and run as a smaller batch. */
    int last = hp->n_layers - 1;
    layer_qkv(c, b, last);
    const qrm_batch *out = b;
    int32_t pos[QRM_UBATCH], slot[QRM_UBATCH], pe[QRM_UBATCH], os[QRM_UBATCH];
    qrm_batch sub = {.n = b->n_out, .ids = b->ids, .pos = pos, .slot = slot, .prefix_end = pe,
                     .own_start = os};
    if (b->n_out >= 0 && b->n_out < b->n) {
        size_t qd = (size_t)hp->n_heads * hp->head_dim;
        for (int r = 0; r < b->n_out; r++) {
            int i = b->out_rows[r]; /* ascending, so i >= r: copies never overwrite a source */
            memmove(c->x + (size_t)r * D, c->x + (size_t)i * D, (size_t)D * sizeof(float));
            memmove(c->q + (size_t)r * qd, c->q + (size_t)i * qd, qd * sizeof(float));
            pos[r] = b->pos[i], slot[r] = b->slot[i], pe[r] = b->prefix_end[i], os[r] = b->own_start[i];
        }
        out = &sub;
    }
    if (out->n > 0) layer_rest(c, out, last);

    /* final norm and the score head at every row that was kept */
    rmsnorm_rows(c, c->xb, c->x, &c->m->out_norm, out->n, D);
    const float *sw = c->m->score.data;
    for (int i = 0; i < out->n; i++)
        for (int o = 0; o < hp->n_outputs; o++)
            c->scores[(size_t)i * hp->n_outputs + o] =
                c->k->dot_f32(c->xb + (size_t)i * D, sw + (size_t)o * D, D);
    return QRM_OK;
}
