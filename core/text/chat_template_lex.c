/* Chat templates: the lexer. Splits the source into text and tag tokens the
 * way Jinja2's lexer does with trim_blocks and lstrip_blocks on:
 *
 *   - line breaks (\r\n, \r) become \n and one trailing \n is dropped;
 *   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag, `-%}`, `-}}`,
 *     `-#}` all whitespace after it;
 *   - trim_blocks: a newline right after `%}` or `#}` is dropped (`+%}` keeps it);
 *   - lstrip_blocks: spaces and tabs between the start of a line and `{%` or
 *     `{#` are dropped (`{%+` keeps them), never before `{{`.
 *
 * "Whitespace" is Python's (str.isspace), as in Jinja's regular expressions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template_internal.h"
#include "unicode.h"
#include "utf8.h"

typedef struct {
    ct_compiler *c;
    const char *s;   /* normalized source */
    size_t n;
    size_t pos;
    int line;        /* line of s[pos] */
    size_t line_pos; /* s[line_pos] is where `line` was last computed */
} lexer;

static int line_at(lexer *L, size_t p) {
    /* positions only move forward, so count incrementally */
    while (L->line_pos < p) {
        if (L->s[L->line_pos] == '\n') L->line++;
        L->line_pos++;
    }
    return L->line;
}

static ct_token *push(lexer *L, int kind, size_t at, const char *p, size_t n) {
    ct_compiler *c = L->c;
    if (c->ntok == c->captok) {
        size_t cap = c->captok ? c->captok * 2 : 256;
        ct_token *t = qrm_ct_arena_grow(c->arena, c->toks, c->ntok * sizeof(ct_token), cap * sizeof(ct_token));
        if (!t) qrm_ct_compile_fail(c, line_at(L, at), "template too large");
        c->toks = t;
        c->captok = cap;
    }
    ct_token *t = &c->toks[c->ntok++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->line = line_at(L, at);
    t->p = p;
    t->n = n;
    return t;
}

static int space_len(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    size_t j = i;
    uint32_t cp = qrm_ct_next_cp(s, n, &j);
    return qrm_ct_py_isspace(cp) ? (int)(j - i) : 0;
}

static size_t skip_space(const char *s, size_t n, size_t i) {
    int k;
    while ((k = space_len(s, n, i)) > 0) i += (size_t)k;
    return i;
}

/* text.rstrip() */
static size_t rstrip_len(const char *s, size_t n) {
    while (n > 0) {
        size_t j = n - 1;
        while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
        if (!space_len(s, n, j)) break;
        n = j;
    }
    return n;
}

/* Emits the text before a tag after whitespace control. sign is the tag's
 * '-', '+' or 0; lstrip applies to blocks and comments only. */
static void emit_text(lexer *L, size_t a, size_t z, char sign, int lstrip, int line_starting) {
    const char *s = L->s;
    size_t n = z - a;
    if (sign == '-') {
        n = rstrip_len(s + a, n);
    } else if (sign != '+' && lstrip) {
        size_t l_pos = n;
        while (l_pos > 0 && s[a + l_pos - 1] != '\n') l_pos--;
        if ((l_pos > 0 || line_starting) && l_pos < n && skip_space(s + a, n, l_pos) == n) n = l_pos;
    }
    if (n) push(L, T_TEXT, a, s + a, n);
}

static int starts(const lexer *L, size_t i, const char *lit) {
    size_t k = strlen(lit);
    return i + k <= L->n && memcmp(L->s + i, lit, k) == 0;
}

/* Matches `{%[-+]?\s*<word>\s*` at i; returns the index after it or 0. */
static size_t match_word_tag(const lexer *L, size_t i, const char *word, char *sign) {
    if (!starts(L, i, "{%")) return 0;
    i += 2;
    *sign = 0;
    if (i < L->n && (L->s[i] == '-' || L->s[i] == '+')) *sign = L->s[i++];
    i = skip_space(L->s, L->n, i);
    if (!starts(L, i, word)) return 0;
    i += strlen(word);
    size_t j = skip_space(L->s, L->n, i);
    return j;
}

/* The end of `{% raw %}`: `-%}\s*` or `%}` (Jinja applies no trim_blocks here). */
static size_t match_raw_begin(const lexer *L, size_t i) {
    char sign;
    size_t j = match_word_tag(L, i, "raw", &sign);
    if (!j) return 0;
    if (starts(L, j, "-%}")) return skip_space(L->s, L->n, j + 3);
    if (starts(L, j, "%}")) return j + 2;
    return 0;
}

/* The end of `%}` in its three forms; 0 if no block end at i. */
static size_t match_block_end(const lexer *L, size_t i) {
    if (starts(L, i, "+%}")) return i + 3;
    if (starts(L, i, "-%}")) return skip_space(L->s, L->n, i + 3);
    if (starts(L, i, "%}")) return i + 2 + (i + 2 < L->n && L->s[i + 2] == '\n');
    return 0;
}

static void lex_raw(lexer *L, size_t body) {
    int line_starting = L->s[body - 1] == '\n';
    for (size_t i = body; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%') continue;
        char sign;
        size_t j = match_word_tag(L, i, "endraw", &sign);
        size_t end = j ? match_block_end(L, j) : 0;
        if (!end) continue;
        emit_text(L, body, i, sign, 1, line_starting);
        L->pos = end;
        return;
    }
    qrm_ct_compile_fail(L->c, line_at(L, body), "missing end of raw directive");
}

static void lex_comment(lexer *L, size_t body, int start_line) {
    const char *hit = NULL;
    for (size_t i = body; i + 1 < L->n; i++)
        if (L->s[i] == '#' && L->s[i + 1] == '}') {
            hit = L->s + i;
            break;
        }
    if (!hit) qrm_ct_compile_fail(L->c, start_line, "missing end of comment tag");
    size_t q = (size_t)(hit - L->s), end = q + 2;
    char sign = q > body && (L->s[q - 1] == '-' || L->s[q - 1] == '+') ? L->s[q - 1] : 0;
    if (sign == '-') end = skip_space(L->s, L->n, end);
    else if (sign == 0 && end < L->n && L->s[end] == '\n') end++;
    L->pos = end;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Python identifiers: letters, digits (not first) and '_'; beyond ASCII,
 * Unicode letters, then also numbers and combining marks. Returns the
 * length of the character at s[i] when it qualifies, else 0. */
static int name_char_len(const char *s, size_t n, size_t i, int first) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
        int ok = c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z') || (!first && is_digit((char)c));
        return ok;
    }
    size_t j = i;
    uint32_t cp = qrm_ct_next_cp(s, n, &j);
    unsigned f = qrm_uni_flags(cp);
    int ok = first ? (f & QRM_UNI_L) != 0 : (f & (QRM_UNI_L | QRM_UNI_N | QRM_UNI_WORD)) != 0;
    return ok ? (int)(j - i) : 0;
}

