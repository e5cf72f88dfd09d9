/* Small containers for the tokenizer: growable buffers, and two open-addressing
 * hash maps (byte string -> int32 for vocabularies, uint64 -> uint64 for BPE
 * merges and the added-token trie). Linear probing, power-of-two tables kept
 * at most half full, so a lookup is one or two cache lines. */
#include "tokenizer_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

void qrm_tok_buf_put(qrm_tok_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void qrm_tok_buf_free(qrm_tok_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void qrm_tok_ids_push(qrm_tok_ids *a, int32_t id) {
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) {
            a->oom = 1;
            return;
        }
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = id;
}

int qrm_tok_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *qrm_tok_json_str(const qj_value *obj, const char *key, size_t *len) {
    const qj_value *v = qj_get_type(obj, key, QJ_STRING);
    if (!v) return NULL;
    if (len) *len = v->len;
    return v->u.str;
}

char *qrm_tok_strndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ---------------------------------------------------------------- hashing */

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

uint64_t qrm_tok_hash(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xc2b2ae3d27d4eb4full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, u, 8);
        h = mix64(h ^ w) * 0x9e3779b97f4a7c15ull;
        u += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)u[i] << (8 * i);
    return mix64(h ^ w ^ 0x165667b19e3779f9ull);
}

static size_t table_size(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 2) cap *= 2;
    return cap;
}

/* ---------------------------------------------------------------- strmap */

int qrm_tok_strmap_init(qrm_tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = table_size(expected);
    m->slots = calloc(cap, sizeof *m->slots);
    m->ecap = expected > 8 ? expected : 8;
    m->ent = malloc(m->ecap * sizeof *m->ent);
    m->pool_cap = expected * 8 + 64;
    m->pool = malloc(m->pool_cap);
    m->mask = cap - 1;
    if (!m->slots || !m->ent || !m->pool) {
        qrm_tok_strmap_free(m);
        return -1;
    }
    return 0;
}

static inline uint64_t slot_of(uint64_t h, size_t e) { return (h >> 32 << 32) | (uint64_t)(e + 1); }

static int strmap_grow_slots(qrm_tok_strmap *m) {
    size_t cap = (m->mask + 1) * 2;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t e = 0; e < m->n; e++) {
        uint64_t h = qrm_tok_hash(m->pool + m->ent[e].off, m->ent[e].len);
        size_t i = (size_t)h & (cap - 1);
        while (slots[i]) i = (i + 1) & (cap - 1);
        slots[i] = slot_of(h, e);
    }
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return 0;
}

static long strmap_lookup(const qrm_tok_strmap *m, const char *k, size_t n, uint64_t h,
                          size_t *slot) {
    uint64_t tag = h >> 32;
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t s = m->slots[i];
        if (!s) {
            *slot = i;
            return -1;
        }
        if (s >> 32 != tag) continue;
        size_t e = (size_t)(uint32_t)s - 1;
        if (m->ent[e].len == n && !memcmp(m->pool + m->ent[e].off, k, n)) {
            *slot = i;
            return (long)e;
        }
    }
}

long qrm_tok_strmap_find(const qrm_tok_strmap *m, const char *k, size_t n) {
    if (!m->slots) return -1;
    size_t slot;
    return strmap_lookup(m, k, n, qrm_tok_hash(k, n), &slot);
}

long qrm_tok_strmap_find_hashed(const qrm_tok_strmap *m, const char *k, size_t n, uint64_t h) {
    if (!m->slots) return -1;
    size_t slot;
    return strmap_lookup(m, k, n, h, &slot);
}

int qrm_tok_strmap_put(qrm_tok_strmap *m, const char *k, size_t n, int32_t val, size_t *index) {
    if (!m->slots || n > UINT32_MAX) return -1;
    uint64_t h = qrm_tok_hash(k, n);
    size_t slot;
    long e = strmap_lookup(m, k, n, h, &slot);
    if (e >= 0) {
        m->ent[e].val = val;
        if (index) *index = (size_t)e;
        return 0;
    }
    if (m->n >= UINT32_MAX - 1) return -1;
    if (m->n == m->ecap) {
        size_t cap = m->ecap * 2;
        qrm_tok_strent *p = realloc(m->ent, cap * sizeof *p);
        if (!p) return -1;
        m->ent = p;
        m->ecap = cap;
    }
    if (m->pool_len + n + 1 > m->pool_cap) {
        size_t cap = m->pool_cap * 2;
        while (cap < m->pool_len + n + 1) cap *= 2;
        char *p = realloc(m->pool, cap);
        if (!p) return -1;
        m->pool = p;
        m->pool_cap = cap;
    }
    memcpy(m->pool + m->pool_len, k, n);
    m->pool[m->pool_len + n] = 0; /* keys are NUL-terminated too */
    e = (long)m->n++;
    m->ent[e] = (qrm_tok_strent){m->pool_len, (uint32_t)n, val};
    m->pool_len += n + 1;
    m->slots[slot] = slot_of(h, (size_t)e);
    if (index) *index = (size_t)e;
    if (m->n * 2 > m->mask + 1 && strmap_grow_slots(m) != 0) return -1;
    return 0;
}

