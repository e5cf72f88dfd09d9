/* Chat templates: Jinja2's built-in filters and tests, with transformers'
 * `tojson` (json.dumps with ensure_ascii=False, no HTML escaping). Filters
 * Jinja2 has but this module does not implement (groupby, wordwrap, xmlattr,
 * ...) are an error when a template uses them. Filters that return Python
 * generators (map, select, unique, items, reverse, ...) return one-pass
 * iterators here too, so `|length` on them fails as it does in Python. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template_internal.h"
#include "unicode.h"

typedef ct_value (*filter_fn)(ct_render *r, ct_value v, ct_args *a);
typedef int (*test_fn)(ct_render *r, ct_value v, ct_args *a);

#define ABSENT(v) ((v).type == CT_ABSENT)

static ct_value soft_str(ct_render *r, ct_value v) {
    if (v.type == CT_STR) return v;
    return qrm_ct_to_str(r, v);
}

static int64_t want_int(ct_render *r, ct_value v, const char *what) {
    if (v.type == CT_INT) return v.u.i;
    if (v.type == CT_BOOL) return v.u.b;
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    qrm_ct_fail(r, "%s: expected an integer, got %s", what, qrm_ct_type_name(v));
}

static ct_value want_str(ct_render *r, ct_value v, const char *what) {
    if (v.type == CT_STR) return v;
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    qrm_ct_fail(r, "%s: expected a string, got %s", what, qrm_ct_type_name(v));
}

static ct_value lowered(ct_render *r, ct_value v) {
    if (v.type != CT_STR) return v;
    ct_sbuf b = {0};
    qrm_ct_put_case(r, &b, v.u.s.p, v.u.s.n, CT_CASE_LOWER);
    return qrm_ct_sb_value(&b);
}

/* make_attrgetter: "a.b.0" looks up a, then b, then item 0, with getitem rules. */
static ct_value attr_path(ct_render *r, ct_value item, ct_value attribute, ct_value dflt) {
    if (ABSENT(attribute) || attribute.type == CT_NONE) return item;
    if (attribute.type != CT_STR) {
        item = qrm_ct_getitem(r, item, attribute);
        if (!ABSENT(dflt) && dflt.type != CT_NONE && item.type == CT_UNDEF) item = dflt;
        return item;
    }
    const char *p = attribute.u.s.p;
    size_t n = attribute.u.s.n, a = 0;
    for (;;) {
        size_t z = a;
        while (z < n && p[z] != '.') z++;
        int digits = z > a;
        for (size_t k = a; k < z; k++)
            if (p[k] < '0' || p[k] > '9') digits = 0;
        ct_value key;
        if (digits) {
            int64_t i;
            if (qrm_ct_parse_int(p + a, z - a, 10, &i) != 1) qrm_ct_fail(r, "attribute index too large");
            key = qrm_ct_int(i);
        } else {
            key = qrm_ct_str(p + a, z - a);
        }
        item = qrm_ct_getitem(r, item, key);
        if (!ABSENT(dflt) && dflt.type != CT_NONE && item.type == CT_UNDEF) item = dflt;
        if (z >= n) return item;
        a = z + 1;
    }
}

static ct_value *items_of(ct_render *r, ct_value v, size_t *n) {
    if (v.type == CT_NONE || v.type == CT_BOOL || v.type == CT_INT || v.type == CT_FLOAT)
        qrm_ct_fail(r, "'%s' object is not iterable", qrm_ct_type_name(v));
    return qrm_ct_iterate(r, v, n);
}

static ct_value list_of(ct_render *r, ct_value *items, size_t n, int kind) {
    ct_value l = qrm_ct_list_new(r, n, kind);
    if (n) memcpy(l.u.list->items, items, n * sizeof(ct_value));
    return l;
}

static ct_value *copy_items(ct_render *r, ct_value *items, size_t n) {
    ct_value *out = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    if (n) memcpy(out, items, n * sizeof(ct_value));
    return out;
}

/* Stable merge sort of items by keys (reverse keeps equal items in order, as
 * Python's sorted(reverse=True) does). */
static void sort_by_keys(ct_render *r, ct_value *items, ct_value *keys, size_t n, int reverse) {
    if (n < 2) return;
    ct_value *ti = qrm_ct_alloc(r, n * sizeof(ct_value)), *tk = qrm_ct_alloc(r, n * sizeof(ct_value));
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = qrm_ct_compare(r, keys[j], keys[i]);
                int take_right = reverse ? c > 0 : c < 0;
                if (take_right) ti[k] = items[j], tk[k++] = keys[j++];
                else ti[k] = items[i], tk[k++] = keys[i++];
            }
            while (i < mid) ti[k] = items[i], tk[k++] = keys[i++];
            while (j < hi) ti[k] = items[j], tk[k++] = keys[j++];
        }
        memcpy(items, ti, n * sizeof(ct_value));
        memcpy(keys, tk, n * sizeof(ct_value));
    }
}

/* ---------------------------------------------------------------- string filters */

static ct_value f_upper(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "upper", a, NULL, 0, NULL);
    v = soft_str(r, v);
    ct_sbuf b = {0};
    qrm_ct_put_case(r, &b, v.u.s.p, v.u.s.n, CT_CASE_UPPER);
    ct_value out = qrm_ct_sb_value(&b);
    out.markup = v.markup;
    return out;
}

static ct_value f_lower(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "lower", a, NULL, 0, NULL);
    v = soft_str(r, v);
    ct_value out = lowered(r, v);
    out.markup = v.markup;
    return out;
}

static ct_value f_capitalize(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "capitalize", a, NULL, 0, NULL);
    v = soft_str(r, v);
    ct_value out = qrm_ct_str_capitalize(r, v);
    out.markup = v.markup;
    return out;
}

/* Jinja's title: split before runs of [-\s({\[<]; each piece gets its first
 * character upper-cased and the rest lower-cased. */
static int title_sep(uint32_t cp) {
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || qrm_ct_py_isspace(cp);
}

static ct_value f_title(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "title", a, NULL, 0, NULL);
    v = soft_str(r, v);
    const char *p = v.u.s.p;
    size_t n = v.u.s.n, i = 0;
    ct_sbuf b = {0};
    while (i < n) {
        size_t at = i;
        uint32_t cp = qrm_ct_next_cp(p, n, &i);
        int sep = title_sep(cp);
        size_t z = i;
        while (z < n) { /* the piece: a run of separators or of other characters */
            size_t nx = z;
            if (title_sep(qrm_ct_next_cp(p, n, &nx)) != sep) break;
            z = nx;
        }
        qrm_ct_put_case(r, &b, p + at, i - at, CT_CASE_UPPER);
        qrm_ct_put_case(r, &b, p + i, z - i, CT_CASE_LOWER);
        i = z;
    }
    ct_value out = qrm_ct_sb_value(&b);
    out.markup = v.markup;
    return out;
}

