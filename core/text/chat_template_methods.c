/* Chat templates: what attribute access finds on built-in values (str, dict
 * and list methods, loop.*), calling those methods, and the global
 * functions (range, namespace, dict, raise_exception, strftime_now).
 *
 * The sandbox rules of ImmutableSandboxedEnvironment apply: methods that
 * would mutate a list or dict (append, pop, update, ...) are found but are
 * Undefined, so printing them gives "" and calling them is an error. Python
 * methods this module does not implement are an error when called. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_template_internal.h"
#include "unicode.h"

enum {
    M_UNSAFE, M_UNSUPPORTED,
    /* str */
    M_STRIP, M_LSTRIP, M_RSTRIP, M_STARTSWITH, M_ENDSWITH, M_SPLIT, M_RSPLIT, M_SPLITLINES,
    M_REPLACE, M_UPPER, M_LOWER, M_TITLE, M_CAPITALIZE, M_SWAPCASE, M_CASEFOLD, M_FIND, M_RFIND,
    M_INDEX, M_RINDEX, M_COUNT, M_JOIN, M_FORMAT, M_ISDIGIT, M_ISALPHA, M_ISALNUM, M_ISSPACE,
    M_ISUPPER, M_ISLOWER, M_ISTITLE, M_ISNUMERIC, M_ISDECIMAL, M_ISASCII, M_ISIDENTIFIER,
    M_ISPRINTABLE, M_LJUST, M_RJUST, M_CENTER, M_ZFILL, M_REMOVEPREFIX, M_REMOVESUFFIX,
    M_PARTITION, M_RPARTITION,
    /* dict */
    M_GET, M_ITEMS, M_KEYS, M_VALUES, M_DICT_COPY,
    /* list, tuple, range */
    M_SEQ_COUNT, M_SEQ_INDEX, M_LIST_COPY,
    /* loop */
    M_CYCLE, M_CHANGED,
};

enum { R_STR, R_DICT, R_LIST, R_TUPLE, R_RANGE, R_LOOP };

static const struct {
    int recv;
    const char *name;
    int id;
} methods[] = {
    {R_STR, "strip", M_STRIP}, {R_STR, "lstrip", M_LSTRIP}, {R_STR, "rstrip", M_RSTRIP},
    {R_STR, "startswith", M_STARTSWITH}, {R_STR, "endswith", M_ENDSWITH}, {R_STR, "split", M_SPLIT},
    {R_STR, "rsplit", M_RSPLIT}, {R_STR, "splitlines", M_SPLITLINES}, {R_STR, "replace", M_REPLACE},
    {R_STR, "upper", M_UPPER}, {R_STR, "lower", M_LOWER}, {R_STR, "title", M_TITLE},
    {R_STR, "capitalize", M_CAPITALIZE}, {R_STR, "swapcase", M_SWAPCASE}, {R_STR, "casefold", M_CASEFOLD},
    {R_STR, "find", M_FIND}, {R_STR, "rfind", M_RFIND}, {R_STR, "index", M_INDEX},
    {R_STR, "rindex", M_RINDEX}, {R_STR, "count", M_COUNT}, {R_STR, "join", M_JOIN},
    {R_STR, "format", M_FORMAT}, {R_STR, "isdigit", M_ISDIGIT}, {R_STR, "isalpha", M_ISALPHA},
    {R_STR, "isalnum", M_ISALNUM}, {R_STR, "isspace", M_ISSPACE}, {R_STR, "isupper", M_ISUPPER},
    {R_STR, "islower", M_ISLOWER}, {R_STR, "istitle", M_ISTITLE}, {R_STR, "isnumeric", M_ISNUMERIC},
    {R_STR, "isdecimal", M_ISDECIMAL}, {R_STR, "isascii", M_ISASCII}, {R_STR, "isidentifier", M_ISIDENTIFIER},
    {R_STR, "isprintable", M_ISPRINTABLE}, {R_STR, "ljust", M_LJUST}, {R_STR, "rjust", M_RJUST},
    {R_STR, "center", M_CENTER}, {R_STR, "zfill", M_ZFILL}, {R_STR, "removeprefix", M_REMOVEPREFIX},
    {R_STR, "removesuffix", M_REMOVESUFFIX}, {R_STR, "partition", M_PARTITION},
    {R_STR, "rpartition", M_RPARTITION}, {R_STR, "encode", M_UNSUPPORTED},
    {R_STR, "expandtabs", M_UNSUPPORTED}, {R_STR, "format_map", M_UNSUPPORTED},
    {R_STR, "maketrans", M_UNSUPPORTED}, {R_STR, "translate", M_UNSUPPORTED},
    {R_DICT, "get", M_GET}, {R_DICT, "items", M_ITEMS}, {R_DICT, "keys", M_KEYS},
    {R_DICT, "values", M_VALUES}, {R_DICT, "copy", M_DICT_COPY}, {R_DICT, "fromkeys", M_UNSUPPORTED},
    {R_DICT, "clear", M_UNSAFE}, {R_DICT, "pop", M_UNSAFE}, {R_DICT, "popitem", M_UNSAFE},
    {R_DICT, "setdefault", M_UNSAFE}, {R_DICT, "update", M_UNSAFE},
    {R_LIST, "count", M_SEQ_COUNT}, {R_LIST, "index", M_SEQ_INDEX}, {R_LIST, "copy", M_LIST_COPY},
    {R_LIST, "append", M_UNSAFE}, {R_LIST, "clear", M_UNSAFE}, {R_LIST, "extend", M_UNSAFE},
    {R_LIST, "insert", M_UNSAFE}, {R_LIST, "pop", M_UNSAFE}, {R_LIST, "remove", M_UNSAFE},
    {R_LIST, "reverse", M_UNSAFE}, {R_LIST, "sort", M_UNSAFE},
    {R_TUPLE, "count", M_SEQ_COUNT}, {R_TUPLE, "index", M_SEQ_INDEX},
    {R_RANGE, "count", M_SEQ_COUNT}, {R_RANGE, "index", M_SEQ_INDEX},
    {R_LOOP, "cycle", M_CYCLE}, {R_LOOP, "changed", M_CHANGED},
};

