/* The forward pass: token ids -> final hidden states (the head turns them
 * into scores: core/heads/, applied in core/ctx.c).
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
 *   h = rmsnorm(x) * out_norm                    (rows whose score is wanted)
 *
 * Work is split between threads by weight panels (matmuls), by tokens
 * (norms, activations) and by (block of tokens, KV head) (attention). Every
 * parallel region ends in a barrier, so work that only needs one token's
 * own row is fused into one pass per token: the residual add, the next norm
 * and the activation quantization for the next matmul; projections that
 * read the same input (q, k, v; gate, up) run as one region. A quantized
 * layer has ten regions (q/k/v, their norms and cache write, attention,
 * quantizing its output, wo, residual + norm, gate/up, activation, down,
 * residual + the next layer's norm), a float one nine; before this fusion a
 * quantized Llama or Qwen layer had nineteen. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "platform.h"
#include "profile.h"
#include "f16.h"

/* ---- parallel matmuls: y_i[M][N_i] = x[M][K] . W_i[N_i][K]^T for up to
 * three weights that read the same x. Quantized weights read c->qa, which
 * the caller filled with x's rows (quantize_rows); float weights read x. */

#define MAX_FUSED 3

typedef struct {
    qrm_ctx *c;
    const float *x;
    int M;
    const qrm_tensor *w[MAX_FUSED];
    float *y[MAX_FUSED];
    int chunk[MAX_FUSED];
    int first[MAX_FUSED + 1]; /* tasks [first[i], first[i + 1]) belong to weight i */
} mm_job;

static int is_quantized(const qrm_tensor *w) { return w->type == QRM_T_Q8 || w->type == QRM_T_Q4; }

