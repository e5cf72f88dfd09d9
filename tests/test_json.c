/* Tests for the JSON reader/writer (core/json.c) and UTF-8 helpers (core/utf8.c). */
#include "json.h"
#include "testutil.h"
#include "utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

/* Parses a private copy of exactly n bytes, so AddressSanitizer catches any
 * read past the end (the parser must not rely on a NUL terminator). */
static qj_doc *parse_n(const char *s, size_t n, char *err, size_t errlen) {
    char *copy = malloc(n ? n : 1);
    ck_assert(copy != NULL);
    memcpy(copy, s, n);
    qj_doc *d = qj_parse(copy, n, err, errlen);
    free(copy); /* the document must not point into the input */
    return d;
}

static qj_doc *parse_ok(const char *s) {
    char err[256];
    qj_doc *d = parse_n(s, strlen(s), err, sizeof err);
    ck_assert_msg(d != NULL, "parse of <%s> failed: %s", s, err);
    return d;
}

/* Asserts that s (n bytes) fails with a one-line "line L, column C: ..."
 * message containing want; returns nothing. */
static void expect_error_n(const char *s, size_t n, const char *want) {
    char err[256];
    memset(err, 'x', sizeof err);
    qj_doc *d = parse_n(s, n, err, sizeof err);
    ck_assert_msg(d == NULL, "<%.*s> parsed but should fail with '%s'", (int)n, s, want);
    ck_assert_msg(strncmp(err, "line ", 5) == 0 && strstr(err, ", column ") != NULL,
                  "error for <%.*s> lacks a position: %s", (int)n, s, err);
    ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: %s", err);
    ck_assert_msg(strstr(err, want) != NULL, "error for <%.*s> is '%s', want '%s'", (int)n, s, err,
                  want);
}

static void expect_error(const char *s, const char *want) { expect_error_n(s, strlen(s), want); }

/* Compact re-serialization of a parsed document. */
static char *dump(const qj_doc *d, size_t *len) {
    qj_buf b = {0};
    qj_buf_put_value(&b, qj_root(d));
    ck_assert(!b.oom);
    if (len) *len = b.len;
    if (!b.buf) return strdup("");
    return b.buf;
}

static void expect_roundtrip(const char *in, const char *want) {
    qj_doc *d = parse_ok(in);
    char *out = dump(d, NULL);
    ck_assert_msg(strcmp(out, want) == 0, "<%s> was written as <%s>, want <%s>", in, out, want);
    /* and writing what was written is a fixed point */
    qj_doc *d2 = parse_ok(out);
    char *out2 = dump(d2, NULL);
    ck_assert_str_eq(out2, out);
    free(out);
    free(out2);
    qj_free(d);
    qj_free(d2);
}

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------ UTF-8 */

START_TEST(utf8_decode_valid) {
    static const struct { const char *s; int len; uint32_t cp; } cases[] = {
        {"A", 1, 0x41},
        {"\x7f", 1, 0x7F},
        {"\xc2\x80", 2, 0x80},
        {"\xc3\xa9", 2, 0xE9},
        {"\xdf\xbf", 2, 0x7FF},
        {"\xe0\xa0\x80", 3, 0x800},
        {"\xe2\x82\xac", 3, 0x20AC},
        {"\xed\x9f\xbf", 3, 0xD7FF},
        {"\xee\x80\x80", 3, 0xE000},
        {"\xef\xbf\xbf", 3, 0xFFFF},
        {"\xf0\x90\x80\x80", 4, 0x10000},
        {"\xf0\x9f\x98\x80", 4, 0x1F600},
        {"\xf4\x8f\xbf\xbf", 4, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0xDEADBEEF;
        int len = qrm_utf8_decode((const unsigned char *)cases[i].s, strlen(cases[i].s), &cp);
        ck_assert_int_eq(len, cases[i].len);
        ck_assert_uint_eq(cp, cases[i].cp);
    }
    uint32_t cp = 1;
    ck_assert_int_eq(qrm_utf8_decode((const unsigned char *)"\0", 1, &cp), 1);
    ck_assert_uint_eq(cp, 0);
}
END_TEST

START_TEST(utf8_decode_invalid) {
    static const char *bad[] = {
        "\x80",             /* lone continuation */
        "\xbf",
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong 0x7F */
        "\xe0\x80\x80",     /* overlong 3-byte */
        "\xe0\x9f\xbf",     /* overlong 0x7FF */
        "\xf0\x80\x80\x80", /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf", /* overlong 0xFFFF */
        "\xed\xa0\x80",     /* U+D800 */
        "\xed\xbf\xbf",     /* U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80",
        "\xff",
        "\xfe",
        "\xc3",             /* truncated */
        "\xe2\x82",
        "\xf0\x9f\x98",
        "\xc3\x41",         /* bad continuation */
        "\xe2\x28\xa1",
        "\xf0\x9f\x98\x41",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp;
        ck_assert_msg(qrm_utf8_decode((const unsigned char *)bad[i], strlen(bad[i]), &cp) == 0,
                      "case %zu decoded", i);
    }
    uint32_t cp;
    /* a valid sequence cut short by n */
    ck_assert_int_eq(qrm_utf8_decode((const unsigned char *)"\xe2\x82\xac", 2, &cp), 0);
    ck_assert_int_eq(qrm_utf8_decode((const unsigned char *)"A", 0, &cp), 0);
}
END_TEST

START_TEST(utf8_encode_all_code_points) {
    /* Every scalar value encodes to a sequence that decodes back to it and
     * that validate accepts; lengths follow the RFC 3629 ranges. */
    uint32_t bad = 0, first_bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char buf[4];
        int len = qrm_utf8_encode(cp, buf);
        int want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        uint32_t back = 0xFFFFFFFF;
        /* plain checks in the loop: a Check assert per code point is too slow */
        if (len != want || qrm_utf8_decode((const unsigned char *)buf, (size_t)len, &back) != len ||
            back != cp || qrm_utf8_validate(buf, (size_t)len) != (size_t)len) {
            if (!bad++) first_bad = cp;
        }
    }
    ck_assert_msg(bad == 0, "%u code points fail, first U+%04X", bad, first_bad);
    /* Not encodable: U+FFFD instead of invalid bytes. */
    char buf[4];
    ck_assert_int_eq(qrm_utf8_encode(0xD800, buf), 3);
    ck_assert(memcmp(buf, "\xef\xbf\xbd", 3) == 0);
    ck_assert_int_eq(qrm_utf8_encode(0x110000, buf), 3);
    ck_assert(memcmp(buf, "\xef\xbf\xbd", 3) == 0);
}
END_TEST

