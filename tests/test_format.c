/* The .qrm loader against hostile files (core/model.c, core/hparams.c).
 *
 * The fixture qwen3-tiny is converted once (int8) into a temporary file;
 * every test then damages a copy of that image in one precise way and opens
 * it twice, from a 64-byte aligned buffer of exactly its size (so that
 * AddressSanitizer sees any read past the end) and from a file. Each must
 * fail with NULL and a one-line message naming the problem; nothing may
 * crash, hang or leak. The good image must load and describe itself right.
 *
 * Damage that changes the metadata's length rebuilds the file with the
 * writer's layout (parts_build), which is checked to reproduce the
 * converter's output byte for byte. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "format.h"
#include "hparams.h"
#include "kernels.h"
#include "platform.h"
#include "qrm.h"
#include "testutil.h"

static char *g_dir;         /* temporary directory of the suite */
static uint8_t *g_good;     /* the converted fixture */
static size_t g_good_len;

static void setup_good(void) {
    char out[512], err[QRM_ERR_MAX];
    g_dir = tu_tmpdir();
    snprintf(out, sizeof out, "%s/good.qrm", g_dir);
    qrm_convert_opts o = {.hf_dir = TEST_DATA "/models/qwen3-tiny", .out_path = out,
                          .quant = "int8"};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "converting qwen3-tiny: %s", err);
    g_good = (uint8_t *)tu_read_file(out, &g_good_len);
    unlink(out);
}

static void teardown_good(void) {
    free(g_good);
    rmdir(g_dir);
    free(g_dir);
}

/* ---- the file in pieces: metadata, table, data ---- */

typedef struct {
    char *meta;             /* NUL-terminated */
    size_t meta_len;
    uint8_t *table;         /* count entries, room for one more */
    uint32_t count;
    uint8_t *data;          /* everything from data_offset on, room for 4 KB more */
    size_t data_len;
} parts;

static uint64_t align64(uint64_t x) { return (x + QRM_ALIGN - 1) / QRM_ALIGN * QRM_ALIGN; }

/* The parts of the image b of len bytes (a converted file). */
static void parts_get_from(parts *p, const uint8_t *b, size_t len) {
    uint64_t mo = qrm_rd64(b + QRM_H_META_OFFSET), ms = qrm_rd64(b + QRM_H_META_SIZE);
    uint64_t to = qrm_rd64(b + QRM_H_TABLE_OFFSET), doff = qrm_rd64(b + QRM_H_DATA_OFFSET);
    p->count = qrm_rd32(b + QRM_H_TENSOR_COUNT);
    p->meta_len = ms;
    p->meta = malloc(ms + 1);
    p->table = malloc(((size_t)p->count + 1) * QRM_TENSOR_ENTRY_SIZE);
    p->data_len = len - doff;
    p->data = calloc(p->data_len + 4096, 1);
    ck_assert(p->meta && p->table && p->data);
    memcpy(p->meta, b + mo, ms);
    p->meta[ms] = 0;
    memcpy(p->table, b + to, (size_t)p->count * QRM_TENSOR_ENTRY_SIZE);
    memcpy(p->data, b + doff, p->data_len);
}

static void parts_get(parts *p) { parts_get_from(p, g_good, g_good_len); }

static void parts_free(parts *p) { free(p->meta), free(p->table), free(p->data); }

/* The writer's layout: header, metadata, table at the next 64, data at the next 64. */
static uint8_t *parts_build(const parts *p, size_t *len) {
    uint64_t to = align64(QRM_HEADER_SIZE + p->meta_len);
    uint64_t doff = align64(to + (uint64_t)p->count * QRM_TENSOR_ENTRY_SIZE);
    *len = doff + p->data_len;
    uint8_t *b = calloc(*len, 1);
    ck_assert(b != NULL);
    memcpy(b + QRM_H_MAGIC, QRM_MAGIC, 8);
    qrm_wr32(b + QRM_H_VERSION, QRM_FORMAT_VERSION);
    qrm_wr32(b + QRM_H_HEADER_SIZE, QRM_HEADER_SIZE);
    qrm_wr64(b + QRM_H_FILE_SIZE, *len);
    qrm_wr64(b + QRM_H_META_OFFSET, QRM_HEADER_SIZE);
    qrm_wr64(b + QRM_H_META_SIZE, p->meta_len);
    qrm_wr64(b + QRM_H_TABLE_OFFSET, to);
    qrm_wr32(b + QRM_H_TENSOR_COUNT, p->count);
    qrm_wr32(b + QRM_H_ENTRY_SIZE, QRM_TENSOR_ENTRY_SIZE);
    qrm_wr64(b + QRM_H_DATA_OFFSET, doff);
    memcpy(b + QRM_HEADER_SIZE, p->meta, p->meta_len);
    memcpy(b + to, p->table, (size_t)p->count * QRM_TENSOR_ENTRY_SIZE);
    memcpy(b + doff, p->data, p->data_len);
    return b;
}

static uint8_t *entry(parts *p, const char *name) {
    for (uint32_t i = 0; i < p->count; i++) {
        uint8_t *e = p->table + (size_t)i * QRM_TENSOR_ENTRY_SIZE;
        if (strcmp((const char *)e, name) == 0) return e;
    }
    ck_abort_msg("the fixture has no tensor '%s'", name);
    return NULL;
}

static void set_name(uint8_t *e, const char *name) {
    memset(e + QRM_T_NAME, 0, QRM_TENSOR_NAME_MAX);
    memcpy(e + QRM_T_NAME, name, strlen(name));
}

/* Replaces the first occurrence of from in the metadata. */
static void meta_sub(parts *p, const char *from, const char *to) {
    char *at = strstr(p->meta, from);
    ck_assert_msg(at != NULL, "metadata has no '%s'", from);
    size_t pre = (size_t)(at - p->meta), fl = strlen(from), tl = strlen(to);
    char *m = malloc(p->meta_len - fl + tl + 1);
    ck_assert(m != NULL);
    memcpy(m, p->meta, pre);
    memcpy(m + pre, to, tl);
    memcpy(m + pre + tl, at + fl, p->meta_len - pre - fl + 1);
    free(p->meta);
    p->meta = m;
    p->meta_len = p->meta_len - fl + tl;
}

/* The end of the JSON value that starts at v: the ',' or closing bracket after it. */
static char *value_end(char *end) {
    int depth = 0, in_str = 0;
    for (; *end; end++) {
        if (in_str) {
            if (*end == '\\') end++;
            else if (*end == '"') in_str = 0;
        } else if (*end == '"') in_str = 1;
        else if (*end == '[' || *end == '{') depth++;
        else if (*end == ']' || *end == '}') {
            if (depth == 0) break;
            depth--;
        } else if (*end == ',' && depth == 0) break;
    }
    return end;
}

/* Removes "key":value (and one comma) from the metadata's first object holding key. */
static void meta_remove(parts *p, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *at = strstr(p->meta, pat);
    ck_assert_msg(at != NULL, "metadata has no '%s'", key);
    char *end = value_end(at + strlen(pat));
    if (*end == ',') end++;                 /* "key":v, -> "" */
    else if (at[-1] == ',') at--;           /* ,"key":v} -> } */
    size_t pre = (size_t)(at - p->meta), cut = (size_t)(end - at);
    memmove(at, end, p->meta_len - pre - cut + 1);
    p->meta_len -= cut;
}

/* Sets the value of the first "key": in the metadata to the JSON text value
 * (NULL: removes the member). */
static void meta_set(parts *p, const char *key, const char *value) {
    if (!value) {
        meta_remove(p, key);
        return;
    }
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *at = strstr(p->meta, pat);
    ck_assert_msg(at != NULL, "metadata has no '%s'", key);
    char *v = at + strlen(pat), *end = value_end(v);
    size_t pre = (size_t)(v - p->meta), old = (size_t)(end - v), vl = strlen(value);
    char *m = malloc(p->meta_len - old + vl + 1);
    ck_assert(m != NULL);
    memcpy(m, p->meta, pre);
    memcpy(m + pre, value, vl);
    memcpy(m + pre + vl, end, p->meta_len - pre - old + 1);
    free(p->meta);
    p->meta = m;
    p->meta_len = p->meta_len - old + vl;
}

/* ---- opening and expecting failure ---- */