static void gemm_task(void *arg, int task, int thread) {
    mm_job *j = arg;
    int wi = 0;
    while (task >= j->first[wi + 1]) wi++;
    task -= j->first[wi];
    const qrm_tensor *w = j->w[wi];
    const qrm_kernels *k = j->c->k;
    int N = (int)w->ne0, K = (int)w->ne1, chunk = j->chunk[wi];
    float *y = j->y[wi];
    (void)thread;
    if (is_quantized(w)) {
        int panels = N / QRM_PANEL;
        int p0 = task * chunk, p1 = p0 + chunk < panels ? p0 + chunk : panels;
        if (w->type == QRM_T_Q8) k->gemm_q8(&j->c->qa, &w->qw, p0, p1, y, (size_t)N);
        else k->gemm_q4(&j->c->qa, &w->qw, p0, p1, y, (size_t)N);
    } else {
        int n0 = task * chunk, n1 = n0 + chunk < N ? n0 + chunk : N;
        if (w->type == QRM_T_F32)
            k->gemm_f32(j->x, (size_t)K, j->M, w->data, K, n0, n1, y, (size_t)N);
        else
            k->gemm_f16(j->x, (size_t)K, j->M, w->data, K, n0, n1, y, (size_t)N);
    }
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* One parallel step of the pass, timed into its stage when a profile is
 * attached (qrm-bench e2e --profile). */
static void run(qrm_ctx *c, qrm_stage stage, int n, qrm_task_fn fn, void *arg) {
    if (!c->prof) {
        qrm_pool_run(c->pool, n, fn, arg);
        return;
    }
    double t0 = qrm_now();
    qrm_pool_run(c->pool, n, fn, arg);
    c->prof->seconds[stage] += qrm_now() - t0;
    c->prof->calls[stage]++;
}

/* A per-token step (norms, q/k post-processing, activations) over tokens
 * [0, n) in tasks of consecutive tokens: a task per token cost two atomic
 * operations on the pool's shared counters, which at two threads took
 * longer than a token's norm, and neighbouring tokens went to different
 * cores. Eight chunks a thread still balance. Tokens are independent, so
 * the chunking changes no result. */
typedef struct {
    qrm_task_fn fn;
    void *arg;
    int n, chunk;
} token_chunks;

static void token_chunk_task(void *arg, int task, int thread) {
    const token_chunks *t = arg;
    int i1 = (task + 1) * t->chunk < t->n ? (task + 1) * t->chunk : t->n;
    for (int i = task * t->chunk; i < i1; i++) t->fn(t->arg, i, thread);
}

static void run_tokens(qrm_ctx *c, qrm_stage stage, int n, qrm_task_fn fn, void *arg) {
    int chunk = n / (8 * c->n_threads);
    token_chunks t = {.fn = fn, .arg = arg, .n = n, .chunk = chunk > 1 ? chunk : 1};
    run(c, stage, (n + t.chunk - 1) / t.chunk, token_chunk_task, &t);
}

static void matmuls(qrm_ctx *c, qrm_stage stage, int nw, const qrm_tensor *const *w,
                    float *const *y, const float *x, int M) {
    int nt = c->n_threads;
    mm_job j = {.c = c, .x = x, .M = M};
    if (c->act_hook)
        for (int i = 0; i < nw; i++) c->act_hook(c->act_arg, w[i], x, M, (int)w[i]->ne1);
    c->qa.M = M;
    c->qa.K = (int)w[0]->ne1;
    /* Units are panels of 16 rows (rows for float weights), in few big
     * tasks. Prefill: each task reuses its panels across all tokens. A few
     * tokens (a GEMV): each task is one stream through the weights, and
     * every stream starts cold for the hardware prefetcher, so one task a
     * thread reads fastest. Eight a thread (12 int4 panels of a 3072-row
     * matrix each) streamed 35.6 GB/s at 2 threads where one a thread
     * streamed 43.2-43.9 (a scratch program, 267 MB of weights); in the pass,
     * tokens after 512 interleaved one by one (2 threads, qwen3-0.6b): int4
     * 8.55 -> 7.62 ms, int8 12.54 -> 11.77 (two a thread: 7.79, 11.88). */
    int units[MAX_FUSED], total = 0;
    for (int i = 0; i < nw; i++) {
        j.w[i] = w[i], j.y[i] = y[i];
        units[i] = is_quantized(w[i]) ? (int)w[i]->ne0 / QRM_PANEL : (int)w[i]->ne0;
        total += units[i];
    }
    int per_thread = M >= 16 ? 2 : 1;
    int chunk = nt == 1 ? total : ceil_div(total, nt * per_thread);
    j.first[0] = 0;
    for (int i = 0; i < nw; i++) {
        j.chunk[i] = chunk < units[i] ? chunk : units[i];
        if (!is_quantized(w[i]) && j.chunk[i] % QRM_PANEL)
            j.chunk[i] += QRM_PANEL - j.chunk[i] % QRM_PANEL;
        j.first[i + 1] = j.first[i] + ceil_div(units[i], j.chunk[i]);
    }
    if (c->prof)
        for (int i = 0; i < nw; i++) c->prof->gemm_ops[stage] += 2.0 * M * (double)w[i]->ne0 * (double)w[i]->ne1;
    run(c, stage, j.first[nw], gemm_task, &j);
}

static void matmul(qrm_ctx *c, qrm_stage stage, const qrm_tensor *w, const float *x, int M, float *y) {
    matmuls(c, stage, 1, &w, &y, x, M);
}

/* Rows [m0, m1) of x (row length K) into c->qa, the activations the
 * quantized GEMMs read. Row by row, so any split gives the same bytes. */
static void quantize_rows(qrm_ctx *c, const float *x, int m0, int m1, int K) {
    int G = K / QRM_QK;
    qrm_qact part = {.M = m1 - m0, .K = K, .q = c->qa.q + (size_t)m0 * K,
                     .d = c->qa.d + (size_t)m0 * G, .s = c->qa.s + (size_t)m0 * G};
    c->k->quantize_act(x + (size_t)m0 * K, (size_t)K, &part);
}

/* ---- per-token work ---- */

typedef struct {
    qrm_ctx *c;
    const qrm_batch *b;
    int layer;
    /* residual_norm_task: x += post(y) (y NULL: nothing to add; post NULL:
     * no norm on y); xb = norm(x); then xb quantized if `quantize`. */
    const float *y;
    const qrm_tensor *post, *norm;
    int quantize;
    int n_blocks; /* attention_task: the batch's attention blocks */
    int att_to_qa; /* attention_task: its output rows quantized into c->qa, not c->att */
} tok_job;

static void residual_norm_task(void *arg, int i, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    const qrm_kernels *k = c->k;
    int D = c->m->hp.hidden;
    float eps = c->m->hp.rms_eps;
    float *x = c->x + (size_t)i * D, *xb = c->xb + (size_t)i * D;
    (void)thread;
    if (j->y) {
        float *y = (float *)j->y + (size_t)i * D;
        if (j->post) k->rmsnorm_f32(y, y, j->post->data, D, eps);
        k->axpy_f32(x, 1.0f, y, D);
    }
    k->rmsnorm_f32(xb, x, j->norm->data, D, eps);
    if (j->quantize) quantize_rows(c, c->xb, i, i + 1, D);
}

/* x += post(y) for the batch's rows, then xb = norm(x), quantized when the
 * next matmuls read quantized activations. */
static void residual_norm(qrm_ctx *c, int n, const float *y, const qrm_tensor *post,
                          const qrm_tensor *norm, int quantize) {
    tok_job j = {.c = c, .y = y, .post = post, .norm = norm, .quantize = quantize};
    run_tokens(c, QRM_STAGE_NORM, n, residual_norm_task, &j);
}

/* Whether any of the weights that read one input is quantized: then that
 * input is quantized for them (float weights of the group read it as is). */
static int any_quantized(const qrm_tensor *a, const qrm_tensor *b, const qrm_tensor *c) {
    return is_quantized(a) || (b && is_quantized(b)) || (c && is_quantized(c));
}

static int qkv_quantized(const qrm_layer *L) { return any_quantized(&L->wq, &L->wk, &L->wv); }

/* The embedding row of token i (times embed_scale) and the RoPE angles of
 * its position: cos in [0, hd/2), sin in [hd/2, hd). */
static void embed_task(void *arg, int i, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    const qrm_batch *b = j->b;
    const qrm_tensor *e = &c->m->tok_embd;
    int D = c->m->hp.hidden, half = c->m->hp.head_dim / 2;
    float *x = c->x + (size_t)i * D;
    (void)thread;
    if (e->type == QRM_T_F32) {
        memcpy(x, (const float *)e->data + (size_t)b->ids[i] * D, (size_t)D * sizeof(float));
    } else {
        const uint16_t *row = (const uint16_t *)e->data + (size_t)b->ids[i] * D;
        for (int d = 0; d < D; d++) x[d] = qrm_f16_to_f32(row[d]);
    }
    if (c->m->hp.embed_scale != 1.0f) c->k->scale_f32(x, c->m->hp.embed_scale, D);
    float *cs = c->rope_cs + (size_t)i * 2 * half;
    for (int f = 0; f < half; f++) {
        double a = (double)b->pos[i] * c->inv_freq[f];
        cs[f] = (float)cos(a);
        cs[half + f] = (float)sin(a);
    }
}

static void add_bias(float *y, const qrm_tensor *b) {
    const float *bias = b->data;
    for (int n = 0; n < (int)b->ne0; n++) y[n] += bias[n];
}

/* Values past the f16 range would be stored as inf, and an attention block
 * multiplies the V rows of keys a row may not see by probability 0: 0 * inf
 * is NaN, which that row would not get alone. So the f16 cache saturates at
 * the largest half, +-65504: the f32_to_f16 kernel that stores it clamps
 * (in its vector loop; this scalar loop over every k and v took 1.8 % of a
 * 512-token pass). The int8 cache's keys and values are clamped the same way
 * here before they are quantized (its scales are halves too). */
static void saturate_f16(float *x, int n) {
    /* First a test on the bits, which the compiler vectorizes (integer
     * compares raise no FP exception, so it may evaluate them all): |x| past
     * 65504 (0x477fe000), inf or NaN. The rows almost never have one, and the
     * clamp below, a compare and branch per element, cost ~0.9 us a token and
     * layer (12-18 ms of a 512-token --kv q8 pass at 1 thread, about 1.2 %).
     * NaN stays NaN either way. */
    uint32_t b[8], over[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8) { /* eight lanes, as the compiler's vectors */
        memcpy(b, x + j, sizeof b);
        for (int l = 0; l < 8; l++) over[l] |= (b[l] & 0x7fffffffu) > 0x477fe000u;
    }
    for (; j < n; j++) {
        memcpy(b, x + j, sizeof b[0]);
        over[0] |= (b[0] & 0x7fffffffu) > 0x477fe000u;
    }
    if (!(over[0] | over[1] | over[2] | over[3] | over[4] | over[5] | over[6] | over[7])) return;
    for (int i = 0; i < n; i++) x[i] = x[i] > 65504.0f ? 65504.0f : x[i] < -65504.0f ? -65504.0f : x[i];
}

/* x rounded to the nearest integer, ties to even, for |x| < 2^22 (and NaN
 * for NaN, +-inf for +-inf): adding 1.5 * 2^23 leaves no fraction bits, so the
 * sum rounds in the default mode and the subtraction is exact. nearbyintf's
 * value but for the sign of a zero (checked over all 2^32 floats: the same
 * int8 after the clamp below), without a call into libm per element, which
 * the baseline x86-64 build cannot inline (roundss is SSE4.1). */
static inline float round_even(float x) { return (x + 0x1.8p23f) - 0x1.8p23f; }

/* One token's values of one KV head into an int8 V cache (ctx.h): quantized
 * with one scale for the head's head_dim values (so that the scale can be
 * folded into the probabilities), written as column `slot` of the head's
 * transposed q8 matrix `vt`: row d, group slot / 32, byte (slot % 32) of the
 * group's [k4][row][4] block. Returns the scale. */
static float vcache_q8(uint8_t *vt, size_t gn, size_t hd, size_t slot, const float *v) {
    /* eight independent maxima (exact in any order): one running maximum
     * was a chain of hd dependent compare-and-selects, most of this
     * function's time */
    float m8[8] = {0};
    size_t d = 0;
    for (; d + 8 <= hd; d += 8)
        for (int l = 0; l < 8; l++) m8[l] = fabsf(v[d + l]) > m8[l] ? fabsf(v[d + l]) : m8[l]; /* NaN: skipped */
    for (; d < hd; d++) m8[0] = fabsf(v[d]) > m8[0] ? fabsf(v[d]) : m8[0];
    float amax = 0.0f;
    for (int l = 0; l < 8; l++) amax = m8[l] > amax ? m8[l] : amax;
    float inv = amax < QRM_QACT_MIN_AMAX ? 0.0f : 127.0f / amax;
    uint8_t *blk = vt + slot / QRM_QK * (QRM_PANEL * QRM_QK) + (slot % QRM_QK) / 4 * (QRM_PANEL * 4) + slot % 4;
    for (size_t d0 = 0; d0 < hd; d0 += QRM_PANEL, blk += gn * (QRM_PANEL * QRM_QK))
        for (size_t r = 0; r < QRM_PANEL; r++) {
            float q = round_even(v[d0 + r] * inv); /* |q| <= 127 (v / amax <= 1), or NaN */
            blk[r * 4] = (uint8_t)(int8_t)(q >= -127.0f && q <= 127.0f ? q : 0.0f);
        }
    return amax < QRM_QACT_MIN_AMAX ? 0.0f : amax / 127.0f;
}

/* Biases (Qwen2), q/k per-head norm (Qwen3), RoPE, the V cache write of one
 * token for an f32 or f16 cache (an int8 one is written in kcache_task), and
 * its k ready for kcache_task (converted to f16 for an f16 cache, quantized
 * for an int8 one). */
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
    if (hp->qkv_bias) add_bias(q, &L->bq), add_bias(k, &L->bk), add_bias(v, &L->bv);
    for (int h = 0; h < hp->n_heads; h++) {
        if (hp->qk_norm) c->k->rmsnorm_f32(q + h * hd, q + h * hd, L->q_norm.data, hd, hp->rms_eps);
        c->k->rope_neox_f32(q + h * hd, cs, cs + half, hd);
    }
    for (int h = 0; h < hp->n_kv_heads; h++) {
        if (hp->qk_norm) c->k->rmsnorm_f32(k + h * hd, k + h * hd, L->k_norm.data, hd, hp->rms_eps);
        c->k->rope_neox_f32(k + h * hd, cs, cs + half, hd);
    }
    size_t slot = (size_t)j->b->slot[i];
    if (c->kv_k8) { /* groups of 32 never straddle two heads: head_dim % 32 == 0 */
        size_t G = kvd / QRM_QK;
        qrm_qact a = {.M = 1, .K = (int)kvd, .q = c->kxq.q + i * kvd, .d = c->kxq.d + i * G,
                      .s = c->kxq.s + i * G};
        saturate_f16(k, (int)kvd), saturate_f16(v, (int)kvd);
        c->k->quantize_act(k, kvd, &a);
        /* the queries too, times attn_scale first (the scores come out
         * scaled): once per token here, where its row is in L1, instead of
         * in each attention task (the same operations on the same values) */
        qrm_qact qa = {.M = 1, .K = (int)qd, .q = c->qxq.q + i * qd, .d = c->qxq.d + i * (qd / QRM_QK),
                       .s = c->qxq.s + i * (qd / QRM_QK)};
        c->k->scale_f32(q, hp->attn_scale, (int)qd);
        c->k->quantize_act(q, qd, &qa);
        return; /* v goes into the cache head by head, in kcache_task */
    }
    if (c->kv_f16) c->k->f32_to_f16(c->kx_h + i * kvd, k, (int)kvd); /* saturating */
    for (int h = 0; h < hp->n_kv_heads; h++) { /* V row `slot` of the head's block (ctx.h) */
        size_t block = ((size_t)j->layer * hp->n_kv_heads + h) * c->kv_cap * hd;
        if (c->kv_f16) c->k->f32_to_f16((uint16_t *)c->vcache + block + slot * hd, v + (size_t)h * hd, hd);
        else memcpy((float *)c->vcache + block + slot * hd, v + (size_t)h * hd, (size_t)hd * sizeof(float));
    }
}