START_TEST(utf8_validate_offsets) {
    const char *ok = "plain ascii, caf\xc3\xa9, \xe2\x82\xac, \xf0\x9f\x98\x80 and more ascii text";
    ck_assert_uint_eq(qrm_utf8_validate(ok, strlen(ok)), strlen(ok));
    ck_assert_uint_eq(qrm_utf8_validate("", 0), 0);
    /* the offset of the first bad byte, in and after the 8-byte fast path */
    ck_assert_uint_eq(qrm_utf8_validate("abcdefghij\xffkl", 13), 10);
    ck_assert_uint_eq(qrm_utf8_validate("\x80", 1), 0);
    ck_assert_uint_eq(qrm_utf8_validate("abc\xed\xa0\x80", 6), 3);
    ck_assert_uint_eq(qrm_utf8_validate("abcdefgh\xc3", 9), 8);
    ck_assert_uint_eq(qrm_utf8_validate("ab\xc3\xa9\xc0\x80", 6), 4);
    /* NUL is a valid character */
    ck_assert_uint_eq(qrm_utf8_validate("a\0b", 3), 3);
}
END_TEST

/* ------------------------------------------------------------------ reader: valid input */

START_TEST(parse_scalars) {
    qj_doc *d = parse_ok("null");
    ck_assert_int_eq(qj_root(d)->type, QJ_NULL);
    qj_free(d);
    d = parse_ok(" true ");
    ck_assert_int_eq(qj_root(d)->type, QJ_TRUE);
    qj_free(d);
    d = parse_ok("\n\t\r false\n");
    ck_assert_int_eq(qj_root(d)->type, QJ_FALSE);
    qj_free(d);
    d = parse_ok("\"hi\"");
    ck_assert_int_eq(qj_root(d)->type, QJ_STRING);
    ck_assert_uint_eq(qj_root(d)->len, 2);
    ck_assert_str_eq(qj_root(d)->u.str, "hi");
    qj_free(d);
    d = parse_ok("\"\"");
    ck_assert_uint_eq(qj_root(d)->len, 0);
    ck_assert_str_eq(qj_root(d)->u.str, "");
    qj_free(d);
    d = parse_ok("42");
    ck_assert_int_eq(qj_root(d)->type, QJ_NUMBER);
    ck_assert(qj_root(d)->u.num == 42.0);
    ck_assert_int_eq(qj_root(d)->is_int, 1);
    qj_free(d);
    /* a leading byte order mark is allowed */
    d = parse_ok("\xef\xbb\xbf[1]");
    ck_assert_int_eq(qj_root(d)->type, QJ_ARRAY);
    qj_free(d);
}
END_TEST

START_TEST(parse_numbers) {
    static const struct { const char *text; double value; int is_int; } cases[] = {
        {"0", 0.0, 1},
        {"-0", -0.0, 1},
        {"7", 7.0, 1},
        {"-12", -12.0, 1},
        {"123456789", 123456789.0, 1},
        {"9007199254740993", 9007199254740992.0, 1},
        {"18446744073709551615", 18446744073709551615.0, 1},
        {"123456789012345678901234567890", 1.2345678901234568e29, 1},
        {"1.5", 1.5, 0},
        {"-0.0", -0.0, 0},
        {"0.1", 0.1, 0},
        {"0.000123", 0.000123, 0},
        {"3.141592653589793", 3.141592653589793, 0},
        {"1e5", 1e5, 0},
        {"1E5", 1e5, 0},
        {"1e+5", 1e5, 0},
        {"1e-5", 1e-5, 0},
        {"-1.5e-3", -1.5e-3, 0},
        {"2.5E+10", 2.5e10, 0},
        {"1e0", 1.0, 0},
        {"0e0", 0.0, 0},
        {"0e999999999999", 0.0, 0},
        {"1.7976931348623157e308", 1.7976931348623157e308, 0},
        {"2.2250738585072011e-308", 2.2250738585072011e-308, 0},
        {"2.2250738585072014e-308", 2.2250738585072014e-308, 0},
        {"4.9e-324", 4.9e-324, 0},
        {"1e-400", 0.0, 0},
        {"0.30000000000000004", 0.30000000000000004, 0},
        /* halfway between 1 and the next double: ties go to even */
        {"1.00000000000000011102230246251565404236316680908203125", 1.0, 0},
        {"1.00000000000000011102230246251565404236316680908203126", 1.0000000000000002, 0},
        {"1.00000000000000033306690738754696212708950042724609375", 1.0000000000000004, 0},
        {"123456789012345678901234567890e-10", 12345678901234567890.0, 0},
        {"0.0000000000000000000000000000000000000001", 1e-40, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qj_doc *d = parse_ok(cases[i].text);
        const qj_value *v = qj_root(d);
        ck_assert_int_eq(v->type, QJ_NUMBER);
        ck_assert_msg(v->u.num == cases[i].value && signbit(v->u.num) == signbit(cases[i].value),
                      "%s parsed as %.17g, want %.17g", cases[i].text, v->u.num, cases[i].value);
        ck_assert_msg(v->is_int == cases[i].is_int, "%s: is_int %d", cases[i].text, v->is_int);
        qj_free(d);
    }
}
END_TEST

/* The fast conversion paths must agree bit for bit with strtod. */
START_TEST(parse_numbers_match_strtod) {
    uint64_t state = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char text[80];
        size_t n = 0;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = state >> 11;
        if (r & 1) text[n++] = '-';
        int int_digits = 1 + (int)((r >> 1) % 20);
        for (int i = 0; i < int_digits; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            int digit = (int)((state >> 33) % 10);
            if (i == 0 && digit == 0 && int_digits > 1) digit = 1;
            text[n++] = (char)('0' + digit);
        }
        if ((r >> 6) & 1) {
            text[n++] = '.';
            int frac = 1 + (int)((r >> 7) % 20);
            for (int i = 0; i < frac; i++) {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                text[n++] = (char)('0' + (state >> 33) % 10);
            }
        }
        if ((r >> 12) & 1) n += (size_t)sprintf(text + n, "e%d", (int)((r >> 13) % 80) - 40);
        text[n] = 0;
        qj_doc *d = parse_ok(text);
        double want = strtod(text, NULL);
        ck_assert_msg(memcmp(&qj_root(d)->u.num, &want, sizeof want) == 0,
                      "%s parsed as %.17g, strtod says %.17g", text, qj_root(d)->u.num, want);
        qj_free(d);
    }
}
END_TEST