static int name_is(const char *name, size_t n, const char *lit) { return strlen(lit) == n && memcmp(name, lit, n) == 0; }

static ct_value method_value(ct_render *r, ct_value self, int id) {
    ct_method *m = qrm_ct_alloc(r, sizeof *m);
    m->self = self;
    m->id = id;
    ct_value v = {.type = CT_METHOD};
    v.u.method = m;
    return v;
}

static ct_value loop_attr(ct_render *r, ct_loop *l, const char *name, size_t n, int *found) {
    *found = 1;
    int64_t i = (int64_t)l->i, len = (int64_t)l->n;
    if (name_is(name, n, "index")) return qrm_ct_int(i + 1);
    if (name_is(name, n, "index0")) return qrm_ct_int(i);
    if (name_is(name, n, "revindex")) return qrm_ct_int(len - i);
    if (name_is(name, n, "revindex0")) return qrm_ct_int(len - i - 1);
    if (name_is(name, n, "first")) return qrm_ct_bool(i == 0);
    if (name_is(name, n, "last")) return qrm_ct_bool(i == len - 1);
    if (name_is(name, n, "length")) return qrm_ct_int(len);
    if (name_is(name, n, "depth")) return qrm_ct_int(l->depth);
    if (name_is(name, n, "depth0")) return qrm_ct_int(l->depth - 1);
    if (name_is(name, n, "previtem")) return i > 0 ? l->items[i - 1] : qrm_ct_undef("there is no previous item");
    if (name_is(name, n, "nextitem")) return i + 1 < len ? l->items[i + 1] : qrm_ct_undef("there is no next item");
    *found = 0;
    (void)r;
    return qrm_ct_none();
}

ct_value qrm_ct_builtin_attr(ct_render *r, ct_value obj, const char *name, size_t n, int *found) {
    *found = 0;
    int recv;
    switch (obj.type) {
    case CT_STR: recv = R_STR; break;
    case CT_DICT: recv = R_DICT; break;
    case CT_LIST:
        recv = obj.u.list->kind == CT_LK_LIST ? R_LIST : obj.u.list->kind == CT_LK_TUPLE ? R_TUPLE
             : obj.u.list->kind == CT_LK_RANGE ? R_RANGE : -1;
        if (recv == R_RANGE) {
            ct_list *l = obj.u.list;
            *found = 1;
            if (name_is(name, n, "start")) return qrm_ct_int(l->start);
            if (name_is(name, n, "stop")) return qrm_ct_int(l->stop);
            if (name_is(name, n, "step")) return qrm_ct_int(l->step);
            *found = 0;
        }
        break;
    case CT_NS: {
        ct_value *hit = qrm_ct_dict_find_str(obj.u.dict, name, n);
        if (hit) {
            *found = 1;
            return *hit;
        }
        return qrm_ct_none();
    }
    case CT_LOOP: {
        ct_value v = loop_attr(r, obj.u.loop, name, n, found);
        if (*found) return v;
        recv = R_LOOP;
        break;
    }
    default: return qrm_ct_none();
    }
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (methods[i].recv != recv || !name_is(name, n, methods[i].name)) continue;
        *found = 1;
        if (methods[i].id == M_UNSAFE) {
            char *msg = qrm_ct_alloc(r, n + 80);
            snprintf(msg, n + 80, "access to attribute '%.*s' of '%s' object is unsafe.", (int)n, name,
                     qrm_ct_type_name(obj));
            return qrm_ct_undef(msg);
        }
        ct_value m = method_value(r, obj, methods[i].id);
        return m;
    }
    return qrm_ct_none();
}

static const char *method_name(int id) {
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].id == id) return methods[i].name;
    return "method";
}

/* ---------------------------------------------------------------- helpers */

static int64_t arg_int(ct_render *r, ct_value v, const char *what) {
    if (v.type == CT_INT) return v.u.i;
    if (v.type == CT_BOOL) return v.u.b;
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    qrm_ct_fail(r, "%s: '%s' object cannot be interpreted as an integer", what, qrm_ct_type_name(v));
}

static ct_value arg_str(ct_render *r, ct_value v, const char *what) {
    if (v.type == CT_STR) return v;
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    qrm_ct_fail(r, "%s: must be str, not %s", what, qrm_ct_type_name(v));
}

#define ABSENT(v) ((v).type == CT_ABSENT)

/* s[start:end] for the optional start/end arguments of find, count, ... */
static ct_value sub_range(ct_render *r, ct_value s, ct_value start, ct_value end, int64_t *offset) {
    int hs = !ABSENT(start) && start.type != CT_NONE, he = !ABSENT(end) && end.type != CT_NONE;
    int64_t a = hs ? arg_int(r, start, "slice") : 0, z = he ? arg_int(r, end, "slice") : 0;
    *offset = 0;
    if (!hs && !he) return s;
    int64_t len = (int64_t)qrm_ct_cp_count(s.u.s.p, s.u.s.n);
    qrm_ct_slice_indices(len, &a, &z, 1, hs, he);
    *offset = a;
    if (z < a) z = a;
    return qrm_ct_str_slice(r, s, a, z, 1, 1, 1);
}

