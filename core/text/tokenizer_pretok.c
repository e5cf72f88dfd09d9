/* Pre-tokenizers: Split (with the known regexes as hand-written matchers, or a
 * literal string) and ByteLevel, possibly in a Sequence.
 *
 * No regex engine: the library compiles these patterns with Oniguruma, a
 * backtracking engine where the first alternative that matches wins and
 * quantifiers are greedy. Each matcher below walks the alternatives in the
 * pattern's order and reproduces what backtracking settles on. The
 * character classes are Unicode ones (\p{L}, \p{N}, \s = White_Space) from
 * core/text/unicode_tables.c. A pattern not in this list is an error at load time.
 */
#include "tokenizer_internal.h"

#include "unicode.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Qwen2/Qwen3 and Llama-3 differ only in the digit run length: {1} vs {1,3}. */
static const char PAT_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* GPT-2's, also what ByteLevel uses when use_regex is true. */
static const char PAT_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

#define CL_L QRM_UNI_L
#define CL_N QRM_UNI_N
#define CL_WS QRM_UNI_WS

/* Class bits of the character at p (p < n) and its length. */
static inline unsigned cls(const unsigned char *s, size_t n, size_t p, size_t *len) {
    if (s[p] < 0x80) {
        *len = 1;
        return qrm_uni_flags(s[p]) & (CL_L | CL_N | CL_WS);
    }
    uint32_t cp;
    int l = qrm_utf8_decode(s + p, n - p, &cp);
    if (l == 0) { /* not reached for validated input */
        *len = 1;
        return 0;
    }
    *len = (size_t)l;
    return qrm_uni_flags(cp) & (CL_L | CL_N | CL_WS);
}

/* "Other": [^\s\p{L}\p{N}]. */
static inline int is_other(unsigned c) { return (c & (CL_L | CL_N | CL_WS)) == 0; }

/* End of the run of characters starting at p whose class has a bit in mask
 * (want_other: characters with none of L/N/WS instead). */
static size_t run_end(const unsigned char *s, size_t n, size_t p, unsigned mask, int want_other) {
    while (p < n) {
        size_t l;
        unsigned c = cls(s, n, p, &l);
        if (want_other ? !is_other(c) : !(c & mask)) break;
        p += l;
    }
    return p;
}

/* 's|'t|'re|'ve|'m|'ll|'d after the apostrophe at p; case-insensitive as
 * (?i:...) in Oniguruma, where 's' also matches U+017F LONG S (its case fold). */
static size_t contraction(const unsigned char *s, size_t n, size_t p, int ci) {
    size_t q = p + 1;
    if (q >= n) return 0;
    unsigned char c = s[q];
    unsigned char lc = ci && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
    if (lc == 's' || lc == 't' || lc == 'm' || lc == 'd') return q + 1;
    if (ci && c == 0xC5 && q + 1 < n && s[q + 1] == 0xBF) return q + 2; /* U+017F */
    if (q + 1 >= n) return 0;
    unsigned char c2 = s[q + 1];
    unsigned char lc2 = ci && c2 >= 'A' && c2 <= 'Z' ? (unsigned char)(c2 + 32) : c2;
    if ((lc == 'r' || lc == 'v') && lc2 == 'e') return q + 2;
    if (lc == 'l' && lc2 == 'l') return q + 2;
    return 0;
}

/* The whitespace alternatives shared by both families, at p (a whitespace
 * char): [\s*[\r\n]+ when with_newline_rule] | \s+(?!\S) | \s+ */
