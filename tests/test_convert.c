/* The converter (tools/convert.c, tools/safetensors.c, models/families.c)
 * against broken Hugging Face folders, and its handling of the checkpoint
 * forms it must accept: shards, BF16 and F16 sources.
 *
 * Each case copies the qwen3-tiny fixture into a temporary folder, breaks
 * one thing (config.json text, a rewritten safetensors file, an index) and
 * calls qrm_convert directly. A failure must return -1 with a one-line
 * message naming the problem, and leave nothing in the output directory:
 * neither the .qrm nor its temporary file. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convert.h"
#include "f16.h"
#include "format.h"
#include "json.h"
#include "qrm.h"
#include "testutil.h"

#define FIXTURE TEST_DATA "/models/qwen3-tiny"

/* ---- files and folders ---- */

static char *path2(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    ck_assert(p != NULL);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *dir, const char *name, const void *data, size_t len) {
    char *p = path2(dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", p);
    ck_assert(fwrite(data, 1, len, f) == len);
    ck_assert(fclose(f) == 0);
    free(p);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char *p = path2(from_dir, name);
    size_t len;
    char *data = tu_read_file(p, &len);
    write_bytes(to_dir, name, data, len);
    free(data), free(p);
}

static void remove_file(const char *dir, const char *name) {
    char *p = path2(dir, name);
    ck_assert_msg(unlink(p) == 0, "cannot remove %s", p);
    free(p);
}

/* Entries of a directory other than . and .. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* The temporary folders of the running test, so that a failing check can
 * remove them all before it ends the test. */
static char *g_dirs[16];

static char *new_tmpdir(void) {
    char *d = tu_tmpdir();
    for (int i = 0; i < 16; i++)
        if (!g_dirs[i]) {
            g_dirs[i] = d;
            break;
        }
    return d;
}

/* Removes a flat folder made by new_tmpdir and frees its name. */
static void remove_dir(char *dir) {
    for (int i = 0; i < 16; i++)
        if (g_dirs[i] == dir) g_dirs[i] = NULL;
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = path2(dir, e->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static void remove_all_dirs(void) {
    for (int i = 0; i < 16; i++)
        if (g_dirs[i]) remove_dir(g_dirs[i]);
}

/* A copy of a fixture folder's four files in a fresh folder. */
static char *hf_copy_of(const char *fixture) {
    char *dir = new_tmpdir();
    const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                           "model.safetensors"};
    for (int i = 0; i < 4; i++) copy_file(fixture, dir, files[i]);
    return dir;
}

/* A copy of the qwen3-tiny fixture. */
static char *hf_copy(void) { return hf_copy_of(FIXTURE); }

/* Replaces the first occurrence of from in dir/name. */
static void edit_file(const char *dir, const char *name, const char *from, const char *to) {
    char *p = path2(dir, name);
    size_t len;
    char *text = tu_read_file(p, &len);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "%s has no '%s'", name, from);
    size_t pre = (size_t)(at - text), fl = strlen(from), tl = strlen(to);
    char *out = malloc(len - fl + tl + 1);
    memcpy(out, text, pre);
    memcpy(out + pre, to, tl);
    memcpy(out + pre + tl, at + fl, len - pre - fl);
    write_bytes(dir, name, out, len - fl + tl);
    free(out), free(text), free(p);
}

static void write_text(const char *dir, const char *name, const char *text) {
    write_bytes(dir, name, text, strlen(text));
}

/* ---- safetensors, read and written by the test itself ---- */

typedef struct {
    char name[96];
    char dtype[8];
    int ndim;
    int64_t shape[8];
    uint8_t *data;
    size_t nbytes;
    int64_t end_delta;          /* added to the header's end offset only */
} st_tensor;

typedef struct {
    st_tensor t[64];
    int n;
} st_set;

static void st_load(const char *path, st_set *s) {
    size_t len;
    char *file = tu_read_file(path, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)(uint8_t)file[i] << (8 * i);
    ck_assert(hlen <= len - 8);
    char err[200];
    qj_doc *d = qj_parse(file + 8, hlen, err, sizeof err);
    ck_assert_msg(d != NULL, "%s: %s", path, err);
    const qj_value *root = qj_root(d);
    memset(s, 0, sizeof *s);
    for (uint32_t i = 0; i < root->len; i++) {
        const qj_member *m = &root->u.members[i];
        if (!strcmp(m->key, "__metadata__")) continue;
        ck_assert(s->n < 64);
        st_tensor *t = &s->t[s->n++];
        snprintf(t->name, sizeof t->name, "%s", m->key);
        snprintf(t->dtype, sizeof t->dtype, "%s", qj_get_str(&m->value, "dtype"));
        const qj_value *shape = qj_get_type(&m->value, "shape", QJ_ARRAY);
        const qj_value *offs = qj_get_type(&m->value, "data_offsets", QJ_ARRAY);
        t->ndim = (int)shape->len;
        for (int k = 0; k < t->ndim; k++) t->shape[k] = (int64_t)shape->u.items[k].u.num;
        size_t b = (size_t)offs->u.items[0].u.num, e = (size_t)offs->u.items[1].u.num;
        t->nbytes = e - b;
        t->data = malloc(t->nbytes);
        memcpy(t->data, file + 8 + hlen + b, t->nbytes);
    }
    qj_free(d);
    free(file);
}

static void st_free(st_set *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].data);
    s->n = 0;
}

static st_tensor *st_find(st_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    ck_abort_msg("no tensor '%s'", name);
    return NULL;
}

/* Removes tensor name from the set. */
static void st_drop(st_set *s, const char *name) {
    st_tensor *t = st_find(s, name);
    free(t->data);
    memmove(t, t + 1, (size_t)(s->t + s->n - (t + 1)) * sizeof *t);
    s->n--;
}

/* 8-byte little-endian header length, the JSON header, the data. */
static void st_write_raw(const char *dir, const char *name, const char *hdr, size_t hlen,
                         const uint8_t *data, size_t dlen) {
    char *p = path2(dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert(f != NULL);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    ck_assert(fwrite(le, 1, 8, f) == 8);
    ck_assert(fwrite(hdr, 1, hlen, f) == hlen);
    if (dlen) ck_assert(fwrite(data, 1, dlen, f) == dlen);
    ck_assert(fclose(f) == 0);
    free(p);
}

/* Writes the tensors whose index i has i % n_parts == part (all when n_parts is 1). */
static void st_write_part(const char *dir, const char *name, const st_set *s, int part,
                          int n_parts) {
    qj_buf h = {0};
    qj_buf_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0, total = 0;
    for (int i = 0; i < s->n; i++)
        if (i % n_parts == part) total += s->t[i].nbytes;
    uint8_t *data = malloc(total ? total : 1);
    for (int i = 0; i < s->n; i++) {
        const st_tensor *t = &s->t[i];
        if (i % n_parts != part) continue;
        qj_buf_puts(&h, ",");
        qj_buf_put_string(&h, t->name, strlen(t->name));
        qj_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", t->dtype);
        for (int k = 0; k < t->ndim; k++) qj_buf_printf(&h, "%s%lld", k ? "," : "", (long long)t->shape[k]);
        qj_buf_printf(&h, "],\"data_offsets\":[%zu,%lld]}", off,
                      (long long)(off + t->nbytes) + (long long)t->end_delta);
        memcpy(data + off, t->data, t->nbytes);
        off += t->nbytes;
    }
    qj_buf_puts(&h, "}");
    while (h.len % 8) qj_buf_puts(&h, " ");   /* as Hugging Face pads it */
    ck_assert(!h.oom);
    st_write_raw(dir, name, h.buf, h.len, data, off);
    qj_buf_free(&h);
    free(data);
}

static void st_write(const char *dir, const st_set *s) {
    st_write_part(dir, "model.safetensors", s, 0, 1);
}

/* ---- converting ---- */

/* A failure of the conversion o describes (its out_path is set here): -1,
 * one line naming the problem (want, and want2 when given), nothing left in
 * the output folder. */
static void expect_fail_opts(const qrm_convert_opts *opts, const char *want, const char *want2) {
    char *out_dir = new_tmpdir();
    char *out = path2(out_dir, "model.qrm");
    qrm_convert_opts o = *opts;
    o.out_path = out;
    char err[QRM_ERR_MAX] = "", problem[600] = "";
    int rc = qrm_convert(&o, err, sizeof err);
    int left = count_entries(out_dir);
    free(out);
    remove_dir(out_dir);
    if (rc != -1)
        snprintf(problem, sizeof problem, "conversion returned %d, wanted a failure naming '%s'", rc, want);
    else if (!err[0])
        snprintf(problem, sizeof problem, "failed with an empty message (wanted '%s')", want);
    else if (strchr(err, '\n'))
        snprintf(problem, sizeof problem, "message is not one line: %s", err);
    else if (!strstr(err, want) || (want2 && !strstr(err, want2)))
        snprintf(problem, sizeof problem, "message '%s' lacks '%s'", err,
                 strstr(err, want) ? want2 : want);
    else if (left)
        snprintf(problem, sizeof problem, "the failed conversion left %d files in the output folder", left);
    if (problem[0]) {
        remove_all_dirs();
        ck_abort_msg("%s", problem);
    }
}

static void expect_fail_quant(const char *hf, const char *quant, const char *want,
                              const char *want2) {
    qrm_convert_opts o = {.hf_dir = hf, .quant = quant};
    expect_fail_opts(&o, want, want2);
}

static void expect_fail(const char *hf, const char *want, const char *want2) {
    expect_fail_quant(hf, "int8", want, want2);
}

/* A copy of a fixture with the config edited, converted, expected to fail. */
static void config_case_of(const char *fixture, const char *from, const char *to,
                           const char *want, const char *want2) {
    char *hf = hf_copy_of(fixture);
    edit_file(hf, "config.json", from, to);
    expect_fail(hf, want, want2);
    remove_dir(hf);
}

static void config_case(const char *from, const char *to, const char *want, const char *want2) {
    config_case_of(FIXTURE, from, to, want, want2);
}

static char *convert_ok(const char *hf, const char *quant, const char *out_dir, const char *name) {
    char *out = path2(out_dir, name);
    qrm_convert_opts o = {.hf_dir = hf, .out_path = out, .quant = quant};
    char err[QRM_ERR_MAX] = "";
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "converting %s: %s", hf, err);
    return out;
}