/* The batch's int8 keys of KV head h into the K cache, row `slot` of the
 * head's q8 matrix (arch/kernels.h's layout: block (panel, group) holds
 * [k4][row][4] bytes, so a key's 4 consecutive dimensions are one dword),
 * and their scales as f16; then their values into the V cache. Head by head
 * over the batch, not token by token: consecutive slots share the V cache's
 * lines (a byte each), which two threads writing neighbouring tokens passed
 * back and forth between their cores. */
static void kcache_q8(qrm_ctx *c, const qrm_batch *b, int layer, int h) {
    const qrm_hparams *hp = &c->m->hp;
    size_t hd = (size_t)hp->head_dim, kvd = (size_t)hp->n_kv_heads * hd, G = hd / QRM_QK;
    size_t head = (size_t)layer * hp->n_kv_heads + (size_t)h, cap16 = qrm_ctx_kv_cap16(c);
    uint8_t *kq = (uint8_t *)c->kcache + head * cap16 * hd;
    uint16_t *ks = c->kscale + head * cap16 * G;
    for (int i = 0; i < b->n; i++) {
        size_t s = (size_t)b->slot[i], p = s / QRM_PANEL, r = s % QRM_PANEL;
        const int8_t *q = c->kxq.q + (size_t)i * kvd + (size_t)h * hd;
        const float *d = c->kxq.d + (size_t)i * (kvd / QRM_QK) + (size_t)h * G;
        for (size_t g = 0; g < G; g++) {
            uint8_t *blk = kq + (p * G + g) * (QRM_PANEL * QRM_QK);
            for (size_t k4 = 0; k4 < QRM_QK / 4; k4++)
                memcpy(blk + (k4 * QRM_PANEL + r) * 4, q + g * QRM_QK + k4 * 4, 4);
            ks[(p * G + g) * QRM_PANEL + r] = qrm_f32_to_f16(d[g]);
        }
    }
    size_t cap32 = qrm_ctx_kv_cap32(c);
    uint8_t *vt = (uint8_t *)c->vcache + head * cap32 * hd;
    float *vs = c->vscale + head * c->kv_cap;
    for (int i = 0; i < b->n; i++) {
        size_t s = (size_t)b->slot[i];
        vs[s] = vcache_q8(vt, cap32 / QRM_QK, hd, s, c->vx + (size_t)i * kvd + (size_t)h * hd);
    }
}