static int affix_match(ct_render *r, ct_value s, ct_value affix, int at_end) {
    if (affix.type == CT_LIST && affix.u.list->kind == CT_LK_TUPLE) {
        for (size_t i = 0; i < affix.u.list->n; i++)
            if (affix_match(r, s, arg_str(r, affix.u.list->items[i], "tuple for startswith"), at_end)) return 1;
        return 0;
    }
    affix = arg_str(r, affix, at_end ? "endswith" : "startswith");
    if (affix.u.s.n > s.u.s.n) return 0;
    const char *p = at_end ? s.u.s.p + s.u.s.n - affix.u.s.n : s.u.s.p;
    return memcmp(p, affix.u.s.p, affix.u.s.n) == 0;
}

static ct_value pad(ct_render *r, ct_value s, int64_t width, ct_value fill, int align) {
    uint32_t fc = ' ';
    if (!ABSENT(fill)) {
        fill = arg_str(r, fill, "the fill character");
        if (qrm_ct_cp_count(fill.u.s.p, fill.u.s.n) != 1) qrm_ct_fail(r, "The fill character must be exactly one character long");
        size_t i = 0;
        fc = qrm_ct_next_cp(fill.u.s.p, fill.u.s.n, &i);
    }
    int64_t len = (int64_t)qrm_ct_cp_count(s.u.s.p, s.u.s.n);
    if (width <= len) return s;
    if (width > QRM_TEMPLATE_MAX_OUTPUT) qrm_ct_fail(r, "width too large");
    int64_t marg = width - len, left;
    if (align == '<') left = 0;
    else if (align == '>') left = marg;
    else left = marg / 2 + (marg & width & 1);
    ct_sbuf b = {0};
    for (int64_t i = 0; i < left; i++) qrm_ct_sb_put_cp(r, &b, fc);
    qrm_ct_sb_put(r, &b, s.u.s.p, s.u.s.n);
    for (int64_t i = left; i < marg; i++) qrm_ct_sb_put_cp(r, &b, fc);
    return qrm_ct_sb_value(&b);
}

/* str.isX(): every character passes and there is at least one. */
static int all_chars(ct_render *r, ct_value s, int which) {
    if (s.u.s.n == 0) return which == M_ISASCII || which == M_ISPRINTABLE;
    size_t i = 0;
    int any_cased = 0, prev_cased = 0;
    while (i < s.u.s.n) {
        uint32_t cp = qrm_ct_next_cp(s.u.s.p, s.u.s.n, &i);
        unsigned f = qrm_uni_flags(cp);
        int up = 0, lo = 0, cased;
        switch (which) {
        case M_ISDIGIT:
        case M_ISDECIMAL:
            if (cp < 0x80 ? !(cp >= '0' && cp <= '9') : !(f & QRM_UNI_N)) return 0;
            break;
        case M_ISNUMERIC:
            if (!(f & QRM_UNI_N)) return 0;
            break;
        case M_ISALPHA:
            if (!(f & QRM_UNI_L)) return 0;
            break;
        case M_ISALNUM:
            if (!(f & (QRM_UNI_L | QRM_UNI_N))) return 0;
            break;
        case M_ISSPACE:
            if (!qrm_ct_py_isspace(cp)) return 0;
            break;
        case M_ISASCII:
            if (cp >= 0x80) return 0;
            break;
        case M_ISPRINTABLE:
            if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0xA0) || cp == 0xAD || cp == 0x2028 ||
                cp == 0x2029 || (cp >= 0x200B && cp <= 0x200F) || cp == 0xFEFF)
                return 0;
            break;
        case M_ISIDENTIFIER:
            if (!(cp == '_' || (f & QRM_UNI_L) || ((f & QRM_UNI_N) && i > 1 && cp >= '0'))) return 0;
            break;
        case M_ISUPPER:
        case M_ISLOWER:
            if (qrm_ct_is_cased(r, cp, &up, &lo)) {
                if (which == M_ISUPPER ? lo : up) return 0;
                any_cased = 1;
            }
            break;
        case M_ISTITLE:
            cased = qrm_ct_is_cased(r, cp, &up, &lo);
            if (cased) {
                if (up && prev_cased) return 0;
                if (lo && !prev_cased) return 0;
                any_cased = 1;
            }
            prev_cased = cased;
            break;
        }
    }
    if (which == M_ISUPPER || which == M_ISLOWER || which == M_ISTITLE) return any_cased;
    return 1;
}

/* ---------------------------------------------------------------- str.format */

static ct_value format_field_value(ct_render *r, const char *f, size_t n, ct_args *a, size_t *auto_idx) {
    size_t i = 0;
    while (i < n && f[i] != '.' && f[i] != '[') i++;
    ct_value v;
    if (i == 0) {
        if (*auto_idx >= a->npos) qrm_ct_fail(r, "format: Replacement index %zu out of range", *auto_idx);
        v = a->pos[(*auto_idx)++];
    } else if (f[0] >= '0' && f[0] <= '9') {
        int64_t k;
        if (qrm_ct_parse_int(f, i, 10, &k) != 1 || k < 0 || (size_t)k >= a->npos)
            qrm_ct_fail(r, "format: Replacement index %.*s out of range", (int)i, f);
        v = a->pos[k];
    } else {
        size_t k = 0;
        while (k < a->nkw && !(strlen(a->kw_names[k]) == i && memcmp(a->kw_names[k], f, i) == 0)) k++;
        if (k == a->nkw) qrm_ct_fail(r, "format: KeyError '%.*s'", (int)i, f);
        v = a->kw[k];
    }
    while (i < n) { /* .attr and [key] */
        if (f[i] == '.') {
            size_t s = ++i;
            while (i < n && f[i] != '.' && f[i] != '[') i++;
            v = qrm_ct_getattr(r, v, f + s, i - s);
        } else {
            size_t s = ++i;
            while (i < n && f[i] != ']') i++;
            if (i >= n) qrm_ct_fail(r, "format: missing ']' in format string");
            int64_t k;
            ct_value key = qrm_ct_parse_int(f + s, i - s, 10, &k) == 1 ? qrm_ct_int(k) : qrm_ct_str(f + s, i - s);
            v = qrm_ct_getitem(r, v, key);
            i++;
        }
        if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    }
    return v;
}

