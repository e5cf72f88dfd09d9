/* Internal pieces of the tokenizer, shared by core/text/tokenizer*.c only.
 *
 *   tokenizer.c          loading, the encode pipeline, post-processing, accessors
 *   tokenizer_map.c      hash maps: byte string -> int32, uint64 -> uint64
 *   tokenizer_added.c    added tokens: id assignment, tries, leftmost-longest split
 *   tokenizer_norm.c     normalizers (NFC, Replace, Prepend)
 *   tokenizer_pretok.c   pre-tokenizers: the known split patterns, ByteLevel
 *   tokenizer_bpe.c      the BPE model (vocab, merges, byte fallback, unk)
 *   tokenizer_decode.c   decoders and qrm_tokenizer_decode
 */
#ifndef QRM_TOKENIZER_INTERNAL_H
#define QRM_TOKENIZER_INTERNAL_H

#include "json.h"
#include "tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- buffers */

typedef struct {
    char *data;
    size_t len, cap;
    int oom; /* an allocation failed; content is then incomplete */
} qrm_tok_buf;

void qrm_tok_buf_put(qrm_tok_buf *b, const char *s, size_t n);
void qrm_tok_buf_free(qrm_tok_buf *b);

typedef struct {
    int32_t *v;
    size_t n, cap;
    int oom;
} qrm_tok_ids;

void qrm_tok_ids_push(qrm_tok_ids *a, int32_t id);

/* Formats a one-line message into err (if errlen > 0); returns -1. */
int qrm_tok_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A JSON string member, or NULL when absent/not a string (with its length). */
const char *qrm_tok_json_str(const qj_value *obj, const char *key, size_t *len);
/* malloc'd copy of s[0..n) plus a NUL. */
char *qrm_tok_strndup(const char *s, size_t n);

/* ---------------------------------------------------------------- maps */

uint64_t qrm_tok_hash(const char *s, size_t n);

/* Byte string -> int32. Keys are copied into the map's own pool; entries keep
 * insertion order, so an entry index is stable. A slot holds the upper half
 * of the key's hash next to the entry index, so most misses are settled
 * without touching the entry. */
typedef struct {
    size_t off;   /* key offset in pool (keys are NUL-terminated there too) */
    uint32_t len;
    int32_t val;
} qrm_tok_strent;

typedef struct {
    uint64_t *slots; /* 0 = empty, else hash >> 32 << 32 | (entry index + 1) */
    size_t mask;     /* slots has mask + 1 entries, a power of two */
    qrm_tok_strent *ent;
    size_t n, ecap;
    char *pool;
    size_t pool_len, pool_cap;
} qrm_tok_strmap;

int qrm_tok_strmap_init(qrm_tok_strmap *m, size_t expected);
/* Inserts or overwrites; *index (may be NULL) gets the entry index. 0 or -1 (no memory). */
int qrm_tok_strmap_put(qrm_tok_strmap *m, const char *k, size_t n, int32_t val, size_t *index);
/* Entry index of k, or -1. */
long qrm_tok_strmap_find(const qrm_tok_strmap *m, const char *k, size_t n);
/* The same with h = qrm_tok_hash(k, n) already computed (for batched lookups
 * that prefetch first: loading 500k merges is bound by cache misses). */
long qrm_tok_strmap_find_hashed(const qrm_tok_strmap *m, const char *k, size_t n, uint64_t h);
static inline void qrm_tok_strmap_prefetch(const qrm_tok_strmap *m, uint64_t h) {
    if (m->slots) __builtin_prefetch(&m->slots[(size_t)h & m->mask]);
}
static inline const char *qrm_tok_strmap_key(const qrm_tok_strmap *m, size_t i, size_t *n) {
    *n = m->ent[i].len;
    return m->pool + m->ent[i].off;
}
static inline int32_t qrm_tok_strmap_val(const qrm_tok_strmap *m, size_t i) { return m->ent[i].val; }
void qrm_tok_strmap_free(qrm_tok_strmap *m);

/* uint64 -> uint64 (keys must not be UINT64_MAX); key and value side by side
 * so that a hit costs one cache line. */
typedef struct {
    uint64_t key, val; /* key UINT64_MAX = empty */
} qrm_tok_u64slot;

