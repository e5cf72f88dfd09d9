/* qrm-convert: a Hugging Face reward-model folder -> one .qrm file.
 *
 *   config.json            -> hyperparameters (models/families.c)
 *   *.safetensors          -> tensors by role (core/tensors.c), converted to
 *                             f32 / f16 / packed q8 / packed q4 (quantize.c)
 *   tokenizer*.json        -> stored as blobs for the tokenizer
 *   provenance             -> file names, sha256, dtypes, settings, date
 */
#include "convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "f16.h"
#include "families.h"
#include "format.h"
#include "json.h"
#include "kernels.h"
#include "model.h"
#include "quantize.h"
#include "qrm.h"
#include "qrm_writer.h"
#include "safetensors.h"
#include "sha256.h"
#include "tokenizer.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

typedef struct {
    const qrm_role *role;
    int layer;
    const qrm_st_tensor *src;
    uint32_t type;
    int64_t ne0, ne1;
    char name[QRM_TENSOR_NAME_MAX];
} planned;

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static uint32_t target_type(qrm_role_kind kind, const char *quant, int64_t ne0, int64_t ne1) {
    int is_f32 = !strcmp(quant, "f32");
    switch (kind) {
    case QRM_ROLE_NORM:
    case QRM_ROLE_BIAS:
    case QRM_ROLE_HEAD: return QRM_T_F32;
    case QRM_ROLE_EMBED: return is_f32 ? QRM_T_F32 : QRM_T_F16;
    case QRM_ROLE_MATRIX:
        if (is_f32) return QRM_T_F32;
        if (!strcmp(quant, "f16")) return QRM_T_F16;
        /* the packed layouts need whole panels and groups; others stay f16 */
        if (ne0 % QRM_PANEL || ne1 % QRM_QK) return QRM_T_F16;
        return !strcmp(quant, "int8") ? QRM_T_Q8 : QRM_T_Q4;
    }
    return QRM_T_F32;
}

/* Converts one planned tensor to its stored bytes (malloc'd). */
static uint8_t *encode(const planned *p, const qrm_hparams *hp, size_t *size) {
    size_t n = (size_t)p->ne0 * (size_t)p->ne1;
    int ok;
    *size = qrm_tensor_nbytes(p->type, (uint64_t)p->ne0, (uint64_t)p->ne1, &ok);
    uint8_t *out = calloc(*size ? *size : 1, 1);
    if (!out) return NULL;
    /* Gemma2 norms compute x * (1 + w): bake the 1 in, in f32 as HF does */
    float add = hp->sandwich_norms && p->role->kind == QRM_ROLE_NORM ? 1.0f : 0.0f;
    if (p->type == QRM_T_F32) {
        float *o = (float *)out;
        for (size_t i = 0; i < n; i++) o[i] = qrm_st_get(p->src, i) + add;
    } else if (p->type == QRM_T_F16) {
        uint16_t *o = (uint16_t *)out;
        for (size_t i = 0; i < n; i++) o[i] = qrm_f32_to_f16(qrm_st_get(p->src, i));
    } else {
        int K = (int)p->ne1, N = (int)p->ne0, wt = p->type == QRM_T_Q8 ? QRM_WQ8 : QRM_WQ4;
        float *rows = malloc((size_t)QRM_PANEL * K * sizeof(float));
        if (!rows) {
            free(out);
            return NULL;
        }
        for (int pnl = 0; pnl < N / QRM_PANEL; pnl++) {
            for (size_t i = 0; i < (size_t)QRM_PANEL * K; i++)
                rows[i] = qrm_st_get(p->src, (size_t)pnl * QRM_PANEL * K + i);
            qrm_quantize_panel(wt, rows, K, pnl, N, out);
        }
        free(rows);
    }
    return out;
}

static void put_special_id(qj_buf *b, const char *key, const qj_value *cfg) {
    int64_t v;
    if (qj_get_int(cfg, key, &v)) qj_buf_printf(b, ",\"%s\":%lld", key, (long long)v);
}