/* The format spec mini-language: [[fill]align][sign][0][width][.precision][type]. */
static void format_spec(ct_render *r, ct_sbuf *b, ct_value v, const char *s, size_t n) {
    size_t i = 0;
    uint32_t fill = ' ';
    int align = 0;
    size_t j = 0;
    if (n) {
        uint32_t c0 = qrm_ct_next_cp(s, n, &j);
        if (j < n && strchr("<>^=", s[j])) {
            fill = c0;
            align = s[j];
            i = j + 1;
        } else if (strchr("<>^=", (int)c0) && c0 < 0x80) {
            align = (int)c0;
            i = 1;
        }
    }
    char sign = 0;
    if (i < n && strchr("+- ", s[i])) sign = s[i++];
    int zero = 0;
    if (i < n && s[i] == '0') zero = 1, i++;
    int64_t width = 0, prec = -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') width = width * 10 + (s[i++] - '0');
    if (i < n && s[i] == '.') {
        prec = 0;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') prec = prec * 10 + (s[i++] - '0');
    }
    char type = i < n ? s[i++] : 0;
    if (i != n || width > 10000 || prec > 300) qrm_ct_fail(r, "unsupported: format spec '%.*s'", (int)n, s);
    char tmp[400];
    ct_value text;
    int numeric = qrm_ct_is_number(v) && v.type != CT_BOOL;
    if (v.type == CT_BOOL && type) numeric = 1;
    if (v.type == CT_STR || (!numeric && !type)) {
        if (sign || zero || (type && type != 's')) qrm_ct_fail(r, "unsupported: format spec '%.*s' for %s", (int)n, s, qrm_ct_type_name(v));
        text = qrm_ct_to_str(r, v);
        if (prec >= 0) text = qrm_ct_str_slice(r, text, 0, prec, 1, 1, 1);
        if (!align) align = '<';
    } else if (numeric) {
        char fmt[32];
        int64_t iv = v.type == CT_INT ? v.u.i : v.type == CT_BOOL ? v.u.b : 0;
        if (v.type != CT_FLOAT && (type == 0 || type == 'd')) {
            snprintf(tmp, sizeof tmp, sign == '+' ? "%+lld" : sign == ' ' ? "% lld" : "%lld", (long long)iv);
        } else if (v.type != CT_FLOAT && strchr("xXob", type) && iv >= 0) {
            if (type == 'b') {
                char bits[70];
                int k = 0;
                uint64_t u = (uint64_t)iv;
                do bits[k++] = (char)('0' + (u & 1)); while (u >>= 1);
                for (int q = 0; q < k; q++) tmp[q] = bits[k - 1 - q];
                tmp[k] = 0;
            } else {
                snprintf(fmt, sizeof fmt, "%%ll%c", type);
                snprintf(tmp, sizeof tmp, fmt, (long long)iv);
            }
        } else if (type && strchr("fFeEgG%", type)) {
            double d = qrm_ct_as_double(v);
            if (type == '%') d *= 100;
            if (fabs(d) >= 1e100 && (type == 'f' || type == 'F' || type == '%')) qrm_ct_fail(r, "unsupported: huge number in format");
            snprintf(fmt, sizeof fmt, "%%%s.%d%c", sign == '+' ? "+" : sign == ' ' ? " " : "", (int)(prec < 0 ? 6 : prec),
                     type == '%' ? 'f' : type);
            snprintf(tmp, sizeof tmp, fmt, d);
            if (type == '%') strcat(tmp, "%");
        } else if (v.type == CT_FLOAT && type == 0 && prec < 0) {
            qrm_ct_format_float(v.u.f, tmp, sizeof tmp);
            if (sign == '+' && v.u.f >= 0) memmove(tmp + 1, tmp, strlen(tmp) + 1), tmp[0] = '+';
        } else {
            qrm_ct_fail(r, "unsupported: format spec '%.*s' for %s", (int)n, s, qrm_ct_type_name(v));
        }
        text = qrm_ct_str_copy(r, tmp, strlen(tmp));
        if (zero && !align) {
            align = '=';
            fill = '0';
        }
        if (!align) align = '>';
    } else {
        qrm_ct_fail(r, "unsupported: format spec '%.*s' for %s", (int)n, s, qrm_ct_type_name(v));
    }
    int64_t len = (int64_t)qrm_ct_cp_count(text.u.s.p, text.u.s.n);
    int64_t marg = width > len ? width - len : 0;
    if (align == '=') { /* padding after the sign */
        size_t sg = text.u.s.n && strchr("+- ", text.u.s.p[0]) ? 1 : 0;
        qrm_ct_sb_put(r, b, text.u.s.p, sg);
        for (int64_t k = 0; k < marg; k++) qrm_ct_sb_put_cp(r, b, fill);
        qrm_ct_sb_put(r, b, text.u.s.p + sg, text.u.s.n - sg);
        return;
    }
    int64_t left = align == '<' ? 0 : align == '>' ? marg : marg / 2;
    for (int64_t k = 0; k < left; k++) qrm_ct_sb_put_cp(r, b, fill);
    qrm_ct_sb_put(r, b, text.u.s.p, text.u.s.n);
    for (int64_t k = left; k < marg; k++) qrm_ct_sb_put_cp(r, b, fill);
}