typedef struct {
    qrm_tok_u64slot *slot;
    size_t mask, n;
} qrm_tok_u64map;

int qrm_tok_u64map_init(qrm_tok_u64map *m, size_t expected);
int qrm_tok_u64map_put(qrm_tok_u64map *m, uint64_t key, uint64_t val);
static inline size_t qrm_tok_u64_slot(uint64_t key, size_t mask) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & mask;
}
/* 1 and *val when present. */
static inline int qrm_tok_u64map_get(const qrm_tok_u64map *m, uint64_t key, uint64_t *val) {
    if (!m->slot) return 0;
    for (size_t i = qrm_tok_u64_slot(key, m->mask);; i = (i + 1) & m->mask) {
        if (m->slot[i].key == key) {
            *val = m->slot[i].val;
            return 1;
        }
        if (m->slot[i].key == UINT64_MAX) return 0;
    }
}
static inline void qrm_tok_u64map_prefetch(const qrm_tok_u64map *m, uint64_t key) {
    if (m->slot) __builtin_prefetch(&m->slot[qrm_tok_u64_slot(key, m->mask)]);
}
void qrm_tok_u64map_free(qrm_tok_u64map *m);

/* Pre-token -> ids memo for one encode call (prose repeats its words). Short
 * pre-tokens only; it stops taking new words when half full. */
#define QRM_TOK_CACHE_SLOTS 4096
#define QRM_TOK_CACHE_MAX_KEY 32

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_n; /* key_len 0 = empty */
} qrm_tok_cache_slot;

typedef struct {
    qrm_tok_cache_slot *slot; /* QRM_TOK_CACHE_SLOTS, allocated on first use */
    size_t used;
    qrm_tok_buf keys;
    qrm_tok_ids ids;
} qrm_tok_cache;

/* The cached ids of s[0..n) (*n_ids of them), or NULL. */
const int32_t *qrm_tok_cache_get(const qrm_tok_cache *c, const char *s, size_t n, uint64_t h,
                                 size_t *n_ids);
/* Remembers ids[0..n_ids) for s[0..n) when there is room; failures are ignored. */
void qrm_tok_cache_put(qrm_tok_cache *c, const char *s, size_t n, uint64_t h, const int32_t *ids,
                       size_t n_ids);
void qrm_tok_cache_free(qrm_tok_cache *c);

/* ---------------------------------------------------------------- BPE model */

typedef struct {
    qrm_tok_strmap vocab;   /* token string -> id */
    int32_t *id_entry;      /* id -> vocab entry index, -1 if no token has that id */
    size_t n_ids;           /* highest id + 1 */
    qrm_tok_u64map merges;  /* left << 32 | right -> rank << 32 | merged id */
    char *unk;              /* unk_token string or NULL */
    int32_t unk_id;         /* its id, -1 when absent from the vocab */
    int fuse_unk, byte_fallback, ignore_merges;
    char *prefix, *suffix;  /* continuing_subword_prefix / end_of_word_suffix, NULL if none */
    size_t prefix_len, suffix_len;
    int32_t byte_id[256];   /* ids of "<0xXX>", -1 if missing */
    int32_t small_char_id[0x800]; /* id of a one-char token for cp < 0x800; -1 none */
    /* SentencePiece-style words are cut before a "▁" that follows another
     * character, when no vocab token could span that cut (see tokenizer_bpe.c). */
    int segment;
    qrm_tok_strmap joins_space; /* characters X such that some token contains "X▁" */
} qrm_tok_bpe;

typedef struct {
    int32_t id, prev, next;
    uint32_t len; /* bytes of text it covers; 0 = merged away */
} qrm_tok_symbol;

typedef struct {
    uint64_t key;        /* rank << 32 | position: the heap order */
    int32_t new_id;
    int32_t left, right; /* the pair it was found for */
} qrm_tok_merge;

typedef struct {
    qrm_tok_symbol *sym;
    size_t nsym, symcap;
    qrm_tok_merge *heap;
    size_t nheap, heapcap;
    qrm_tok_buf piece;
} qrm_tok_bpe_work;

int qrm_tok_bpe_load(qrm_tok_bpe *m, const qj_value *model, char *err, size_t errlen);
void qrm_tok_bpe_free(qrm_tok_bpe *m);
/* Appends the ids of one pre-token. 0, or -1 with err set. */
int qrm_tok_bpe_tokenize(const qrm_tok_bpe *m, const char *w, size_t n, qrm_tok_bpe_work *work,
                         qrm_tok_ids *out, char *err, size_t errlen);