START_TEST(parse_containers) {
    qj_doc *d = parse_ok("{\"a\": [1, \"two\", true, false, null, {\"b\": []}, [[]]],"
                         " \"c\": {}, \"d\": {\"e\": {\"f\": -1}}}");
    const qj_value *root = qj_root(d);
    ck_assert_int_eq(root->type, QJ_OBJECT);
    ck_assert_uint_eq(root->len, 3);
    ck_assert_str_eq(root->u.members[0].key, "a");
    ck_assert_str_eq(root->u.members[1].key, "c");
    ck_assert_str_eq(root->u.members[2].key, "d");
    const qj_value *a = qj_get_type(root, "a", QJ_ARRAY);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->len, 7);
    ck_assert_int_eq(a->u.items[0].type, QJ_NUMBER);
    ck_assert_int_eq(a->u.items[1].type, QJ_STRING);
    ck_assert_str_eq(a->u.items[1].u.str, "two");
    ck_assert_int_eq(a->u.items[2].type, QJ_TRUE);
    ck_assert_int_eq(a->u.items[3].type, QJ_FALSE);
    ck_assert_int_eq(a->u.items[4].type, QJ_NULL);
    ck_assert_int_eq(a->u.items[5].type, QJ_OBJECT);
    const qj_value *b = qj_get(&a->u.items[5], "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->type, QJ_ARRAY);
    ck_assert_uint_eq(b->len, 0);
    ck_assert_ptr_nonnull(b->u.items); /* empty containers still point somewhere */
    ck_assert_uint_eq(a->u.items[6].len, 1);
    ck_assert_uint_eq(a->u.items[6].u.items[0].len, 0);
    const qj_value *c = qj_get_type(root, "c", QJ_OBJECT);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->len, 0);
    int64_t f = 0;
    ck_assert(qj_get_int(qj_get(qj_get(root, "d"), "e"), "f", &f));
    ck_assert_int_eq(f, -1);
    qj_free(d);

    /* Top level arrays, whitespace everywhere allowed by the grammar. */
    d = parse_ok(" [ 1 , [ ] , { } , { \"k\" : \"v\" } ] ");
    ck_assert_uint_eq(qj_root(d)->len, 4);
    ck_assert_str_eq(qj_get_str(&qj_root(d)->u.items[3], "k"), "v");
    qj_free(d);
}
END_TEST

START_TEST(parse_large_array) {
    /* Enough elements to grow every internal stack and several arena chunks. */
    qj_buf b = {0};
    qj_buf_puts(&b, "[");
    for (int i = 0; i < 200000; i++) qj_buf_printf(&b, "%s[%d,\"s%d\"]", i ? "," : "", i, i);
    qj_buf_puts(&b, "]");
    ck_assert(!b.oom);
    qj_doc *d = parse_ok(b.buf);
    const qj_value *r = qj_root(d);
    ck_assert_uint_eq(r->len, 200000);
    for (uint32_t i = 0; i < r->len; i += 997) {
        ck_assert_uint_eq(r->u.items[i].len, 2);
        ck_assert(r->u.items[i].u.items[0].u.num == (double)i);
        char want[16];
        snprintf(want, sizeof want, "s%u", i);
        ck_assert_str_eq(r->u.items[i].u.items[1].u.str, want);
    }
    qj_free(d);
    qj_buf_free(&b);
}
END_TEST

START_TEST(parse_duplicate_keys) {
    qj_doc *d = parse_ok("{\"k\": 1, \"x\": 0, \"k\": 2, \"k\": 3}");
    const qj_value *r = qj_root(d);
    ck_assert_uint_eq(r->len, 4); /* all members kept, in document order */
    ck_assert(r->u.members[0].value.u.num == 1);
    ck_assert(r->u.members[2].value.u.num == 2);
    ck_assert(r->u.members[3].value.u.num == 3);
    double v = 0;
    ck_assert(qj_get_num(r, "k", &v));
    ck_assert(v == 3); /* the last wins */
    qj_free(d);
}
END_TEST

START_TEST(parse_escapes) {
    qj_doc *d = parse_ok("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"");
    ck_assert_str_eq(qj_root(d)->u.str, "a\"b\\c/d\be\ff\ng\rh\ti");
    ck_assert_uint_eq(qj_root(d)->len, 17);
    qj_free(d);

    static const struct { const char *json; const char *utf8; } u[] = {
        {"\"\\u0041\"", "A"},
        {"\"\\u00e9\"", "\xc3\xa9"},
        {"\"\\u00E9\"", "\xc3\xa9"},
        {"\"\\u07FF\"", "\xdf\xbf"},
        {"\"\\u20ac\"", "\xe2\x82\xac"},
        {"\"\\uFFFF\"", "\xef\xbf\xbf"},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},
        {"\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80"},
        {"\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf"},
        {"\"x\\u0041\\u0042y\"", "xABy"},
        {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"\"\x7f\"", "\x7f"}, /* DEL needs no escape */
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        d = parse_ok(u[i].json);
        ck_assert_str_eq(qj_root(d)->u.str, u[i].utf8);
        ck_assert_uint_eq(qj_root(d)->len, strlen(u[i].utf8));
        qj_free(d);
    }

    /* NUL inside strings and keys is kept, with the right length. */
    d = parse_ok("{\"a\\u0000b\": \"x\\u0000y\\u0000\"}");
    const qj_value *r = qj_root(d);
    ck_assert_uint_eq(r->u.members[0].key_len, 3);
    ck_assert(memcmp(r->u.members[0].key, "a\0b", 4) == 0);
    ck_assert_uint_eq(r->u.members[0].value.len, 4);
    ck_assert(memcmp(r->u.members[0].value.u.str, "x\0y\0", 5) == 0);
    ck_assert_ptr_null(qj_get(r, "a")); /* a C string key cannot match past the NUL */
    ck_assert_ptr_nonnull(qj_get_n(r, "a\0b", 3));
    qj_free(d);
}
END_TEST

