/* Strict JSON (RFC 8259) reader into a DOM, and writer helpers.
 *
 * The reader is iterative: open containers live on a fixed stack of
 * QJ_MAX_DEPTH frames, so hostile nesting gives an error instead of a stack
 * overflow. Elements of open containers are collected on two growable stacks
 * (values and object members); when a container closes, its elements are
 * copied into the document's arena as one contiguous array. All strings are
 * decoded into a single block sized from the input (a decoded string plus its
 * NUL never needs more bytes than its quoted source), so a 30 MB
 * tokenizer.json costs a handful of mallocs, not one per node.
 */
#include "json.h"

#include "utf8.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QJ_MAX_DEPTH 512

/* ---------------------------------------------------------------- arena */

typedef struct qj_chunk {
    struct qj_chunk *next;
    size_t used, cap;
} qj_chunk;

/* Chunk payloads start 16-byte aligned after the header. */
#define CHUNK_HDR ((sizeof(qj_chunk) + 15) & ~(size_t)15)
#define CHUNK_MIN ((size_t)64 * 1024)

struct qj_doc {
    qj_value root;
    char *strings;     /* every decoded string and key, NUL-separated */
    qj_chunk *chunks;  /* container element arrays */
    size_t next_chunk; /* size of the next chunk; doubles to keep the count small */
};

/* Shared by every empty array/object so items/members are never NULL. */
static qj_value empty_items[1];
static qj_member empty_members[1];

static void *arena_alloc(qj_doc *d, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    qj_chunk *c = d->chunks;
    if (c && bytes > d->next_chunk / 4) {
        /* A big array (a vocab, the merges) gets a chunk of its own, linked
         * behind the current one so that one keeps serving small arrays. */
        qj_chunk *own = malloc(CHUNK_HDR + bytes);
        if (!own) return NULL;
        own->cap = own->used = bytes;
        own->next = c->next;
        c->next = own;
        return (char *)own + CHUNK_HDR;
    }
    if (!c || c->cap - c->used < bytes) {
        size_t cap = d->next_chunk;
        if (cap < bytes) cap = bytes;
        c = malloc(CHUNK_HDR + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = d->chunks;
        d->chunks = c;
        if (d->next_chunk < ((size_t)16 << 20)) d->next_chunk *= 2;
    }
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += bytes;
    return p;
}

void qj_free(qj_doc *d) {
    if (!d) return;
    qj_chunk *c = d->chunks;
    while (c) {
        qj_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(d->strings);
    free(d);
}

const qj_value *qj_root(const qj_doc *d) { return d ? &d->root : NULL; }

/* ---------------------------------------------------------------- parser state */

typedef struct {
    qj_type type;      /* QJ_ARRAY or QJ_OBJECT */
    size_t start;      /* first element on the value or member stack */
} qj_frame;

typedef struct {
    const char *start, *p, *end;
    char *err;
    size_t errlen;
    int failed;
    qj_doc *doc;
    char *sp; /* next free byte of doc->strings */
    qj_value *vals;
    size_t nvals, capvals;
    qj_member *mems;
    size_t nmems, capmems;
    qj_frame frames[QJ_MAX_DEPTH];
    int depth;
} qj_parser;

/* Describes the character at p for an error message: 'x', U+00E9, byte 0xff. */
static void describe_char(const qj_parser *P, const char *p, char *out, size_t outlen) {
    if (p >= P->end) {
        snprintf(out, outlen, "end of input");
        return;
    }
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x7F) {
        snprintf(out, outlen, "'%c'", c);
    } else if (c < 0x80) {
        snprintf(out, outlen, "byte 0x%02x", c);
    } else {
        uint32_t cp;
        if (qrm_utf8_decode((const unsigned char *)p, (size_t)(P->end - p), &cp))
            snprintf(out, outlen, "U+%04X", (unsigned)cp);
        else
            snprintf(out, outlen, "invalid UTF-8 byte 0x%02x", c);
    }
}

/* Records the first error as "line L, column C: <what>" (column counts code
 * points, 1-based) and returns 0 so callers can `return fail(...)`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(qj_parser *P, const char *at, const char *fmt, ...) {
    if (P->failed) return 0;
    P->failed = 1;
    if (!P->err || P->errlen == 0) return 0;
    size_t line = 1, col = 1;
    for (const char *q = P->start; q < at && q < P->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)*q & 0xC0) != 0x80) {
            col++;
        }
    }
    int n = snprintf(P->err, P->errlen, "line %zu, column %zu: ", line, col);
    if (n >= 0 && (size_t)n < P->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P->err + n, P->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static int fail_unexpected(qj_parser *P, const char *at, const char *expected) {
    char what[48];
    describe_char(P, at, what, sizeof what);
    if (at >= P->end) return fail(P, at, "unexpected end of input, expected %s", expected);
    return fail(P, at, "expected %s, found %s", expected, what);
}

static inline void skip_ws(qj_parser *P) {
    const char *p = P->p, *end = P->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    P->p = p;
}

static int push_value(qj_parser *P, const qj_value *v) {
    if (P->nvals == P->capvals) {
        size_t cap = P->capvals ? P->capvals * 2 : 256;
        qj_value *nv = realloc(P->vals, cap * sizeof *nv);
        if (!nv) return fail(P, P->p, "out of memory");
        P->vals = nv;
        P->capvals = cap;
    }
    P->vals[P->nvals++] = *v;
    return 1;
}

static int push_member(qj_parser *P, const char *key, uint32_t key_len) {
    if (P->nmems == P->capmems) {
        size_t cap = P->capmems ? P->capmems * 2 : 256;
        qj_member *nm = realloc(P->mems, cap * sizeof *nm);
        if (!nm) return fail(P, P->p, "out of memory");
        P->mems = nm;
        P->capmems = cap;
    }
    qj_member *m = &P->mems[P->nmems++];
    memset(m, 0, sizeof *m);
    m->key = key;
    m->key_len = key_len;
    return 1;
}

/* ---------------------------------------------------------------- strings */

/* 1 for bytes that are copied unchanged inside a string: printable ASCII
 * except '"' and '\\'. Everything else needs a closer look. */
static const unsigned char plain_byte[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),                         /* 0x00-0x1f: control characters */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f, '"' = 0x22 */
    R16(1), R16(1),                         /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5f, '\\' = 0x5c */
    R16(1), R16(1),                         /* 0x60-0x7f (DEL is allowed raw) */
    R16(0), R16(0), R16(0), R16(0),         /* 0x80-0xff: UTF-8, validated */
    R16(0), R16(0), R16(0), R16(0),
#undef R16
};