/* The expected.jsonl id sequences of the fixture, and its float64 scores. */
#define MAX_SEQ 16
typedef struct {
    int n;
    int32_t *ids[MAX_SEQ];
    size_t len[MAX_SEQ];
    double score[MAX_SEQ];
} sequences;

static void add_line(const char *line, size_t len, void *arg) {
    sequences *s = arg;
    char err[200];
    qj_doc *d = qj_parse(line, len, err, sizeof err);
    ck_assert_msg(d != NULL, "expected.jsonl: %s", err);
    const qj_value *ids = qj_get_type(qj_root(d), "ids", QJ_ARRAY);
    ck_assert(ids && s->n < MAX_SEQ && qj_get_num(qj_root(d), "score", &s->score[s->n]));
    s->ids[s->n] = malloc(ids->len * sizeof(int32_t));
    for (uint32_t i = 0; i < ids->len; i++) s->ids[s->n][i] = (int32_t)ids->u.items[i].u.num;
    s->len[s->n++] = ids->len;
    qj_free(d);
}

static void load_sequences(sequences *s) {
    memset(s, 0, sizeof *s);
    tu_for_each_line(FIXTURE "/expected.jsonl", add_line, s);
    ck_assert_int_eq(s->n, 12);
}

static void free_sequences(sequences *s) {
    for (int i = 0; i < s->n; i++) free(s->ids[i]);
}

/* Scores every sequence with one thread; also returns the metadata JSON (malloc'd). */
static void score_file(const char *path, const sequences *s, float *out, char **meta) {
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    ck_assert_msg(m != NULL, "%s: %s", path, err);
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = 1;
    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    for (int i = 0; i < s->n; i++)
        ck_assert_msg(qrm_score_ids(c, s->ids[i], s->len[i], &out[i]) == 0, "%s", qrm_ctx_error(c));
    if (meta) *meta = strdup(qrm_model_metadata_json(m));
    qrm_ctx_free(c);
    qrm_model_close(m);
}

/* The tensor data of a .qrm file (everything from data_offset on). */
static uint8_t *read_data_region(const char *path, size_t *len) {
    size_t n;
    uint8_t *file = (uint8_t *)tu_read_file(path, &n);
    ck_assert(n > QRM_HEADER_SIZE);
    uint64_t doff = qrm_rd64(file + QRM_H_DATA_OFFSET);
    ck_assert(doff <= n);
    *len = n - doff;
    uint8_t *d = malloc(*len ? *len : 1);
    memcpy(d, file + doff, *len);
    free(file);
    return d;
}

static void assert_same_data(const char *a, const char *b) {
    size_t la, lb;
    uint8_t *da = read_data_region(a, &la), *db = read_data_region(b, &lb);
    ck_assert_msg(la == lb, "tensor data sizes differ: %zu vs %zu", la, lb);
    size_t i = 0;
    while (i < la && da[i] == db[i]) i++;
    ck_assert_msg(i == la, "tensor data differ at byte %zu of %zu", i, la);
    free(da), free(db);
}

/* ---- missing inputs ---- */

START_TEST(missing_hf_dir) {
    expect_fail(TEST_DATA "/no-such-model-folder", "no-such-model-folder", "config.json");
}
END_TEST

static const char *required_files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                       "model.safetensors"};

START_TEST(missing_file) {
    char *hf = hf_copy();
    remove_file(hf, required_files[_i]);
    expect_fail(hf, required_files[_i], NULL);
    remove_dir(hf);
}
END_TEST

START_TEST(bad_quant_and_output) {
    char *hf = hf_copy();
    expect_fail_quant(hf, "int3", "unknown --quant 'int3'", NULL);
    /* an output folder that does not exist */
    char out[512], err[QRM_ERR_MAX] = "";
    snprintf(out, sizeof out, "%s/no-such-folder/model.qrm", hf);
    qrm_convert_opts o = {.hf_dir = hf, .out_path = out, .quant = "f32"};
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot create") && !strchr(err, '\n'), "%s", err);
    /* an output path that is a folder: the temporary file must go away */
    char *out_dir = new_tmpdir();
    char *sub = path2(out_dir, "model.qrm");
    ck_assert(mkdir(sub, 0700) == 0);
    o.out_path = sub;
    err[0] = 0;
    ck_assert_int_eq(qrm_convert(&o, err, sizeof err), -1);
    ck_assert_msg(err[0] && !strchr(err, '\n'), "%s", err);
    int left = count_entries(out_dir), inside = count_entries(sub);
    rmdir(sub);
    free(sub);
    remove_dir(out_dir);
    ck_assert_msg(left == 1 && inside == 0, "an output path that is a folder left %d files", left - 1);
    remove_dir(hf);
}
END_TEST

/* ---- config.json ---- */

START_TEST(unsupported_architecture) {
    config_case("\"Qwen3ForSequenceClassification\"", "\"BertForSequenceClassification\"",
                "unsupported architecture 'BertForSequenceClassification'",
                "supported: Llama, Mistral, Qwen2, Qwen3, Gemma2, each with ForSequenceClassification");
    /* a known architecture with a head qrm does not read */
    config_case("\"Qwen3ForSequenceClassification\"", "\"Qwen3ForQuestionAnswering\"",
                "unsupported architecture 'Qwen3ForQuestionAnswering'", "ForProcessRewardModel");
    config_case("\"architectures\": [", "\"architectures\": [], \"x\": [", "missing 'architectures'",
                NULL);
}
END_TEST

START_TEST(config_invalid_json) {
    config_case("\"hidden_size\": 64,", "\"hidden_size\": 64,,", "config.json: invalid JSON", NULL);
    config_case("{", "[{", "config.json", NULL);
    char *hf = hf_copy();
    write_text(hf, "config.json", "[1, 2]");
    expect_fail(hf, "config.json: not a JSON object", NULL);
    write_text(hf, "config.json", "");
    expect_fail(hf, "config.json: invalid JSON", NULL);
    remove_dir(hf);
}
END_TEST