START_TEST(parse_depth_limit) {
    /* 512 levels are fine, 513 are not, 100000 give a clean error. */
    for (int depth = 511; depth <= 513; depth++) {
        char *s = malloc((size_t)depth * 2 + 1);
        for (int i = 0; i < depth; i++) {
            s[i] = '[';
            s[depth + i] = ']';
        }
        s[depth * 2] = 0;
        char err[256];
        qj_doc *d = parse_n(s, (size_t)depth * 2, err, sizeof err);
        if (depth <= 512) {
            ck_assert_msg(d != NULL, "depth %d: %s", depth, err);
            const qj_value *v = qj_root(d);
            int seen = 1;
            while (v->len) {
                v = &v->u.items[0];
                seen++;
            }
            ck_assert_int_eq(seen, depth);
            qj_free(d);
        } else {
            ck_assert(d == NULL);
            ck_assert_msg(strstr(err, "nesting deeper than 512") != NULL, "%s", err);
            ck_assert_msg(strstr(err, "column 513") != NULL, "%s", err);
        }
        free(s);
    }
    size_t n = 100000;
    char *s = malloc(n);
    memset(s, '[', n);
    expect_error_n(s, n, "nesting deeper than 512");
    for (size_t i = 0; i + 5 <= n; i += 5) memcpy(s + i, "{\"\":[", 5);
    expect_error_n(s, n, "nesting deeper than 512");
    free(s);
}
END_TEST

/* ------------------------------------------------------------------ reader: errors */

START_TEST(parse_errors) {
    static const struct { const char *text; const char *want; } cases[] = {
        /* empty and trailing */
        {"", "line 1, column 1: empty input"},
        {"   \n  ", "line 2, column 3: empty input"},
        {"1 2", "line 1, column 3: expected end of input after the JSON value, found '2'"},
        {"{} x", "found 'x'"},
        {"[1]]", "found ']'"},
        {"nullnull", "found 'n'"},
        {"truex", "found 'x'"},
        /* numbers */
        {"01", "leading zero"},
        {"-01", "leading zero"},
        {"00", "leading zero"},
        {"1.", "expected a digit after '.'"},
        {"1.e5", "expected a digit after '.'"},
        {".5", "expected a value, found '.'"},
        {"-", "unexpected end of input, expected a digit after '-'"},
        {"-a", "expected a digit after '-', found 'a'"},
        {"- 1", "expected a digit after '-'"},
        {"1e", "expected a digit in the exponent"},
        {"1e+", "expected a digit in the exponent"},
        {"1E-x", "expected a digit in the exponent"},
        {"+1", "expected a value, found '+'"},
        {"0x10", "found 'x'"},
        {"1e400", "number out of range"},
        {"-1e400", "number out of range"},
        {"[1e99999999999999999999]", "number out of range"},
        {"Infinity", "found 'I'"},
        {"NaN", "found 'N'"},
        {"[-Infinity]", "expected a digit after '-'"},
        /* literals */
        {"tru", "invalid literal (expected 'true')"},
        {"nul", "invalid literal (expected 'null')"},
        {"fals", "invalid literal (expected 'false')"},
        {"True", "found 'T'"},
        {"[nulL]", "invalid literal"},
        /* strings */
        {"\"abc", "unexpected end of input in string"},
        {"\"abc\\", "unexpected end of input in string"},
        {"'abc'", "found '''"},
        {"\"a\tb\"", "control character 0x09 in string must be escaped"},
        {"\"a\nb\"", "control character 0x0a"},
        {"\"\x01\"", "control character 0x01"},
        {"\"\x1f\"", "control character 0x1f"},
        {"\"\\x41\"", "invalid escape: backslash followed by 'x'"},
        {"\"\\U0041\"", "invalid escape"},
        {"\"\\a\"", "invalid escape"},
        {"\"\\'\"", "invalid escape"},
        {"\"\\u12\"", "invalid \\u escape: expected 4 hex digits"},
        {"\"\\u12g4\"", "invalid \\u escape: expected 4 hex digits"},
        {"\"\\u", "invalid \\u escape"},
        {"\"\\uD800\"", "invalid \\u escape: lone surrogate"},
        {"\"\\uD800x\"", "invalid \\u escape: lone surrogate"},
        {"\"\\uDC00\"", "invalid \\u escape: lone surrogate"},
        {"\"\\uDFFF\\uD800\"", "invalid \\u escape: lone surrogate"},
        {"\"\\uD800\\uD800\"", "invalid \\u escape: lone surrogate"},
        {"\"\\uD800\\u0041\"", "invalid \\u escape: lone surrogate"},
        {"\"\\uD800\\n\"", "invalid \\u escape: lone surrogate"},
        {"\"\\uD83D\\uDE0", "invalid \\u escape: lone surrogate"},
        /* invalid UTF-8 in strings and elsewhere */
        {"\"\xff\"", "invalid UTF-8 in string (byte 0xff)"},
        {"\"\x80\"", "invalid UTF-8 in string"},
        {"\"\xc0\x80\"", "invalid UTF-8 in string"},
        {"\"\xed\xa0\x80\"", "invalid UTF-8 in string"},
        {"\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string"},
        {"\"\xe2\x82\"", "invalid UTF-8 in string"},
        {"\"\xe2\x82", "invalid UTF-8 in string"},
        {"{\"\xc3\":1}", "invalid UTF-8 in string"},
        {"\xff", "found invalid UTF-8 byte 0xff"},
        {"[1,\xc3\xa9]", "found U+00E9"},
        {"[1]\xc3\xa9", "found U+00E9"},
        {"\xef\xbb", "invalid UTF-8"},
        /* arrays */
        {"[", "unexpected end of input, expected a value"},
        {"[1", "unexpected end of input, expected ',' or ']' after array element"},
        {"[1,", "unexpected end of input, expected a value"},
        {"[1,]", "expected a value, found ']'"},
        {"[,1]", "expected a value, found ','"},
        {"[1 2]", "expected ',' or ']' after array element, found '2'"},
        {"[1:2]", "found ':'"},
        {"[1}", "found '}'"},
        {"]", "expected a value, found ']'"},
        /* objects */
        {"{", "unexpected end of input, expected a string key or '}'"},
        {"{\"a\"", "unexpected end of input, expected ':' after object key"},
        {"{\"a\":", "unexpected end of input, expected a value"},
        {"{\"a\":1", "expected ',' or '}' after object member"},
        {"{\"a\":1,", "expected a string key after ','"},
        {"{\"a\":1,}", "expected a string key after ',', found '}'"},
        {"{\"a\" 1}", "expected ':' after object key, found '1'"},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}' after object member, found '\"'"},
        {"{a:1}", "expected a string key or '}', found 'a'"},
        {"{1:1}", "found '1'"},
        {"{\"a\":1]", "found ']'"},
        {"{\"a\"::1}", "expected a value, found ':'"},
        {"}", "found '}'"},
        {"{\"a\"=1}", "found '='"},
        /* comments and other extensions are not JSON */
        {"[1] // c", "found '/'"},
        {"/* c */ 1", "found '/'"},
        {"[1,\n 2,\n @]", "line 3, column 2: expected a value, found '@'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_error(cases[i].text, cases[i].want);
    /* NUL bytes are passed with an explicit length */
    expect_error_n("[\0]", 3, "found byte 0x00");
    expect_error_n("\"a\0b\"", 5, "control character 0x00");
    expect_error_n("1\0", 2, "found byte 0x00");
}
END_TEST