/* (\d+_)*\d+ at i: returns the end, or i when there is no digit. */
static size_t digits_us(const lexer *L, size_t i) {
    size_t j = i;
    while (j < L->n && is_digit(L->s[j])) {
        while (j < L->n && is_digit(L->s[j])) j++;
        if (j + 1 < L->n && L->s[j] == '_' && is_digit(L->s[j + 1])) j++;
    }
    return j;
}

/* Jinja's float_re: digits with a required fraction or exponent. */
static size_t match_float(const lexer *L, size_t i) {
    if (i > 0 && L->s[i - 1] == '.') return 0;
    size_t j = digits_us(L, i);
    if (j == i) return 0;
    size_t frac = 0;
    if (j + 1 < L->n && L->s[j] == '.' && is_digit(L->s[j + 1])) frac = digits_us(L, j + 1);
    size_t k = frac ? frac : j;
    if (k < L->n && (L->s[k] == 'e' || L->s[k] == 'E')) {
        size_t e = k + 1;
        if (e < L->n && (L->s[e] == '+' || L->s[e] == '-')) e++;
        size_t ed = digits_us(L, e);
        if (ed > e) return ed;
    }
    return frac;
}

static size_t match_int(lexer *L, size_t i, int64_t *value) {
    const char *s = L->s;
    size_t n = L->n, j = i;
    int base = 10;
    if (s[i] == '0' && i + 1 < n) {
        char x = (char)(s[i + 1] | 32);
        base = x == 'b' ? 2 : x == 'o' ? 8 : x == 'x' ? 16 : 10;
    }
    if (base != 10) {
        j = i + 2;
        size_t digits = 0;
        for (;;) {
            size_t k = j;
            if (k < n && s[k] == '_') k++;
            if (k >= n) break;
            char ch = (char)(s[k] | 32);
            int d = is_digit(s[k]) ? s[k] - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : 99;
            if (d >= base) break;
            j = k + 1;
            digits++;
        }
        if (!digits) base = 10, j = i; /* "0x" alone: the integer 0, then a name */
    }
    if (base == 10) {
        j = i;
        if (s[i] == '0') {
            j = i + 1;
            while (j < n && (s[j] == '0' || (s[j] == '_' && j + 1 < n && s[j + 1] == '0'))) j++;
        } else {
            j = digits_us(L, i);
        }
    }
    int r = qrm_ct_parse_int(s + i, j - i, base == 10 ? 10 : 0, value);
    if (r < 0) qrm_ct_compile_fail(L->c, line_at(L, i), "integer literal too large");
    return j;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 32);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void put_utf8(char *out, size_t *k, uint32_t cp) {
    char tmp[4];
    int len = qrm_utf8_encode(cp, tmp);
    memcpy(out + *k, tmp, (size_t)len);
    *k += (size_t)len;
}

