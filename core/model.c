/* Loading a .qrm file image: validate every header field, offset and size
 * (the file is untrusted), then point each tensor role at its bytes in
 * place. No copy, no repack: the file is the in-memory model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "qrm.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

typedef struct {
    char name[QRM_TENSOR_NAME_MAX];
    uint32_t type;
    uint64_t ne0, ne1, offset, size;
} entry;

static int cmp_offset(const void *a, const void *b) {
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static const entry *find(const entry *e, uint32_t n, const char *name) {
    entry key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return bsearch(&key, e, n, sizeof *e, cmp_name);
}

/* Reads and checks the table; entries come back sorted by name. */
static int read_table(const uint8_t *base, size_t size, uint64_t table_off, uint32_t count,
                      uint64_t data_off, entry **out, char *err, size_t errlen) {
    entry *e = calloc(count ? count : 1, sizeof *e);
    const entry **by_off = calloc(count ? count : 1, sizeof *by_off);
    if (!e || !by_off) {
        free(e), free(by_off);
        FAIL("out of memory reading the tensor table");
    }
    int rc = -1;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p = base + table_off + (uint64_t)i * QRM_TENSOR_ENTRY_SIZE;
        if (memchr(p, 0, QRM_TENSOR_NAME_MAX) == NULL || p[0] == 0) {
            snprintf(err, errlen, "tensor %u: name is empty or not NUL-terminated", i);
            goto out;
        }
        memcpy(e[i].name, p, QRM_TENSOR_NAME_MAX);
        e[i].type = qrm_rd32(p + QRM_T_TYPE);
        uint32_t ndim = qrm_rd32(p + QRM_T_NDIM);
        e[i].ne0 = qrm_rd64(p + QRM_T_NE0);
        e[i].ne1 = qrm_rd64(p + QRM_T_NE1);
        e[i].offset = qrm_rd64(p + QRM_T_OFFSET);
        e[i].size = qrm_rd64(p + QRM_T_SIZE);
        int ok;
        uint64_t want = qrm_tensor_nbytes(e[i].type, e[i].ne0, e[i].ne1, &ok);
        if (e[i].type >= QRM_T_COUNT) {
            snprintf(err, errlen, "tensor '%s': unknown type %u", e[i].name, e[i].type);
            goto out;
        }
        if ((ndim != 1 && ndim != 2) || (ndim == 1 && e[i].ne1 != 1)) {
            snprintf(err, errlen, "tensor '%s': bad dimensions", e[i].name);
            goto out;
        }
        if (!ok || want != e[i].size) {
            snprintf(err, errlen, "tensor '%s': size %llu does not match its type and shape",
                     e[i].name, (unsigned long long)e[i].size);
            goto out;
        }
        if (e[i].offset % QRM_ALIGN || e[i].offset > size - data_off ||
            e[i].size > size - data_off - e[i].offset) {
            snprintf(err, errlen, "tensor '%s': data lies outside the file or is misaligned",
                     e[i].name);
            goto out;
        }
        by_off[i] = &e[i];
    }
    qsort(by_off, count, sizeof *by_off, cmp_offset);
    for (uint32_t i = 1; i < count; i++)
        if (by_off[i - 1]->offset + by_off[i - 1]->size > by_off[i]->offset) {
            snprintf(err, errlen, "tensors '%s' and '%s' overlap", by_off[i - 1]->name,
                     by_off[i]->name);
            goto out;
        }
    qsort(e, count, sizeof *e, cmp_name);
    for (uint32_t i = 1; i < count; i++)
        if (strcmp(e[i - 1].name, e[i].name) == 0) {
            snprintf(err, errlen, "duplicate tensor '%s'", e[i].name);
            goto out;
        }
    rc = 0;
out:
    free(by_off);
    if (rc) free(e);
    else *out = e;
    return rc;
}