START_TEST(parse_error_positions) {
    char err[256];
    const char *s = "{\n  \"a\": 1,\n  \"b\" 2\n}";
    ck_assert_ptr_null(parse_n(s, strlen(s), err, sizeof err));
    ck_assert_str_eq(err, "line 3, column 7: expected ':' after object key, found '2'");
    /* columns count characters, not bytes */
    s = "[\"\xc3\xa9\xe2\x82\xac\", x]";
    ck_assert_ptr_null(parse_n(s, strlen(s), err, sizeof err));
    ck_assert_str_eq(err, "line 1, column 8: expected a value, found 'x'");
    /* an escape error points at the backslash */
    s = "[\"ab\\q\"]";
    ck_assert_ptr_null(parse_n(s, strlen(s), err, sizeof err));
    ck_assert_str_eq(err, "line 1, column 5: invalid escape: backslash followed by 'q'");
    s = "\r\n\r\n  \"\\uD800\"";
    ck_assert_ptr_null(parse_n(s, strlen(s), err, sizeof err));
    ck_assert_str_eq(err, "line 3, column 4: invalid \\u escape: lone surrogate");
    /* small or absent error buffers are safe */
    char tiny[8];
    memset(tiny, 'z', sizeof tiny);
    ck_assert_ptr_null(parse_n("[", 1, tiny, sizeof tiny));
    ck_assert_str_eq(tiny, "line 1,");
    ck_assert_ptr_null(parse_n("[", 1, NULL, 0));
    ck_assert_ptr_null(qj_parse(NULL, 0, tiny, sizeof tiny));
    ck_assert_ptr_null(qj_parse("[]", SIZE_MAX, err, sizeof err));
    ck_assert_str_eq(err, "line 1, column 1: input too large");
    ck_assert_ptr_null(parse_n("[", 1, tiny, 0));
    ck_assert_int_eq(tiny[0], 'l');
    /* success clears the buffer */
    qj_doc *d = parse_n("[]", 2, err, sizeof err);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(err, "");
    qj_free(d);
}
END_TEST

static const char sample_doc[] =
    "{\"name\": \"caf\\u00e9 \xe2\x82\xac \\ud83d\\ude00\", \"n\": [0, -1.5e-3, 12, true, false, null],"
    "\"nested\": {\"a\": [[], {}], \"b\": {\"c\": \"\\\"q\\\"\\n\"}}, \"x\": 123456789012, \"t\": true}";

START_TEST(parse_truncated_everywhere) {
    size_t n = strlen(sample_doc);
    qj_doc *full = parse_ok(sample_doc);
    qj_free(full);
    /* every proper prefix of an object is incomplete: all must fail cleanly */
    for (size_t i = 0; i < n; i++) {
        char err[256];
        err[0] = 0;
        qj_doc *d = parse_n(sample_doc, i, err, sizeof err);
        ck_assert_msg(d == NULL, "prefix of %zu bytes parsed", i);
        ck_assert_msg(strncmp(err, "line 1, column ", 15) == 0, "prefix %zu: %s", i, err);
    }
}
END_TEST

START_TEST(parse_mutations_never_crash) {
    /* Overwrite, insert or delete bytes of a valid document at random; the
     * parser must return a document or an error, never crash (run under
     * ASan/UBSan to make this bite). Results that parse must re-serialize to
     * something that parses again. */
    static const char alphabet[] = "{}[]\",:\\u0123456789abcdefnrtlse+-.E \n\t\x00\x1f\x7f\x80\xbf\xc3\xe2\xed\xf0\xf4\xff";
    size_t n = strlen(sample_doc);
    char *buf = malloc(n + 8);
    uint64_t state = 42;
    int parsed = 0;
    for (int iter = 0; iter < 30000; iter++) {
        memcpy(buf, sample_doc, n);
        size_t len = n;
        int edits = 1 + iter % 3;
        for (int e = 0; e < edits; e++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(state >> 33) % len;
            char c = alphabet[(state >> 20) % (sizeof alphabet - 1)];
            switch ((state >> 10) % 3) {
            case 0: buf[pos] = c; break;
            case 1:
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = c;
                len++;
                break;
            default:
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
            }
        }
        char err[256];
        qj_doc *d = parse_n(buf, len, err, sizeof err);
        if (d) {
            parsed++;
            size_t olen;
            char *out = dump(d, &olen);
            qj_doc *d2 = parse_n(out, olen, err, sizeof err);
            ck_assert_msg(d2 != NULL, "re-serialized mutation does not parse: %s", err);
            qj_free(d2);
            free(out);
            qj_free(d);
        } else {
            ck_assert(strncmp(err, "line ", 5) == 0);
        }
    }
    ck_assert_int_gt(parsed, 0);
    free(buf);
}
END_TEST

/* ------------------------------------------------------------------ lookups */