/* A string literal at i (the opening quote). Decodes Python's unicode-escape
 * as Jinja does (after backslashreplace-encoding non-ASCII, which is why a
 * backslash before a non-ASCII character yields its \x/\u spelling). */
static size_t lex_string(lexer *L, size_t i, ct_token *t) {
    const char *s = L->s;
    char q = s[i];
    size_t j = i + 1;
    while (j < L->n && s[j] != q) j += s[j] == '\\' ? 2 : 1;
    if (j >= L->n) qrm_ct_compile_fail(L->c, line_at(L, i), "unterminated string");
    /* decoded length never exceeds 10/2 times the source (\é -> \xe9) */
    char *out = qrm_ct_arena_alloc(L->c->arena, (j - i) * 5 + 1);
    if (!out) qrm_ct_compile_fail(L->c, line_at(L, i), "template too large");
    size_t k = 0;
    for (size_t p = i + 1; p < j;) {
        if (s[p] != '\\') {
            out[k++] = s[p++];
            continue;
        }
        char e = s[p + 1];
        p += 2;
        int hex = 0;
        switch (e) {
        case '\n': break;
        case '\\': out[k++] = '\\'; break;
        case '\'': out[k++] = '\''; break;
        case '"': out[k++] = '"'; break;
        case 'a': out[k++] = '\a'; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'v': out[k++] = '\v'; break;
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        case 'N': qrm_ct_compile_fail(L->c, line_at(L, i), "unsupported: \\N{...} escape in a string");
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = (uint32_t)(e - '0');
                for (int d = 0; d < 2 && p < j && s[p] >= '0' && s[p] <= '7'; d++) v = v * 8 + (uint32_t)(s[p++] - '0');
                put_utf8(out, &k, v);
            } else if ((unsigned char)e >= 0x80) {
                size_t at = p - 1;
                uint32_t cp = qrm_ct_next_cp(s, j, &at);
                p = at;
                char tmp[16];
                int len = cp < 0x100 ? snprintf(tmp, sizeof tmp, "\\x%02x", cp)
                          : cp < 0x10000 ? snprintf(tmp, sizeof tmp, "\\u%04x", cp)
                                         : snprintf(tmp, sizeof tmp, "\\U%08x", cp);
                memcpy(out + k, tmp, (size_t)len);
                k += (size_t)len;
            } else {
                out[k++] = '\\';
                out[k++] = e;
            }
        }
        if (hex) {
            uint32_t v = 0;
            for (int d = 0; d < hex; d++) {
                int h = p < j ? hexval(s[p]) : -1;
                if (h < 0) qrm_ct_compile_fail(L->c, line_at(L, i), "truncated \\%c escape in a string", e);
                v = v * 16 + (uint32_t)h;
                p++;
            }
            if (v > 0x10FFFF) qrm_ct_compile_fail(L->c, line_at(L, i), "illegal Unicode character in a string");
            if (v >= 0xD800 && v <= 0xDFFF)
                qrm_ct_compile_fail(L->c, line_at(L, i), "unsupported: surrogate escape in a string");
            put_utf8(out, &k, v);
        }
    }
    out[k] = 0;
    t->p = out;
    t->n = k;
    return j + 1;
}

static const char *const two_char_ops[] = {"//", "**", "==", "!=", ">=", "<="};

