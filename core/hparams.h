/* Everything the forward pass needs to know about a backbone, decoded from
 * the file's metadata (and, in the converter, from Hugging Face config.json
 * through the architecture descriptors in models/). */
#ifndef QRM_HPARAMS_H
#define QRM_HPARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define QRM_MAX_LAYERS 512

typedef enum { QRM_ACT_SILU = 0, QRM_ACT_GELU_TANH = 1 } qrm_act;

typedef struct {
    char arch[16];              /* a name from the registry in models/registry.c */
    int vocab_size, hidden, n_layers, n_heads, n_kv_heads, head_dim, ffn;
    int max_positions;
    float rms_eps;
    double rope_theta;
    /* Llama-3 rope_scaling (rope_type "llama3"); factor 0 means none */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    qrm_act act;
    int qkv_bias;               /* q/k/v projections have biases (Qwen2) */
    int qk_norm;                /* RMSNorm per head on q and k before RoPE (Qwen3) */
    int sandwich_norms;         /* post-attention and post-FFN norms (Gemma2) */
    float embed_scale;          /* sqrt(hidden) for Gemma2; 1 otherwise */
    float attn_scale;           /* multiplier of q.k: 1/sqrt(head_dim) or query_pre_attn_scalar^-0.5 */
    float attn_softcap;         /* 0: none; else cap * tanh(s / cap) */
    int sliding_window;         /* 0: none */
    uint8_t sliding[QRM_MAX_LAYERS]; /* 1 where the layer uses the sliding window */
    int32_t pad_token_id;       /* -1: none */
} qrm_hparams;

/* The one validator of hyperparameters, used by the converter (keys of
 * config.json, src "config.json") and by the loader (keys of the file's
 * metadata, src "metadata"): reads every integer field of the table in
 * core/hparams.c under the key of its side, checks its range, then the
 * relations between fields. Fields the table marks optional keep the value
 * hp already holds when absent (or null). 0, or -1 with a one-line message
 * naming the key. */
typedef enum { QRM_KEYS_META = 0, QRM_KEYS_HF = 1 } qrm_key_set;
int qrm_hparams_read_ints(const qj_value *o, qrm_key_set keys, qrm_hparams *hp, char *err,
                          size_t errlen);
int qrm_hparams_check(const qrm_hparams *hp, qrm_key_set keys, char *err, size_t errlen);

/* Metadata <-> hparams. */
void qrm_hparams_to_json(const qrm_hparams *hp, qj_buf *b);
int qrm_hparams_from_json(const qj_value *meta, qrm_hparams *hp, char *err, size_t errlen);

#endif