static size_t whitespace_match(const unsigned char *s, size_t n, size_t p, int with_newline_rule) {
    size_t e = p, last_start = p, last_nl = (size_t)-1, nchars = 0;
    while (e < n) {
        size_t l;
        unsigned c = cls(s, n, e, &l);
        if (!(c & CL_WS)) break;
        if (s[e] == '\r' || s[e] == '\n') last_nl = e;
        last_start = e;
        nchars++;
        e += l;
    }
    /* \s*[\r\n]+ backtracks to the last CR/LF of the run and takes it. */
    if (with_newline_rule && last_nl != (size_t)-1) return last_nl + 1;
    /* \s+(?!\S): the whole run at the end of the text, else all but the last char. */
    if (e == n) return e;
    if (nchars >= 2) return last_start;
    return e; /* \s+ */
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_qwen(const unsigned char *s, size_t n, size_t p, int max_digits) {
    if (s[p] == '\'') {
        size_t m = contraction(s, n, p, 1);
        if (m) return m;
    }
    size_t l0;
    unsigned c0 = cls(s, n, p, &l0);
    if (!(c0 & (CL_L | CL_N)) && s[p] != '\r' && s[p] != '\n' && p + l0 < n) {
        size_t l1;
        if (cls(s, n, p + l0, &l1) & CL_L) return run_end(s, n, p + l0 + l1, CL_L, 0);
    }
    if (c0 & CL_L) return run_end(s, n, p + l0, CL_L, 0);
    if (c0 & CL_N) {
        size_t q = p + l0;
        for (int k = 1; k < max_digits && q < n; k++) {
            size_t l;
            if (!(cls(s, n, q, &l) & CL_N)) break;
            q += l;
        }
        return q;
    }
    size_t q = p;
    if (s[p] == ' ' && p + 1 < n) {
        size_t l;
        if (is_other(cls(s, n, p + 1, &l))) q = p + 1;
    }
    size_t lq;
    if (is_other(cls(s, n, q, &lq))) {
        q = run_end(s, n, q + lq, 0, 1);
        while (q < n && (s[q] == '\r' || s[q] == '\n')) q++;
        return q;
    }
    return whitespace_match(s, n, p, 1);
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t match_gpt2(const unsigned char *s, size_t n, size_t p) {
    if (s[p] == '\'') {
        size_t m = contraction(s, n, p, 0);
        if (m) return m;
    }
    size_t q = (s[p] == ' ' && p + 1 < n) ? p + 1 : p;
    size_t l;
    unsigned c = cls(s, n, q, &l);
    if (c & CL_L) return run_end(s, n, q + l, CL_L, 0);
    if (c & CL_N) return run_end(s, n, q + l, CL_N, 0);
    if (is_other(c)) return run_end(s, n, q + l, 0, 1);
    return whitespace_match(s, n, p, 0);
}

size_t qrm_tok_pattern_match(int pattern, const char *str, size_t n, size_t pos) {
    const unsigned char *s = (const unsigned char *)str;
    switch (pattern) {
    case QRM_TOK_PAT_QWEN2: return match_qwen(s, n, pos, 1);
    case QRM_TOK_PAT_LLAMA3: return match_qwen(s, n, pos, 3);
    default: return match_gpt2(s, n, pos);
    }
}

/* ---------------------------------------------------------------- ByteLevel alphabet */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * other 68 bytes (0x00-0x20, 0x7F-0xA0, 0xAD) become U+0100.. in byte order. */
uint32_t qrm_tok_byte_to_cp(unsigned char b) {
    if (b <= 0x20) return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0) return 0x100 + 33 + (uint32_t)(b - 0x7F);
    if (b == 0xAD) return 0x100 + 67;
    return b;
}

int qrm_tok_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return (cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) ? -1 : (int)cp;
    if (cp <= 0x100 + 32) return (int)(cp - 0x100);
    if (cp <= 0x100 + 66) return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x100 + 67) return 0xAD;
    return -1;
}

/* ---------------------------------------------------------------- loading */

static int load_step(qrm_tok_pretokenizer *pt, const qj_value *v, int depth, char *err,
                     size_t errlen) {
    if (!v || v->type == QJ_NULL) return 0;
    if (v->type != QJ_OBJECT || depth > 8)
        return qrm_tok_fail(err, errlen, "tokenizer.json: pre_tokenizer is not an object");
    const char *type = qj_get_str(v, "type");
    if (!type) return qrm_tok_fail(err, errlen, "tokenizer.json: pre_tokenizer has no type");
    if (!strcmp(type, "Sequence")) {
        const qj_value *list = qj_get_type(v, "pretokenizers", QJ_ARRAY);
        if (!list)
            return qrm_tok_fail(err, errlen, "tokenizer.json: pre_tokenizer Sequence without a list");
        for (uint32_t i = 0; i < list->len; i++)
            if (load_step(pt, &list->u.items[i], depth + 1, err, errlen) != 0) return -1;
        return 0;
    }
    if (pt->n == QRM_TOK_MAX_PRETOK)
        return qrm_tok_fail(err, errlen, "tokenizer.json: more than %d pre_tokenizers",
                            QRM_TOK_MAX_PRETOK);
    qrm_tok_pretok *st = &pt->steps[pt->n];
    memset(st, 0, sizeof *st);
    if (!strcmp(type, "ByteLevel")) {
        st->kind = QRM_TOK_PRE_BYTELEVEL;
        st->add_prefix_space = qj_get_bool(v, "add_prefix_space", 1);
        st->use_regex = qj_get_bool(v, "use_regex", 1);
        pt->n++;
        return 0;
    }
    if (strcmp(type, "Split"))
        return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported pre_tokenizer type '%.40s'",
                            type);
    const qj_value *pat = qj_get_type(v, "pattern", QJ_OBJECT);
    const qj_value *re = pat ? qj_get_type(pat, "Regex", QJ_STRING) : NULL;
    const qj_value *str = pat ? qj_get_type(pat, "String", QJ_STRING) : NULL;
    const char *behavior = qj_get_str(v, "behavior");
    if (!behavior || (!re && !str))
        return qrm_tok_fail(err, errlen, "tokenizer.json: Split pre_tokenizer without pattern/behavior");
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    st->behavior = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(behavior, names[i])) st->behavior = i;
    if (st->behavior < 0)
        return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported Split behavior '%.40s'",
                            behavior);
    st->invert = qj_get_bool(v, "invert", 0);
    if (re) {
        st->kind = QRM_TOK_PRE_SPLIT_PATTERN;
        if (re->len == sizeof PAT_QWEN2 - 1 && !memcmp(re->u.str, PAT_QWEN2, re->len))
            st->pattern = QRM_TOK_PAT_QWEN2;
        else if (re->len == sizeof PAT_LLAMA3 - 1 && !memcmp(re->u.str, PAT_LLAMA3, re->len))
            st->pattern = QRM_TOK_PAT_LLAMA3;
        else if (re->len == sizeof PAT_GPT2 - 1 && !memcmp(re->u.str, PAT_GPT2, re->len))
            st->pattern = QRM_TOK_PAT_GPT2;
        else
            return qrm_tok_fail(err, errlen,
                                "tokenizer.json: unsupported Split regex '%.120s'", re->u.str);
    } else {
        if (str->len == 0)
            return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported Split on an empty string");
        st->kind = QRM_TOK_PRE_SPLIT_STRING;
        st->str = qrm_tok_strndup(str->u.str, str->len);
        st->str_len = str->len;
        if (!st->str) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    }
    pt->n++;
    return 0;
}