/* The batch's keys of KV head h into the transposed K cache: column
 * `slot % QRM_KTILE` of each head-dimension row of the slot's tile (ctx.h),
 * 16 tokens at a time (their 16 x head_dim values read, head_dim rows of
 * their tiles written: two tiles at most for consecutive slots, all in L1). One token at a time wrote one element
 * into each of head_dim cache lines: 5 % of a best-of-N run; row by row
 * over the whole batch, 1.4 %. */
static void kcache_task(void *arg, int h, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    const qrm_batch *b = j->b;
    const qrm_hparams *hp = &c->m->hp;
    size_t hd = (size_t)hp->head_dim, kvd = (size_t)hp->n_kv_heads * hd;
    size_t block = ((size_t)j->layer * hp->n_kv_heads + (size_t)h) * qrm_ctx_kv_cap64(c) * hd;
    (void)thread;
    if (c->kv_k8) {
        kcache_q8(c, b, j->layer, h);
        return;
    }
    for (int i0 = 0; i0 < b->n; i0 += 16) {
        int i1 = b->n - i0 < 16 ? b->n : i0 + 16;
        size_t at[16]; /* where each token's dimension 0 goes */
        for (int i = i0; i < i1; i++) {
            size_t s = (size_t)b->slot[i];
            at[i - i0] = block + s / QRM_KTILE * hd * QRM_KTILE + s % QRM_KTILE;
        }
        for (size_t d = 0; d < hd; d++) {
            size_t src = (size_t)h * hd + d;
            if (c->kv_f16) {
                uint16_t *k = (uint16_t *)c->kcache + d * QRM_KTILE;
                for (int i = i0; i < i1; i++) k[at[i - i0]] = c->kx_h[(size_t)i * kvd + src];
            } else {
                float *k = (float *)c->kcache + d * QRM_KTILE;
                for (int i = i0; i < i1; i++) k[at[i - i0]] = c->kx[(size_t)i * kvd + src];
            }
        }
    }
}

