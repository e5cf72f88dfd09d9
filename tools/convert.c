/* qrm-convert: a Hugging Face reward-model folder -> one .qrm file, in
 * stages that each do one job:
 *
 *   read_inputs     config.json, tokenizer files, the safetensors checkpoint
 *   resolve_model   HF class -> architecture descriptor (models/) + head
 *                   kind (core/heads/); config.json -> hyperparameters; the
 *                   head finds its tensors, tokens and labels
 *   plan_tensors    every backbone role and head tensor: source, shape, the
 *                   stored type (f32 / f16 / packed q8 / packed q4)
 *   build_metadata  the metadata JSON (hparams, head, quantization,
 *                   tokenizer, provenance with the sha256 of every source)
 *   write_file      header, table, then each tensor converted in turn
 */
#include "convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "f16.h"
#include "format.h"
#include "head.h"
#include "json.h"
#include "kernels.h"
#include "model.h"
#include "quantize.h"
#include "calib.h"
#include "qrm.h"
#include "qrm_writer.h"
#include "safetensors.h"
#include "sha256.h"
#include "tokenizer.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

typedef struct {
    char name[QRM_TENSOR_NAME_MAX];
    const qrm_st_tensor *src;
    int n_rows;                 /* > 0: these rows of src (a vocabulary head's tokens) */
    int32_t rows[2];
    qrm_role_kind kind;
    uint32_t type;
    int ndim;
    int64_t ne0, ne1;
} planned;

typedef struct {
    const qrm_convert_opts *o;
    const char *quant;
    char *cfg_text, *tok_text, *tcfg_text;
    size_t cfg_len, tok_len, tcfg_len;
    qj_doc *cfg_doc;
    const qj_value *cfg;
    qrm_tokenizer *tok;
    qrm_checkpoint ck;
    const qrm_arch *arch;
    qrm_hparams hp;
    qrm_head head;
    planned *plan;
    int n_plan;
    int head_plan;              /* the head's tensors: plan[head_plan..n_plan) */
    uint64_t total_bytes;
    qj_buf meta;
    qrm_calib calib;            /* n == 0 without --calib */
    int n_int8;                 /* --int4-budget: matrices kept int8 */
    double budget_bits;
} conv;

static char *read_in(const char *dir, const char *name, size_t *len, char *err, size_t errlen) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n), e[QRM_ERR_MAX];
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(p, n, "%s/%s", dir, name);
    char *text = qrm_read_file(p, len, e, sizeof e);
    /* "missing" only when it is: not for a read error or out of memory */
    if (!text && access(p, F_OK) != 0) snprintf(err, errlen, "missing file: %s", e);
    else if (!text) snprintf(err, errlen, "%s", e);
    free(p);
    return text;
}

static int read_inputs(conv *cv, char *err, size_t errlen) {
    const char *dir = cv->o->hf_dir;
    char jerr[200];
    if (!(cv->cfg_text = read_in(dir, "config.json", &cv->cfg_len, err, errlen))) return -1;
    cv->cfg_doc = qj_parse(cv->cfg_text, cv->cfg_len, jerr, sizeof jerr);
    if (!cv->cfg_doc) FAIL("config.json: invalid JSON: %s", jerr);
    cv->cfg = qj_root(cv->cfg_doc);
    if (cv->cfg->type != QJ_OBJECT) FAIL("config.json: not a JSON object");
    /* the tokenizer files are required, and they must load */
    if (!(cv->tok_text = read_in(dir, "tokenizer.json", &cv->tok_len, err, errlen)) ||
        !(cv->tcfg_text = read_in(dir, "tokenizer_config.json", &cv->tcfg_len, err, errlen)))
        return -1;
    cv->tok = qrm_tokenizer_new(cv->tok_text, cv->tok_len, cv->tcfg_text, cv->tcfg_len, err, errlen);
    if (!cv->tok) return -1;
    if (cv->o->verbose) fprintf(stderr, "qrm-convert: reading %s\n", dir);
    return qrm_checkpoint_open(&cv->ck, dir, 1, err, errlen);
}