void qrm_tok_strmap_free(qrm_tok_strmap *m) {
    free(m->slots);
    free(m->ent);
    free(m->pool);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- u64map */

static qrm_tok_u64slot *u64_table(size_t cap) {
    qrm_tok_u64slot *t = malloc(cap * sizeof *t);
    if (t) memset(t, 0xff, cap * sizeof *t);
    return t;
}

int qrm_tok_u64map_init(qrm_tok_u64map *m, size_t expected) {
    size_t cap = table_size(expected);
    m->slot = u64_table(cap);
    m->mask = cap - 1;
    m->n = 0;
    return m->slot ? 0 : -1;
}

static int u64map_grow(qrm_tok_u64map *m) {
    size_t cap = (m->mask + 1) * 2;
    qrm_tok_u64slot *t = u64_table(cap);
    if (!t) return -1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slot[i].key == UINT64_MAX) continue;
        size_t j = qrm_tok_u64_slot(m->slot[i].key, cap - 1);
        while (t[j].key != UINT64_MAX) j = (j + 1) & (cap - 1);
        t[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = t;
    m->mask = cap - 1;
    return 0;
}

int qrm_tok_u64map_put(qrm_tok_u64map *m, uint64_t key, uint64_t val) {
    if (!m->slot || key == UINT64_MAX) return -1;
    size_t i = qrm_tok_u64_slot(key, m->mask);
    while (m->slot[i].key != UINT64_MAX && m->slot[i].key != key) i = (i + 1) & m->mask;
    if (m->slot[i].key == UINT64_MAX) {
        m->slot[i].key = key;
        m->n++;
    }
    m->slot[i].val = val;
    if (m->n * 2 > m->mask + 1) return u64map_grow(m);
    return 0;
}

void qrm_tok_u64map_free(qrm_tok_u64map *m) {
    free(m->slot);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- word cache */

const int32_t *qrm_tok_cache_get(const qrm_tok_cache *c, const char *s, size_t n, uint64_t h,
                                 size_t *n_ids) {
    if (!c->slot) return NULL;
    for (size_t i = (size_t)h & (QRM_TOK_CACHE_SLOTS - 1);; i = (i + 1) & (QRM_TOK_CACHE_SLOTS - 1)) {
        const qrm_tok_cache_slot *sl = &c->slot[i];
        if (sl->key_len == 0) return NULL;
        if (sl->hash == h && sl->key_len == n && !memcmp(c->keys.data + sl->key_off, s, n)) {
            *n_ids = sl->ids_n;
            return c->ids.v + sl->ids_off;
        }
    }
}

void qrm_tok_cache_put(qrm_tok_cache *c, const char *s, size_t n, uint64_t h, const int32_t *ids,
                       size_t n_ids) {
    if (n == 0 || n > QRM_TOK_CACHE_MAX_KEY || c->used >= QRM_TOK_CACHE_SLOTS / 2) return;
    if (!c->slot && !(c->slot = calloc(QRM_TOK_CACHE_SLOTS, sizeof *c->slot))) return;
    size_t key_off = c->keys.len, ids_off = c->ids.n;
    qrm_tok_buf_put(&c->keys, s, n);
    for (size_t k = 0; k < n_ids; k++) qrm_tok_ids_push(&c->ids, ids[k]);
    if (c->keys.oom || c->ids.oom) return; /* stays a miss */
    size_t i = (size_t)h & (QRM_TOK_CACHE_SLOTS - 1);
    while (c->slot[i].key_len) i = (i + 1) & (QRM_TOK_CACHE_SLOTS - 1);
    c->slot[i] = (qrm_tok_cache_slot){h, (uint32_t)key_off, (uint32_t)n, (uint32_t)ids_off,
                                      (uint32_t)n_ids};
    c->used++;
}

void qrm_tok_cache_free(qrm_tok_cache *c) {
    free(c->slot);
    qrm_tok_buf_free(&c->keys);
    free(c->ids.v);
    memset(c, 0, sizeof *c);
}