/* ---- attention ---- */

/* The slots token i sees in this layer: two contiguous ranges,
 * [r0[0], r1[0]) of the shared prefix and [r0[1], r1[1]) of its own
 * sequence up to itself. A sliding window trims the start of each; positions
 * increase along a range, so the first slot inside the window is found by
 * bisection. */
static void visible(const qrm_ctx *c, const qrm_batch *b, int layer, int i, int32_t r0[2],
                    int32_t r1[2]) {
    const qrm_hparams *hp = &c->m->hp;
    r0[0] = 0, r1[0] = b->prefix_end[i];
    r0[1] = b->own_start[i], r1[1] = b->slot[i] + 1;
    if (!hp->sliding[layer] || hp->sliding_window <= 0) return;
    for (int r = 0; r < 2; r++) {
        int32_t lo = r0[r], hi = r1[r]; /* first slot with pos - slot_pos < window */
        while (lo < hi) {
            int32_t mid = lo + (hi - lo) / 2;
            if (b->pos[i] - c->slot_pos[mid] >= hp->sliding_window) lo = mid + 1;
            else hi = mid;
        }
        r0[r] = lo;
    }
}

/* Splits the batch into attention blocks: up to att_tokens consecutive
 * tokens of one sequence (same prefix, same own range start, consecutive
 * slots, same window starts). Token t of a block then sees a prefix of the
 * block's key list, [seg0 | seg1 up to its own slot], so the block's rows
 * share one pass over the keys and values. Returns the number of blocks. */
static int attention_blocks(qrm_ctx *c, const qrm_batch *b, int layer) {
    int nb = 0;
    int32_t a0[2], a1[2], t0[2], t1[2];
    c->att_blk[0] = 0;
    if (b->n == 0) return 0;
    visible(c, b, layer, 0, a0, a1);
    for (int i = 1; i < b->n; i++) {
        int first = c->att_blk[nb];
        visible(c, b, layer, i, t0, t1);
        int joins = i - first < c->att_tokens && b->prefix_end[i] == b->prefix_end[first] &&
                    b->own_start[i] == b->own_start[first] &&
                    b->slot[i] == b->slot[first] + (i - first) && t0[0] == a0[0] && t0[1] == a0[1];
        if (!joins) {
            c->att_blk[++nb] = i;
            a0[0] = t0[0], a0[1] = t0[1];
        }
    }
    c->att_blk[++nb] = b->n;
    return nb;
}

/* The scores of a block's M = T x g query rows over the two key segments of
 * an int8 K cache: the rows, already times attn_scale and quantized like
 * activations (qkv_post_task, c->qxq), gathered into the thread's buffer,
 * then gemm_q8 against the head's keys, whole 16-slot panels into the
 * thread's scratch (each output exact and independent of the panels and
 * rows around it: arch/kernels.h), of which each segment's slots go to
 * columns from[r].. of sc. */
static void scores_q8(qrm_ctx *c, int layer, int kvh, int thread, int i0, int T, const int32_t r0[2],
                      const int from[2], const int cnt[2], float *sc) {
    const qrm_hparams *hp = &c->m->hp;
    int g = hp->n_heads / hp->n_kv_heads, M = T * g;
    size_t hd = (size_t)hp->head_dim, G = hd / QRM_QK, cap16 = qrm_ctx_kv_cap16(c);
    size_t head = (size_t)layer * hp->n_kv_heads + (size_t)kvh, rows = (size_t)thread * c->att_rows;
    size_t qd = (size_t)hp->n_heads * hd, gh = (size_t)g * hd, head0 = (size_t)kvh * gh;
    qrm_qact a = {.M = M, .K = (int)hd, .q = c->att_qa.q + rows * hd, .d = c->att_qa.d + rows * G,
                  .s = c->att_qa.s + rows * G};
    for (int t = 0; t < T; t++) { /* token i0 + t's g heads: g * hd bytes, g * G scales and sums */
        size_t src = (size_t)(i0 + t);
        memcpy(a.q + t * gh, c->qxq.q + src * qd + head0, gh);
        memcpy(a.d + t * (gh / QRM_QK), c->qxq.d + (src * qd + head0) / QRM_QK, gh / QRM_QK * sizeof(float));
        memcpy(a.s + t * (gh / QRM_QK), c->qxq.s + (src * qd + head0) / QRM_QK, gh / QRM_QK * sizeof(int32_t));
    }
    qrm_qweight w = {.type = QRM_WQ8, .N = (int)cap16, .K = (int)hd,
                     .q = (const uint8_t *)c->kcache + head * cap16 * hd, .d = c->kscale + head * cap16 * G};
    float *scr = c->att_kscr + rows * cap16;
    for (int r = 0; r < 2; r++) {
        if (cnt[r] <= 0) continue;
        int p0 = r0[r] / QRM_PANEL, p1 = (r0[r] + cnt[r] + QRM_PANEL - 1) / QRM_PANEL;
        if (cnt[1 - r] <= 0 && r0[r] == 0 && from[r] == 0 && (size_t)p1 * QRM_PANEL <= c->kv_cap) {
            /* one segment from slot 0 (a plain pass): its panels land where
             * the scores go, so straight into sc (the columns past the last
             * slot, up to the panel's end, are never read) */
            c->k->gemm_q8(&a, &w, p0, p1, sc, c->kv_cap);
            continue;
        }
        c->k->gemm_q8(&a, &w, p0, p1, scr, cap16);
        for (int m = 0; m < M; m++)
            memcpy(sc + (size_t)m * c->kv_cap + from[r], scr + (size_t)m * cap16 + r0[r],
                   (size_t)cnt[r] * sizeof(float));
    }
}