static void set_tensor(qrm_tensor *t, const entry *e, const uint8_t *data) {
    t->type = e->type;
    t->ne0 = (int64_t)e->ne0;
    t->ne1 = (int64_t)e->ne1;
    t->data = data + e->offset;
    t->nbytes = e->size;
    if (e->type == QRM_T_Q8 || e->type == QRM_T_Q4) {
        t->qw.type = e->type == QRM_T_Q8 ? QRM_WQ8 : QRM_WQ4;
        t->qw.N = (int)e->ne0;
        t->qw.K = (int)e->ne1;
        t->qw.q = t->data;
        uint64_t qbytes = e->type == QRM_T_Q8 ? e->ne0 * e->ne1 : e->ne0 * e->ne1 / 2;
        t->qw.d = (const uint16_t *)((const uint8_t *)t->data + qbytes);
    }
}

static int type_allowed(qrm_role_kind kind, uint32_t type) {
    switch (kind) {
    case QRM_ROLE_NORM:
    case QRM_ROLE_BIAS:
    case QRM_ROLE_HEAD: return type == QRM_T_F32;
    case QRM_ROLE_EMBED: return type == QRM_T_F32 || type == QRM_T_F16;
    case QRM_ROLE_MATRIX: return type == QRM_T_F32 || type == QRM_T_F16 || type == QRM_T_Q8 ||
                                 type == QRM_T_Q4;
    }
    return 0;
}

static int bind_roles(struct qrm_model *m, const entry *e, uint32_t count, const uint8_t *data,
                      char *err, size_t errlen) {
    const qrm_hparams *hp = &m->hp;
    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) FAIL("out of memory");
    /* mark every role absent first */
    for (int l = 0; l < hp->n_layers; l++) {
        qrm_tensor *t = (qrm_tensor *)&m->layers[l];
        for (size_t i = 0; i < sizeof(qrm_layer) / sizeof(qrm_tensor); i++) t[i].type = QRM_T_COUNT;
    }
    uint32_t used = 0;
    for (int r = 0; r < qrm_role_count(); r++) {
        const qrm_role *role = qrm_role_get(r);
        int64_t ne0, ne1;
        if (!qrm_role_shape(role, hp, &ne0, &ne1)) continue;
        for (int l = 0; l < (role->per_layer ? hp->n_layers : 1); l++) {
            char name[QRM_TENSOR_NAME_MAX + 16];
            snprintf(name, sizeof name, role->name, l);
            const entry *te = find(e, count, name);
            if (!te) FAIL("missing tensor '%s'", name);
            if ((int64_t)te->ne0 != ne0 || (int64_t)te->ne1 != ne1)
                FAIL("tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]", name,
                     (unsigned long long)te->ne0, (unsigned long long)te->ne1, (long long)ne0,
                     (long long)ne1);
            if (!type_allowed(role->kind, te->type))
                FAIL("tensor '%s' has type %s, not allowed for it", name,
                     qrm_tensor_type_name(te->type));
            qrm_tensor *t = role->per_layer
                                ? (qrm_tensor *)((char *)&m->layers[l] + role->offset)
                                : (qrm_tensor *)((char *)m + role->offset);
            set_tensor(t, te, data);
            used++;
            uint64_t n = te->ne0 * te->ne1;
            m->n_params += n;
        }
    }
    /* the head's tensors (f32, or a vocabulary matrix stored like the
     * backbone's), shapes from the head's own metadata */
    qrm_head_tensor ht[QRM_HEAD_MAX_TENSORS];
    int nh = m->head.ops->tensors(&m->head, hp, ht);
    for (int i = 0; i < nh; i++) {
        const entry *te = find(e, count, ht[i].name);
        if (!te) FAIL("missing tensor '%s' (the %s head's)", ht[i].name, m->head.ops->kind);
        if ((int64_t)te->ne0 != ht[i].ne0 || (int64_t)te->ne1 != ht[i].ne1)
            FAIL("tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]", ht[i].name,
                 (unsigned long long)te->ne0, (unsigned long long)te->ne1, (long long)ht[i].ne0,
                 (long long)ht[i].ne1);
        if (!type_allowed(ht[i].kind, te->type))
            FAIL("tensor '%s' has type %s, not allowed for it", ht[i].name, qrm_tensor_type_name(te->type));
        set_tensor(&m->head.t[ht[i].slot], te, data);
        used++;
        m->n_params += te->ne0 * te->ne1;
    }
    const entry *tj = find(e, count, "tokenizer.json");
    const entry *tc = find(e, count, "tokenizer_config.json");
    if (tj && tj->type == QRM_T_BYTES) {
        m->tokenizer_json = (const char *)data + tj->offset;
        m->tokenizer_json_len = tj->size;
        used++;
    }
    if (tc && tc->type == QRM_T_BYTES) {
        m->tokenizer_config_json = (const char *)data + tc->offset;
        m->tokenizer_config_json_len = tc->size;
        used++;
    }
    if (used != count) FAIL("the file has %u tensors that no role uses", count - used);
    return 0;
}

