/* The BPE model: vocabulary, merges, and the word-merging loop.
 *
 * It follows the library's algorithm step by step, because the exact order of
 * merges decides the ids: a word starts as one symbol per character (byte
 * fallback or unk for characters outside the vocabulary), every adjacent pair
 * that has a merge goes into a min-heap keyed by (rank, position), and the
 * loop pops the best pair, skips entries that went stale (symbol gone, or the
 * pair now there no longer merges into the entry's id), merges, and pushes
 * the two new pairs around the merged symbol.
 *
 * Speed-up for SentencePiece-style models, which see a whole piece of text
 * as one word: BPE never merges two symbols unless the result is a vocab
 * token, so where no token can span a boundary, the word can be cut there and
 * each part merged on its own with the same result (the merges inside a part
 * happen in the same relative order). At load time we collect every
 * character X that some token has right before a "▁"; a "▁" preceded by a
 * character that is itself a token, is not "▁" and is not such an X, is a
 * safe cut. (The stale-entry check above can only accept a different pair
 * when two strings share an id, which a well-formed vocab never has.) */
#include "tokenizer_internal.h"

#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t qrm_tok_bpe_size(const qrm_tok_bpe *m) { return m->vocab.n; }

int32_t qrm_tok_bpe_token_to_id(const qrm_tok_bpe *m, const char *s, size_t n) {
    long e = qrm_tok_strmap_find(&m->vocab, s, n);
    return e < 0 ? -1 : qrm_tok_strmap_val(&m->vocab, (size_t)e);
}

const char *qrm_tok_bpe_id_to_token(const qrm_tok_bpe *m, int32_t id, size_t *n) {
    if (id < 0 || (size_t)id >= m->n_ids || m->id_entry[id] < 0) return NULL;
    return qrm_tok_strmap_key(&m->vocab, (size_t)m->id_entry[id], n);
}

static int optional_string(const qj_value *model, const char *key, char **out, size_t *len,
                           char *err, size_t errlen) {
    const qj_value *v = qj_get(model, key);
    *out = NULL;
    *len = 0;
    if (!v || v->type == QJ_NULL) return 0;
    if (v->type != QJ_STRING)
        return qrm_tok_fail(err, errlen, "tokenizer.json: model.%s is not a string", key);
    *out = qrm_tok_strndup(v->u.str, v->len);
    *len = v->len;
    if (!*out) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    return 0;
}

static int optional_bool(const qj_value *model, const char *key, int *out, char *err,
                         size_t errlen) {
    const qj_value *v = qj_get(model, key);
    *out = 0;
    if (!v || v->type == QJ_NULL) return 0;
    if (v->type != QJ_TRUE && v->type != QJ_FALSE)
        return qrm_tok_fail(err, errlen, "tokenizer.json: model.%s is not a boolean", key);
    *out = v->type == QJ_TRUE;
    return 0;
}

static int load_vocab(qrm_tok_bpe *m, const qj_value *vocab, char *err, size_t errlen) {
    if (!vocab || vocab->type != QJ_OBJECT)
        return qrm_tok_fail(err, errlen, "tokenizer.json: model.vocab is missing or not an object");
    if (qrm_tok_strmap_init(&m->vocab, vocab->len) != 0)
        return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    int64_t max_id = -1;
    for (uint32_t i = 0; i < vocab->len; i++) {
        const qj_member *mem = &vocab->u.members[i];
        const qj_value *v = &mem->value;
        if (v->type != QJ_NUMBER || !v->is_int || v->u.num < 0 || v->u.num > INT32_MAX - 1)
            return qrm_tok_fail(err, errlen,
                                "tokenizer.json: model.vocab[\"%.40s\"] is not a token id",
                                mem->key);
        int32_t id = (int32_t)v->u.num;
        if (qrm_tok_strmap_put(&m->vocab, mem->key, mem->key_len, id, NULL) != 0)
            return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
        if (id > max_id) max_id = id;
    }
    /* Ids index a table, so a hostile file must not make it huge: real
     * vocabularies are dense. */
    if (max_id >= (int64_t)vocab->len + (1 << 24))
        return qrm_tok_fail(err, errlen, "tokenizer.json: model.vocab ids are too sparse (id %lld for %u tokens)",
                            (long long)max_id, (unsigned)vocab->len);
    m->n_ids = (size_t)(max_id + 1);
    m->id_entry = malloc((m->n_ids ? m->n_ids : 1) * sizeof *m->id_entry);
    if (!m->id_entry) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    for (size_t i = 0; i < m->n_ids; i++) m->id_entry[i] = -1;
    for (size_t e = 0; e < m->vocab.n; e++) m->id_entry[qrm_tok_strmap_val(&m->vocab, e)] = (int32_t)e;
    return 0;
}

