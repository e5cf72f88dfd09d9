/* Random-weight .qrm files of real model shapes for the benchmarks.
 * Speed does not depend on the values, so quants and scales are drawn
 * directly (no float weights, no quantization pass): a 0.6B model is
 * written in a couple of seconds. Cached under build/bench-models/. */
#include "synth_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "f16.h"
#include "json.h"
#include "model.h"
#include "qrm_writer.h"

static const struct {
    const char *name;
    qrm_hparams hp;
} shapes[] = {
    {"qwen3-0.6b", {.arch = "qwen3", .vocab_size = 151936, .hidden = 1024, .n_layers = 28,
                    .n_heads = 16, .n_kv_heads = 8, .head_dim = 128, .ffn = 3072,
                    .max_positions = 40960, .rms_eps = 1e-6f, .rope_theta = 1e6, .qk_norm = 1,
                    .embed_scale = 1.0f, .attn_scale = 0.08838834764831845f,
                    .pad_token_id = 151643}},
    {"llama-1b", {.arch = "llama", .vocab_size = 128256, .hidden = 2048, .n_layers = 16,
                  .n_heads = 32, .n_kv_heads = 8, .head_dim = 64, .ffn = 8192,
                  .max_positions = 131072, .rms_eps = 1e-5f, .rope_theta = 500000.0,
                  .rope_factor = 32.0, .rope_low_freq_factor = 1.0, .rope_high_freq_factor = 4.0,
                  .rope_orig_max_pos = 8192, .embed_scale = 1.0f, .attn_scale = 0.125f,
                  .pad_token_id = 128004}},
};

int qrm_synth_shape(const char *name, qrm_hparams *hp) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name)) {
            *hp = shapes[i].hp;
            return 0;
        }
    return -1;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_normalish(void) { /* sum of uniforms: mean 0, sd ~1 */
    float s = 0;
    for (int i = 0; i < 4; i++) s += (float)(rnd() & 0xffff) / 65536.0f;
    return (s - 2.0f) * 1.7f;
}

static uint32_t weight_type(const char *quant) {
    return !strcmp(quant, "int8") ? QRM_T_Q8 : !strcmp(quant, "int4") ? QRM_T_Q4
           : !strcmp(quant, "f16") ? QRM_T_F16 : QRM_T_F32;
}

static uint8_t *tensor_data(qrm_role_kind kind, uint32_t type, int64_t ne0, int64_t ne1,
                            size_t *size) {
    int ok;
    *size = qrm_tensor_nbytes(type, (uint64_t)ne0, (uint64_t)ne1, &ok);
    uint8_t *d = malloc(*size);
    if (!d) return NULL;
    size_t n = (size_t)ne0 * (size_t)ne1;
    float fan = 1.0f / (float)(ne1 > 1 ? ne1 : 1);
    if (type == QRM_T_F32) {
        float *f = (float *)d;
        for (size_t i = 0; i < n; i++)
            f[i] = kind == QRM_ROLE_NORM ? 1.0f + 0.1f * rnd_normalish()
                                               : rnd_normalish() * fan * 8.0f;
    } else if (type == QRM_T_F16) {
        uint16_t *h = (uint16_t *)d;
        for (size_t i = 0; i < n; i++) h[i] = qrm_f32_to_f16(rnd_normalish() * 0.05f);
    } else {
        size_t qbytes = type == QRM_T_Q8 ? n : n / 2;
        for (size_t i = 0; i < qbytes; i++) {
            uint8_t b = (uint8_t)rnd();
            d[i] = type == QRM_T_Q8 ? (uint8_t)(b == 0x80 ? 0x81 : b) : b;
        }
        uint16_t *sc = (uint16_t *)(d + qbytes);
        /* scales ~ 1/(127 sqrt(K)) keep activations in a sane range */
        for (size_t i = 0; i < n / 32; i++)
            sc[i] = qrm_f32_to_f16((0.5f + (float)(rnd() & 0xff) / 256.0f) * 2.0f /
                                   (127.0f * (float)__builtin_sqrt((double)ne1)) *
                                   (type == QRM_T_Q4 ? 16.0f : 1.0f));
    }
    return d;
}

/* The next declared tensor, random data of its type. */
static int write_random(qrm_writer *w, qrm_role_kind kind, uint32_t type, int64_t ne0, int64_t ne1,
                        char *err, size_t errlen) {
    size_t size;
    uint8_t *d = tensor_data(kind, type, ne0, ne1, &size);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = qrm_writer_data(w, d, size, err, errlen);
    free(d);
    return rc;
}

/* The head of a synthetic model: a one-output linear head, a Qwen2.5-Math-PRM
 * head (hidden -> hidden -> 2), ArmoRM's gating head (19 objectives, three
 * hidden gating layers of 1024), a yes/no judge (two vocabulary rows), or
 * the whole vocabulary head (lm, quantized like the matrices). Token ids:
 * the separator, the pattern and the judge's tokens are drawn from the top
 * of the vocabulary, which random inputs avoid. */
static int synth_head(const char *kind, const qrm_hparams *hp, qrm_head *h, char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    h->ops = qrm_head_by_kind(kind);
    h->pad_id = hp->pad_token_id;
    if (!h->ops) {
        snprintf(err, errlen, "unknown head '%s' (linear, prm, gated, judge, lm)", kind);
        return -1;
    }
    int v = hp->vocab_size;
    if (!strcmp(kind, "prm")) {
        h->n_outputs = 1, h->sep_id = v - 10, h->fc_dim = hp->hidden;
    } else if (!strcmp(kind, "judge")) {
        h->n_outputs = 1, h->tok[0] = v - 20, h->tok[1] = v - 21;
    } else if (!strcmp(kind, "gated")) {
        h->n_obj = 19, h->gate_layers = 4, h->gate_dim = 1024, h->temperature = 10;
        h->n_pattern = 5;
        for (int i = 0; i < 5; i++) h->pattern[i] = v - 9 + i;
        h->n_outputs = 1 + 2 * h->n_obj;
    } else {
        h->n_outputs = 1;
    }
    for (int i = 0; i < h->n_outputs; i++) snprintf(h->label[i], QRM_LABEL_MAX, "out_%d", i);
    return 0;
}