static const struct {
    const char *from, *to, *want, *want2;
} config_cases[] = {
    {"\"hidden_size\": 64,", "", "missing 'hidden_size'", NULL},
    {"\"vocab_size\": 320,", "", "missing 'vocab_size'", NULL},
    {"\"num_hidden_layers\": 3,", "", "missing 'num_hidden_layers'", NULL},
    {"\"num_hidden_layers\": 3,", "\"num_hidden_layers\": 0,", "'num_hidden_layers' = 0 is out of range", NULL},
    {"\"hidden_size\": 64,", "\"hidden_size\": \"64\",", "'hidden_size' is not an integer", NULL},
    {"\"num_key_value_heads\": 2,", "\"num_key_value_heads\": 3,",
     "'num_attention_heads' (4) must be a multiple of 'num_key_value_heads' (3)", NULL},
    /* hidden 64 is not divisible by 6 heads, and no head_dim says otherwise */
    {"\"num_attention_heads\": 4,", "\"num_attention_heads\": 6,",
     "hidden_size 64 is not divisible by num_attention_heads 6", "no head_dim"},
    {"\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}",
     "rope_scaling type 'yarn' is not supported", NULL},
    {"\"rope_scaling\": null", "\"rope_scaling\": {\"factor\": 4.0}", "rope_scaling has no 'rope_type'", NULL},
    {"\"rope_scaling\": null", "\"rope_scaling\": 4", "'rope_scaling' is not an object", NULL},
    {"\"rope_scaling\": null",
     "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, "
     "\"high_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192}",
     "high_freq_factor > low_freq_factor", NULL},
    {"\"head_dim\": 32", "\"head_dim\": 33", "'head_dim' = 33 must be even", NULL},
    {"\"hidden_act\": \"silu\"", "\"hidden_act\": \"relu\"", "activation 'relu' is not supported", NULL},
    {"\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 0", "'rms_norm_eps' = 0 is out of range", NULL},
    {"\"rope_theta\": 1000000.0", "\"rope_theta\": \"big\"", "'rope_theta' is not a number", NULL},
    {"\"num_labels\": 1", "\"num_labels\": 0", "'num_labels' = 0 is out of range", NULL},
    {"\"attention_bias\": false", "\"attention_bias\": true", "attention_bias = true is not supported", NULL},
    {"\"use_sliding_window\": false", "\"use_sliding_window\": true", "use_sliding_window", NULL},
    {"\"pad_token_id\": 319", "\"pad_token_id\": -5", "'pad_token_id' = -5 is out of range", NULL},
    /* consistent configs that disagree with the weights */
    {"\"num_labels\": 1", "\"num_labels\": 2", "num_labels is 2 but id2label has 1 entries", NULL},
    {"\"intermediate_size\": 192", "\"intermediate_size\": 256", "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [192, 64], expected [256, 64]", NULL},
};

START_TEST(config_bad) {
    /* the fixture's config.json has the keys in this order with ", " and ": " */
    const char *from = config_cases[_i].from, *to = config_cases[_i].to;
    char *hf = hf_copy();
    if (!strcmp(from, "\"num_attention_heads\": 4,")) edit_file(hf, "config.json", "\"head_dim\": 32,", "");
    edit_file(hf, "config.json", from, to);
    expect_fail(hf, config_cases[_i].want, config_cases[_i].want2);
    remove_dir(hf);
}
END_TEST

/* ---- safetensors ---- */

static void st_case(void (*damage)(st_set *), const char *want, const char *want2) {
    char *hf = hf_copy();
    st_set s;
    st_load(FIXTURE "/model.safetensors", &s);
    damage(&s);
    st_write(hf, &s);
    st_free(&s);
    expect_fail(hf, want, want2);
    remove_dir(hf);
}

static void dmg_i32(st_set *s) { strcpy(st_find(s, "model.norm.weight")->dtype, "I32"); }
static void dmg_f64(st_set *s) { strcpy(st_find(s, "model.norm.weight")->dtype, "F64"); }
static void dmg_unused_i64(st_set *s) {
    ck_assert(s->n < 64);
    st_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, "extra.step_counter");
    strcpy(t->dtype, "I64");
    t->ndim = 1, t->shape[0] = 1, t->nbytes = 8;
    t->data = calloc(8, 1);
}
static void dmg_end_past(st_set *s) { s->t[s->n - 1].end_delta = 4; }
static void dmg_count(st_set *s) { st_find(s, "model.norm.weight")->shape[0] = 63; }
static void dmg_count_2d(st_set *s) { st_find(s, "model.layers.1.mlp.up_proj.weight")->shape[1] = 65; }
static void dmg_missing(st_set *s) { st_drop(s, "model.layers.1.self_attn.k_norm.weight"); }
static void dmg_missing_score(st_set *s) { st_drop(s, "score.weight"); }
static void dmg_transposed(st_set *s) {
    st_tensor *t = st_find(s, "model.layers.2.self_attn.q_proj.weight");
    t->shape[0] = 64, t->shape[1] = 128;
}
static void dmg_1d_as_2d(st_set *s) {
    st_tensor *t = st_find(s, "model.norm.weight");
    t->ndim = 2, t->shape[0] = 1, t->shape[1] = 64;
}
static void dmg_head_1d(st_set *s) {
    st_tensor *t = st_find(s, "score.weight");
    t->ndim = 1, t->shape[0] = 64;
}
static void dmg_norm_3d(st_set *s) {
    st_tensor *t = st_find(s, "model.norm.weight");
    t->ndim = 3, t->shape[0] = 64, t->shape[1] = t->shape[2] = 1;
}
static void dmg_5d(st_set *s) {
    st_tensor *t = st_find(s, "model.norm.weight");
    t->ndim = 5;
    t->shape[0] = 64, t->shape[1] = t->shape[2] = t->shape[3] = 1;
}
static void dmg_duplicate(st_set *s) {
    ck_assert(s->n < 64);
    st_tensor *t = &s->t[s->n++], *src = st_find(s, "model.norm.weight");
    *t = *src;
    t->data = malloc(t->nbytes);
    memcpy(t->data, src->data, t->nbytes);
}

START_TEST(safetensors_bad_dtype) {
    st_case(dmg_i32, "tensor 'model.norm.weight' has dtype I32", "supported: F32, F16, BF16");
    st_case(dmg_f64, "tensor 'model.norm.weight' has dtype F64", "supported: F32, F16, BF16");
    /* even in a tensor the model does not use: the file is not what it claims */
    st_case(dmg_unused_i64, "has dtype I64", NULL);
}
END_TEST

START_TEST(safetensors_data_outside) {
    st_case(dmg_end_past, "data_offsets lie outside the file", NULL);
}
END_TEST

START_TEST(safetensors_size_mismatch) {
    st_case(dmg_count, "tensor 'model.norm.weight' occupies 256 bytes but its shape needs 252", NULL);
    st_case(dmg_count_2d, "occupies 49152 bytes but its shape needs 49920", NULL);
}
END_TEST

START_TEST(safetensors_missing_tensor) {
    st_case(dmg_missing, "missing tensor 'model.layers.1.self_attn.k_norm.weight'", NULL);
    st_case(dmg_missing_score, "missing tensor 'score.weight'", NULL);
}
END_TEST

START_TEST(safetensors_misshaped_tensor) {
    st_case(dmg_transposed,
            "tensor 'model.layers.2.self_attn.q_proj.weight' has shape [64, 128], expected [128, 64]",
            NULL);
    st_case(dmg_1d_as_2d, "tensor 'model.norm.weight' has shape [1, 64], expected [64]", NULL);
    st_case(dmg_head_1d, "tensor 'score.weight' has shape [64], expected [1, 64]", NULL);
    st_case(dmg_norm_3d, "tensor 'model.norm.weight' has shape [64, 1, 1], expected [64]", NULL);
    st_case(dmg_5d, "tensor 'model.norm.weight' has 5 dimensions", NULL);
}
END_TEST

START_TEST(safetensors_duplicate_tensor) {
    st_case(dmg_duplicate, "tensor 'model.norm.weight' appears twice", NULL);
}
END_TEST

/* Hand-written headers, each with the bytes it claims (or not). */
static const struct {
    const char *header, *want;
    size_t data_len;
} raw_headers[] = {
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "header is not valid JSON", 8},
    {"[1,2,3]", "header is not a JSON object", 0},
    {"{\"a\":5}", "tensor 'a' lacks dtype, shape or data_offsets", 0},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "tensor 'a' lacks dtype, shape or data_offsets", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "lacks dtype, shape or data_offsets", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "tensor 'a' has an invalid shape", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "tensor 'a' has an invalid shape", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "tensor 'a' has an invalid shape", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000000,1000000000000],\"data_offsets\":[0,8]}}",
     "tensor 'a' shape overflows", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "data_offsets lie outside the file", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", "data_offsets lie outside the file", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", "data_offsets lie outside the file", 16},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551616]}}",
     "data_offsets lie outside the file", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}",
     "tensor 'a' has an invalid shape", 8},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,8]}}", "occupies 8 bytes but its shape needs 4", 8},
    {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", "lacks dtype", 8},
    {"{}", "missing tensor 'model.embed_tokens.weight'", 0},
};

START_TEST(safetensors_raw_header) {
    char *hf = hf_copy();
    static const uint8_t zeros[64];
    const char *h = raw_headers[_i].header;
    st_write_raw(hf, "model.safetensors", h, strlen(h), zeros, raw_headers[_i].data_len);
    expect_fail(hf, raw_headers[_i].want, NULL);
    remove_dir(hf);
}
END_TEST