static void iso_date(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int qrm_convert(const qrm_convert_opts *o, char *err, size_t errlen) {
    qrm_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    qrm_writer w;
    qrm_writer_init(&w);
    qj_doc *cfg_doc = NULL;
    char *cfg_text = NULL, *tok_text = NULL, *tcfg_text = NULL, *p = NULL;
    planned *plan = NULL;
    qj_buf meta = {0};
    int n_plan = 0, rc = -1;
    size_t cfg_len = 0, tok_len = 0, tcfg_len = 0;
    char e2[QRM_ERR_MAX];
    if (!o->hf_dir || !o->out_path) FAIL("no input folder or output path given");
    const char *quant = o->quant ? o->quant : "int8";
    if (strcmp(quant, "f32") && strcmp(quant, "f16") && strcmp(quant, "int8") && strcmp(quant, "int4"))
        FAIL("unknown --quant '%s' (use f32, f16, int8 or int4)", quant);

    /* config.json */
    p = path_join(o->hf_dir, "config.json");
    if (!p) FAIL("out of memory");
    cfg_text = qrm_read_file(p, &cfg_len, e2, sizeof e2);
    free(p), p = NULL;
    if (!cfg_text) FAIL("missing file: %s", e2);
    char jerr[200];
    cfg_doc = qj_parse(cfg_text, cfg_len, jerr, sizeof jerr);
    if (!cfg_doc) FAIL("config.json: invalid JSON: %s", jerr);
    const qj_value *cfg = qj_root(cfg_doc);
    qrm_hparams hp;
    if (qrm_hparams_from_hf_config(cfg, &hp, err, errlen)) goto fail;

    /* tokenizer files: required, and they must load */
    p = path_join(o->hf_dir, "tokenizer.json");
    if (!p) FAIL("out of memory");
    tok_text = qrm_read_file(p, &tok_len, e2, sizeof e2);
    free(p), p = NULL;
    if (!tok_text) FAIL("missing file: %s", e2);
    p = path_join(o->hf_dir, "tokenizer_config.json");
    if (!p) FAIL("out of memory");
    tcfg_text = qrm_read_file(p, &tcfg_len, e2, sizeof e2);
    free(p), p = NULL;
    if (!tcfg_text) FAIL("missing file: %s", e2);
    {
        qrm_tokenizer *tk = qrm_tokenizer_new(tok_text, tok_len, tcfg_text, tcfg_len, e2, sizeof e2);
        if (!tk) FAIL("%s", e2);
        int vocab = qrm_tokenizer_vocab_size(tk);
        qrm_tokenizer_free(tk);
        if (vocab > hp.vocab_size)
            FAIL("tokenizer has %d tokens but config.json vocab_size is %d", vocab, hp.vocab_size);
    }

    /* weights */
    if (o->verbose) fprintf(stderr, "qrm-convert: reading %s\n", o->hf_dir);
    if (qrm_checkpoint_open(&ck, o->hf_dir, 1, err, errlen)) goto fail;
    plan = calloc((size_t)qrm_role_count() * (size_t)hp.n_layers + 8, sizeof *plan);
    if (!plan) FAIL("out of memory");
    uint64_t total_bytes = 0;
    for (int r = 0; r < qrm_role_count(); r++) {
        const qrm_role *role = qrm_role_get(r);
        int64_t ne0, ne1;
        if (!qrm_role_shape(role, &hp, &ne0, &ne1)) continue;
        for (int l = 0; l < (role->per_layer ? hp.n_layers : 1); l++) {
            planned *pl = &plan[n_plan++];
            char hf[160];
            snprintf(hf, sizeof hf, qrm_role_hf_name(role, &hp), l);
            snprintf(pl->name, sizeof pl->name, role->name, l);
            const qrm_st_tensor *t = qrm_checkpoint_find(&ck, hf);
            if (!t) FAIL("missing tensor '%s' in the checkpoint", hf);
            int is2d = role->kind == QRM_ROLE_MATRIX || role->kind == QRM_ROLE_EMBED ||
                       role->kind == QRM_ROLE_HEAD;
            int shape_ok = is2d ? t->ndim == 2 && t->shape[0] == ne0 && t->shape[1] == ne1
                                : t->ndim == 1 && t->shape[0] == ne0;
            if (!shape_ok) {
                char got[96] = "", want[64];
                for (int d = 0; d < t->ndim; d++)
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                             (long long)t->shape[d]);
                if (is2d) snprintf(want, sizeof want, "%lld, %lld", (long long)ne0, (long long)ne1);
                else snprintf(want, sizeof want, "%lld", (long long)ne0);
                FAIL("tensor '%s' has shape [%s], expected [%s] from config.json", hf, got, want);
            }
            ((qrm_st_tensor *)t)->used = 1;
            pl->role = role, pl->layer = l, pl->src = t, pl->ne0 = ne0, pl->ne1 = ne1;
            pl->type = target_type(role->kind, quant, ne0, ne1);
            if (qrm_writer_add(&w, pl->name, pl->type, is2d ? 2 : 1, (uint64_t)ne0, (uint64_t)ne1,
                               err, errlen))
                goto fail;
            total_bytes += t->nbytes;
        }
    }
    for (int i = 0; i < ck.n_tensors; i++)
        if (!ck.tensors[i].used)
            fprintf(stderr, "qrm-convert: note: ignoring tensor '%s' (not used for scoring)\n",
                    ck.tensors[i].name);
    if (qrm_writer_add(&w, "tokenizer.json", QRM_T_BYTES, 1, tok_len, 1, err, errlen) ||
        qrm_writer_add(&w, "tokenizer_config.json", QRM_T_BYTES, 1, tcfg_len, 1, err, errlen))
        goto fail;

    /* metadata */
    char date[32];
    iso_date(date, sizeof date);
    qj_buf_puts(&meta, "{\"format\":\"qrm\",\"format_version\":1,\"hf_architecture\":");
    const qj_value *al = qj_get(cfg, "architectures");
    qj_buf_put_value(&meta, &al->u.items[0]);
    qj_buf_puts(&meta, ",\"model\":");
    qrm_hparams_to_json(&hp, &meta);
    qj_buf_printf(&meta,
                  ",\"quant\":{\"type\":\"%s\",\"group_size\":%d,\"weight_scales\":\"f16\","
                  "\"weights\":\"%s\",\"activations\":\"int8, per token in groups of %d along K, "
                  "absmax scale\",\"kept_float\":\"embeddings (%s), norms, biases, score head (f32)\"}",
                  quant, QRM_QK,
                  !strcmp(quant, "int4") ? "4-bit symmetric, scale searched for least squared error"
                  : !strcmp(quant, "int8") ? "8-bit symmetric, absmax scale" : "float",
                  QRM_QK, !strcmp(quant, "f32") ? "f32" : "f16");
    qj_buf_printf(&meta, ",\"head\":{\"kind\":\"score\",\"n_outputs\":%d,\"position\":\"last_non_pad\"",
                  hp.n_outputs);
    const qj_value *id2label = qj_get_type(cfg, "id2label", QJ_OBJECT);
    if (id2label) {
        qj_buf_puts(&meta, ",\"id2label\":");
        qj_buf_put_value(&meta, id2label);
    }
    qj_buf_puts(&meta, "},\"tokenizer\":{\"json\":\"tokenizer.json\",\"config\":\"tokenizer_config.json\"");
    put_special_id(&meta, "bos_token_id", cfg);
    put_special_id(&meta, "pad_token_id", cfg);
    qj_buf_puts(&meta, ",\"input_rule\":\"render chat template; drop a duplicated leading BOS; "
                       "tokenize without added special tokens; score at the last non-pad token\"}");
    qj_buf_printf(&meta, ",\"provenance\":{\"converter\":\"qrm-convert %s\",\"created\":\"%s\","
                         "\"source_dtypes\":[", QRM_CONVERTER_VERSION, date);
    int first = 1;
    for (int d = 0; d < 3; d++)
        if (ck.dtypes_seen & (1 << d)) {
            qj_buf_printf(&meta, "%s\"%s\"", first ? "" : ",", qrm_st_dtype_name((qrm_st_dtype)d));
            first = 0;
        }
    qj_buf_puts(&meta, "],\"files\":[");
    char hex[65];
    qrm_sha256_hex(cfg_text, cfg_len, hex);
    qj_buf_printf(&meta, "{\"name\":\"config.json\",\"sha256\":\"%s\"}", hex);
    qrm_sha256_hex(tok_text, tok_len, hex);
    qj_buf_printf(&meta, ",{\"name\":\"tokenizer.json\",\"sha256\":\"%s\"}", hex);
    qrm_sha256_hex(tcfg_text, tcfg_len, hex);
    qj_buf_printf(&meta, ",{\"name\":\"tokenizer_config.json\",\"sha256\":\"%s\"}", hex);
    for (int i = 0; i < ck.n_files; i++) {
        qj_buf_puts(&meta, ",{\"name\":");
        qj_buf_put_string(&meta, ck.file_names[i], strlen(ck.file_names[i]));
        qj_buf_printf(&meta, ",\"sha256\":\"%s\",\"bytes\":%zu}", ck.sha256[i], ck.maps[i].size);
    }
    qj_buf_puts(&meta, "]}}");
    if (meta.oom) FAIL("out of memory");

    /* data */
    if (qrm_writer_begin(&w, o->out_path, meta.buf, meta.len, err, errlen)) goto fail;
    uint64_t done_bytes = 0;
    for (int i = 0; i < n_plan; i++) {
        size_t sz;
        uint8_t *data = encode(&plan[i], &hp, &sz);
        if (!data) FAIL("out of memory converting '%s'", plan[i].name);
        int wrc = qrm_writer_data(&w, data, sz, err, errlen);
        free(data);
        if (wrc) goto fail;
        done_bytes += plan[i].src->nbytes;
        if (o->verbose && total_bytes > (64u << 20))
            fprintf(stderr, "\rqrm-convert: %5.1f%% %s            ",
                    100.0 * (double)done_bytes / (double)total_bytes, plan[i].name);
    }
    if (o->verbose && total_bytes > (64u << 20)) fprintf(stderr, "\n");
    if (qrm_writer_data(&w, tok_text, tok_len, err, errlen) ||
        qrm_writer_data(&w, tcfg_text, tcfg_len, err, errlen) ||
        qrm_writer_finish(&w, err, errlen))
        goto fail;
    rc = 0;
fail:
    qrm_writer_abort(&w);
    qrm_checkpoint_close(&ck);
    qj_free(cfg_doc);
    qj_buf_free(&meta);
    free(cfg_text), free(tok_text), free(tcfg_text), free(plan), free(p);
    return rc;
}