int qrm_tok_pretok_load(qrm_tok_pretokenizer *pt, const qj_value *v, char *err, size_t errlen) {
    memset(pt, 0, sizeof *pt);
    return load_step(pt, v, 0, err, errlen);
}

void qrm_tok_pretok_free(qrm_tok_pretokenizer *pt) {
    for (size_t i = 0; i < pt->n; i++) free(pt->steps[i].str);
    memset(pt, 0, sizeof *pt);
}

void qrm_tok_pretok_work_free(qrm_tok_pretok_work *w) {
    for (int i = 0; i < QRM_TOK_MAX_PRETOK; i++) {
        qrm_tok_buf_free(&w->mapped[i]);
        qrm_tok_buf_free(&w->prefixed[i]);
        free(w->ranges[i]);
    }
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- running */

static int run_from(const qrm_tok_pretokenizer *pt, qrm_tok_pretok_work *w, size_t depth,
                    const char *s, size_t n, qrm_tok_word_fn fn, void *ctx);

/* The next match of a split step at or after from: 1 and [*ms, *me), or 0. */
static int next_match(const qrm_tok_pretok *st, const char *s, size_t n, size_t from, size_t *ms,
                      size_t *me) {
    if (from >= n) return 0;
    if (st->kind == QRM_TOK_PRE_SPLIT_STRING) {
        const char *hit = memmem(s + from, n - from, st->str, st->str_len);
        if (!hit) return 0;
        *ms = (size_t)(hit - s);
        *me = *ms + st->str_len;
        return 1;
    }
    *ms = from;
    *me = qrm_tok_pattern_match(st->pattern, s, n, from);
    return 1;
}

static int push_range(qrm_tok_pretok_work *w, size_t depth, size_t *nr, size_t a, size_t b,
                      int is_match) {
    if (*nr == w->range_cap[depth]) {
        size_t cap = w->range_cap[depth] ? w->range_cap[depth] * 2 : 64;
        qrm_tok_range *p = realloc(w->ranges[depth], cap * sizeof *p);
        if (!p) return -1;
        w->ranges[depth] = p;
        w->range_cap[depth] = cap;
    }
    w->ranges[depth][(*nr)++] = (qrm_tok_range){a, b, is_match};
    return 0;
}

/* NormalizedString::split: the matches and the gaps between them, then the
 * behavior decides what becomes a piece. */
static int run_split(const qrm_tok_pretokenizer *pt, qrm_tok_pretok_work *w, size_t depth,
                     const char *s, size_t n, qrm_tok_word_fn fn, void *ctx) {
    const qrm_tok_pretok *st = &pt->steps[depth];
    size_t prev = 0, from = 0, ms, me;
    if (st->behavior == QRM_TOK_SPLIT_ISOLATED) { /* every range is a piece: stream them */
        while (next_match(st, s, n, from, &ms, &me)) {
            if (ms > prev && run_from(pt, w, depth + 1, s + prev, ms - prev, fn, ctx)) return -1;
            if (run_from(pt, w, depth + 1, s + ms, me - ms, fn, ctx)) return -1;
            prev = from = me;
        }
        if (prev < n) return run_from(pt, w, depth + 1, s + prev, n - prev, fn, ctx);
        return 0;
    }
    size_t nr = 0;
    while (next_match(st, s, n, from, &ms, &me)) {
        if (ms > prev && push_range(w, depth, &nr, prev, ms, st->invert)) return -1;
        if (push_range(w, depth, &nr, ms, me, !st->invert)) return -1;
        prev = from = me;
    }
    if (prev < n && push_range(w, depth, &nr, prev, n, st->invert)) return -1;
    qrm_tok_range *r = w->ranges[depth];
    size_t out = 0;
    int previous_match = 0;
    switch (st->behavior) {
    case QRM_TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < nr; i++)
            if (!r[i].is_match) r[out++] = r[i];
        break;
    case QRM_TOK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < nr; i++) {
            if (r[i].is_match && !previous_match && out > 0) r[out - 1].end = r[i].end;
            else r[out++] = r[i];
            previous_match = r[i].is_match;
        }
        break;
    case QRM_TOK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < nr; i++) {
            if (r[i].is_match == previous_match && out > 0) r[out - 1].end = r[i].end;
            else r[out++] = r[i];
            previous_match = r[i].is_match;
        }
        break;
    case QRM_TOK_SPLIT_MERGED_NEXT: {
        /* Fold from the right: a match joins the piece that follows it. */
        size_t k = nr;
        for (size_t i = nr; i-- > 0;) {
            qrm_tok_range cur = r[i];
            if (cur.is_match && !previous_match && k < nr) r[k].start = cur.start;
            else r[--k] = cur;
            previous_match = cur.is_match;
        }
        memmove(r, r + k, (nr - k) * sizeof *r);
        out = nr - k;
        break;
    }
    default: out = nr;
    }
    /* Deeper steps use their own ranges arrays, so r stays valid here. */
    for (size_t i = 0; i < out; i++) {
        size_t a = w->ranges[depth][i].start, b = w->ranges[depth][i].end;
        if (b > a && run_from(pt, w, depth + 1, s + a, b - a, fn, ctx)) return -1;
    }
    return 0;
}