START_TEST(safetensors_bad_header_length) {
    char *hf = hf_copy();
    size_t len;
    char *file = tu_read_file(FIXTURE "/model.safetensors", &len);
    char hlen_field[8];
    memcpy(hlen_field, file, 8);
    /* the header length: past the end, just past it, enormous */
    uint64_t lens[] = {len - 8 + 1, len, UINT64_MAX, 1ull << 40, UINT64_MAX - 7};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int i = 0; i < 8; i++) file[i] = (char)(lens[k] >> (8 * i));
        write_bytes(hf, "model.safetensors", file, len);
        expect_fail(hf, "header length", "past the end");
    }
    /* shorter than the length field itself, and empty */
    write_bytes(hf, "model.safetensors", file, 5);
    expect_fail(hf, "too short for a safetensors file", NULL);
    write_bytes(hf, "model.safetensors", file, 0);
    expect_fail(hf, "model.safetensors", NULL);
    /* cut in the middle of the data: the last tensor's offsets lie past the end */
    memcpy(file, hlen_field, 8);
    write_bytes(hf, "model.safetensors", file, len - 100);
    expect_fail(hf, "data_offsets lie outside the file", NULL);
    free(file);
    remove_dir(hf);
}
END_TEST

/* ---- sharded checkpoints ---- */

static const char *shard_names[] = {"model-00001-of-00002.safetensors",
                                    "model-00002-of-00002.safetensors"};

/* Writes the fixture as two shards and an index into hf; the index maps
 * tensor i to shard i % 2 unless map_override names another file for all. */
static void write_shards(const char *hf, const st_set *s, const char *override_name,
                         const char *override_file) {
    for (int p = 0; p < 2; p++) st_write_part(hf, shard_names[p], s, p, 2);
    qj_buf b = {0};
    size_t total = 0;
    for (int i = 0; i < s->n; i++) total += s->t[i].nbytes;
    qj_buf_printf(&b, "{\"metadata\":{\"total_size\":%zu},\"weight_map\":{", total);
    for (int i = 0; i < s->n; i++) {
        const char *file = shard_names[i % 2];
        if (override_name && !strcmp(override_name, s->t[i].name)) file = override_file;
        qj_buf_printf(&b, "%s\"%s\":", i ? "," : "", s->t[i].name);
        qj_buf_put_string(&b, file, strlen(file));
    }
    qj_buf_puts(&b, "}}");
    write_bytes(hf, "model.safetensors.index.json", b.buf, b.len);
    qj_buf_free(&b);
}

START_TEST(sharded_matches_single) {
    sequences seq;
    load_sequences(&seq);
    char *hf = hf_copy(), *out_dir = new_tmpdir();
    st_set s;
    st_load(FIXTURE "/model.safetensors", &s);
    write_shards(hf, &s, NULL, NULL);
    remove_file(hf, "model.safetensors");
    const char *quants[] = {"f32", "int8"};
    for (int q = 0; q < 2; q++) {
        char name[64];
        snprintf(name, sizeof name, "single-%s.qrm", quants[q]);
        char *single = convert_ok(FIXTURE, quants[q], out_dir, name);
        snprintf(name, sizeof name, "sharded-%s.qrm", quants[q]);
        char *sharded = convert_ok(hf, quants[q], out_dir, name);
        assert_same_data(single, sharded);
        float a[MAX_SEQ], b[MAX_SEQ];
        char *meta;
        score_file(single, &seq, a, NULL);
        score_file(sharded, &seq, b, &meta);
        for (int i = 0; i < seq.n; i++) {
            ck_assert_msg(isfinite(a[i]), "%s seq %d: %g", quants[q], i, (double)a[i]);
            ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0,
                          "%s seq %d: single %.9g, sharded %.9g", quants[q], i, (double)a[i],
                          (double)b[i]);
        }
        /* provenance names both shards */
        ck_assert(strstr(meta, shard_names[0]) && strstr(meta, shard_names[1]));
        ck_assert(strstr(meta, "\"source_dtypes\":[\"F32\"]"));
        free(meta), free(single), free(sharded);
    }
    st_free(&s);
    remove_dir(out_dir);
    remove_dir(hf);
    free_sequences(&seq);
}
END_TEST

START_TEST(sharded_bad_index) {
    char *hf = hf_copy();
    st_set s;
    st_load(FIXTURE "/model.safetensors", &s);
    remove_file(hf, "model.safetensors");
    /* a shard that is not there */
    write_shards(hf, &s, "model.norm.weight", "model-00003-of-00002.safetensors");
    expect_fail(hf, "model-00003-of-00002.safetensors", NULL);
    /* paths out of the folder */
    write_shards(hf, &s, "model.norm.weight", "../model-00001-of-00002.safetensors");
    expect_fail(hf, "shard name '../model-00001-of-00002.safetensors' is not a plain file name", NULL);
    write_shards(hf, &s, "model.norm.weight", "..");
    expect_fail(hf, "is not a plain file name", NULL);
    write_shards(hf, &s, "model.norm.weight", "/etc/passwd");
    expect_fail(hf, "is not a plain file name", NULL);
    write_shards(hf, &s, "model.norm.weight", "");
    expect_fail(hf, "not a", NULL);
    /* a tensor the index puts in the other shard (tensor i is in shard i % 2) */
    int norm = (int)(st_find(&s, "model.norm.weight") - s.t);
    write_shards(hf, &s, "model.norm.weight", shard_names[1 - norm % 2]);
    expect_fail(hf, "tensor 'model.norm.weight' is not in shard", NULL);
    /* a tensor in no shard: its shard rewritten without it, the index unchanged */
    st_set part = {.n = 0};
    for (int i = 0; i < s.n; i++)
        if (i % 2 == norm % 2 && i != norm) part.t[part.n++] = s.t[i];   /* shares the data */
    write_shards(hf, &s, NULL, NULL);
    st_write_part(hf, shard_names[norm % 2], &part, 0, 1);
    expect_fail(hf, "tensor 'model.norm.weight' is not in shard", NULL);
    /* a tensor in both shards */
    part.n = 0;
    for (int i = 0; i < s.n; i++)
        if (i % 2 == 1 - norm % 2 || i == norm) part.t[part.n++] = s.t[i];
    write_shards(hf, &s, NULL, NULL);
    st_write_part(hf, shard_names[1 - norm % 2], &part, 0, 1);
    expect_fail(hf, "tensor 'model.norm.weight' appears twice in the checkpoint", NULL);
    /* an index that is not JSON, or lacks the map */
    write_text(hf, "model.safetensors.index.json", "{\"weight_map\": ");
    expect_fail(hf, "model.safetensors.index.json", NULL);
    write_text(hf, "model.safetensors.index.json", "{\"metadata\": {}}");
    expect_fail(hf, "no 'weight_map' object", NULL);
    write_text(hf, "model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": 3}}");
    expect_fail(hf, "weight_map values must be file names", NULL);
    /* an empty map: no tensors at all */
    write_text(hf, "model.safetensors.index.json", "{\"weight_map\": {}}");
    expect_fail(hf, "missing tensor 'model.embed_tokens.weight'", NULL);
    st_free(&s);
    remove_dir(hf);
}
END_TEST

/* ---- BF16 and F16 sources ---- */

static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    x += 0x7fffu + ((x >> 16) & 1);         /* round to nearest even (no NaN here) */
    return (uint16_t)(x >> 16);
}

/* Rewrites every F32 tensor as dtype (BF16 or F16) in half, and its exact
 * float value as F32 in rounded, for tensors with index % every == 0. */
static void make_half(st_set *half, st_set *rounded, const char *dtype, int every) {
    for (int i = 0; i < half->n; i++) {
        st_tensor *h = &half->t[i], *r = &rounded->t[i];
        if (i % every) continue;
        ck_assert_str_eq(h->dtype, "F32");
        size_t n = h->nbytes / 4;
        uint16_t *hv = malloc(n * 2);
        for (size_t k = 0; k < n; k++) {
            float f, g;
            memcpy(&f, h->data + 4 * k, 4);
            if (!strcmp(dtype, "BF16")) {
                hv[k] = f32_to_bf16(f);
                g = qrm_bf16_to_f32(hv[k]);
            } else {
                hv[k] = qrm_f32_to_f16(f);
                g = qrm_f16_to_f32(hv[k]);
            }
            memcpy(r->data + 4 * k, &g, 4);
        }
        free(h->data);
        h->data = (uint8_t *)hv;
        h->nbytes = n * 2;
        strcpy(h->dtype, dtype);
    }
}