/* One merge: two strings from "a b" or ["a", "b"]. */
static int merge_parts(const qj_value *v, size_t rank, const char **a, size_t *alen,
                       const char **b, size_t *blen, char *err, size_t errlen) {
    if (v->type == QJ_ARRAY && v->len == 2 && v->u.items[0].type == QJ_STRING &&
        v->u.items[1].type == QJ_STRING) {
        *a = v->u.items[0].u.str;
        *alen = v->u.items[0].len;
        *b = v->u.items[1].u.str;
        *blen = v->u.items[1].len;
        return 0;
    }
    if (v->type == QJ_STRING) {
        /* The library splits on ' ' and wants exactly two parts. */
        const char *sp = memchr(v->u.str, ' ', v->len);
        if (sp && !memchr(sp + 1, ' ', v->len - (size_t)(sp + 1 - v->u.str))) {
            *a = v->u.str;
            *alen = (size_t)(sp - v->u.str);
            *b = sp + 1;
            *blen = v->len - *alen - 1;
            return 0;
        }
    }
    return qrm_tok_fail(err, errlen, "tokenizer.json: model.merges[%zu] is not a pair of tokens",
                        rank);
}

static int32_t find_hashed(const qrm_tok_bpe *m, const char *s, size_t n, uint64_t h) {
    long e = qrm_tok_strmap_find_hashed(&m->vocab, s, n, h);
    return e < 0 ? -1 : qrm_tok_strmap_val(&m->vocab, (size_t)e);
}

/* Merges are resolved in batches: hash and prefetch everything a batch will
 * look up, then look up, then insert. Same result as one at a time. */
#define MERGE_BATCH 32

typedef struct {
    const char *a, *b;
    size_t alen, blen, joff, jlen;
    uint64_t ha, hb, hj, key, val;
} merge_item;

