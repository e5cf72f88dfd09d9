/* Hyperparameters: the one validator (shared by the converter and the
 * loader) and the "model" object of a .qrm file's metadata JSON. The file
 * is untrusted input: everything read is checked. */
#include "hparams.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static const char *src_name(qrm_key_set keys) { return keys == QRM_KEYS_HF ? "config.json" : "metadata"; }

/* Integer fields: the key in the metadata, the key in config.json (NULL when
 * the converter derives the field itself), the range, and whether
 * config.json may leave it out (the metadata never may). */
#define OFF(f) offsetof(qrm_hparams, f)
static const struct {
    const char *meta, *hf;
    size_t off;
    int lo, hi, hf_optional;
} ints[] = {
    {"vocab_size", "vocab_size", OFF(vocab_size), 1, 1 << 24, 0},
    {"hidden_size", "hidden_size", OFF(hidden), 1, 1 << 16, 0},
    {"n_layers", "num_hidden_layers", OFF(n_layers), 1, QRM_MAX_LAYERS, 0},
    {"n_heads", "num_attention_heads", OFF(n_heads), 1, 1024, 0},
    {"n_kv_heads", "num_key_value_heads", OFF(n_kv_heads), 1, 1024, 1},
    {"head_dim", "head_dim", OFF(head_dim), 2, 1024, 1},
    {"ffn_size", "intermediate_size", OFF(ffn), 1, 1 << 20, 0},
    {"max_positions", "max_position_embeddings", OFF(max_positions), 1, 1 << 24, 1},
    {"sliding_window", NULL, OFF(sliding_window), 0, 1 << 24, 1},
};

int qrm_hparams_read_ints(const qj_value *o, qrm_key_set keys, qrm_hparams *hp, char *err,
                          size_t errlen) {
    const char *src = src_name(keys);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const char *key = keys == QRM_KEYS_HF ? ints[i].hf : ints[i].meta;
        if (!key) continue;
        const qj_value *v = qj_get(o, key);
        int optional = keys == QRM_KEYS_HF && ints[i].hf_optional;
        if (!v || (optional && v->type == QJ_NULL)) {
            if (optional) continue;
            FAIL("%s: missing '%s'", src, key);
        }
        int64_t x;
        if (!qj_number_to_int(v, &x)) FAIL("%s: '%s' is not an integer", src, key);
        if (x < ints[i].lo || x > ints[i].hi)
            FAIL("%s: '%s' = %lld is out of range [%d, %d]", src, key, (long long)x, ints[i].lo,
                 ints[i].hi);
        *(int *)((char *)hp + ints[i].off) = (int)x;
    }
    /* the pad token: -1 (or null, in config.json) for none */
    const qj_value *pad = qj_get(o, "pad_token_id");
    if (keys == QRM_KEYS_META && !pad) FAIL("%s: missing 'pad_token_id'", src);
    if (pad && pad->type != QJ_NULL) {
        int64_t x;
        if (!qj_number_to_int(pad, &x)) FAIL("%s: 'pad_token_id' is not an integer", src);
        if (x < -1 || x > (1 << 24))
            FAIL("%s: 'pad_token_id' = %lld is out of range [-1, %d]", src, (long long)x, 1 << 24);
        hp->pad_token_id = (int32_t)x;
    }
    return 0;
}

int qrm_hparams_check(const qrm_hparams *hp, qrm_key_set keys, char *err, size_t errlen) {
    const char *src = src_name(keys);
    int hf = keys == QRM_KEYS_HF;
    if (!qrm_arch_by_name(hp->arch)) FAIL("%s: unknown architecture '%s'", src, hp->arch);
    if (hp->n_heads % hp->n_kv_heads)
        FAIL("%s: '%s' (%d) must be a multiple of '%s' (%d)", src,
             hf ? "num_attention_heads" : "n_heads", hp->n_heads,
             hf ? "num_key_value_heads" : "n_kv_heads", hp->n_kv_heads);
    if (hp->head_dim % 2) FAIL("%s: 'head_dim' = %d must be even", src, hp->head_dim);
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1))
        FAIL("%s: '%s' = %g is out of range (0, 1)", src, hf ? "rms_norm_eps" : "rms_eps", (double)hp->rms_eps);
    if (!(hp->rope_theta > 1 && hp->rope_theta <= 1e12))
        FAIL("%s: 'rope_theta' = %g is out of range (1, 1e12]", src, hp->rope_theta);
    /* derived from config.json, so only a file can get these wrong */
    if (!(hp->embed_scale > 0 && hp->embed_scale <= 1e6)) FAIL("%s: 'embed_scale' is out of range (0, 1e6]", src);
    if (!(hp->attn_scale > 0 && hp->attn_scale <= 1e6)) FAIL("%s: 'attn_scale' is out of range (0, 1e6]", src);
    if (!(hp->attn_softcap >= 0 && hp->attn_softcap <= 1e9)) FAIL("%s: 'attn_softcap' is out of range [0, 1e9]", src);
    if (hp->rope_factor != 0 &&
        !(hp->rope_factor > 0 && hp->rope_factor <= 1e6 && hp->rope_low_freq_factor > 0 &&
          hp->rope_high_freq_factor > hp->rope_low_freq_factor && hp->rope_high_freq_factor <= 1e6 &&
          hp->rope_orig_max_pos >= 1 && hp->rope_orig_max_pos <= (1 << 24)))
        FAIL("%s: rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0", src);
    return 0;
}

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
    qj_buf_printf(b, "],\"pad_token_id\":%d}", (int)hp->pad_token_id);
}