/* ---- what the head may ask of the checkpoint and the tokenizer ---- */

static int src_shape(void *ctx, const char *name, int *ndim, int64_t shape[2]) {
    conv *cv = ctx;
    const qrm_st_tensor *t = qrm_checkpoint_find(&cv->ck, name);
    if (!t) return 0;
    *ndim = t->ndim;
    shape[0] = t->shape[0];
    shape[1] = t->ndim > 1 ? t->shape[1] : 1;
    return 1;
}

static int src_encode(void *ctx, const char *text, int32_t **ids, size_t *n, char *err, size_t errlen) {
    conv *cv = ctx;
    return qrm_tokenizer_encode(cv->tok, text, strlen(text), 0, ids, n, err, errlen);
}

static void src_piece(void *ctx, int32_t id, char *buf, size_t n) {
    conv *cv = ctx;
    size_t len = 0;
    const char *p = qrm_tokenizer_id_to_token(cv->tok, id, &len);
    snprintf(buf, n, "%.*s", p ? (int)len : 1, p ? p : "?");
}

static int resolve_model(conv *cv, char *err, size_t errlen) {
    const qj_value *al = qj_get_type(cv->cfg, "architectures", QJ_ARRAY);
    if (!al || al->len == 0 || al->u.items[0].type != QJ_STRING)
        FAIL("config.json: missing 'architectures'");
    const char *hf = al->u.items[0].u.str, *suffix = NULL;
    char archs[160], heads[200];
    qrm_arch_prefixes(archs, sizeof archs);
    qrm_head_list(heads, sizeof heads, 1);
    cv->arch = qrm_arch_by_hf_class(hf, &suffix);
    const qrm_head_spec *sp = &cv->o->spec;
    int n_spec = !!sp->judge_yes + !!sp->step_tag + !!sp->lm;
    const qrm_head_ops *ops = NULL;
    if (cv->arch && !strcmp(suffix, "ForCausalLM")) {
        /* the vocabulary head: which reward is read from it is the user's */
        if (n_spec != 1)
            FAIL("%s: a causal LM's reward comes from its vocabulary head; give one head specification: "
                 "--judge-tokens YES,NO, --step-tag TAG --good GOOD --bad BAD, or --head lm", hf);
        ops = qrm_head_by_kind(sp->judge_yes ? "judge" : sp->step_tag ? "step_tag" : "lm");
    } else if (cv->arch) {
        ops = qrm_head_by_hf_suffix(suffix);
        if (ops && n_spec)
            FAIL("%s has its own head; --judge-tokens, --step-tag and --head lm are for *ForCausalLM checkpoints", hf);
    }
    if (!ops)
        FAIL("unsupported architecture '%s' (supported: %s, each with %s, or ForCausalLM with a head specification)",
             hf, archs, heads);
    if (qrm_arch_read_hf_config(cv->arch, cv->cfg, &cv->hp, err, errlen)) return -1;
    int vocab = (int)qrm_tokenizer_vocab_size(cv->tok);
    if (vocab > cv->hp.vocab_size)
        FAIL("tokenizer has %d tokens but config.json vocab_size is %d", vocab, cv->hp.vocab_size);
    memset(&cv->head, 0, sizeof cv->head);
    cv->head.ops = ops;
    cv->head.pad_id = cv->hp.pad_token_id;
    qrm_head_source src = {.cfg = cv->cfg, .hp = &cv->hp, .ctx = cv, .shape = src_shape, .spec = sp,
                           .tie_default = cv->arch->tie_embeddings,
                           .encode = src_encode, .piece = src_piece, .labels = cv->o->labels,
                           .step_separator = cv->o->step_separator,
                           .gating_pattern = cv->o->gating_pattern};
    return ops->from_hf(&cv->head, &src, err, errlen);
}

/* ---- plan ---- */

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