static ct_value f_trim(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"chars"};
    ct_value x[1];
    qrm_ct_bind(r, "trim", a, p, 1, x);
    return qrm_ct_str_strip(r, soft_str(r, v), x[0], 1, 1);
}

static ct_value f_replace(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"old", "new", "count"};
    ct_value x[3];
    qrm_ct_bind(r, "replace", a, p, 3, x);
    if (ABSENT(x[0]) || ABSENT(x[1])) qrm_ct_fail(r, "replace() needs the old and new strings");
    int64_t count = ABSENT(x[2]) || x[2].type == CT_NONE ? -1 : want_int(r, x[2], "replace");
    return qrm_ct_str_replace(r, qrm_ct_to_str(r, v), qrm_ct_to_str(r, x[0]), qrm_ct_to_str(r, x[1]), count);
}

static ct_value f_string(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "string", a, NULL, 0, NULL);
    return soft_str(r, v);
}

static ct_value f_safe(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "safe", a, NULL, 0, NULL);
    ct_value s = soft_str(r, v);
    s.markup = 1;
    return s;
}

static ct_value f_escape(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "escape", a, NULL, 0, NULL);
    return qrm_ct_html_escape(r, v);
}

static ct_value f_forceescape(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "forceescape", a, NULL, 0, NULL);
    v = soft_str(r, v);
    v.markup = 0;
    return qrm_ct_html_escape(r, v);
}

static ct_value f_center(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"width"};
    ct_value x[1];
    qrm_ct_bind(r, "center", a, p, 1, x);
    int64_t width = ABSENT(x[0]) ? 80 : want_int(r, x[0], "center");
    v = soft_str(r, v);
    int64_t len = (int64_t)qrm_ct_cp_count(v.u.s.p, v.u.s.n);
    if (width <= len) return v;
    if (width > QRM_TEMPLATE_MAX_OUTPUT) qrm_ct_fail(r, "center: width too large");
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    ct_sbuf b = {0};
    for (int64_t i = 0; i < left; i++) qrm_ct_sb_putc(r, &b, ' ');
    qrm_ct_sb_put(r, &b, v.u.s.p, v.u.s.n);
    for (int64_t i = 0; i < marg - left; i++) qrm_ct_sb_putc(r, &b, ' ');
    return qrm_ct_sb_value(&b);
}

static ct_value f_indent(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"width", "first", "blank"};
    ct_value x[3];
    qrm_ct_bind(r, "indent", a, p, 3, x);
    ct_value ind;
    if (!ABSENT(x[0]) && x[0].type == CT_STR) {
        ind = x[0];
    } else {
        int64_t w = ABSENT(x[0]) ? 4 : want_int(r, x[0], "indent");
        if (w > 4096) qrm_ct_fail(r, "indent: width too large");
        ct_sbuf sp = {0};
        for (int64_t i = 0; i < w; i++) qrm_ct_sb_putc(r, &sp, ' ');
        ind = qrm_ct_sb_value(&sp);
    }
    int first = !ABSENT(x[1]) && qrm_ct_truthy(r, x[1]);
    int blank = !ABSENT(x[2]) && qrm_ct_truthy(r, x[2]);
    /* Jinja appends "\n" to the value itself: only strings survive that */
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    if (v.type != CT_STR) qrm_ct_fail(r, "indent: unsupported operand type(s) for +=: '%s' and 'str'", qrm_ct_type_name(v));
    ct_sbuf t = {0}; /* s += "\n", then splitlines() */
    qrm_ct_sb_put(r, &t, v.u.s.p, v.u.s.n);
    qrm_ct_sb_putc(r, &t, '\n');
    ct_value lines = qrm_ct_str_splitlines(r, qrm_ct_sb_value(&t), 0);
    ct_list *l = lines.u.list;
    ct_sbuf b = {0};
    if (first) qrm_ct_sb_put(r, &b, ind.u.s.p, ind.u.s.n);
    for (size_t i = 0; i < l->n; i++) {
        ct_value line = l->items[i];
        if (i > 0) {
            qrm_ct_sb_putc(r, &b, '\n');
            if (blank || line.u.s.n) qrm_ct_sb_put(r, &b, ind.u.s.p, ind.u.s.n);
        }
        qrm_ct_sb_put(r, &b, line.u.s.p, line.u.s.n);
    }
    ct_value out = qrm_ct_sb_value(&b);
    out.markup = v.markup;
    return out;
}

static ct_value f_truncate(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"length", "killwords", "end", "leeway"};
    ct_value x[4];
    qrm_ct_bind(r, "truncate", a, p, 4, x);
    int64_t length = ABSENT(x[0]) ? 255 : want_int(r, x[0], "truncate");
    int killwords = !ABSENT(x[1]) && qrm_ct_truthy(r, x[1]);
    ct_value end = ABSENT(x[2]) ? qrm_ct_str("...", 3) : want_str(r, x[2], "truncate");
    int64_t leeway = ABSENT(x[3]) || x[3].type == CT_NONE ? 5 : want_int(r, x[3], "truncate");
    int64_t end_len = (int64_t)qrm_ct_cp_count(end.u.s.p, end.u.s.n);
    if (length < end_len) qrm_ct_fail(r, "truncate: expected length >= %lld, got %lld", (long long)end_len, (long long)length);
    if (leeway < 0) qrm_ct_fail(r, "truncate: expected leeway >= 0");
    /* len(s) and s[:n] on the value itself, as Jinja does */
    if (v.type != CT_STR) {
        if (v.type == CT_UNDEF) return v; /* len(Undefined) is 0 */
        if ((int64_t)qrm_ct_length(r, v) <= length + leeway) return v;
        qrm_ct_fail(r, "truncate: cannot truncate a %s", qrm_ct_type_name(v));
    }
    int64_t len = (int64_t)qrm_ct_cp_count(v.u.s.p, v.u.s.n);
    if (len <= length + leeway) return v;
    ct_value head = qrm_ct_str_slice(r, v, 0, length - end_len, 1, 1, 1);
    if (!killwords) {
        ct_value parts = qrm_ct_str_split(r, head, qrm_ct_str(" ", 1), 1, 1);
        head = parts.u.list->items[0];
    }
    ct_sbuf b = {0};
    qrm_ct_sb_put(r, &b, head.u.s.p, head.u.s.n);
    qrm_ct_sb_put(r, &b, end.u.s.p, end.u.s.n);
    return qrm_ct_sb_value(&b);
}

