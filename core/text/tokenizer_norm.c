/* Normalizers: NFC, Replace (literal string), Prepend, and Sequences of them.
 * Each runs on one piece of text between added tokens, as in the library
 * (so Prepend adds its "▁" at the start of every such piece). */
#include "tokenizer_internal.h"

#include "unicode.h"

#include <stdlib.h>
#include <string.h>

static int load_one(qrm_tok_normalizer *nz, const qj_value *v, int depth, char *err,
                    size_t errlen) {
    if (!v || v->type == QJ_NULL) return 0;
    if (v->type != QJ_OBJECT || depth > 8)
        return qrm_tok_fail(err, errlen, "tokenizer.json: normalizer is not an object");
    const char *type = qj_get_str(v, "type");
    if (!type) return qrm_tok_fail(err, errlen, "tokenizer.json: normalizer has no type");
    if (!strcmp(type, "Sequence")) {
        const qj_value *list = qj_get_type(v, "normalizers", QJ_ARRAY);
        if (!list)
            return qrm_tok_fail(err, errlen, "tokenizer.json: normalizer Sequence without a list");
        for (uint32_t i = 0; i < list->len; i++)
            if (load_one(nz, &list->u.items[i], depth + 1, err, errlen) != 0) return -1;
        return 0;
    }
    qrm_tok_norm st = {0};
    if (!strcmp(type, "NFC")) {
        st.kind = QRM_TOK_NORM_NFC;
    } else if (!strcmp(type, "Prepend")) {
        size_t len;
        const char *s = qrm_tok_json_str(v, "prepend", &len);
        if (!s) return qrm_tok_fail(err, errlen, "tokenizer.json: Prepend normalizer without text");
        st.kind = QRM_TOK_NORM_PREPEND;
        st.content = qrm_tok_strndup(s, len);
        st.content_len = len;
        if (!st.content) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    } else if (!strcmp(type, "Replace")) {
        const qj_value *pat = qj_get_type(v, "pattern", QJ_OBJECT);
        size_t plen = 0, clen = 0;
        const char *p = pat ? qrm_tok_json_str(pat, "String", &plen) : NULL;
        const char *c = qrm_tok_json_str(v, "content", &clen);
        if (pat && qj_get(pat, "Regex"))
            return qrm_tok_fail(err, errlen,
                                "tokenizer.json: unsupported normalizer Replace with a Regex pattern");
        if (!p || !c) return qrm_tok_fail(err, errlen, "tokenizer.json: Replace normalizer without pattern/content");
        if (plen == 0)
            return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported Replace of an empty string");
        st.kind = QRM_TOK_NORM_REPLACE;
        st.pattern = qrm_tok_strndup(p, plen);
        st.pattern_len = plen;
        st.content = qrm_tok_strndup(c, clen);
        st.content_len = clen;
        if (!st.pattern || !st.content) {
            free(st.pattern);
            free(st.content);
            return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
        }
    } else {
        return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported normalizer type '%.40s'",
                            type);
    }
    qrm_tok_norm *steps = realloc(nz->steps, (nz->n + 1) * sizeof *steps);
    if (!steps) {
        free(st.pattern);
        free(st.content);
        return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    }
    nz->steps = steps;
    nz->steps[nz->n++] = st;
    return 0;
}

int qrm_tok_norm_load(qrm_tok_normalizer *nz, const qj_value *v, char *err, size_t errlen) {
    memset(nz, 0, sizeof *nz);
    return load_one(nz, v, 0, err, errlen);
}

void qrm_tok_norm_free(qrm_tok_normalizer *nz) {
    for (size_t i = 0; i < nz->n; i++) {
        free(nz->steps[i].pattern);
        free(nz->steps[i].content);
    }
    free(nz->steps);
    memset(nz, 0, sizeof *nz);
}

/* One step from s[0..n) into dst (emptied first). */
static void apply(const qrm_tok_norm *st, const char *s, size_t n, qrm_tok_buf *dst) {
    dst->len = 0;
    switch (st->kind) {
    case QRM_TOK_NORM_NFC:
        if (qrm_uni_is_nfc_quick(s, n)) {
            qrm_tok_buf_put(dst, s, n);
        } else {
            char *o;
            size_t olen;
            if (qrm_uni_nfc(s, n, &o, &olen) != 0) {
                dst->oom = 1;
                return;
            }
            qrm_tok_buf_put(dst, o, olen);
            free(o);
        }
        break;
    case QRM_TOK_NORM_PREPEND:
        if (n > 0) qrm_tok_buf_put(dst, st->content, st->content_len);
        qrm_tok_buf_put(dst, s, n);
        break;
    case QRM_TOK_NORM_REPLACE: {
        size_t p = 0;
        while (p < n) {
            const char *hit = memmem(s + p, n - p, st->pattern, st->pattern_len);
            if (!hit) break;
            size_t at = (size_t)(hit - s);
            qrm_tok_buf_put(dst, s + p, at - p);
            qrm_tok_buf_put(dst, st->content, st->content_len);
            p = at + st->pattern_len;
        }
        qrm_tok_buf_put(dst, s + p, n - p);
        break;
    }
    }
}

int qrm_tok_norm_run(const qrm_tok_normalizer *nz, const char *s, size_t n, qrm_tok_buf *out,
                     qrm_tok_buf *tmp) {
    out->len = 0;
    qrm_tok_buf_put(out, s, n);
    for (size_t i = 0; i < nz->n; i++) {
        apply(&nz->steps[i], out->data, out->len, tmp);
        qrm_tok_buf swap = *out;
        *out = *tmp;
        *tmp = swap;
    }
    return out->oom || tmp->oom ? -1 : 0;
}