static void check_err(const char *how, const char *err, const char *want) {
    ck_assert_msg(err[0] != 0, "%s: failed with an empty message (wanted '%s')", how, want);
    ck_assert_msg(strchr(err, '\n') == NULL, "%s: message is not one line: %s", how, err);
    ck_assert_msg(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", how, err, want);
}

/* Opens a copy of img in a 64-aligned buffer of exactly len bytes. */
static qrm_model *open_mem(const uint8_t *img, size_t len, void **buf, char *err) {
    ck_assert(posix_memalign(buf, QRM_ALIGN, len ? len : 1) == 0);
    if (len) memcpy(*buf, img, len);
    err[0] = 0;
    return qrm_model_open_memory(*buf, len, err, QRM_ERR_MAX);
}

static void reject_memory(const uint8_t *img, size_t len, const char *want) {
    void *buf;
    char err[QRM_ERR_MAX];
    qrm_model *m = open_mem(img, len, &buf, err);
    if (m) qrm_model_close(m);
    free(buf);
    ck_assert_msg(m == NULL, "a damaged image of %zu bytes was accepted (wanted '%s')", len, want);
    check_err("open_memory", err, want);
}

static void write_file(const char *path, const uint8_t *img, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert(fwrite(img, 1, len, f) == len);
    ck_assert(fclose(f) == 0);
}

static void reject_file(const uint8_t *img, size_t len, const char *want) {
    char path[512], err[QRM_ERR_MAX] = "";
    snprintf(path, sizeof path, "%s/bad-%ld.qrm", g_dir, (long)getpid());
    write_file(path, img, len);
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    unlink(path);
    if (m) qrm_model_close(m);
    ck_assert_msg(m == NULL, "a damaged file of %zu bytes was accepted (wanted '%s')", len, want);
    check_err("open", err, want);
}

static void reject(const uint8_t *img, size_t len, const char *want) {
    reject_memory(img, len, want);
    reject_file(img, len, want);
}

static void reject_parts(const parts *p, const char *want) {
    size_t len;
    uint8_t *img = parts_build(p, &len);
    reject(img, len, want);
    free(img);
}

/* A copy of the good image with a header field overwritten. */
static void reject_header32(size_t field, uint32_t v, const char *want) {
    uint8_t *img = malloc(g_good_len);
    memcpy(img, g_good, g_good_len);
    qrm_wr32(img + field, v);
    reject(img, g_good_len, want);
    free(img);
}

static void reject_header64(size_t field, uint64_t v, const char *want) {
    uint8_t *img = malloc(g_good_len);
    memcpy(img, g_good, g_good_len);
    qrm_wr64(img + field, v);
    reject(img, g_good_len, want);
    free(img);
}

/* ---- the good file ---- */

/* qrm_alloc_huge (the KV cache's memory): zeroed and writable to the last
 * byte; 2 MB aligned from 8 MB up, page aligned below; NULL for 0 bytes and
 * for a size no mapping can have. */
START_TEST(alloc_huge_sizes) {
    const size_t sizes[] = {1, 100, 4096, 4097, ((size_t)8 << 20) - 1, (size_t)8 << 20,
                            ((size_t)8 << 20) + 12345};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        for (int again = 0; again < 2; again++) {
            unsigned char *p = qrm_alloc_huge(n);
            ck_assert_msg(p != NULL, "%zu bytes", n);
            size_t align = n >= ((size_t)8 << 20) ? (size_t)2 << 20 : 4096;
            ck_assert_msg((uintptr_t)p % align == 0, "%zu bytes at %p", n, (void *)p);
            ck_assert(p[0] == 0 && p[n / 2] == 0 && p[n - 1] == 0);
            p[0] = 1, p[n - 1] = 2;
            qrm_free_huge(p, n);
        }
    }
    ck_assert(qrm_alloc_huge(0) == NULL);
    ck_assert(qrm_alloc_huge(SIZE_MAX) == NULL);
    ck_assert(qrm_alloc_huge(SIZE_MAX / 2) == NULL); /* mmap refuses it: errno, not a crash */
    qrm_free_huge(NULL, 100);
}
END_TEST

START_TEST(good_file_loads) {
    /* the layout helper reproduces the converter's file exactly */
    parts p;
    parts_get(&p);
    size_t len;
    uint8_t *img = parts_build(&p, &len);
    ck_assert_uint_eq(len, g_good_len);
    ck_assert_msg(memcmp(img, g_good, len) == 0, "parts_build differs from the writer");
    free(img);
    parts_free(&p);

    char path[512], err[QRM_ERR_MAX] = "";
    snprintf(path, sizeof path, "%s/ok-%ld.qrm", g_dir, (long)getpid());
    write_file(path, g_good, g_good_len);
    void *buf;
    qrm_model *models[2] = {qrm_model_open(path, err, sizeof err), NULL};
    ck_assert_msg(models[0] != NULL, "open: %s", err);
    models[1] = open_mem(g_good, g_good_len, &buf, err);
    ck_assert_msg(models[1] != NULL, "open_memory: %s", err);
    unlink(path);

    size_t tj_len, tc_len;
    char *tj = tu_read_file(TEST_DATA "/models/qwen3-tiny/tokenizer.json", &tj_len);
    char *tc = tu_read_file(TEST_DATA "/models/qwen3-tiny/tokenizer_config.json", &tc_len);
    for (int k = 0; k < 2; k++) {
        qrm_model_info info;
        qrm_model_get_info(models[k], &info);
        ck_assert_str_eq(info.arch, "qwen3");
        ck_assert_str_eq(info.hf_architecture, "Qwen3ForSequenceClassification");
        ck_assert_str_eq(info.quant, "int8");
        ck_assert_int_eq(info.vocab_size, 320);
        ck_assert_int_eq(info.hidden_size, 64);
        ck_assert_int_eq(info.n_layers, 3);
        ck_assert_int_eq(info.n_heads, 4);
        ck_assert_int_eq(info.n_kv_heads, 2);
        ck_assert_int_eq(info.head_dim, 32);
        ck_assert_int_eq(info.ffn_size, 192);
        ck_assert_int_eq(info.max_positions, 512);
        ck_assert_int_eq(info.n_outputs, 1);
        ck_assert_int_eq(info.pad_token_id, 319);
        ck_assert_uint_eq(info.file_size, g_good_len);
        /* embeddings 320*64, out_norm 64, score 64, and per layer: norms 64+64,
         * q_norm/k_norm 32+32, q 128*64, k/v 64*64 each, o 64*128, 3 x 192*64 */
        ck_assert_uint_eq(info.n_params, 20480 + 64 + 64 + 3 * (128 + 64 + 8192 + 2 * 4096 + 8192 + 3 * 12288));

        const char *meta = qrm_model_metadata_json(models[k]);
        ck_assert(meta != NULL && strstr(meta, "\"quant\":{\"type\":\"int8\"") != NULL);
        const char *a, *b;
        size_t al, bl;
        ck_assert_int_eq(qrm_model_tokenizer_blobs(models[k], &a, &al, &b, &bl), 0);
        ck_assert(al == tj_len && memcmp(a, tj, al) == 0);
        ck_assert(bl == tc_len && memcmp(b, tc, bl) == 0);

        /* and it scores */
        qrm_ctx_params cp;
        qrm_ctx_params_default(&cp);
        cp.n_threads = 1;
        qrm_ctx *c = qrm_ctx_new(models[k], &cp, err, sizeof err);
        ck_assert_msg(c != NULL, "%s", err);
        int32_t ids[] = {316, 5, 6, 7};
        float s = NAN;
        ck_assert_msg(qrm_score_ids(c, ids, 4, &s) == 0, "%s", qrm_ctx_error(c));
        ck_assert(isfinite(s));
        qrm_ctx_free(c);
        qrm_model_close(models[k]);
    }
    free(buf), free(tj), free(tc);
}
END_TEST

START_TEST(open_errors) {
    char err[QRM_ERR_MAX] = "", path[512];
    ck_assert(qrm_model_open(TEST_DATA "/no/such/file.qrm", err, sizeof err) == NULL);
    check_err("missing file", err, "cannot open");
    err[0] = 0;
    ck_assert(qrm_model_open(TEST_DATA, err, sizeof err) == NULL);
    check_err("directory", err, "not a regular file");
    snprintf(path, sizeof path, "%s/empty-%ld.qrm", g_dir, (long)getpid());
    write_file(path, g_good, 0);
    err[0] = 0;
    ck_assert(qrm_model_open(path, err, sizeof err) == NULL);
    unlink(path);
    check_err("empty file", err, "empty");
    /* memory: NULL and misaligned buffers */
    err[0] = 0;
    ck_assert(qrm_model_open_memory(NULL, 100, err, sizeof err) == NULL);
    check_err("NULL buffer", err, "64-byte aligned");
    void *buf;
    ck_assert(posix_memalign(&buf, QRM_ALIGN, g_good_len + 8) == 0);
    memcpy((char *)buf + 8, g_good, g_good_len);
    err[0] = 0;
    ck_assert(qrm_model_open_memory((char *)buf + 8, g_good_len, err, sizeof err) == NULL);
    check_err("misaligned buffer", err, "64-byte aligned");
    free(buf);
}
END_TEST

/* ---- header ---- */

START_TEST(bad_magic) {
    uint8_t *img = malloc(g_good_len);
    memcpy(img, g_good, g_good_len);
    img[0] = 'q';
    reject(img, g_good_len, "bad magic");
    img[0] = 'Q', img[7] = 0;
    reject(img, g_good_len, "bad magic");
    free(img);
    /* something else altogether, longer than a header */
    const char *text = "{\"this is\": \"a JSON file, not a model, and long enough to have a header\"}";
    reject((const uint8_t *)text, strlen(text), "not a qrm model");
}
END_TEST

START_TEST(bad_version) {
    reject_header32(QRM_H_VERSION, 2, "unsupported qrm format version 2");
    reject_header32(QRM_H_VERSION, 0, "unsupported qrm format version 0");
    reject_header32(QRM_H_VERSION, UINT32_MAX, "unsupported qrm format version");
}
END_TEST

START_TEST(bad_header_size) {
    reject_header32(QRM_H_HEADER_SIZE, 63, "bad header size");
    reject_header32(QRM_H_HEADER_SIZE, 128, "bad header size");
    reject_header32(QRM_H_ENTRY_SIZE, 95, "bad tensor entry size");
    reject_header32(QRM_H_ENTRY_SIZE, 0, "bad tensor entry size");
}
END_TEST

START_TEST(file_size_mismatch) {
    reject_header64(QRM_H_FILE_SIZE, g_good_len + 1, "does not match the header");
    reject_header64(QRM_H_FILE_SIZE, g_good_len - 1, "does not match the header");
    reject_header64(QRM_H_FILE_SIZE, 0, "does not match the header");
    reject_header64(QRM_H_FILE_SIZE, UINT64_MAX, "does not match the header");
    /* a padded file */
    uint8_t *img = calloc(g_good_len + 64, 1);
    memcpy(img, g_good, g_good_len);
    reject(img, g_good_len + 64, "does not match the header");
    free(img);
}
END_TEST

