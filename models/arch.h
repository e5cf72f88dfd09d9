/* Architecture descriptors: one per supported decoder family, each in its
 * own file (models/llama.c, ...), listed once in models/registry.c.
 *
 * A Hugging Face class name is an architecture prefix and a head suffix:
 * "Qwen2" + "ForProcessRewardModel". The descriptor owns the prefix, the
 * config.json fields its family reads beyond the common ones, its feature
 * flags and the tensor names where they differ from Llama's; the head
 * (core/heads/) owns the suffix. The forward pass reads only the flags in
 * qrm_hparams. docs/adding-an-architecture.md walks through adding one. */
#ifndef QRM_ARCH_H
#define QRM_ARCH_H

#include <stddef.h>

#include "hparams.h"
#include "json.h"

typedef struct qrm_arch {
    const char *name;           /* stored in the file's metadata: "llama" */
    const char *hf_prefix;      /* "Llama" */
    /* Feature flags, independent of each other. */
    int qkv_bias;               /* q/k/v projections carry biases */
    int qk_norm;                /* RMSNorm per head on q and k before RoPE */
    int sandwich_norms;         /* a norm after attention and after the FFN too */
    float norm_offset;          /* HF norms compute x * (norm_offset + w): the converter adds it */
    int embed_scale_sqrt;       /* embeddings are multiplied by sqrt(hidden) */
    int tie_embeddings;         /* transformers' default of tie_word_embeddings */
    const char *act_key;        /* config.json key of the activation: "hidden_act" */
    const char *default_act;    /* when the key is absent */
    /* Tensor roles whose Hugging Face name differs from Llama's: pairs of
     * {role name, HF name}, ending with {NULL, NULL}; NULL for none. */
    const char *const (*hf_renames)[2];
    /* Reads the family's own config.json fields (sliding window, softcaps,
     * query scaling) after the common ones; NULL when there are none. */
    int (*read_config)(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen);
} qrm_arch;

/* The registry (models/registry.c). */
const qrm_arch *qrm_arch_by_name(const char *name);
/* The descriptor whose prefix starts the HF class name; *suffix gets the rest. */
const qrm_arch *qrm_arch_by_hf_class(const char *hf_class, const char **suffix);
/* "Llama, Mistral, Qwen2, Qwen3, Gemma2" (the prefixes, for messages). */
void qrm_arch_prefixes(char *buf, size_t n);

/* config.json -> hp through the descriptor (models/hf_config.c): the common
 * fields, the activation, the flags, then the family's read_config. */
int qrm_arch_read_hf_config(const qrm_arch *a, const qj_value *cfg, qrm_hparams *hp, char *err,
                            size_t errlen);
/* Hugging Face's name for a tensor role in this architecture. */
const char *qrm_arch_hf_tensor_name(const qrm_arch *a, const char *role_name,
                                    const char *default_hf_name);

/* Helpers for read_config hooks: an optional config.json integer or number
 * (absent or null leaves *out as it is). */
int qrm_hf_opt_int(const qj_value *cfg, const char *key, int lo, int hi, int *out, char *err,
                   size_t errlen);
int qrm_hf_opt_num(const qj_value *cfg, const char *key, double *out, char *err, size_t errlen);
/* read_config of Qwen2/Qwen3: use_sliding_window = true, which no released
 * checkpoint sets, is refused rather than half-supported. */
int qrm_hf_refuse_sliding_window(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen);

#endif
