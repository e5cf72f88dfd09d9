/* The scoring context (internal): KV cache, scratch, thread pool, and the
 * batch description the forward pass consumes. */
#ifndef QRM_CTX_H
#define QRM_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "model.h"
#include "pool.h"
#include "qrm.h"

/* Tokens go through the weights in chunks of at most this many: big enough
 * that each weight panel is reused across many tokens (GEMM, not GEMV),
 * small enough that the FFN scratch stays a few tens of MB. */
#define QRM_UBATCH 512
/* Query rows (tokens x heads of one KV head) an attention block aims for. */
#define QRM_ATT_ROWS 16

/* A batch of tokens for one forward pass. Token i has position pos[i] (RoPE,
 * sliding window), writes its K/V into cache slot slot[i], and attends to
 * the slots [0, prefix_end[i]) and [own_start[i], slot[i]]. A plain
 * sequence uses prefix_end = 0, own_start = 0; best-of-N responses use the
 * prompt's slots as the prefix and their own segment after it. */
typedef struct {
    int n;
    const int32_t *ids, *pos, *slot, *prefix_end, *own_start;
    /* Rows whose hidden state is wanted, ascending (n_out of them), or
     * n_out = -1 for all. The last layer runs only those rows past k/v, and
     * c->xb holds their final hidden states in that order. */
    int n_out;
    const int32_t *out_rows;
} qrm_batch;

struct qrm_ctx {
    const qrm_model *m;
    const qrm_kernels *k;
    qrm_pool *pool;
    int n_threads;
    char err[QRM_ERR_MAX];

    /* KV cache, f32 or f16 (kv_f16). V: [layer][kv head][slot][head_dim];
     * K transposed in tiles of QRM_KTILE slots: [layer][kv head][slot /
     * QRM_KTILE][head_dim][QRM_KTILE] (below), so that a slot range's keys
     * lie along the vector lanes and the scores q.K^T, like P.V, are
     * wsum_rows with no reduction across lanes.
     * With QRM_KV_Q8 (kv_k8) both are int8 and both products are gemm_q8:
     * each (layer, KV head) block of K is a q8 weight matrix (arch/kernels.h)
     * with one row per slot (kv_cap rounded up to 16) and head_dim columns,
     * its f16 scales in kscale; each block of V is V transposed as a q8
     * matrix, head_dim rows and one column per slot (kv_cap rounded up to
     * 32), quantized per slot with the scale in vscale (folded into the
     * probabilities, so the matrix's own scales are all 1: vones). */
    void *kcache, *vcache;      /* qrm_alloc_huge'd, of these sizes */
    size_t kcache_bytes, vcache_bytes;
    int kv_f16, kv_k8;
    size_t kv_esize;            /* bytes per cached value unless kv_k8: 4 or 2 */
    uint16_t *kscale;           /* kv_k8: [layer][kv head][kv_cap16 * head_dim / 32] */
    float *vscale;              /* kv_k8: [layer][kv head][kv_cap] */
    uint16_t *vones;            /* kv_k8: head_dim * kv_cap32 / 32 f16 ones, the scales of V^T (every panel, every group) */
    int32_t *slot_pos;          /* position of the token in each slot */
    size_t kv_cap;              /* slots allocated */
    size_t kv_limit;            /* the cap the user allows */
    size_t len;                 /* incremental sequence: slots [0, len) in use */

    /* scratch for up to QRM_UBATCH tokens */
    float *x, *xb, *q, *kx, *vx, *att, *ffn_a, *ffn_b;
    uint16_t *kx_h;             /* kx as f16 on its way into an f16 K cache */
    qrm_qact kxq;               /* kx quantized on its way into an int8 K cache */
    qrm_qact qxq;               /* kv_k8: q times attn_scale, quantized, [T][n_heads * head_dim] */
    /* Attention runs in blocks of att_tokens consecutive tokens of one
     * sequence x the query heads of one KV head: att_rows = att_tokens x
     * heads per KV head rows share each pass over the keys and values. */
    int att_tokens, att_rows;
    float *att_scores;          /* [n_threads][att_rows][kv_cap] */
    float *att_qb, *att_ob;     /* [n_threads][att_rows][head_dim] */
    qrm_qact att_qa;            /* kv_k8: the queries quantized, [n_threads][att_rows][head_dim] */
    float *att_kscr;            /* kv_k8: gemm_q8's scores, [n_threads][att_rows][kv_cap16] */
    float *att_pf;              /* kv_k8: probabilities x V scales, [n_threads][att_rows][kv_cap32] */
    qrm_qact att_pa;            /* kv_k8: att_pf quantized, the same shape */
    float *att_inv;             /* kv_k8: each row's softmax 1 / sum, [n_threads][att_rows] */
    int32_t *att_blk;           /* [QRM_UBATCH + 1]: first token of each block */
    qrm_qact qa;
    double *inv_freq;           /* [head_dim / 2] */
    float *rope_cs;             /* [QRM_UBATCH][head_dim] cos then sin */
    float *hid;                 /* [QRM_UBATCH][hidden]: hidden states for a per-token head */
    void *head_scratch;         /* the head's own buffer (qrm_head_run.scratch) */
    size_t head_scratch_size;
    struct qrm_template *chat_template; /* qrm_ctx_set_chat_template's, else NULL: the model's */
    /* Called with every matmul's float input before it runs (NULL: never);
     * the converter's activation statistics (tools/calib.c) use it. */
    void (*act_hook)(void *arg, const qrm_tensor *w, const float *x, int M, int K);
    void *act_arg;