START_TEST(metadata_outside_file) {
    uint64_t to = qrm_rd64(g_good + QRM_H_TABLE_OFFSET);
    reject_header64(QRM_H_META_OFFSET, g_good_len, "metadata lies outside the file");
    reject_header64(QRM_H_META_OFFSET, g_good_len + 1, "metadata lies outside the file");
    reject_header64(QRM_H_META_OFFSET, UINT64_MAX - 8, "metadata lies outside the file");
    reject_header64(QRM_H_META_OFFSET, 0, "metadata lies outside the file"); /* the header */
    reject_header64(QRM_H_META_SIZE, g_good_len, "metadata lies outside the file");
    reject_header64(QRM_H_META_SIZE, UINT64_MAX, "metadata lies outside the file");
    reject_header64(QRM_H_META_SIZE, UINT64_MAX - QRM_HEADER_SIZE + 1, "metadata lies outside the file");
    /* metadata running into the table */
    reject_header64(QRM_H_META_SIZE, to - QRM_HEADER_SIZE + 1, "tensor table lies outside");
    /* metadata ending early: the JSON is cut */
    reject_header64(QRM_H_META_SIZE, 100, "metadata is not valid JSON");
    reject_header64(QRM_H_META_SIZE, 0, "metadata is not valid JSON");
}
END_TEST

START_TEST(metadata_invalid_json) {
    uint64_t mo = qrm_rd64(g_good + QRM_H_META_OFFSET), ms = qrm_rd64(g_good + QRM_H_META_SIZE);
    uint8_t *img = malloc(g_good_len);
    /* in place, so the layout stays valid */
    memcpy(img, g_good, g_good_len);
    img[mo + ms - 1] = ']';
    reject(img, g_good_len, "metadata is not valid JSON");
    memcpy(img, g_good, g_good_len);
    img[mo + 2] = 0xff;                         /* invalid UTF-8 inside "format" */
    reject(img, g_good_len, "metadata is not valid JSON");
    memcpy(img, g_good, g_good_len);
    img[mo + 10] = 0;                           /* a NUL in the text */
    reject(img, g_good_len, "metadata is not valid JSON");
    free(img);
    parts p;
    parts_get(&p);
    free(p.meta);
    p.meta = strdup("[1, 2, 3]");
    p.meta_len = strlen(p.meta);
    reject_parts(&p, "metadata is not a JSON object");
    free(p.meta);
    /* deep nesting must not blow the stack */
    p.meta_len = 200000;
    p.meta = malloc(p.meta_len + 1);
    memset(p.meta, '[', p.meta_len);
    p.meta[p.meta_len] = 0;
    reject_parts(&p, "metadata is not valid JSON");
    parts_free(&p);
}
END_TEST

/* Metadata fields removed one at a time. */
static const struct {
    const char *key, *want;
} missing_fields[] = {
    {"model", "'model' is not an object"},
    {"arch", "unknown architecture '(missing)'"},
    {"vocab_size", "missing 'vocab_size'"},
    {"hidden_size", "missing 'hidden_size'"},
    {"n_layers", "missing 'n_layers'"},
    {"n_heads", "missing 'n_heads'"},
    {"n_kv_heads", "missing 'n_kv_heads'"},
    {"head_dim", "missing 'head_dim'"},
    {"ffn_size", "missing 'ffn_size'"},
    {"max_positions", "missing 'max_positions'"},
    {"rms_eps", "missing 'rms_eps'"},
    {"rope_theta", "missing 'rope_theta'"},
    {"activation", "unknown activation '(missing)'"},
    {"embed_scale", "missing 'embed_scale'"},
    {"attn_scale", "missing 'attn_scale'"},
    {"attn_softcap", "missing 'attn_softcap'"},
    {"sliding_window", "missing 'sliding_window'"},
    {"sliding_layers", "'sliding_layers' must list one flag per layer"},
    {"n_outputs", "head 'n_outputs' missing"},
    {"pad_token_id", "missing 'pad_token_id'"},
    {"quant", "quant.type missing or unknown"},
    {"head", "metadata: 'head' is missing or not an object"},
    {"kind", "metadata: unknown head kind '(missing)' (this build reads linear, prm, gated, judge, step_tag, lm)"},
};

START_TEST(metadata_missing_field) {
    parts p;
    parts_get(&p);
    size_t before = p.meta_len;
    meta_remove(&p, missing_fields[_i].key);
    ck_assert(p.meta_len < before);
    reject_parts(&p, missing_fields[_i].want);
    parts_free(&p);
}
END_TEST

/* Metadata values replaced: out of range, inconsistent, or not matching the tensors. */
static const struct {
    const char *from, *to, *want;
} bad_values[] = {
    {"\"n_layers\":3", "\"n_layers\":0", "'n_layers' = 0 is out of range"},
    {"\"n_layers\":3", "\"n_layers\":-1", "'n_layers' = -1 is out of range"},
    {"\"n_layers\":3", "\"n_layers\":513", "'n_layers' = 513 is out of range"},
    {"\"n_layers\":3", "\"n_layers\":3.5", "'n_layers' is not an integer"},
    {"\"n_layers\":3", "\"n_layers\":\"3\"", "'n_layers' is not an integer"},
    {"\"n_layers\":3", "\"n_layers\":1e300", "'n_layers' is not an integer"},
    {"\"vocab_size\":320", "\"vocab_size\":100000000", "'vocab_size' = 100000000 is out of range"},
    {"\"vocab_size\":320", "\"vocab_size\":9007199254740993", "'vocab_size'"},
    {"\"vocab_size\":320", "\"vocab_size\":16777216",
     "tensor 'tok_embd' has shape [320, 64], expected [16777216, 64]"},
    {"\"vocab_size\":320", "\"vocab_size\":0", "'vocab_size' = 0 is out of range"},
    {"\"hidden_size\":64", "\"hidden_size\":65537", "'hidden_size' = 65537 is out of range"},
    {"\"hidden_size\":64", "\"hidden_size\":128", "has shape"},
    {"\"n_heads\":4", "\"n_heads\":0", "'n_heads' = 0 is out of range"},
    {"\"n_heads\":4", "\"n_heads\":8", "tensor 'blk.0.attn_q' has shape [128, 64], expected [256, 64]"},
    {"\"n_kv_heads\":2", "\"n_kv_heads\":3", "'n_heads' (4) must be a multiple of 'n_kv_heads' (3)"},
    {"\"n_kv_heads\":2", "\"n_kv_heads\":0", "'n_kv_heads' = 0 is out of range"},
    {"\"head_dim\":32", "\"head_dim\":33", "'head_dim' = 33 must be even"},
    {"\"head_dim\":32", "\"head_dim\":0", "'head_dim' = 0 is out of range"},
    {"\"head_dim\":32", "\"head_dim\":2048", "'head_dim' = 2048 is out of range"},
    {"\"head_dim\":32", "\"head_dim\":16", "has shape"},
    {"\"ffn_size\":192", "\"ffn_size\":0", "'ffn_size' = 0 is out of range"},
    {"\"ffn_size\":192", "\"ffn_size\":2000000", "'ffn_size' = 2000000 is out of range"},
    {"\"max_positions\":512", "\"max_positions\":0", "'max_positions' = 0 is out of range"},
    {"\"n_outputs\":1", "\"n_outputs\":0", "head 'n_outputs' = 0 out of range"},
    {"\"n_outputs\":1", "\"n_outputs\":65", "head 'n_outputs' = 65 out of range"},
    {"\"n_outputs\":1", "\"n_outputs\":2", "head 'labels' must list one name per output (2)"},
    {"\"pad_token_id\":319", "\"pad_token_id\":-2", "'pad_token_id' = -2 is out of range"},
    {"\"sliding_window\":0", "\"sliding_window\":-1", "'sliding_window' = -1 is out of range"},
    {"\"sliding_layers\":[0,0,0]", "\"sliding_layers\":[0,0]", "'sliding_layers' must list one flag per layer"},
    {"\"sliding_layers\":[0,0,0]", "\"sliding_layers\":[0,0,0,0]", "'sliding_layers' must list one flag per layer"},
    {"\"sliding_layers\":[0,0,0]", "\"sliding_layers\":[0,0,2]", "'sliding_layers' entries must be 0 or 1"},
    {"\"sliding_layers\":[0,0,0]", "\"sliding_layers\":[0,0,0.5]", "'sliding_layers' entries must be 0 or 1"},
    {"\"sliding_layers\":[0,0,0]", "\"sliding_layers\":[0,0,\"1\"]", "'sliding_layers' entries must be 0 or 1"},
    {"\"sliding_layers\":[0,0,0]", "\"sliding_layers\":{}", "'sliding_layers' must list one flag per layer"},
    {"\"arch\":\"qwen3\"", "\"arch\":\"qwen9\"", "unknown architecture 'qwen9'"},
    {"\"arch\":\"qwen3\"", "\"arch\":3", "unknown architecture '(missing)'"},
    {"\"arch\":\"qwen3\"", "\"arch\":\"\"", "unknown architecture ''"},
    {"\"quant\":{\"type\":\"int8\"", "\"quant\":{\"type\":\"int3\"", "quant.type missing or unknown"},
    {"\"quant\":{\"type\":\"int8\"", "\"quant\":{\"type\":8", "quant.type missing or unknown"},
    {"\"quant\":{", "\"quant\":1,\"q\":{", "quant.type missing or unknown"},
    {"\"activation\":\"silu\"", "\"activation\":\"relu\"", "unknown activation 'relu'"},
    {"\"rms_eps\":", "\"rms_eps\":-1,\"x\":", "'rms_eps' = -1 is out of range (0, 1)"},
    {"\"rms_eps\":", "\"rms_eps\":2,\"x\":", "'rms_eps' = 2 is out of range (0, 1)"},
    {"\"rope_theta\":1000000", "\"rope_theta\":0.5", "'rope_theta' = 0.5 is out of range (1, 1e12]"},
    {"\"rope_theta\":1000000", "\"rope_theta\":1e300", "'rope_theta' = 1e+300 is out of range (1, 1e12]"},
    {"\"rope_theta\":1000000", "\"rope_theta\":null", "'rope_theta' is not a number"},
    {"\"attn_softcap\":0", "\"attn_softcap\":-1", "'attn_softcap' is out of range [0, 1e9]"},
    {"\"embed_scale\":1", "\"embed_scale\":-1", "'embed_scale' is out of range (0, 1e6]"},
    {"\"activation\"", "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4},\"activation\"",
     "unsupported rope_scaling type 'yarn'"},
    {"\"activation\"", "\"rope_scaling\":{\"factor\":4},\"activation\"",
     "unsupported rope_scaling type '(missing)'"},
    {"\"activation\"",
     "\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,\"high_freq_factor\":1,"
     "\"original_max_position_embeddings\":8192},\"activation\"",
     "high_freq_factor > low_freq_factor"},
    {"\"activation\"",
     "\"rope_scaling\":{\"type\":\"llama3\",\"factor\":0,\"low_freq_factor\":1,\"high_freq_factor\":4,"
     "\"original_max_position_embeddings\":8192},\"activation\"",
     "rope_scaling needs factor > 0"},
    {"\"activation\"",
     "\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,\"high_freq_factor\":4},"
     "\"activation\"",
     "missing 'original_max_position_embeddings'"},
    /* a flag that asks for tensors the file lacks */
    {"\"qkv_bias\":false", "\"qkv_bias\":true", "missing tensor 'blk.0.attn_q_bias'"},
    {"\"sandwich_norms\":false", "\"sandwich_norms\":true", "missing tensor 'blk.0.attn_post_norm'"},
    /* and one that makes tensors unused */
    {"\"qk_norm\":true", "\"qk_norm\":false", "6 tensors that no role uses"},
    /* the head: its kind */
    {"\"kind\":\"linear\"", "\"kind\":\"softmax\"",
     "metadata: unknown head kind 'softmax' (this build reads linear, prm, gated, judge, step_tag, lm)"},
    {"\"kind\":\"linear\"", "\"kind\":\"\"", "unknown head kind ''"},
    {"\"kind\":\"linear\"", "\"kind\":\"Linear\"", "unknown head kind 'Linear'"},
    {"\"kind\":\"linear\"", "\"kind\":1", "unknown head kind '(missing)'"},
    {"\"head\":{", "\"head\":5,\"h\":{", "metadata: 'head' is missing or not an object"},
    {"\"head\":{", "\"head\":[],\"h\":{", "metadata: 'head' is missing or not an object"},
    {"\"head\":{", "\"head\":null,\"h\":{", "metadata: 'head' is missing or not an object"},
    /* another kind's members are missing from a linear head */
    {"\"kind\":\"linear\"", "\"kind\":\"prm\"", "head 'separator_id' missing or not a token id"},
    {"\"kind\":\"linear\"", "\"kind\":\"gated\"", "head 'n_objectives' missing or out of range"},
    /* its labels */
    {"\"labels\":[\"score\"]", "\"labels\":\"score\"", "head 'labels' must list one name per output (1)"},
    {"\"labels\":[\"score\"]", "\"labels\":{\"0\":\"score\"}", "head 'labels' must list one name per output (1)"},
    {"\"labels\":[\"score\"]", "\"labels\":null", "head 'labels' must list one name per output (1)"},
    {"\"labels\":[\"score\"]", "\"labels\":[]", "head 'labels' must list one name per output (1)"},
    {"\"labels\":[\"score\"]", "\"labels\":[\"score\",\"x\"]", "head 'labels' must list one name per output (1)"},
    {"\"labels\":[\"score\"]", "\"labels\":[5]", "head 'labels' entries must be strings"},
    {"\"labels\":[\"score\"]", "\"labels\":[null]", "head 'labels' entries must be strings"},
    {"\"labels\":[\"score\"]", "\"labels\":[[\"score\"]]", "head 'labels' entries must be strings"},
    {"\"labels\":[\"score\"]", "\"labels\":[\"\"]", "output 0 has an empty name"},
    {"\"labels\":[\"score\"]", "\"labels\":[\"a\\u0000b\"]", "a head label contains a NUL byte"},
    {"\"labels\":[\"score\"]",
     "\"labels\":[\"0123456789012345678901234567890123456789012345678901234567890123\"]",
     "output name '0123456789012345678901234567890123456789012345678901234567890123...' is longer than 63 bytes"},
    {"\"n_outputs\":1,\"labels\":[\"score\"]", "\"n_outputs\":2,\"labels\":[\"a\",\"a\"]",
     "the output name 'a' is used twice"},
    {"\"n_outputs\":1,\"labels\":[\"score\"]", "\"n_outputs\":3,\"labels\":[\"a\",\"b\",\"\"]",
     "output 2 has an empty name"},
    /* consistent labels, a count the tensors disagree with */
    {"\"n_outputs\":1,\"labels\":[\"score\"]", "\"n_outputs\":2,\"labels\":[\"a\",\"b\"]",
     "tensor 'score' has shape [1, 64], expected [2, 64]"},
    {"\"n_outputs\":1,\"labels\":[\"score\"]", "\"n_outputs\":2",
     "tensor 'score' has shape [1, 64], expected [2, 64]"},
    /* a bias the file does not have */
    {"\"bias\":false", "\"bias\":true", "missing tensor 'score_bias'"},
};

