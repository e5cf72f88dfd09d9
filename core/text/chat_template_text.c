/* Chat templates: Python str semantics on UTF-8 strings. Python strings are
 * sequences of code points, so lengths, indexes and slices count code points,
 * and whitespace and letter case follow Python's Unicode rules. Case mapping
 * covers Latin, Greek, Cyrillic and fullwidth Latin; other cased scripts
 * (Armenian, Georgian, Cherokee, ...) are an error rather than a guess. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat_template_internal.h"

/* ---------------------------------------------------------------- code points */

uint32_t qrm_ct_next_cp(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s + *i;
    size_t left = n - *i;
    uint32_t c = u[0];
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if ((size_t)len > left || c >= 0xF8 || (c >= 0x80 && c < 0xC0)) {
        *i += 1; /* not valid UTF-8: inputs are validated, so this never happens */
        return c;
    }
    if (len == 1) {
        *i += 1;
        return c;
    }
    c &= len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07;
    for (int k = 1; k < len; k++) c = (c << 6) | (u[k] & 0x3F);
    *i += (size_t)len;
    return c;
}

size_t qrm_ct_cp_count(const char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) count++;
    return count;
}

size_t qrm_ct_cp_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    while (k > 0 && i < n) {
        qrm_ct_next_cp(s, n, &i);
        k--;
    }
    return i;
}