/* Probabilities times an int8 V cache: per key segment, the probabilities
 * (sc holds e^(s - max), inv the rows' 1 / sum: the softmax's last product
 * is done here, in the same pass and the same order as softmax_f32 would)
 * times each key's V scale laid out by slot over the segment's whole
 * 32-slot groups (zero outside it), quantized like activations, then
 * gemm_q8_acc against each 16-row panel of the head's transposed V, the
 * second segment's sums continuing the first's. The groups are slot groups,
 * and the callers place a shared prefix's end and every own range's start
 * on a group boundary (best-of-N, ctx.c), so a row's chain of groups is the
 * one a whole sequence gives. */
static void pv_q8(qrm_ctx *c, int layer, int kvh, int thread, const float *sc, const float *inv,
                  int M, const int32_t r0[2], const int from[2], const int cnt[2], float *ob) {
    const qrm_hparams *hp = &c->m->hp;
    size_t hd = (size_t)hp->head_dim, head = (size_t)layer * hp->n_kv_heads + (size_t)kvh;
    size_t cap32 = qrm_ctx_kv_cap32(c), gn = cap32 / QRM_QK, rows = (size_t)thread * c->att_rows;
    const float *vs = c->vscale + head * c->kv_cap;
    const uint8_t *vt = (const uint8_t *)c->vcache + head * cap32 * hd;
    float *pf = c->att_pf + rows * cap32;
    for (int r = 0; r < 2; r++) {
        if (cnt[r] <= 0) continue;
        int g0 = r0[r] / QRM_QK, g1 = (r0[r] + cnt[r] + QRM_QK - 1) / QRM_QK, K = (g1 - g0) * QRM_QK;
        int lead = r0[r] - g0 * QRM_QK;
        for (int m = 0; m < M; m++) {
            float *row = pf + (size_t)m * cap32;
            memset(row, 0, (size_t)lead * sizeof(float));
            c->k->scale_mul_f32(row + lead, sc + (size_t)m * c->kv_cap + from[r], inv[m], vs + r0[r],
                                cnt[r]);
            memset(row + lead + cnt[r], 0, (size_t)(K - lead - cnt[r]) * sizeof(float));
        }
        qrm_qact a = {.M = M, .K = K, .q = c->att_pa.q + rows * cap32, .d = c->att_pa.d + rows * gn,
                      .s = c->att_pa.s + rows * gn};
        c->k->quantize_act(pf, cap32, &a);
        /* every panel of V^T at once, a view of groups g0..g1 of each: the
         * kernel's tiles then span two panels (one call per 16-row panel
         * made 4 x 1 tiles, a quarter of the int8 loop at 4096 keys) */
        qrm_qweight w = {.type = QRM_WQ8, .N = (int)hd, .K = K, .q = vt + (size_t)g0 * (QRM_PANEL * QRM_QK),
                         .d = c->vones + (size_t)g0 * QRM_PANEL, .pgroups = (int)gn};
        c->k->gemm_q8_acc(&a, &w, 0, (int)(hd / QRM_PANEL), ob, hd);
    }
}

/* Attention of one block of tokens for the query heads that share one KV
 * head: rows (token, head); the scores of all rows over the block's keys,
 * then each row's softmax over the keys it may see (the rest of its row
 * set to 0), then probabilities times V for all rows at once. Both products
 * are wsum_rows: the scores with the keys in the vector lanes (the K cache
 * is stored transposed), each score one fused multiply-add per head
 * dimension in order, with no reduction across lanes; the outputs with the
 * head dimensions in the lanes. Each row's numbers are those of a block of
 * one: the kernel computes every output the same way whatever the rows and
 * columns around it (arch/kernels.h), the softmax sees exactly the row's
 * own keys, and the keys past them add 0 * (a finite V) = 0 at the end of
 * each sum. */
