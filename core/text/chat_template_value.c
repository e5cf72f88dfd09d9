/* Chat templates: the arena, template values and the Python semantics of
 * values that do not depend on the evaluator: truthiness, ==, ordering,
 * str(), repr(), json.dumps(), iteration and len(). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template_internal.h"

/* ---------------------------------------------------------------- arena */

struct ct_block {
    ct_block *next;
    size_t size, used;
    size_t last;                    /* offset of the most recent allocation */
    _Alignas(16) unsigned char data[];
};

#define CT_BLOCK_SIZE (64u << 10)

void *qrm_ct_arena_alloc(ct_arena *a, size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n) return NULL;
    ct_block *b = a->head;
    if (!b || b->size - b->used < need) {
        size_t size = need > CT_BLOCK_SIZE ? need : CT_BLOCK_SIZE;
        if (size > a->cap || a->total > a->cap - size) return NULL;
        b = malloc(sizeof(ct_block) + size);
        if (!b) {
            a->oom = 1;
            return NULL;
        }
        b->size = size;
        b->used = 0;
        b->last = 0;
        b->next = a->head;
        a->head = b;
        a->total += size;
    }
    void *p = b->data + b->used;
    b->last = b->used;
    b->used += need;
    return p;
}

void *qrm_ct_arena_grow(ct_arena *a, void *p, size_t old, size_t n) {
    ct_block *b = a->head;
    if (p && b && (unsigned char *)p == b->data + b->last) {
        size_t need = (n + 15) & ~(size_t)15;
        if (need >= n && b->size - b->last >= need) {
            b->used = b->last + need;
            return p;
        }
    }
    void *q = qrm_ct_arena_alloc(a, n);
    if (q && p && old) memcpy(q, p, old < n ? old : n);
    return q;
}