START_TEST(metadata_bad_value) {
    parts p;
    parts_get(&p);
    meta_sub(&p, bad_values[_i].from, bad_values[_i].to);
    reject_parts(&p, bad_values[_i].want);
    parts_free(&p);
}
END_TEST

START_TEST(metadata_many_layers) {
    /* 512 layers, consistent flags: loading must look for tensors that are not there */
    parts p;
    parts_get(&p);
    char *flags = malloc(512 * 2 + 32);
    strcpy(flags, "\"sliding_layers\":[0");
    for (int i = 1; i < 512; i++) strcat(flags, ",0");
    strcat(flags, "]");
    meta_sub(&p, "\"n_layers\":3", "\"n_layers\":512");
    meta_sub(&p, "\"sliding_layers\":[0,0,0]", flags);
    reject_parts(&p, "missing tensor 'blk.3.attn_norm'");
    free(flags);
    parts_free(&p);
}
END_TEST

/* ---- the tensor table ---- */

START_TEST(table_outside_file) {
    uint32_t n = qrm_rd32(g_good + QRM_H_TENSOR_COUNT);
    uint64_t to = qrm_rd64(g_good + QRM_H_TABLE_OFFSET);
    reject_header64(QRM_H_TABLE_OFFSET, g_good_len, "tensor table lies outside the file");
    reject_header64(QRM_H_TABLE_OFFSET, g_good_len - 95, "tensor table lies outside the file");
    reject_header64(QRM_H_TABLE_OFFSET, UINT64_MAX - 95, "tensor table lies outside the file");
    reject_header64(QRM_H_TABLE_OFFSET, UINT64_MAX, "tensor table lies outside the file");
    /* over the metadata */
    reject_header64(QRM_H_TABLE_OFFSET, QRM_HEADER_SIZE, "tensor table lies outside the file");
    /* table running into the data */
    reject_header64(QRM_H_TABLE_OFFSET, to + QRM_ALIGN, "tensor data offset is invalid");
    reject_header32(QRM_H_TENSOR_COUNT, n + 1, "tensor data offset is invalid");
}
END_TEST

START_TEST(tensor_count_huge) {
    reject_header32(QRM_H_TENSOR_COUNT, UINT32_MAX, "too many tensors");
    /* 96 * count overflows 32 bits */
    reject_header32(QRM_H_TENSOR_COUNT, 0x02AAAAABu, "too many tensors");
    reject_header32(QRM_H_TENSOR_COUNT, QRM_MAX_TENSORS + 1, "too many tensors");
    reject_header32(QRM_H_TENSOR_COUNT, QRM_MAX_TENSORS, "tensor table lies outside the file");
    /* no tensors at all: a valid table, nothing to bind */
    parts p;
    parts_get(&p);
    p.count = 0;
    reject_parts(&p, "missing tensor 'tok_embd'");
    parts_free(&p);
}
END_TEST

START_TEST(data_offset_invalid) {
    uint64_t doff = qrm_rd64(g_good + QRM_H_DATA_OFFSET);
    uint64_t to = qrm_rd64(g_good + QRM_H_TABLE_OFFSET);
    reject_header64(QRM_H_DATA_OFFSET, doff + 1, "tensor data offset is invalid");
    reject_header64(QRM_H_DATA_OFFSET, doff - 32, "tensor data offset is invalid");
    reject_header64(QRM_H_DATA_OFFSET, to, "tensor data offset is invalid");
    reject_header64(QRM_H_DATA_OFFSET, align64(g_good_len) + QRM_ALIGN, "tensor data offset is invalid");
    reject_header64(QRM_H_DATA_OFFSET, UINT64_MAX - 63, "tensor data offset is invalid");
    /* data starting later: the tensors move past the end */
    reject_header64(QRM_H_DATA_OFFSET, doff + QRM_ALIGN, "data lies outside the file");
}
END_TEST

static void reject_entry64(const char *name, size_t field, uint64_t v, const char *want) {
    parts p;
    parts_get(&p);
    qrm_wr64(entry(&p, name) + field, v);
    reject_parts(&p, want);
    parts_free(&p);
}

static void reject_entry32(const char *name, size_t field, uint32_t v, const char *want) {
    parts p;
    parts_get(&p);
    qrm_wr32(entry(&p, name) + field, v);
    reject_parts(&p, want);
    parts_free(&p);
}