static int hex4(const char *p, const char *end, uint32_t *out) {
    if (end - p < 4) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* Parses the string literal at P->p (which is '"') into the string block. */
static int parse_string(qj_parser *P, const char **out, uint32_t *out_len) {
    const char *open = P->p;
    const char *p = open + 1, *end = P->end;
    char *d = P->sp, *d0 = P->sp;
    for (;;) {
        const char *run = p;
        while (p < end && plain_byte[(unsigned char)*p]) p++;
        memcpy(d, run, (size_t)(p - run));
        d += p - run;
        if (p >= end) return fail(P, end, "unexpected end of input in string");
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            p++;
            break;
        }
        if (c == '\\') {
            if (end - p < 2) return fail(P, end, "unexpected end of input in string");
            char e = p[1];
            switch (e) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '/': *d++ = '/'; break;
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (!hex4(p + 2, end, &cp))
                    return fail(P, p, "invalid \\u escape: expected 4 hex digits");
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(P, p, "invalid \\u escape: lone surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    /* A high surrogate must be followed by an escaped low one. */
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, end, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return fail(P, p, "invalid \\u escape: lone surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                d += qrm_utf8_encode(cp, d);
                p += 4;
                break;
            }
            default: {
                char what[48];
                describe_char(P, p + 1, what, sizeof what);
                return fail(P, p, "invalid escape: backslash followed by %s", what);
            }
            }
            p += 2;
        } else if (c < 0x20) {
            return fail(P, p, "control character 0x%02x in string must be escaped", c);
        } else {
            uint32_t cp;
            int n = qrm_utf8_decode((const unsigned char *)p, (size_t)(end - p), &cp);
            if (n == 0) return fail(P, p, "invalid UTF-8 in string (byte 0x%02x)", c);
            memcpy(d, p, (size_t)n);
            d += n;
            p += n;
        }
    }
    if ((size_t)(d - d0) > UINT32_MAX - 1) return fail(P, open, "string longer than 4 GiB");
    *d++ = 0;
    *out = d0;
    *out_len = (uint32_t)(d - d0 - 1);
    P->sp = d;
    P->p = p;
    return 1;
}

/* ---------------------------------------------------------------- numbers */

