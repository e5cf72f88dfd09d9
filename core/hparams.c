/* Hyperparameters <-> the "model" object of a .qrm file's metadata JSON.
 * The reader validates everything: the file is untrusted input. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

void qrm_hparams_to_json(const qrm_hparams *hp, qj_buf *b) {
    qj_buf_puts(b, "{\"arch\":");
    qj_buf_put_string(b, hp->arch, strlen(hp->arch));
    qj_buf_printf(b,
                  ",\"vocab_size\":%d,\"hidden_size\":%d,\"n_layers\":%d,\"n_heads\":%d,"
                  "\"n_kv_heads\":%d,\"head_dim\":%d,\"ffn_size\":%d,\"max_positions\":%d,"
                  "\"rms_eps\":%.9g,\"rope_theta\":%.17g",
                  hp->vocab_size, hp->hidden, hp->n_layers, hp->n_heads, hp->n_kv_heads,
                  hp->head_dim, hp->ffn, hp->max_positions, (double)hp->rms_eps, hp->rope_theta);
    if (hp->rope_factor > 0)
        qj_buf_printf(b,
                      ",\"rope_scaling\":{\"type\":\"llama3\",\"factor\":%.17g,"
                      "\"low_freq_factor\":%.17g,\"high_freq_factor\":%.17g,"
                      "\"original_max_position_embeddings\":%d}",
                      hp->rope_factor, hp->rope_low_freq_factor, hp->rope_high_freq_factor,
                      hp->rope_orig_max_pos);
    qj_buf_printf(b,
                  ",\"activation\":\"%s\",\"qkv_bias\":%s,\"qk_norm\":%s,\"sandwich_norms\":%s,"
                  "\"embed_scale\":%.9g,\"attn_scale\":%.9g,\"attn_softcap\":%.9g,"
                  "\"sliding_window\":%d,\"sliding_layers\":[",
                  hp->act == QRM_ACT_GELU_TANH ? "gelu_tanh" : "silu",
                  hp->qkv_bias ? "true" : "false", hp->qk_norm ? "true" : "false",
                  hp->sandwich_norms ? "true" : "false", (double)hp->embed_scale,
                  (double)hp->attn_scale, (double)hp->attn_softcap, hp->sliding_window);
    for (int i = 0; i < hp->n_layers; i++) qj_buf_printf(b, "%s%d", i ? "," : "", hp->sliding[i]);
    qj_buf_printf(b, "],\"n_outputs\":%d,\"pad_token_id\":%d}", hp->n_outputs,
                  (int)hp->pad_token_id);
}

static int get_int(const qj_value *o, const char *key, int lo, int hi, int *out, char *err,
                   size_t errlen) {
    int64_t v;
    if (!qj_get_int(o, key, &v)) {
        snprintf(err, errlen, "metadata: '%s' missing or not an integer", key);
        return -1;
    }
    if (v < lo || v > hi) {
        snprintf(err, errlen, "metadata: '%s' = %lld out of range [%d, %d]", key, (long long)v, lo,
                 hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int get_num(const qj_value *o, const char *key, double lo, double hi, double *out,
                   char *err, size_t errlen) {
    double v;
    if (!qj_get_num(o, key, &v) || !isfinite(v) || v < lo || v > hi) {
        snprintf(err, errlen, "metadata: '%s' missing, not a number or out of range", key);
        return -1;
    }
    *out = v;
    return 0;
}

int qrm_hparams_from_json(const qj_value *o, qrm_hparams *hp, char *err, size_t errlen) {
    memset(hp, 0, sizeof *hp);
    if (!o || o->type != QJ_OBJECT) {
        snprintf(err, errlen, "metadata: 'model' is not an object");
        return -1;
    }
    const char *arch = qj_get_str(o, "arch");
    static const char *archs[] = {"llama", "mistral", "qwen2", "qwen3", "gemma2"};
    int known = 0;
    for (size_t i = 0; arch && i < sizeof archs / sizeof archs[0]; i++) known |= !strcmp(arch, archs[i]);
    if (!known) {
        snprintf(err, errlen, "metadata: unknown architecture '%s'", arch ? arch : "(missing)");
        return -1;
    }
    snprintf(hp->arch, sizeof hp->arch, "%s", arch);
    double d;
    if (get_int(o, "vocab_size", 1, 1 << 24, &hp->vocab_size, err, errlen) ||
        get_int(o, "hidden_size", 1, 1 << 16, &hp->hidden, err, errlen) ||
        get_int(o, "n_layers", 1, QRM_MAX_LAYERS, &hp->n_layers, err, errlen) ||
        get_int(o, "n_heads", 1, 1024, &hp->n_heads, err, errlen) ||
        get_int(o, "n_kv_heads", 1, 1024, &hp->n_kv_heads, err, errlen) ||
        get_int(o, "head_dim", 2, 1024, &hp->head_dim, err, errlen) ||
        get_int(o, "ffn_size", 1, 1 << 20, &hp->ffn, err, errlen) ||
        get_int(o, "max_positions", 1, 1 << 24, &hp->max_positions, err, errlen) ||
        get_int(o, "n_outputs", 1, QRM_MAX_OUTPUTS, &hp->n_outputs, err, errlen) ||
        get_int(o, "sliding_window", 0, 1 << 24, &hp->sliding_window, err, errlen))
        return -1;
    int pad;
    if (get_int(o, "pad_token_id", -1, 1 << 24, &pad, err, errlen)) return -1;
    hp->pad_token_id = pad;
    if (hp->head_dim % 2 || hp->n_heads % hp->n_kv_heads) {
        snprintf(err, errlen, "metadata: head_dim must be even and n_heads a multiple of n_kv_heads");
        return -1;
    }
    if (get_num(o, "rms_eps", 0, 1, &d, err, errlen)) return -1;
    hp->rms_eps = (float)d;
    if (get_num(o, "rope_theta", 1, 1e12, &hp->rope_theta, err, errlen)) return -1;
    if (get_num(o, "embed_scale", 0, 1e6, &d, err, errlen)) return -1;
    hp->embed_scale = (float)d;
    if (get_num(o, "attn_scale", 0, 1e6, &d, err, errlen)) return -1;
    hp->attn_scale = (float)d;
    if (get_num(o, "attn_softcap", 0, 1e9, &d, err, errlen)) return -1;
    hp->attn_softcap = (float)d;
    const char *act = qj_get_str(o, "activation");
    if (act && !strcmp(act, "silu")) hp->act = QRM_ACT_SILU;
    else if (act && !strcmp(act, "gelu_tanh")) hp->act = QRM_ACT_GELU_TANH;
    else {
        snprintf(err, errlen, "metadata: unknown activation '%s'", act ? act : "(missing)");
        return -1;
    }
    hp->qkv_bias = qj_get_bool(o, "qkv_bias", 0);
    hp->qk_norm = qj_get_bool(o, "qk_norm", 0);
    hp->sandwich_norms = qj_get_bool(o, "sandwich_norms", 0);
    const qj_value *sl = qj_get_type(o, "sliding_layers", QJ_ARRAY);
    if (!sl || (int)sl->len != hp->n_layers) {
        snprintf(err, errlen, "metadata: 'sliding_layers' must list one flag per layer");
        return -1;
    }
    for (int i = 0; i < hp->n_layers; i++) {
        const qj_value *v = &sl->u.items[i];
        if (v->type != QJ_NUMBER || (v->u.num != 0 && v->u.num != 1)) {
            snprintf(err, errlen, "metadata: 'sliding_layers' entries must be 0 or 1");
            return -1;
        }
        hp->sliding[i] = (uint8_t)v->u.num;
    }
    const qj_value *rs = qj_get_type(o, "rope_scaling", QJ_OBJECT);
    if (rs) {
        const char *type = qj_get_str(rs, "type");
        if (!type || strcmp(type, "llama3")) {
            snprintf(err, errlen, "metadata: unsupported rope_scaling type '%s'",
                     type ? type : "(missing)");
            return -1;
        }
        if (get_num(rs, "factor", 1e-6, 1e6, &hp->rope_factor, err, errlen) ||
            get_num(rs, "low_freq_factor", 1e-6, 1e6, &hp->rope_low_freq_factor, err, errlen) ||
            get_num(rs, "high_freq_factor", 1e-6, 1e6, &hp->rope_high_freq_factor, err, errlen) ||
            get_int(rs, "original_max_position_embeddings", 1, 1 << 24, &hp->rope_orig_max_pos,
                    err, errlen))
            return -1;
        if (hp->rope_high_freq_factor <= hp->rope_low_freq_factor) {
            snprintf(err, errlen, "metadata: rope_scaling high_freq_factor must exceed low_freq_factor");
            return -1;
        }
    }
    return 0;
}
