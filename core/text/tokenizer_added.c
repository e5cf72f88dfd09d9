/* Added tokens ("added_tokens" in tokenizer.json): id assignment, and finding
 * them in text the way the library's AddedVocabulary does.
 *
 * Ids: the library does not take the "id" field; it gives each token the id
 * its content already has (added tokens first, then the model vocabulary),
 * else the next free id counting from the model's vocabulary size.
 *
 * Matching: tokens with normalized=false are found in the raw text, the
 * others in each normalized piece (their patterns are normalized too). Both
 * use leftmost-longest matching (aho-corasick MatchKind::LeftmostLongest):
 * the match that starts first wins, and among those the longest; the scan
 * goes on after it. single_word, lstrip and rstrip then adjust or drop it. */
#include "tokenizer_internal.h"

#include "unicode.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- trie */

static int trie_init(qrm_tok_trie *t) {
    memset(t, 0, sizeof *t);
    t->cap_nodes = 64;
    t->term = malloc(t->cap_nodes * sizeof *t->term);
    if (!t->term || qrm_tok_u64map_init(&t->edges, 64) != 0) return -1;
    t->term[0] = -1;
    t->n_nodes = 1;
    return 0;
}

static void trie_free(qrm_tok_trie *t) {
    qrm_tok_u64map_free(&t->edges);
    free(t->term);
    memset(t, 0, sizeof *t);
}

/* Adds s -> id; an earlier identical pattern keeps its place (same id anyway). */
static int trie_add(qrm_tok_trie *t, const char *s, size_t n, int32_t id) {
    if (n == 0) return 0; /* an empty pattern never splits anything here */
    uint64_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = node << 8 | (unsigned char)s[i], child;
        if (!qrm_tok_u64map_get(&t->edges, key, &child)) {
            if (t->n_nodes == t->cap_nodes) {
                size_t cap = t->cap_nodes * 2;
                int32_t *p = realloc(t->term, cap * sizeof *p);
                if (!p) return -1;
                t->term = p;
                t->cap_nodes = cap;
            }
            child = t->n_nodes++;
            t->term[child] = -1;
            if (qrm_tok_u64map_put(&t->edges, key, child) != 0) return -1;
        }
        node = child;
    }
    if (t->term[node] < 0) t->term[node] = id;
    t->first[(unsigned char)s[0]] = 1;
    t->n_tokens++;
    return 0;
}

/* Longest token starting at s[p]: its end and id, or 0. */
static int trie_longest(const qrm_tok_trie *t, const char *s, size_t n, size_t p, size_t *end,
                        int32_t *id) {
    uint64_t node = 0;
    int found = 0;
    for (size_t i = p; i < n; i++) {
        uint64_t child;
        if (!qrm_tok_u64map_get(&t->edges, node << 8 | (unsigned char)s[i], &child)) break;
        node = child;
        if (t->term[node] >= 0) {
            *end = i + 1;
            *id = t->term[node];
            found = 1;
        }
    }
    return found;
}

/* ---------------------------------------------------------------- loading */

static int json_flag(const qj_value *tok, const char *key, size_t i, unsigned char *out,
                     char *err, size_t errlen) {
    const qj_value *v = qj_get(tok, key);
    if (!v || (v->type != QJ_TRUE && v->type != QJ_FALSE))
        return qrm_tok_fail(err, errlen, "tokenizer.json: added_tokens[%zu] has no boolean '%s'",
                            i, key);
    *out = v->type == QJ_TRUE;
    return 0;
}

int32_t qrm_tok_added_id(const qrm_tok_added_vocab *av, const char *s, size_t n) {
    long e = qrm_tok_strmap_find(&av->content, s, n);
    return e < 0 ? -1 : qrm_tok_strmap_val(&av->content, (size_t)e);
}

const qrm_tok_added *qrm_tok_added_by_id(const qrm_tok_added_vocab *av, int32_t id) {
    if (id < 0 || (size_t)id >= av->n_ids || av->id_tok[id] < 0) return NULL;
    return &av->tok[av->id_tok[id]];
}

static int same_token(const qrm_tok_added *a, const qrm_tok_added *b) {
    return a->len == b->len && !memcmp(a->content, b->content, a->len) && a->special == b->special &&
           a->single_word == b->single_word && a->lstrip == b->lstrip && a->rstrip == b->rstrip &&
           a->normalized == b->normalized;
}