static ct_value str_format(ct_render *r, ct_value fmt, ct_args *a) {
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.n, i = 0, auto_idx = 0;
    ct_sbuf b = {0};
    while (i < n) {
        char c = p[i];
        if (c == '{' && i + 1 < n && p[i + 1] == '{') {
            qrm_ct_sb_putc(r, &b, '{');
            i += 2;
        } else if (c == '}' && i + 1 < n && p[i + 1] == '}') {
            qrm_ct_sb_putc(r, &b, '}');
            i += 2;
        } else if (c == '}') {
            qrm_ct_fail(r, "format: Single '}' encountered in format string");
        } else if (c == '{') {
            size_t s = ++i;
            int depth = 0;
            while (i < n && (p[i] != '}' || depth)) {
                if (p[i] == '{') depth++;
                if (p[i] == '}') depth--;
                i++;
            }
            if (i >= n) qrm_ct_fail(r, "format: expected '}' before end of string");
            const char *f = p + s;
            size_t fn = i - s, name_end = 0;
            i++;
            while (name_end < fn && f[name_end] != '!' && f[name_end] != ':') name_end++;
            if (memchr(f, '{', fn)) qrm_ct_fail(r, "unsupported: nested replacement fields in format");
            ct_value v = format_field_value(r, f, name_end, a, &auto_idx);
            size_t k = name_end;
            if (k < fn && f[k] == '!') {
                char conv = k + 1 < fn ? f[k + 1] : 0;
                ct_sbuf cb = {0};
                if (conv == 's') qrm_ct_put_str(r, &cb, v);
                else if (conv == 'r') qrm_ct_put_repr(r, &cb, v);
                else qrm_ct_fail(r, "unsupported: format conversion '!%c'", conv ? conv : '?');
                v = qrm_ct_sb_value(&cb);
                k += 2;
            }
            if (k < fn && f[k] == ':') format_spec(r, &b, v, f + k + 1, fn - k - 1);
            else if (k < fn) qrm_ct_fail(r, "format: expected ':' after conversion specifier");
            else qrm_ct_put_str(r, &b, v);
        } else {
            const char *next = memchr(p + i, '{', n - i), *close = memchr(p + i, '}', n - i);
            const char *stop = !next ? close : !close ? next : next < close ? next : close;
            size_t z = stop ? (size_t)(stop - p) : n;
            qrm_ct_sb_put(r, &b, p + i, z - i);
            i = z;
        }
    }
    return qrm_ct_sb_value(&b);
}

/* ---------------------------------------------------------------- method calls */