/* str.isspace(): Unicode White_Space plus the information separators. */
int qrm_ct_py_isspace(uint32_t cp) {
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---------------------------------------------------------------- letter case */

enum { CASE_NONE, CASE_UPPER, CASE_LOWER, CASE_UNKNOWN };

/* Classifies cp and gives its simple upper and lower mappings (0: itself).
 * CASE_UNKNOWN: a cased script without tables here. */
static int case_info(uint32_t cp, uint32_t *up, uint32_t *lo) {
    *up = *lo = 0;
    if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z') return *lo = cp + 32, CASE_UPPER;
        if (cp >= 'a' && cp <= 'z') return *up = cp - 32, CASE_LOWER;
        return CASE_NONE;
    }
    if (cp < 0x100) {
        if (cp == 0xAA || cp == 0xBA || cp == 0xDF) return CASE_LOWER;
        if (cp == 0xB5) return *up = 0x39C, CASE_LOWER;
        if (cp == 0xFF) return *up = 0x178, CASE_LOWER;
        if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return *lo = cp + 32, CASE_UPPER;
        if (cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) return *up = cp - 32, CASE_LOWER;
        return CASE_NONE;
    }
    /* pairs: [first, last] where the even (or odd) member is upper case */
    static const struct {
        uint32_t first, last;
        int upper_parity;
    } pairs[] = {
        {0x100, 0x12F, 0}, {0x132, 0x137, 0}, {0x139, 0x148, 1}, {0x14A, 0x177, 0},
        {0x179, 0x17E, 1}, {0x1A0, 0x1A5, 0}, {0x1CD, 0x1DC, 1}, {0x1DE, 0x1EF, 0},
        {0x1F8, 0x21F, 0}, {0x222, 0x233, 0}, {0x460, 0x481, 0}, {0x48A, 0x4BF, 0},
        {0x4C1, 0x4CE, 1}, {0x4D0, 0x52F, 0}, {0x1E00, 0x1E95, 0}, {0x1EA0, 0x1EFF, 0},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        if (cp < pairs[k].first || cp > pairs[k].last) continue;
        if ((int)(cp & 1) == pairs[k].upper_parity) return *lo = cp + 1, CASE_UPPER;
        return *up = cp - 1, CASE_LOWER;
    }
    switch (cp) {
    case 0x130: return CASE_UPPER;               /* İ: lower is "i̇", handled by the caller */
    case 0x131: return *up = 'I', CASE_LOWER;
    case 0x138: return CASE_LOWER;
    case 0x149: return CASE_LOWER;               /* ŉ: upper is "ʼN" */
    case 0x178: return *lo = 0xFF, CASE_UPPER;
    case 0x17F: return *up = 'S', CASE_LOWER;
    case 0x1AF: return *lo = 0x1B0, CASE_UPPER;
    case 0x1B0: return *up = 0x1AF, CASE_LOWER;
    case 0x386: return *lo = 0x3AC, CASE_UPPER;
    case 0x38C: return *lo = 0x3CC, CASE_UPPER;
    case 0x390: return CASE_LOWER;               /* ΐ: upper is three code points */
    case 0x3B0: return CASE_LOWER;
    case 0x3AC: return *up = 0x386, CASE_LOWER;
    case 0x3CC: return *up = 0x38C, CASE_LOWER;
    case 0x3C2: return *up = 0x3A3, CASE_LOWER;
    case 0x4C0: return *lo = 0x4CF, CASE_UPPER;
    case 0x4CF: return *up = 0x4C0, CASE_LOWER;
    case 0x1E9E: return *lo = 0xDF, CASE_UPPER;
    }
    if (cp >= 0x388 && cp <= 0x38A) return *lo = cp + 37, CASE_UPPER;
    if (cp >= 0x3AD && cp <= 0x3AF) return *up = cp - 37, CASE_LOWER;
    if (cp >= 0x38E && cp <= 0x38F) return *lo = cp + 63, CASE_UPPER;
    if (cp >= 0x3CD && cp <= 0x3CE) return *up = cp - 63, CASE_LOWER;
    if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return *lo = cp + 32, CASE_UPPER;
    if (cp >= 0x3B1 && cp <= 0x3CB) return *up = cp - 32, CASE_LOWER;
    if (cp >= 0x400 && cp <= 0x40F) return *lo = cp + 80, CASE_UPPER;
    if (cp >= 0x410 && cp <= 0x42F) return *lo = cp + 32, CASE_UPPER;
    if (cp >= 0x430 && cp <= 0x44F) return *up = cp - 32, CASE_LOWER;
    if (cp >= 0x450 && cp <= 0x45F) return *up = cp - 80, CASE_LOWER;
    if (cp >= 0xFF21 && cp <= 0xFF3A) return *lo = cp + 32, CASE_UPPER;
    if (cp >= 0xFF41 && cp <= 0xFF5A) return *up = cp - 32, CASE_LOWER;
    static const uint32_t unknown[][2] = {
        {0x180, 0x24F}, {0x250, 0x2AF}, {0x345, 0x345}, {0x370, 0x373}, {0x376, 0x377},
        {0x37B, 0x37D}, {0x37F, 0x37F}, {0x3CF, 0x3FF}, {0x531, 0x587}, {0x10A0, 0x10FF},
        {0x13A0, 0x13FD}, {0x1C80, 0x1CBF}, {0x1D79, 0x1D79}, {0x1D7D, 0x1D7D},
        {0x1D8E, 0x1D8E}, {0x1E96, 0x1E9F}, {0x1F00, 0x1FFF}, {0x2126, 0x2126},
        {0x212A, 0x212B}, {0x2132, 0x2132}, {0x214E, 0x214E}, {0x2160, 0x217F},
        {0x2183, 0x2184}, {0x24B6, 0x24E9}, {0x2C00, 0x2D2F}, {0xA640, 0xA69F},
        {0xA722, 0xA7FF}, {0xAB53, 0xAB53}, {0xAB70, 0xABBF}, {0xFB00, 0xFB17},
        {0x10400, 0x104FF}, {0x10570, 0x105BF}, {0x10C80, 0x10CFF}, {0x118A0, 0x118DF},
        {0x16E40, 0x16E7F}, {0x1E900, 0x1E94B},
    };
    for (size_t k = 0; k < sizeof unknown / sizeof unknown[0]; k++)
        if (cp >= unknown[k][0] && cp <= unknown[k][1]) return CASE_UNKNOWN;
    return CASE_NONE;
}

static int case_of(ct_render *r, uint32_t cp, uint32_t *up, uint32_t *lo) {
    int c = case_info(cp, up, lo);
    if (c == CASE_UNKNOWN) qrm_ct_fail(r, "unsupported: letter case of U+%04X", (unsigned)cp);
    return c;
}

int qrm_ct_is_cased(ct_render *r, uint32_t cp, int *is_upper, int *is_lower) {
    uint32_t up, lo;
    int c = case_of(r, cp, &up, &lo);
    if (is_upper) *is_upper = c == CASE_UPPER;
    if (is_lower) *is_lower = c == CASE_LOWER;
    return c != CASE_NONE;
}