/* Puts one trie pattern (the library's special_tokens, then added_tokens lists). */
static int add_pattern(qrm_tok_added_vocab *av, const qrm_tok_added *tk,
                       const qrm_tok_normalizer *nz, qrm_tok_buf *b1, qrm_tok_buf *b2) {
    int32_t id = qrm_tok_added_id(av, tk->content, tk->len);
    if (!tk->normalized) return trie_add(&av->raw, tk->content, tk->len, id);
    if (qrm_tok_norm_run(nz, tk->content, tk->len, b1, b2) != 0) return -1;
    return trie_add(&av->norm, b1->data, b1->len, id);
}

int qrm_tok_added_load(qrm_tok_added_vocab *av, const qj_value *arr, const qrm_tok_bpe *model,
                       const qrm_tok_normalizer *nz, char *err, size_t errlen) {
    memset(av, 0, sizeof *av);
    size_t count = arr && arr->type == QJ_ARRAY ? arr->len : 0;
    if (arr && arr->type != QJ_ARRAY && arr->type != QJ_NULL)
        return qrm_tok_fail(err, errlen, "tokenizer.json: added_tokens is not an array");
    av->tok = calloc(count ? count : 1, sizeof *av->tok);
    if (!av->tok || qrm_tok_strmap_init(&av->content, count) != 0 ||
        qrm_tok_strmap_init(&av->special, count) != 0 || trie_init(&av->raw) != 0 ||
        trie_init(&av->norm) != 0)
        return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    /* Parse. */
    for (size_t i = 0; i < count; i++) {
        const qj_value *t = &arr->u.items[i];
        qrm_tok_added *tk = &av->tok[i];
        const qj_value *c = t->type == QJ_OBJECT ? qj_get_type(t, "content", QJ_STRING) : NULL;
        if (!c) return qrm_tok_fail(err, errlen, "tokenizer.json: added_tokens[%zu] has no content", i);
        if (json_flag(t, "special", i, &tk->special, err, errlen) ||
            json_flag(t, "single_word", i, &tk->single_word, err, errlen) ||
            json_flag(t, "lstrip", i, &tk->lstrip, err, errlen) ||
            json_flag(t, "rstrip", i, &tk->rstrip, err, errlen) ||
            json_flag(t, "normalized", i, &tk->normalized, err, errlen))
            return -1;
        tk->content = qrm_tok_strndup(c->u.str, c->len);
        tk->len = c->len;
        tk->id = -1;
        av->n = i + 1;
        if (!tk->content) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    }
    /* Special tokens first, by first appearance of each content. */
    for (size_t i = 0; i < count; i++) {
        qrm_tok_added *tk = &av->tok[i];
        if (tk->special && tk->len > 0 && qrm_tok_strmap_find(&av->special, tk->content, tk->len) < 0 &&
            qrm_tok_strmap_put(&av->special, tk->content, tk->len, (int32_t)i, NULL) != 0)
            return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    }
    /* Ids, as AddedVocabulary::add_tokens assigns them. */
    int64_t next_id = (int64_t)qrm_tok_bpe_size(model);
    int64_t max_id = (int64_t)model->n_ids - 1;
    unsigned char *skipped = calloc(count ? count : 1, 1);
    if (!skipped) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    for (size_t i = 0; i < count; i++) {
        qrm_tok_added *tk = &av->tok[i];
        int dup = tk->len == 0;
        /* An identical earlier token is ignored; look only when the content was seen. */
        if (!dup && qrm_tok_added_id(av, tk->content, tk->len) >= 0)
            for (size_t j = 0; j < i && !dup; j++)
                if (!skipped[j] && same_token(&av->tok[j], tk)) dup = 1;
        if (dup) {
            skipped[i] = 1;
            continue;
        }
        int32_t id = qrm_tok_added_id(av, tk->content, tk->len);
        if (id < 0) id = qrm_tok_bpe_token_to_id(model, tk->content, tk->len);
        if (id < 0) {
            if (next_id > INT32_MAX - 1) {
                free(skipped);
                return qrm_tok_fail(err, errlen, "tokenizer.json: too many added tokens");
            }
            id = (int32_t)next_id++;
        }
        tk->id = id;
        if (qrm_tok_strmap_put(&av->content, tk->content, tk->len, id, NULL) != 0) {
            free(skipped);
            return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
        }
        if (id > max_id) max_id = id;
    }
    av->n_ids = (size_t)(max_id + 1);
    av->id_tok = malloc((av->n_ids ? av->n_ids : 1) * sizeof *av->id_tok);
    if (!av->id_tok) {
        free(skipped);
        return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    }
    for (size_t i = 0; i < av->n_ids; i++) av->id_tok[i] = -1;
    for (size_t i = 0; i < count; i++)
        if (!skipped[i]) av->id_tok[av->tok[i].id] = (int32_t)i;
    /* Trie patterns: the special_tokens list, then the other added tokens. */
    qrm_tok_buf b1 = {0}, b2 = {0};
    int rc = 0;
    for (size_t e = 0; e < av->special.n && rc == 0; e++)
        rc = add_pattern(av, &av->tok[qrm_tok_strmap_val(&av->special, e)], nz, &b1, &b2);
    for (size_t i = 0; i < count && rc == 0; i++) {
        qrm_tok_added *tk = &av->tok[i];
        if (skipped[i] || qrm_tok_strmap_find(&av->special, tk->content, tk->len) >= 0) continue;
        rc = add_pattern(av, tk, nz, &b1, &b2);
    }
    qrm_tok_buf_free(&b1);
    qrm_tok_buf_free(&b2);
    free(skipped);
    if (rc != 0) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    return 0;
}