static ct_value f_wordcount(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "wordcount", a, NULL, 0, NULL);
    v = soft_str(r, v);
    int64_t count = 0;
    int in_word = 0;
    size_t i = 0;
    while (i < v.u.s.n) {
        uint32_t cp = qrm_ct_next_cp(v.u.s.p, v.u.s.n, &i);
        int w = cp == '_' || (qrm_uni_flags(cp) & (QRM_UNI_L | QRM_UNI_N));
        if (w && !in_word) count++;
        in_word = w;
    }
    return qrm_ct_int(count);
}

static ct_value f_format(ct_render *r, ct_value v, ct_args *a) {
    if (a->npos && a->nkw) qrm_ct_fail(r, "format: can't handle positional and keyword arguments at the same time");
    ct_value args;
    if (a->nkw) {
        args = qrm_ct_dict_new(r);
        for (size_t i = 0; i < a->nkw; i++)
            qrm_ct_dict_set(r, args.u.dict, qrm_ct_str(a->kw_names[i], strlen(a->kw_names[i])), a->kw[i]);
    } else {
        args = list_of(r, a->pos, a->npos, CT_LK_TUPLE);
    }
    return qrm_ct_percent_format(r, soft_str(r, v), args);
}

/* transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
static ct_value f_tojson(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    ct_value x[4];
    qrm_ct_bind(r, "tojson", a, p, 4, x);
    ct_json_opts o = {.indent = -1, .indent_str = "", .item_sep = ", ", .key_sep = ": "};
    o.ensure_ascii = !ABSENT(x[0]) && qrm_ct_truthy(r, x[0]);
    if (!ABSENT(x[1]) && x[1].type != CT_NONE) {
        if (x[1].type == CT_STR) {
            char *s = qrm_ct_alloc(r, x[1].u.s.n + 1);
            memcpy(s, x[1].u.s.p, x[1].u.s.n);
            s[x[1].u.s.n] = 0;
            o.indent_str = s;
        } else {
            int64_t w = want_int(r, x[1], "tojson indent");
            if (w > 1000) qrm_ct_fail(r, "tojson: indent too large");
            char *s = qrm_ct_alloc(r, (size_t)(w > 0 ? w : 0) + 1);
            for (int64_t i = 0; i < w; i++) s[i] = ' ';
            s[w > 0 ? w : 0] = 0;
            o.indent_str = s;
        }
        o.indent = 1;
        o.item_sep = ",";
    }
    if (!ABSENT(x[2]) && x[2].type != CT_NONE) {
        size_t n;
        ct_value *sep = items_of(r, x[2], &n);
        if (n != 2 || sep[0].type != CT_STR || sep[1].type != CT_STR)
            qrm_ct_fail(r, "tojson: separators must be a pair of strings");
        char *s0 = qrm_ct_alloc(r, sep[0].u.s.n + 1), *s1 = qrm_ct_alloc(r, sep[1].u.s.n + 1);
        memcpy(s0, sep[0].u.s.p, sep[0].u.s.n);
        s0[sep[0].u.s.n] = 0;
        memcpy(s1, sep[1].u.s.p, sep[1].u.s.n);
        s1[sep[1].u.s.n] = 0;
        o.item_sep = s0;
        o.key_sep = s1;
    }
    o.sort_keys = !ABSENT(x[3]) && qrm_ct_truthy(r, x[3]);
    ct_sbuf b = {0};
    qrm_ct_put_json(r, &b, v, &o);
    return qrm_ct_sb_value(&b);
}

/* ---------------------------------------------------------------- numbers */

static ct_value f_int(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"default", "base"};
    ct_value x[2];
    qrm_ct_bind(r, "int", a, p, 2, x);
    ct_value dflt = ABSENT(x[0]) ? qrm_ct_int(0) : x[0];
    int64_t base = ABSENT(x[1]) ? 10 : want_int(r, x[1], "int");
    int64_t i;
    double f;
    switch (v.type) {
    case CT_UNDEF: qrm_ct_fail_undef(r, v);
    case CT_BOOL: return qrm_ct_int(v.u.b);
    case CT_INT: return v;
    case CT_FLOAT:
        if (!isfinite(v.u.f)) return dflt;
        if (fabs(v.u.f) >= 9.2e18) qrm_ct_fail(r, "int: %g is too large", v.u.f);
        return qrm_ct_int((int64_t)v.u.f);
    case CT_STR: {
        if (base != 0 && (base < 2 || base > 36)) qrm_ct_fail(r, "int() base must be >= 2 and <= 36, or 0");
        int ok = qrm_ct_parse_int(v.u.s.p, v.u.s.n, (int)base, &i);
        if (ok < 0) qrm_ct_fail(r, "int: value too large");
        if (ok) return qrm_ct_int(i);
        if (qrm_ct_parse_float(v.u.s.p, v.u.s.n, &f) && isfinite(f)) {
            if (fabs(f) >= 9.2e18) qrm_ct_fail(r, "int: value too large");
            return qrm_ct_int((int64_t)f);
        }
        return dflt;
    }
    default: return dflt;
    }
}

static ct_value f_float(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"default"};
    ct_value x[1];
    qrm_ct_bind(r, "float", a, p, 1, x);
    ct_value dflt = ABSENT(x[0]) ? qrm_ct_float(0.0) : x[0];
    double f;
    switch (v.type) {
    case CT_UNDEF: qrm_ct_fail_undef(r, v);
    case CT_BOOL:
    case CT_INT:
    case CT_FLOAT: return qrm_ct_float(qrm_ct_as_double(v));
    case CT_STR: return qrm_ct_parse_float(v.u.s.p, v.u.s.n, &f) ? qrm_ct_float(f) : dflt;
    default: return dflt;
    }
}

static ct_value f_abs(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "abs", a, NULL, 0, NULL);
    if (v.type == CT_FLOAT) return qrm_ct_float(fabs(v.u.f));
    if (v.type == CT_INT) {
        if (v.u.i == INT64_MIN) qrm_ct_fail(r, "integer overflow");
        return qrm_ct_int(v.u.i < 0 ? -v.u.i : v.u.i);
    }
    if (v.type == CT_BOOL) return qrm_ct_int(v.u.b);
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    qrm_ct_fail(r, "bad operand type for abs(): '%s'", qrm_ct_type_name(v));
}