static int get_num(const qj_value *o, const char *key, double *out, char *err, size_t errlen) {
    if (!qj_get(o, key)) FAIL("metadata: missing '%s'", key);
    if (!qj_get_num(o, key, out) || !isfinite(*out)) FAIL("metadata: '%s' is not a number", key);
    return 0;
}

int qrm_hparams_from_json(const qj_value *o, qrm_hparams *hp, char *err, size_t errlen) {
    memset(hp, 0, sizeof *hp);
    if (!o || o->type != QJ_OBJECT) FAIL("metadata: 'model' is not an object");
    const char *arch = qj_get_str(o, "arch");
    if (!arch || !qrm_arch_by_name(arch))
        FAIL("metadata: unknown architecture '%s'", arch ? arch : "(missing)");
    snprintf(hp->arch, sizeof hp->arch, "%s", arch);
    if (qrm_hparams_read_ints(o, QRM_KEYS_META, hp, err, errlen)) return -1;
    double eps, scale, softcap, embed;
    if (get_num(o, "rms_eps", &eps, err, errlen) ||
        get_num(o, "rope_theta", &hp->rope_theta, err, errlen) ||
        get_num(o, "embed_scale", &embed, err, errlen) ||
        get_num(o, "attn_scale", &scale, err, errlen) ||
        get_num(o, "attn_softcap", &softcap, err, errlen))
        return -1;
    hp->rms_eps = (float)eps, hp->embed_scale = (float)embed, hp->attn_scale = (float)scale;
    hp->attn_softcap = (float)softcap;
    const char *act = qj_get_str(o, "activation");
    if (act && !strcmp(act, "silu")) hp->act = QRM_ACT_SILU;
    else if (act && !strcmp(act, "gelu_tanh")) hp->act = QRM_ACT_GELU_TANH;
    else FAIL("metadata: unknown activation '%s'", act ? act : "(missing)");
    hp->qkv_bias = qj_get_bool(o, "qkv_bias", 0);
    hp->qk_norm = qj_get_bool(o, "qk_norm", 0);
    hp->sandwich_norms = qj_get_bool(o, "sandwich_norms", 0);
    const qj_value *sl = qj_get_type(o, "sliding_layers", QJ_ARRAY);
    if (!sl || (int)sl->len != hp->n_layers)
        FAIL("metadata: 'sliding_layers' must list one flag per layer");
    for (int i = 0; i < hp->n_layers; i++) {
        const qj_value *v = &sl->u.items[i];
        if (v->type != QJ_NUMBER || (v->u.num != 0 && v->u.num != 1))
            FAIL("metadata: 'sliding_layers' entries must be 0 or 1");
        hp->sliding[i] = (uint8_t)v->u.num;
    }
    const qj_value *rs = qj_get_type(o, "rope_scaling", QJ_OBJECT);
    if (rs) {
        const char *type = qj_get_str(rs, "type");
        if (!type || strcmp(type, "llama3"))
            FAIL("metadata: unsupported rope_scaling type '%s'", type ? type : "(missing)");
        int64_t orig;
        if (get_num(rs, "factor", &hp->rope_factor, err, errlen) ||
            get_num(rs, "low_freq_factor", &hp->rope_low_freq_factor, err, errlen) ||
            get_num(rs, "high_freq_factor", &hp->rope_high_freq_factor, err, errlen))
            return -1;
        if (!qj_get(rs, "original_max_position_embeddings"))
            FAIL("metadata: rope_scaling: missing 'original_max_position_embeddings'");
        if (!qj_get_int(rs, "original_max_position_embeddings", &orig) || orig < 1 || orig > (1 << 24))
            FAIL("metadata: rope_scaling: 'original_max_position_embeddings' is not an integer in [1, %d]", 1 << 24);
        hp->rope_orig_max_pos = (int)orig;
        if (!(hp->rope_factor > 0)) FAIL("metadata: rope_scaling needs factor > 0");
    }
    return qrm_hparams_check(hp, QRM_KEYS_META, err, errlen);
}