/* Characters that Final_Sigma looks through. */
static int case_ignorable(uint32_t cp) {
    return cp == '\'' || cp == '.' || cp == ':' || cp == 0xB7 || cp == 0xAD || cp == 0x2019 ||
           (cp >= 0x300 && cp <= 0x36F) || (cp >= 0x200B && cp <= 0x200F);
}

static int cased_at(ct_render *r, const char *s, size_t n, size_t i) {
    uint32_t up, lo;
    return case_of(r, qrm_ct_next_cp(s, n, &i), &up, &lo) != CASE_NONE;
}

/* Python lowercases Σ to ς at the end of a word. */
static int final_sigma(ct_render *r, const char *s, size_t n, size_t at, size_t after) {
    size_t i = at;
    int before = 0;
    while (i > 0) {
        size_t j = i - 1;
        while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
        size_t k = j;
        uint32_t cp = qrm_ct_next_cp(s, n, &k);
        i = j;
        if (case_ignorable(cp)) continue;
        before = cased_at(r, s, n, j);
        break;
    }
    if (!before) return 0;
    i = after;
    while (i < n) {
        size_t j = i;
        uint32_t cp = qrm_ct_next_cp(s, n, &i);
        if (case_ignorable(cp)) continue;
        return !cased_at(r, s, n, j);
    }
    return 1;
}

static void put_mapped(ct_render *r, ct_sbuf *b, const char *s, size_t n, size_t at, size_t after,
                       uint32_t cp, int which) {
    uint32_t up, lo;
    int c = case_of(r, cp, &up, &lo);
    if (which == CT_CASE_LOWER) {
        if (cp == 0x130) {
            qrm_ct_sb_put_cp(r, b, 'i');
            qrm_ct_sb_put_cp(r, b, 0x307);
        } else if (cp == 0x3A3) {
            qrm_ct_sb_put_cp(r, b, final_sigma(r, s, n, at, after) ? 0x3C2 : 0x3C3);
        } else {
            qrm_ct_sb_put_cp(r, b, c == CASE_UPPER && lo ? lo : cp);
        }
        return;
    }
    /* upper and title case agree except for ß */
    switch (cp) {
    case 0xDF: qrm_ct_sb_puts(r, b, which == CT_CASE_TITLE ? "Ss" : "SS"); return;
    case 0x149: qrm_ct_sb_put_cp(r, b, 0x2BC); qrm_ct_sb_put_cp(r, b, 'N'); return;
    case 0x390: qrm_ct_sb_put_cp(r, b, 0x399); qrm_ct_sb_put_cp(r, b, 0x308); qrm_ct_sb_put_cp(r, b, 0x301); return;
    case 0x3B0: qrm_ct_sb_put_cp(r, b, 0x3A5); qrm_ct_sb_put_cp(r, b, 0x308); qrm_ct_sb_put_cp(r, b, 0x301); return;
    }
    qrm_ct_sb_put_cp(r, b, c == CASE_LOWER && up ? up : cp);
}

void qrm_ct_put_case(ct_render *r, ct_sbuf *b, const char *s, size_t n, int which) {
    size_t i = 0;
    while (i < n) {
        size_t at = i;
        if ((unsigned char)s[i] < 0x80) { /* fast path */
            char ch = s[i++];
            if (which == CT_CASE_LOWER) ch = (char)tolower((unsigned char)ch);
            else ch = (char)toupper((unsigned char)ch);
            qrm_ct_sb_putc(r, b, ch);
            continue;
        }
        uint32_t cp = qrm_ct_next_cp(s, n, &i);
        put_mapped(r, b, s, n, at, i, cp, which);
    }
}

ct_value qrm_ct_str_capitalize(ct_render *r, ct_value s) {
    ct_sbuf b = {0};
    size_t i = 0;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (n) {
        uint32_t cp = qrm_ct_next_cp(p, n, &i);
        put_mapped(r, &b, p, n, 0, i, cp, CT_CASE_TITLE);
        while (i < n) {
            size_t at = i;
            cp = qrm_ct_next_cp(p, n, &i);
            put_mapped(r, &b, p, n, at, i, cp, CT_CASE_LOWER);
        }
    }
    return qrm_ct_sb_value(&b);
}

/* str.title(): a cased letter after a cased letter is lowered, any other is
 * title-cased. */