/* Plans one tensor; picks (a head tensor's rows of a larger source) says
 * which rows and the source's row count. */
static int add_plan(conv *cv, const char *name, const char *hf, qrm_role_kind kind, int ndim,
                    int64_t ne0, int64_t ne1, const qrm_head_tensor *picks, const char *why,
                    char *err, size_t errlen) {
    const qrm_st_tensor *t = qrm_checkpoint_find(&cv->ck, hf);
    if (!t) FAIL("missing tensor '%s' in the checkpoint", hf);
    int64_t src0 = picks && picks->n_rows ? picks->src_ne0 : ne0;
    int shape_ok = ndim == 2 ? t->ndim == 2 && t->shape[0] == src0 && t->shape[1] == ne1
                             : t->ndim == 1 && t->shape[0] == ne0;
    if (!shape_ok) {
        char got[96] = "", want[64];
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)t->shape[d]);
        if (ndim == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)ne0, (long long)ne1);
        else snprintf(want, sizeof want, "%lld", (long long)ne0);
        FAIL("tensor '%s' has shape [%s], expected [%s] from %s", hf, got, want, why);
    }
    ((qrm_st_tensor *)t)->used = 1;
    planned *p = &cv->plan[cv->n_plan++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->src = t, p->kind = kind, p->ndim = ndim, p->ne0 = ne0, p->ne1 = ne1;
    if (picks && picks->n_rows) {
        p->n_rows = picks->n_rows;
        memcpy(p->rows, picks->rows, sizeof p->rows);
    }
    p->type = target_type(kind, cv->quant, ne0, ne1);
    cv->total_bytes += t->nbytes;
    return 0;
}

static int plan_tensors(conv *cv, char *err, size_t errlen) {
    const qrm_hparams *hp = &cv->hp;
    cv->plan = calloc((size_t)qrm_role_count() * (size_t)hp->n_layers + QRM_HEAD_MAX_TENSORS + 8,
                      sizeof *cv->plan);
    if (!cv->plan) FAIL("out of memory");
    for (int r = 0; r < qrm_role_count(); r++) {
        const qrm_role *role = qrm_role_get(r);
        int64_t ne0, ne1;
        if (!qrm_role_shape(role, hp, &ne0, &ne1)) continue;
        int ndim = role->kind == QRM_ROLE_MATRIX || role->kind == QRM_ROLE_EMBED ? 2 : 1;
        const char *hf_fmt = qrm_arch_hf_tensor_name(cv->arch, role->name, role->hf_name);
        for (int l = 0; l < (role->per_layer ? hp->n_layers : 1); l++) {
            char name[QRM_TENSOR_NAME_MAX + 16], hf[160];
            snprintf(name, sizeof name, role->name, l);
            snprintf(hf, sizeof hf, hf_fmt, l);
            if (add_plan(cv, name, hf, role->kind, ndim, ne0, ne1, NULL, "config.json", err, errlen))
                return -1;
        }
    }
    qrm_head_tensor ht[QRM_HEAD_MAX_TENSORS];
    int nh = cv->head.ops->tensors(&cv->head, hp, ht);
    cv->head_plan = cv->n_plan;
    for (int i = 0; i < nh; i++)
        if (add_plan(cv, ht[i].name, ht[i].hf_name, ht[i].kind, ht[i].ndim, ht[i].ne0, ht[i].ne1,
                     &ht[i], "the head's other tensors and config.json", err, errlen))
            return -1;
    for (int i = 0; i < cv->ck.n_tensors; i++)
        if (!cv->ck.tensors[i].used)
            fprintf(stderr, "qrm-convert: note: ignoring tensor '%s' (not used for scoring)\n",
                    cv->ck.tensors[i].name);
    return 0;
}

/* ---- metadata ---- */

static void put_special_id(qj_buf *b, const char *key, const qj_value *cfg) {
    int64_t v;
    if (qj_get_int(cfg, key, &v)) qj_buf_printf(b, ",\"%s\":%lld", key, (long long)v);
}