static int run_bytelevel_piece(const qrm_tok_pretokenizer *pt, qrm_tok_pretok_work *w,
                               size_t depth, const char *s, size_t n, qrm_tok_word_fn fn,
                               void *ctx) {
    qrm_tok_buf *m = &w->mapped[depth];
    m->len = 0;
    char tmp[256];
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = qrm_tok_byte_to_cp((unsigned char)s[i]);
        if (cp < 0x80) {
            tmp[t++] = (char)cp;
        } else {
            tmp[t++] = (char)(0xC0 | (cp >> 6));
            tmp[t++] = (char)(0x80 | (cp & 0x3F));
        }
        if (t > sizeof tmp - 2) {
            qrm_tok_buf_put(m, tmp, t);
            t = 0;
        }
    }
    qrm_tok_buf_put(m, tmp, t);
    if (m->oom) return -1;
    return run_from(pt, w, depth + 1, m->data, m->len, fn, ctx);
}

static int run_bytelevel(const qrm_tok_pretokenizer *pt, qrm_tok_pretok_work *w, size_t depth,
                         const char *s, size_t n, qrm_tok_word_fn fn, void *ctx) {
    const qrm_tok_pretok *st = &pt->steps[depth];
    if (st->add_prefix_space && (n == 0 || s[0] != ' ')) {
        qrm_tok_buf *p = &w->prefixed[depth];
        p->len = 0;
        qrm_tok_buf_put(p, " ", 1);
        qrm_tok_buf_put(p, s, n);
        if (p->oom) return -1;
        s = p->data;
        n = p->len;
    }
    if (!st->use_regex) return run_bytelevel_piece(pt, w, depth, s, n, fn, ctx);
    size_t p = 0;
    while (p < n) {
        size_t e = qrm_tok_pattern_match(QRM_TOK_PAT_GPT2, s, n, p);
        if (run_bytelevel_piece(pt, w, depth, s + p, e - p, fn, ctx)) return -1;
        p = e;
    }
    return 0;
}

static int run_from(const qrm_tok_pretokenizer *pt, qrm_tok_pretok_work *w, size_t depth,
                    const char *s, size_t n, qrm_tok_word_fn fn, void *ctx) {
    if (n == 0) return 0;
    if (depth == pt->n) return fn(ctx, s, n);
    if (pt->steps[depth].kind == QRM_TOK_PRE_BYTELEVEL)
        return run_bytelevel(pt, w, depth, s, n, fn, ctx);
    return run_split(pt, w, depth, s, n, fn, ctx);
}

int qrm_tok_pretok_run(const qrm_tok_pretokenizer *pt, qrm_tok_pretok_work *w, const char *s,
                       size_t n, qrm_tok_word_fn fn, void *ctx) {
    return run_from(pt, w, 0, s, n, fn, ctx);
}