static int load_merges(qrm_tok_bpe *m, const qj_value *merges, char *err, size_t errlen) {
    if (!merges || merges->type != QJ_ARRAY)
        return qrm_tok_fail(err, errlen, "tokenizer.json: model.merges is missing or not an array");
    if (qrm_tok_u64map_init(&m->merges, merges->len) != 0)
        return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    qrm_tok_buf joined = {0};
    merge_item item[MERGE_BATCH];
    int rc = 0;
    for (uint32_t r0 = 0; r0 < merges->len && rc == 0; r0 += MERGE_BATCH) {
        uint32_t nb = merges->len - r0 < MERGE_BATCH ? merges->len - r0 : MERGE_BATCH;
        joined.len = 0;
        for (uint32_t k = 0; k < nb; k++) {
            merge_item *it = &item[k];
            if (merge_parts(&merges->u.items[r0 + k], r0 + k, &it->a, &it->alen, &it->b, &it->blen,
                            err, errlen) != 0) {
                rc = -1;
                break;
            }
            /* The merged token is a + b without b's continuing_subword_prefix. */
            size_t cut = m->prefix_len <= it->blen ? m->prefix_len : it->blen;
            it->joff = joined.len;
            qrm_tok_buf_put(&joined, it->a, it->alen);
            qrm_tok_buf_put(&joined, it->b + cut, it->blen - cut);
            it->jlen = joined.len - it->joff;
            it->ha = qrm_tok_hash(it->a, it->alen);
            it->hb = qrm_tok_hash(it->b, it->blen);
            qrm_tok_strmap_prefetch(&m->vocab, it->ha);
            qrm_tok_strmap_prefetch(&m->vocab, it->hb);
        }
        if (rc != 0) break;
        if (joined.oom) {
            rc = qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
            break;
        }
        for (uint32_t k = 0; k < nb; k++) {
            item[k].hj = qrm_tok_hash(joined.data + item[k].joff, item[k].jlen);
            qrm_tok_strmap_prefetch(&m->vocab, item[k].hj);
        }
        for (uint32_t k = 0; k < nb && rc == 0; k++) {
            merge_item *it = &item[k];
            const char *j = joined.data + it->joff;
            int32_t ida = find_hashed(m, it->a, it->alen, it->ha);
            int32_t idb = find_hashed(m, it->b, it->blen, it->hb);
            int32_t idm = find_hashed(m, j, it->jlen, it->hj);
            if (ida < 0 || idb < 0 || idm < 0) {
                const char *what = ida < 0 ? it->a : idb < 0 ? it->b : j;
                int wlen = (int)(ida < 0 ? it->alen : idb < 0 ? it->blen : it->jlen);
                rc = qrm_tok_fail(err, errlen,
                                  "tokenizer.json: model.merges[%u] uses \"%.*s\", which is not in the vocabulary",
                                  (unsigned)(r0 + k), wlen > 60 ? 60 : wlen, what);
                break;
            }
            it->key = (uint64_t)(uint32_t)ida << 32 | (uint32_t)idb;
            it->val = (uint64_t)(r0 + k) << 32 | (uint32_t)idm;
            qrm_tok_u64map_prefetch(&m->merges, it->key);
        }
        /* A later duplicate pair overwrites the earlier one, as in the library. */
        for (uint32_t k = 0; k < nb && rc == 0; k++)
            if (qrm_tok_u64map_put(&m->merges, item[k].key, item[k].val) != 0)
                rc = qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    }
    qrm_tok_buf_free(&joined);
    return rc;
}

static const char SPM_SPACE[] = "\xE2\x96\x81"; /* U+2581 */

static size_t char_start_before(const char *s, size_t end) {
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

static int find_space_joins(qrm_tok_bpe *m, char *err, size_t errlen) {
    if (m->prefix_len || m->suffix_len || qrm_tok_bpe_token_to_id(m, SPM_SPACE, 3) < 0) return 0;
    if (qrm_tok_strmap_init(&m->joins_space, 64) != 0)
        return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    for (size_t e = 0; e < m->vocab.n; e++) {
        size_t n;
        const char *k = qrm_tok_strmap_key(&m->vocab, e, &n);
        for (const char *p = k + 1; n > 3 && (p = memmem(p, n - (size_t)(p - k), SPM_SPACE, 3)); p += 3) {
            size_t xs = char_start_before(k, (size_t)(p - k));
            size_t xl = (size_t)(p - k) - xs;
            if (xl == 3 && !memcmp(k + xs, SPM_SPACE, 3)) continue;
            if (qrm_tok_strmap_put(&m->joins_space, k + xs, xl, 1, NULL) != 0)
                return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
        }
    }
    m->segment = 1;
    return 0;
}

int qrm_tok_bpe_load(qrm_tok_bpe *m, const qj_value *model, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->unk_id = -1;
    if (!model || model->type != QJ_OBJECT)
        return qrm_tok_fail(err, errlen, "tokenizer.json: no model object");
    const char *type = qj_get_str(model, "type");
    if (!type) return qrm_tok_fail(err, errlen, "tokenizer.json: model has no type");
    if (strcmp(type, "BPE"))
        return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported model type '%.40s'", type);
    const qj_value *dropout = qj_get(model, "dropout");
    if (dropout && dropout->type != QJ_NULL && !(dropout->type == QJ_NUMBER && dropout->u.num == 0))
        return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported BPE dropout (random merges)");
    size_t unk_len;
    if (optional_string(model, "unk_token", &m->unk, &unk_len, err, errlen) ||
        optional_string(model, "continuing_subword_prefix", &m->prefix, &m->prefix_len, err,
                        errlen) ||
        optional_string(model, "end_of_word_suffix", &m->suffix, &m->suffix_len, err, errlen) ||
        optional_bool(model, "fuse_unk", &m->fuse_unk, err, errlen) ||
        optional_bool(model, "byte_fallback", &m->byte_fallback, err, errlen) ||
        optional_bool(model, "ignore_merges", &m->ignore_merges, err, errlen))
        return -1;
    if (load_vocab(m, qj_get(model, "vocab"), err, errlen) != 0) return -1;
    if (load_merges(m, qj_get(model, "merges"), err, errlen) != 0) return -1;
    if (m->unk) m->unk_id = qrm_tok_bpe_token_to_id(m, m->unk, unk_len);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_id[b] = qrm_tok_bpe_token_to_id(m, name, 6);
    }
    for (uint32_t cp = 0; cp < 0x800; cp++) {
        char u[4];
        int n = qrm_utf8_encode(cp, u);
        m->small_char_id[cp] = qrm_tok_bpe_token_to_id(m, u, (size_t)n);
    }
    return find_space_joins(m, err, errlen);
}

