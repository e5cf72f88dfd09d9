/* A small JSON reader (DOM in one arena) and writer helpers.
 *
 * Used for config.json, safetensors headers, tokenizer.json (tens of MB),
 * the model file's metadata and JSONL input lines, so it is strict (RFC 8259),
 * fast, and never crashes on hostile input: depth is bounded, every string is
 * checked to be valid UTF-8, \u escapes (with surrogate pairs) are decoded, and
 * errors name the line and column.
 */
#ifndef QRM_JSON_H
#define QRM_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { QJ_NULL, QJ_FALSE, QJ_TRUE, QJ_NUMBER, QJ_STRING, QJ_ARRAY, QJ_OBJECT } qj_type;

typedef struct qj_value qj_value;
typedef struct qj_member qj_member;

struct qj_value {
    qj_type type;
    uint32_t len;              /* string: bytes (may contain NUL); array/object: count */
    union {
        double num;            /* QJ_NUMBER */
        const char *str;       /* QJ_STRING: decoded UTF-8, NUL-terminated as well */
        qj_value *items;       /* QJ_ARRAY */
        qj_member *members;    /* QJ_OBJECT, in document order */
    } u;
    int is_int;                /* QJ_NUMBER written without fraction/exponent */
};

struct qj_member {
    const char *key;           /* decoded, NUL-terminated */
    uint32_t key_len;
    qj_value value;
};

typedef struct qj_doc qj_doc;

/* Parses text[0..len). On error returns NULL and writes a one-line message
 * ("line 3, column 14: expected ':' after object key") into err. Columns
 * count code points from 1. A leading UTF-8 byte order mark is ignored. Nesting
 * deeper than 512 arrays/objects is an error. */
qj_doc *qj_parse(const char *text, size_t len, char *err, size_t errlen);
const qj_value *qj_root(const qj_doc *d);
void qj_free(qj_doc *d);

/* Lookups return NULL when absent or of another type. Duplicate keys: the last wins. */
const qj_value *qj_get(const qj_value *obj, const char *key);
/* QJ_TRUE or QJ_FALSE as t matches either boolean. */
const qj_value *qj_get_type(const qj_value *obj, const char *key, qj_type t);
const char *qj_get_str(const qj_value *obj, const char *key);      /* NULL if not a string */
/* 1 and *out set when key holds a number, else 0. */
int qj_get_num(const qj_value *obj, const char *key, double *out);
/* 1 when key holds an integer that fits int64 exactly (see qj_number_to_int). */
int qj_get_int(const qj_value *obj, const char *key, int64_t *out);
/* 1/0 for true/false, dflt when absent or not a boolean. */
int qj_get_bool(const qj_value *obj, const char *key, int dflt);

/* Like qj_get for a key of key_len bytes (which may contain NUL). */
const qj_value *qj_get_n(const qj_value *obj, const char *key, size_t key_len);
/* 1 and *out set when v is a number with an integral value below 2^53 in
 * magnitude (so exactly the value written in the text), else 0. qj_get_int
 * applies the same rule. */
int qj_number_to_int(const qj_value *v, int64_t *out);
/* "null", "boolean", "number", "string", "array" or "object", for messages. */
const char *qj_type_name(qj_type t);

/* Writer: appends to a growable buffer. Start from a zeroed qj_buf; buf is
 * kept NUL-terminated once anything was written. */
typedef struct {
    char *buf;
    size_t len, cap;
    int oom;                   /* set when an allocation failed; content then truncated */
} qj_buf;

void qj_buf_put(qj_buf *b, const char *s, size_t n);
void qj_buf_puts(qj_buf *b, const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void qj_buf_printf(qj_buf *b, const char *fmt, ...);
/* Writes s as a JSON string literal with quotes; non-ASCII kept as UTF-8
 * (like Python json.dumps(ensure_ascii=False)). Invalid UTF-8 bytes in s are
 * written as U+FFFD so the output stays valid JSON. */
void qj_buf_put_string(qj_buf *b, const char *s, size_t n);
/* Writes a value back as compact JSON (for echoing fields). */
void qj_buf_put_value(qj_buf *b, const qj_value *v);
void qj_buf_free(qj_buf *b);

#endif
