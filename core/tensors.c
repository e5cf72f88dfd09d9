/* The tensor role table and tensor sizes: what every backbone tensor of a
 * .qrm file is called (the head's are in core/heads/), where it comes from in a Hugging Face checkpoint, its shape. */
#include <stddef.h>
#include <string.h>

#include "model.h"

#define L(field) offsetof(qrm_layer, field), 1
#define M(field) offsetof(struct qrm_model, field), 0

static const qrm_role roles[] = {
    {"tok_embd", "model.embed_tokens.weight", QRM_ROLE_EMBED, M(tok_embd)},
    {"out_norm", "model.norm.weight", QRM_ROLE_NORM, M(out_norm)},
    {"blk.%d.attn_norm", "model.layers.%d.input_layernorm.weight", QRM_ROLE_NORM, L(attn_norm)},
    {"blk.%d.attn_q", "model.layers.%d.self_attn.q_proj.weight", QRM_ROLE_MATRIX, L(wq)},
    {"blk.%d.attn_k", "model.layers.%d.self_attn.k_proj.weight", QRM_ROLE_MATRIX, L(wk)},
    {"blk.%d.attn_v", "model.layers.%d.self_attn.v_proj.weight", QRM_ROLE_MATRIX, L(wv)},
    {"blk.%d.attn_o", "model.layers.%d.self_attn.o_proj.weight", QRM_ROLE_MATRIX, L(wo)},
    {"blk.%d.attn_q_bias", "model.layers.%d.self_attn.q_proj.bias", QRM_ROLE_BIAS, L(bq)},
    {"blk.%d.attn_k_bias", "model.layers.%d.self_attn.k_proj.bias", QRM_ROLE_BIAS, L(bk)},
    {"blk.%d.attn_v_bias", "model.layers.%d.self_attn.v_proj.bias", QRM_ROLE_BIAS, L(bv)},
    {"blk.%d.attn_q_norm", "model.layers.%d.self_attn.q_norm.weight", QRM_ROLE_NORM, L(q_norm)},
    {"blk.%d.attn_k_norm", "model.layers.%d.self_attn.k_norm.weight", QRM_ROLE_NORM, L(k_norm)},
    {"blk.%d.attn_post_norm", "model.layers.%d.post_attention_layernorm.weight", QRM_ROLE_NORM,
     L(attn_post_norm)},
    /* Llama's "post_attention_layernorm" is the pre-FFN norm; Gemma2 renames
     * it (models/gemma2.c). */
    {"blk.%d.ffn_norm", "model.layers.%d.post_attention_layernorm.weight", QRM_ROLE_NORM,
     L(ffn_norm)},
    {"blk.%d.ffn_post_norm", "model.layers.%d.post_feedforward_layernorm.weight", QRM_ROLE_NORM,
     L(ffn_post_norm)},
    {"blk.%d.ffn_gate", "model.layers.%d.mlp.gate_proj.weight", QRM_ROLE_MATRIX, L(w_gate)},
    {"blk.%d.ffn_up", "model.layers.%d.mlp.up_proj.weight", QRM_ROLE_MATRIX, L(w_up)},
    {"blk.%d.ffn_down", "model.layers.%d.mlp.down_proj.weight", QRM_ROLE_MATRIX, L(w_down)},
};

int qrm_role_count(void) { return (int)(sizeof roles / sizeof roles[0]); }
const qrm_role *qrm_role_get(int i) { return &roles[i]; }

static int is(const qrm_role *r, const char *name) { return strcmp(r->name, name) == 0; }

int qrm_role_shape(const qrm_role *r, const qrm_hparams *hp, int64_t *ne0, int64_t *ne1) {
    int64_t D = hp->hidden, q = (int64_t)hp->n_heads * hp->head_dim,
            kv = (int64_t)hp->n_kv_heads * hp->head_dim;
    *ne1 = 1;
    if (is(r, "tok_embd")) *ne0 = hp->vocab_size, *ne1 = D;
    else if (is(r, "out_norm") || is(r, "blk.%d.attn_norm") || is(r, "blk.%d.ffn_norm")) *ne0 = D;
    else if (is(r, "blk.%d.attn_q")) *ne0 = q, *ne1 = D;
    else if (is(r, "blk.%d.attn_k") || is(r, "blk.%d.attn_v")) *ne0 = kv, *ne1 = D;
    else if (is(r, "blk.%d.attn_o")) *ne0 = D, *ne1 = q;
    else if (is(r, "blk.%d.attn_q_bias")) { if (!hp->qkv_bias) return 0; *ne0 = q; }
    else if (is(r, "blk.%d.attn_k_bias") || is(r, "blk.%d.attn_v_bias")) {
        if (!hp->qkv_bias) return 0;
        *ne0 = kv;
    } else if (is(r, "blk.%d.attn_q_norm") || is(r, "blk.%d.attn_k_norm")) {
        if (!hp->qk_norm) return 0;
        *ne0 = hp->head_dim;
    } else if (is(r, "blk.%d.attn_post_norm") || is(r, "blk.%d.ffn_post_norm")) {
        if (!hp->sandwich_norms) return 0;
        *ne0 = D;
    } else if (is(r, "blk.%d.ffn_gate") || is(r, "blk.%d.ffn_up")) *ne0 = hp->ffn, *ne1 = D;
    else if (is(r, "blk.%d.ffn_down")) *ne0 = D, *ne1 = hp->ffn;
    else return 0;
    return 1;
}

static int mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

uint64_t qrm_tensor_nbytes(uint32_t type, uint64_t ne0, uint64_t ne1, int *ok) {
    uint64_t n;
    *ok = 0;
    if (ne0 == 0 || ne1 == 0 || !mul_ok(ne0, ne1, &n)) return 0;
    switch (type) {
    case QRM_T_F32: if (!mul_ok(n, 4, &n)) return 0; break;
    case QRM_T_F16: if (!mul_ok(n, 2, &n)) return 0; break;
    case QRM_T_BYTES: break;
    case QRM_T_Q8:
    case QRM_T_Q4:
        if (ne0 % QRM_PANEL || ne1 % QRM_QK) return 0;
        {
            /* quants (1 or 1/2 byte each) then one f16 scale per 32 */
            uint64_t q = type == QRM_T_Q8 ? n : n / 2, s = n / QRM_QK * 2;
            if (q > UINT64_MAX - s) return 0;
            n = q + s;
        }
        break;
    default: return 0;
    }
    *ok = 1;
    return n;
}

const char *qrm_tensor_type_name(uint32_t type) {
    static const char *names[] = {"f32", "f16", "q8", "q4", "bytes"};
    return type < QRM_T_COUNT ? names[type] : "unknown";
}