START_TEST(tensor_outside_file) {
    parts p;
    parts_get(&p);
    const char *last = "tokenizer_config.json";
    uint64_t q_size = qrm_rd64(entry(&p, "blk.0.attn_q") + QRM_T_SIZE);
    uint64_t last_off = qrm_rd64(entry(&p, last) + QRM_T_OFFSET);
    uint64_t last_size = qrm_rd64(entry(&p, last) + QRM_T_SIZE);
    size_t dlen = p.data_len;
    parts_free(&p);
    const char *want = "data lies outside the file or is misaligned";
    reject_entry64("blk.0.attn_q", QRM_T_OFFSET, UINT64_MAX - 63, want);
    reject_entry64("blk.0.attn_q", QRM_T_OFFSET, 1ull << 63, want);
    reject_entry64("blk.0.attn_q", QRM_T_OFFSET, align64(dlen), want);
    reject_entry64("blk.0.attn_q", QRM_T_OFFSET, align64(dlen - q_size + 1), want);
    reject_entry64(last, QRM_T_OFFSET, last_off + QRM_ALIGN, want);
    /* sizes: a byte blob one byte too long, and as long as can be */
    parts_get(&p);
    qrm_wr64(entry(&p, last) + QRM_T_NE0, last_size + 1);
    qrm_wr64(entry(&p, last) + QRM_T_SIZE, last_size + 1);
    reject_parts(&p, want);
    qrm_wr64(entry(&p, last) + QRM_T_NE0, UINT64_MAX);
    qrm_wr64(entry(&p, last) + QRM_T_SIZE, UINT64_MAX);
    reject_parts(&p, want);
    qrm_wr64(entry(&p, last) + QRM_T_OFFSET, 0);
    qrm_wr64(entry(&p, last) + QRM_T_NE0, UINT64_MAX - 63);
    qrm_wr64(entry(&p, last) + QRM_T_SIZE, UINT64_MAX - 63);
    reject_parts(&p, want);
    parts_free(&p);
}
END_TEST

START_TEST(tensor_size_overflow) {
    const char *want = "does not match its type and shape";
    parts p;
    parts_get(&p);
    uint8_t *e = entry(&p, "out_norm");     /* f32 [64] */
    /* ne0 * ne1 wraps to 0 */
    qrm_wr32(e + QRM_T_NDIM, 2);
    qrm_wr64(e + QRM_T_NE0, 1ull << 32);
    qrm_wr64(e + QRM_T_NE1, 1ull << 32);
    qrm_wr64(e + QRM_T_SIZE, 0);
    reject_parts(&p, want);
    /* n * 4 wraps to 0 */
    qrm_wr32(e + QRM_T_NDIM, 1);
    qrm_wr64(e + QRM_T_NE0, 1ull << 62);
    qrm_wr64(e + QRM_T_NE1, 1);
    reject_parts(&p, want);
    /* n * 4 wraps to 256, the tensor's true size */
    qrm_wr64(e + QRM_T_NE0, (1ull << 62) + 64);
    qrm_wr64(e + QRM_T_SIZE, 256);
    reject_parts(&p, want);
    /* f16: n * 2 wraps */
    qrm_wr32(e + QRM_T_TYPE, QRM_T_F16);
    qrm_wr64(e + QRM_T_NE0, (1ull << 63) + 128);
    reject_parts(&p, want);
    /* zero-sized */
    qrm_wr32(e + QRM_T_TYPE, QRM_T_F32);
    qrm_wr64(e + QRM_T_NE0, 0);
    qrm_wr64(e + QRM_T_SIZE, 0);
    reject_parts(&p, want);
    parts_free(&p);
    /* q8 of shape [2^32-16, 2^32-32]: the quants fit 64 bits, quants + scales
     * do not; whatever the loader computes, the file must be refused */
    parts_get(&p);
    e = entry(&p, "blk.0.attn_q");
    uint64_t ne0 = 0xFFFFFFF0ull, ne1 = 0xFFFFFFE0ull, n = ne0 * ne1;
    qrm_wr64(e + QRM_T_NE0, ne0);
    qrm_wr64(e + QRM_T_NE1, ne1);
    qrm_wr64(e + QRM_T_SIZE, n + n / QRM_QK * 2);
    reject_parts(&p, "blk.0.attn_q");
    parts_free(&p);
}
END_TEST

/* qrm_tensor_nbytes must report overflow rather than a wrapped size. */
START_TEST(nbytes_overflow) {
    int ok = 1;
    qrm_tensor_nbytes(QRM_T_Q8, 0xFFFFFFF0ull, 0xFFFFFFE0ull, &ok);
    ck_assert_msg(!ok, "q8 [2^32-16, 2^32-32]: quants + scales overflow 64 bits but ok = 1");
    ok = 1;
    qrm_tensor_nbytes(QRM_T_F32, 1ull << 62, 1, &ok);
    ck_assert(!ok);
    ok = 1;
    qrm_tensor_nbytes(QRM_T_F16, 1ull << 32, 1ull << 31, &ok);
    ck_assert(!ok);
    ok = 0;
    ck_assert_uint_eq(qrm_tensor_nbytes(QRM_T_Q4, 16, 64, &ok), 16 * 64 / 2 + 16 * 64 / 32 * 2);
    ck_assert(ok);
    ok = 1;
    qrm_tensor_nbytes(QRM_T_Q4, 16, 48, &ok);       /* K not a multiple of 32 */
    ck_assert(!ok);
}
END_TEST

START_TEST(tensor_misaligned) {
    parts p;
    parts_get(&p);
    uint64_t off = qrm_rd64(entry(&p, "blk.0.attn_q") + QRM_T_OFFSET);
    uint64_t last = qrm_rd64(entry(&p, "tokenizer_config.json") + QRM_T_OFFSET);
    parts_free(&p);
    reject_entry64("blk.0.attn_q", QRM_T_OFFSET, off + 8, "misaligned");
    reject_entry64("blk.0.attn_q", QRM_T_OFFSET, off + 1, "misaligned");
    reject_entry64("tokenizer_config.json", QRM_T_OFFSET, last - 32, "misaligned");
}
END_TEST

START_TEST(tensor_duplicate) {
    parts p;
    parts_get(&p);
    set_name(entry(&p, "blk.1.attn_q"), "blk.0.attn_q");
    reject_parts(&p, "duplicate tensor 'blk.0.attn_q'");
    parts_free(&p);
    parts_get(&p);
    set_name(entry(&p, "tokenizer.json"), "tokenizer_config.json");
    reject_parts(&p, "duplicate tensor 'tokenizer_config.json'");
    parts_free(&p);
}
END_TEST

START_TEST(tensor_overlap) {
    parts p;
    parts_get(&p);
    uint64_t q0 = qrm_rd64(entry(&p, "blk.0.attn_q") + QRM_T_OFFSET);
    parts_free(&p);
    reject_entry64("blk.1.attn_q", QRM_T_OFFSET, q0, "overlap");
    reject_entry64("blk.1.attn_q", QRM_T_OFFSET, q0 + QRM_ALIGN, "overlap");
    reject_entry64("out_norm", QRM_T_OFFSET, q0 + 1024, "overlap");
    /* the tokenizer blob over a weight */
    reject_entry64("tokenizer.json", QRM_T_OFFSET, 0, "overlap");
}
END_TEST

START_TEST(tensor_wrong_shape) {
    parts p;
    parts_get(&p);
    uint8_t *e = entry(&p, "blk.0.attn_norm");  /* f32 [64] */
    qrm_wr64(e + QRM_T_NE0, 32);
    qrm_wr64(e + QRM_T_SIZE, 128);
    reject_parts(&p, "tensor 'blk.0.attn_norm' has shape [32, 1], expected [64, 1]");
    parts_free(&p);
    /* q8 attn_o [64, 128] transposed: same byte count */
    parts_get(&p);
    e = entry(&p, "blk.2.attn_o");
    qrm_wr64(e + QRM_T_NE0, 128);
    qrm_wr64(e + QRM_T_NE1, 64);
    reject_parts(&p, "tensor 'blk.2.attn_o' has shape [128, 64], expected [64, 128]");
    parts_free(&p);
    /* a 1-D norm stored as [1, 64] */
    parts_get(&p);
    e = entry(&p, "out_norm");
    qrm_wr32(e + QRM_T_NDIM, 2);
    qrm_wr64(e + QRM_T_NE0, 1);
    qrm_wr64(e + QRM_T_NE1, 64);
    reject_parts(&p, "tensor 'out_norm' has shape [1, 64], expected [64, 1]");
    parts_free(&p);
}
END_TEST

START_TEST(tensor_bad_dimensions) {
    reject_entry32("blk.0.attn_q", QRM_T_NDIM, 3, "tensor 'blk.0.attn_q': bad dimensions");
    reject_entry32("blk.0.attn_q", QRM_T_NDIM, 0, "tensor 'blk.0.attn_q': bad dimensions");
    reject_entry32("blk.0.attn_q", QRM_T_NDIM, 1, "tensor 'blk.0.attn_q': bad dimensions");
    reject_entry32("blk.0.attn_q", QRM_T_NDIM, UINT32_MAX, "tensor 'blk.0.attn_q': bad dimensions");
}
END_TEST

