/* Model families: Hugging Face config.json -> qrm_hparams.
 *
 * This is the one file that knows how each supported architecture differs;
 * the forward pass (core/forward.c) only reads the resulting flags:
 *
 *   family   HF architectures                       differences
 *   llama    LlamaForSequenceClassification         rope_scaling "llama3"
 *   mistral  MistralForSequenceClassification       sliding_window on every layer (when set)
 *   qwen2    Qwen2ForSequenceClassification         q/k/v biases
 *   qwen3    Qwen3ForSequenceClassification         q/k RMSNorm per head, explicit head_dim
 *   gemma2   Gemma2ForSequenceClassification        embed * sqrt(hidden), (1 + w) norms
 *            (the converter bakes the 1 in), sandwich norms, attention softcap,
 *            query_pre_attn_scalar, sliding window on even layers, GELU-tanh
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "families.h"

static const struct {
    const char *hf;
    const char *arch;
} archs[] = {
    {"LlamaForSequenceClassification", "llama"},
    {"MistralForSequenceClassification", "mistral"},
    {"Qwen2ForSequenceClassification", "qwen2"},
    {"Qwen3ForSequenceClassification", "qwen3"},
    {"Gemma2ForSequenceClassification", "gemma2"},
};

const char *qrm_supported_architectures(void) {
    return "LlamaForSequenceClassification, MistralForSequenceClassification, "
           "Qwen2ForSequenceClassification, Qwen3ForSequenceClassification, "
           "Gemma2ForSequenceClassification";
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int req_int(const qj_value *cfg, const char *key, int lo, int hi, int *out, char *err,
                   size_t errlen) {
    int64_t v;
    if (!qj_get(cfg, key)) FAIL("config.json: missing '%s'", key);
    if (!qj_get_int(cfg, key, &v)) FAIL("config.json: '%s' is not an integer", key);
    if (v < lo || v > hi) FAIL("config.json: '%s' = %lld is out of range", key, (long long)v);
    *out = (int)v;
    return 0;
}

/* Optional integer: absent or null leaves *out unchanged. */
static int opt_int(const qj_value *cfg, const char *key, int lo, int hi, int *out, char *err,
                   size_t errlen) {
    const qj_value *v = qj_get(cfg, key);
    if (!v || v->type == QJ_NULL) return 0;
    return req_int(cfg, key, lo, hi, out, err, errlen);
}

static int opt_num(const qj_value *cfg, const char *key, double *out, char *err, size_t errlen) {
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
    if (opt_num(rs, "factor", &hp->rope_factor, err, errlen) ||
        opt_num(rs, "low_freq_factor", &hp->rope_low_freq_factor, err, errlen) ||
        opt_num(rs, "high_freq_factor", &hp->rope_high_freq_factor, err, errlen) ||
        req_int(rs, "original_max_position_embeddings", 1, 1 << 24, &hp->rope_orig_max_pos, err,
                errlen))
        return -1;
    if (!(hp->rope_factor > 0) || !(hp->rope_low_freq_factor > 0) ||
        !(hp->rope_high_freq_factor > hp->rope_low_freq_factor))
        FAIL("config.json: rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0");
    return 0;
}