void qrm_tok_bpe_work_free(qrm_tok_bpe_work *w);
int32_t qrm_tok_bpe_token_to_id(const qrm_tok_bpe *m, const char *s, size_t n);
const char *qrm_tok_bpe_id_to_token(const qrm_tok_bpe *m, int32_t id, size_t *n);
/* BPE get_vocab_size(): the number of vocab entries. */
size_t qrm_tok_bpe_size(const qrm_tok_bpe *m);

/* ---------------------------------------------------------------- normalizers */

enum { QRM_TOK_NORM_NFC, QRM_TOK_NORM_REPLACE, QRM_TOK_NORM_PREPEND };

typedef struct {
    int kind;
    char *pattern, *content; /* Replace: pattern -> content; Prepend: content */
    size_t pattern_len, content_len;
} qrm_tok_norm;

typedef struct {
    qrm_tok_norm *steps;
    size_t n;
} qrm_tok_normalizer;

int qrm_tok_norm_load(qrm_tok_normalizer *nz, const qj_value *v, char *err, size_t errlen);
void qrm_tok_norm_free(qrm_tok_normalizer *nz);
/* Normalizes s[0..n) into out (replacing its content); tmp is scratch. 0 or -1 (no memory). */
int qrm_tok_norm_run(const qrm_tok_normalizer *nz, const char *s, size_t n, qrm_tok_buf *out,
                     qrm_tok_buf *tmp);

/* ---------------------------------------------------------------- pre-tokenizers */

enum { QRM_TOK_PRE_SPLIT_PATTERN, QRM_TOK_PRE_SPLIT_STRING, QRM_TOK_PRE_BYTELEVEL };
/* The split regexes recognized by their exact text. */
enum { QRM_TOK_PAT_QWEN2, QRM_TOK_PAT_LLAMA3, QRM_TOK_PAT_GPT2 };
enum {
    QRM_TOK_SPLIT_REMOVED,
    QRM_TOK_SPLIT_ISOLATED,
    QRM_TOK_SPLIT_MERGED_PREV,
    QRM_TOK_SPLIT_MERGED_NEXT,
    QRM_TOK_SPLIT_CONTIGUOUS
};
#define QRM_TOK_MAX_PRETOK 8

typedef struct {
    int kind;
    int pattern;  /* QRM_TOK_PRE_SPLIT_PATTERN */
    int behavior; /* splits */
    int invert;   /* splits: keep the non-matches as the "matches" */
    char *str;    /* QRM_TOK_PRE_SPLIT_STRING */
    size_t str_len;
    int add_prefix_space, use_regex; /* QRM_TOK_PRE_BYTELEVEL */
} qrm_tok_pretok;

typedef struct {
    qrm_tok_pretok steps[QRM_TOK_MAX_PRETOK];
    size_t n;
} qrm_tok_pretokenizer;

typedef struct {
    size_t start, end;
    int is_match;
} qrm_tok_range;

typedef struct {
    qrm_tok_buf mapped[QRM_TOK_MAX_PRETOK];   /* ByteLevel output per step */
    qrm_tok_buf prefixed[QRM_TOK_MAX_PRETOK]; /* ByteLevel add_prefix_space per step */
    qrm_tok_range *ranges[QRM_TOK_MAX_PRETOK];
    size_t range_cap[QRM_TOK_MAX_PRETOK];
} qrm_tok_pretok_work;

/* Called for every final pre-token; returns 0 or -1 to stop. */
typedef int (*qrm_tok_word_fn)(void *ctx, const char *s, size_t n);

int qrm_tok_pretok_load(qrm_tok_pretokenizer *pt, const qj_value *v, char *err, size_t errlen);
void qrm_tok_pretok_free(qrm_tok_pretokenizer *pt);
/* Runs the steps over s[0..n) and calls fn for each non-empty pre-token. -1 on
 * out of memory or when fn fails. */
int qrm_tok_pretok_run(const qrm_tok_pretokenizer *pt, qrm_tok_pretok_work *w, const char *s,
                       size_t n, qrm_tok_word_fn fn, void *ctx);