/* Python round(x, n): correctly rounded, ties to even, which is what
 * printf's %.*f does with the exact binary value. */
static ct_value f_round(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"precision", "method"};
    ct_value x[2];
    qrm_ct_bind(r, "round", a, p, 2, x);
    int64_t prec = ABSENT(x[0]) ? 0 : want_int(r, x[0], "round");
    ct_value method = ABSENT(x[1]) ? qrm_ct_str("common", 6) : want_str(r, x[1], "round");
    int common = method.u.s.n == 6 && !memcmp(method.u.s.p, "common", 6);
    int ceil_m = method.u.s.n == 4 && !memcmp(method.u.s.p, "ceil", 4);
    int floor_m = method.u.s.n == 5 && !memcmp(method.u.s.p, "floor", 5);
    if (!common && !ceil_m && !floor_m) qrm_ct_fail(r, "round: method must be common, ceil or floor");
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    if (!qrm_ct_is_number(v)) qrm_ct_fail(r, "round: type %s doesn't define __round__", qrm_ct_type_name(v));
    if (prec < 0 || prec > 300) qrm_ct_fail(r, "unsupported: round with precision %lld", (long long)prec);
    double f = qrm_ct_as_double(v);
    if (common) {
        if (v.type != CT_FLOAT) return v.type == CT_BOOL ? qrm_ct_int(v.u.b) : v; /* round(int) is the int */
        if (!isfinite(f)) return v;
        char buf[400];
        if (fabs(f) >= 1e300) return v;
        snprintf(buf, sizeof buf, "%.*f", (int)prec, f);
        return qrm_ct_float(strtod(buf, NULL));
    }
    double scale = pow(10.0, (double)prec);
    return qrm_ct_float((ceil_m ? ceil(f * scale) : floor(f * scale)) / scale);
}

/* ---------------------------------------------------------------- sequences */

static ct_value f_length(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "length", a, NULL, 0, NULL);
    return qrm_ct_int((int64_t)qrm_ct_length(r, v));
}

static ct_value f_list(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "list", a, NULL, 0, NULL);
    size_t n;
    ct_value *items = items_of(r, v, &n);
    return list_of(r, items, n, CT_LK_LIST);
}

static ct_value f_first(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "first", a, NULL, 0, NULL);
    if (v.type == CT_ITER) { /* next(iter(gen)) takes just one item */
        ct_iter *it = v.u.iter;
        if (it->pos < it->n) return it->items[it->pos++];
        return qrm_ct_undef("No first item, sequence was empty.");
    }
    size_t n;
    ct_value *items = items_of(r, v, &n);
    return n ? items[0] : qrm_ct_undef("No first item, sequence was empty.");
}

static ct_value f_last(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "last", a, NULL, 0, NULL);
    if (v.type == CT_ITER) qrm_ct_fail(r, "'%s' object is not reversible", v.u.iter->what);
    size_t n;
    ct_value *items = items_of(r, v, &n);
    return n ? items[n - 1] : qrm_ct_undef("No last item, sequence was empty.");
}

static ct_value f_reverse(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "reverse", a, NULL, 0, NULL);
    if (v.type == CT_STR) {
        ct_value out = qrm_ct_str_slice(r, v, 0, 0, -1, 0, 0);
        out.markup = v.markup;
        return out;
    }
    int was_iter = v.type == CT_ITER;
    size_t n;
    ct_value *items = items_of(r, v, &n);
    ct_value *rev = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    for (size_t i = 0; i < n; i++) rev[i] = items[n - 1 - i];
    if (was_iter) return list_of(r, rev, n, CT_LK_LIST); /* reversed() fails, so list(value) reversed */
    return qrm_ct_iter_new(r, rev, n, v.type == CT_DICT ? "dict_reversekeyiterator" : "list_reverseiterator");
}

static ct_value f_join(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"d", "attribute"};
    ct_value x[2];
    qrm_ct_bind(r, "join", a, p, 2, x);
    ct_value sep = ABSENT(x[0]) ? qrm_ct_str("", 0) : qrm_ct_to_str(r, x[0]);
    size_t n;
    ct_value *items = items_of(r, v, &n);
    ct_sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) qrm_ct_sb_put(r, &b, sep.u.s.p, sep.u.s.n);
        ct_value item = ABSENT(x[1]) ? items[i] : attr_path(r, items[i], x[1], (ct_value){.type = CT_ABSENT});
        qrm_ct_put_str(r, &b, item);
    }
    return qrm_ct_sb_value(&b);
}

static ct_value f_default(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"default_value", "boolean"};
    ct_value x[2];
    qrm_ct_bind(r, "default", a, p, 2, x);
    ct_value dflt = ABSENT(x[0]) ? qrm_ct_str("", 0) : x[0];
    int boolean = !ABSENT(x[1]) && qrm_ct_truthy(r, x[1]);
    if (v.type == CT_UNDEF || (boolean && !qrm_ct_truthy(r, v))) return dflt;
    return v;
}

static ct_value f_items(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "items", a, NULL, 0, NULL);
    if (v.type == CT_UNDEF) return qrm_ct_iter_new(r, NULL, 0, "generator");
    if (v.type != CT_DICT) qrm_ct_fail(r, "Can only get item pairs from a mapping.");
    ct_dict *d = v.u.dict;
    ct_value *pairs = qrm_ct_alloc(r, (d->n ? d->n : 1) * sizeof(ct_value));
    for (size_t i = 0; i < d->n; i++) {
        pairs[i] = qrm_ct_list_new(r, 2, CT_LK_TUPLE);
        pairs[i].u.list->items[0] = d->keys[i];
        pairs[i].u.list->items[1] = d->vals[i];
    }
    return qrm_ct_iter_new(r, pairs, d->n, "generator");
}