static void put_file(qj_buf *b, const char *name, const void *data, size_t len, int bytes) {
    char hex[65];
    qrm_sha256_hex(data, len, hex);
    qj_buf_puts(b, "{\"name\":");
    qj_buf_put_string(b, name, strlen(name));
    qj_buf_printf(b, ",\"sha256\":\"%s\"", hex);
    if (bytes) qj_buf_printf(b, ",\"bytes\":%zu", len);
    qj_buf_puts(b, "}");
}

static int build_metadata(conv *cv, char *err, size_t errlen) {
    qj_buf *b = &cv->meta;
    const char *q = cv->quant;
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    qj_buf_puts(b, "{\"format\":\"qrm\",\"format_version\":1,\"hf_architecture\":");
    qj_buf_put_value(b, &qj_get(cv->cfg, "architectures")->u.items[0]);
    qj_buf_puts(b, ",\"model\":");
    qrm_hparams_to_json(&cv->hp, b);
    /* the head: f32 vectors or rows, or a vocabulary matrix stored like the
     * backbone's (quantized, or f16 when its rows are not whole panels) */
    const char *head = "head (f32)";
    for (int i = cv->head_plan; i < cv->n_plan; i++)
        if (cv->plan[i].type == QRM_T_F16 && (!strcmp(q, "int8") || !strcmp(q, "int4")))
            head = "the vocabulary head (f16: its rows are not a multiple of 16)";
        else if (cv->plan[i].type != QRM_T_F32) head = "the vocabulary head stored as the other matrices";
    qj_buf_printf(b,
                  ",\"quant\":{\"type\":\"%s\",\"group_size\":%d,\"weight_scales\":\"f16\","
                  "\"weights\":\"%s\",\"activations\":\"int8, per token in groups of %d along K, "
                  "absmax scale\",\"kept_float\":\"embeddings (%s), norms, biases, %s\"}",
                  q, QRM_QK,
                  !strcmp(q, "int4") ? (cv->calib.n ? "4-bit symmetric; per matrix, of the plain search, the activation-weighted search and GPTQ, the one with the least output error on held-out calibration lines"
                                                    : "4-bit symmetric, scale searched for least squared error")
                  : !strcmp(q, "int8") ? "8-bit symmetric, absmax scale" : "float",
                  QRM_QK, !strcmp(q, "f32") ? "f32" : "f16", head);
    if (cv->o->int4_budget > 0) {
        b->len--; /* inside "quant": which matrices the budget kept int8 */
        qj_buf_printf(b, ",\"int4_budget\":%g,\"bits_per_weight\":%.4f,\"int8_tensors\":[",
                      cv->o->int4_budget, cv->budget_bits);
        for (int i = 0, first = 1; i < cv->n_plan; i++)
            if (cv->plan[i].type == QRM_T_Q8) {
                qj_buf_printf(b, "%s\"%s\"", first ? "" : ",", cv->plan[i].name);
                first = 0;
            }
        qj_buf_puts(b, "]}");
    }
    qj_buf_puts(b, ",\"head\":");
    qrm_head_to_json(&cv->head, b);
    qj_buf_puts(b, ",\"tokenizer\":{\"json\":\"tokenizer.json\",\"config\":\"tokenizer_config.json\"");
    put_special_id(b, "bos_token_id", cv->cfg);
    put_special_id(b, "pad_token_id", cv->cfg);
    qj_buf_puts(b, ",\"input_rule\":\"render chat template; drop a duplicated leading BOS; "
                   "tokenize without added special tokens\"}");
    /* the data's checksum, filled in by the writer (qrm verify checks it) */
    qj_buf_puts(b, ",\"integrity\":{" QRM_SHA256_PLACEHOLDER ",\"covers\":\"data_offset to the end of the file\"}");
    qj_buf_printf(b, ",\"provenance\":{\"converter\":\"qrm-convert %s\",\"created\":\"%s\","
                     "\"source_dtypes\":[", QRM_CONVERTER_VERSION, date);
    for (int d = 0, first = 1; d < 3; d++)
        if (cv->ck.dtypes_seen & (1 << d)) {
            qj_buf_printf(b, "%s\"%s\"", first ? "" : ",", qrm_st_dtype_name((qrm_st_dtype)d));
            first = 0;
        }
    qj_buf_puts(b, "]");
    if (cv->calib.n)
        qj_buf_printf(b, ",\"calibration_sha256\":\"%s\",\"calibration_tokens\":%zu", cv->calib.sha256,
                      cv->calib.n_tokens);
    qj_buf_puts(b, ",\"files\":[");
    put_file(b, "config.json", cv->cfg_text, cv->cfg_len, 0);
    qj_buf_puts(b, ",");
    put_file(b, "tokenizer.json", cv->tok_text, cv->tok_len, 0);
    qj_buf_puts(b, ",");
    put_file(b, "tokenizer_config.json", cv->tcfg_text, cv->tcfg_len, 0);
    for (int i = 0; i < cv->ck.n_files; i++) {
        qj_buf_puts(b, ",{\"name\":");
        qj_buf_put_string(b, cv->ck.file_names[i], strlen(cv->ck.file_names[i]));
        qj_buf_printf(b, ",\"sha256\":\"%s\",\"bytes\":%zu}", cv->ck.sha256[i], cv->ck.maps[i].size);
    }
    qj_buf_puts(b, "]}}");
    if (b->oom) FAIL("out of memory");
    return 0;
}