ct_value qrm_ct_str_pytitle(ct_render *r, ct_value s) {
    ct_sbuf b = {0};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int prev_cased = 0;
    while (i < n) {
        size_t at = i;
        uint32_t cp = qrm_ct_next_cp(p, n, &i);
        put_mapped(r, &b, p, n, at, i, cp, prev_cased ? CT_CASE_LOWER : CT_CASE_TITLE);
        prev_cased = qrm_ct_is_cased(r, cp, NULL, NULL);
    }
    return qrm_ct_sb_value(&b);
}

/* ---------------------------------------------------------------- strip, split */

static int in_chars(uint32_t cp, ct_value chars) {
    if (chars.type != CT_STR) return qrm_ct_py_isspace(cp);
    size_t i = 0;
    while (i < chars.u.s.n)
        if (qrm_ct_next_cp(chars.u.s.p, chars.u.s.n, &i) == cp) return 1;
    return 0;
}

static size_t prev_cp_start(const char *s, size_t i) {
    do i--; while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

ct_value qrm_ct_str_strip(ct_render *r, ct_value s, ct_value chars, int left, int right) {
    if (chars.type != CT_STR && chars.type != CT_NONE && chars.type != CT_ABSENT)
        qrm_ct_fail(r, "strip arg must be None or str, not %s", qrm_ct_type_name(chars));
    const char *p = s.u.s.p;
    size_t a = 0, z = s.u.s.n;
    if (left)
        while (a < z) {
            size_t i = a;
            if (!in_chars(qrm_ct_next_cp(p, z, &i), chars)) break;
            a = i;
        }
    if (right)
        while (z > a) {
            size_t j = prev_cp_start(p, z), i = j;
            if (!in_chars(qrm_ct_next_cp(p, z, &i), chars)) break;
            z = j;
        }
    ct_value out = qrm_ct_str(p + a, z - a);
    out.markup = s.markup;
    return out;
}

typedef struct {
    ct_value *items;
    size_t n, cap;
} vec;

static void vec_push(ct_render *r, vec *v, ct_value x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        v->items = qrm_ct_arena_grow(&r->arena, v->items, v->n * sizeof(ct_value), cap * sizeof(ct_value));
        if (!v->items) qrm_ct_fail(r, "out of memory");
        v->cap = cap;
    }
    v->items[v->n++] = x;
}

static ct_value vec_list(ct_render *r, vec *v, int reverse) {
    ct_value l = qrm_ct_list_new(r, 0, CT_LK_LIST);
    if (reverse)
        for (size_t i = 0; i < v->n / 2; i++) {
            ct_value t = v->items[i];
            v->items[i] = v->items[v->n - 1 - i];
            v->items[v->n - 1 - i] = t;
        }
    l.u.list->items = v->items ? v->items : l.u.list->items;
    l.u.list->n = v->n;
    return l;
}

static int space_at(const char *p, size_t n, size_t i, size_t *next) {
    size_t j = i;
    int sp = qrm_ct_py_isspace(qrm_ct_next_cp(p, n, &j));
    *next = j;
    return sp;
}

static ct_value split_whitespace(ct_render *r, const char *p, size_t n, int64_t maxsplit, int from_right) {
    vec v = {0};
    if (!from_right) {
        size_t i = 0, nx;
        while (i < n) {
            while (i < n && space_at(p, n, i, &nx)) i = nx;
            if (i >= n) break;
            if (maxsplit >= 0 && (int64_t)v.n == maxsplit) {
                vec_push(r, &v, qrm_ct_str(p + i, n - i));
                break;
            }
            size_t a = i;
            while (i < n && !space_at(p, n, i, &nx)) i = nx;
            vec_push(r, &v, qrm_ct_str(p + a, i - a));
        }
        return vec_list(r, &v, 0);
    }
    size_t z = n, nx;
    while (z > 0) {
        while (z > 0 && space_at(p, n, prev_cp_start(p, z), &nx)) z = prev_cp_start(p, z);
        if (z == 0) break;
        if (maxsplit >= 0 && (int64_t)v.n == maxsplit) {
            vec_push(r, &v, qrm_ct_str(p, z));
            break;
        }
        size_t e = z;
        while (z > 0 && !space_at(p, n, prev_cp_start(p, z), &nx)) z = prev_cp_start(p, z);
        vec_push(r, &v, qrm_ct_str(p + z, e - z));
    }
    return vec_list(r, &v, 1);
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    const char *end = h + hn - nn;
    for (const char *p = h; p <= end; p++) {
        p = memchr(p, nd[0], (size_t)(end - p) + 1);
        if (!p) return NULL;
        if (memcmp(p, nd, nn) == 0) return p;
    }
    return NULL;
}