static ct_value f_dictsort(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"case_sensitive", "by", "reverse"};
    ct_value x[3];
    qrm_ct_bind(r, "dictsort", a, p, 3, x);
    int cs = !ABSENT(x[0]) && qrm_ct_truthy(r, x[0]);
    int by_value = 0;
    if (!ABSENT(x[1])) {
        ct_value by = want_str(r, x[1], "dictsort");
        if (by.u.s.n == 5 && !memcmp(by.u.s.p, "value", 5)) by_value = 1;
        else if (!(by.u.s.n == 3 && !memcmp(by.u.s.p, "key", 3)))
            qrm_ct_fail(r, "You can only sort by either \"key\" or \"value\"");
    }
    int reverse = !ABSENT(x[2]) && qrm_ct_truthy(r, x[2]);
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    if (v.type != CT_DICT) qrm_ct_fail(r, "dictsort: expected a mapping, got %s", qrm_ct_type_name(v));
    ct_dict *d = v.u.dict;
    ct_value *pairs = qrm_ct_alloc(r, (d->n ? d->n : 1) * sizeof(ct_value));
    ct_value *keys = qrm_ct_alloc(r, (d->n ? d->n : 1) * sizeof(ct_value));
    for (size_t i = 0; i < d->n; i++) {
        pairs[i] = qrm_ct_list_new(r, 2, CT_LK_TUPLE);
        pairs[i].u.list->items[0] = d->keys[i];
        pairs[i].u.list->items[1] = d->vals[i];
        keys[i] = by_value ? d->vals[i] : d->keys[i];
        if (!cs) keys[i] = lowered(r, keys[i]);
    }
    sort_by_keys(r, pairs, keys, d->n, reverse);
    return list_of(r, pairs, d->n, CT_LK_LIST);
}

/* The sort key for attribute "a,b": a list of lookups; one lookup otherwise. */
static ct_value multi_key(ct_render *r, ct_value item, ct_value attribute, int cs) {
    if (ABSENT(attribute) || attribute.type == CT_NONE) return cs ? item : lowered(r, item);
    if (attribute.type != CT_STR) {
        ct_value k = attr_path(r, item, attribute, (ct_value){.type = CT_ABSENT});
        ct_value l = qrm_ct_list_new(r, 1, CT_LK_LIST);
        l.u.list->items[0] = cs ? k : lowered(r, k);
        return l;
    }
    ct_value parts = qrm_ct_str_split(r, attribute, qrm_ct_str(",", 1), -1, 0);
    ct_list *pl = parts.u.list;
    ct_value l = qrm_ct_list_new(r, pl->n, CT_LK_LIST);
    for (size_t i = 0; i < pl->n; i++) {
        ct_value k = attr_path(r, item, pl->items[i], (ct_value){.type = CT_ABSENT});
        l.u.list->items[i] = cs ? k : lowered(r, k);
    }
    return l;
}

static ct_value f_sort(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"reverse", "case_sensitive", "attribute"};
    ct_value x[3];
    qrm_ct_bind(r, "sort", a, p, 3, x);
    int reverse = !ABSENT(x[0]) && qrm_ct_truthy(r, x[0]);
    int cs = !ABSENT(x[1]) && qrm_ct_truthy(r, x[1]);
    size_t n;
    ct_value *src = items_of(r, v, &n);
    ct_value *items = copy_items(r, src, n);
    ct_value *keys = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    for (size_t i = 0; i < n; i++) keys[i] = multi_key(r, items[i], x[2], cs);
    sort_by_keys(r, items, keys, n, reverse);
    return list_of(r, items, n, CT_LK_LIST);
}

static int hashable_check(ct_render *r, ct_value k) {
    if (k.type == CT_DICT || k.type == CT_NS || (k.type == CT_LIST && k.u.list->kind != CT_LK_TUPLE))
        qrm_ct_fail(r, "unhashable type: '%s'", qrm_ct_type_name(k));
    return 1;
}

static ct_value f_unique(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"case_sensitive", "attribute"};
    ct_value x[2];
    qrm_ct_bind(r, "unique", a, p, 2, x);
    int cs = !ABSENT(x[0]) && qrm_ct_truthy(r, x[0]);
    size_t n;
    ct_value *items = items_of(r, v, &n);
    ct_value *out = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    ct_value *seen = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        ct_value key = attr_path(r, items[i], x[1], (ct_value){.type = CT_ABSENT});
        if (!cs) key = lowered(r, key);
        hashable_check(r, key);
        size_t j = 0;
        while (j < k && !qrm_ct_equal(r, seen[j], key)) j++;
        if (j < k) continue;
        seen[k] = key;
        out[k++] = items[i];
    }
    return qrm_ct_iter_new(r, out, k, "generator");
}

static ct_value min_max(ct_render *r, ct_value v, ct_args *a, int want_max) {
    static const char *const p[] = {"case_sensitive", "attribute"};
    ct_value x[2];
    qrm_ct_bind(r, want_max ? "max" : "min", a, p, 2, x);
    int cs = !ABSENT(x[0]) && qrm_ct_truthy(r, x[0]);
    size_t n;
    ct_value *items = items_of(r, v, &n);
    if (n == 0) return qrm_ct_undef("No aggregated item, sequence was empty.");
    size_t best = 0;
    ct_value best_key = attr_path(r, items[0], x[1], (ct_value){.type = CT_ABSENT});
    if (!cs) best_key = lowered(r, best_key);
    for (size_t i = 1; i < n; i++) {
        ct_value k = attr_path(r, items[i], x[1], (ct_value){.type = CT_ABSENT});
        if (!cs) k = lowered(r, k);
        int c = qrm_ct_compare(r, k, best_key);
        if (want_max ? c > 0 : c < 0) best = i, best_key = k;
    }
    return items[best];
}

static ct_value f_min(ct_render *r, ct_value v, ct_args *a) { return min_max(r, v, a, 0); }
static ct_value f_max(ct_render *r, ct_value v, ct_args *a) { return min_max(r, v, a, 1); }

static ct_value f_sum(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"attribute", "start"};
    ct_value x[2];
    qrm_ct_bind(r, "sum", a, p, 2, x);
    ct_value total = ABSENT(x[1]) ? qrm_ct_int(0) : x[1];
    size_t n;
    ct_value *items = items_of(r, v, &n);
    for (size_t i = 0; i < n; i++) {
        ct_value item = attr_path(r, items[i], x[0], (ct_value){.type = CT_ABSENT});
        if (total.type == CT_STR) qrm_ct_fail(r, "sum() can't sum strings");
        /* reuse the + operator through a tiny expression-free path */
        if (qrm_ct_is_number(total) && qrm_ct_is_number(item)) {
            if (total.type != CT_FLOAT && item.type != CT_FLOAT) {
                int64_t s;
                int64_t p0 = total.type == CT_BOOL ? total.u.b : total.u.i, p1 = item.type == CT_BOOL ? item.u.b : item.u.i;
                if (__builtin_add_overflow(p0, p1, &s)) qrm_ct_fail(r, "integer overflow");
                total = qrm_ct_int(s);
            } else {
                total = qrm_ct_float(qrm_ct_as_double(total) + qrm_ct_as_double(item));
            }
        } else if (total.type == CT_LIST && item.type == CT_LIST && total.u.list->kind == item.u.list->kind) {
            ct_value l = qrm_ct_list_new(r, total.u.list->n + item.u.list->n, total.u.list->kind);
            memcpy(l.u.list->items, total.u.list->items, total.u.list->n * sizeof(ct_value));
            memcpy(l.u.list->items + total.u.list->n, item.u.list->items, item.u.list->n * sizeof(ct_value));
            total = l;
        } else {
            if (item.type == CT_UNDEF) qrm_ct_fail_undef(r, item);
            qrm_ct_fail(r, "unsupported operand type(s) for +: '%s' and '%s'", qrm_ct_type_name(total), qrm_ct_type_name(item));
        }
    }
    return total;
}

