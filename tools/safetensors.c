#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "f16.h"
#include "json.h"
#include "sha256.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

const char *qrm_st_dtype_name(qrm_st_dtype t) {
    return t == QRM_ST_F32 ? "F32" : t == QRM_ST_F16 ? "F16" : "BF16";
}

float qrm_st_get(const qrm_st_tensor *t, size_t i) {
    const uint8_t *p = t->data;
    if (t->dtype == QRM_ST_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    return t->dtype == QRM_ST_F16 ? qrm_f16_to_f32(h) : qrm_bf16_to_f32(h);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Parses one safetensors file's header and appends its tensors. */
static int read_file(qrm_checkpoint *ck, int fi, const char *path, char *err, size_t errlen) {
    const qrm_mapped_file *f = &ck->maps[fi];
    const uint8_t *base = f->data;
    qj_doc *doc = NULL;
    if (f->size < 8) FAIL("%s: too short for a safetensors file", path);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)base[i] << (8 * i);
    if (hlen > f->size - 8) FAIL("%s: header length %llu is past the end of the file", path, (unsigned long long)hlen);
    if (hlen > (100u << 20)) FAIL("%s: header of %llu bytes is larger than the 100 MB safetensors allows", path, (unsigned long long)hlen);
    char jerr[160];
    doc = qj_parse((const char *)base + 8, hlen, jerr, sizeof jerr);
    if (!doc) FAIL("%s: header is not valid JSON: %s", path, jerr);
    const qj_value *root = qj_root(doc);
    if (root->type != QJ_OBJECT) FAIL("%s: header is not a JSON object", path);
    const uint8_t *data = base + 8 + hlen;
    uint64_t data_size = f->size - 8 - hlen;
    qrm_st_tensor *nt = realloc(ck->tensors, (size_t)(ck->n_tensors + (int)root->len) * sizeof *nt);
    if (!nt) FAIL("out of memory");
    ck->tensors = nt;
    for (uint32_t i = 0; i < root->len; i++) {
        const qj_member *m = &root->u.members[i];
        if (!strcmp(m->key, "__metadata__")) continue;
        const qj_value *v = &m->value;
        const char *dt = qj_get_str(v, "dtype");
        const qj_value *shape = qj_get_type(v, "shape", QJ_ARRAY);
        const qj_value *offs = qj_get_type(v, "data_offsets", QJ_ARRAY);
        if (!dt || !shape || !offs || offs->len != 2)
            FAIL("%s: tensor '%s' lacks dtype, shape or data_offsets", path, m->key);
        qrm_st_tensor t;
        memset(&t, 0, sizeof t);
        size_t esize;
        if (!strcmp(dt, "F32")) t.dtype = QRM_ST_F32, esize = 4;
        else if (!strcmp(dt, "F16")) t.dtype = QRM_ST_F16, esize = 2;
        else if (!strcmp(dt, "BF16")) t.dtype = QRM_ST_BF16, esize = 2;
        else FAIL("%s: tensor '%s' has dtype %s (supported: F32, F16, BF16)", path, m->key, dt);
        if (shape->len > 4) FAIL("%s: tensor '%s' has %u dimensions", path, m->key, shape->len);
        uint64_t count = 1;
        t.ndim = (int)shape->len;
        for (uint32_t d = 0; d < shape->len; d++) {
            const qj_value *s = &shape->u.items[d];
            if (s->type != QJ_NUMBER || !s->is_int || s->u.num < 0 || s->u.num > 1e12)
                FAIL("%s: tensor '%s' has an invalid shape", path, m->key);
            t.shape[d] = (int64_t)s->u.num;
            if (t.shape[d] && count > UINT64_MAX / (uint64_t)t.shape[d])
                FAIL("%s: tensor '%s' shape overflows", path, m->key);
            count *= (uint64_t)t.shape[d];
        }
        const qj_value *o0 = &offs->u.items[0], *o1 = &offs->u.items[1];
        if (o0->type != QJ_NUMBER || o1->type != QJ_NUMBER || !o0->is_int || !o1->is_int ||
            o0->u.num < 0 || o1->u.num < o0->u.num || o1->u.num > (double)data_size)
            FAIL("%s: tensor '%s' data_offsets lie outside the file", path, m->key);
        uint64_t b = (uint64_t)o0->u.num, e = (uint64_t)o1->u.num;
        if (count > UINT64_MAX / esize || e - b != count * esize)
            FAIL("%s: tensor '%s' occupies %llu bytes but its shape needs %llu", path, m->key,
                 (unsigned long long)(e - b), (unsigned long long)(count * esize));
        t.data = data + b;
        t.nbytes = e - b;
        t.file = fi;
        t.name = strdup(m->key);
        if (!t.name) FAIL("out of memory");
        ck->tensors[ck->n_tensors++] = t;
        ck->dtypes_seen |= 1 << t.dtype;
    }
    qj_free(doc);
    return 0;
fail:
    qj_free(doc);
    return -1;
}

static int add_file(qrm_checkpoint *ck, const char *dir, const char *name, int hash, char *err,
                    size_t errlen) {
    for (int i = 0; i < ck->n_files; i++)
        if (!strcmp(ck->file_names[i], name)) return 0;
    if (!*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, ".")) {
        snprintf(err, errlen, "model.safetensors.index.json: shard name '%s' is not a plain file name", name);
        return -1;
    }
    int n = ck->n_files + 1;
    char **fn = realloc(ck->file_names, (size_t)n * sizeof *fn);
    if (fn) ck->file_names = fn;
    qrm_mapped_file *mp = realloc(ck->maps, (size_t)n * sizeof *mp);
    if (mp) ck->maps = mp;
    char(*sh)[65] = realloc(ck->sha256, (size_t)n * sizeof *sh);
    if (sh) ck->sha256 = sh;
    if (!fn || !mp || !sh) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *path = join(dir, name);
    if (!path || !(ck->file_names[ck->n_files] = strdup(name))) {
        free(path);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memset(&ck->maps[ck->n_files], 0, sizeof ck->maps[0]);
    ck->sha256[ck->n_files][0] = 0;
    int fi = ck->n_files++;
    int rc = qrm_map_file(path, &ck->maps[fi], err, errlen);
    if (rc == 0 && hash) qrm_sha256_hex(ck->maps[fi].data, ck->maps[fi].size, ck->sha256[fi]);
    if (rc == 0) rc = read_file(ck, fi, path, err, errlen);
    free(path);
    return rc;
}

int qrm_checkpoint_open(qrm_checkpoint *ck, const char *dir, int hash, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    char *index = join(dir, "model.safetensors.index.json");
    char *single = join(dir, "model.safetensors");
    qj_doc *doc = NULL;
    char *text = NULL;
    if (!index || !single) FAIL("out of memory");
    char e2[200];
    text = qrm_read_file(index, NULL, e2, sizeof e2);
    if (!text && access(index, F_OK) == 0) FAIL("%s", e2); /* there, but unreadable */
    if (!text) {
        FILE *f = fopen(single, "rb");
        if (!f && errno != ENOENT) FAIL("cannot open '%s': %s", single, strerror(errno));
        if (!f) FAIL("%s: no model.safetensors or model.safetensors.index.json", dir);
        fclose(f);
        if (add_file(ck, dir, "model.safetensors", hash, err, errlen)) goto fail;
    } else {
        char jerr[160];
        doc = qj_parse(text, strlen(text), jerr, sizeof jerr);
        if (!doc) FAIL("model.safetensors.index.json: %s", jerr);
        const qj_value *wm = qj_get_type(qj_root(doc), "weight_map", QJ_OBJECT);
        if (!wm) FAIL("model.safetensors.index.json: no 'weight_map' object");
        for (uint32_t i = 0; i < wm->len; i++) {
            const qj_value *v = &wm->u.members[i].value;
            if (v->type != QJ_STRING) FAIL("model.safetensors.index.json: weight_map values must be file names");
            if (add_file(ck, dir, v->u.str, hash, err, errlen)) goto fail;
        }
        /* every tensor the index names must be in the shard it names */
        for (uint32_t i = 0; i < wm->len; i++) {
            const qrm_st_tensor *t = qrm_checkpoint_find(ck, wm->u.members[i].key);
            if (!t || strcmp(ck->file_names[t->file], wm->u.members[i].value.u.str))
                FAIL("model.safetensors.index.json: tensor '%s' is not in shard '%s'",
                     wm->u.members[i].key, wm->u.members[i].value.u.str);
        }
    }
    for (int i = 0; i < ck->n_tensors; i++)
        for (int j = i + 1; j < ck->n_tensors; j++)
            if (!strcmp(ck->tensors[i].name, ck->tensors[j].name))
                FAIL("tensor '%s' appears twice in the checkpoint", ck->tensors[i].name);
    qj_free(doc);
    free(text), free(index), free(single);
    return 0;
fail:
    qj_free(doc);
    free(text), free(index), free(single);
    qrm_checkpoint_close(ck);
    return -1;
}

void qrm_checkpoint_close(qrm_checkpoint *ck) {
    for (int i = 0; i < ck->n_tensors; i++) free(ck->tensors[i].name);
    for (int i = 0; i < ck->n_files; i++) {
        qrm_unmap_file(&ck->maps[i]);
        free(ck->file_names[i]);
    }
    free(ck->tensors), free(ck->maps), free(ck->file_names), free(ck->sha256);
    memset(ck, 0, sizeof *ck);
}

const qrm_st_tensor *qrm_checkpoint_find(qrm_checkpoint *ck, const char *name) {
    for (int i = 0; i < ck->n_tensors; i++)
        if (!strcmp(ck->tensors[i].name, name)) return &ck->tensors[i];
    return NULL;
}