int qrm_synth_model(const char *shape, const char *quant, const char *head, const char *path,
                    char *err, size_t errlen) {
    qrm_hparams hp;
    qrm_head h;
    qrm_head_tensor ht[QRM_HEAD_MAX_TENSORS];
    if (qrm_synth_shape(shape, &hp)) {
        snprintf(err, errlen, "unknown shape '%s' (qwen3-0.6b, llama-1b)", shape);
        return -1;
    }
    if (synth_head(head, &hp, &h, err, errlen)) return -1;
    int nh = h.ops->tensors(&h, &hp, ht);
    uint32_t wt = weight_type(quant);
    qrm_writer w;
    qrm_writer_init(&w);
    qj_buf meta = {0};
    int rc = -1;
    for (int r = 0; r < qrm_role_count(); r++) {
        const qrm_role *role = qrm_role_get(r);
        int64_t ne0, ne1;
        if (!qrm_role_shape(role, &hp, &ne0, &ne1)) continue;
        uint32_t type = role->kind == QRM_ROLE_MATRIX ? wt
                        : role->kind == QRM_ROLE_EMBED ? (wt == QRM_T_F32 ? QRM_T_F32 : QRM_T_F16)
                                                       : QRM_T_F32;
        int is2d = role->kind == QRM_ROLE_MATRIX || role->kind == QRM_ROLE_EMBED ||
                   role->kind == QRM_ROLE_HEAD;
        for (int l = 0; l < (role->per_layer ? hp.n_layers : 1); l++) {
            char name[64];
            snprintf(name, sizeof name, role->name, l);
            if (qrm_writer_add(&w, name, type, is2d ? 2 : 1, (uint64_t)ne0, (uint64_t)ne1, err, errlen))
                goto out;
        }
    }
    for (int i = 0; i < nh; i++)
        if (qrm_writer_add(&w, ht[i].name, ht[i].kind == QRM_ROLE_MATRIX ? wt : QRM_T_F32, ht[i].ndim, (uint64_t)ht[i].ne0,
                           (uint64_t)ht[i].ne1, err, errlen))
            goto out;
    qj_buf_puts(&meta, "{\"format\":\"qrm\",\"format_version\":1,\"hf_architecture\":\"synthetic\",\"model\":");
    qrm_hparams_to_json(&hp, &meta);
    qj_buf_puts(&meta, ",\"head\":");
    qrm_head_to_json(&h, &meta);
    qj_buf_printf(&meta, ",\"quant\":{\"type\":\"%s\",\"group_size\":32},\"provenance\":"
                         "{\"converter\":\"qrm-bench synthetic %s\"}}", quant, shape);
    if (qrm_writer_begin(&w, path, meta.buf, meta.len, err, errlen)) goto out;
    int i = 0;
    for (int r = 0; r < qrm_role_count(); r++) {
        const qrm_role *role = qrm_role_get(r);
        int64_t ne0, ne1;
        if (!qrm_role_shape(role, &hp, &ne0, &ne1)) continue;
        for (int l = 0; l < (role->per_layer ? hp.n_layers : 1); l++, i++)
            if (write_random(&w, role->kind, w.t[i].type, ne0, ne1, err, errlen)) goto out;
    }
    for (int k = 0; k < nh; k++, i++)
        if (write_random(&w, ht[k].kind, w.t[i].type, ht[k].ne0, ht[k].ne1, err, errlen)) goto out;
    rc = qrm_writer_finish(&w, err, errlen);
out:
    qrm_writer_abort(&w);
    qj_buf_free(&meta);
    return rc;
}

const char *qrm_synth_models_dir = "build/bench-models";

int qrm_synth_model_cached(const char *shape, const char *quant, const char *head, char *path,
                           size_t pathlen, char *err, size_t errlen) {
    static int told;
    const char *dir = qrm_synth_models_dir;
    /* every missing component, as mkdir -p: --models-dir may name a new tree */
    char sub[4096];
    snprintf(sub, sizeof sub, "%s", dir);
    for (char *p = sub + 1; *p; p++)
        if (*p == '/') *p = 0, mkdir(sub, 0755), *p = '/';
    mkdir(sub, 0755);
    struct stat ds;
    if (stat(dir, &ds) || !S_ISDIR(ds.st_mode)) {
        snprintf(err, errlen, "--models-dir '%s': not a folder that can be made", dir);
        return -1;
    }
    if (!told++) fprintf(stderr, "qrm-bench: synthetic models in %s/ (--models-dir to move them; large: delete when done)\n", dir);
    if (!strcmp(head, "linear")) snprintf(path, pathlen, "%s/%s-%s.qrm", dir, shape, quant);
    else snprintf(path, pathlen, "%s/%s-%s-%s.qrm", dir, shape, quant, head);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0) return 0;
    fprintf(stderr, "qrm-bench: writing random-weight model %s\n", path);
    /* in a child process, so that its buffers do not count in the peak RSS
     * that the benchmark reports */
    pid_t pid = fork();
    if (pid == 0) _exit(qrm_synth_model(shape, quant, head, path, err, errlen) ? 1 : 0);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        snprintf(err, errlen, "could not write %s", path);
        return -1;
    }
    return 0;
}