static ct_value f_batch(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"linecount", "fill_with"};
    ct_value x[2];
    qrm_ct_bind(r, "batch", a, p, 2, x);
    int64_t count = ABSENT(x[0]) ? 0 : want_int(r, x[0], "batch");
    if (count <= 0) qrm_ct_fail(r, "batch: linecount must be positive");
    size_t n;
    ct_value *items = items_of(r, v, &n);
    size_t nb = (n + (size_t)count - 1) / (size_t)count;
    ct_value *batches = qrm_ct_alloc(r, (nb ? nb : 1) * sizeof(ct_value));
    for (size_t b = 0; b < nb; b++) {
        size_t start = b * (size_t)count, len = n - start < (size_t)count ? n - start : (size_t)count;
        int fill = len < (size_t)count && !ABSENT(x[1]) && x[1].type != CT_NONE;
        ct_value l = qrm_ct_list_new(r, fill ? (size_t)count : len, CT_LK_LIST);
        memcpy(l.u.list->items, items + start, len * sizeof(ct_value));
        if (fill)
            for (size_t k = len; k < (size_t)count; k++) l.u.list->items[k] = x[1];
        batches[b] = l;
    }
    return qrm_ct_iter_new(r, batches, nb, "generator");
}

static ct_value f_slice(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"slices", "fill_with"};
    ct_value x[2];
    qrm_ct_bind(r, "slice", a, p, 2, x);
    int64_t slices = ABSENT(x[0]) ? 0 : want_int(r, x[0], "slice");
    if (slices <= 0 || slices > 1000000) qrm_ct_fail(r, "slice: bad number of slices");
    size_t n;
    ct_value *items = items_of(r, v, &n);
    size_t per = n / (size_t)slices, extra = n % (size_t)slices, offset = 0;
    ct_value *out = qrm_ct_alloc(r, (size_t)slices * sizeof(ct_value));
    for (size_t s = 0; s < (size_t)slices; s++) {
        size_t start = offset + s * per;
        if (s < extra) offset++;
        size_t end = offset + (s + 1) * per;
        int fill = !ABSENT(x[1]) && x[1].type != CT_NONE && s >= extra;
        ct_value l = qrm_ct_list_new(r, end - start + (size_t)fill, CT_LK_LIST);
        if (end > start) memcpy(l.u.list->items, items + start, (end - start) * sizeof(ct_value));
        if (fill) l.u.list->items[end - start] = x[1];
        out[s] = l;
    }
    return qrm_ct_iter_new(r, out, (size_t)slices, "generator");
}

static ct_value f_attr(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"name"};
    ct_value x[1];
    qrm_ct_bind(r, "attr", a, p, 1, x);
    ct_value name = want_str(r, x[0], "attr");
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    int found = 0;
    ct_value out = qrm_ct_builtin_attr(r, v, name.u.s.p, name.u.s.n, &found);
    if (found) return out;
    return qrm_ct_undef("attr: no such attribute");
}

/* map(attribute=..., default=...) or map('filter', args...) */
static ct_value f_map(ct_render *r, ct_value v, ct_args *a) {
    int by_attr = a->npos == 0 && a->nkw > 0;
    ct_value attribute = {.type = CT_ABSENT}, dflt = {.type = CT_ABSENT};
    if (by_attr) {
        for (size_t i = 0; i < a->nkw; i++) {
            if (strcmp(a->kw_names[i], "attribute") == 0) attribute = a->kw[i];
            else if (strcmp(a->kw_names[i], "default") == 0) dflt = a->kw[i];
            else by_attr = 0;
        }
        if (ABSENT(attribute)) by_attr = 0;
        if (!by_attr && !ABSENT(attribute)) qrm_ct_fail(r, "map: unexpected keyword argument");
    }
    if (!by_attr && a->npos == 0) qrm_ct_fail(r, "map requires a filter argument");
    size_t n = 0;
    ct_value *items = NULL;
    if (qrm_ct_truthy(r, v)) items = items_of(r, v, &n);
    ct_value *out = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    if (by_attr) {
        for (size_t i = 0; i < n; i++) out[i] = attr_path(r, items[i], attribute, dflt);
    } else {
        ct_value fname = want_str(r, a->pos[0], "map");
        char *name = qrm_ct_alloc(r, fname.u.s.n + 1);
        memcpy(name, fname.u.s.p, fname.u.s.n);
        name[fname.u.s.n] = 0;
        int id = qrm_ct_filter_id(name);
        if (id < 0) qrm_ct_fail(r, "no filter named '%s'", name);
        ct_args rest = *a;
        rest.pos++;
        rest.npos--;
        for (size_t i = 0; i < n; i++) out[i] = qrm_ct_apply_filter(r, id, name, items[i], &rest);
    }
    return qrm_ct_iter_new(r, out, n, "generator");
}

/* select/reject/selectattr/rejectattr */
static ct_value select_or_reject(ct_render *r, ct_value v, ct_args *a, int keep, int by_attr) {
    size_t off = 0;
    ct_value attribute = {.type = CT_ABSENT};
    if (by_attr) {
        if (a->npos == 0) qrm_ct_fail(r, "Missing parameter for attribute name");
        attribute = a->pos[0];
        off = 1;
    }
    int id = -1;
    char *name = NULL;
    if (a->npos > off) {
        ct_value tname = want_str(r, a->pos[off], "select");
        name = qrm_ct_alloc(r, tname.u.s.n + 1);
        memcpy(name, tname.u.s.p, tname.u.s.n);
        name[tname.u.s.n] = 0;
        id = qrm_ct_test_id(name);
        if (id < 0) qrm_ct_fail(r, "no test named '%s'", name);
    }
    ct_args rest = *a;
    rest.pos += off + (name != NULL);
    rest.npos -= off + (name != NULL);
    size_t n = 0;
    ct_value *items = NULL;
    if (qrm_ct_truthy(r, v)) items = items_of(r, v, &n);
    ct_value *out = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        ct_value x = by_attr ? attr_path(r, items[i], attribute, (ct_value){.type = CT_ABSENT}) : items[i];
        int t = name ? qrm_ct_apply_test(r, id, name, x, &rest) : qrm_ct_truthy(r, x);
        if (t == keep) out[k++] = items[i];
    }
    return qrm_ct_iter_new(r, out, k, "generator");
}