static ct_value call_str_method(ct_render *r, ct_value s, int id, ct_args *a) {
    static const char *const p_chars[] = {"chars"};
    static const char *const p_affix[] = {"prefix", "start", "end"};
    static const char *const p_split[] = {"sep", "maxsplit"};
    static const char *const p_keep[] = {"keepends"};
    static const char *const p_replace[] = {"old", "new", "count"};
    static const char *const p_sub[] = {"sub", "start", "end"};
    static const char *const p_iter[] = {"iterable"};
    static const char *const p_width[] = {"width", "fillchar"};
    static const char *const p_one[] = {"arg"};
    const char *name = method_name(id);
    ct_value x[4];
    int64_t off;
    qrm_ct_charge(r, s.u.s.n);
    switch (id) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
        qrm_ct_bind(r, name, a, p_chars, 1, x);
        return qrm_ct_str_strip(r, s, x[0], id != M_RSTRIP, id != M_LSTRIP);
    case M_STARTSWITH:
    case M_ENDSWITH:
        qrm_ct_bind(r, name, a, p_affix, 3, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "%s() takes at least 1 argument", name);
        return qrm_ct_bool(affix_match(r, sub_range(r, s, x[1], x[2], &off), x[0], id == M_ENDSWITH));
    case M_SPLIT:
    case M_RSPLIT:
        qrm_ct_bind(r, name, a, p_split, 2, x);
        return qrm_ct_str_split(r, s, x[0], ABSENT(x[1]) ? -1 : arg_int(r, x[1], name), id == M_RSPLIT);
    case M_SPLITLINES:
        qrm_ct_bind(r, name, a, p_keep, 1, x);
        return qrm_ct_str_splitlines(r, s, !ABSENT(x[0]) && qrm_ct_truthy(r, x[0]));
    case M_REPLACE:
        qrm_ct_bind(r, name, a, p_replace, 3, x);
        if (ABSENT(x[0]) || ABSENT(x[1])) qrm_ct_fail(r, "replace() takes at least 2 arguments");
        return qrm_ct_str_replace(r, s, arg_str(r, x[0], name), arg_str(r, x[1], name),
                                  ABSENT(x[2]) ? -1 : arg_int(r, x[2], name));
    case M_UPPER:
    case M_LOWER:
    case M_CASEFOLD: {
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        ct_sbuf b = {0};
        if (id == M_CASEFOLD) {
            ct_value sharp = qrm_ct_str("\xc3\x9f", 2);
            s = qrm_ct_str_replace(r, s, sharp, qrm_ct_str("ss", 2), -1);
        }
        qrm_ct_put_case(r, &b, s.u.s.p, s.u.s.n, id == M_UPPER ? CT_CASE_UPPER : CT_CASE_LOWER);
        ct_value out = qrm_ct_sb_value(&b);
        out.markup = s.markup;
        return out;
    }
    case M_SWAPCASE: {
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        ct_sbuf b = {0};
        size_t i = 0;
        while (i < s.u.s.n) {
            size_t at = i;
            uint32_t cp = qrm_ct_next_cp(s.u.s.p, s.u.s.n, &i);
            int up, lo;
            qrm_ct_is_cased(r, cp, &up, &lo);
            qrm_ct_put_case(r, &b, s.u.s.p + at, i - at, up ? CT_CASE_LOWER : CT_CASE_UPPER);
        }
        return qrm_ct_sb_value(&b);
    }
    case M_TITLE:
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        return qrm_ct_str_pytitle(r, s);
    case M_CAPITALIZE:
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        return qrm_ct_str_capitalize(r, s);
    case M_FIND:
    case M_RFIND:
    case M_INDEX:
    case M_RINDEX:
    case M_COUNT: {
        qrm_ct_bind(r, name, a, p_sub, 3, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "%s() takes at least 1 argument", name);
        ct_value sub = arg_str(r, x[0], name);
        ct_value hay = sub_range(r, s, x[1], x[2], &off);
        if (id == M_COUNT) return qrm_ct_int((int64_t)qrm_ct_str_count(hay.u.s.p, hay.u.s.n, sub.u.s.p, sub.u.s.n));
        int64_t at = qrm_ct_str_find(hay.u.s.p, hay.u.s.n, sub.u.s.p, sub.u.s.n, id == M_RFIND || id == M_RINDEX);
        if (at < 0) {
            /* a slice past the end still finds "" in CPython only when start <= len */
            if (id == M_INDEX || id == M_RINDEX) qrm_ct_fail(r, "substring not found");
            return qrm_ct_int(-1);
        }
        return qrm_ct_int(at + off);
    }
    case M_JOIN: {
        qrm_ct_bind(r, name, a, p_iter, 1, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "join() takes exactly one argument");
        if (x[0].type == CT_UNDEF) qrm_ct_fail_undef(r, x[0]);
        size_t n;
        ct_value *items = qrm_ct_iterate(r, x[0], &n);
        ct_sbuf b = {0};
        for (size_t i = 0; i < n; i++) {
            if (items[i].type != CT_STR)
                qrm_ct_fail(r, "sequence item %zu: expected str instance, %s found", i, qrm_ct_type_name(items[i]));
            if (i) qrm_ct_sb_put(r, &b, s.u.s.p, s.u.s.n);
            qrm_ct_sb_put(r, &b, items[i].u.s.p, items[i].u.s.n);
        }
        return qrm_ct_sb_value(&b);
    }
    case M_FORMAT: return str_format(r, s, a);
    case M_ISDIGIT:
    case M_ISALPHA:
    case M_ISALNUM:
    case M_ISSPACE:
    case M_ISUPPER:
    case M_ISLOWER:
    case M_ISTITLE:
    case M_ISNUMERIC:
    case M_ISDECIMAL:
    case M_ISASCII:
    case M_ISIDENTIFIER:
    case M_ISPRINTABLE:
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        if (id == M_ISIDENTIFIER && s.u.s.n && s.u.s.p[0] >= '0' && s.u.s.p[0] <= '9') return qrm_ct_bool(0);
        return qrm_ct_bool(all_chars(r, s, id));
    case M_LJUST:
    case M_RJUST:
    case M_CENTER:
        qrm_ct_bind(r, name, a, p_width, 2, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "%s() takes at least 1 argument", name);
        return pad(r, s, arg_int(r, x[0], name), x[1], id == M_LJUST ? '<' : id == M_RJUST ? '>' : '^');
    case M_ZFILL: {
        qrm_ct_bind(r, name, a, p_width, 1, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "zfill() takes exactly one argument");
        int64_t width = arg_int(r, x[0], name), len = (int64_t)qrm_ct_cp_count(s.u.s.p, s.u.s.n);
        if (width <= len) return s;
        if (width > QRM_TEMPLATE_MAX_OUTPUT) qrm_ct_fail(r, "width too large");
        ct_sbuf b = {0};
        size_t sg = s.u.s.n && (s.u.s.p[0] == '+' || s.u.s.p[0] == '-');
        qrm_ct_sb_put(r, &b, s.u.s.p, sg);
        for (int64_t i = len; i < width; i++) qrm_ct_sb_putc(r, &b, '0');
        qrm_ct_sb_put(r, &b, s.u.s.p + sg, s.u.s.n - sg);
        return qrm_ct_sb_value(&b);
    }
    case M_REMOVEPREFIX:
    case M_REMOVESUFFIX: {
        qrm_ct_bind(r, name, a, p_one, 1, x);
        ct_value affix = arg_str(r, x[0], name);
        if (!affix_match(r, s, affix, id == M_REMOVESUFFIX)) return s;
        if (id == M_REMOVEPREFIX) return qrm_ct_str(s.u.s.p + affix.u.s.n, s.u.s.n - affix.u.s.n);
        return qrm_ct_str(s.u.s.p, s.u.s.n - affix.u.s.n);
    }
    case M_PARTITION:
    case M_RPARTITION: {
        qrm_ct_bind(r, name, a, p_one, 1, x);
        ct_value sep = arg_str(r, x[0], name);
        if (sep.u.s.n == 0) qrm_ct_fail(r, "empty separator");
        ct_value parts = qrm_ct_str_split(r, s, sep, 1, id == M_RPARTITION);
        ct_value t = qrm_ct_list_new(r, 3, CT_LK_TUPLE);
        ct_list *pl = parts.u.list;
        if (pl->n == 2) {
            t.u.list->items[0] = pl->items[0];
            t.u.list->items[1] = sep;
            t.u.list->items[2] = pl->items[1];
        } else {
            ct_value empty = qrm_ct_str("", 0);
            t.u.list->items[0] = id == M_PARTITION ? s : empty;
            t.u.list->items[1] = empty;
            t.u.list->items[2] = id == M_PARTITION ? empty : s;
        }
        return t;
    }
    }
    qrm_ct_fail(r, "unsupported method str.%s()", name);
}

/* markupsafe.Markup: string arguments are escaped first and string
 * results (also inside lists and tuples) stay Markup. */