/* Tokens inside {{ }} or {% %} up to the closing delimiter. */
static void lex_tag(lexer *L, int is_block, size_t p, int *line_starting) {
    const char *s = L->s;
    char stack[QRM_TEMPLATE_MAX_NESTING];
    int depth = 0;
    for (;;) {
        if (p >= L->n) qrm_ct_compile_fail(L->c, line_at(L, p), "unexpected end of template, expected '%s'", is_block ? "%}" : "}}");
        if (depth == 0) {
            size_t end = 0;
            if (is_block) end = match_block_end(L, p);
            else if (starts(L, p, "-}}")) end = skip_space(s, L->n, p + 3);
            else if (starts(L, p, "}}")) end = p + 2;
            if (end) {
                push(L, is_block ? T_BLOCK_END : T_VAR_END, p, s + p, 0);
                *line_starting = s[end - 1] == '\n';
                L->pos = end;
                return;
            }
        }
        int ws = space_len(s, L->n, p);
        if (ws) {
            p = skip_space(s, L->n, p);
            continue;
        }
        unsigned char c = (unsigned char)s[p];
        size_t e;
        if (is_digit((char)c) && (e = match_float(L, p)) > 0) {
            ct_token *t = push(L, T_FLOAT, p, s + p, e - p);
            char buf[128];
            size_t k = 0;
            for (size_t q = p; q < e && k + 1 < sizeof buf; q++)
                if (s[q] != '_') buf[k++] = s[q];
            buf[k] = 0;
            t->f = strtod(buf, NULL);
            p = e;
        } else if (is_digit((char)c)) {
            int64_t v = 0;
            size_t at = p;
            p = match_int(L, p, &v);
            ct_token *t = push(L, T_INT, at, s + at, p - at);
            t->i = v;
        } else if (name_char_len(s, L->n, p, 1)) {
            size_t a = p;
            int k;
            while (p < L->n && (k = name_char_len(s, L->n, p, p == a)) > 0) p += (size_t)k;
            push(L, T_NAME, a, s + a, p - a);
        } else if (c == '\'' || c == '"') {
            ct_token *t = push(L, T_STRING, p, NULL, 0);
            p = lex_string(L, p, t);
        } else {
            size_t len = 0;
            for (size_t k = 0; k < sizeof two_char_ops / sizeof two_char_ops[0]; k++)
                if (starts(L, p, two_char_ops[k])) len = 2;
            if (!len && c && strchr("+-/*%~[](){}<>=.:|,;", c)) len = 1;
            if (!len && c >= 0x80) {
                size_t j = p;
                uint32_t cp = qrm_ct_next_cp(s, L->n, &j);
                qrm_ct_compile_fail(L->c, line_at(L, p), "unexpected character U+%04X", (unsigned)cp);
            }
            if (!len) qrm_ct_compile_fail(L->c, line_at(L, p), "unexpected char '%c'", c >= 0x20 && c < 0x7F ? c : '?');
            if (len == 1 && (c == '(' || c == '[' || c == '{')) {
                if (depth >= QRM_TEMPLATE_MAX_NESTING) qrm_ct_compile_fail(L->c, line_at(L, p), "brackets nested too deeply");
                stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
            } else if (len == 1 && (c == ')' || c == ']' || c == '}')) {
                if (depth == 0) qrm_ct_compile_fail(L->c, line_at(L, p), "unexpected '%c'", c);
                if (stack[depth - 1] != (char)c)
                    qrm_ct_compile_fail(L->c, line_at(L, p), "unexpected '%c', expected '%c'", c, stack[depth - 1]);
                depth--;
            }
            push(L, T_OP, p, s + p, len);
            p += len;
        }
    }
}

void qrm_ct_lex(ct_compiler *c, const char *src, size_t len) {
    size_t bad = qrm_utf8_validate(src, len);
    if (bad != len) qrm_ct_compile_fail(c, 0, "invalid UTF-8 at byte %zu", bad);
    /* normalize line breaks, drop one trailing newline */
    char *s = qrm_ct_arena_alloc(c->arena, len + 1);
    if (!s) qrm_ct_compile_fail(c, 0, "template too large");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n > 0 && s[n - 1] == '\n') n--;
    s[n] = 0;

    lexer L = {.c = c, .s = s, .n = n, .pos = 0, .line = 1, .line_pos = 0};
    int line_starting = 1;
    while (L.pos < n) {
        size_t t = L.pos;
        while (t + 1 < n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#'))) t++;
        if (t + 1 >= n) { /* plain text to the end */
            push(&L, T_TEXT, L.pos, s + L.pos, n - L.pos);
            break;
        }
        char kind = s[t + 1];
        char sign = t + 2 < n && (s[t + 2] == '-' || s[t + 2] == '+') ? s[t + 2] : 0;
        size_t raw_body = kind == '%' ? match_raw_begin(&L, t) : 0;
        emit_text(&L, L.pos, t, sign, kind != '{', line_starting);
        size_t body = t + 2 + (sign != 0);
        if (raw_body) {
            lex_raw(&L, raw_body);
            line_starting = s[L.pos - 1] == '\n';
        } else if (kind == '#') {
            lex_comment(&L, body, line_at(&L, t));
            line_starting = s[L.pos - 1] == '\n';
        } else {
            push(&L, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, t, s + t, 2);
            lex_tag(&L, kind == '%', body, &line_starting);
        }
    }
    push(&L, T_EOF, n, s + n, 0);
}