static ct_value f_select(ct_render *r, ct_value v, ct_args *a) { return select_or_reject(r, v, a, 1, 0); }
static ct_value f_reject(ct_render *r, ct_value v, ct_args *a) { return select_or_reject(r, v, a, 0, 0); }
static ct_value f_selectattr(ct_render *r, ct_value v, ct_args *a) { return select_or_reject(r, v, a, 1, 1); }
static ct_value f_rejectattr(ct_render *r, ct_value v, ct_args *a) { return select_or_reject(r, v, a, 0, 1); }

/* ---------------------------------------------------------------- filter table */

static const struct {
    const char *name;
    filter_fn fn; /* NULL: a Jinja2 filter this module does not implement */
} filters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"filesizeformat", NULL},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_forceescape},
    {"format", f_format},
    {"groupby", NULL},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"pprint", NULL},
    {"random", NULL},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"slice", f_slice},
    {"sort", f_sort},
    {"string", f_string},
    {"striptags", NULL},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"unique", f_unique},
    {"upper", f_upper},
    {"urlencode", NULL},
    {"urlize", NULL},
    {"wordcount", f_wordcount},
    {"wordwrap", NULL},
    {"xmlattr", NULL},
};

#define NFILTERS (int)(sizeof filters / sizeof filters[0])

int qrm_ct_filter_id(const char *name) {
    for (int i = 0; i < NFILTERS; i++)
        if (strcmp(filters[i].name, name) == 0) return i;
    return -1;
}

ct_value qrm_ct_apply_filter(ct_render *r, int id, const char *name, ct_value v, ct_args *a) {
    if (v.type == CT_STR) qrm_ct_charge(r, v.u.s.n);
    else if (v.type == CT_LIST) qrm_ct_charge(r, v.u.list->n * 16);
    else qrm_ct_step(r);
    if (id < 0 || id >= NFILTERS) qrm_ct_fail(r, "no filter named '%s'", name);
    if (!filters[id].fn) qrm_ct_fail(r, "unsupported filter '%s'", name);
    return filters[id].fn(r, v, a);
}

/* ---------------------------------------------------------------- tests */

static ct_value one_arg(ct_render *r, ct_args *a, const char *name) {
    static const char *const p[] = {"other"};
    ct_value x[1];
    qrm_ct_bind(r, name, a, p, 1, x);
    if (ABSENT(x[0])) qrm_ct_fail(r, "test '%s' needs an argument", name);
    return x[0];
}

static int t_defined(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type != CT_UNDEF; }
static int t_undefined(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_UNDEF; }
static int t_none(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_NONE; }
static int t_boolean(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_BOOL; }
static int t_true(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_BOOL && v.u.b; }
static int t_false(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_BOOL && !v.u.b; }
static int t_integer(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_INT; }
static int t_float(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_FLOAT; }
static int t_number(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return qrm_ct_is_number(v); }
static int t_string(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_STR; }
static int t_mapping(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_DICT; }
static int t_escaped(ct_render *r, ct_value v, ct_args *a) { (void)r; (void)a; return v.type == CT_STR && v.markup; }

static int t_sequence(ct_render *r, ct_value v, ct_args *a) {
    (void)r;
    (void)a;
    /* len() and __getitem__: str, list, tuple, range, dict, and Undefined */
    return v.type == CT_STR || v.type == CT_DICT || v.type == CT_UNDEF ||
           (v.type == CT_LIST && v.u.list->kind <= CT_LK_RANGE);
}

static int t_iterable(ct_render *r, ct_value v, ct_args *a) {
    (void)r;
    (void)a;
    return v.type == CT_STR || v.type == CT_DICT || v.type == CT_LIST || v.type == CT_ITER || v.type == CT_UNDEF ||
           v.type == CT_LOOP;
}

static int t_callable(ct_render *r, ct_value v, ct_args *a) {
    (void)r;
    (void)a;
    return v.type == CT_MACRO || v.type == CT_FUNC || v.type == CT_METHOD || v.type == CT_UNDEF;
}

static int mod2(ct_render *r, ct_value v, const char *name) {
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    if (v.type == CT_INT || v.type == CT_BOOL) {
        int64_t i = v.type == CT_INT ? v.u.i : v.u.b;
        return (int)(((i % 2) + 2) % 2);
    }
    if (v.type == CT_FLOAT) return fmod(fabs(v.u.f), 2.0) == 1.0;
    qrm_ct_fail(r, "test '%s' needs a number, got %s", name, qrm_ct_type_name(v));
}

static int t_odd(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "odd", a, NULL, 0, NULL);
    return mod2(r, v, "odd") == 1;
}

static int t_even(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "even", a, NULL, 0, NULL);
    if (v.type == CT_FLOAT) return fmod(fabs(v.u.f), 2.0) == 0.0;
    return mod2(r, v, "even") == 0;
}

static int t_divisibleby(ct_render *r, ct_value v, ct_args *a) {
    static const char *const p[] = {"num"};
    ct_value x[1];
    qrm_ct_bind(r, "divisibleby", a, p, 1, x);
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    if (!qrm_ct_is_number(v) || ABSENT(x[0]) || !qrm_ct_is_number(x[0])) qrm_ct_fail(r, "divisibleby needs numbers");
    if (v.type != CT_FLOAT && x[0].type != CT_FLOAT) {
        int64_t p0 = v.type == CT_BOOL ? v.u.b : v.u.i, q = x[0].type == CT_BOOL ? x[0].u.b : x[0].u.i;
        if (q == 0) qrm_ct_fail(r, "integer division or modulo by zero");
        if (q == -1) return 1;
        return p0 % q == 0;
    }
    double q = qrm_ct_as_double(x[0]);
    if (q == 0) qrm_ct_fail(r, "float modulo");
    return fmod(qrm_ct_as_double(v), q) == 0;
}

