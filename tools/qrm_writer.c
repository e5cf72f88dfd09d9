#include "qrm_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

void qrm_writer_init(qrm_writer *w) { memset(w, 0, sizeof *w); }

int qrm_writer_add(qrm_writer *w, const char *name, uint32_t type, int ndim, uint64_t ne0,
                   uint64_t ne1, char *err, size_t errlen) {
    if (strlen(name) >= QRM_TENSOR_NAME_MAX) FAIL("tensor name '%s' is too long", name);
    int ok;
    uint64_t size = qrm_tensor_nbytes(type, ne0, ne1, &ok);
    if (!ok) FAIL("tensor '%s': invalid shape for type %s", name, qrm_tensor_type_name(type));
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        qrm_wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) FAIL("out of memory");
        w->t = t, w->cap = cap;
    }
    qrm_wtensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type, t->ndim = ndim, t->ne0 = ne0, t->ne1 = ne1, t->size = size;
    return 0;
}

static uint64_t align_up(uint64_t x) { return (x + QRM_ALIGN - 1) / QRM_ALIGN * QRM_ALIGN; }

static int put(qrm_writer *w, const void *p, size_t n, char *err, size_t errlen) {
    if (n && fwrite(p, 1, n, w->f) != n) FAIL("cannot write '%s': %s", w->tmp_path, strerror(errno));
    if (w->hashing) qrm_sha256_update(&w->hash, p, n);
    return 0;
}

static int pad_to(qrm_writer *w, uint64_t off, char *err, size_t errlen) {
    static const uint8_t zeros[QRM_ALIGN];
    long cur = ftell(w->f);
    if (cur < 0) FAIL("cannot write '%s': %s", w->tmp_path, strerror(errno));
    if ((uint64_t)cur > off) FAIL("internal error: writer position");
    return put(w, zeros, (size_t)(off - (uint64_t)cur), err, errlen);
}

int qrm_writer_begin(qrm_writer *w, const char *path, const char *meta, size_t meta_len,
                     char *err, size_t errlen) {
    uint64_t meta_off = QRM_HEADER_SIZE, table_off = align_up(meta_off + meta_len);
    uint64_t off = align_up(table_off + (uint64_t)w->n * QRM_TENSOR_ENTRY_SIZE);
    w->data_offset = off;
    uint64_t rel = 0;
    for (int i = 0; i < w->n; i++) {
        w->t[i].offset = rel;
        rel = align_up(rel + w->t[i].size);
    }
    w->file_size = off + (w->n ? w->t[w->n - 1].offset + w->t[w->n - 1].size : 0);
    w->path = strdup(path);
    w->tmp_path = malloc(strlen(path) + 16);
    if (!w->path || !w->tmp_path) FAIL("out of memory");
    snprintf(w->tmp_path, strlen(path) + 16, "%s.tmp%ld", path, (long)getpid());
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) FAIL("cannot create '%s': %s", w->tmp_path, strerror(errno));

    uint8_t h[QRM_HEADER_SIZE] = {0};
    memcpy(h + QRM_H_MAGIC, QRM_MAGIC, 8);
    qrm_wr32(h + QRM_H_VERSION, QRM_FORMAT_VERSION);
    qrm_wr32(h + QRM_H_HEADER_SIZE, QRM_HEADER_SIZE);
    qrm_wr64(h + QRM_H_FILE_SIZE, w->file_size);
    qrm_wr64(h + QRM_H_META_OFFSET, meta_off);
    qrm_wr64(h + QRM_H_META_SIZE, meta_len);
    qrm_wr64(h + QRM_H_TABLE_OFFSET, table_off);
    qrm_wr32(h + QRM_H_TENSOR_COUNT, (uint32_t)w->n);
    qrm_wr32(h + QRM_H_ENTRY_SIZE, QRM_TENSOR_ENTRY_SIZE);
    qrm_wr64(h + QRM_H_DATA_OFFSET, off);
    if (put(w, h, sizeof h, err, errlen) || put(w, meta, meta_len, err, errlen) ||
        pad_to(w, table_off, err, errlen))
        return -1;
    for (int i = 0; i < w->n; i++) {
        uint8_t e[QRM_TENSOR_ENTRY_SIZE] = {0};
        memcpy(e + QRM_T_NAME, w->t[i].name, strlen(w->t[i].name));
        qrm_wr32(e + QRM_T_TYPE, w->t[i].type);
        qrm_wr32(e + QRM_T_NDIM, (uint32_t)w->t[i].ndim);
        qrm_wr64(e + QRM_T_NE0, w->t[i].ne0);
        qrm_wr64(e + QRM_T_NE1, w->t[i].ne1);
        qrm_wr64(e + QRM_T_OFFSET, w->t[i].offset);
        qrm_wr64(e + QRM_T_SIZE, w->t[i].size);
        if (put(w, e, sizeof e, err, errlen)) return -1;
    }
    /* from here on, every byte is the data region's */
    if (pad_to(w, off, err, errlen)) return -1;
    const char *ph = meta_len ? memmem(meta, meta_len, QRM_SHA256_PLACEHOLDER, strlen(QRM_SHA256_PLACEHOLDER)) : NULL;
    w->checksum_at = ph ? (long)(meta_off + (uint64_t)(ph - meta) + strlen("\"data_sha256\":\"")) : -1;
    qrm_sha256_init(&w->hash);
    w->hashing = 1;
    return 0;
}

int qrm_writer_data(qrm_writer *w, const void *data, size_t n, char *err, size_t errlen) {
    if (w->next >= w->n) FAIL("internal error: more tensor data than declared");
    qrm_wtensor *t = &w->t[w->next++];
    if (n != t->size) FAIL("internal error: tensor '%s' has %zu bytes, declared %llu", t->name, n,
                           (unsigned long long)t->size);
    if (pad_to(w, w->data_offset + t->offset, err, errlen)) return -1;
    return put(w, data, n, err, errlen);
}

int qrm_writer_finish(qrm_writer *w, char *err, size_t errlen) {
    if (w->next != w->n) FAIL("internal error: %d tensors declared, %d written", w->n, w->next);
    if (w->checksum_at >= 0) {
        uint8_t d[32];
        char hex[65];
        qrm_sha256_final(&w->hash, d);
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
        w->hashing = 0;
        if (fseek(w->f, w->checksum_at, SEEK_SET) || put(w, hex, 64, err, errlen))
            FAIL("cannot write '%s': %s", w->tmp_path, strerror(errno));
    }
    int bad = fflush(w->f) != 0 || ferror(w->f);
    bad |= fclose(w->f) != 0;
    w->f = NULL;
    if (bad) FAIL("cannot write '%s': %s", w->tmp_path, strerror(errno));
    if (rename(w->tmp_path, w->path) != 0)
        FAIL("cannot rename '%s' to '%s': %s", w->tmp_path, w->path, strerror(errno));
    free(w->tmp_path);
    w->tmp_path = NULL;
    return 0;
}

void qrm_writer_abort(qrm_writer *w) {
    if (w->f) fclose(w->f);
    if (w->tmp_path) remove(w->tmp_path);
    free(w->tmp_path), free(w->path), free(w->t);
    memset(w, 0, sizeof *w);
}
