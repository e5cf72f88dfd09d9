/* Decoders and qrm_tokenizer_decode.
 *
 * As in the library, ids become token strings (added tokens first, then the
 * model vocabulary; unknown ids are skipped, special tokens too when asked),
 * then each decoder of the chain maps the list of strings to a new list, and
 * the result is the concatenation. No clean_up_tokenization_spaces: that step
 * belongs to Python transformers. */
#include "tokenizer_internal.h"

#include "qrm.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- loading */

static int add_dec(qrm_tok_decoder *d, const qrm_tok_dec *st, char *err, size_t errlen) {
    qrm_tok_dec *p = realloc(d->steps, (d->n + 1) * sizeof *p);
    if (!p) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
    d->steps = p;
    d->steps[d->n++] = *st;
    return 0;
}

static int load_one(qrm_tok_decoder *d, const qj_value *v, int depth, char *err, size_t errlen) {
    if (v->type != QJ_OBJECT || depth > 8)
        return qrm_tok_fail(err, errlen, "tokenizer.json: decoder is not an object");
    const char *type = qj_get_str(v, "type");
    if (!type) return qrm_tok_fail(err, errlen, "tokenizer.json: decoder has no type");
    qrm_tok_dec st = {0};
    if (!strcmp(type, "Sequence")) {
        const qj_value *list = qj_get_type(v, "decoders", QJ_ARRAY);
        if (!list) return qrm_tok_fail(err, errlen, "tokenizer.json: decoder Sequence without a list");
        for (uint32_t i = 0; i < list->len; i++)
            if (load_one(d, &list->u.items[i], depth + 1, err, errlen) != 0) return -1;
        return 0;
    } else if (!strcmp(type, "ByteLevel")) {
        st.kind = QRM_TOK_DEC_BYTELEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        st.kind = QRM_TOK_DEC_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        st.kind = QRM_TOK_DEC_FUSE;
    } else if (!strcmp(type, "Strip")) {
        size_t clen;
        const char *c = qrm_tok_json_str(v, "content", &clen);
        int64_t start, stop;
        uint32_t cp;
        if (!c || qrm_utf8_decode((const unsigned char *)c, clen, &cp) != (int)clen || clen == 0 ||
            !qj_get_int(v, "start", &start) || !qj_get_int(v, "stop", &stop) || start < 0 ||
            stop < 0)
            return qrm_tok_fail(err, errlen, "tokenizer.json: Strip decoder needs one character and start/stop");
        st.kind = QRM_TOK_DEC_STRIP;
        st.strip_char = cp;
        st.strip_start = (size_t)start;
        st.strip_stop = (size_t)stop;
    } else if (!strcmp(type, "Replace")) {
        const qj_value *pat = qj_get_type(v, "pattern", QJ_OBJECT);
        size_t plen = 0, clen = 0;
        const char *p = pat ? qrm_tok_json_str(pat, "String", &plen) : NULL;
        const char *c = qrm_tok_json_str(v, "content", &clen);
        if (pat && qj_get(pat, "Regex"))
            return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported decoder Replace with a Regex pattern");
        if (!p || !c || plen == 0)
            return qrm_tok_fail(err, errlen, "tokenizer.json: Replace decoder needs a non-empty String pattern and content");
        st.kind = QRM_TOK_DEC_REPLACE;
        st.pattern = qrm_tok_strndup(p, plen);
        st.pattern_len = plen;
        st.content = qrm_tok_strndup(c, clen);
        st.content_len = clen;
        if (!st.pattern || !st.content || add_dec(d, &st, err, errlen) != 0) {
            free(st.pattern);
            free(st.content);
            return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
        }
        return 0;
    } else {
        return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported decoder type '%.40s'", type);
    }
    return add_dec(d, &st, err, errlen);
}

int qrm_tok_decoder_load(qrm_tok_decoder *d, const qj_value *v, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    if (!v || v->type == QJ_NULL) return 0;
    d->present = 1;
    return load_one(d, v, 0, err, errlen);
}

