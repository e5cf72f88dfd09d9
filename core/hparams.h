/* Everything the forward pass needs to know about a model, decoded from the
 * file's metadata (and, in the converter, from Hugging Face config.json). */
#ifndef QRM_HPARAMS_H
#define QRM_HPARAMS_H

#include <stdint.h>

#define QRM_MAX_LAYERS 512
#define QRM_MAX_OUTPUTS 64

typedef enum { QRM_ACT_SILU = 0, QRM_ACT_GELU_TANH = 1 } qrm_act;

typedef struct {
    char arch[16];              /* "llama", "mistral", "qwen2", "qwen3", "gemma2" */
    int vocab_size, hidden, n_layers, n_heads, n_kv_heads, head_dim, ffn;
    int max_positions;
    float rms_eps;
    double rope_theta;
    /* Llama-3 rope_scaling (rope_type "llama3"); factor 0 means none */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    qrm_act act;
    int qkv_bias;               /* Qwen2: q/k/v projections have biases */
    int qk_norm;                /* Qwen3: RMSNorm per head on q and k before RoPE */
    int sandwich_norms;         /* Gemma2: post-attention and post-FFN norms */
    float embed_scale;          /* Gemma2: sqrt(hidden); 1 otherwise */
    float attn_scale;           /* multiplier of q.k: 1/sqrt(head_dim) or query_pre_attn_scalar^-0.5 */
    float attn_softcap;         /* 0: none; else cap * tanh(s / cap) */
    int sliding_window;         /* 0: none */
    uint8_t sliding[QRM_MAX_LAYERS]; /* 1 where the layer uses the sliding window */
    int n_outputs;              /* score head rows */
    int32_t pad_token_id;       /* -1: none */
} qrm_hparams;

#endif