void qrm_tok_added_free(qrm_tok_added_vocab *av) {
    for (size_t i = 0; i < av->n; i++) free(av->tok[i].content);
    free(av->tok);
    free(av->id_tok);
    qrm_tok_strmap_free(&av->content);
    qrm_tok_strmap_free(&av->special);
    trie_free(&av->raw);
    trie_free(&av->norm);
    memset(av, 0, sizeof *av);
}

/* ---------------------------------------------------------------- splitting */

static uint32_t cp_before(const char *s, size_t end, size_t *start) {
    size_t i = end;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i > 0) i--;
    uint32_t cp = 0;
    if (qrm_utf8_decode((const unsigned char *)s + i, end - i, &cp) == 0) cp = 0xFFFD;
    *start = i;
    return cp;
}

static uint32_t cp_at(const char *s, size_t n, size_t p, size_t *len) {
    uint32_t cp = 0;
    int l = qrm_utf8_decode((const unsigned char *)s + p, n - p, &cp);
    *len = l ? (size_t)l : 1;
    return l ? cp : 0xFFFD;
}

static int push_span(qrm_tok_spans *o, size_t a, size_t b, int32_t id) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        qrm_tok_span *p = realloc(o->v, cap * sizeof *p);
        if (!p) return -1;
        o->v = p;
        o->cap = cap;
    }
    o->v[o->n++] = (qrm_tok_span){a, b, id};
    return 0;
}

int qrm_tok_added_split(const qrm_tok_added_vocab *av, const qrm_tok_trie *trie, const char *s,
                        size_t n, qrm_tok_spans *out) {
    out->n = 0;
    size_t start_offset = 0, p = 0;
    if (trie->n_tokens > 0) {
        while (p < n) {
            size_t end = p;
            int32_t id = -1;
            if (!trie->first[(unsigned char)s[p]] || !trie_longest(trie, s, n, p, &end, &id)) {
                p++;
                continue;
            }
            size_t start = p, stop = end;
            p = end; /* the search resumes after the match, kept or not */
            const qrm_tok_added *tk = qrm_tok_added_by_id(av, id);
            if (tk && tk->single_word) {
                size_t l, b;
                int word_before = start > 0 && (qrm_uni_flags(cp_before(s, start, &b)) & QRM_UNI_WORD);
                int word_after = stop < n && (qrm_uni_flags(cp_at(s, n, stop, &l)) & QRM_UNI_WORD);
                if (word_before || word_after) continue;
            }
            if (tk && tk->lstrip) { /* take the whitespace before it, back to the last split */
                size_t ns = start, b;
                while (ns > 0 && (qrm_uni_flags(cp_before(s, ns, &b)) & QRM_UNI_WS)) ns = b;
                start = ns > start_offset ? ns : start_offset;
            }
            if (tk && tk->rstrip) {
                size_t l;
                while (stop < n && (qrm_uni_flags(cp_at(s, n, stop, &l)) & QRM_UNI_WS)) stop += l;
            }
            if (start_offset < start && push_span(out, start_offset, start, -1)) return -1;
            if (push_span(out, start, stop, id)) return -1;
            start_offset = stop;
        }
    }
    if (start_offset < n && push_span(out, start_offset, n, -1)) return -1;
    return 0;
}