/* ---- write ---- */

/* One planned tensor's stored bytes (malloc'd). */
/* ch: when the tensor is calibrated int4, what was chosen (method -1 otherwise) */
static uint8_t *encode(const planned *p, float norm_offset, const qrm_calib_tensor *ct, qrm_q4_choice *ch,
                       size_t *size) {
    size_t n = (size_t)p->ne0 * (size_t)p->ne1;
    int ok;
    ch->method = -1;
    *size = qrm_tensor_nbytes(p->type, (uint64_t)p->ne0, (uint64_t)p->ne1, &ok);
    uint8_t *out = calloc(*size ? *size : 1, 1);
    if (!out) return NULL;
    /* norms computing x * (offset + w) (Gemma2): the offset baked in, in f32 as HF does */
    float add = p->kind == QRM_ROLE_NORM ? norm_offset : 0.0f;
    if (p->n_rows) { /* picked rows, f32 */
        float *o = (float *)out;
        for (size_t i = 0; i < n; i++)
            o[i] = qrm_st_get(p->src, (size_t)p->rows[i / (size_t)p->ne1] * (size_t)p->ne1 + i % (size_t)p->ne1);
    } else if (p->type == QRM_T_F32) {
        float *o = (float *)out;
        for (size_t i = 0; i < n; i++) o[i] = qrm_st_get(p->src, i) + add;
    } else if (p->type == QRM_T_F16) {
        uint16_t *o = (uint16_t *)out;
        for (size_t i = 0; i < n; i++) o[i] = qrm_f32_to_f16(qrm_st_get(p->src, i));
    } else {
        int K = (int)p->ne1, N = (int)p->ne0, wt = p->type == QRM_T_Q8 ? QRM_WQ8 : QRM_WQ4;
        if (wt == QRM_WQ4 && ct && ct->packed && qrm_quant_size(wt, N, K) == *size) {
            /* chosen layer by layer while calibrating (tools/calib.c) */
            memcpy(out, ct->packed, *size);
            ch->method = ct->method;
            ch->heldout_plain = 1, ch->heldout_chosen = ct->heldout_ratio;
            return out;
        }
        float *rows = malloc((size_t)QRM_PANEL * K * sizeof(float));
        if (!rows) {
            free(out);
            return NULL;
        }
        for (int pnl = 0; pnl < N / QRM_PANEL; pnl++) {
            for (size_t i = 0; i < (size_t)QRM_PANEL * K; i++)
                rows[i] = qrm_st_get(p->src, (size_t)pnl * QRM_PANEL * K + i);
            qrm_quantize_panel_weighted(wt, rows, K, pnl, N, out, NULL);
        }
        free(rows);
    }
    return out;
}