static const char *rfind_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

ct_value qrm_ct_str_split(ct_render *r, ct_value s, ct_value sep, int64_t maxsplit, int from_right) {
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (sep.type == CT_NONE || sep.type == CT_ABSENT) return split_whitespace(r, p, n, maxsplit, from_right);
    if (sep.type != CT_STR) qrm_ct_fail(r, "must be str or None, not %s", qrm_ct_type_name(sep));
    if (sep.u.s.n == 0) qrm_ct_fail(r, "empty separator");
    const char *d = sep.u.s.p;
    size_t dn = sep.u.s.n;
    vec v = {0};
    if (!from_right) {
        size_t a = 0;
        for (;;) {
            const char *hit = maxsplit >= 0 && (int64_t)v.n >= maxsplit ? NULL : find_bytes(p + a, n - a, d, dn);
            if (!hit) break;
            vec_push(r, &v, qrm_ct_str(p + a, (size_t)(hit - (p + a))));
            a = (size_t)(hit - p) + dn;
        }
        vec_push(r, &v, qrm_ct_str(p + a, n - a));
        return vec_list(r, &v, 0);
    }
    size_t z = n;
    for (;;) {
        const char *hit = maxsplit >= 0 && (int64_t)v.n >= maxsplit ? NULL : rfind_bytes(p, z, d, dn);
        if (!hit) break;
        size_t e = (size_t)(hit - p) + dn;
        vec_push(r, &v, qrm_ct_str(p + e, z - e));
        z = (size_t)(hit - p);
    }
    vec_push(r, &v, qrm_ct_str(p, z));
    return vec_list(r, &v, 1);
}

static int line_break(uint32_t cp) {
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
           cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

ct_value qrm_ct_str_splitlines(ct_render *r, ct_value s, int keepends) {
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0, a = 0;
    vec v = {0};
    while (i < n) {
        size_t at = i;
        uint32_t cp = qrm_ct_next_cp(p, n, &i);
        if (!line_break(cp)) continue;
        if (cp == '\r' && i < n && p[i] == '\n') i++;
        vec_push(r, &v, qrm_ct_str(p + a, (keepends ? i : at) - a));
        a = i;
    }
    if (a < n) vec_push(r, &v, qrm_ct_str(p + a, n - a));
    return vec_list(r, &v, 0);
}

ct_value qrm_ct_str_replace(ct_render *r, ct_value s, ct_value old, ct_value new_, int64_t count) {
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    ct_sbuf b = {0};
    if (old.u.s.n == 0) { /* Python inserts `new` before every character and at the end */
        size_t i = 0;
        int64_t done = 0;
        while (count < 0 || done < count) {
            qrm_ct_sb_put(r, &b, new_.u.s.p, new_.u.s.n);
            done++;
            if (i >= n) break;
            size_t at = i;
            qrm_ct_next_cp(p, n, &i);
            qrm_ct_sb_put(r, &b, p + at, i - at);
        }
        qrm_ct_sb_put(r, &b, p + i, n - i);
        return qrm_ct_sb_value(&b);
    }
    size_t a = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const char *hit = find_bytes(p + a, n - a, old.u.s.p, old.u.s.n);
        if (!hit) break;
        qrm_ct_sb_put(r, &b, p + a, (size_t)(hit - (p + a)));
        qrm_ct_sb_put(r, &b, new_.u.s.p, new_.u.s.n);
        a = (size_t)(hit - p) + old.u.s.n;
        done++;
    }
    if (done == 0) return s;
    qrm_ct_sb_put(r, &b, p + a, n - a);
    return qrm_ct_sb_value(&b);
}

int64_t qrm_ct_str_find(const char *h, size_t hn, const char *nd, size_t nn, int from_right) {
    const char *hit = from_right ? rfind_bytes(h, hn, nd, nn) : find_bytes(h, hn, nd, nn);
    if (!hit) return -1;
    return (int64_t)qrm_ct_cp_count(h, (size_t)(hit - h));
}