void qrm_tok_pretok_work_free(qrm_tok_pretok_work *w);
/* End of the pattern's match that starts at pos (< n); s valid UTF-8. */
size_t qrm_tok_pattern_match(int pattern, const char *s, size_t n, size_t pos);

/* ByteLevel alphabet: byte -> code point, and code point -> byte (or -1). */
uint32_t qrm_tok_byte_to_cp(unsigned char b);
int qrm_tok_cp_to_byte(uint32_t cp);

/* ---------------------------------------------------------------- added tokens */

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    unsigned char special, single_word, lstrip, rstrip, normalized;
} qrm_tok_added;

typedef struct {
    qrm_tok_u64map edges; /* node << 8 | byte -> child node */
    int32_t *term;        /* node -> token id, -1 if no token ends there */
    size_t n_nodes, cap_nodes;
    unsigned char first[256]; /* bytes that start some token */
    size_t n_tokens;
} qrm_tok_trie;

typedef struct {
    qrm_tok_added *tok;   /* in the order of tokenizer.json */
    size_t n;
    int32_t *id_tok;      /* id -> index in tok of the token holding that id, -1 none */
    size_t n_ids;
    qrm_tok_strmap content; /* content -> id */
    qrm_tok_strmap special; /* contents of special tokens (value unused) */
    qrm_tok_trie raw, norm; /* matched before / after normalization */
} qrm_tok_added_vocab;

typedef struct {
    size_t start, end;
    int32_t id; /* -1: plain text */
} qrm_tok_span;

typedef struct {
    qrm_tok_span *v;
    size_t n, cap;
} qrm_tok_spans;

int qrm_tok_added_load(qrm_tok_added_vocab *av, const qj_value *arr, const qrm_tok_bpe *model,
                       const qrm_tok_normalizer *nz, char *err, size_t errlen);
void qrm_tok_added_free(qrm_tok_added_vocab *av);
/* Splits s[0..n) around the tokens of trie (the library's find_matches);
 * spans cover s in order; empty text spans are left out. 0 or -1 (no memory). */
int qrm_tok_added_split(const qrm_tok_added_vocab *av, const qrm_tok_trie *trie, const char *s,
                        size_t n, qrm_tok_spans *out);
int32_t qrm_tok_added_id(const qrm_tok_added_vocab *av, const char *s, size_t n);
/* The added token holding id, or NULL. */
const qrm_tok_added *qrm_tok_added_by_id(const qrm_tok_added_vocab *av, int32_t id);

/* ---------------------------------------------------------------- decoders */

enum {
    QRM_TOK_DEC_BYTELEVEL,
    QRM_TOK_DEC_REPLACE,
    QRM_TOK_DEC_BYTEFALLBACK,
    QRM_TOK_DEC_FUSE,
    QRM_TOK_DEC_STRIP
};

typedef struct {
    int kind;
    char *pattern, *content; /* Replace */
    size_t pattern_len, content_len;
    uint32_t strip_char;     /* Strip */
    size_t strip_start, strip_stop;
} qrm_tok_dec;

typedef struct {
    qrm_tok_dec *steps;
    size_t n;
    int present; /* 0: no decoder, tokens are joined with " " */
} qrm_tok_decoder;

int qrm_tok_decoder_load(qrm_tok_decoder *d, const qj_value *v, char *err, size_t errlen);
void qrm_tok_decoder_free(qrm_tok_decoder *d);
/* Rust String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD. */
void qrm_tok_utf8_lossy(const char *s, size_t n, qrm_tok_buf *out);

/* ---------------------------------------------------------------- the tokenizer */

struct qrm_tokenizer {
    qrm_tok_bpe bpe;
    qrm_tok_normalizer norm;
    qrm_tok_pretokenizer pre;
    qrm_tok_added_vocab added;
    qrm_tok_decoder dec;
    int32_t *prefix_ids, *suffix_ids; /* what add_special_tokens puts around a sequence */
    size_t n_prefix, n_suffix;
    /* from tokenizer_config.json */
    char *chat_template;
    char *cfg_token[4]; /* bos, eos, pad, unk; NULL when absent or null */
    char **additional;
    size_t n_additional;
    int32_t bos_id;
    size_t vocab_size;
};

#endif