    /* Time per stage of the forward pass (profile.h), or NULL: no timing. */
    struct qrm_profile_s *prof;

    int (*abort_cb)(void *user); /* qrm_ctx_params.abort_cb, or NULL */
    void *abort_user;

};

/* The f32 / f16 K cache, transposed in tiles of QRM_KTILE slots: slot s's
 * value of head dimension d is element (s / QRM_KTILE) * head_dim *
 * QRM_KTILE + d * QRM_KTILE + s % QRM_KTILE of its (layer, KV head) block.
 * A tile of the scores then reads one contiguous run (head_dim x 64 values:
 * 16 KB at head_dim 128 in f16), one
 * stream the hardware prefetcher follows, instead of a line or two of
 * head_dim rows a whole cache row apart: those rows were too short for the
 * prefetcher, and a token's scores over 600 f16 keys (qwen3-0.6b, one
 * thread, every layer and head out of cache) took 2.3 ms against 1.5 ms in
 * tiles (measured outside the pass). A tile never moves when the cache
 * grows. */
#define QRM_KTILE 64
static inline size_t qrm_ctx_kv_cap64(const qrm_ctx *c) {
    return (c->kv_cap + QRM_KTILE - 1) / QRM_KTILE * QRM_KTILE;
}

/* Slots of a K block when the keys are int8: kv_cap rounded up to the
 * q8 layout's 16-row panels. */
static inline size_t qrm_ctx_kv_cap16(const qrm_ctx *c) { return (c->kv_cap + 15) & ~(size_t)15; }
/* Slots of a V block when the values are int8: whole groups of 32. */
static inline size_t qrm_ctx_kv_cap32(const qrm_ctx *c) { return (c->kv_cap + 31) & ~(size_t)31; }

/* Bytes of K and V one cached token takes: layers x KV heads x (K + V) of
 * one head; int8: a key is head_dim bytes and an f16 scale per 32, a value
 * head_dim bytes and one float scale. */
static inline size_t qrm_ctx_kv_bytes_per_token(const qrm_ctx *c) {
    const qrm_hparams *hp = &c->m->hp;
    size_t hd = (size_t)hp->head_dim;
    size_t kv = c->kv_k8 ? (hd + hd / QRM_QK * 2) + (hd + sizeof(float)) : 2 * hd * c->kv_esize;
    return (size_t)hp->n_layers * hp->n_kv_heads * kv;
}

/* A short name of the cache type: "f32", "f16" or "q8" (int8 keys and values). */
static inline const char *qrm_ctx_kv_name(const qrm_ctx *c) {
    return c->kv_k8 ? "q8" : c->kv_f16 ? "f16" : "f32";
}

/* Runs one batch (n <= QRM_UBATCH) through the model; the first rows of
 * c->xb get the final hidden states of the rows b->out_rows asks for (of
 * every token if n_out < 0). */
int qrm_forward(qrm_ctx *c, const qrm_batch *b);
/* A head's matmul on the context's threads (qrm_head_run.matmul; core/forward.c). */
void qrm_ctx_head_matmul(void *ctx, const qrm_tensor *w, const float *x, int M, float *y);
void qrm_ctx_head_parallel(void *ctx, int n, void (*fn)(void *arg, int i, int thread), void *arg);
void *qrm_ctx_head_scratch(void *ctx, size_t bytes);
/* What a head's apply may use: the context's kernels, threads and scratch. */
static inline qrm_head_run qrm_ctx_head_run(qrm_ctx *c) {
    return (qrm_head_run){c->k, qrm_ctx_head_matmul, qrm_ctx_head_parallel, qrm_ctx_head_scratch, c};
}
int qrm_ctx_fail(qrm_ctx *c, int status, const char *fmt, ...);
/* QRM_EABORTED (with the message) when the caller's abort callback asks to
 * stop, else QRM_OK. Called on the calling thread only, never by the pool's
 * workers, so the callback needs no locking of its own. */
static inline int qrm_ctx_check_abort(qrm_ctx *c) {
    if (c->abort_cb && c->abort_cb(c->abort_user))
        return qrm_ctx_fail(c, QRM_EABORTED, "aborted by the context's abort callback");
    return QRM_OK;
}

#endif