static void half_source(const char *dtype, int every, const char *want_dtypes) {
    sequences seq;
    load_sequences(&seq);
    char *hf_half = hf_copy(), *hf_round = hf_copy(), *out_dir = new_tmpdir();
    st_set half, rounded;
    st_load(FIXTURE "/model.safetensors", &half);
    st_load(FIXTURE "/model.safetensors", &rounded);
    make_half(&half, &rounded, dtype, every);
    st_write(hf_half, &half);
    st_write(hf_round, &rounded);
    st_free(&half), st_free(&rounded);

    /* f32: the half-precision values, upcast exactly */
    char *a = convert_ok(hf_half, "f32", out_dir, "half-f32.qrm");
    char *b = convert_ok(hf_round, "f32", out_dir, "rounded-f32.qrm");
    assert_same_data(a, b);
    float s[MAX_SEQ];
    char *meta;
    score_file(a, &seq, s, &meta);
    ck_assert_msg(strstr(meta, want_dtypes) != NULL, "provenance lacks %s", want_dtypes);
    double lo = INFINITY, hi = -INFINITY, worst = 0;
    for (int i = 0; i < seq.n; i++) lo = fmin(lo, seq.score[i]), hi = fmax(hi, seq.score[i]);
    for (int i = 0; i < seq.n; i++) {
        ck_assert_msg(isfinite(s[i]), "%s seq %d scores %g", dtype, i, (double)s[i]);
        worst = fmax(worst, fabs(s[i] - seq.score[i]) / (hi - lo));
    }
    printf("%s source (every %d tensors), f32: max |d| against the F32 reference = %.3f%% of the score range\n",
           dtype, every, 100 * worst);
    ck_assert_msg(worst <= 0.05, "%s source: scores differ by %.2f%% of the range", dtype, 100 * worst);
    free(meta);

    /* and the quantized formats convert and load too */
    char *c = convert_ok(hf_half, "int4", out_dir, "half-int4.qrm");
    score_file(c, &seq, s, NULL);
    for (int i = 0; i < seq.n; i++) ck_assert(isfinite(s[i]));
    char *d = convert_ok(hf_half, "f16", out_dir, "half-f16.qrm");
    score_file(d, &seq, s, NULL);
    for (int i = 0; i < seq.n; i++) ck_assert(isfinite(s[i]));
    free(a), free(b), free(c), free(d);
    remove_dir(out_dir);
    remove_dir(hf_half);
    remove_dir(hf_round);
    free_sequences(&seq);
}

START_TEST(bf16_source) { half_source("BF16", 1, "\"source_dtypes\":[\"BF16\"]"); }
END_TEST

START_TEST(f16_source) { half_source("F16", 1, "\"source_dtypes\":[\"F16\"]"); }
END_TEST

START_TEST(mixed_source) { half_source("BF16", 2, "\"source_dtypes\":[\"F32\",\"BF16\"]"); }
END_TEST

/* Tensors the score does not use (an LM head) are ignored, not an error. */
START_TEST(extra_tensor_ignored) {
    char *hf = hf_copy(), *out_dir = new_tmpdir();
    st_set s;
    st_load(FIXTURE "/model.safetensors", &s);
    ck_assert(s.n < 64);
    st_tensor *t = &s.t[s.n++];
    *t = *st_find(&s, "model.embed_tokens.weight");
    strcpy(t->name, "lm_head.weight");
    t->data = calloc(t->nbytes, 1);
    st_write(hf, &s);
    st_free(&s);
    char *out = convert_ok(hf, "int8", out_dir, "m.qrm");
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(out, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    qrm_model_close(m);
    free(out);
    remove_dir(out_dir);
    remove_dir(hf);
}
END_TEST

/* ---- the tokenizer files must load, and fit the vocabulary ---- */

START_TEST(tokenizer_invalid) {
    char *hf = hf_copy();
    write_text(hf, "tokenizer.json", "{\"model\": ");
    expect_fail(hf, "tokenizer.json", NULL);
    copy_file(FIXTURE, hf, "tokenizer.json");
    write_text(hf, "tokenizer_config.json", "{");
    expect_fail(hf, "tokenizer_config.json", NULL);
    remove_dir(hf);
}
END_TEST

START_TEST(tokenizer_larger_than_vocab) {
    config_case("\"vocab_size\": 320,", "\"vocab_size\": 100,",
                "tokenizer has 320 tokens but config.json vocab_size is 100", NULL);
}
END_TEST

/* ---- a write error half way: nothing may be left behind ---- */

START_TEST(write_error_leaves_nothing) {
    char *out_dir = new_tmpdir();
    char *out = path2(out_dir, "model.qrm");
    fflush(stdout);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        /* files may not grow past 100 KB; the f32 model is about 830 KB */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {100000, 100000};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
        qrm_convert_opts o = {.hf_dir = FIXTURE, .out_path = out, .quant = "f32"};
        char err[QRM_ERR_MAX] = "";
        int rc = qrm_convert(&o, err, sizeof err);
        int ok = rc == -1 && strstr(err, "cannot write") && !strchr(err, '\n');
        if (!ok) printf("write error: rc %d, message '%s'\n", rc, err);
        fflush(stdout);
        _exit(ok ? 0 : 1);
    }
    int st;
    ck_assert(waitpid(pid, &st, 0) == pid);
    int left = count_entries(out_dir);
    free(out);
    remove_dir(out_dir);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "a conversion that cannot write did not fail with 'cannot write' (status %d)", st);
    ck_assert_msg(left == 0, "a failed write left %d files in the output folder", left);
}
END_TEST

/* ---- the command line ---- */

static const char *g_argv0;     /* this test's path: BUILD/tests/test_convert */

START_TEST(cli_failure) {
    /* the qrm-convert of this build (BUILD/qrm-convert), else build/qrm-convert */
    char bin[512] = QRM_TEST_BIN_DIR "/qrm-convert", probe[600];
    const char *slash = g_argv0 ? strrchr(g_argv0, '/') : NULL;
    if (slash && slash - g_argv0 >= 6 && !strncmp(slash - 6, "/tests", 6))
        snprintf(bin, sizeof bin, "%.*s/qrm-convert", (int)(slash - 6 - g_argv0), g_argv0);
    snprintf(probe, sizeof probe, "%s --help >/dev/null 2>&1", bin);
    if (access(bin, X_OK) != 0 || system(probe) != 0) {
        printf("cli_failure: %s is not built or does not run here, skipped\n", bin);
        return;
    }
    char *out_dir = new_tmpdir();
    char *errf = path2(out_dir, "stderr.txt"), cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s/no-such-model -o %s/m.qrm -q 2>%s", bin, out_dir, out_dir,
             errf);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0,
                  "qrm-convert on a missing folder: status %d", st);
    size_t len;
    char *text = tu_read_file(errf, &len);
    ck_assert_msg(strncmp(text, "qrm-convert: ", 13) == 0, "stderr: %s", text);
    ck_assert_msg(len > 13 && text[len - 1] == '\n' && memchr(text, '\n', len - 1) == NULL,
                  "stderr is not one line: %s", text);
    free(text);
    unlink(errf);
    free(errf);
    ck_assert_int_eq(count_entries(out_dir), 0);
    remove_dir(out_dir);
}
END_TEST

/* ---- the heads: PRM, ArmoRM (gated), multi-label linear ---- */

#define PRM_FIXTURE TEST_DATA "/models/qwen2-prm-tiny"
#define ARMO_FIXTURE TEST_DATA "/models/llama3-armorm-tiny"
#define HS2_FIXTURE TEST_DATA "/models/llama3-helpsteer2-tiny"

/* Gives the F32 tensor name the shape [ne0] (ne1 == 0) or [ne0, ne1]; the
 * data keeps what fits and is zero past the old end. */
static void st_reshape(st_set *s, const char *name, int64_t ne0, int64_t ne1) {
    st_tensor *t = st_find(s, name);
    ck_assert_str_eq(t->dtype, "F32");
    size_t n = (size_t)ne0 * (size_t)(ne1 ? ne1 : 1) * 4;
    uint8_t *d = calloc(n ? n : 1, 1);
    ck_assert(d != NULL);
    memcpy(d, t->data, n < t->nbytes ? n : t->nbytes);
    free(t->data);
    t->data = d, t->nbytes = n;
    t->ndim = ne1 ? 2 : 1;
    t->shape[0] = ne0, t->shape[1] = ne1;
}

/* Adds a zero F32 tensor [ne0] (ne1 == 0) or [ne0, ne1]. */
static void st_add(st_set *s, const char *name, int64_t ne0, int64_t ne1) {
    ck_assert(s->n < 64);
    st_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    strcpy(t->dtype, "F32");
    t->ndim = ne1 ? 2 : 1;
    t->shape[0] = ne0, t->shape[1] = ne1;
    t->nbytes = (size_t)ne0 * (size_t)(ne1 ? ne1 : 1) * 4;
    t->data = calloc(t->nbytes ? t->nbytes : 1, 1);
    ck_assert(t->data != NULL);
}

/* One checkpoint edit: 'd' drops name, 'r' reshapes it, 'a' adds it; op 0 ends. */
typedef struct {
    char op;
    const char *name;
    int64_t ne0, ne1;
} st_edit;

/* A broken head: a fixture with config.json edited (from -> to, when from
 * is given), its checkpoint edited, converted with the given overrides. */