int qrm_model_load_image(struct qrm_model *m, const uint8_t *base, size_t size, char *err,
                         size_t errlen) {
    m->base = base;
    m->size = size;
    if (size < QRM_HEADER_SIZE) FAIL("not a qrm model: file is %zu bytes, shorter than the header", size);
    if (memcmp(base, QRM_MAGIC, 8) != 0) FAIL("not a qrm model: bad magic");
    uint32_t version = qrm_rd32(base + QRM_H_VERSION);
    if (version != QRM_FORMAT_VERSION)
        FAIL("unsupported qrm format version %u (this build reads version %d)", version,
             QRM_FORMAT_VERSION);
    if (qrm_rd32(base + QRM_H_HEADER_SIZE) != QRM_HEADER_SIZE) FAIL("bad header size");
    uint64_t fsize = qrm_rd64(base + QRM_H_FILE_SIZE);
    if (fsize != size)
        FAIL("file size %zu does not match the header's %llu (truncated or padded file)", size,
             (unsigned long long)fsize);
    uint64_t meta_off = qrm_rd64(base + QRM_H_META_OFFSET), meta_size = qrm_rd64(base + QRM_H_META_SIZE);
    uint64_t table_off = qrm_rd64(base + QRM_H_TABLE_OFFSET);
    uint32_t count = qrm_rd32(base + QRM_H_TENSOR_COUNT);
    uint64_t data_off = qrm_rd64(base + QRM_H_DATA_OFFSET);
    if (qrm_rd32(base + QRM_H_ENTRY_SIZE) != QRM_TENSOR_ENTRY_SIZE) FAIL("bad tensor entry size");
    if (meta_off < QRM_HEADER_SIZE || meta_off > size || meta_size > size - meta_off ||
        meta_size > QRM_MAX_METADATA)
        FAIL("metadata lies outside the file");
    if (count > QRM_MAX_TENSORS) FAIL("too many tensors (%u)", count);
    if (table_off < meta_off + meta_size || table_off > size ||
        (uint64_t)count * QRM_TENSOR_ENTRY_SIZE > size - table_off)
        FAIL("tensor table lies outside the file");
    if (data_off % QRM_ALIGN || data_off < table_off + (uint64_t)count * QRM_TENSOR_ENTRY_SIZE ||
        data_off > size)
        FAIL("tensor data offset is invalid");

    m->meta_text = malloc(meta_size + 1);
    if (!m->meta_text) FAIL("out of memory");
    memcpy(m->meta_text, base + meta_off, meta_size);
    m->meta_text[meta_size] = 0;
    char jerr[200];
    m->meta = qj_parse(m->meta_text, meta_size, jerr, sizeof jerr);
    if (!m->meta) FAIL("metadata is not valid JSON: %s", jerr);
    const qj_value *root = qj_root(m->meta);
    if (root->type != QJ_OBJECT) FAIL("metadata is not a JSON object");
    if (qrm_hparams_from_json(qj_get(root, "model"), &m->hp, err, errlen)) return -1;
    const qj_value *quant = qj_get_type(root, "quant", QJ_OBJECT);
    const char *qt = quant ? qj_get_str(quant, "type") : NULL;
    if (!qt || (strcmp(qt, "f32") && strcmp(qt, "f16") && strcmp(qt, "int8") && strcmp(qt, "int4")))
        FAIL("metadata: quant.type missing or unknown");
    snprintf(m->quant, sizeof m->quant, "%s", qt);
    if (qrm_head_from_json(&m->head, qj_get(root, "head"), &m->hp, err, errlen)) return -1;

    entry *e;
    if (read_table(base, size, table_off, count, data_off, &e, err, errlen)) return -1;
    int rc = bind_roles(m, e, count, base + data_off, err, errlen);
    free(e);
    return rc;
}