size_t qrm_ct_str_count(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return qrm_ct_cp_count(h, hn) + 1;
    size_t count = 0, a = 0;
    for (;;) {
        const char *hit = find_bytes(h + a, hn - a, nd, nn);
        if (!hit) return count;
        count++;
        a = (size_t)(hit - h) + nn;
    }
}

/* Python's slice.indices(): clamps start/stop for a sequence of length len
 * and returns the number of elements selected. */
size_t qrm_ct_slice_indices(int64_t len, int64_t *start, int64_t *stop, int64_t step, int has_start,
                            int has_stop) {
    if (!has_start) *start = step < 0 ? len - 1 : 0;
    else if (*start < 0) {
        *start += len;
        if (*start < 0) *start = step < 0 ? -1 : 0;
    } else if (*start >= len) *start = step < 0 ? len - 1 : len;
    if (!has_stop) *stop = step < 0 ? -1 : len;
    else if (*stop < 0) {
        *stop += len;
        if (*stop < 0) *stop = step < 0 ? -1 : 0;
    } else if (*stop >= len) *stop = step < 0 ? len - 1 : len;
    if (step > 0) return *start < *stop ? (size_t)((*stop - *start - 1) / step + 1) : 0;
    return *stop < *start ? (size_t)((*start - *stop - 1) / (-step) + 1) : 0;
}

ct_value qrm_ct_str_slice(ct_render *r, ct_value s, int64_t start, int64_t stop, int64_t step,
                          int has_start, int has_stop) {
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    int64_t len = (int64_t)qrm_ct_cp_count(p, n);
    size_t count = qrm_ct_slice_indices(len, &start, &stop, step, has_start, has_stop);
    if (step == 1) {
        size_t a = qrm_ct_cp_offset(p, n, (size_t)start);
        size_t z = a + qrm_ct_cp_offset(p + a, n - a, count);
        return qrm_ct_str(p + a, z - a);
    }
    /* general step: index the code point starts once */
    size_t *at = qrm_ct_alloc(r, ((size_t)len + 1) * sizeof(size_t));
    size_t i = 0, k = 0;
    while (i < n) {
        at[k++] = i;
        qrm_ct_next_cp(p, n, &i);
    }
    at[k] = n;
    ct_sbuf b = {0};
    int64_t j = start;
    for (size_t c = 0; c < count; c++, j += step)
        qrm_ct_sb_put(r, &b, p + at[j], at[j + 1] - at[j]);
    return qrm_ct_sb_value(&b);
}

/* ---------------------------------------------------------------- escaping, formatting */

ct_value qrm_ct_html_escape(ct_render *r, ct_value v) {
    if (v.type == CT_STR && v.markup) return v;
    ct_value s = qrm_ct_to_str(r, v);
    ct_sbuf b = {0};
    size_t run = 0;
    for (size_t i = 0; i < s.u.s.n; i++) {
        const char *e = NULL;
        switch (s.u.s.p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&#34;"; break;
        case '\'': e = "&#39;"; break;
        }
        if (!e) continue;
        qrm_ct_sb_put(r, &b, s.u.s.p + run, i - run);
        qrm_ct_sb_puts(r, &b, e);
        run = i + 1;
    }
    if (run == 0) { /* nothing to escape */
        s.markup = 1;
        return s;
    }
    qrm_ct_sb_put(r, &b, s.u.s.p + run, s.u.s.n - run);
    ct_value out = qrm_ct_sb_value(&b);
    out.markup = 1;
    return out;
}

/* printf-style formatting: `fmt % args`, for the conversions templates use
 * (s r d i f F e E g G x X o c %), with flags, width and precision. */