typedef struct {
    const char *fixture;
    const char *from, *to;
    st_edit edit[3];
    const char *labels, *step_separator, *gating_pattern;
    const char *want, *want2;
} head_case;

/* The fixture copied and edited as the case says (the caller removes it). */
static char *head_case_dir(const head_case *c) {
    char *hf = hf_copy_of(c->fixture);
    if (c->from) edit_file(hf, "config.json", c->from, c->to);
    if (c->edit[0].op) {
        char *src = path2(c->fixture, "model.safetensors");
        st_set s;
        st_load(src, &s);
        free(src);
        for (int i = 0; i < 3 && c->edit[i].op; i++) {
            const st_edit *e = &c->edit[i];
            if (e->op == 'd') st_drop(&s, e->name);
            else if (e->op == 'r') st_reshape(&s, e->name, e->ne0, e->ne1);
            else if (e->op == 'a') st_add(&s, e->name, e->ne0, e->ne1);
            else ck_abort_msg("unknown edit '%c'", e->op);
        }
        st_write(hf, &s);
        st_free(&s);
    }
    return hf;
}

static void run_head_case(const head_case *c) {
    char *hf = head_case_dir(c);
    qrm_convert_opts o = {.hf_dir = hf, .quant = "int8", .labels = c->labels,
                          .step_separator = c->step_separator, .gating_pattern = c->gating_pattern};
    expect_fail_opts(&o, c->want, c->want2);
    remove_dir(hf);
}

/* Qwen2ForProcessRewardModel: score.0 [64, 64] + bias, ReLU, score.2 [2, 64] + bias. */
static const head_case prm_cases[] = {
    {PRM_FIXTURE, NULL, NULL, {{'d', "score.0.weight", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'score.0.weight' (the PRM head's first layer)", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'d', "score.2.weight", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'score.2.weight' (the PRM head's second layer)", NULL},
    /* the biases are planned tensors */
    {PRM_FIXTURE, NULL, NULL, {{'d', "score.0.bias", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'score.0.bias' in the checkpoint", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'d', "score.2.bias", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'score.2.bias' in the checkpoint", NULL},
    /* score.0.weight reading another width: transposed [128, 32] and [32, 128], 1-D */
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.0.weight", 128, 32}}, NULL, NULL, NULL,
     "expected [N, 64] (hidden_size inputs)", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.0.weight", 64, 32}}, NULL, NULL, NULL,
     "expected [N, 64] (hidden_size inputs)", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.0.weight", 4096, 0}}, NULL, NULL, NULL,
     "expected [N, 64] (hidden_size inputs)", NULL},
    /* a narrower hidden layer: score.2 must follow it, and so must the bias */
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.0.weight", 32, 64}}, NULL, NULL, NULL,
     "expected [2, 32] (two classes over score.0's 32 outputs)", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.0.weight", 32, 64}, {'r', "score.2.weight", 2, 32}},
     NULL, NULL, NULL, "tensor 'score.0.bias' has shape [64], expected [32]", NULL},
    /* three classes, transposed, 1-D */
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.2.weight", 3, 64}}, NULL, NULL, NULL,
     "expected [2, 64] (two classes over score.0's 64 outputs)", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.2.weight", 64, 2}}, NULL, NULL, NULL,
     "expected [2, 64] (two classes", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.2.weight", 128, 0}}, NULL, NULL, NULL,
     "expected [2, 64] (two classes", NULL},
    {PRM_FIXTURE, NULL, NULL, {{'r', "score.2.bias", 3, 0}}, NULL, NULL, NULL,
     "tensor 'score.2.bias' has shape [3], expected [2]", NULL},
    /* a separator the tokenizer lacks: the message shows the pieces */
    {PRM_FIXTURE, NULL, NULL, {{0}}, NULL, "<extra_9>", NULL,
     "step separator '<extra_9>' is not one token in this tokenizer: it encodes to 9 "
     "('<' 'e' 'x' 't' 'r' 'a' '_' '9' '>')", NULL},
    {PRM_FIXTURE, NULL, NULL, {{0}}, NULL, "<extra_0><extra_0>", NULL,
     "step separator '<extra_0><extra_0>' is not one token in this tokenizer: it encodes to 2 "
     "('<extra_0>' '<extra_0>')", NULL},
    {PRM_FIXTURE, NULL, NULL, {{0}}, NULL, "", NULL, "step separator '' encodes to no token", NULL},
    /* the head has one output, "step" */
    {PRM_FIXTURE, NULL, NULL, {{0}}, "a,b", NULL, NULL,
     "--labels names more than the head's 1 outputs", NULL},
    {PRM_FIXTURE, NULL, NULL, {{0}}, "", NULL, NULL, "output 0 has an empty name", NULL},
};

/* LlamaForRewardModelWithGating: 5 objectives, gating 64 -> 32 -> 32 -> 32 -> 5. */
static const head_case armo_cases[] = {
    {ARMO_FIXTURE, "\"num_objectives\": 5,", "", {{0}}, NULL, NULL, NULL,
     "config.json: missing 'num_objectives'", NULL},
    /* num_objectives against regression_layer.weight's 5 rows */
    {ARMO_FIXTURE, "\"num_objectives\": 5", "\"num_objectives\": 4", {{0}}, NULL, NULL, NULL,
     "config.json: num_objectives is 4 but 'regression_layer.weight' has 5 rows", NULL},
    {ARMO_FIXTURE, "\"num_objectives\": 5", "\"num_objectives\": 6", {{0}}, NULL, NULL, NULL,
     "config.json: num_objectives is 6 but 'regression_layer.weight' has 5 rows", NULL},
    {ARMO_FIXTURE, "\"num_objectives\": 5", "\"num_objectives\": 0", {{0}}, NULL, NULL, NULL,
     "config.json: 'num_objectives' = 0 is out of range [1, 31]", NULL},
    {ARMO_FIXTURE, "\"num_objectives\": 5", "\"num_objectives\": 32", {{0}}, NULL, NULL, NULL,
     "config.json: 'num_objectives' = 32 is out of range [1, 31]", NULL},
    {ARMO_FIXTURE, "\"num_objectives\": 5", "\"num_objectives\": \"5\"", {{0}}, NULL, NULL, NULL,
     "config.json: 'num_objectives' is not an integer", NULL},
    /* gating_n_hidden too small: the last layer read is a hidden one ... */
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 2", {{0}}, NULL, NULL, NULL,
     "tensor 'gating.layers.2.weight' has shape", "gating_n_hidden"},
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 0", {{0}}, NULL, NULL, NULL,
     "tensor 'gating.layers.0.weight' has shape", "gating_n_hidden"},
    /* ... or, with shapes that fit, a layer left over */
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 2",
     {{'r', "gating.layers.2.weight", 5, 32}, {'r', "gating.layers.2.bias", 5, 0}}, NULL, NULL, NULL,
     "the checkpoint has 'gating.layers.3.weight': more gating layers than gating_n_hidden = 2 says",
     NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'a', "gating.layers.4.weight", 5, 5}, {'a', "gating.layers.4.bias", 5, 0}},
     NULL, NULL, NULL,
     "the checkpoint has 'gating.layers.4.weight': more gating layers than gating_n_hidden = 3 says",
     NULL},
    /* gating_n_hidden too large: a layer missing */
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 4", {{0}}, NULL, NULL, NULL,
     "tensor 'gating.layers.3.weight' has shape", "gating_n_hidden"},
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 4",
     {{'r', "gating.layers.3.weight", 32, 32}, {'r', "gating.layers.3.bias", 32, 0}}, NULL, NULL, NULL,
     "missing tensor 'gating.layers.4.weight'", "gating_n_hidden"},
    {ARMO_FIXTURE, NULL, NULL, {{'d', "gating.layers.3.weight", 0, 0}, {'d', "gating.layers.3.bias", 0, 0}},
     NULL, NULL, NULL, "missing tensor 'gating.layers.3.weight'", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'d', "gating.layers.1.bias", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'gating.layers.1.bias' (the gating layer's bias)", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'r', "gating.layers.1.bias", 16, 0}}, NULL, NULL, NULL,
     "tensor 'gating.layers.1.bias' has shape", NULL},
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": -1", {{0}}, NULL, NULL, NULL,
     "config.json: 'gating_n_hidden' = -1 is out of range [0, 9]", NULL},
    /* gating_hidden_dim */
    {ARMO_FIXTURE, "\"gating_hidden_dim\": 32", "\"gating_hidden_dim\": 16", {{0}}, NULL, NULL, NULL,
     "tensor 'gating.layers.0.weight' has shape", "gating_hidden_dim"},
    {ARMO_FIXTURE, "\"gating_hidden_dim\": 32", "\"gating_hidden_dim\": 0", {{0}}, NULL, NULL, NULL,
     "config.json: 'gating_hidden_dim' = 0 is out of range", NULL},
    /* the other tensors */
    {ARMO_FIXTURE, NULL, NULL, {{'d', "gating.logit_scale", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'gating.logit_scale' (the gate's scale)", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'r', "gating.logit_scale", 2, 0}}, NULL, NULL, NULL,
     "tensor 'gating.logit_scale' has shape", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'d', "reward_transform_matrix", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'reward_transform_matrix'", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'r', "reward_transform_matrix", 5, 4}}, NULL, NULL, NULL,
     "tensor 'reward_transform_matrix' has shape", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'r', "reward_transform_matrix", 25, 0}}, NULL, NULL, NULL,
     "tensor 'reward_transform_matrix' has shape", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'d', "regression_layer.weight", 0, 0}}, NULL, NULL, NULL,
     "missing tensor 'regression_layer.weight'", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{'r', "regression_layer.weight", 64, 5}}, NULL, NULL, NULL,
     "tensor 'regression_layer.weight' has shape", NULL},
    /* gating_temperature must be a positive number */
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 3, \"gating_temperature\": 0",
     {{0}}, NULL, NULL, NULL, "config.json: 'gating_temperature' must be a positive number", NULL},
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 3, \"gating_temperature\": -10",
     {{0}}, NULL, NULL, NULL, "config.json: 'gating_temperature' must be a positive number", NULL},
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 3, \"gating_temperature\": \"10\"",
     {{0}}, NULL, NULL, NULL, "config.json: 'gating_temperature' must be a positive number", NULL},
    {ARMO_FIXTURE, "\"gating_n_hidden\": 3", "\"gating_n_hidden\": 3, \"gating_temperature\": true",
     {{0}}, NULL, NULL, NULL, "config.json: 'gating_temperature' must be a positive number", NULL},
    /* --labels names the 5 objectives */
    {ARMO_FIXTURE, NULL, NULL, {{0}}, "a,b", NULL, NULL, "--labels names 2 outputs, the head has 5",
     NULL},
    {ARMO_FIXTURE, NULL, NULL, {{0}}, "a,b,c,d,e,f", NULL, NULL,
     "--labels names more than the head's 5 outputs", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{0}}, "a,a,b,c,d", NULL, NULL, "the output name 'a' is used twice",
     NULL},
    {ARMO_FIXTURE, NULL, NULL, {{0}}, "a,,b,c,d", NULL, NULL, "output 1 has an empty name", NULL},
    /* 60 bytes fit a label, not with "gate:" in front */
    {ARMO_FIXTURE, NULL, NULL, {{0}}, "a,b,c,d,"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL, NULL,
     "objective name 'xxxxxxxxxx", "is too long"},
    {ARMO_FIXTURE, NULL, NULL, {{0}}, "a,b,c,d,"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL, NULL,
     "is longer than 63 bytes", NULL},
    /* the gating pattern override must encode to 1 to 32 tokens */
    {ARMO_FIXTURE, NULL, NULL, {{0}}, NULL, NULL, "",
     "the gating pattern encodes to 0 tokens (1 to 32 allowed)", NULL},
    {ARMO_FIXTURE, NULL, NULL, {{0}}, NULL, NULL,
     "<|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|>"
     "<|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|>"
     "<|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|>"
     "<|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|><|eot_id|>",
     "the gating pattern encodes to 33 tokens (1 to 32 allowed)", NULL},
};