static int write_file(conv *cv, qrm_writer *w, char *err, size_t errlen) {
    const qrm_convert_opts *o = cv->o;
    for (int i = 0; i < cv->n_plan; i++) {
        const planned *p = &cv->plan[i];
        if (qrm_writer_add(w, p->name, p->type, p->ndim, (uint64_t)p->ne0, (uint64_t)p->ne1, err, errlen))
            return -1;
    }
    if (qrm_writer_add(w, "tokenizer.json", QRM_T_BYTES, 1, cv->tok_len, 1, err, errlen) ||
        qrm_writer_add(w, "tokenizer_config.json", QRM_T_BYTES, 1, cv->tcfg_len, 1, err, errlen) ||
        qrm_writer_begin(w, o->out_path, cv->meta.buf, cv->meta.len, err, errlen))
        return -1;
    uint64_t done = 0;
    int progress = o->verbose && cv->total_bytes > (64u << 20);
    int methods[3] = {0};
    double ratio = 0;   /* sum of held-out output error / plain's */
    for (int i = 0; i < cv->n_plan; i++) {
        size_t sz;
        qrm_q4_choice ch;
        uint8_t *data = encode(&cv->plan[i], cv->arch->norm_offset,
                               qrm_calib_find(&cv->calib, cv->plan[i].name, (int)cv->plan[i].ne1), &ch, &sz);
        if (!data) FAIL("out of memory converting '%s'", cv->plan[i].name);
        if (ch.method >= 0) {
            methods[ch.method]++;
            ratio += ch.heldout_plain > 0 ? ch.heldout_chosen / ch.heldout_plain : 1;
        }
        int wrc = qrm_writer_data(w, data, sz, err, errlen);
        free(data);
        if (wrc) return -1;
        done += cv->plan[i].src->nbytes;
        if (progress)
            fprintf(stderr, "\rqrm-convert: %5.1f%% %s            ",
                    100.0 * (double)done / (double)cv->total_bytes, cv->plan[i].name);
    }
    if (progress) fprintf(stderr, "\n");
    int nc = methods[0] + methods[1] + methods[2];
    if (o->verbose && nc)
        fprintf(stderr,
                "qrm-convert: calibrated int4: %d matrices plain, %d weighted, %d GPTQ; held-out output error %.3f of "
                "plain's (mean)\n",
                methods[0], methods[1], methods[2], ratio / nc);
    if (qrm_writer_data(w, cv->tok_text, cv->tok_len, err, errlen) ||
        qrm_writer_data(w, cv->tcfg_text, cv->tcfg_len, err, errlen))
        return -1;
    return qrm_writer_finish(w, err, errlen);
}

/* --int4-budget: greedy, by the relative output error int8 saves per added
 * bit (activation-weighted with --calib), as long as the mean stays within
 * the budget. */
