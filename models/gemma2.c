/* Gemma 2: embeddings times sqrt(hidden), (1 + w) RMSNorms (the converter
 * adds the 1), a norm after attention and after the FFN as well as before,
 * attention scaled by query_pre_attn_scalar^-0.5 and soft-capped, a sliding
 * window on the even layers, GELU-tanh. final_logit_softcapping belongs to
 * the LM head: a score head never sees it, a vocabulary head applies it
 * (core/heads/vocab.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int read_config(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen) {
    double qpas = hp->head_dim, cap = 0;
    if (qrm_hf_opt_num(cfg, "query_pre_attn_scalar", &qpas, err, errlen) ||
        qrm_hf_opt_num(cfg, "attn_logit_softcapping", &cap, err, errlen) ||
        qrm_hf_opt_int(cfg, "sliding_window", 0, 1 << 24, &hp->sliding_window, err, errlen))
        return -1;
    if (!(qpas > 0)) FAIL("config.json: query_pre_attn_scalar must be positive");
    if (cap < 0) FAIL("config.json: attn_logit_softcapping must not be negative");
    hp->attn_scale = (float)(1.0 / sqrt(qpas));
    hp->attn_softcap = (float)cap;
    const qj_value *lt = qj_get_type(cfg, "layer_types", QJ_ARRAY);
    if (lt && (int)lt->len != hp->n_layers)
        FAIL("config.json: layer_types has %u entries for %d layers", lt->len, hp->n_layers);
    for (int l = 0; l < hp->n_layers; l++) {
        if (!lt) {
            hp->sliding[l] = l % 2 == 0;
            continue;
        }
        const qj_value *t = &lt->u.items[l];
        if (t->type != QJ_STRING) FAIL("config.json: layer_types entries must be strings");
        if (!strcmp(t->u.str, "sliding_attention")) hp->sliding[l] = 1;
        else if (!strcmp(t->u.str, "full_attention")) hp->sliding[l] = 0;
        else FAIL("config.json: unknown layer type '%s'", t->u.str);
    }
    return 0;
}

/* Llama's post_attention_layernorm is the norm before the FFN; Gemma 2
 * uses that name for the norm after attention and has its own pre-FFN one. */
static const char *const renames[][2] = {
    {"blk.%d.ffn_norm", "model.layers.%d.pre_feedforward_layernorm.weight"},
    {NULL, NULL},
};

const qrm_arch qrm_arch_gemma2 = {
    .name = "gemma2",
    .hf_prefix = "Gemma2",
    .sandwich_norms = 1,
    .norm_offset = 1.0f,
    .embed_scale_sqrt = 1,
    .tie_embeddings = 1,
    .act_key = "hidden_activation",
    .default_act = "gelu_pytorch_tanh",
    .hf_renames = renames,
    .read_config = read_config,
};