static ct_value call_markup_method(ct_render *r, ct_value s, int id, ct_args *a) {
    ct_args e = *a;
    e.pos = qrm_ct_alloc(r, (a->npos + 1) * sizeof(ct_value));
    e.kw = qrm_ct_alloc(r, (a->nkw + 1) * sizeof(ct_value));
    for (size_t i = 0; i < a->npos; i++)
        e.pos[i] = a->pos[i].type == CT_STR && id != M_SPLIT && id != M_RSPLIT && id != M_PARTITION && id != M_RPARTITION
                       ? qrm_ct_html_escape(r, a->pos[i]) : a->pos[i];
    for (size_t i = 0; i < a->nkw; i++) e.kw[i] = a->kw[i].type == CT_STR ? qrm_ct_html_escape(r, a->kw[i]) : a->kw[i];
    if (id == M_JOIN && e.npos == 1 && e.pos[0].type != CT_UNDEF) {
        size_t n;
        ct_value *items = qrm_ct_iterate(r, e.pos[0], &n);
        ct_value l = qrm_ct_list_new(r, n, CT_LK_LIST);
        for (size_t i = 0; i < n; i++) l.u.list->items[i] = items[i].type == CT_STR ? qrm_ct_html_escape(r, items[i]) : items[i];
        e.pos[0] = l;
    }
    ct_value out = call_str_method(r, s, id, &e);
    if (out.type == CT_STR) out.markup = 1;
    if (out.type == CT_LIST)
        for (size_t i = 0; i < out.u.list->n; i++)
            if (out.u.list->items[i].type == CT_STR) out.u.list->items[i].markup = 1;
    return out;
}

static ct_value view(ct_render *r, ct_dict *d, int kind) {
    ct_value l = qrm_ct_list_new(r, d->n, kind);
    for (size_t i = 0; i < d->n; i++) {
        if (kind == CT_LK_KEYS) {
            l.u.list->items[i] = d->keys[i];
        } else if (kind == CT_LK_VALUES) {
            l.u.list->items[i] = d->vals[i];
        } else {
            ct_value t = qrm_ct_list_new(r, 2, CT_LK_TUPLE);
            t.u.list->items[0] = d->keys[i];
            t.u.list->items[1] = d->vals[i];
            l.u.list->items[i] = t;
        }
    }
    return l;
}

ct_value qrm_ct_call_method(ct_render *r, ct_method *m, ct_args *a) {
    static const char *const p_get[] = {"key", "default"};
    static const char *const p_x[] = {"x", "start", "end"};
    ct_value self = m->self, x[3];
    const char *name = method_name(m->id);
    if (m->id == M_UNSUPPORTED) qrm_ct_fail(r, "unsupported method");
    if (self.type == CT_LIST) qrm_ct_charge(r, self.u.list->n * 16);
    if (self.type == CT_STR && self.markup) return call_markup_method(r, self, m->id, a);
    if (self.type == CT_STR) return call_str_method(r, self, m->id, a);
    switch (m->id) {
    case M_GET: {
        qrm_ct_bind(r, "get", a, p_get, 2, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "get expected at least 1 argument, got 0");
        ct_value *hit = qrm_ct_dict_find(r, self.u.dict, x[0]);
        if (hit) return *hit;
        return ABSENT(x[1]) ? qrm_ct_none() : x[1];
    }
    case M_ITEMS:
    case M_KEYS:
    case M_VALUES:
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        return view(r, self.u.dict, m->id == M_ITEMS ? CT_LK_ITEMS : m->id == M_KEYS ? CT_LK_KEYS : CT_LK_VALUES);
    case M_DICT_COPY: {
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        ct_value d = qrm_ct_dict_new(r);
        for (size_t i = 0; i < self.u.dict->n; i++) qrm_ct_dict_set(r, d.u.dict, self.u.dict->keys[i], self.u.dict->vals[i]);
        return d;
    }
    case M_LIST_COPY: {
        qrm_ct_bind(r, name, a, NULL, 0, NULL);
        ct_value l = qrm_ct_list_new(r, self.u.list->n, CT_LK_LIST);
        memcpy(l.u.list->items, self.u.list->items, self.u.list->n * sizeof(ct_value));
        return l;
    }
    case M_SEQ_COUNT:
    case M_SEQ_INDEX: {
        qrm_ct_bind(r, name, a, p_x, m->id == M_SEQ_COUNT ? 1 : 3, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "%s() takes at least 1 argument", name);
        ct_list *l = self.u.list;
        int64_t start = 0, stop = (int64_t)l->n;
        if (m->id == M_SEQ_INDEX) {
            int hs = !ABSENT(x[1]), he = !ABSENT(x[2]);
            if (hs) start = arg_int(r, x[1], name);
            if (he) stop = arg_int(r, x[2], name);
            qrm_ct_slice_indices((int64_t)l->n, &start, &stop, 1, hs, he);
        }
        int64_t count = 0;
        for (int64_t i = start; i < stop; i++) {
            if (!qrm_ct_equal(r, l->items[i], x[0])) continue;
            if (m->id == M_SEQ_INDEX) return qrm_ct_int(i);
            count++;
        }
        if (m->id == M_SEQ_INDEX) qrm_ct_fail(r, "%s.index(x): x not in %s", qrm_ct_type_name(self), qrm_ct_type_name(self));
        return qrm_ct_int(count);
    }
    case M_CYCLE: {
        if (a->nkw) qrm_ct_fail(r, "cycle() takes no keyword arguments");
        if (a->npos == 0) qrm_ct_fail(r, "no items for cycling given");
        return a->pos[self.u.loop->i % a->npos];
    }
    case M_CHANGED: {
        if (a->nkw) qrm_ct_fail(r, "changed() takes no keyword arguments");
        ct_loop *l = self.u.loop;
        ct_value now = qrm_ct_list_new(r, a->npos, CT_LK_LIST);
        memcpy(now.u.list->items, a->pos, a->npos * sizeof(ct_value));
        if (l->has_changed && qrm_ct_equal(r, l->last_changed, now)) return qrm_ct_bool(0);
        l->has_changed = 1;
        l->last_changed = now;
        return qrm_ct_bool(1);
    }
    }
    qrm_ct_fail(r, "unsupported method %s.%s()", qrm_ct_type_name(self), name);
}