/* LlamaForSequenceClassification with num_labels 5 and id2label names. */
static const head_case multi_cases[] = {
    {HS2_FIXTURE, "\"num_labels\": 5", "\"num_labels\": 4", {{0}}, NULL, NULL, NULL,
     "config.json: num_labels is 4 but id2label has 5 entries", NULL},
    {HS2_FIXTURE, "\"num_labels\": 5", "\"num_labels\": 1", {{0}}, NULL, NULL, NULL,
     "config.json: num_labels is 1 but id2label has 5 entries", NULL},
    /* id2label without "4" (5 entries, one of them "5"), or not a string there */
    {HS2_FIXTURE, "\"4\": \"verbosity\"", "\"5\": \"verbosity\"", {{0}}, NULL, NULL, NULL,
     "config.json: id2label has no string entry \"4\"", NULL},
    {HS2_FIXTURE, "\"4\": \"verbosity\"", "\"4\": 4", {{0}}, NULL, NULL, NULL,
     "config.json: id2label has no string entry \"4\"", NULL},
    {HS2_FIXTURE, "\"4\": \"verbosity\"",
     "\"4\": \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\"", {{0}}, NULL,
     NULL, NULL, "config.json: id2label name 'vvvvvvvvvv", "is too long"},
    {HS2_FIXTURE, "\"4\": \"verbosity\"", "\"4\": \"helpfulness\"", {{0}}, NULL, NULL, NULL,
     "the output name 'helpfulness' is used twice", NULL},
    /* a consistent config that disagrees with score.weight [5, 64] */
    {HS2_FIXTURE, "\"num_labels\": 5", "\"num_labels\": 6", {{'r', "score.weight", 6, 64}},
     NULL, NULL, NULL, "num_labels is 6 but id2label has 5 entries", NULL},
    {HS2_FIXTURE, "\"num_labels\": 5", "\"num_labels\": 5", {{'r', "score.weight", 4, 64}},
     NULL, NULL, NULL, "tensor 'score.weight' has shape [4, 64], expected [5, 64]", NULL},
    {HS2_FIXTURE, "\"num_labels\": 5", "\"num_labels\": 65", {{0}}, NULL, NULL, NULL,
     "config.json: 'num_labels' = 65 is out of range [1, 64]", NULL},
    /* --labels with the wrong count, twice a name, an empty one */
    {HS2_FIXTURE, NULL, NULL, {{0}}, "a,b", NULL, NULL, "--labels names 2 outputs, the head has 5",
     NULL},
    {HS2_FIXTURE, NULL, NULL, {{0}}, "a,b,c,d,e,f", NULL, NULL,
     "--labels names more than the head's 5 outputs", NULL},
    {HS2_FIXTURE, NULL, NULL, {{0}}, "a,b,c,d,a", NULL, NULL, "the output name 'a' is used twice",
     NULL},
    {HS2_FIXTURE, NULL, NULL, {{0}}, "a,b,c,d,", NULL, NULL, "output 4 has an empty name", NULL},
};

START_TEST(prm_bad) { run_head_case(&prm_cases[_i]); }
END_TEST

START_TEST(armo_bad) { run_head_case(&armo_cases[_i]); }
END_TEST

START_TEST(multi_label_bad) { run_head_case(&multi_cases[_i]); }
END_TEST

START_TEST(unknown_head_suffix) {
    /* a known prefix with a head suffix no head has, from each new fixture */
    config_case_of(PRM_FIXTURE, "\"Qwen2ForProcessRewardModel\"", "\"Qwen2ForTokenClassification\"",
                   "unsupported architecture 'Qwen2ForTokenClassification'",
                   "each with ForSequenceClassification, ForProcessRewardModel, ForRewardModelWithGating");
    config_case_of(ARMO_FIXTURE, "\"LlamaForRewardModelWithGating\"", "\"LlamaForRewardModel\"",
                   "unsupported architecture 'LlamaForRewardModel'", "ForRewardModelWithGating");
    config_case_of(HS2_FIXTURE, "\"LlamaForSequenceClassification\"", "\"LlamaForCausalLM\"",
                   "LlamaForCausalLM: a causal LM's reward comes from its vocabulary head",
                   "--judge-tokens YES,NO, --step-tag TAG --good GOOD --bad BAD, or --head lm");
    /* the suffix alone, and a prefix qrm does not know with a known suffix */
    config_case_of(PRM_FIXTURE, "\"Qwen2ForProcessRewardModel\"", "\"ForProcessRewardModel\"",
                   "unsupported architecture 'ForProcessRewardModel'", NULL);
    config_case_of(PRM_FIXTURE, "\"Qwen2ForProcessRewardModel\"", "\"Qwen2MoeForProcessRewardModel\"",
                   "unsupported architecture 'Qwen2MoeForProcessRewardModel'", NULL);
}
END_TEST

/* Converts hf with the overrides into out_dir/name; aborts with the message on failure. */
static char *convert_opts_ok(const qrm_convert_opts *opts, const char *out_dir, const char *name) {
    char *out = path2(out_dir, name);
    qrm_convert_opts o = *opts;
    o.out_path = out;
    char err[QRM_ERR_MAX] = "";
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "converting %s: %s", o.hf_dir, err);
    return out;
}

static qrm_model *open_ok(const char *path) {
    char err[QRM_ERR_MAX] = "";
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    ck_assert_msg(m != NULL, "%s: %s", path, err);
    return m;
}