void qrm_tok_decoder_free(qrm_tok_decoder *d) {
    for (size_t i = 0; i < d->n; i++) {
        free(d->steps[i].pattern);
        free(d->steps[i].content);
    }
    free(d->steps);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- lossy UTF-8 */

void qrm_tok_utf8_lossy(const char *str, size_t n, qrm_tok_buf *out) {
    static const char fffd[] = "\xEF\xBF\xBD";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* run: start of pending valid bytes */
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if (c == 0xED) len = 3, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) len = 3;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) len = 4, hi = 0x8F;
        size_t good = 0; /* bytes of a valid prefix, lead included */
        if (len) {
            good = 1;
            if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
                good = 2;
                while (good < len && i + good < n && (s[i + good] & 0xC0) == 0x80) good++;
            }
        }
        if (len && good == len) {
            i += len;
            continue;
        }
        /* An invalid maximal subpart (at least one byte) becomes one U+FFFD. */
        qrm_tok_buf_put(out, str + run, i - run);
        qrm_tok_buf_put(out, fffd, 3);
        i += good ? good : 1;
        run = i;
    }
    qrm_tok_buf_put(out, str + run, n - run);
}

/* ---------------------------------------------------------------- token lists */

typedef struct {
    qrm_tok_buf text;
    size_t *off, *len;
    size_t n, cap;
    int oom;
} tok_list;

static void list_clear(tok_list *l) {
    l->text.len = 0;
    l->n = 0;
}

/* Starts a new token at the end of text; bytes are then appended to l->text. */
static void list_open(tok_list *l) {
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *o = realloc(l->off, cap * sizeof *o);
        if (o) l->off = o;
        size_t *n = realloc(l->len, cap * sizeof *n);
        if (n) l->len = n;
        if (!o || !n) {
            l->oom = 1;
            return;
        }
        l->cap = cap;
    }
    l->off[l->n] = l->text.len;
    l->len[l->n] = 0;
    l->n++;
}

static void list_close(tok_list *l) {
    if (l->oom || l->n == 0) return;
    l->len[l->n - 1] = l->text.len - l->off[l->n - 1];
}

static void list_push(tok_list *l, const char *s, size_t n) {
    list_open(l);
    qrm_tok_buf_put(&l->text, s, n);
    list_close(l);
}

/* Token t's bytes. A list of empty tokens (decoding no ids) has no buffer
 * yet, and NULL + 0 is undefined behaviour. */
static const char *tok_at(const tok_list *l, size_t t) {
    return l->text.data ? l->text.data + l->off[t] : "";
}