void qrm_ct_arena_free(ct_arena *a) {
    ct_block *b = a->head;
    while (b) {
        ct_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *qrm_ct_alloc(ct_render *r, size_t n) {
    void *p = qrm_ct_arena_alloc(&r->arena, n ? n : 1);
    if (!p) qrm_ct_fail(r, "out of memory (the render limit is %u MiB)", QRM_TEMPLATE_MAX_MEMORY >> 20);
    return p;
}

/* ---------------------------------------------------------------- constructors */

ct_value qrm_ct_undef(const char *msg) {
    ct_value v = {.type = CT_UNDEF};
    v.u.s.p = msg ? msg : "undefined value";
    v.u.s.n = strlen(v.u.s.p);
    return v;
}

void qrm_ct_fail_undef(ct_render *r, ct_value v) {
    qrm_ct_fail(r, "%.*s", (int)v.u.s.n, v.u.s.p);
}
ct_value qrm_ct_none(void) { return (ct_value){.type = CT_NONE}; }
ct_value qrm_ct_bool(int b) {
    ct_value v = {.type = CT_BOOL};
    v.u.b = b != 0;
    return v;
}
ct_value qrm_ct_int(int64_t i) {
    ct_value v = {.type = CT_INT};
    v.u.i = i;
    return v;
}
ct_value qrm_ct_float(double f) {
    ct_value v = {.type = CT_FLOAT};
    v.u.f = f;
    return v;
}
ct_value qrm_ct_str(const char *p, size_t n) {
    ct_value v = {.type = CT_STR};
    v.u.s.p = p ? p : "";
    v.u.s.n = n;
    return v;
}
ct_value qrm_ct_str_copy(ct_render *r, const char *p, size_t n) {
    if (n > QRM_TEMPLATE_MAX_OUTPUT)
        qrm_ct_fail(r, "string longer than %u MiB", QRM_TEMPLATE_MAX_OUTPUT >> 20);
    char *q = qrm_ct_alloc(r, n + 1);
    if (n) memcpy(q, p, n);
    q[n] = 0;
    return qrm_ct_str(q, n);
}

ct_value qrm_ct_list_new(ct_render *r, size_t n, int kind) {
    if (n > (QRM_TEMPLATE_MAX_MEMORY / sizeof(ct_value)))
        qrm_ct_fail(r, "list of %zu items is too long", n);
    ct_list *l = qrm_ct_alloc(r, sizeof *l);
    memset(l, 0, sizeof *l);
    l->items = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    for (size_t i = 0; i < n; i++) l->items[i] = qrm_ct_none();
    l->n = n;
    l->kind = kind;
    ct_value v = {.type = CT_LIST};
    v.u.list = l;
    return v;
}

ct_value qrm_ct_iter_new(ct_render *r, ct_value *items, size_t n, const char *what) {
    ct_iter *it = qrm_ct_alloc(r, sizeof *it);
    it->items = items;
    it->n = n;
    it->pos = 0;
    it->what = what;
    ct_value v = {.type = CT_ITER};
    v.u.iter = it;
    return v;
}

ct_value qrm_ct_dict_new(ct_render *r) {
    ct_dict *d = qrm_ct_alloc(r, sizeof *d);
    memset(d, 0, sizeof *d);
    ct_value v = {.type = CT_DICT};
    v.u.dict = d;
    return v;
}

ct_value *qrm_ct_dict_find(ct_render *r, ct_dict *d, ct_value key) {
    for (size_t i = 0; i < d->n; i++)
        if (qrm_ct_equal(r, d->keys[i], key)) return &d->vals[i];
    return NULL;
}

ct_value *qrm_ct_dict_find_str(ct_dict *d, const char *s, size_t n) {
    for (size_t i = 0; i < d->n; i++) {
        ct_value k = d->keys[i];
        if (k.type == CT_STR && k.u.s.n == n && memcmp(k.u.s.p, s, n) == 0) return &d->vals[i];
    }
    return NULL;
}

void qrm_ct_dict_set(ct_render *r, ct_dict *d, ct_value key, ct_value val) {
    ct_value *slot = qrm_ct_dict_find(r, d, key);
    if (slot) {
        *slot = val;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        d->keys = qrm_ct_arena_grow(&r->arena, d->keys, d->n * sizeof(ct_value), cap * sizeof(ct_value));
        if (!d->keys) qrm_ct_fail(r, "out of memory");
        d->vals = qrm_ct_arena_grow(&r->arena, d->vals, d->n * sizeof(ct_value), cap * sizeof(ct_value));
        if (!d->vals) qrm_ct_fail(r, "out of memory");
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
}

/* JSON as Python's json.loads gives it: integers stay int (when they fit
 * int64), objects keep document order, a repeated key keeps its first
 * position and its last value. Strings are shared with the JSON document. */
ct_value qrm_ct_from_json(ct_render *r, const qj_value *j) {
    switch (j->type) {
    case QJ_NULL: return qrm_ct_none();
    case QJ_FALSE: return qrm_ct_bool(0);
    case QJ_TRUE: return qrm_ct_bool(1);
    case QJ_NUMBER:
        if (j->is_int && j->u.num >= -9223372036854775808.0 && j->u.num < 9223372036854775808.0 &&
            j->u.num == floor(j->u.num))
            return qrm_ct_int((int64_t)j->u.num);
        return qrm_ct_float(j->u.num);
    case QJ_STRING: return qrm_ct_str(j->u.str, j->len);
    case QJ_ARRAY: {
        ct_value v = qrm_ct_list_new(r, j->len, CT_LK_LIST);
        for (uint32_t i = 0; i < j->len; i++) v.u.list->items[i] = qrm_ct_from_json(r, &j->u.items[i]);
        return v;
    }
    case QJ_OBJECT: {
        ct_value v = qrm_ct_dict_new(r);
        for (uint32_t i = 0; i < j->len; i++) {
            const qj_member *m = &j->u.members[i];
            qrm_ct_dict_set(r, v.u.dict, qrm_ct_str(m->key, m->key_len), qrm_ct_from_json(r, &m->value));
        }
        return v;
    }
    }
    return qrm_ct_none();
}

/* ---------------------------------------------------------------- string buffers */

void qrm_ct_sb_put(ct_render *r, ct_sbuf *b, const char *s, size_t n) {
    if (n == 0) return;
    if (n >= 64) qrm_ct_charge(r, n);
    if (n > QRM_TEMPLATE_MAX_OUTPUT || b->n > QRM_TEMPLATE_MAX_OUTPUT - n)
        qrm_ct_fail(r, "output longer than %u MiB", QRM_TEMPLATE_MAX_OUTPUT >> 20);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = qrm_ct_arena_grow(&r->arena, b->p, b->n, cap);
        if (!p) qrm_ct_fail(r, "out of memory (the render limit is %u MiB)", QRM_TEMPLATE_MAX_MEMORY >> 20);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void qrm_ct_sb_puts(ct_render *r, ct_sbuf *b, const char *s) { qrm_ct_sb_put(r, b, s, strlen(s)); }
void qrm_ct_sb_putc(ct_render *r, ct_sbuf *b, char ch) { qrm_ct_sb_put(r, b, &ch, 1); }

void qrm_ct_sb_put_cp(ct_render *r, ct_sbuf *b, uint32_t cp) {
    char tmp[4];
    int n;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        tmp[0] = (char)(0xF0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    qrm_ct_sb_put(r, b, tmp, (size_t)n);
}

void qrm_ct_sb_printf(ct_render *r, ct_sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    qrm_ct_sb_put(r, b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

ct_value qrm_ct_sb_value(ct_sbuf *b) { return qrm_ct_str(b->p ? b->p : "", b->n); }

/* ---------------------------------------------------------------- basic semantics */

const char *qrm_ct_type_name(ct_value v) {
    switch (v.type) {
    case CT_ABSENT:
    case CT_UNDEF: return "Undefined";
    case CT_NONE: return "NoneType";
    case CT_BOOL: return "bool";
    case CT_INT: return "int";
    case CT_FLOAT: return "float";
    case CT_STR: return v.markup ? "Markup" : "str";
    case CT_LIST:
        switch (v.u.list->kind) {
        case CT_LK_TUPLE: return "tuple";
        case CT_LK_RANGE: return "range";
        case CT_LK_ITEMS: return "dict_items";
        case CT_LK_KEYS: return "dict_keys";
        case CT_LK_VALUES: return "dict_values";
        default: return "list";
        }
    case CT_DICT: return "dict";
    case CT_ITER: return v.u.iter->what;
    case CT_NS: return "Namespace";
    case CT_LOOP: return "LoopContext";
    case CT_MACRO: return "Macro";
    case CT_FUNC: return "function";
    case CT_METHOD: return "builtin_function_or_method";
    }
    return "object";
}

int qrm_ct_is_number(ct_value v) { return v.type == CT_BOOL || v.type == CT_INT || v.type == CT_FLOAT; }

double qrm_ct_as_double(ct_value v) {
    if (v.type == CT_FLOAT) return v.u.f;
    if (v.type == CT_INT) return (double)v.u.i;
    if (v.type == CT_BOOL) return v.u.b;
    return 0;
}

int qrm_ct_truthy(ct_render *r, ct_value v) {
    (void)r;
    switch (v.type) {
    case CT_ABSENT:
    case CT_UNDEF:
    case CT_NONE: return 0;
    case CT_BOOL: return v.u.b;
    case CT_INT: return v.u.i != 0;
    case CT_FLOAT: return v.u.f != 0;
    case CT_STR: return v.u.s.n != 0;
    case CT_LIST: return v.u.list->n != 0;
    case CT_DICT: return v.u.dict->n != 0;
    default: return 1; /* iterators, namespaces, functions: objects are true */
    }
}

static int int_key(ct_value v, int64_t *out) {
    if (v.type == CT_INT) return *out = v.u.i, 1;
    if (v.type == CT_BOOL) return *out = v.u.b, 1;
    return 0;
}

/* Python ==, recursive over containers: depth is bounded because templates
 * can build deeply nested lists in a loop. */
static int equal_depth(ct_render *r, ct_value a, ct_value b, int depth);

int qrm_ct_equal(ct_render *r, ct_value a, ct_value b) { return equal_depth(r, a, b, 0); }

static int equal_depth(ct_render *r, ct_value a, ct_value b, int depth) {
    /* Python compares items with an identity shortcut */
    if (a.type == b.type && ((a.type == CT_LIST && a.u.list == b.u.list) || (a.type == CT_DICT && a.u.dict == b.u.dict)))
        return 1;
    if (depth > QRM_TEMPLATE_MAX_NESTING) qrm_ct_fail(r, "values nested too deeply to compare");
    if (qrm_ct_is_number(a) && qrm_ct_is_number(b)) {
        int64_t x, y;
        if (int_key(a, &x) && int_key(b, &y)) return x == y;
        return qrm_ct_as_double(a) == qrm_ct_as_double(b);
    }
    if ((a.type == CT_UNDEF || a.type == CT_ABSENT) && (b.type == CT_UNDEF || b.type == CT_ABSENT))
        return 1;
    if (a.type != b.type) return 0;
    switch (a.type) {
    case CT_NONE: return 1;
    case CT_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case CT_LIST: {
        ct_list *x = a.u.list, *y = b.u.list;
        /* list == tuple is False in Python; views compare like their kind */
        int kx = x->kind == CT_LK_TUPLE, ky = y->kind == CT_LK_TUPLE;
        if (kx != ky || x->kind == CT_LK_VALUES || y->kind == CT_LK_VALUES) return x == y;
        if (x->n != y->n) return 0;
        for (size_t i = 0; i < x->n; i++)
            if (!equal_depth(r, x->items[i], y->items[i], depth + 1)) return 0;
        return 1;
    }
    case CT_DICT: {
        ct_dict *x = a.u.dict, *y = b.u.dict;
        if (x->n != y->n) return 0;
        for (size_t i = 0; i < x->n; i++) {
            ct_value *o = qrm_ct_dict_find(r, y, x->keys[i]);
            if (!o || !equal_depth(r, x->vals[i], *o, depth + 1)) return 0;
        }
        return 1;
    }
    case CT_NS: return a.u.dict == b.u.dict;
    case CT_ITER: return a.u.iter == b.u.iter;
    case CT_LOOP: return a.u.loop == b.u.loop;
    case CT_MACRO: return a.u.macro == b.u.macro;
    case CT_FUNC: return a.u.i == b.u.i;
    case CT_METHOD: return a.u.method == b.u.method;
    default: return 0;
    }
}

static int compare_depth(ct_render *r, ct_value a, ct_value b, int depth);

int qrm_ct_compare(ct_render *r, ct_value a, ct_value b) { return compare_depth(r, a, b, 0); }

static int compare_depth(ct_render *r, ct_value a, ct_value b, int depth) {
    if (depth > QRM_TEMPLATE_MAX_NESTING) qrm_ct_fail(r, "values nested too deeply to compare");
    if (qrm_ct_is_number(a) && qrm_ct_is_number(b)) {
        int64_t x, y;
        if (int_key(a, &x) && int_key(b, &y)) return (x > y) - (x < y);
        double p = qrm_ct_as_double(a), q = qrm_ct_as_double(b);
        return (p > q) - (p < q);  /* NaN compares as equal: never raises */
    }
    if (a.type == CT_STR && b.type == CT_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0; /* UTF-8 byte order = code point order */
        if (c) return c;
        return (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
    }
    if (a.type == CT_LIST && b.type == CT_LIST &&
        (a.u.list->kind == CT_LK_TUPLE) == (b.u.list->kind == CT_LK_TUPLE) &&
        (a.u.list->kind == CT_LK_LIST || a.u.list->kind == CT_LK_TUPLE) &&
        (b.u.list->kind == CT_LK_LIST || b.u.list->kind == CT_LK_TUPLE)) {
        ct_list *x = a.u.list, *y = b.u.list;
        size_t n = x->n < y->n ? x->n : y->n;
        for (size_t i = 0; i < n; i++) {
            if (equal_depth(r, x->items[i], y->items[i], depth + 1)) continue;
            return compare_depth(r, x->items[i], y->items[i], depth + 1);
        }
        return (x->n > y->n) - (x->n < y->n);
    }
    if (a.type == CT_UNDEF) qrm_ct_fail_undef(r, a);
    if (b.type == CT_UNDEF) qrm_ct_fail_undef(r, b);
    qrm_ct_fail(r, "'<' not supported between instances of '%s' and '%s'", qrm_ct_type_name(a),
                qrm_ct_type_name(b));
}

/* ---------------------------------------------------------------- str() and repr() */

/* repr(float): the shortest string that reads back to the same double,
 * in Python's layout (1e+16, 1e-05, 0.0001, 100.0). */
void qrm_ct_format_float(double f, char *out, size_t outlen) {
    if (isnan(f)) {
        snprintf(out, outlen, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, outlen, f < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp: [-]d[.ddd]e[+-]xx */
    char digits[24];
    int nd = 0, neg = 0;
    const char *p = tmp;
    if (*p == '-') neg = 1, p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char *o = out, *end = out + outlen - 1;
#define PUT(ch) do { if (o < end) *o++ = (ch); } while (0)
    if (neg) PUT('-');
    if (exp10 >= 16 || exp10 < -4) {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (int i = 1; i < nd; i++) PUT(digits[i]);
        }
        char e[16];
        snprintf(e, sizeof e, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        for (char *q = e; *q; q++) PUT(*q);
    } else if (exp10 < 0) {
        PUT('0');
        PUT('.');
        for (int i = -1; i > exp10; i--) PUT('0');
        for (int i = 0; i < nd; i++) PUT(digits[i]);
    } else {
        for (int i = 0; i <= exp10; i++) PUT(i < nd ? digits[i] : '0');
        PUT('.');
        if (nd > exp10 + 1)
            for (int i = exp10 + 1; i < nd; i++) PUT(digits[i]);
        else
            PUT('0');
    }
#undef PUT
    *o = 0;
}

/* Characters repr() escapes beyond ASCII: str.isprintable() is false for
 * categories Cc, Cf, Co, Cs, Zl, Zp, Zs (except space) and unassigned ones.
 * Unassigned code points inside otherwise assigned blocks are not listed. */
static int repr_escapes(uint32_t cp) {
    static const uint32_t ranges[][2] = {
        {0x80, 0xA0}, {0xAD, 0xAD}, {0x600, 0x605}, {0x61C, 0x61C}, {0x6DD, 0x6DD},
        {0x70F, 0x70F}, {0x890, 0x891}, {0x8E2, 0x8E2}, {0x1680, 0x1680}, {0x180E, 0x180E},
        {0x2000, 0x200F}, {0x2028, 0x202F}, {0x205F, 0x2064}, {0x2066, 0x206F},
        {0x3000, 0x3000}, {0xD800, 0xF8FF}, {0xFDD0, 0xFDEF}, {0xFEFF, 0xFEFF},
        {0xFFF0, 0xFFFB}, {0xFFFE, 0xFFFF}, {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
        {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0x40000, 0xDFFFF},
        {0xE0000, 0xE00FF}, {0xE01F0, 0x10FFFF},
    };
    if ((cp & 0xFFFE) == 0xFFFE) return 1;
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1]) {
            /* E0020-E007F are Cf tags; E0001 too; the rest of E0000-E00FF is unassigned */
            return 1;
        }
    return 0;
}

static void put_str_repr(ct_render *r, ct_sbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    qrm_ct_sb_putc(r, b, q);
    size_t i = 0;
    while (i < n) {
        size_t at = i;
        uint32_t cp = qrm_ct_next_cp(s, n, &i);
        if (cp == (uint32_t)q || cp == '\\') {
            qrm_ct_sb_putc(r, b, '\\');
            qrm_ct_sb_putc(r, b, (char)cp);
        } else if (cp == '\n') qrm_ct_sb_puts(r, b, "\\n");
        else if (cp == '\r') qrm_ct_sb_puts(r, b, "\\r");
        else if (cp == '\t') qrm_ct_sb_puts(r, b, "\\t");
        else if (cp < 0x20 || cp == 0x7F) qrm_ct_sb_printf(r, b, "\\x%02x", cp);
        else if (cp < 0x7F) qrm_ct_sb_putc(r, b, (char)cp);
        else if (repr_escapes(cp)) {
            if (cp <= 0xFF) qrm_ct_sb_printf(r, b, "\\x%02x", cp);
            else if (cp <= 0xFFFF) qrm_ct_sb_printf(r, b, "\\u%04x", cp);
            else qrm_ct_sb_printf(r, b, "\\U%08x", cp);
        } else qrm_ct_sb_put(r, b, s + at, i - at);
    }
    qrm_ct_sb_putc(r, b, q);
}

static void put_repr_depth(ct_render *r, ct_sbuf *b, ct_value v, int depth);

static void put_items_repr(ct_render *r, ct_sbuf *b, ct_value *items, size_t n, int depth) {
    for (size_t i = 0; i < n; i++) {
        if (i) qrm_ct_sb_puts(r, b, ", ");
        put_repr_depth(r, b, items[i], depth + 1);
    }
}

static void put_dict_repr(ct_render *r, ct_sbuf *b, ct_dict *d, int depth) {
    qrm_ct_sb_putc(r, b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) qrm_ct_sb_puts(r, b, ", ");
        put_repr_depth(r, b, d->keys[i], depth + 1);
        qrm_ct_sb_puts(r, b, ": ");
        put_repr_depth(r, b, d->vals[i], depth + 1);
    }
    qrm_ct_sb_putc(r, b, '}');
}

static void put_repr_depth(ct_render *r, ct_sbuf *b, ct_value v, int depth) {
    if (depth > QRM_TEMPLATE_MAX_NESTING) qrm_ct_fail(r, "value nested too deeply to print");
    switch (v.type) {
    case CT_STR:
        if (v.markup) {
            qrm_ct_sb_puts(r, b, "Markup(");
            put_str_repr(r, b, v.u.s.p, v.u.s.n);
            qrm_ct_sb_putc(r, b, ')');
        } else {
            put_str_repr(r, b, v.u.s.p, v.u.s.n);
        }
        return;
    case CT_LIST: {
        ct_list *l = v.u.list;
        switch (l->kind) {
        case CT_LK_TUPLE:
            qrm_ct_sb_putc(r, b, '(');
            put_items_repr(r, b, l->items, l->n, depth);
            if (l->n == 1) qrm_ct_sb_putc(r, b, ',');
            qrm_ct_sb_putc(r, b, ')');
            return;
        case CT_LK_RANGE:
            if (l->step == 1) qrm_ct_sb_printf(r, b, "range(%lld, %lld)", (long long)l->start, (long long)l->stop);
            else qrm_ct_sb_printf(r, b, "range(%lld, %lld, %lld)", (long long)l->start, (long long)l->stop, (long long)l->step);
            return;
        case CT_LK_ITEMS:
        case CT_LK_KEYS:
        case CT_LK_VALUES:
            qrm_ct_sb_puts(r, b, qrm_ct_type_name(v));
            qrm_ct_sb_puts(r, b, "([");
            put_items_repr(r, b, l->items, l->n, depth);
            qrm_ct_sb_puts(r, b, "])");
            return;
        default:
            qrm_ct_sb_putc(r, b, '[');
            put_items_repr(r, b, l->items, l->n, depth);
            qrm_ct_sb_putc(r, b, ']');
            return;
        }
    }
    case CT_DICT: put_dict_repr(r, b, v.u.dict, depth); return;
    case CT_NS:
        qrm_ct_sb_puts(r, b, "<Namespace ");
        put_dict_repr(r, b, v.u.dict, depth);
        qrm_ct_sb_putc(r, b, '>');
        return;
    case CT_UNDEF:
    case CT_ABSENT: qrm_ct_sb_puts(r, b, "Undefined"); return;
    case CT_NONE:
    case CT_BOOL:
    case CT_INT:
    case CT_FLOAT: qrm_ct_put_str(r, b, v); return;
    default:
        /* Python prints a memory address here: there is no exact answer */
        qrm_ct_fail(r, "cannot print a %s object (Python would print its address)", qrm_ct_type_name(v));
    }
}

void qrm_ct_put_repr(ct_render *r, ct_sbuf *b, ct_value v) { put_repr_depth(r, b, v, 0); }

void qrm_ct_put_str(ct_render *r, ct_sbuf *b, ct_value v) {
    char tmp[40];
    switch (v.type) {
    case CT_UNDEF:
    case CT_ABSENT: return;
    case CT_NONE: qrm_ct_sb_puts(r, b, "None"); return;
    case CT_BOOL: qrm_ct_sb_puts(r, b, v.u.b ? "True" : "False"); return;
    case CT_INT: qrm_ct_sb_printf(r, b, "%lld", (long long)v.u.i); return;
    case CT_FLOAT:
        qrm_ct_format_float(v.u.f, tmp, sizeof tmp);
        qrm_ct_sb_puts(r, b, tmp);
        return;
    case CT_STR: qrm_ct_sb_put(r, b, v.u.s.p, v.u.s.n); return;
    default: qrm_ct_put_repr(r, b, v); return;
    }
}

ct_value qrm_ct_to_str(ct_render *r, ct_value v) {
    if (v.type == CT_STR) {
        v.markup = 0;
        return v;
    }
    ct_sbuf b = {0};
    qrm_ct_put_str(r, &b, v);
    return qrm_ct_sb_value(&b);
}

/* ---------------------------------------------------------------- json.dumps */

static void put_json_string(ct_render *r, ct_sbuf *b, const char *s, size_t n, int ensure_ascii) {
    qrm_ct_sb_putc(r, b, '"');
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[16];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80 && ensure_ascii) {
            size_t j = i;
            uint32_t cp = qrm_ct_next_cp(s, n, &j);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
            }
            qrm_ct_sb_put(r, b, s + run, i - run);
            qrm_ct_sb_puts(r, b, tmp);
            i = run = j;
            continue;
        }
        if (esc) {
            qrm_ct_sb_put(r, b, s + run, i - run);
            qrm_ct_sb_puts(r, b, esc);
            run = i + 1;
        }
        i++;
    }
    qrm_ct_sb_put(r, b, s + run, n - run);
    qrm_ct_sb_putc(r, b, '"');
}

static void put_json_float(ct_render *r, ct_sbuf *b, double f) {
    if (isnan(f)) qrm_ct_sb_puts(r, b, "NaN");
    else if (isinf(f)) qrm_ct_sb_puts(r, b, f < 0 ? "-Infinity" : "Infinity");
    else {
        char tmp[40];
        qrm_ct_format_float(f, tmp, sizeof tmp);
        qrm_ct_sb_puts(r, b, tmp);
    }
}

static void json_newline(ct_render *r, ct_sbuf *b, const ct_json_opts *o, int level) {
    qrm_ct_sb_putc(r, b, '\n');
    for (int i = 0; i < level; i++) qrm_ct_sb_puts(r, b, o->indent_str);
}

/* json.dumps converts simple keys to strings and rejects the rest. */
static void put_json_key(ct_render *r, ct_sbuf *b, ct_value k, const ct_json_opts *o) {
    char tmp[40];
    switch (k.type) {
    case CT_STR: put_json_string(r, b, k.u.s.p, k.u.s.n, o->ensure_ascii); return;
    case CT_NONE: qrm_ct_sb_puts(r, b, "\"null\""); return;
    case CT_BOOL: qrm_ct_sb_puts(r, b, k.u.b ? "\"true\"" : "\"false\""); return;
    case CT_INT: qrm_ct_sb_printf(r, b, "\"%lld\"", (long long)k.u.i); return;
    case CT_FLOAT:
        if (isnan(k.u.f)) snprintf(tmp, sizeof tmp, "NaN");
        else if (isinf(k.u.f)) snprintf(tmp, sizeof tmp, "%s", k.u.f < 0 ? "-Infinity" : "Infinity");
        else qrm_ct_format_float(k.u.f, tmp, sizeof tmp);
        qrm_ct_sb_printf(r, b, "\"%s\"", tmp);
        return;
    default:
        qrm_ct_fail(r, "tojson: keys must be str, int, float, bool or None, not %s", qrm_ct_type_name(k));
    }
}

static void put_json_depth(ct_render *r, ct_sbuf *b, ct_value v, const ct_json_opts *o, int level);

static void put_json_dict(ct_render *r, ct_sbuf *b, ct_dict *d, const ct_json_opts *o, int level) {
    if (d->n == 0) {
        qrm_ct_sb_puts(r, b, "{}");
        return;
    }
    size_t *order = qrm_ct_alloc(r, d->n * sizeof(size_t));
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    if (o->sort_keys) { /* insertion sort: stable, and dicts here are small */
        for (size_t i = 1; i < d->n; i++) {
            size_t x = order[i], j = i;
            while (j > 0 && qrm_ct_compare(r, d->keys[order[j - 1]], d->keys[x]) > 0) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = x;
        }
    }
    qrm_ct_sb_putc(r, b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) qrm_ct_sb_puts(r, b, o->item_sep);
        if (o->indent >= 0) json_newline(r, b, o, level + 1);
        put_json_key(r, b, d->keys[order[i]], o);
        qrm_ct_sb_puts(r, b, o->key_sep);
        put_json_depth(r, b, d->vals[order[i]], o, level + 1);
    }
    if (o->indent >= 0) json_newline(r, b, o, level);
    qrm_ct_sb_putc(r, b, '}');
}

static void put_json_depth(ct_render *r, ct_sbuf *b, ct_value v, const ct_json_opts *o, int level) {
    if (level > QRM_TEMPLATE_MAX_NESTING) qrm_ct_fail(r, "tojson: value nested too deeply");
    qrm_ct_step(r);
    switch (v.type) {
    case CT_NONE: qrm_ct_sb_puts(r, b, "null"); return;
    case CT_BOOL: qrm_ct_sb_puts(r, b, v.u.b ? "true" : "false"); return;
    case CT_INT: qrm_ct_sb_printf(r, b, "%lld", (long long)v.u.i); return;
    case CT_FLOAT: put_json_float(r, b, v.u.f); return;
    case CT_STR: put_json_string(r, b, v.u.s.p, v.u.s.n, o->ensure_ascii); return;
    case CT_LIST:
        if (v.u.list->kind == CT_LK_LIST || v.u.list->kind == CT_LK_TUPLE) {
            ct_list *l = v.u.list;
            if (l->n == 0) {
                qrm_ct_sb_puts(r, b, "[]");
                return;
            }
            qrm_ct_sb_putc(r, b, '[');
            for (size_t i = 0; i < l->n; i++) {
                if (i) qrm_ct_sb_puts(r, b, o->item_sep);
                if (o->indent >= 0) json_newline(r, b, o, level + 1);
                put_json_depth(r, b, l->items[i], o, level + 1);
            }
            if (o->indent >= 0) json_newline(r, b, o, level);
            qrm_ct_sb_putc(r, b, ']');
            return;
        }
        break;
    case CT_DICT: put_json_dict(r, b, v.u.dict, o, level); return;
    case CT_UNDEF: qrm_ct_fail_undef(r, v);
    default: break;
    }
    qrm_ct_fail(r, "tojson: Object of type %s is not JSON serializable", qrm_ct_type_name(v));
}

void qrm_ct_put_json(ct_render *r, ct_sbuf *b, ct_value v, const ct_json_opts *o) {
    put_json_depth(r, b, v, o, 0);
}

/* ---------------------------------------------------------------- iteration */

ct_value *qrm_ct_iterate(ct_render *r, ct_value v, size_t *n) {
    static ct_value none_at_all[1]; /* never written: n is 0 */
    switch (v.type) {
    case CT_UNDEF:
    case CT_ABSENT: *n = 0; return none_at_all;
    case CT_LIST: *n = v.u.list->n; return v.u.list->items;
    case CT_DICT: *n = v.u.dict->n; return v.u.dict->keys;
    case CT_ITER: {
        ct_iter *it = v.u.iter;
        if (!it->items) {
            *n = 0;
            return none_at_all;
        }
        ct_value *items = it->items + it->pos;
        *n = it->n - it->pos;
        it->pos = it->n; /* a generator is spent once iterated */
        return items;
    }
    case CT_STR: {
        qrm_ct_charge(r, v.u.s.n * 16); /* a value per character */
        size_t count = qrm_ct_cp_count(v.u.s.p, v.u.s.n), i = 0, k = 0;
        ct_value *items = qrm_ct_alloc(r, (count ? count : 1) * sizeof(ct_value));
        while (i < v.u.s.n) {
            size_t at = i;
            qrm_ct_next_cp(v.u.s.p, v.u.s.n, &i);
            items[k++] = qrm_ct_str(v.u.s.p + at, i - at);
        }
        *n = count;
        return items;
    }
    default: qrm_ct_fail(r, "'%s' object is not iterable", qrm_ct_type_name(v));
    }
}

size_t qrm_ct_length(ct_render *r, ct_value v) {
    switch (v.type) {
    case CT_UNDEF:
    case CT_ABSENT: return 0;
    case CT_STR: qrm_ct_charge(r, v.u.s.n); return qrm_ct_cp_count(v.u.s.p, v.u.s.n);
    case CT_LIST: return v.u.list->n;
    case CT_DICT: return v.u.dict->n;
    default: qrm_ct_fail(r, "object of type '%s' has no len()", qrm_ct_type_name(v));
    }
}