void qrm_tok_bpe_free(qrm_tok_bpe *m) {
    qrm_tok_strmap_free(&m->vocab);
    qrm_tok_u64map_free(&m->merges);
    qrm_tok_strmap_free(&m->joins_space);
    free(m->id_entry);
    free(m->unk);
    free(m->prefix);
    free(m->suffix);
    memset(m, 0, sizeof *m);
}

void qrm_tok_bpe_work_free(qrm_tok_bpe_work *w) {
    free(w->sym);
    free(w->heap);
    qrm_tok_buf_free(&w->piece);
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- merging */

static int add_symbol(qrm_tok_bpe_work *w, int32_t id, uint32_t len) {
    if (w->nsym == w->symcap) {
        size_t cap = w->symcap ? w->symcap * 2 : 64;
        qrm_tok_symbol *p = realloc(w->sym, cap * sizeof *p);
        if (!p) return -1;
        w->sym = p;
        w->symcap = cap;
    }
    qrm_tok_symbol *s = &w->sym[w->nsym];
    s->id = id;
    s->len = len;
    s->prev = (int32_t)w->nsym - 1;
    s->next = -1;
    if (w->nsym > 0) w->sym[w->nsym - 1].next = (int32_t)w->nsym;
    w->nsym++;
    return 0;
}

/* Min-heap on (rank, position): the library's order. */
static inline int merge_less(const qrm_tok_merge *a, const qrm_tok_merge *b) {
    return a->key < b->key;
}

static int heap_push(qrm_tok_bpe_work *w, qrm_tok_merge item) {
    if (w->nheap == w->heapcap) {
        size_t cap = w->heapcap ? w->heapcap * 2 : 64;
        qrm_tok_merge *p = realloc(w->heap, cap * sizeof *p);
        if (!p) return -1;
        w->heap = p;
        w->heapcap = cap;
    }
    qrm_tok_merge *h = w->heap;
    size_t i = w->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_less(&item, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = item;
    return 0;
}

static qrm_tok_merge heap_pop(qrm_tok_bpe_work *w) {
    qrm_tok_merge *h = w->heap;
    qrm_tok_merge top = h[0];
    qrm_tok_merge last = h[--w->nheap];
    size_t n = w->nheap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && merge_less(&h[c + 1], &h[c])) c++;
        if (!merge_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0) h[i] = last;
    return top;
}

static int push_pair(const qrm_tok_bpe *m, qrm_tok_bpe_work *w, size_t pos, int32_t left,
                     int32_t right) {
    uint64_t v;
    if (!qrm_tok_u64map_get(&m->merges, (uint64_t)(uint32_t)left << 32 | (uint32_t)right, &v))
        return 0;
    qrm_tok_merge item = {(v >> 32) << 32 | (uint32_t)pos, (int32_t)(uint32_t)v, left, right};
    return heap_push(w, item);
}

static int merge_all(const qrm_tok_bpe *m, qrm_tok_bpe_work *w) {
    qrm_tok_symbol *s = w->sym;
    w->nheap = 0;
    /* The first lookups do not depend on each other: start all their memory
     * loads before the first one is needed (the merges table is megabytes). */
    for (size_t i = 0; i + 1 < w->nsym; i++)
        qrm_tok_u64map_prefetch(&m->merges, (uint64_t)(uint32_t)s[i].id << 32 | (uint32_t)s[i + 1].id);
    for (size_t i = 0; i + 1 < w->nsym; i++)
        if (push_pair(m, w, i, s[i].id, s[i + 1].id) != 0) return -1;
    while (w->nheap > 0) {
        qrm_tok_merge top = heap_pop(w);
        size_t pos = (uint32_t)top.key;
        qrm_tok_symbol *cur = &s[pos];
        if (cur->len == 0 || cur->next == -1) continue;
        size_t next_pos = (size_t)cur->next;
        qrm_tok_symbol right = s[next_pos];
        /* The library re-checks that the pair now there merges into the
         * entry's id; when the pair is still the one the entry was made for,
         * that holds without a lookup. */
        if (cur->id != top.left || right.id != top.right) {
            uint64_t v;
            if (!qrm_tok_u64map_get(&m->merges,
                                    (uint64_t)(uint32_t)cur->id << 32 | (uint32_t)right.id, &v) ||
                (int32_t)(uint32_t)v != top.new_id)
                continue; /* stale entry */
        }
        cur->id = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        s[next_pos].len = 0;
        if (right.next >= 0 && (size_t)right.next < w->nsym) s[right.next].prev = (int32_t)pos;
        if (cur->prev >= 0 && push_pair(m, w, (size_t)cur->prev, s[cur->prev].id, cur->id) != 0)
            return -1;
        if (cur->next >= 0 && (size_t)cur->next < w->nsym &&
            push_pair(m, w, pos, cur->id, s[cur->next].id) != 0)
            return -1;
    }
    return 0;
}

static inline size_t utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* The library's merge_word + merge_all for one word (or one safe part of it). */
static int tokenize_word(const qrm_tok_bpe *m, const char *word, size_t n, qrm_tok_bpe_work *w,
                         qrm_tok_ids *out, char *err, size_t errlen) {
    const unsigned char *u = (const unsigned char *)word;
    w->nsym = 0;
    int32_t unk_id = -1; /* a pending unk symbol */
    uint32_t unk_len = 0;
    size_t i = 0;
    while (i < n) {
        size_t clen = utf8_len(u[i]);
        if (clen > n - i) clen = n - i;
        int first = i == 0, last = i + clen == n;
        const char *s = word + i;
        size_t slen = clen;
        int32_t id;
        int decorated = (!first && m->prefix && m->prefix_len) || (last && m->suffix && m->suffix_len);
        if (decorated) {
            w->piece.len = 0;
            if (!first && m->prefix) qrm_tok_buf_put(&w->piece, m->prefix, m->prefix_len);
            qrm_tok_buf_put(&w->piece, s, clen);
            if (last && m->suffix) qrm_tok_buf_put(&w->piece, m->suffix, m->suffix_len);
            if (w->piece.oom) return qrm_tok_fail(err, errlen, "tokenizer: out of memory");
            s = w->piece.data;
            slen = w->piece.len;
            id = qrm_tok_bpe_token_to_id(m, s, slen);
        } else if (clen == 1) {
            id = m->small_char_id[u[i]];
        } else if (clen == 2) {
            id = m->small_char_id[(uint32_t)(u[i] & 0x1F) << 6 | (u[i + 1] & 0x3F)];
        } else {
            id = qrm_tok_bpe_token_to_id(m, s, slen);
        }
        if (id >= 0) {
            if (unk_id >= 0) {
                if (add_symbol(w, unk_id, unk_len) != 0) goto oom;
                unk_id = -1;
            }
            if (add_symbol(w, id, (uint32_t)clen) != 0) goto oom;
        } else {
            int done = 0;
            if (m->byte_fallback) {
                const unsigned char *sb = (const unsigned char *)s;
                size_t k;
                for (k = 0; k < slen && m->byte_id[sb[k]] >= 0; k++) {}
                if (k == slen) {
                    /* Like the library, a pending unk is not flushed before these. */
                    for (k = 0; k < slen; k++)
                        if (add_symbol(w, m->byte_id[sb[k]], 1) != 0) goto oom;
                    done = 1;
                }
            }
            if (!done && m->unk) {
                if (m->unk_id < 0)
                    return qrm_tok_fail(err, errlen,
                                        "tokenizer: unk_token '%.40s' is not in the vocabulary",
                                        m->unk);
                if (unk_id >= 0 && m->fuse_unk) {
                    unk_len += (uint32_t)clen;
                } else {
                    if (unk_id >= 0 && add_symbol(w, unk_id, unk_len) != 0) goto oom;
                    unk_id = m->unk_id;
                    unk_len = (uint32_t)clen;
                }
            }
            /* No byte fallback and no unk_token: the character is dropped. */
        }
        i += clen;
    }
    if (unk_id >= 0 && add_symbol(w, unk_id, unk_len) != 0) goto oom;
    if (merge_all(m, w) != 0) goto oom;
    for (size_t k = 0; k < w->nsym; k++)
        if (w->sym[k].len != 0) qrm_tok_ids_push(out, w->sym[k].id);
    if (out->oom) goto oom;
    return 0;
oom:
    return qrm_tok_fail(err, errlen, "tokenizer: out of memory");
}

/* The id of the single character at s[0..len), or -1. */
static int32_t char_id(const qrm_tok_bpe *m, const unsigned char *s, size_t len) {
    if (len == 1) return m->small_char_id[s[0]];
    if (len == 2) return m->small_char_id[(uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F)];
    return qrm_tok_bpe_token_to_id(m, (const char *)s, len);
}

int qrm_tok_bpe_tokenize(const qrm_tok_bpe *m, const char *word, size_t n, qrm_tok_bpe_work *w,
                         qrm_tok_ids *out, char *err, size_t errlen) {
    if (n == 0) return 0;
    if (n > UINT32_MAX / 2)
        return qrm_tok_fail(err, errlen, "tokenizer: a pre-token of %zu bytes is too long", n);
    if (m->ignore_merges) {
        int32_t id = qrm_tok_bpe_token_to_id(m, word, n);
        if (id >= 0) {
            qrm_tok_ids_push(out, id);
            return 0;
        }
    }
    if (!m->segment) return tokenize_word(m, word, n, w, out, err, errlen);
    const unsigned char *u = (const unsigned char *)word;
    size_t seg = 0, prev = 0, i = 0;
    while (i < n) {
        size_t l = utf8_len(u[i]);
        if (l > n - i) l = n - i;
        if (i > seg && l == 3 && !memcmp(u + i, SPM_SPACE, 3)) {
            size_t pl = i - prev;
            if (!(pl == 3 && !memcmp(u + prev, SPM_SPACE, 3)) && char_id(m, u + prev, pl) >= 0 &&
                qrm_tok_strmap_find(&m->joins_space, word + prev, pl) < 0) {
                if (tokenize_word(m, word + seg, i - seg, w, out, err, errlen) != 0) return -1;
                seg = i;
            }
        }
        prev = i;
        i += l;
    }
    return tokenize_word(m, word + seg, n - seg, w, out, err, errlen);
}