int qrm_hparams_from_hf_config(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen) {
    memset(hp, 0, sizeof *hp);
    if (!cfg || cfg->type != QJ_OBJECT) FAIL("config.json: not a JSON object");
    const qj_value *al = qj_get_type(cfg, "architectures", QJ_ARRAY);
    if (!al || al->len == 0 || al->u.items[0].type != QJ_STRING)
        FAIL("config.json: missing 'architectures'");
    const char *hf = al->u.items[0].u.str;
    const char *arch = NULL;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(hf, archs[i].hf)) arch = archs[i].arch;
    if (!arch)
        FAIL("unsupported architecture '%s' (supported: %s)", hf, qrm_supported_architectures());
    snprintf(hp->arch, sizeof hp->arch, "%s", arch);
    int gemma2 = !strcmp(arch, "gemma2"), qwen2 = !strcmp(arch, "qwen2"),
        qwen3 = !strcmp(arch, "qwen3"), mistral = !strcmp(arch, "mistral");

    if (req_int(cfg, "vocab_size", 1, 1 << 24, &hp->vocab_size, err, errlen) ||
        req_int(cfg, "hidden_size", 1, 1 << 16, &hp->hidden, err, errlen) ||
        req_int(cfg, "intermediate_size", 1, 1 << 20, &hp->ffn, err, errlen) ||
        req_int(cfg, "num_hidden_layers", 1, QRM_MAX_LAYERS, &hp->n_layers, err, errlen) ||
        req_int(cfg, "num_attention_heads", 1, 1024, &hp->n_heads, err, errlen))
        return -1;
    hp->n_kv_heads = hp->n_heads;
    hp->max_positions = 2048;
    if (opt_int(cfg, "num_key_value_heads", 1, 1024, &hp->n_kv_heads, err, errlen) ||
        opt_int(cfg, "max_position_embeddings", 1, 1 << 24, &hp->max_positions, err, errlen))
        return -1;
    if (hp->n_heads % hp->n_kv_heads)
        FAIL("config.json: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
             hp->n_heads, hp->n_kv_heads);
    /* head_dim: read it when present (Qwen3, Gemma2, Mistral-Nemo); never assume hidden/heads */
    hp->head_dim = hp->hidden / hp->n_heads;
    if (!qj_get(cfg, "head_dim") || qj_get(cfg, "head_dim")->type == QJ_NULL) {
        if (hp->hidden % hp->n_heads)
            FAIL("config.json: hidden_size %d is not divisible by num_attention_heads %d and no head_dim is given",
                 hp->hidden, hp->n_heads);
    } else if (req_int(cfg, "head_dim", 2, 1024, &hp->head_dim, err, errlen)) {
        return -1;
    }
    if (hp->head_dim % 2) FAIL("config.json: head_dim %d is odd", hp->head_dim);

    double eps = 1e-6, theta = 10000.0;
    if (opt_num(cfg, "rms_norm_eps", &eps, err, errlen) ||
        opt_num(cfg, "rope_theta", &theta, err, errlen))
        return -1;
    if (!(eps > 0 && eps < 1)) FAIL("config.json: rms_norm_eps out of range");
    if (!(theta > 1)) FAIL("config.json: rope_theta out of range");
    hp->rms_eps = (float)eps;
    hp->rope_theta = theta;
    if (read_rope_scaling(cfg, hp, err, errlen)) return -1;

    const char *act = qj_get_str(cfg, gemma2 ? "hidden_activation" : "hidden_act");
    if (!act) act = qj_get_str(cfg, "hidden_act");
    if (!act) act = gemma2 ? "gelu_pytorch_tanh" : "silu";
    if (!strcmp(act, "silu")) hp->act = QRM_ACT_SILU;
    else if (!strcmp(act, "gelu_pytorch_tanh")) hp->act = QRM_ACT_GELU_TANH;
    else FAIL("config.json: activation '%s' is not supported (supported: silu, gelu_pytorch_tanh)", act);

    if (qj_get_bool(cfg, "attention_bias", 0) && !qwen2)
        FAIL("config.json: attention_bias = true is not supported for %s", hf);
    if (qj_get_bool(cfg, "mlp_bias", 0)) FAIL("config.json: mlp_bias = true is not supported");
    hp->qkv_bias = qwen2;
    hp->qk_norm = qwen3;
    hp->embed_scale = 1.0f;
    hp->attn_scale = (float)(1.0 / sqrt((double)hp->head_dim));
    if ((qwen2 || qwen3) && qj_get_bool(cfg, "use_sliding_window", 0))
        FAIL("config.json: use_sliding_window = true is not supported for %s", hf);
    if (mistral) {
        int w = 0;
        if (opt_int(cfg, "sliding_window", 0, 1 << 24, &w, err, errlen)) return -1;
        hp->sliding_window = w;
        for (int l = 0; l < hp->n_layers; l++) hp->sliding[l] = w > 0;
    }
    if (gemma2) {
        hp->sandwich_norms = 1;
        hp->embed_scale = (float)sqrt((double)hp->hidden);
        double qpas = hp->head_dim, cap = 0;
        if (opt_num(cfg, "query_pre_attn_scalar", &qpas, err, errlen) ||
            opt_num(cfg, "attn_logit_softcapping", &cap, err, errlen) ||
            opt_int(cfg, "sliding_window", 0, 1 << 24, &hp->sliding_window, err, errlen))
            return -1;
        if (!(qpas > 0)) FAIL("config.json: query_pre_attn_scalar must be positive");
        if (cap < 0) FAIL("config.json: attn_logit_softcapping must not be negative");
        hp->attn_scale = (float)(1.0 / sqrt(qpas));
        hp->attn_softcap = (float)cap;
        /* final_logit_softcapping belongs to the LM head, not to the score */
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
        if (hp->sliding_window == 0)
            for (int l = 0; l < hp->n_layers; l++) hp->sliding[l] = 0;
    }

    /* the score head: num_labels, or the size of id2label (HF's default is 2) */
    hp->n_outputs = 2;
    const qj_value *id2label = qj_get_type(cfg, "id2label", QJ_OBJECT);
    if (id2label) hp->n_outputs = (int)id2label->len;
    int labels = hp->n_outputs;
    if (opt_int(cfg, "num_labels", 1, QRM_MAX_OUTPUTS, &labels, err, errlen)) return -1;
    if (id2label && labels != hp->n_outputs)
        FAIL("config.json: num_labels is %d but id2label has %d entries", labels, hp->n_outputs);
    hp->n_outputs = labels;
    if (hp->n_outputs < 1 || hp->n_outputs > QRM_MAX_OUTPUTS)
        FAIL("config.json: %d labels is out of range [1, %d]", hp->n_outputs, QRM_MAX_OUTPUTS);
    int pad = -1;
    if (opt_int(cfg, "pad_token_id", 0, 1 << 24, &pad, err, errlen)) return -1;
    hp->pad_token_id = pad;
    return 0;
}