static int all_cased(ct_render *r, ct_value v, int want_upper) {
    v = soft_str(r, v);
    int any = 0;
    size_t i = 0;
    while (i < v.u.s.n) {
        uint32_t cp = qrm_ct_next_cp(v.u.s.p, v.u.s.n, &i);
        int up, lo;
        if (!qrm_ct_is_cased(r, cp, &up, &lo)) continue;
        if (want_upper ? lo : up) return 0;
        if (want_upper ? up : lo) any = 1;
    }
    return any;
}

static int t_lower(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "lower", a, NULL, 0, NULL);
    return all_cased(r, v, 0);
}

static int t_upper(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "upper", a, NULL, 0, NULL);
    return all_cased(r, v, 1);
}

static int t_in(ct_render *r, ct_value v, ct_args *a) {
    ct_value seq = one_arg(r, a, "in");
    ct_value hay = seq;
    switch (seq.type) {
    case CT_STR:
        if (v.type != CT_STR) qrm_ct_fail(r, "'in <string>' requires string as left operand, not %s", qrm_ct_type_name(v));
        return qrm_ct_str_find(hay.u.s.p, hay.u.s.n, v.u.s.p, v.u.s.n, 0) >= 0;
    case CT_DICT:
        hashable_check(r, v);
        return qrm_ct_dict_find(r, seq.u.dict, v) != NULL;
    case CT_UNDEF: return 0;
    case CT_LIST:
    case CT_ITER: {
        size_t n;
        ct_value *items = qrm_ct_iterate(r, seq, &n);
        for (size_t i = 0; i < n; i++)
            if (qrm_ct_equal(r, items[i], v)) return 1;
        return 0;
    }
    default: qrm_ct_fail(r, "argument of type '%s' is not iterable", qrm_ct_type_name(seq));
    }
}

static int t_eq(ct_render *r, ct_value v, ct_args *a) { return qrm_ct_equal(r, v, one_arg(r, a, "eq")); }
static int t_ne(ct_render *r, ct_value v, ct_args *a) { return !qrm_ct_equal(r, v, one_arg(r, a, "ne")); }
static int t_lt(ct_render *r, ct_value v, ct_args *a) { return qrm_ct_compare(r, v, one_arg(r, a, "lt")) < 0; }
static int t_le(ct_render *r, ct_value v, ct_args *a) { return qrm_ct_compare(r, v, one_arg(r, a, "le")) <= 0; }
static int t_gt(ct_render *r, ct_value v, ct_args *a) { return qrm_ct_compare(r, v, one_arg(r, a, "gt")) > 0; }
static int t_ge(ct_render *r, ct_value v, ct_args *a) { return qrm_ct_compare(r, v, one_arg(r, a, "ge")) >= 0; }

static int t_sameas(ct_render *r, ct_value v, ct_args *a) {
    ct_value o = one_arg(r, a, "sameas");
    if (v.type != o.type) return 0;
    switch (v.type) {
    case CT_NONE: return 1;
    case CT_BOOL: return v.u.b == o.u.b;
    case CT_INT: return v.u.i == o.u.i && v.u.i >= -5 && v.u.i <= 256; /* CPython's small-int cache */
    case CT_STR: return v.u.s.p == o.u.s.p && v.u.s.n == o.u.s.n;
    case CT_UNDEF: return 0;
    default: return qrm_ct_equal(r, v, o) && memcmp(&v.u, &o.u, sizeof v.u) == 0;
    }
}

static int t_filter(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "filter", a, NULL, 0, NULL);
    if (v.type != CT_STR) return 0;
    char name[64];
    if (v.u.s.n >= sizeof name) return 0;
    memcpy(name, v.u.s.p, v.u.s.n);
    name[v.u.s.n] = 0;
    return qrm_ct_filter_id(name) >= 0;
}

static int t_test(ct_render *r, ct_value v, ct_args *a) {
    qrm_ct_bind(r, "test", a, NULL, 0, NULL);
    if (v.type != CT_STR) return 0;
    char name[64];
    if (v.u.s.n >= sizeof name) return 0;
    memcpy(name, v.u.s.p, v.u.s.n);
    name[v.u.s.n] = 0;
    return qrm_ct_test_id(name) >= 0;
}

static const struct {
    const char *name;
    test_fn fn;
} tests[] = {
    {"odd", t_odd},           {"even", t_even},         {"divisibleby", t_divisibleby},
    {"defined", t_defined},   {"undefined", t_undefined}, {"filter", t_filter},
    {"test", t_test},         {"none", t_none},         {"boolean", t_boolean},
    {"false", t_false},       {"true", t_true},         {"integer", t_integer},
    {"float", t_float},       {"lower", t_lower},       {"upper", t_upper},
    {"string", t_string},     {"mapping", t_mapping},   {"number", t_number},
    {"sequence", t_sequence}, {"iterable", t_iterable}, {"callable", t_callable},
    {"sameas", t_sameas},     {"escaped", t_escaped},   {"in", t_in},
    {"==", t_eq},             {"eq", t_eq},             {"equalto", t_eq},
    {"!=", t_ne},             {"ne", t_ne},             {">", t_gt},
    {"gt", t_gt},             {"greaterthan", t_gt},    {"ge", t_ge},
    {">=", t_ge},             {"<", t_lt},              {"lt", t_lt},
    {"lessthan", t_lt},       {"<=", t_le},             {"le", t_le},
};

#define NTESTS (int)(sizeof tests / sizeof tests[0])

int qrm_ct_test_id(const char *name) {
    for (int i = 0; i < NTESTS; i++)
        if (strcmp(tests[i].name, name) == 0) return i;
    return -1;
}

int qrm_ct_apply_test(ct_render *r, int id, const char *name, ct_value v, ct_args *a) {
    if (v.type == CT_STR) qrm_ct_charge(r, v.u.s.n);
    else qrm_ct_step(r);
    if (id < 0 || id >= NTESTS) qrm_ct_fail(r, "no test named '%s'", name);
    /* tests without parameters reject stray arguments */
    if (tests[id].fn == t_defined || tests[id].fn == t_undefined || tests[id].fn == t_none ||
        tests[id].fn == t_boolean || tests[id].fn == t_true || tests[id].fn == t_false ||
        tests[id].fn == t_integer || tests[id].fn == t_float || tests[id].fn == t_number ||
        tests[id].fn == t_string || tests[id].fn == t_mapping || tests[id].fn == t_escaped ||
        tests[id].fn == t_sequence || tests[id].fn == t_iterable || tests[id].fn == t_callable)
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
    return tests[id].fn(r, v, a);
}