START_TEST(lookups) {
    qj_doc *d = parse_ok("{\"s\": \"str\", \"n\": 2.5, \"i\": 42, \"neg\": -7, \"big\": 9007199254740993,"
                         " \"edge\": 9007199254740991, \"f\": 3.0, \"frac\": 3.25, \"t\": true,"
                         " \"fa\": false, \"nul\": null, \"arr\": [1], \"obj\": {\"k\": 1}}");
    const qj_value *r = qj_root(d);
    ck_assert_str_eq(qj_get_str(r, "s"), "str");
    ck_assert_ptr_null(qj_get_str(r, "n"));
    ck_assert_ptr_null(qj_get_str(r, "missing"));
    double x = 0;
    ck_assert(qj_get_num(r, "n", &x) && x == 2.5);
    ck_assert(!qj_get_num(r, "s", &x));
    ck_assert(!qj_get_num(r, "missing", &x));
    int64_t i = 0;
    ck_assert(qj_get_int(r, "i", &i) && i == 42);
    ck_assert(qj_get_int(r, "neg", &i) && i == -7);
    ck_assert(qj_get_int(r, "edge", &i) && i == 9007199254740991ll);
    ck_assert(!qj_get_int(r, "big", &i)); /* not exact in a double */
    ck_assert(qj_get_int(r, "f", &i) && i == 3);
    ck_assert(!qj_get_int(r, "frac", &i));
    ck_assert(!qj_get_int(r, "s", &i));
    ck_assert(!qj_get_int(r, "missing", &i));
    ck_assert_int_eq(qj_get_bool(r, "t", 0), 1);
    ck_assert_int_eq(qj_get_bool(r, "fa", 1), 0);
    ck_assert_int_eq(qj_get_bool(r, "nul", 7), 7);
    ck_assert_int_eq(qj_get_bool(r, "missing", -1), -1);
    ck_assert_int_eq(qj_get_bool(r, "s", 5), 5);
    ck_assert_ptr_nonnull(qj_get_type(r, "arr", QJ_ARRAY));
    ck_assert_ptr_null(qj_get_type(r, "arr", QJ_OBJECT));
    ck_assert_ptr_nonnull(qj_get_type(r, "obj", QJ_OBJECT));
    ck_assert_ptr_nonnull(qj_get_type(r, "nul", QJ_NULL));
    ck_assert_ptr_nonnull(qj_get_type(r, "t", QJ_TRUE));
    ck_assert_ptr_nonnull(qj_get_type(r, "fa", QJ_TRUE)); /* either boolean */
    ck_assert_ptr_null(qj_get_type(r, "s", QJ_TRUE));
    /* lookups on non-objects or NULL are safe */
    ck_assert_ptr_null(qj_get(qj_get(r, "arr"), "k"));
    ck_assert_ptr_null(qj_get(NULL, "k"));
    ck_assert_ptr_null(qj_get(r, NULL));
    ck_assert_ptr_null(qj_get_str(NULL, "s"));
    ck_assert_int_eq(qj_get_bool(NULL, "t", 3), 3);
    ck_assert(!qj_number_to_int(NULL, &i));
    ck_assert_str_eq(qj_type_name(QJ_OBJECT), "object");
    ck_assert_str_eq(qj_type_name(QJ_TRUE), "boolean");
    ck_assert_ptr_null(qj_root(NULL));
    qj_free(NULL);
    qj_free(d);
}
END_TEST

/* ------------------------------------------------------------------ writer */

