/* The in-memory model: tensors of a mapped .qrm file by role, and the
 * hyperparameters. Internal to qrm (the public face is core/qrm.h). */
#ifndef QRM_MODEL_H
#define QRM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "head.h"
#include "hparams.h"
#include "json.h"
#include "kernels.h"
#include "platform.h"
#include "tensor.h"

typedef struct {
    qrm_tensor attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, attn_post_norm;
    qrm_tensor ffn_norm, ffn_post_norm, w_gate, w_up, w_down;
} qrm_layer;

/* Tensor roles: the single table that names every backbone tensor of the
 * file, its Hugging Face source and its shape. Used by the loader and the
 * converter. */

typedef struct {
    const char *name;           /* ours; "%d" is the layer */
    const char *hf_name;        /* Hugging Face's; "%d" is the layer */
    qrm_role_kind kind;
    size_t offset;              /* of the qrm_tensor in qrm_layer / qrm_model */
    int per_layer;
} qrm_role;

/* Which roles exist for these hparams, and their shapes. */
int qrm_role_count(void);
const qrm_role *qrm_role_get(int i);
/* 1 when the role is present in a model with hp, and its shape. */
int qrm_role_shape(const qrm_role *r, const qrm_hparams *hp, int64_t *ne0, int64_t *ne1);

struct qrm_model {
    qrm_mapped_file map;        /* when opened from a path */
    const uint8_t *base;
    size_t size;
    char *meta_text;            /* NUL-terminated copy of the metadata JSON */
    qj_doc *meta;
    qrm_hparams hp;
    char quant[8];              /* "f32", "f16", "int8", "int4" */
    qrm_tensor tok_embd, out_norm;
    qrm_head head;              /* what turns hidden states into scores */
    qrm_layer *layers;
    const char *tokenizer_json, *tokenizer_config_json;
    size_t tokenizer_json_len, tokenizer_config_json_len;
    uint64_t n_params;
    /* The tokenizer and chat template, built from the blobs on the first
     * text call of any context and then shared (both are immutable). */
    qrm_mutex *text_mu;
    void *text;
};

/* Frees the shared tokenizer + template state (core/text/ctx_text.c). */
void qrm_text_state_free(void *text);

/* Parses and validates a whole file image. 0 or -1 with err. */
int qrm_model_load_image(struct qrm_model *m, const uint8_t *base, size_t size, char *err,
                         size_t errlen);
void qrm_model_unload(struct qrm_model *m);


#endif