static void attention_task(void *arg, int task, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    const qrm_batch *b = j->b;
    const qrm_hparams *hp = &c->m->hp;
    int H = hp->n_heads, KV = hp->n_kv_heads, hd = hp->head_dim, g = H / KV;
    /* KV head by KV head: the threads share one head's K and V (256 KB at
     * 512 keys, f16) in their caches at a time, not every head's */
    int blk = task % j->n_blocks, kvh = task / j->n_blocks;
    int i0 = c->att_blk[blk], T = c->att_blk[blk + 1] - i0, M = T * g;
    size_t block = ((size_t)j->layer * KV + kvh) * c->kv_cap * hd; /* of V */
    size_t kblock = ((size_t)j->layer * KV + kvh) * qrm_ctx_kv_cap64(c) * hd;
    size_t ldq = (size_t)H * hd, head0 = (size_t)kvh * g * hd;
    float *qb = c->att_qb + (size_t)thread * c->att_rows * hd;
    float *ob = c->att_ob + (size_t)thread * c->att_rows * hd;
    float *sc = c->att_scores + (size_t)thread * c->att_rows * c->kv_cap;
    float *inv = c->kv_k8 ? c->att_inv + (size_t)thread * c->att_rows : NULL;
    float cap = hp->attn_softcap;

    int32_t r0[2], r1[2];
    visible(c, b, j->layer, i0, r0, r1);
    int n0 = r1[0] - r0[0];                          /* prefix keys, seen by all rows */
    int n = n0 + (b->slot[i0 + T - 1] + 1 - r0[1]); /* keys the last token sees */
    for (int t = 0; t < T && !c->kv_k8; t++) /* int8 keys: scores_q8 reads the quantized rows */
        memcpy(qb + (size_t)t * g * hd, c->q + (i0 + t) * ldq + head0, (size_t)g * hd * sizeof(float));
    /* the two key segments: the prefix, then the own range; column `from[r]`
     * of the scores, K cache column `r0[r]`, V cache row `row0[r]` */
    int from[2] = {0, n0}, cnt[2] = {n0, n - n0};
    size_t row0[2] = {block + (size_t)r0[0] * hd, block + (size_t)r0[1] * hd};
    if (c->kv_k8) scores_q8(c, j->layer, kvh, thread, i0, T, r0, from, cnt, sc); /* all n columns */
    else
        for (int m = 0; m < M; m++) memset(sc + (size_t)m * c->kv_cap, 0, (size_t)n * sizeof(float));
    for (int r = 0; r < 2 && !c->kv_k8; r++) /* each segment tile by tile (ctx.h) */
        for (int x = 0; x < cnt[r];) {
            size_t s = (size_t)(r0[r] + x), in = s % QRM_KTILE;
            int len = (int)(QRM_KTILE - in) < cnt[r] - x ? (int)(QRM_KTILE - in) : cnt[r] - x;
            size_t at = kblock + s / QRM_KTILE * (size_t)hd * QRM_KTILE + in;
            if (c->kv_f16)
                c->k->wsum_rows_f16(sc + from[r] + x, c->kv_cap, qb, (size_t)hd, M,
                                    (const uint16_t *)c->kcache + at, QRM_KTILE, hd, len);
            else
                c->k->wsum_rows_f32(sc + from[r] + x, c->kv_cap, qb, (size_t)hd, M,
                                    (const float *)c->kcache + at, QRM_KTILE, hd, len);
            x += len;
        }
    for (int t = 0; t < T; t++) {
        int nt = n - (T - 1 - t); /* consecutive slots: token t sees T-1-t fewer keys */
        for (int h = 0; h < g; h++) {
            float *s = sc + (size_t)(t * g + h) * c->kv_cap;
            if (!c->kv_k8) c->k->scale_f32(s, hp->attn_scale, nt); /* int8: in the queries */
            if (cap > 0)
                /* tanh in double, as the head's soft-cap (core/heads/vocab.c) */
                for (int x = 0; x < nt; x++) s[x] = cap * (float)tanh((double)(s[x] / cap));
            if (c->kv_k8) inv[t * g + h] = c->k->softmax_unscaled_f32(s, nt);
            else c->k->softmax_f32(s, nt);
            memset(s + nt, 0, (size_t)(n - nt) * sizeof(float));
        }
    }
    memset(ob, 0, (size_t)M * hd * sizeof(float));
    if (c->kv_k8) pv_q8(c, j->layer, kvh, thread, sc, inv, M, r0, from, cnt, ob);
    for (int r = 0; r < 2 && !c->kv_k8; r++) {
        if (c->kv_f16)
            c->k->wsum_rows_f16(ob, (size_t)hd, sc + from[r], c->kv_cap, M,
                                (const uint16_t *)c->vcache + row0[r], (size_t)hd, cnt[r], hd);
        else
            c->k->wsum_rows_f32(ob, (size_t)hd, sc + from[r], c->kv_cap, M,
                                (const float *)c->vcache + row0[r], (size_t)hd, cnt[r], hd);
    }
    if (j->att_to_qa) { /* each token's g heads: whole groups of its o-projection input row */
        size_t Gq = ldq / QRM_QK;
        for (int t = 0; t < T; t++) {
            size_t row = (size_t)(i0 + t);
            qrm_qact a = {.M = 1, .K = g * hd, .q = c->qa.q + row * ldq + head0,
                          .d = c->qa.d + row * Gq + head0 / QRM_QK, .s = c->qa.s + row * Gq + head0 / QRM_QK};
            c->k->quantize_act(ob + (size_t)t * g * hd, (size_t)g * hd, &a);
        }
        return;
    }
    for (int t = 0; t < T; t++)
        memcpy(c->att + (i0 + t) * ldq + head0, ob + (size_t)t * g * hd, (size_t)g * hd * sizeof(float));
}

/* ---- feed-forward and the layer ---- */

/* act(gate) * up of one token, quantized for the down projection. */
static void act_task(void *arg, int i, int thread) {
    tok_job *j = arg;
    qrm_ctx *c = j->c;
    int F = c->m->hp.ffn;
    (void)thread;
    if (c->m->hp.act == QRM_ACT_GELU_TANH)
        c->k->gelu_tanh_mul_f32(c->ffn_a + (size_t)i * F, c->ffn_b + (size_t)i * F, F);
    else
        c->k->silu_mul_f32(c->ffn_a + (size_t)i * F, c->ffn_b + (size_t)i * F, F);
    if (j->quantize) quantize_rows(c, c->ffn_a, i, i + 1, F);
}

/* Attention output rows, quantized for the output projection. */
static void quantize_att_task(void *arg, int i, int thread) {
    tok_job *j = arg;
    const qrm_hparams *hp = &j->c->m->hp;
    (void)thread;
    quantize_rows(j->c, j->c->att, i, i + 1, hp->n_heads * hp->head_dim);
}

/* First half of a layer, xb = attn_norm(x) ready (and quantized): q, k, v
 * of every token, and k, v into the cache. */
static void layer_qkv(qrm_ctx *c, const qrm_batch *b, int l) {
    const qrm_layer *L = &c->m->layers[l];
    tok_job j = {.c = c, .b = b, .layer = l};
    const qrm_tensor *w[3] = {&L->wq, &L->wk, &L->wv};
    float *y[3] = {c->q, c->kx, c->vx};
    matmuls(c, QRM_STAGE_QKV_GEMM, 3, w, y, c->xb, b->n);
    run_tokens(c, QRM_STAGE_QKV_POST, b->n, qkv_post_task, &j);
    run(c, QRM_STAGE_KV_STORE, c->m->hp.n_kv_heads, kcache_task, &j);
}