static int spend_budget(conv *cv, char *err, size_t errlen) {
    double B = cv->o->int4_budget;
    if (B <= 0) return 0;
    if (strcmp(cv->quant, "int4")) FAIL("--int4-budget applies to --quant int4 only");
    if (!(B >= 4.5 && B <= 8.5)) FAIL("--int4-budget is mean bits per weight, from 4.5 (all int4) to 8.5 (all int8), not %g", B);
    int n = 0;
    double total = 0, used = 0;
    double *gain = calloc((size_t)cv->n_plan + 1, sizeof *gain);
    if (!gain) FAIL("out of memory");
    for (int i = 0; i < cv->n_plan; i++) {
        planned *p = &cv->plan[i];
        if (p->type != QRM_T_Q4) continue;
        const qrm_calib_tensor *ct = qrm_calib_find(&cv->calib, p->name, (int)p->ne1);
        const float *imp = ct ? ct->imp : NULL;
        double w = (double)p->ne0 * (double)p->ne1;
        gain[i] = (qrm_calib_rel_error(p->src, (int)p->ne0, (int)p->ne1, QRM_WQ4, imp) -
                   qrm_calib_rel_error(p->src, (int)p->ne0, (int)p->ne1, QRM_WQ8, imp)) / (4 * w);
        total += w, used += 4.5 * w;
        n++;
    }
    for (;;) {
        int best = -1;
        for (int i = 0; i < cv->n_plan; i++) {
            planned *p = &cv->plan[i];
            if (p->type != QRM_T_Q4 || gain[i] <= 0) continue;
            if (used + 4.0 * (double)p->ne0 * (double)p->ne1 > B * total + 1e-9) continue;
            if (best < 0 || gain[i] > gain[best]) best = i;
        }
        if (best < 0) break;
        cv->plan[best].type = QRM_T_Q8;
        used += 4.0 * (double)cv->plan[best].ne0 * (double)cv->plan[best].ne1;
        cv->n_int8++;
    }
    free(gain);
    cv->budget_bits = total > 0 ? used / total : 0;
    if (cv->o->verbose)
        fprintf(stderr, "qrm-convert: --int4-budget %g: %d of %d matrices int8, %.3f bits per weight\n", B,
                cv->n_int8, n, cv->budget_bits);
    return 0;
}

static int calibrate(conv *cv, char *err, size_t errlen) {
    if (!cv->o->calib) return 0;
    if (strcmp(cv->quant, "int4")) FAIL("--calib applies to --quant int4 only");
    if (qrm_calib_collect(cv->o, cv->o->calib, &cv->calib, err, errlen)) return -1;
    if (cv->o->verbose)
        fprintf(stderr, "qrm-convert: calibration: %zu lines, %zu tokens, %d matrices\n", cv->calib.n_lines,
                cv->calib.n_tokens, cv->calib.n);
    if (cv->o->verbose && cv->calib.n_refused)
        fprintf(stderr, "qrm-convert: calibration: %zu lines the model cannot score were skipped (%s)\n",
                cv->calib.n_refused, cv->calib.refused);
    return 0;
}

int qrm_convert(const qrm_convert_opts *o, char *err, size_t errlen) {
    conv cv;
    memset(&cv, 0, sizeof cv);
    cv.o = o;
    cv.quant = o->quant ? o->quant : "int8";
    qrm_writer w;
    qrm_writer_init(&w);
    int rc = -1;
    if (!o->hf_dir || !o->out_path) {
        snprintf(err, errlen, "no input folder or output path given");
    } else if (strcmp(cv.quant, "f32") && strcmp(cv.quant, "f16") && strcmp(cv.quant, "int8") &&
               strcmp(cv.quant, "int4")) {
        snprintf(err, errlen, "unknown --quant '%s' (use f32, f16, int8 or int4)", cv.quant);
    } else if (!read_inputs(&cv, err, errlen) && !resolve_model(&cv, err, errlen) &&
               !plan_tensors(&cv, err, errlen) && !calibrate(&cv, err, errlen) &&
               !spend_budget(&cv, err, errlen) &&
               !build_metadata(&cv, err, errlen) &&
               !write_file(&cv, &w, err, errlen)) {
        rc = 0;
    }
    /* the message may quote the inputs (an architecture name, a tensor
     * name); it stays one line whatever they hold */
    for (char *p = rc && errlen ? err : NULL; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    qrm_writer_abort(&w);
    qrm_calib_free(&cv.calib);
    qrm_checkpoint_close(&cv.ck);
    qrm_tokenizer_free(cv.tok);
    qj_free(cv.cfg_doc);
    qj_buf_free(&cv.meta);
    free(cv.cfg_text), free(cv.tok_text), free(cv.tcfg_text), free(cv.plan);
    return rc;
}