static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Exact conversion through strtod on a NUL-terminated copy of [s, e). */
static int number_strtod(qj_parser *P, const char *s, const char *e, double *out) {
    size_t n = (size_t)(e - s);
    char small[64];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return fail(P, s, "out of memory");
    memcpy(buf, s, n);
    buf[n] = 0;
    char *stop;
    double v = strtod(buf, &stop);
    if (stop != buf + n) {
        /* Someone called setlocale() with a ',' decimal point: use theirs. */
        const char *dp = localeconv()->decimal_point;
        char *dot = memchr(buf, '.', n);
        if (dot && dp && dp[0] && !dp[1]) *dot = dp[0];
        v = strtod(buf, &stop);
    }
    int ok = stop == buf + n;
    if (buf != small) free(buf);
    if (!ok) return fail(P, s, "invalid number");
    if (isinf(v)) return fail(P, s, "number out of range");
    *out = v;
    return 1;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(qj_parser *P, qj_value *v) {
    const char *s = P->p, *p = s, *end = P->end;
    int neg = 0, is_int = 1;
    uint64_t mant = 0; /* the first (up to 19) significant digits */
    int ndigits = 0;   /* significant digits seen (leading zeros excluded) */
    int exp10 = 0;     /* decimal exponent to apply to mant */
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || !is_digit(*p)) return fail_unexpected(P, p, "a digit after '-'");
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return fail(P, s, "invalid number: leading zero");
    } else {
        for (; p < end && is_digit(*p); p++) {
            if (ndigits < 19) mant = mant * 10 + (uint64_t)(*p - '0');
            else if (exp10 < 1000000) exp10++; /* bounded: strtod does the real work */
            if (ndigits < 1000000) ndigits++;
        }
    }
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= end || !is_digit(*p)) return fail_unexpected(P, p, "a digit after '.'");
        for (; p < end && is_digit(*p); p++) {
            if (mant == 0 && *p == '0') {
                /* leading zeros of 0.000123 are not significant */
                if (exp10 > -1000000) exp10--;
                continue;
            }
            if (ndigits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                exp10--;
            }
            if (ndigits < 1000000) ndigits++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        int eneg = 0, e = 0;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || !is_digit(*p)) return fail_unexpected(P, p, "a digit in the exponent");
        for (; p < end && is_digit(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    double val = 0.0;
    if (ndigits <= 19 && exp10 == 0) {
        val = (double)mant; /* one correctly rounded conversion */
    } else if (FLT_EVAL_METHOD == 0 && ndigits <= 15 && exp10 >= -22 && exp10 <= 22) {
        /* Both mant and 10^|exp10| are exact doubles, so one IEEE operation
         * rounds correctly (Clinger's fast path). */
        val = exp10 < 0 ? (double)mant / exact_pow10[-exp10] : (double)mant * exact_pow10[exp10];
    } else if (mant == 0) {
        val = 0.0;
    } else {
        if (!number_strtod(P, neg ? s + 1 : s, p, &val)) return 0;
    }
    v->type = QJ_NUMBER;
    v->len = 0;
    v->u.num = neg ? -val : val;
    v->is_int = is_int;
    P->p = p;
    return 1;
}

/* ---------------------------------------------------------------- values */

static int parse_literal(qj_parser *P, qj_value *v) {
    static const struct { const char *word; size_t len; qj_type type; } lits[] = {
        {"true", 4, QJ_TRUE}, {"false", 5, QJ_FALSE}, {"null", 4, QJ_NULL}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        if (*P->p != lits[i].word[0]) continue;
        size_t avail = (size_t)(P->end - P->p);
        size_t n = avail < lits[i].len ? avail : lits[i].len;
        if (n < lits[i].len || memcmp(P->p, lits[i].word, n) != 0)
            return fail(P, P->p, "invalid literal (expected '%s')", lits[i].word);
        /* "truex" is caught by the caller as an unexpected character. */
        memset(v, 0, sizeof *v);
        v->type = lits[i].type;
        P->p += lits[i].len;
        return 1;
    }
    return fail_unexpected(P, P->p, "a value");
}

/* Reads '"key"' and ':' of an object member and pushes the member. */
static int parse_key(qj_parser *P, const char *expected) {
    skip_ws(P);
    if (P->p >= P->end || *P->p != '"') return fail_unexpected(P, P->p, expected);
    const char *key;
    uint32_t key_len;
    if (!parse_string(P, &key, &key_len)) return 0;
    skip_ws(P);
    if (P->p >= P->end || *P->p != ':') return fail_unexpected(P, P->p, "':' after object key");
    P->p++;
    return push_member(P, key, key_len);
}

/* Turns the elements of the innermost open container into its value. */
static int close_container(qj_parser *P, qj_value *v) {
    qj_frame *f = &P->frames[--P->depth];
    memset(v, 0, sizeof *v);
    v->type = f->type;
    size_t n;
    if (f->type == QJ_ARRAY) {
        n = P->nvals - f->start;
        v->u.items = empty_items;
        if (n) {
            if (n > UINT32_MAX) return fail(P, P->p, "array has too many elements");
            v->u.items = arena_alloc(P->doc, n * sizeof(qj_value));
            if (!v->u.items) return fail(P, P->p, "out of memory");
            memcpy(v->u.items, P->vals + f->start, n * sizeof(qj_value));
        }
        P->nvals = f->start;
    } else {
        n = P->nmems - f->start;
        v->u.members = empty_members;
        if (n) {
            if (n > UINT32_MAX) return fail(P, P->p, "object has too many members");
            v->u.members = arena_alloc(P->doc, n * sizeof(qj_member));
            if (!v->u.members) return fail(P, P->p, "out of memory");
            memcpy(v->u.members, P->mems + f->start, n * sizeof(qj_member));
        }
        P->nmems = f->start;
    }
    v->len = (uint32_t)n;
    return 1;
}

/* The main loop: read one value (or open a container), then attach finished
 * values to their parents, closing containers, until more input is needed. */
static int parse_document(qj_parser *P) {
    for (;;) {
        qj_value v;
        skip_ws(P);
        if (P->p >= P->end) {
            if (P->depth == 0) return fail(P, P->p, "empty input, expected a JSON value");
            return fail_unexpected(P, P->p, "a value");
        }
        char c = *P->p;
        if (c == '[' || c == '{') {
            if (P->depth == QJ_MAX_DEPTH)
                return fail(P, P->p, "nesting deeper than %d levels", QJ_MAX_DEPTH);
            qj_frame *f = &P->frames[P->depth++];
            f->type = c == '[' ? QJ_ARRAY : QJ_OBJECT;
            f->start = c == '[' ? P->nvals : P->nmems;
            P->p++;
            skip_ws(P);
            if (P->p < P->end && *P->p == (c == '[' ? ']' : '}')) {
                P->p++;
                if (!close_container(P, &v)) return 0;
            } else {
                if (c == '{' && !parse_key(P, "a string key or '}'")) return 0;
                continue; /* read the first element */
            }
        } else if (c == '"') {
            memset(&v, 0, sizeof v);
            v.type = QJ_STRING;
            if (!parse_string(P, &v.u.str, &v.len)) return 0;
        } else if (c == '-' || is_digit(c)) {
            if (!parse_number(P, &v)) return 0;
        } else {
            if (!parse_literal(P, &v)) return 0;
        }

        /* Attach v; each closing bracket completes another value to attach. */
        for (;;) {
            if (P->depth == 0) {
                P->doc->root = v;
                return 1;
            }
            qj_frame *f = &P->frames[P->depth - 1];
            if (f->type == QJ_ARRAY) {
                if (!push_value(P, &v)) return 0;
            } else {
                P->mems[P->nmems - 1].value = v;
            }
            skip_ws(P);
            char closer = f->type == QJ_ARRAY ? ']' : '}';
            if (P->p < P->end && *P->p == ',') {
                P->p++;
                if (f->type == QJ_OBJECT && !parse_key(P, "a string key after ','")) return 0;
                break; /* read the next element */
            }
            if (P->p < P->end && *P->p == closer) {
                P->p++;
                if (!close_container(P, &v)) return 0;
                continue;
            }
            return fail_unexpected(P, P->p, f->type == QJ_ARRAY
                                                 ? "',' or ']' after array element"
                                                 : "',' or '}' after object member");
        }
    }
}

qj_doc *qj_parse(const char *text, size_t len, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!text) {
        text = "";
        len = 0;
    }
    if (len >= SIZE_MAX / 2) { /* would overflow the size arithmetic below */
        if (err && errlen) snprintf(err, errlen, "line 1, column 1: input too large");
        return NULL;
    }
    qj_parser *P = calloc(1, sizeof *P);
    qj_doc *d = calloc(1, sizeof *d);
    char *strings = malloc(len + 1);
    if (!P || !d || !strings) {
        if (err && errlen) snprintf(err, errlen, "line 1, column 1: out of memory");
        free(P);
        free(d);
        free(strings);
        return NULL;
    }
    /* RFC 8259 lets a parser ignore a UTF-8 byte order mark; editors add them. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    d->strings = strings;
    d->next_chunk = CHUNK_MIN;
    P->start = P->p = text;
    P->end = text + len;
    P->err = err;
    P->errlen = errlen;
    P->doc = d;
    P->sp = strings;

    int ok = parse_document(P);
    if (ok) {
        skip_ws(P);
        if (P->p < P->end) ok = fail_unexpected(P, P->p, "end of input after the JSON value");
    }
    free(P->vals);
    free(P->mems);
    free(P);
    if (!ok) {
        qj_free(d);
        return NULL;
    }
    return d;
}

/* ---------------------------------------------------------------- lookups */

const qj_value *qj_get_n(const qj_value *obj, const char *key, size_t key_len) {
    if (!obj || obj->type != QJ_OBJECT || !key) return NULL;
    for (uint32_t i = obj->len; i-- > 0;) { /* backwards: the last duplicate wins */
        const qj_member *m = &obj->u.members[i];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) return &m->value;
    }
    return NULL;
}