START_TEST(tensor_wrong_type_for_role) {
    parts p;
    parts_get(&p);
    uint8_t *e = entry(&p, "blk.0.attn_norm");  /* f32 [64] -> f16 */
    qrm_wr32(e + QRM_T_TYPE, QRM_T_F16);
    qrm_wr64(e + QRM_T_SIZE, 128);
    reject_parts(&p, "tensor 'blk.0.attn_norm' has type f16, not allowed");
    parts_free(&p);
    parts_get(&p);
    e = entry(&p, "tok_embd");                  /* f16 [320, 64] -> q8 (smaller) */
    qrm_wr32(e + QRM_T_TYPE, QRM_T_Q8);
    qrm_wr64(e + QRM_T_SIZE, 320 * 64 + 320 * 64 / 32 * 2);
    reject_parts(&p, "tensor 'tok_embd' has type q8, not allowed");
    parts_free(&p);
    parts_get(&p);
    e = entry(&p, "score");                     /* f32 [1, 64] -> f16 */
    qrm_wr32(e + QRM_T_TYPE, QRM_T_F16);
    qrm_wr64(e + QRM_T_SIZE, 128);
    reject_parts(&p, "tensor 'score' has type f16, not allowed");
    parts_free(&p);
    parts_get(&p);
    e = entry(&p, "blk.0.attn_q");              /* q8 [128, 64] -> bytes */
    qrm_wr32(e + QRM_T_TYPE, QRM_T_BYTES);
    qrm_wr64(e + QRM_T_SIZE, 128 * 64);
    reject_parts(&p, "tensor 'blk.0.attn_q' has type bytes, not allowed");
    parts_free(&p);
    /* a norm as q8: no valid q8 size exists for [64] */
    reject_entry32("out_norm", QRM_T_TYPE, QRM_T_Q8, "tensor 'out_norm': size 256 does not match");
    /* the tokenizer as f32: an unused tensor */
    parts_get(&p);
    e = entry(&p, "tokenizer.json");
    uint64_t sz = qrm_rd64(e + QRM_T_SIZE);
    ck_assert(sz % 4 == 0);
    qrm_wr32(e + QRM_T_TYPE, QRM_T_F32);
    qrm_wr64(e + QRM_T_NE0, sz / 4);
    reject_parts(&p, "1 tensors that no role uses");
    parts_free(&p);
}
END_TEST

START_TEST(tensor_unknown_type) {
    reject_entry32("blk.0.attn_v", QRM_T_TYPE, QRM_T_COUNT, "tensor 'blk.0.attn_v': unknown type 5");
    reject_entry32("blk.0.attn_v", QRM_T_TYPE, UINT32_MAX, "unknown type 4294967295");
}
END_TEST

START_TEST(tensor_missing) {
    parts p;
    parts_get(&p);
    set_name(entry(&p, "blk.1.attn_k"), "blk.1.attn_x");
    reject_parts(&p, "missing tensor 'blk.1.attn_k'");
    parts_free(&p);
    parts_get(&p);
    set_name(entry(&p, "score"), "Score");
    reject_parts(&p, "missing tensor 'score'");
    parts_free(&p);
}
END_TEST

START_TEST(tensor_bad_name) {
    parts p;
    parts_get(&p);
    uint8_t *e = entry(&p, "blk.2.ffn_up");
    memset(e + QRM_T_NAME, 'a', QRM_TENSOR_NAME_MAX);
    reject_parts(&p, "not NUL-terminated");
    memset(e + QRM_T_NAME, 0, QRM_TENSOR_NAME_MAX);
    reject_parts(&p, "name is empty");
    parts_free(&p);
}
END_TEST

START_TEST(tensor_extra_unused) {
    parts p;
    parts_get(&p);
    /* one more 64-byte blob after the last tensor */
    uint8_t *e = p.table + (size_t)p.count * QRM_TENSOR_ENTRY_SIZE;
    memset(e, 0, QRM_TENSOR_ENTRY_SIZE);
    set_name(e, "lm_head.extra");
    qrm_wr32(e + QRM_T_TYPE, QRM_T_BYTES);
    qrm_wr32(e + QRM_T_NDIM, 1);
    qrm_wr64(e + QRM_T_NE0, 64);
    qrm_wr64(e + QRM_T_NE1, 1);
    qrm_wr64(e + QRM_T_OFFSET, align64(p.data_len));
    qrm_wr64(e + QRM_T_SIZE, 64);
    p.data_len = align64(p.data_len) + 64;
    p.count++;
    reject_parts(&p, "the file has 1 tensors that no role uses");
    parts_free(&p);
}
END_TEST

/* ---- truncation ---- */

/* Cuts the image at cut bytes and expects a clean refusal: as it is (the
 * header's file size no longer matches) and with the header's file size set
 * to the cut (so that every later check must catch what is missing). */
static void reject_cut(size_t cut, int via_file) {
    ck_assert(cut < g_good_len);
    const char *want = cut < QRM_HEADER_SIZE ? "shorter than the header" : "does not match the header";
    if (via_file && cut == 0) want = "empty";
    if (via_file) reject_file(g_good, cut, want);
    else reject_memory(g_good, cut, want);
    if (cut < QRM_HEADER_SIZE) return;
    uint8_t *img = malloc(cut);
    memcpy(img, g_good, cut);
    qrm_wr64(img + QRM_H_FILE_SIZE, cut);
    if (via_file) reject_file(img, cut, "");
    else reject_memory(img, cut, "");
    free(img);
}

START_TEST(truncated_at_section_boundaries) {
    parts p;
    parts_get(&p);
    uint64_t mo = qrm_rd64(g_good + QRM_H_META_OFFSET), ms = qrm_rd64(g_good + QRM_H_META_SIZE);
    uint64_t to = qrm_rd64(g_good + QRM_H_TABLE_OFFSET), doff = qrm_rd64(g_good + QRM_H_DATA_OFFSET);
    size_t cuts[512];
    int n = 0;
    size_t fixed[] = {0, 1, 7, 8, 12, 16, 24, 32, 40, 48, 52, 56, 63, 64, mo, mo + 1, mo + ms - 1,
                      mo + ms, to - 1, to, doff - 1, doff, g_good_len - 1};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) cuts[n++] = fixed[i];
    for (uint32_t i = 0; i < p.count; i++) {
        const uint8_t *e = p.table + (size_t)i * QRM_TENSOR_ENTRY_SIZE;
        uint64_t off = doff + qrm_rd64(e + QRM_T_OFFSET), size = qrm_rd64(e + QRM_T_SIZE);
        cuts[n++] = to + (size_t)i * QRM_TENSOR_ENTRY_SIZE;         /* entry i starts */
        cuts[n++] = to + (size_t)i * QRM_TENSOR_ENTRY_SIZE + 50;    /* inside entry i */
        cuts[n++] = off;                                            /* tensor i starts */
        cuts[n++] = off + size / 2;
        if (off + size < g_good_len) cuts[n++] = off + size;        /* tensor i ends */
        cuts[n++] = off + size - 1;
    }
    ck_assert(n <= 512);
    for (int i = 0; i < n; i++) {
        reject_cut(cuts[i], 0);
        reject_cut(cuts[i], 1);
    }
    parts_free(&p);
}
END_TEST

START_TEST(truncated_everywhere) {
    size_t tried = 0;
    for (size_t cut = 0; cut < 4096 && cut < g_good_len; cut++, tried++) reject_cut(cut, 0);
    for (size_t cut = 4096; cut < g_good_len; cut += 61, tried++) reject_cut(cut, 0);
    ck_assert(tried > 4096 + 1000);
}
END_TEST

/* ---- random damage ---- */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* Flips 1-4 random bits or bytes in the header, metadata and table; the file
 * must load (and then score without crashing) or be refused with one line. */
START_TEST(random_damage) {
    uint64_t seed = 0x9E3779B97F4A7C15ull, doff = qrm_rd64(g_good + QRM_H_DATA_OFFSET);
    uint64_t to = qrm_rd64(g_good + QRM_H_TABLE_OFFSET);
    uint8_t *img = malloc(g_good_len);
    int loaded = 0, refused = 0;
    for (int trial = 0; trial < 600; trial++) {
        memcpy(img, g_good, g_good_len);
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            uint64_t r = rng_next(&seed);
            /* half the trials aim at the header and table, which are dense with fields */
            uint64_t at = trial % 2 ? r % doff
                                    : (r % 3 == 0 ? r % QRM_HEADER_SIZE : to + r % (doff - to));
            if ((r >> 32) % 2) img[at] ^= (uint8_t)(1u << ((r >> 40) % 8));
            else img[at] = (uint8_t)(r >> 48);
        }
        void *buf;
        char err[QRM_ERR_MAX];
        qrm_model *m = open_mem(img, g_good_len, &buf, err);
        if (!m) {
            check_err("random damage", err, "");
            refused++;
        } else {
            loaded++;
            qrm_model_info info;
            qrm_model_get_info(m, &info);
            qrm_ctx_params cp;
            qrm_ctx_params_default(&cp);
            cp.n_threads = 1;
            cp.max_tokens = 64;
            qrm_ctx *c = qrm_ctx_new(m, &cp, err, sizeof err);
            if (c) {
                int32_t ids[] = {316, 5, 6, 7, 8, 9, 10, 11};
                float s[QRM_MAX_OUTPUTS];
                (void)qrm_score_ids(c, ids, 8, s);
                qrm_ctx_free(c);
            }
            qrm_model_close(m);
        }
        free(buf);
    }
    printf("random damage: %d of 600 damaged images loaded, %d refused\n", loaded, refused);
    free(img);
}
END_TEST

/* The sliding-window flag on a layer of a model without a window: either
 * refused or scored to a finite number. */
START_TEST(sliding_flag_without_window) {
    parts p;
    parts_get(&p);
    meta_sub(&p, "\"sliding_layers\":[0,0,0]", "\"sliding_layers\":[1,1,1]");
    size_t len;
    uint8_t *img = parts_build(&p, &len);
    void *buf;
    char err[QRM_ERR_MAX];
    qrm_model *m = open_mem(img, len, &buf, err);
    if (!m) {
        check_err("sliding flags", err, "sliding");
    } else {
        qrm_ctx_params cp;
        qrm_ctx_params_default(&cp);
        cp.n_threads = 1;
        qrm_ctx *c = qrm_ctx_new(m, &cp, err, sizeof err);
        ck_assert_msg(c != NULL, "%s", err);
        int32_t ids[] = {316, 5, 6, 7, 8, 9, 10, 11};
        float s = NAN;
        ck_assert_msg(qrm_score_ids(c, ids, 8, &s) == 0, "%s", qrm_ctx_error(c));
        ck_assert_msg(isfinite(s), "sliding flags with window 0 score %g", (double)s);
        qrm_ctx_free(c);
        qrm_model_close(m);
    }
    free(buf), free(img);
    parts_free(&p);
}
END_TEST

/* ---- the head ---- */