/* Second half: attention, output projection, feed-forward. Ends with the
 * feed-forward output in xb, not yet added to x (the caller fuses that add
 * with the next norm). */
static void layer_rest(qrm_ctx *c, const qrm_batch *b, int l) {
    const qrm_hparams *hp = &c->m->hp;
    const qrm_layer *L = &c->m->layers[l];
    int n = b->n;
    tok_job j = {.c = c, .b = b, .layer = l};
    j.n_blocks = attention_blocks(c, b, l);
    /* A quantized output projection reads only c->qa: each attention task
     * quantizes its rows there while they are in its L1 (the same bytes
     * quantize_att_task gives: groups are quantized one by one), when a KV
     * head's query heads span whole groups and nobody (a calibration hook)
     * wants the float rows. That saves writing c->att (4 MB at 512 tokens,
     * from both cores) and reading it back in a step of its own. */
    int qa_direct = is_quantized(&L->wo) && !c->act_hook &&
                    (hp->n_heads / hp->n_kv_heads * hp->head_dim) % QRM_QK == 0;
    j.att_to_qa = qa_direct;
    run(c, QRM_STAGE_ATTENTION, j.n_blocks * hp->n_kv_heads, attention_task, &j);
    if (is_quantized(&L->wo) && !qa_direct) run_tokens(c, QRM_STAGE_ATT_QUANT, n, quantize_att_task, &j);
    matmul(c, QRM_STAGE_O_GEMM, &L->wo, c->att, n, c->xb);
    residual_norm(c, n, c->xb, hp->sandwich_norms ? &L->attn_post_norm : NULL, &L->ffn_norm,
                  any_quantized(&L->w_gate, &L->w_up, NULL));

    const qrm_tensor *w[2] = {&L->w_gate, &L->w_up};
    float *y[2] = {c->ffn_a, c->ffn_b};
    matmuls(c, QRM_STAGE_UP_GEMM, 2, w, y, c->xb, n);
    j.quantize = is_quantized(&L->w_down);
    run_tokens(c, QRM_STAGE_ACT, n, act_task, &j);
    matmul(c, QRM_STAGE_DOWN_GEMM, &L->w_down, c->ffn_a, n, c->xb);
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
    tok_job ej = {.c = c, .b = b};
    run_tokens(c, QRM_STAGE_EMBED, b->n, embed_task, &ej);
    const qrm_layer *first = &c->m->layers[0];
    residual_norm(c, b->n, NULL, NULL, &first->attn_norm, qkv_quantized(first));
    for (int l = 0; l + 1 < hp->n_layers; l++) {
        const qrm_layer *L = &c->m->layers[l], *next = &c->m->layers[l + 1];
        int rc = qrm_ctx_check_abort(c);
        if (rc) return rc;
        layer_qkv(c, b, l);
        layer_rest(c, b, l);
        residual_norm(c, b->n, c->xb, hp->sandwich_norms ? &L->ffn_post_norm : NULL,
                      &next->attn_norm, qkv_quantized(next));
    }
    /* The last layer: every token's k and v go into the cache (later tokens
     * attend to them), but only the rows whose score is wanted need the
     * rest. Those rows are moved to the front and run as a smaller batch. */
    int last = hp->n_layers - 1;
    const qrm_layer *L = &c->m->layers[last];
    int rc = qrm_ctx_check_abort(c);
    if (rc) return rc;
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
            if (c->kv_k8) { /* the rows attention reads: q quantized (qkv_post_task) */
                size_t gq = qd / QRM_QK;
                memmove(c->qxq.q + (size_t)r * qd, c->qxq.q + (size_t)i * qd, qd);
                memmove(c->qxq.d + (size_t)r * gq, c->qxq.d + (size_t)i * gq, gq * sizeof(float));
                memmove(c->qxq.s + (size_t)r * gq, c->qxq.s + (size_t)i * gq, gq * sizeof(int32_t));
            } else {
                memmove(c->q + (size_t)r * qd, c->q + (size_t)i * qd, qd * sizeof(float));
            }
            pos[r] = b->pos[i], slot[r] = b->slot[i], pe[r] = b->prefix_end[i], os[r] = b->own_start[i];
        }
        out = &sub;
    }
    if (out->n > 0) layer_rest(c, out, last);

    /* the last residual add and the final norm of every row that was kept:
     * xb holds their final hidden states, for the head (core/heads/) */
    residual_norm(c, out->n, c->xb, hp->sandwich_norms ? &L->ffn_post_norm : NULL,
                  &c->m->out_norm, 0);
    return QRM_OK;
}

/* A head's matmul on the context's threads: y[M][N] = x[M][K] W^T, x
 * quantized first for a packed W (the vocabulary head of a causal LM). */
void qrm_ctx_head_matmul(void *ctx, const qrm_tensor *w, const float *x, int M, float *y) {
    qrm_ctx *c = ctx;
    if (is_quantized(w)) quantize_rows(c, x, 0, M, (int)w->ne1);
    matmul(c, QRM_STAGE_HEAD, w, x, M, y);
}

void qrm_ctx_head_parallel(void *ctx, int n, void (*fn)(void *arg, int i, int thread), void *arg) {
    qrm_ctx *c = ctx;
    run(c, QRM_STAGE_HEAD, n, fn, arg);
}

void *qrm_ctx_head_scratch(void *ctx, size_t bytes) {
    qrm_ctx *c = ctx;
    if (bytes > c->head_scratch_size) {
        free(c->head_scratch);
        c->head_scratch = malloc(bytes);
        c->head_scratch_size = c->head_scratch ? bytes : 0;
    }
    return c->head_scratch;
}