static void list_free(tok_list *l) {
    qrm_tok_buf_free(&l->text);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------------- decoders */

static void dec_bytelevel(const tok_list *in, tok_list *out, qrm_tok_buf *scratch) {
    scratch->len = 0;
    for (size_t t = 0; t < in->n; t++) {
        const char *s = tok_at(in, t);
        size_t n = in->len[t], i = 0, start = scratch->len;
        while (i < n) { /* every char must be in the byte alphabet, else the raw bytes */
            uint32_t cp;
            int l = qrm_utf8_decode((const unsigned char *)s + i, n - i, &cp);
            int b = l ? qrm_tok_cp_to_byte(cp) : -1;
            if (b < 0) break;
            char c = (char)b;
            qrm_tok_buf_put(scratch, &c, 1);
            i += (size_t)l;
        }
        if (i < n) {
            scratch->len = start;
            qrm_tok_buf_put(scratch, s, n);
        }
    }
    list_open(out);
    qrm_tok_utf8_lossy(scratch->data ? scratch->data : "", scratch->len, &out->text);
    list_close(out);
}

static void dec_replace(const qrm_tok_dec *st, const tok_list *in, tok_list *out) {
    for (size_t t = 0; t < in->n; t++) {
        const char *s = tok_at(in, t);
        size_t n = in->len[t], p = 0;
        list_open(out);
        while (p < n) {
            const char *hit = memmem(s + p, n - p, st->pattern, st->pattern_len);
            if (!hit) break;
            qrm_tok_buf_put(&out->text, s + p, (size_t)(hit - s) - p);
            qrm_tok_buf_put(&out->text, st->content, st->content_len);
            p = (size_t)(hit - s) + st->pattern_len;
        }
        qrm_tok_buf_put(&out->text, s + p, n - p);
        list_close(out);
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xAB>" -> 0xAB. Like u8::from_str_radix, a leading '+' is accepted. */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    if (s[3] == '+') return hexval(s[4]);
    int h = hexval(s[3]), l = hexval(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

static void flush_bytes(tok_list *out, const char *bytes, size_t nb) {
    if (nb == 0) return;
    if (qrm_utf8_validate(bytes, nb) == nb) {
        list_push(out, bytes, nb);
    } else {
        for (size_t k = 0; k < nb; k++) list_push(out, "\xEF\xBF\xBD", 3);
    }
}

static void dec_bytefallback(const tok_list *in, tok_list *out, qrm_tok_buf *pending) {
    pending->len = 0;
    for (size_t t = 0; t < in->n; t++) {
        const char *s = tok_at(in, t);
        int b = byte_token(s, in->len[t]);
        if (b >= 0) {
            char c = (char)b;
            qrm_tok_buf_put(pending, &c, 1);
            continue;
        }
        flush_bytes(out, pending->data, pending->len);
        pending->len = 0;
        list_push(out, s, in->len[t]);
    }
    flush_bytes(out, pending->data, pending->len);
}

static void dec_fuse(const tok_list *in, tok_list *out) {
    list_open(out);
    for (size_t t = 0; t < in->n; t++) qrm_tok_buf_put(&out->text, tok_at(in, t), in->len[t]);
    list_close(out);
}

static void dec_strip(const qrm_tok_dec *st, const tok_list *in, tok_list *out) {
    char enc[4];
    size_t elen = (size_t)qrm_utf8_encode(st->strip_char, enc);
    for (size_t t = 0; t < in->n; t++) {
        const char *s = tok_at(in, t);
        size_t a = 0, b = in->len[t];
        for (size_t k = 0; k < st->strip_start && b - a >= elen && !memcmp(s + a, enc, elen); k++)
            a += elen;
        for (size_t k = 0; k < st->strip_stop && b - a >= elen && !memcmp(s + b - elen, enc, elen); k++)
            b -= elen;
        list_push(out, s + a, b - a);
    }
}

/* ---------------------------------------------------------------- decode */

int qrm_tokenizer_decode(const qrm_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                         char **out, size_t *out_len, char *err, size_t errlen) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (n > 0 && !ids) {
        qrm_tok_fail(err, errlen, "decode: ids is NULL");
        return QRM_EINVAL;
    }
    tok_list a = {0}, b = {0};
    qrm_tok_buf scratch = {0};
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = qrm_tokenizer_id_to_token(t, ids[i], &len);
        if (!s) continue;
        if (skip_special && qrm_tok_strmap_find(&t->added.special, s, len) >= 0) continue;
        list_push(&a, s, len);
    }
    tok_list *cur = &a, *next = &b;
    if (!t->dec.present) {
        list_clear(next);
        list_open(next);
        for (size_t k = 0; k < cur->n; k++) {
            if (k) qrm_tok_buf_put(&next->text, " ", 1);
            qrm_tok_buf_put(&next->text, tok_at(cur, k), cur->len[k]);
        }
        list_close(next);
        tok_list *sw = cur;
        cur = next;
        next = sw;
    }
    for (size_t s = 0; s < t->dec.n; s++) {
        const qrm_tok_dec *st = &t->dec.steps[s];
        list_clear(next);
        switch (st->kind) {
        case QRM_TOK_DEC_BYTELEVEL: dec_bytelevel(cur, next, &scratch); break;
        case QRM_TOK_DEC_REPLACE: dec_replace(st, cur, next); break;
        case QRM_TOK_DEC_BYTEFALLBACK: dec_bytefallback(cur, next, &scratch); break;
        case QRM_TOK_DEC_FUSE: dec_fuse(cur, next); break;
        default: dec_strip(st, cur, next); break;
        }
        tok_list *sw = cur;
        cur = next;
        next = sw;
    }
    qrm_tok_buf result = {0};
    for (size_t k = 0; k < cur->n; k++)
        qrm_tok_buf_put(&result, tok_at(cur, k), cur->len[k]);
    qrm_tok_buf_put(&result, "", 0); /* NUL-terminated even when empty */
    int oom = a.oom || b.oom || a.text.oom || b.text.oom || scratch.oom || result.oom;
    list_free(&a);
    list_free(&b);
    qrm_tok_buf_free(&scratch);
    if (oom) {
        qrm_tok_buf_free(&result);
        qrm_tok_fail(err, errlen, "decode: out of memory");
        return QRM_ENOMEM;
    }
    *out = result.data;
    if (out_len) *out_len = result.len;
    return QRM_OK;
}