/* Opens parts that must load (from memory; *buf and *img are the caller's to free). */
static qrm_model *accept_parts(const parts *p, void **buf, uint8_t **img) {
    size_t len;
    char err[QRM_ERR_MAX];
    *img = parts_build(p, &len);
    qrm_model *m = open_mem(*img, len, buf, err);
    ck_assert_msg(m != NULL, "refused: %s", err);
    return m;
}

/* The model scores the ids of a sequence head to finite values. */
static void scores_finite(const qrm_model *m, const int32_t *ids, size_t n) {
    char err[QRM_ERR_MAX];
    qrm_ctx_params cp;
    qrm_ctx_params_default(&cp);
    cp.n_threads = 1;
    qrm_ctx *c = qrm_ctx_new(m, &cp, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    float s[QRM_MAX_OUTPUTS];
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    ck_assert_msg(qrm_score_ids(c, ids, n, s) == 0, "%s", qrm_ctx_error(c));
    for (int i = 0; i < info.n_outputs; i++)
        ck_assert_msg(isfinite(s[i]), "output %d (%s) is %g", i, qrm_model_output_name(m, i),
                      (double)s[i]);
    qrm_ctx_free(c);
}

/* Head metadata the loader still reads: the linear head's old name "score"
 * (converter 1.0), no labels (files before names), a 63-byte name. */
START_TEST(head_metadata_that_loads) {
    static const int32_t ids[] = {316, 5, 6, 7};
    static const struct {
        const char *from, *to, *name;
    } cases[] = {
        {"\"kind\":\"linear\"", "\"kind\":\"score\"", "score"},
        {",\"labels\":[\"score\"]", "", "score"},
        {"\"labels\":[\"score\"]",
         "\"labels\":[\"012345678901234567890123456789012345678901234567890123456789012\"]",
         "012345678901234567890123456789012345678901234567890123456789012"},
        {"\"labels\":[\"score\"]", "\"labels\":[\"r\\u00e9compense\"]", "r\xc3\xa9" "compense"},
        /* members a linear head does not read */
        {"\"position\":\"last_non_pad\"", "\"position\":\"first\",\"separator_id\":-7", "score"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        parts p;
        parts_get(&p);
        meta_sub(&p, cases[k].from, cases[k].to);
        void *buf;
        uint8_t *img;
        qrm_model *m = accept_parts(&p, &buf, &img);
        qrm_model_info info;
        qrm_model_get_info(m, &info);
        ck_assert_str_eq(info.head, "linear");
        ck_assert_int_eq(info.n_outputs, 1);
        ck_assert_str_eq(qrm_model_output_name(m, 0), cases[k].name);
        scores_finite(m, ids, 4);
        qrm_model_close(m);
        free(buf), free(img);
        parts_free(&p);
    }
}
END_TEST

/* ---- the PRM and ArmoRM heads ---- */

static uint8_t *g_prm, *g_armo;     /* qwen2-prm-tiny and llama3-armorm-tiny, int8 */
static size_t g_prm_len, g_armo_len;

static uint8_t *convert_image(const char *fixture, size_t *len) {
    char out[512], err[QRM_ERR_MAX];
    snprintf(out, sizeof out, "%s/head.qrm", g_dir);
    qrm_convert_opts o = {.hf_dir = fixture, .out_path = out, .quant = "int8"};
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "converting %s: %s", fixture, err);
    uint8_t *img = (uint8_t *)tu_read_file(out, len);
    unlink(out);
    return img;
}

static void setup_heads(void) {
    setup_good();
    g_prm = convert_image(TEST_DATA "/models/qwen2-prm-tiny", &g_prm_len);
    g_armo = convert_image(TEST_DATA "/models/llama3-armorm-tiny", &g_armo_len);
}

static void teardown_heads(void) {
    free(g_prm), free(g_armo);
    teardown_good();
}

/* The first sequence of llama3-armorm-tiny/expected.jsonl: it has the gating pattern. */
static const int32_t armo_ids[] = {316, 285, 66, 318, 320, 273, 115, 266, 116, 260, 116, 321, 10, 10, 122};

START_TEST(head_images_load) {
    const uint8_t *imgs[2] = {g_prm, g_armo};
    size_t lens[2] = {g_prm_len, g_armo_len};
    for (int k = 0; k < 2; k++) {
        /* parts_build reproduces the converter's file */
        parts p;
        parts_get_from(&p, imgs[k], lens[k]);
        size_t len;
        uint8_t *img = parts_build(&p, &len);
        ck_assert_uint_eq(len, lens[k]);
        ck_assert_msg(memcmp(img, imgs[k], len) == 0, "parts_build differs from the writer");
        free(img);
        parts_free(&p);
    }
    void *buf;
    char err[QRM_ERR_MAX];
    qrm_model *m = open_mem(g_prm, g_prm_len, &buf, err);
    ck_assert_msg(m != NULL, "%s", err);
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    ck_assert_str_eq(info.head, "prm");
    ck_assert_int_eq(info.per_step, 1);
    ck_assert_int_eq(info.n_outputs, 1);
    ck_assert_str_eq(qrm_model_output_name(m, 0), "step");
    qrm_ctx_params cp;
    qrm_ctx_params_default(&cp);
    cp.n_threads = 1;
    qrm_ctx *c = qrm_ctx_new(m, &cp, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    int32_t ids[] = {316, 5, 319, 6, 7, 319};
    qrm_scores sc;
    ck_assert_msg(qrm_score(c, ids, 6, &sc) == 0, "%s", qrm_ctx_error(c));
    ck_assert_uint_eq(sc.n_points, 2);
    ck_assert_int_eq(sc.positions[0], 2);
    ck_assert_int_eq(sc.positions[1], 5);
    ck_assert(sc.values[0] > 0 && sc.values[0] < 1 && sc.values[1] > 0 && sc.values[1] < 1);
    qrm_scores_free(&sc);
    qrm_ctx_free(c);
    qrm_model_close(m);
    free(buf);

    m = open_mem(g_armo, g_armo_len, &buf, err);
    ck_assert_msg(m != NULL, "%s", err);
    qrm_model_get_info(m, &info);
    ck_assert_str_eq(info.head, "gated");
    ck_assert_int_eq(info.n_outputs, 11);
    ck_assert_str_eq(qrm_model_output_name(m, 10), "gate:objective_4");
    scores_finite(m, armo_ids, sizeof armo_ids / sizeof armo_ids[0]);
    qrm_model_close(m);
    free(buf);
}
END_TEST

/* A head member set to a value (NULL: removed), optionally with the labels
 * removed too (so that the output count comes from the head alone). */
typedef struct {
    const char *key, *value;
    int drop_labels;
    const char *want;
} head_value;

static const head_value prm_values[] = {
    /* {"kind":"prm","separator_id":319,"hidden":64,"classes":2,"positive_class":1,...} */
    {"separator_id", "320", 0, "metadata: head 'separator_id' missing or not a token id"},
    {"separator_id", "-1", 0, "head 'separator_id' missing or not a token id"},
    {"separator_id", "\"319\"", 0, "head 'separator_id' missing or not a token id"},
    {"separator_id", "319.5", 0, "head 'separator_id' missing or not a token id"},
    {"separator_id", "1e300", 0, "head 'separator_id' missing or not a token id"},
    {"separator_id", NULL, 0, "head 'separator_id' missing or not a token id"},
    {"classes", "3", 0, "metadata: a prm head has 2 classes and reads class 1"},
    {"classes", "1", 0, "a prm head has 2 classes and reads class 1"},
    {"classes", NULL, 0, "a prm head has 2 classes and reads class 1"},
    {"positive_class", "0", 0, "a prm head has 2 classes and reads class 1"},
    {"positive_class", NULL, 0, "a prm head has 2 classes and reads class 1"},
    /* the hidden layer's width: the tensors disagree, or out of range */
    {"hidden", "32", 0, "tensor 'prm.fc1' has shape [64, 64], expected [32, 64]"},
    {"hidden", "128", 0, "tensor 'prm.fc1' has shape [64, 64], expected [128, 64]"},
    {"hidden", "0", 0, "metadata: head 'hidden' missing or out of range"},
    {"hidden", "65537", 0, "head 'hidden' missing or out of range"},
    {"hidden", NULL, 0, "head 'hidden' missing or out of range"},
    /* one output, "step" */
    {"labels", "[\"step\",\"x\"]", 0, "head 'labels' must list one name per output (1)"},
    {"labels", "[\"\"]", 0, "output 0 has an empty name"},
    /* another kind */
    {"kind", "\"linear\"", 0, "missing tensor 'score' (the linear head's)"},
    {"kind", "\"gated\"", 0, "head 'n_objectives' missing or out of range"},
    {"kind", "\"PRM\"", 0, "unknown head kind 'PRM'"},
};

static const head_value armo_values[] = {
    /* {"kind":"gated","n_objectives":5,"gate_layers":4,"gate_dim":32,"temperature":10,
     *  "reward_position":"before_first_pad","gating_pattern":[318,320,...,10,10],...} */
    {"gating_pattern", "[]", 0, "metadata: head 'gating_pattern' must list 1 to 32 token ids"},
    {"gating_pattern", "5", 0, "head 'gating_pattern' must list 1 to 32 token ids"},
    {"gating_pattern", "\"318\"", 0, "head 'gating_pattern' must list 1 to 32 token ids"},
    {"gating_pattern", NULL, 0, "head 'gating_pattern' must list 1 to 32 token ids"},
    {"gating_pattern",
     "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", 0,
     "head 'gating_pattern' must list 1 to 32 token ids"},
    {"gating_pattern", "[322]", 0, "metadata: head 'gating_pattern' entry 0 is not a token id"},
    {"gating_pattern", "[318,320,100000]", 0, "head 'gating_pattern' entry 2 is not a token id"},
    {"gating_pattern", "[318,-1]", 0, "head 'gating_pattern' entry 1 is not a token id"},
    {"gating_pattern", "[318,\"320\"]", 0, "head 'gating_pattern' entry 1 is not a token id"},
    {"gating_pattern", "[318,1.5]", 0, "head 'gating_pattern' entry 1 is not a token id"},
    {"gating_pattern", "[null]", 0, "head 'gating_pattern' entry 0 is not a token id"},
    /* n_objectives: the stated output count (1 + 2K) first */
    {"n_objectives", "4", 0, "head 'n_outputs' does not match the gated head's 9 outputs"},
    {"n_objectives", "4", 1, "head 'n_outputs' does not match the gated head's 9 outputs"},
    {"n_objectives", "6", 1, "head 'n_outputs' does not match the gated head's 13 outputs"},
    /* positive as a double, 0 or inf as the float it is used as */
    {"temperature", "1e-300", 0, "head 'temperature' missing or not a positive float"},
    {"temperature", "1e300", 0, "head 'temperature' missing or not a positive float"},
    {"n_objectives", "0", 0, "metadata: head 'n_objectives' missing or out of range [1, 31]"},
    {"n_objectives", "32", 0, "head 'n_objectives' missing or out of range [1, 31]"},
    {"n_objectives", "\"5\"", 0, "head 'n_objectives' missing or out of range [1, 31]"},
    {"n_objectives", NULL, 0, "head 'n_objectives' missing or out of range [1, 31]"},
    /* the gating network's depth and width against the tensors */
    {"gate_layers", "3", 0, "tensor 'armo.gate.2' has shape [32, 32], expected [5, 32]"},
    {"gate_layers", "5", 0, "tensor 'armo.gate.3' has shape [5, 32], expected [32, 32]"},
    {"gate_layers", "1", 0, "tensor 'armo.gate.0' has shape [32, 64], expected [5, 64]"},
    {"gate_layers", "0", 0, "metadata: head 'gate_layers' missing or out of range [1, 10]"},
    {"gate_layers", "11", 0, "head 'gate_layers' missing or out of range [1, 10]"},
    {"gate_layers", NULL, 0, "head 'gate_layers' missing or out of range [1, 10]"},
    {"gate_dim", "16", 0, "tensor 'armo.gate.0' has shape [32, 64], expected [16, 64]"},
    {"gate_dim", "0", 0, "metadata: head 'gate_dim' missing or out of range"},
    {"gate_dim", "65537", 0, "head 'gate_dim' missing or out of range"},
    {"gate_dim", NULL, 0, "head 'gate_dim' missing or out of range"},
    /* the temperature */
    {"temperature", "0", 0, "metadata: head 'temperature' missing or not a positive float"},
    {"temperature", "-10", 0, "head 'temperature' missing or not a positive float"},
    {"temperature", "-0.0", 0, "head 'temperature' missing or not a positive float"},
    {"temperature", "\"10\"", 0, "head 'temperature' missing or not a positive float"},
    {"temperature", "null", 0, "head 'temperature' missing or not a positive float"},
    {"temperature", NULL, 0, "head 'temperature' missing or not a positive float"},
    /* the labels: score, 5 objectives, 5 gates */
    {"labels", "[\"score\"]", 0, "head 'labels' must list one name per output (11)"},
    {"labels", "[\"s\",\"a\",\"b\",\"c\",\"d\",\"e\",\"ga\",\"gb\",\"gc\",\"gd\",\"a\"]", 0,
     "the output name 'a' is used twice"},
    /* another kind */
    {"kind", "\"prm\"", 0, "head 'separator_id' missing or not a token id"},
    {"kind", "\"linear\"", 0, "missing tensor 'score' (the linear head's)"},
};

static void reject_head_value(const uint8_t *img, size_t len, const head_value *v) {
    parts p;
    parts_get_from(&p, img, len);
    meta_set(&p, v->key, v->value);
    if (v->drop_labels) meta_remove(&p, "labels");
    reject_parts(&p, v->want);
    parts_free(&p);
}

START_TEST(prm_bad_value) { reject_head_value(g_prm, g_prm_len, &prm_values[_i]); }
END_TEST

START_TEST(armo_bad_value) { reject_head_value(g_armo, g_armo_len, &armo_values[_i]); }
END_TEST

/* A head tensor renamed away, or stored in another type. */
START_TEST(head_tensor_missing) {
    static const struct {
        int armo;
        const char *name, *want;
    } cases[] = {
        {0, "prm.fc1", "missing tensor 'prm.fc1' (the prm head's)"},
        {0, "prm.fc2", "missing tensor 'prm.fc2' (the prm head's)"},
        {0, "prm.fc2_bias", "missing tensor 'prm.fc2_bias' (the prm head's)"},
        {1, "armo.regression", "missing tensor 'armo.regression' (the gated head's)"},
        {1, "armo.logit_scale", "missing tensor 'armo.logit_scale' (the gated head's)"},
        {1, "armo.transform", "missing tensor 'armo.transform' (the gated head's)"},
        {1, "armo.gate.3_bias", "missing tensor 'armo.gate.3_bias' (the gated head's)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        parts p;
        if (cases[k].armo) parts_get_from(&p, g_armo, g_armo_len);
        else parts_get_from(&p, g_prm, g_prm_len);
        set_name(entry(&p, cases[k].name), "renamed");
        reject_parts(&p, cases[k].want);
        parts_free(&p);
    }
    /* the head's tensors are f32 only */
    parts p;
    parts_get_from(&p, g_prm, g_prm_len);
    uint8_t *e = entry(&p, "prm.fc1");          /* f32 [64, 64] -> f16 */
    qrm_wr32(e + QRM_T_TYPE, QRM_T_F16);
    qrm_wr64(e + QRM_T_SIZE, 64 * 64 * 2);
    reject_parts(&p, "tensor 'prm.fc1' has type f16, not allowed");
    parts_free(&p);
    parts_get_from(&p, g_armo, g_armo_len);
    e = entry(&p, "armo.transform");            /* f32 [5, 5] -> [25] */
    qrm_wr32(e + QRM_T_NDIM, 1);
    qrm_wr64(e + QRM_T_NE0, 25);
    qrm_wr64(e + QRM_T_NE1, 1);
    reject_parts(&p, "tensor 'armo.transform' has shape [25, 1], expected [5, 5]");
    parts_free(&p);
}
END_TEST

/* Head values the loader accepts must score to finite values: tiny and huge
 * temperatures, a one-token pattern, the whole sequence as the pattern. */
START_TEST(armo_extreme_values) {
    static const struct {
        const char *key, *value;
    } cases[] = {
        {"temperature", "1e-30"},
        {"temperature", "1e30"},
        {"temperature", "0.001"},
        {"gating_pattern", "[10]"},
        {"gating_pattern", "[316,285,66,318,320,273,115,266,116,260,116,321,10,10,122]"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        parts p;
        parts_get_from(&p, g_armo, g_armo_len);
        meta_set(&p, cases[k].key, cases[k].value);
        void *buf;
        uint8_t *img;
        qrm_model *m = accept_parts(&p, &buf, &img);
        scores_finite(m, armo_ids, sizeof armo_ids / sizeof armo_ids[0]);
        qrm_model_close(m);
        free(buf), free(img);
        parts_free(&p);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("format");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, setup_good, teardown_good);
    tcase_add_test(tc, good_file_loads);
    tcase_add_test(tc, open_errors);
    tcase_add_test(tc, bad_magic);
    tcase_add_test(tc, bad_version);
    tcase_add_test(tc, bad_header_size);
    tcase_add_test(tc, file_size_mismatch);
    tcase_add_test(tc, metadata_outside_file);
    tcase_add_test(tc, metadata_invalid_json);
    tcase_add_loop_test(tc, metadata_missing_field, 0,
                        (int)(sizeof missing_fields / sizeof missing_fields[0]));
    tcase_add_loop_test(tc, metadata_bad_value, 0, (int)(sizeof bad_values / sizeof bad_values[0]));
    tcase_add_test(tc, metadata_many_layers);
    tcase_add_test(tc, table_outside_file);
    tcase_add_test(tc, tensor_count_huge);
    tcase_add_test(tc, data_offset_invalid);
    tcase_add_test(tc, tensor_outside_file);
    tcase_add_test(tc, tensor_size_overflow);
    tcase_add_test(tc, nbytes_overflow);
    tcase_add_test(tc, tensor_misaligned);
    tcase_add_test(tc, tensor_duplicate);
    tcase_add_test(tc, tensor_overlap);
    tcase_add_test(tc, tensor_wrong_shape);
    tcase_add_test(tc, tensor_bad_dimensions);
    tcase_add_test(tc, tensor_wrong_type_for_role);
    tcase_add_test(tc, tensor_unknown_type);
    tcase_add_test(tc, tensor_missing);
    tcase_add_test(tc, tensor_bad_name);
    tcase_add_test(tc, tensor_extra_unused);
    tcase_add_test(tc, truncated_at_section_boundaries);
    tcase_add_test(tc, truncated_everywhere);
    tcase_add_test(tc, random_damage);
    tcase_add_test(tc, sliding_flag_without_window);
    tcase_add_test(tc, head_metadata_that_loads);
    tcase_add_test(tc, alloc_huge_sizes);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("heads");
    tcase_set_timeout(th, 300);
    tcase_add_unchecked_fixture(th, setup_heads, teardown_heads);
    tcase_add_test(th, head_images_load);
    tcase_add_loop_test(th, prm_bad_value, 0, (int)(sizeof prm_values / sizeof prm_values[0]));
    tcase_add_loop_test(th, armo_bad_value, 0, (int)(sizeof armo_values / sizeof armo_values[0]));
    tcase_add_test(th, head_tensor_missing);
    tcase_add_test(th, armo_extreme_values);
    suite_add_tcase(s, th);
    return s;
}

int main(void) { return tu_run(suite()); }