ct_value qrm_ct_percent_format(ct_render *r, ct_value fmt, ct_value args) {
    ct_value *pos = &args;
    size_t npos = 1, next = 0;
    ct_dict *map = NULL;
    if (args.type == CT_LIST && args.u.list->kind == CT_LK_TUPLE) {
        pos = args.u.list->items;
        npos = args.u.list->n;
    } else if (args.type == CT_DICT) {
        map = args.u.dict;
    }
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.n, i = 0;
    ct_sbuf b = {0};
    while (i < n) {
        const char *pc = memchr(p + i, '%', n - i);
        if (!pc) {
            qrm_ct_sb_put(r, &b, p + i, n - i);
            break;
        }
        qrm_ct_sb_put(r, &b, p + i, (size_t)(pc - (p + i)));
        i = (size_t)(pc - p) + 1;
        if (i >= n) qrm_ct_fail(r, "incomplete format");
        ct_value arg = {.type = CT_ABSENT};
        if (p[i] == '(') {
            size_t a = ++i;
            while (i < n && p[i] != ')') i++;
            if (i >= n) qrm_ct_fail(r, "incomplete format key");
            if (!map) qrm_ct_fail(r, "format requires a mapping");
            ct_value *hit = qrm_ct_dict_find_str(map, p + a, i - a);
            if (!hit) qrm_ct_fail(r, "KeyError: '%.*s'", (int)(i - a), p + a);
            arg = *hit;
            i++;
        }
        char spec[32];
        size_t sn = 0;
        spec[sn++] = '%';
        while (i < n && strchr("-+ #0", p[i]) && sn < 8) spec[sn++] = p[i++];
        while (i < n && p[i] >= '0' && p[i] <= '9' && sn < 16) spec[sn++] = p[i++];
        int prec = -1;
        if (i < n && p[i] == '.') {
            spec[sn++] = p[i++];
            prec = 0;
            while (i < n && p[i] >= '0' && p[i] <= '9' && sn < 24) {
                prec = prec * 10 + (p[i] - '0');
                spec[sn++] = p[i++];
            }
        }
        if (i >= n) qrm_ct_fail(r, "incomplete format");
        char conv = p[i++];
        if (conv == '%') {
            qrm_ct_sb_putc(r, &b, '%');
            continue;
        }
        if (arg.type == CT_ABSENT) {
            if (map) arg = args;
            else if (next < npos) arg = pos[next++];
            else qrm_ct_fail(r, "not enough arguments for format string");
        }
        char tmp[128];
        switch (conv) {
        case 's':
        case 'r': {
            ct_sbuf sb = {0};
            if (conv == 's') qrm_ct_put_str(r, &sb, arg);
            else qrm_ct_put_repr(r, &sb, arg);
            size_t len = sb.n;
            if (prec >= 0) len = qrm_ct_cp_offset(sb.p, sb.n, (size_t)prec);
            spec[sn] = 0;
            int width = atoi(spec + 1 + strspn(spec + 1, "-+ #0"));
            size_t cps = qrm_ct_cp_count(sb.p ? sb.p : "", len);
            int left = strchr(spec, '-') != NULL;
            if (!left)
                for (size_t k = cps; (int64_t)k < width; k++) qrm_ct_sb_putc(r, &b, ' ');
            qrm_ct_sb_put(r, &b, sb.p ? sb.p : "", len);
            if (left)
                for (size_t k = cps; (int64_t)k < width; k++) qrm_ct_sb_putc(r, &b, ' ');
            break;
        }
        case 'd':
        case 'i':
        case 'x':
        case 'X':
        case 'o': {
            if (!qrm_ct_is_number(arg)) qrm_ct_fail(r, "%%%c format: a real number is required, not %s", conv, qrm_ct_type_name(arg));
            int64_t v = arg.type == CT_FLOAT ? (int64_t)arg.u.f : arg.type == CT_BOOL ? arg.u.b : arg.u.i;
            if (arg.type == CT_FLOAT && (conv != 'd' && conv != 'i'))
                qrm_ct_fail(r, "%%%c format: an integer is required, not float", conv);
            spec[sn++] = 'l';
            spec[sn++] = 'l';
            spec[sn++] = conv == 'i' ? 'd' : conv;
            spec[sn] = 0;
            if ((conv == 'x' || conv == 'X' || conv == 'o') && v < 0) qrm_ct_fail(r, "unsupported: negative %%%c format", conv);
            snprintf(tmp, sizeof tmp, spec, (long long)v);
            qrm_ct_sb_puts(r, &b, tmp);
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G': {
            if (!qrm_ct_is_number(arg)) qrm_ct_fail(r, "must be real number, not %s", qrm_ct_type_name(arg));
            spec[sn++] = conv;
            spec[sn] = 0;
            double v = qrm_ct_as_double(arg);
            if (fabs(v) >= 1e50 && (conv == 'f' || conv == 'F')) qrm_ct_fail(r, "unsupported: %%f of a huge number");
            snprintf(tmp, sizeof tmp, spec, v);
            qrm_ct_sb_puts(r, &b, tmp);
            break;
        }
        default: qrm_ct_fail(r, "unsupported format character '%c'", conv);
        }
    }
    /* Python only forgives unused arguments when the argument is a mapping
     * (PyMapping_Check: dicts, but also lists and ranges) */
    int mapping_like = args.type == CT_DICT || args.type == CT_UNDEF ||
                       (args.type == CT_LIST && (args.u.list->kind == CT_LK_LIST || args.u.list->kind == CT_LK_RANGE));
    if (next < npos && !mapping_like) qrm_ct_fail(r, "not all arguments converted during string formatting");
    return qrm_ct_sb_value(&b);
}

