/* The JSON reader (core/json.c) on arbitrary bytes, and the writer on what
 * it read: whatever parses must write back as JSON that parses to the same
 * text again, and any bytes written as a string literal must parse. */
#include <string.h>

#include "fuzz.h"
#include "json.h"

static void walk(const qj_value *v, int depth) {
    if (depth > 600) return;
    if (v->type == QJ_OBJECT) {
        for (uint32_t i = 0; i < v->len; i++) {
            const qj_member *m = &v->u.members[i];
            /* the lookups must find every key, NULs and all */
            FZ_CHECK(qj_get_n(v, m->key, m->key_len) != NULL, "key %u not found", i);
            int64_t iv;
            double d;
            qj_get_int(v, m->key, &iv);
            qj_get_num(v, m->key, &d);
            qj_get_bool(v, m->key, 0);
            qj_get_str(v, m->key);
            walk(&m->value, depth + 1);
        }
    } else if (v->type == QJ_ARRAY) {
        for (uint32_t i = 0; i < v->len; i++) walk(&v->u.items[i], depth + 1);
    } else if (v->type == QJ_NUMBER) {
        int64_t iv;
        qj_number_to_int(v, &iv);
    } else if (v->type == QJ_STRING) {
        FZ_CHECK(v->u.str[v->len] == 0, "string not NUL-terminated");
    }
    (void)qj_type_name(v->type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    const char *text = (const char *)data;
    qj_doc *d = qj_parse(text, size, err, sizeof err);
    if (!d) {
        FZ_CHECK(err[0] && strlen(err) < sizeof err - 1 && !strchr(err, '\n'),
                 "error message not one line: %s", err);
    } else {
        walk(qj_root(d), 0);
        qj_buf b = {0};
        qj_buf_put_value(&b, qj_root(d));
        FZ_CHECK(!b.oom, "out of memory writing");
        qj_doc *d2 = qj_parse(b.buf, b.len, err, sizeof err);
        FZ_CHECK(d2, "written JSON does not parse (%s): %.200s", err, b.buf);
        qj_buf b2 = {0};
        qj_buf_put_value(&b2, qj_root(d2));
        FZ_CHECK(b.len == b2.len && !memcmp(b.buf, b2.buf, b.len),
                 "write is not stable: %.200s vs %.200s", b.buf, b2.buf);
        qj_buf_free(&b2);
        qj_free(d2);
        qj_buf_free(&b);
        qj_free(d);
    }
    /* the raw bytes as a string literal: invalid UTF-8 becomes U+FFFD, and
     * the result is one string of valid JSON */
    qj_buf s = {0};
    qj_buf_put_string(&s, text, size);
    FZ_CHECK(!s.oom && s.buf, "out of memory writing a string");
    qj_doc *d3 = qj_parse(s.buf, s.len, err, sizeof err);
    FZ_CHECK(d3 && qj_root(d3)->type == QJ_STRING, "string literal does not parse (%s)", err);
    qj_free(d3);
    qj_buf_free(&s);
    return 0;
}