/* ---------------------------------------------------------------- globals */

static const char *const global_names[CT_FN_COUNT] = {
    "range", "namespace", "dict", "raise_exception", "strftime_now", "cycler", "joiner", "lipsum",
};

const char *qrm_ct_global_name(int fn) { return fn >= 0 && fn < CT_FN_COUNT ? global_names[fn] : "?"; }

#define MAX_RANGE 100000 /* the sandbox's limit, with the same message */

static ct_value make_range(ct_render *r, ct_args *a) {
    if (a->nkw) qrm_ct_fail(r, "range() takes no keyword arguments");
    if (a->npos < 1 || a->npos > 3) qrm_ct_fail(r, "range expected 1 to 3 arguments, got %zu", a->npos);
    int64_t start = 0, stop, step = 1;
    if (a->npos == 1) {
        stop = arg_int(r, a->pos[0], "range");
    } else {
        start = arg_int(r, a->pos[0], "range");
        stop = arg_int(r, a->pos[1], "range");
        if (a->npos == 3) step = arg_int(r, a->pos[2], "range");
    }
    if (step == 0) qrm_ct_fail(r, "range() arg 3 must not be zero");
    /* the length, estimated without overflow before the exact count */
    double len_d = step > 0 ? ((double)stop - (double)start) / (double)step : ((double)start - (double)stop) / (double)-step;
    if (len_d > MAX_RANGE + 1)
        qrm_ct_fail(r, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", MAX_RANGE);
    size_t count = 0;
    if (step > 0 && start < stop) count = (size_t)((stop - start - 1) / step + 1);
    if (step < 0 && start > stop) count = (size_t)((start - stop - 1) / (-step) + 1);
    if (count > MAX_RANGE)
        qrm_ct_fail(r, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", MAX_RANGE);
    ct_value l = qrm_ct_list_new(r, count, CT_LK_RANGE);
    for (size_t i = 0; i < count; i++) l.u.list->items[i] = qrm_ct_int(start + (int64_t)i * step);
    l.u.list->start = start;
    l.u.list->stop = stop;
    l.u.list->step = step;
    return l;
}

/* dict(*args, **kwargs): a mapping or pairs, then keywords. */
static ct_value make_dict(ct_render *r, ct_args *a, const char *fname) {
    if (a->npos > 1) qrm_ct_fail(r, "%s expected at most 1 argument, got %zu", fname, a->npos);
    ct_value d = qrm_ct_dict_new(r);
    if (a->npos == 1) {
        ct_value src = a->pos[0];
        if (src.type == CT_DICT || src.type == CT_NS) {
            for (size_t i = 0; i < src.u.dict->n; i++) qrm_ct_dict_set(r, d.u.dict, src.u.dict->keys[i], src.u.dict->vals[i]);
        } else {
            if (src.type == CT_UNDEF) qrm_ct_fail_undef(r, src);
            size_t n;
            ct_value *items = qrm_ct_iterate(r, src, &n);
            for (size_t i = 0; i < n; i++) {
                size_t m;
                if (items[i].type != CT_LIST && items[i].type != CT_STR && items[i].type != CT_ITER)
                    qrm_ct_fail(r, "cannot convert dictionary update sequence element #%zu to a sequence", i);
                ct_value *kv = qrm_ct_iterate(r, items[i], &m);
                if (m != 2) qrm_ct_fail(r, "dictionary update sequence element #%zu has length %zu; 2 is required", i, m);
                qrm_ct_dict_set(r, d.u.dict, kv[0], kv[1]);
            }
        }
    }
    for (size_t i = 0; i < a->nkw; i++)
        qrm_ct_dict_set(r, d.u.dict, qrm_ct_str(a->kw_names[i], strlen(a->kw_names[i])), a->kw[i]);
    return d;
}

ct_value qrm_ct_call_global(ct_render *r, int fn, ct_args *a) {
    switch (fn) {
    case CT_FN_RANGE: return make_range(r, a);
    case CT_FN_NAMESPACE: {
        ct_value ns = make_dict(r, a, "namespace");
        ns.type = CT_NS;
        return ns;
    }
    case CT_FN_DICT: return make_dict(r, a, "dict");
    case CT_FN_RAISE_EXCEPTION: {
        static const char *const p[] = {"message"};
        ct_value x[1];
        qrm_ct_bind(r, "raise_exception", a, p, 1, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "raise_exception() missing 1 required positional argument: 'message'");
        ct_value msg = qrm_ct_to_str(r, x[0]);
        qrm_ct_fail(r, "raise_exception: %.*s", (int)(msg.u.s.n > 400 ? 400 : msg.u.s.n), msg.u.s.p);
    }
    case CT_FN_STRFTIME_NOW: {
        static const char *const p[] = {"format"};
        ct_value x[1];
        qrm_ct_bind(r, "strftime_now", a, p, 1, x);
        if (ABSENT(x[0])) qrm_ct_fail(r, "strftime_now() missing 1 required positional argument: 'format'");
        ct_value f = arg_str(r, x[0], "strftime_now");
        if (f.u.s.n > 256 || memchr(f.u.s.p, 0, f.u.s.n)) qrm_ct_fail(r, "strftime_now: format too long");
        char fmt[260], out[1024];
        memcpy(fmt, f.u.s.p, f.u.s.n);
        fmt[f.u.s.n] = 0;
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        size_t n = strftime(out, sizeof out, fmt, &tmv);
        if (n == 0 && f.u.s.n) qrm_ct_fail(r, "strftime_now: result too long");
        return qrm_ct_str_copy(r, out, n);
    }
    default: qrm_ct_fail(r, "unsupported function '%s'", qrm_ct_global_name(fn));
    }
}