/* ---------------------------------------------------------------- int(), float() */

static void trim_ws(const char **s, size_t *n) {
    size_t a = 0, z = *n, i;
    while (a < z) {
        i = a;
        if (!qrm_ct_py_isspace(qrm_ct_next_cp(*s, z, &i))) break;
        a = i;
    }
    while (z > a) {
        size_t j = prev_cp_start(*s, z);
        i = j;
        if (!qrm_ct_py_isspace(qrm_ct_next_cp(*s, *n, &i))) break;
        z = j;
    }
    *s += a;
    *n = z - a;
}

static int digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

/* 1: parsed; 0: not a valid literal; -1: too large for int64. */
int qrm_ct_parse_int(const char *s, size_t n, int base, int64_t *out) {
    trim_ws(&s, &n);
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i + 1 < n && s[i] == '0') {
        char x = (char)tolower((unsigned char)s[i + 1]);
        int b = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        if (b && (base == b || base == 0)) {
            base = b;
            i += 2;
            if (i < n && s[i] == '_') i++;
        }
    }
    if (base == 0) base = 10;
    if (i >= n) return 0;
    uint64_t v = 0;
    int overflow = 0, any = 0;
    for (; i < n; i++) {
        if (s[i] == '_') {
            if (!any || i + 1 >= n || s[i + 1] == '_') return 0;
            continue;
        }
        int d = digit_value(s[i]);
        if (d >= base) return 0;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) overflow = 1;
        else v = v * (uint64_t)base + (uint64_t)d;
        any = 1;
    }
    if (!any) return 0;
    if (overflow || v > (uint64_t)INT64_MAX + (uint64_t)neg) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

int qrm_ct_parse_float(const char *s, size_t n, double *out) {
    trim_ws(&s, &n);
    char buf[128];
    size_t k = 0, i = 0;
    if (n == 0 || n >= sizeof buf) return 0;
    if (s[i] == '+' || s[i] == '-') buf[k++] = s[i++];
    const char *rest = s + i;
    size_t rn = n - i;
    if ((rn == 3 && strncasecmp(rest, "inf", 3) == 0) || (rn == 8 && strncasecmp(rest, "infinity", 8) == 0)) {
        *out = buf[0] == '-' ? -INFINITY : INFINITY;
        return 1;
    }
    if (rn == 3 && strncasecmp(rest, "nan", 3) == 0) {
        *out = NAN;
        return 1;
    }
    /* digits [. digits] [e [+-] digits], with single underscores between digits */
    int digits = 0, prev_digit = 0;
    int state = 0; /* 0 integer part, 1 fraction, 2 exponent sign, 3 exponent */
    int exp_digits = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            buf[k++] = c;
            prev_digit = 1;
            if (state >= 2) state = 3, exp_digits++;
            else digits++;
        } else if (c == '_') {
            if (!prev_digit || i + 1 >= n || !(s[i + 1] >= '0' && s[i + 1] <= '9')) return 0;
            prev_digit = 0;
        } else if (c == '.' && state == 0) {
            buf[k++] = c;
            state = 1;
            prev_digit = 0;
        } else if ((c == 'e' || c == 'E') && state <= 1 && digits) {
            buf[k++] = 'e';
            state = 2;
            prev_digit = 0;
            if (i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-')) buf[k++] = s[++i];
        } else {
            return 0;
        }
    }
    if (!digits || (state >= 2 && !exp_digits)) return 0;
    buf[k] = 0;
    *out = strtod(buf, NULL);
    return 1;
}