const qj_value *qj_get(const qj_value *obj, const char *key) {
    return key ? qj_get_n(obj, key, strlen(key)) : NULL;
}

const qj_value *qj_get_type(const qj_value *obj, const char *key, qj_type t) {
    const qj_value *v = qj_get(obj, key);
    if (!v) return NULL;
    if (v->type == t) return v;
    /* QJ_TRUE and QJ_FALSE are both "a boolean" to a caller asking for either. */
    if ((t == QJ_TRUE || t == QJ_FALSE) && (v->type == QJ_TRUE || v->type == QJ_FALSE)) return v;
    return NULL;
}

const char *qj_get_str(const qj_value *obj, const char *key) {
    const qj_value *v = qj_get_type(obj, key, QJ_STRING);
    return v ? v->u.str : NULL;
}

int qj_get_num(const qj_value *obj, const char *key, double *out) {
    const qj_value *v = qj_get_type(obj, key, QJ_NUMBER);
    if (!v) return 0;
    if (out) *out = v->u.num;
    return 1;
}

int qj_number_to_int(const qj_value *v, int64_t *out) {
    if (!v || v->type != QJ_NUMBER) return 0;
    double x = v->u.num;
    /* Below 2^53 every integer-valued double is the exact value written in
     * the text; above it "9007199254740993" would silently become ...992. */
    if (!(fabs(x) < 9007199254740992.0) || x != trunc(x)) return 0;
    if (out) *out = (int64_t)x;
    return 1;
}