void qrm_model_unload(struct qrm_model *m) {
    free(m->layers);
    qj_free(m->meta);
    free(m->meta_text);
    m->layers = NULL;
    m->meta = NULL;
    m->meta_text = NULL;
}

/* ---- public API ---- */

static qrm_model *open_image(const uint8_t *base, size_t size, qrm_mapped_file *map, char *err,
                             size_t errlen) {
    qrm_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        if (map) qrm_unmap_file(map);
        return NULL;
    }
    if (map) m->map = *map;
    m->text_mu = qrm_mutex_new();
    if (!m->text_mu) {
        snprintf(err, errlen, "out of memory");
        qrm_model_close(m);
        return NULL;
    }
    if (qrm_model_load_image(m, base, size, err, errlen)) {
        /* the message may quote the file's own bytes (a tensor name, a
         * metadata string); it stays one line whatever they are */
        for (char *p = errlen ? err : NULL; p && *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
        qrm_model_close(m);
        return NULL;
    }
    return m;
}

qrm_model *qrm_model_open_with(const char *path, qrm_load load, char *err, size_t errlen) {
    qrm_mapped_file f;
    if (load != QRM_LOAD_MAP && load != QRM_LOAD_COPY) {
        snprintf(err, errlen, "unknown load mode %d", (int)load);
        return NULL;
    }
    if ((load == QRM_LOAD_COPY ? qrm_copy_file : qrm_map_file)(path, &f, err, errlen)) return NULL;
    return open_image(f.data, f.size, &f, err, errlen);
}

qrm_model *qrm_model_open(const char *path, char *err, size_t errlen) {
    return qrm_model_open_with(path, QRM_LOAD_MAP, err, errlen);
}

qrm_model *qrm_model_open_memory(const void *buf, size_t len, char *err, size_t errlen) {
    if (!buf || ((uintptr_t)buf % QRM_ALIGN)) {
        snprintf(err, errlen, "model buffer must be non-NULL and 64-byte aligned");
        return NULL;
    }
    return open_image(buf, len, NULL, err, errlen);
}

void qrm_model_close(qrm_model *m) {
    if (!m) return;
    qrm_text_state_free(m->text);
    qrm_mutex_free(m->text_mu);
    qrm_model_unload(m);
    qrm_unmap_file(&m->map);
    free(m);
}

void qrm_model_get_info(const qrm_model *m, qrm_model_info *o) {
    memset(o, 0, sizeof *o);
    const qj_value *root = qj_root(m->meta);
    o->arch = m->hp.arch;
    o->hf_architecture = qj_get_str(root, "hf_architecture");
    o->quant = m->quant;
    o->vocab_size = m->hp.vocab_size;
    o->hidden_size = m->hp.hidden;
    o->n_layers = m->hp.n_layers;
    o->n_heads = m->hp.n_heads;
    o->n_kv_heads = m->hp.n_kv_heads;
    o->head_dim = m->hp.head_dim;
    o->ffn_size = m->hp.ffn;
    o->max_positions = m->hp.max_positions;
    o->n_outputs = m->head.n_outputs;
    o->head = m->head.ops->kind;
    o->per_step = m->head.ops->steps != QRM_STEPS_NONE;
    o->logprobs = !strcmp(m->head.ops->kind, "lm");
    o->pad_token_id = m->hp.pad_token_id;
    o->file_size = m->size;
    o->n_params = m->n_params;
}

const char *qrm_model_metadata_json(const qrm_model *m) { return m->meta_text; }

const char *qrm_model_output_name(const qrm_model *m, int i) {
    return i >= 0 && i < m->head.n_outputs ? m->head.label[i] : NULL;
}

qrm_status qrm_model_tokenizer_blobs(const qrm_model *m, const char **tj, size_t *tl,
                                     const char **cj, size_t *cl) {
    if (!m->tokenizer_json) return QRM_ETEXT;
    *tj = m->tokenizer_json, *tl = m->tokenizer_json_len;
    *cj = m->tokenizer_config_json, *cl = m->tokenizer_config_json_len;
    return 0;
}