/* The names of a model's outputs, comma-separated. */
static void output_names(const qrm_model *m, char *buf, size_t n) {
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < info.n_outputs && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "",
                                qrm_model_output_name(m, i));
    ck_assert(qrm_model_output_name(m, info.n_outputs) == NULL);
    ck_assert(qrm_model_output_name(m, -1) == NULL);
}

/* A PRM checkpoint with an LM head: the extra tensor is noted on stderr and
 * ignored; another separator token can be chosen. */
START_TEST(prm_extra_tensor_and_separator) {
    char *hf = hf_copy_of(PRM_FIXTURE), *out_dir = new_tmpdir();
    st_set s;
    st_load(PRM_FIXTURE "/model.safetensors", &s);
    st_add(&s, "lm_head.weight", 320, 64);
    st_write(hf, &s);
    st_free(&s);
    /* stderr into a file for the conversion */
    char *errf = path2(out_dir, "stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    FILE *ef = fopen(errf, "w");
    ck_assert(saved >= 0 && ef != NULL);
    ck_assert(dup2(fileno(ef), 2) == 2);
    qrm_convert_opts o = {.hf_dir = hf, .quant = "int8"};
    char *out = path2(out_dir, "prm.qrm"), err[QRM_ERR_MAX] = "";
    o.out_path = out;
    int rc = qrm_convert(&o, err, sizeof err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(ef);
    ck_assert_msg(rc == 0, "a PRM with lm_head.weight: %s", err);
    size_t len;
    char *text = tu_read_file(errf, &len);
    ck_assert_msg(strstr(text, "note: ignoring tensor 'lm_head.weight'") != NULL, "stderr: %s", text);
    free(text);
    unlink(errf);
    free(errf);

    qrm_model *m = open_ok(out);
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    ck_assert_str_eq(info.head, "prm");
    ck_assert_int_eq(info.per_step, 1);
    ck_assert_int_eq(info.n_outputs, 1);
    ck_assert_str_eq(qrm_model_output_name(m, 0), "step");
    ck_assert(strstr(qrm_model_metadata_json(m), "\"separator_id\":319") != NULL);
    qrm_model_close(m);
    free(out);

    /* <|im_end|> (318) as the separator, and the output renamed */
    o = (qrm_convert_opts){.hf_dir = hf, .quant = "f32", .step_separator = "<|im_end|>",
                           .labels = "correct"};
    out = convert_opts_ok(&o, out_dir, "prm-318.qrm");
    m = open_ok(out);
    ck_assert(strstr(qrm_model_metadata_json(m), "\"separator_id\":318") != NULL);
    ck_assert_str_eq(qrm_model_output_name(m, 0), "correct");
    qrm_model_close(m);
    free(out);
    remove_dir(out_dir);
    remove_dir(hf);
}
END_TEST

/* A multi-label linear head takes its names from id2label, or from --labels. */
START_TEST(multi_label_names) {
    char *out_dir = new_tmpdir(), names[1024];
    qrm_convert_opts o = {.hf_dir = HS2_FIXTURE, .quant = "int8"};
    char *out = convert_opts_ok(&o, out_dir, "hs2.qrm");
    qrm_model *m = open_ok(out);
    output_names(m, names, sizeof names);
    ck_assert_str_eq(names, "helpfulness,correctness,coherence,complexity,verbosity");
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    ck_assert_str_eq(info.head, "linear");
    ck_assert_int_eq(info.per_step, 0);
    qrm_model_close(m);
    free(out);

    o.labels = "help,correct,coherent,complex,verbose";
    out = convert_opts_ok(&o, out_dir, "hs2-labels.qrm");
    m = open_ok(out);
    output_names(m, names, sizeof names);
    ck_assert_str_eq(names, "help,correct,coherent,complex,verbose");
    qrm_model_close(m);
    free(out);

    /* without num_labels, id2label alone gives the count */
    char *hf = hf_copy_of(HS2_FIXTURE);
    edit_file(hf, "config.json", "\"num_labels\": 5,", "");
    o = (qrm_convert_opts){.hf_dir = hf, .quant = "f32"};
    out = convert_opts_ok(&o, out_dir, "hs2-no-num-labels.qrm");
    m = open_ok(out);
    output_names(m, names, sizeof names);
    ck_assert_str_eq(names, "helpfulness,correctness,coherence,complexity,verbosity");
    qrm_model_close(m);
    free(out);
    remove_dir(hf);
    remove_dir(out_dir);
}
END_TEST

/* ArmoRM's outputs: the score, the objectives, their gate weights. */
START_TEST(armo_names) {
    char *out_dir = new_tmpdir(), names[2048];
    qrm_convert_opts o = {.hf_dir = ARMO_FIXTURE, .quant = "int8"};
    char *out = convert_opts_ok(&o, out_dir, "armo.qrm");
    qrm_model *m = open_ok(out);
    output_names(m, names, sizeof names);
    ck_assert_str_eq(names, "score,objective_0,objective_1,objective_2,objective_3,objective_4,"
                            "gate:objective_0,gate:objective_1,gate:objective_2,gate:objective_3,"
                            "gate:objective_4");
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    ck_assert_str_eq(info.head, "gated");
    qrm_model_close(m);
    free(out);

    o.labels = "help,correct,coherent,complex,verbose";
    out = convert_opts_ok(&o, out_dir, "armo-labels.qrm");
    m = open_ok(out);
    output_names(m, names, sizeof names);
    ck_assert_str_eq(names, "score,help,correct,coherent,complex,verbose,gate:help,gate:correct,"
                            "gate:coherent,gate:complex,gate:verbose");
    qrm_model_close(m);
    free(out);

    /* gating_temperature null is the default (10) */
    char *hf = hf_copy_of(ARMO_FIXTURE);
    edit_file(hf, "config.json", "\"gating_n_hidden\": 3",
              "\"gating_n_hidden\": 3, \"gating_temperature\": null");
    o = (qrm_convert_opts){.hf_dir = hf, .quant = "f32"};
    out = convert_opts_ok(&o, out_dir, "armo-null-temp.qrm");
    m = open_ok(out);
    ck_assert(strstr(qrm_model_metadata_json(m), "\"temperature\":10,") != NULL);
    qrm_model_close(m);
    free(out);
    remove_dir(hf);
    remove_dir(out_dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, missing_hf_dir);
    tcase_add_loop_test(tc, missing_file, 0, 4);
    tcase_add_test(tc, bad_quant_and_output);
    tcase_add_test(tc, unsupported_architecture);
    tcase_add_test(tc, config_invalid_json);
    tcase_add_loop_test(tc, config_bad, 0, (int)(sizeof config_cases / sizeof config_cases[0]));
    tcase_add_test(tc, safetensors_bad_dtype);
    tcase_add_test(tc, safetensors_data_outside);
    tcase_add_test(tc, safetensors_size_mismatch);
    tcase_add_test(tc, safetensors_missing_tensor);
    tcase_add_test(tc, safetensors_misshaped_tensor);
    tcase_add_test(tc, safetensors_duplicate_tensor);
    tcase_add_loop_test(tc, safetensors_raw_header, 0,
                        (int)(sizeof raw_headers / sizeof raw_headers[0]));
    tcase_add_test(tc, safetensors_bad_header_length);
    tcase_add_test(tc, sharded_bad_index);
    tcase_add_test(tc, tokenizer_invalid);
    tcase_add_test(tc, tokenizer_larger_than_vocab);
    tcase_add_test(tc, write_error_leaves_nothing);
    tcase_add_test(tc, cli_failure);
    tcase_add_loop_test(tc, prm_bad, 0, (int)(sizeof prm_cases / sizeof prm_cases[0]));
    tcase_add_loop_test(tc, armo_bad, 0, (int)(sizeof armo_cases / sizeof armo_cases[0]));
    tcase_add_loop_test(tc, multi_label_bad, 0, (int)(sizeof multi_cases / sizeof multi_cases[0]));
    tcase_add_test(tc, unknown_head_suffix);
    suite_add_tcase(s, tc);
    TCase *ok = tcase_create("sources");
    tcase_set_timeout(ok, 300);
    tcase_add_test(ok, sharded_matches_single);
    tcase_add_test(ok, bf16_source);
    tcase_add_test(ok, f16_source);
    tcase_add_test(ok, mixed_source);
    tcase_add_test(ok, extra_tensor_ignored);
    tcase_add_test(ok, prm_extra_tensor_and_separator);
    tcase_add_test(ok, multi_label_names);
    tcase_add_test(ok, armo_names);
    suite_add_tcase(s, ok);
    return s;
}

int main(int argc, char **argv) {
    g_argv0 = argc > 0 ? argv[0] : NULL;
    return tu_run(suite());
}