int qj_get_int(const qj_value *obj, const char *key, int64_t *out) {
    return qj_number_to_int(qj_get_type(obj, key, QJ_NUMBER), out);
}

int qj_get_bool(const qj_value *obj, const char *key, int dflt) {
    const qj_value *v = qj_get(obj, key);
    if (!v) return dflt;
    if (v->type == QJ_TRUE) return 1;
    if (v->type == QJ_FALSE) return 0;
    return dflt;
}

const char *qj_type_name(qj_type t) {
    switch (t) {
    case QJ_NULL: return "null";
    case QJ_FALSE:
    case QJ_TRUE: return "boolean";
    case QJ_NUMBER: return "number";
    case QJ_STRING: return "string";
    case QJ_ARRAY: return "array";
    case QJ_OBJECT: return "object";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- writer */

/* Makes room for extra more bytes plus the NUL that always follows the text. */
static int buf_reserve(qj_buf *b, size_t extra) {
    if (b->oom) return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return 0;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
        b->oom = 1;
        return 0;
    }
    b->buf = nb;
    b->cap = cap;
    return 1;
}

void qj_buf_put(qj_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    if (n) memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

void qj_buf_puts(qj_buf *b, const char *s) { qj_buf_put(b, s, strlen(s)); }

void qj_buf_printf(qj_buf *b, const char *fmt, ...) {
    if (!buf_reserve(b, 64)) return;
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->buf + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= room) {
        if (!buf_reserve(b, (size_t)n)) return;
        va_start(ap, fmt);
        vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void qj_buf_put_string(qj_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    qj_buf_put(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (i < n && plain_byte[u[i]]) i++;
        qj_buf_put(b, s + run, i - run);
        if (i >= n) break;
        unsigned char c = u[i];
        if (c >= 0x80) {
            uint32_t cp;
            int len = qrm_utf8_decode(u + i, n - i, &cp);
            if (len) {
                qj_buf_put(b, s + i, (size_t)len);
                i += (size_t)len;
            } else {
                /* Keep the output valid JSON: an invalid byte becomes U+FFFD. */
                qj_buf_put(b, "\xEF\xBF\xBD", 3);
                i++;
            }
            continue;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default: /* other control characters, like Python: \u001b */
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        qj_buf_put(b, esc, elen);
        i++;
    }
    qj_buf_put(b, "\"", 1);
}

/* Formats a non-integer double like Python's repr(): the fewest significant
 * digits (at most 17) that read back as the same double, in fixed
 * notation when the decimal exponent is in [-4, 16) ("0.0001", "100.0"),
 * else as "1.5e+16" / "1e-05". Parsing the result gives x again. */
static void format_double(double x, char *out, size_t outlen) {
    char e[48];
    /* 15 digits always suffice to show the shortest form of a normal double
     * (DBL_DIG); subnormals have fewer bits, so search from 1 digit. */
    int first = fabs(x) < DBL_MIN ? 1 : 15;
    for (int prec = first; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, x);
        if (prec == 17 || strtod(e, NULL) == x) break;
    }
    /* e is "[-]d.ddde[+-]XX": split into sign, digits and exponent. */
    const char *q = e;
    int neg = *q == '-';
    if (neg) q++;
    char digits[24];
    int nd = 0;
    for (; *q && *q != 'e' && *q != 'E'; q++)
        if (is_digit(*q) && nd < (int)sizeof digits - 1) digits[nd++] = *q;
    int exp10 = *q ? atoi(q + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;

    char *o = out, *oend = out + outlen - 1;
#define EMIT(ch) do { if (o < oend) *o++ = (ch); } while (0)
    if (neg) EMIT('-');
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++) EMIT(i < nd ? digits[i] : '0');
            EMIT('.');
            if (nd > exp10 + 1)
                for (int i = exp10 + 1; i < nd; i++) EMIT(digits[i]);
            else
                EMIT('0');
        } else {
            EMIT('0');
            EMIT('.');
            for (int i = 0; i < -exp10 - 1; i++) EMIT('0');
            for (int i = 0; i < nd; i++) EMIT(digits[i]);
        }
        *o = 0;
    } else {
        EMIT(digits[0]);
        if (nd > 1) {
            EMIT('.');
            for (int i = 1; i < nd; i++) EMIT(digits[i]);
        }
        *o = 0;
        snprintf(o, (size_t)(oend - o) + 1, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
#undef EMIT
}

/* Numbers are written so that parsing them gives the same double and the
 * same is_int: integers in full without a fraction, others like Python. */
static void put_number(qj_buf *b, double x, int is_int) {
    char tmp[400];
    if (!isfinite(x)) {
        qj_buf_puts(b, "null"); /* JSON has no inf/nan */
        return;
    }
    if (is_int && x == trunc(x))
        snprintf(tmp, sizeof tmp, "%.0f", x);
    else
        format_double(x, tmp, sizeof tmp);
    qj_buf_puts(b, tmp);
}

void qj_buf_put_value(qj_buf *b, const qj_value *v) {
    if (!v) {
        qj_buf_puts(b, "null");
        return;
    }
    switch (v->type) {
    case QJ_NULL: qj_buf_puts(b, "null"); break;
    case QJ_FALSE: qj_buf_puts(b, "false"); break;
    case QJ_TRUE: qj_buf_puts(b, "true"); break;
    case QJ_NUMBER: put_number(b, v->u.num, v->is_int); break;
    case QJ_STRING: qj_buf_put_string(b, v->u.str, v->len); break;
    case QJ_ARRAY:
        qj_buf_put(b, "[", 1);
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) qj_buf_put(b, ",", 1);
            qj_buf_put_value(b, &v->u.items[i]);
        }
        qj_buf_put(b, "]", 1);
        break;
    case QJ_OBJECT:
        qj_buf_put(b, "{", 1);
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) qj_buf_put(b, ",", 1);
            qj_buf_put_string(b, v->u.members[i].key, v->u.members[i].key_len);
            qj_buf_put(b, ":", 1);
            qj_buf_put_value(b, &v->u.members[i].value);
        }
        qj_buf_put(b, "}", 1);
        break;
    }
}

void qj_buf_free(qj_buf *b) {
    if (!b) return;
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