START_TEST(writer_string_escaping) {
    /* Expected outputs are Python's json.dumps(s, ensure_ascii=False). */
    static const struct { const char *in; size_t n; const char *out; } cases[] = {
        {"plain", 5, "\"plain\""},
        {"", 0, "\"\""},
        {"q\"b\\s/", 6, "\"q\\\"b\\\\s/\""},
        {"\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\""},
        {"\x01\x1f\x0b\x1b", 4, "\"\\u0001\\u001f\\u000b\\u001b\""},
        {"a\0b", 3, "\"a\\u0000b\""},
        {"\x7f", 1, "\"\x7f\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8", 18,
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8\""},
        /* invalid UTF-8 becomes U+FFFD so the output is still JSON */
        {"a\xff" "b\xc3", 4, "\"a\xef\xbf\xbd" "b\xef\xbf\xbd\""},
        {"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qj_buf b = {0};
        qj_buf_put_string(&b, cases[i].in, cases[i].n);
        ck_assert(!b.oom);
        ck_assert_msg(b.len == strlen(cases[i].out) && memcmp(b.buf, cases[i].out, b.len) == 0,
                      "case %zu: got <%s>, want <%s>", i, b.buf, cases[i].out);
        ck_assert_int_eq(b.buf[b.len], 0);
        /* and it reads back as the same bytes (for valid input) */
        if (i < 8) {
            char err[256];
            qj_doc *d = parse_n(b.buf, b.len, err, sizeof err);
            ck_assert_msg(d != NULL, "%s", err);
            ck_assert_uint_eq(qj_root(d)->len, cases[i].n);
            ck_assert(memcmp(qj_root(d)->u.str, cases[i].in, cases[i].n) == 0);
            qj_free(d);
        }
        qj_buf_free(&b);
    }
    /* every byte value 0..0x7f round-trips */
    char all[128];
    for (int c = 0; c < 128; c++) all[c] = (char)c;
    qj_buf b = {0};
    qj_buf_put_string(&b, all, sizeof all);
    qj_doc *d = parse_n(b.buf, b.len, NULL, 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(qj_root(d)->len, 128);
    ck_assert(memcmp(qj_root(d)->u.str, all, 128) == 0);
    qj_free(d);
    qj_buf_free(&b);
}
END_TEST

START_TEST(writer_values) {
    expect_roundtrip(" { \"a\" : [ 1 , 2.5 , \"x\" , true , false , null , { } , [ ] ] } ",
                     "{\"a\":[1,2.5,\"x\",true,false,null,{},[]]}");
    expect_roundtrip("{\"k\":1,\"k\":2}", "{\"k\":1,\"k\":2}");
    expect_roundtrip("\"\\u00e9\\n\\u0001\\/\"", "\"\xc3\xa9\\n\\u0001/\"");
    /* numbers are written like Python's json.dumps writes the parsed value */
    static const struct { const char *in, *out; } nums[] = {
        {"0", "0"},
        {"-0", "-0"},
        {"-0.0", "-0.0"},
        {"1.0", "1.0"},
        {"100.0", "100.0"},
        {"1e2", "100.0"},
        {"0.1", "0.1"},
        {"1.5", "1.5"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"3.141592653589793", "3.141592653589793"},
        {"0.0001", "0.0001"},
        {"0.00001", "1e-05"},
        {"1e15", "1000000000000000.0"},
        {"1e16", "1e+16"},
        {"1.5e16", "1.5e+16"},
        {"123456789012345.6", "123456789012345.6"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"5e-324", "5e-324"},
        {"2.2250738585072014e-308", "2.2250738585072014e-308"},
        {"-1.5e-3", "-0.0015"},
        {"1e22", "1e+22"},
        {"1e-400", "0.0"},
        {"12345678901234567890", "12345678901234567168"}, /* limited to a double */
        {"9007199254740993", "9007199254740992"},
        {"1000000000000000000000", "1000000000000000000000"},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) expect_roundtrip(nums[i].in, nums[i].out);

    /* hand-built values: non-finite numbers are not JSON, so they become null */
    qj_value v;
    memset(&v, 0, sizeof v);
    v.type = QJ_NUMBER;
    v.u.num = INFINITY;
    qj_buf b = {0};
    qj_buf_put_value(&b, &v);
    v.u.num = NAN;
    qj_buf_put_value(&b, &v);
    qj_buf_put_value(&b, NULL);
    ck_assert_str_eq(b.buf, "nullnullnull");
    qj_buf_free(&b);
}
END_TEST

START_TEST(writer_buffer) {
    qj_buf b = {0};
    qj_buf_puts(&b, "");
    qj_buf_put(&b, "abc", 2);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_str_eq(b.buf, "ab");
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    qj_buf_printf(&b, "<%s|%d>", big, 12345);
    ck_assert_uint_eq(b.len, 2 + 1 + 999 + 7);
    ck_assert_int_eq(b.buf[b.len], 0);
    ck_assert(memcmp(b.buf + b.len - 7, "|12345>", 7) == 0);
    for (int i = 0; i < 10000; i++) qj_buf_printf(&b, "%d,", i);
    ck_assert(!b.oom);
    ck_assert(strstr(b.buf, ",9999,") != NULL);
    ck_assert_uint_eq(strlen(b.buf), b.len);
    qj_buf_free(&b);
    ck_assert_ptr_null(b.buf);
    ck_assert_uint_eq(b.len, 0);
    qj_buf_free(&b); /* twice is fine */
}
END_TEST

/* ------------------------------------------------------------------ real files */

/* Length and FNV-1a of Python's json.dumps(json.load(f), ensure_ascii=False,
 * separators=(",", ":")) for each file; for .jsonl the lines' dumps joined
 * with "\n". Our compact writer must produce exactly the same bytes, which
 * checks every string, escape and number of these files end to end. */
static const struct { const char *path; int docs; size_t len; uint64_t fnv; } python_dumps[] = {
    {"tokenizers/gemma3/tokenizer.json", 1, 14386245u, 0x5e9015ce7bfd61afull},
    {"tokenizers/gemma3/tokenizer_config.json", 1, 778416u, 0xeaf73066fe9ed425ull},
    {"tokenizers/llama3/tokenizer.json", 1, 6082722u, 0x75e10d7991c54f8bull},
    {"tokenizers/llama3/tokenizer_config.json", 1, 35823u, 0x71f5e4cfca96c34cull},
    {"tokenizers/mistral/tokenizer.json", 1, 1125363u, 0x51e99ec5ca2dd7f8ull},
    {"tokenizers/mistral/tokenizer_config.json", 1, 725u, 0x6121e5286979f556ull},
    {"tokenizers/qwen3/tokenizer.json", 1, 5363085u, 0x5ba60e06af98a7a4ull},
    {"tokenizers/qwen3/tokenizer_config.json", 1, 8013u, 0xea0e7161aacf59f4ull},
    {"tokenizers/gemma3/cases.jsonl", 301, 94385u, 0x0af7099780d3a7f6ull},
    {"tokenizers/gemma3/chat.jsonl", 44, 32196u, 0xd03c2208f99bb526ull},
    {"tokenizers/llama3/cases.jsonl", 301, 86732u, 0x8538b09719ced2d7ull},
    {"tokenizers/llama3/chat.jsonl", 44, 35239u, 0xba04e89fdc16054full},
    {"tokenizers/mistral/cases.jsonl", 301, 98508u, 0xd434d7f96ea8346full},
    {"tokenizers/qwen3/cases.jsonl", 301, 81643u, 0x07322d35f30edd0aull},
    {"tokenizers/qwen3/chat.jsonl", 44, 33644u, 0x3ddcb336dd39d2caull},
    {"tokenizers/manifest.json", 1, 3211u, 0xfa3ea3a06ea31809ull},
    {"models/gemma2-tiny/config.json", 1, 916u, 0xa706aafe8bd5b0b6ull},
    {"models/llama3-tiny/config.json", 1, 681u, 0x82916cb81df05e3bull},
    {"models/qwen3-tiny/config.json", 1, 725u, 0x02bf8c78a5ff83ebull},
    {"models/qwen3-tiny/tokenizer.json", 1, 4199u, 0x0fa3cb94356c8d73ull},
    {"models/qwen3-tiny/tokenizer_config.json", 1, 861u, 0x47eec2f5d836c1c1ull},
    {"models/gemma2-tiny/expected.jsonl", 12, 7836u, 0xe5ecb55ad2ab93c9ull},
    {"models/llama3-tiny/expected.jsonl", 12, 7814u, 0xb1c25845f0c59b26ull},
    {"models/qwen3-tiny/expected.jsonl", 12, 7794u, 0x75fe56c5944073a0ull},
};

typedef struct {
    qj_buf out;
    int docs;
} jsonl_state;

static void dump_line(const char *line, size_t len, void *arg) {
    jsonl_state *st = arg;
    if (len == 0) return;
    char err[256];
    qj_doc *d = qj_parse(line, len, err, sizeof err);
    ck_assert_msg(d != NULL, "line %d: %s", st->docs + 1, err);
    if (st->docs++) qj_buf_put(&st->out, "\n", 1);
    qj_buf_put_value(&st->out, qj_root(d));
    qj_free(d);
}

START_TEST(real_files_match_python) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", TEST_DATA, python_dumps[_i].path);
    jsonl_state st = {{0}, 0};
    size_t plen = strlen(path);
    if (plen > 6 && strcmp(path + plen - 6, ".jsonl") == 0) {
        tu_for_each_line(path, dump_line, &st);
    } else {
        size_t n;
        char *text = tu_read_file(path, &n);
        dump_line(text, n, &st);
        free(text);
    }
    ck_assert(!st.out.oom);
    ck_assert_int_eq(st.docs, python_dumps[_i].docs);
    ck_assert_msg(st.out.len == python_dumps[_i].len, "%s: wrote %zu bytes, Python %zu", path,
                  st.out.len, python_dumps[_i].len);
    ck_assert_msg(fnv1a(st.out.buf, st.out.len) == python_dumps[_i].fnv, "%s: output differs from Python", path);
    qj_buf_free(&st.out);
}
END_TEST

static const struct {
    const char *name;
    uint32_t vocab, merges, added;
    const char *first_added;
    int64_t first_added_id;
    struct { const char *token; int64_t id; } samples[4];
} tokenizers[] = {
    {"qwen3", 151643, 151387, 26, "<|endoftext|>", 151643,
     {{"!", 0}, {"atus", 1000}, {"\xc3\xa2\xc2\xbd\xc4\xb9", 151642}, {"\xc2\xa1", 94}}},
    {"llama3", 128000, 280147, 256, "<|begin_of_text|>", 128000,
     {{"!", 0}, {"indow", 1000}, {"\xc3\xa9\xc4\xb6\xc2\xa6", 127999}, {"\xc2\xa2", 95}}},
    {"gemma3", 262144, 514906, 6415, "<pad>", 0,
     {{"<pad>", 0}, {"put", 1000}, {"<unused6241>", 262143}, {"\xe2\x96\x81\xe2\x96\x81", 138}}},
    {"mistral", 32000, 58980, 3, "<unk>", 0,
     {{"<unk>", 0}, {"\xd0\xbb\xd0\xb0", 1000}, {"\xe6\xa2\xa6", 31999}, {"\xe2\x96\x81\xe2\x96\x81", 259}}},
};

START_TEST(real_tokenizers) {
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", TEST_DATA, tokenizers[_i].name);
    size_t n;
    char *text = tu_read_file(path, &n);
    char err[256];
    qj_doc *d = qj_parse(text, n, err, sizeof err);
    free(text);
    ck_assert_msg(d != NULL, "%s: %s", path, err);
    const qj_value *root = qj_root(d);
    const qj_value *model = qj_get_type(root, "model", QJ_OBJECT);
    ck_assert_ptr_nonnull(model);
    ck_assert_str_eq(qj_get_str(model, "type"), "BPE");
    const qj_value *vocab = qj_get_type(model, "vocab", QJ_OBJECT);
    ck_assert_ptr_nonnull(vocab);
    ck_assert_uint_eq(vocab->len, tokenizers[_i].vocab);
    for (int k = 0; k < 4; k++) {
        int64_t id = -1;
        ck_assert_msg(qj_get_int(vocab, tokenizers[_i].samples[k].token, &id), "%s: token %d missing",
                      tokenizers[_i].name, k);
        ck_assert_int_eq(id, tokenizers[_i].samples[k].id);
    }
    /* ids in these vocabs are exactly 0..n-1 in document order */
    for (uint32_t k = 0; k < vocab->len; k++) {
        const qj_value *v = &vocab->u.members[k].value;
        ck_assert(v->type == QJ_NUMBER && v->is_int && v->u.num == (double)k);
    }
    const qj_value *merges = qj_get_type(model, "merges", QJ_ARRAY);
    ck_assert_ptr_nonnull(merges);
    ck_assert_uint_eq(merges->len, tokenizers[_i].merges);
    const qj_value *added = qj_get_type(root, "added_tokens", QJ_ARRAY);
    ck_assert_ptr_nonnull(added);
    ck_assert_uint_eq(added->len, tokenizers[_i].added);
    ck_assert_str_eq(qj_get_str(&added->u.items[0], "content"), tokenizers[_i].first_added);
    int64_t id = -1;
    ck_assert(qj_get_int(&added->u.items[0], "id", &id));
    ck_assert_int_eq(id, tokenizers[_i].first_added_id);
    ck_assert_int_eq(qj_get_bool(&added->u.items[0], "special", 0), 1);
    qj_free(d);
}
END_TEST

/* A safetensors header is JSON after an 8-byte little-endian length. */
START_TEST(real_safetensors_header) {
    size_t n;
    char *file = tu_read_file(TEST_DATA "/models/qwen3-tiny/model.safetensors", &n);
    ck_assert(n >= 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)file[i];
    ck_assert(hlen <= n - 8);
    char err[256];
    qj_doc *d = qj_parse(file + 8, (size_t)hlen, err, sizeof err);
    ck_assert_msg(d != NULL, "%s", err);
    const qj_value *emb = qj_get_type(qj_root(d), "model.embed_tokens.weight", QJ_OBJECT);
    ck_assert_ptr_nonnull(emb);
    ck_assert_ptr_nonnull(qj_get_str(emb, "dtype"));
    const qj_value *off = qj_get_type(emb, "data_offsets", QJ_ARRAY);
    ck_assert_ptr_nonnull(off);
    ck_assert_uint_eq(off->len, 2);
    ck_assert_uint_eq(qj_root(d)->len, 37);
    qj_free(d);
    free(file);
}
END_TEST

static Suite *json_suite(void) {
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("utf8");
    tcase_add_test(tc, utf8_decode_valid);
    tcase_add_test(tc, utf8_decode_invalid);
    tcase_add_test(tc, utf8_encode_all_code_points);
    tcase_add_test(tc, utf8_validate_offsets);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, parse_scalars);
    tcase_add_test(tc, parse_numbers);
    tcase_add_test(tc, parse_numbers_match_strtod);
    tcase_add_test(tc, parse_containers);
    tcase_add_test(tc, parse_large_array);
    tcase_add_test(tc, parse_duplicate_keys);
    tcase_add_test(tc, parse_escapes);
    tcase_add_test(tc, parse_depth_limit);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, parse_error_positions);
    tcase_add_test(tc, parse_truncated_everywhere);
    tcase_add_test(tc, parse_mutations_never_crash);
    tcase_add_test(tc, lookups);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_test(tc, writer_string_escaping);
    tcase_add_test(tc, writer_values);
    tcase_add_test(tc, writer_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, 300); /* the 33 MB file is slow under sanitizers */
    tcase_add_loop_test(tc, real_files_match_python, 0,
                        (int)(sizeof python_dumps / sizeof python_dumps[0]));
    tcase_add_loop_test(tc, real_tokenizers, 0, (int)(sizeof tokenizers / sizeof tokenizers[0]));
    tcase_add_test(tc, real_safetensors_header);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(json_suite()); }
