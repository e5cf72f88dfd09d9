/* Hugging Face config.json -> qrm_hparams: the fields every family shares,
 * read through the one validator (core/hparams.c), then the descriptor's
 * flags and its own fields. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

int qrm_hf_opt_int(const qj_value *cfg, const char *key, int lo, int hi, int *out, char *err,
                   size_t errlen) {
    const qj_value *v = qj_get(cfg, key);
    int64_t x;
    if (!v || v->type == QJ_NULL) return 0;
    if (!qj_number_to_int(v, &x)) FAIL("config.json: '%s' is not an integer", key);
    if (x < lo || x > hi)
        FAIL("config.json: '%s' = %lld is out of range [%d, %d]", key, (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

int qrm_hf_opt_num(const qj_value *cfg, const char *key, double *out, char *err, size_t errlen) {
    const qj_value *v = qj_get(cfg, key);
    if (!v || v->type == QJ_NULL) return 0;
    if (v->type != QJ_NUMBER || !isfinite(v->u.num)) FAIL("config.json: '%s' is not a number", key);
    *out = v->u.num;
    return 0;
}

static int read_rope_scaling(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen) {
    const qj_value *rs = qj_get(cfg, "rope_scaling");
    if (!rs || rs->type == QJ_NULL) return 0;
    if (rs->type != QJ_OBJECT) FAIL("config.json: 'rope_scaling' is not an object");
    const char *type = qj_get_str(rs, "rope_type");
    if (!type) type = qj_get_str(rs, "type");
    if (!type) FAIL("config.json: rope_scaling has no 'rope_type'");
    if (!strcmp(type, "default")) return 0;
    if (strcmp(type, "llama3"))
        FAIL("config.json: rope_scaling type '%s' is not supported (supported: llama3)", type);
    /* original_max_position_embeddings lives inside rope_scaling */
    hp->rope_orig_max_pos = 0;
    if (qrm_hf_opt_num(rs, "factor", &hp->rope_factor, err, errlen) ||
        qrm_hf_opt_num(rs, "low_freq_factor", &hp->rope_low_freq_factor, err, errlen) ||
        qrm_hf_opt_num(rs, "high_freq_factor", &hp->rope_high_freq_factor, err, errlen) ||
        qrm_hf_opt_int(rs, "original_max_position_embeddings", 1, 1 << 24, &hp->rope_orig_max_pos,
                       err, errlen))
        return -1;
    if (!hp->rope_orig_max_pos)
        FAIL("config.json: rope_scaling has no 'original_max_position_embeddings'");
    if (!(hp->rope_factor > 0) || !(hp->rope_low_freq_factor > 0) ||
        !(hp->rope_high_freq_factor > hp->rope_low_freq_factor))
        FAIL("config.json: rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0");
    return 0;
}

int qrm_arch_read_hf_config(const qrm_arch *a, const qj_value *cfg, qrm_hparams *hp, char *err,
                            size_t errlen) {
    memset(hp, 0, sizeof *hp);
    snprintf(hp->arch, sizeof hp->arch, "%s", a->name);
    hp->max_positions = 2048;
    hp->pad_token_id = -1;
    if (qrm_hparams_read_ints(cfg, QRM_KEYS_HF, hp, err, errlen)) return -1;
    if (!hp->n_kv_heads) hp->n_kv_heads = hp->n_heads;
    /* head_dim: read when present (Qwen3, Gemma2, Mistral-Nemo); never
     * assumed to be hidden / heads when it is given */
    if (!hp->head_dim) {
        if (hp->hidden % hp->n_heads)
            FAIL("config.json: hidden_size %d is not divisible by num_attention_heads %d and no head_dim is given",
                 hp->hidden, hp->n_heads);
        hp->head_dim = hp->hidden / hp->n_heads;
    }
    double eps = 1e-6, theta = 10000.0;
    if (qrm_hf_opt_num(cfg, "rms_norm_eps", &eps, err, errlen) ||
        qrm_hf_opt_num(cfg, "rope_theta", &theta, err, errlen) ||
        read_rope_scaling(cfg, hp, err, errlen))
        return -1;
    hp->rms_eps = (float)eps;
    hp->rope_theta = theta;

    const char *act = qj_get_str(cfg, a->act_key);
    if (!act) act = qj_get_str(cfg, "hidden_act");
    if (!act) act = a->default_act;
    if (!strcmp(act, "silu")) hp->act = QRM_ACT_SILU;
    else if (!strcmp(act, "gelu_pytorch_tanh")) hp->act = QRM_ACT_GELU_TANH;
    else FAIL("config.json: activation '%s' is not supported (supported: silu, gelu_pytorch_tanh)", act);

    if (qj_get_bool(cfg, "attention_bias", 0) && !a->qkv_bias)
        FAIL("config.json: attention_bias = true is not supported for %s", a->name);
    if (qj_get_bool(cfg, "mlp_bias", 0)) FAIL("config.json: mlp_bias = true is not supported");
    hp->qkv_bias = a->qkv_bias;
    hp->qk_norm = a->qk_norm;
    hp->sandwich_norms = a->sandwich_norms;
    hp->embed_scale = a->embed_scale_sqrt ? (float)sqrt((double)hp->hidden) : 1.0f;
    hp->attn_scale = (float)(1.0 / sqrt((double)hp->head_dim));
    if (a->read_config && a->read_config(cfg, hp, err, errlen)) return -1;
    if (hp->sliding_window == 0)
        for (int l = 0; l < hp->n_layers; l++) hp->sliding[l] = 0;
    return qrm_hparams_check(hp, QRM_KEYS_HF, err, errlen);
}

int qrm_hf_refuse_sliding_window(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen) {
    if (qj_get_bool(cfg, "use_sliding_window", 0))
        FAIL("config.json: use_sliding_window = true is not supported for %s", hp->arch);
    return 0;
}

const char *qrm_arch_hf_tensor_name(const qrm_arch *a, const char *role, const char *dflt) {
    for (int i = 0; a->hf_renames && a->hf_renames[i][0]; i++)
        if (!strcmp(a->hf_renames[i][0], role)) return a->hf_renames[i][1];
    return dflt;
}
