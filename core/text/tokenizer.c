/* Tokenizer: loading tokenizer.json / tokenizer_config.json, the encode
 * pipeline, post-processing and accessors. The pieces live in the other
 * core/text/tokenizer_*.c files (see tokenizer_internal.h).
 *
 * The encode pipeline is the library's (TokenizerImpl::encode):
 *   1. added tokens with normalized=false are split out of the raw text;
 *   2. every other piece is normalized, then added tokens with
 *      normalized=true are split out of it;
 *   3. the remaining pieces go through the pre-tokenizer, and each pre-token
 *      through the BPE model;
 *   4. with add_special, the post-processor's tokens go around the result.
 *
 * tokenizer.json features met so far, and whether they are supported. Anything
 * not listed as supported makes loading fail with a message naming it.
 *
 *   version "1.0"                                     yes (others rejected)
 *   truncation, padding: null                         yes; non-null rejected
 *   added_tokens: special, normalized, single_word,
 *     lstrip, rstrip (ids assigned as the library)    yes
 *   normalizer: null, NFC, Prepend, Sequence          yes
 *   normalizer: Replace with a String pattern         yes
 *   normalizer: Replace with a Regex pattern          no
 *   normalizer: NFD, NFKC, NFKD, Lowercase, Strip,
 *     StripAccents, BertNormalizer, Precompiled       no
 *   pre_tokenizer: null, Sequence, ByteLevel
 *     (add_prefix_space, use_regex; trim_offsets
 *     only affects offsets)                           yes
 *   pre_tokenizer: Split with the Qwen2/Qwen3, Llama-3
 *     or GPT-2 regex, any behavior, invert            yes
 *   pre_tokenizer: Split with a String pattern        yes
 *   pre_tokenizer: Split with any other regex         no (error names the regex)
 *   pre_tokenizer: Metaspace, Whitespace,
 *     WhitespaceSplit, Digits, Punctuation,
 *     BertPreTokenizer, UnicodeScripts, CharDelimiterSplit, FixedLength  no
 *   model: BPE (vocab, merges as "a b" or ["a","b"],
 *     unk_token, fuse_unk, byte_fallback,
 *     ignore_merges, continuing_subword_prefix,
 *     end_of_word_suffix, dropout null or 0)          yes
 *   model: BPE dropout > 0                            no
 *   model: WordPiece, WordLevel, Unigram              no
 *   post_processor: null, ByteLevel, Sequence,
 *     TemplateProcessing (single template)            yes
 *   post_processor: RobertaProcessing, BertProcessing no
 *   decoder: null, ByteLevel, Replace (String),
 *     ByteFallback, Fuse, Strip, Sequence             yes
 *   decoder: Metaspace, WordPiece, BPEDecoder, CTC    no
 *
 * tokenizer_config.json: chat_template (string, or the "default" entry of a
 * list), bos/eos/pad/unk_token (string or {"content"}), and
 * additional_special_tokens are read; everything else is ignored, since the
 * Rust library does not read that file either.
 */
#include "tokenizer_internal.h"

#include "qrm.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- post-processor */

static int append_ids(int32_t **arr, size_t *n, const qj_value *ids, char *err, size_t errlen) {
    for (uint32_t i = 0; i < ids->len; i++) {
        const qj_value *v = &ids->u.items[i];
        if (v->type != QJ_NUMBER || !v->is_int || v->u.num < 0 || v->u.num > INT32_MAX)
            return qrm_tok_fail(err, errlen, "tokenizer.json: TemplateProcessing has a bad token id");
        int32_t *p = realloc(*arr, (*n + 1) * sizeof *p);
        if (!p) return qrm_tok_fail(err, errlen, "tokenizer.json: out of memory");
        *arr = p;
        (*arr)[(*n)++] = (int32_t)v->u.num;
    }
    return 0;
}

static int load_template(qrm_tokenizer *t, const qj_value *v, int *templates, char *err,
                         size_t errlen) {
    if (++*templates > 1)
        return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported post_processor with two TemplateProcessing");
    const qj_value *single = qj_get_type(v, "single", QJ_ARRAY);
    const qj_value *specials = qj_get_type(v, "special_tokens", QJ_OBJECT);
    if (!single) return qrm_tok_fail(err, errlen, "tokenizer.json: TemplateProcessing without a single template");
    int seen_a = 0;
    for (uint32_t i = 0; i < single->len; i++) {
        const qj_value *piece = &single->u.items[i];
        const qj_value *seq = piece->type == QJ_OBJECT ? qj_get_type(piece, "Sequence", QJ_OBJECT) : NULL;
        const qj_value *sp = piece->type == QJ_OBJECT ? qj_get_type(piece, "SpecialToken", QJ_OBJECT) : NULL;
        if (seq) {
            const char *id = qj_get_str(seq, "id");
            if (!id || strcmp(id, "A") || seen_a)
                return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported TemplateProcessing single template (sequence '%.10s')",
                                    id ? id : "?");
            seen_a = 1;
        } else if (sp) {
            size_t nlen;
            const char *name = qrm_tok_json_str(sp, "id", &nlen);
            const qj_value *def = name && specials ? qj_get_type(specials, name, QJ_OBJECT) : NULL;
            const qj_value *ids = def ? qj_get_type(def, "ids", QJ_ARRAY) : NULL;
            if (!ids)
                return qrm_tok_fail(err, errlen, "tokenizer.json: TemplateProcessing special token '%.40s' is not defined",
                                    name ? name : "?");
            if (seen_a ? append_ids(&t->suffix_ids, &t->n_suffix, ids, err, errlen)
                       : append_ids(&t->prefix_ids, &t->n_prefix, ids, err, errlen))
                return -1;
        } else {
            return qrm_tok_fail(err, errlen, "tokenizer.json: TemplateProcessing has a piece that is neither Sequence nor SpecialToken");
        }
    }
    if (!seen_a) return qrm_tok_fail(err, errlen, "tokenizer.json: TemplateProcessing single template without $A");
    return 0;
}

static int load_post(qrm_tokenizer *t, const qj_value *v, int depth, int *templates, char *err,
                     size_t errlen) {
    if (!v || v->type == QJ_NULL) return 0;
    if (v->type != QJ_OBJECT || depth > 8)
        return qrm_tok_fail(err, errlen, "tokenizer.json: post_processor is not an object");
    const char *type = qj_get_str(v, "type");
    if (!type) return qrm_tok_fail(err, errlen, "tokenizer.json: post_processor has no type");
    if (!strcmp(type, "ByteLevel")) return 0; /* only trims offsets */
    if (!strcmp(type, "TemplateProcessing")) return load_template(t, v, templates, err, errlen);
    if (!strcmp(type, "Sequence")) {
        const qj_value *list = qj_get_type(v, "processors", QJ_ARRAY);
        if (!list) return qrm_tok_fail(err, errlen, "tokenizer.json: post_processor Sequence without a list");
        for (uint32_t i = 0; i < list->len; i++)
            if (load_post(t, &list->u.items[i], depth + 1, templates, err, errlen)) return -1;
        return 0;
    }
    return qrm_tok_fail(err, errlen, "tokenizer.json: unsupported post_processor type '%.40s'", type);
}

/* ---------------------------------------------------------------- tokenizer_config.json */

/* A token written as "text" or {"content": "text"}; NULL for null/absent. */
static int config_token(const qj_value *v, char **out) {
    *out = NULL;
    if (v && v->type == QJ_OBJECT) v = qj_get_type(v, "content", QJ_STRING);
    if (!v || v->type != QJ_STRING) return 0;
    *out = qrm_tok_strndup(v->u.str, v->len);
    return *out ? 0 : -1;
}

static int load_config(qrm_tokenizer *t, const char *json, size_t len, char *err, size_t errlen) {
    char perr[200];
    qj_doc *doc = qj_parse(json, len, perr, sizeof perr);
    if (!doc) return qrm_tok_fail(err, errlen, "tokenizer_config.json: %s", perr);
    const qj_value *root = qj_root(doc);
    int rc = 0;
    if (root->type != QJ_OBJECT) {
        rc = qrm_tok_fail(err, errlen, "tokenizer_config.json: not a JSON object");
        goto done;
    }
    static const char *const names[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    for (int i = 0; i < 4 && rc == 0; i++)
        if (config_token(qj_get(root, names[i]), &t->cfg_token[i]) != 0) rc = -1;
    const qj_value *add = qj_get_type(root, "additional_special_tokens", QJ_ARRAY);
    if (add && rc == 0) {
        t->additional = calloc(add->len ? add->len : 1, sizeof *t->additional);
        if (!t->additional) rc = -1;
        for (uint32_t i = 0; rc == 0 && i < add->len; i++) {
            char *s;
            if (config_token(&add->u.items[i], &s) != 0) rc = -1;
            else if (s) t->additional[t->n_additional++] = s;
        }
    }
    const qj_value *ct = qj_get(root, "chat_template");
    if (ct && ct->type == QJ_STRING && rc == 0) {
        t->chat_template = qrm_tok_strndup(ct->u.str, ct->len);
        if (!t->chat_template) rc = -1;
    } else if (ct && ct->type == QJ_ARRAY && rc == 0) {
        for (uint32_t i = 0; i < ct->len; i++) {
            const qj_value *e = &ct->u.items[i];
            const char *name = e->type == QJ_OBJECT ? qj_get_str(e, "name") : NULL;
            size_t tlen;
            const char *tmpl = name ? qrm_tok_json_str(e, "template", &tlen) : NULL;
            if (tmpl && !strcmp(name, "default")) {
                t->chat_template = qrm_tok_strndup(tmpl, tlen);
                if (!t->chat_template) rc = -1;
                break;
            }
        }
    }
    if (rc != 0 && err && errlen && !err[0]) qrm_tok_fail(err, errlen, "tokenizer_config.json: out of memory");
done:
    qj_free(doc);
    return rc;
}

/* ---------------------------------------------------------------- loading */

static int load_tokenizer_json(qrm_tokenizer *t, const char *json, size_t len, char *err,
                               size_t errlen) {
    char perr[200];
    qj_doc *doc = qj_parse(json, len, perr, sizeof perr);
    if (!doc) return qrm_tok_fail(err, errlen, "tokenizer.json: %s", perr);
    const qj_value *root = qj_root(doc);
    int rc = -1;
    int templates = 0;
    if (root->type != QJ_OBJECT) {
        qrm_tok_fail(err, errlen, "tokenizer.json: not a JSON object");
        goto done;
    }
    const char *version = qj_get_str(root, "version");
    if (version && strcmp(version, "1.0")) {
        qrm_tok_fail(err, errlen, "tokenizer.json: unknown version '%.20s'", version);
        goto done;
    }
    static const char *const unsupported_if_set[] = {"truncation", "padding"};
    for (int i = 0; i < 2; i++) {
        const qj_value *v = qj_get(root, unsupported_if_set[i]);
        if (v && v->type != QJ_NULL) {
            qrm_tok_fail(err, errlen, "tokenizer.json: unsupported %s (must be null)", unsupported_if_set[i]);
            goto done;
        }
    }
    if (!qj_get(root, "model")) {
        qrm_tok_fail(err, errlen, "tokenizer.json: no model");
        goto done;
    }
    if (qrm_tok_norm_load(&t->norm, qj_get(root, "normalizer"), err, errlen) ||
        qrm_tok_pretok_load(&t->pre, qj_get(root, "pre_tokenizer"), err, errlen) ||
        qrm_tok_bpe_load(&t->bpe, qj_get(root, "model"), err, errlen) ||
        qrm_tok_decoder_load(&t->dec, qj_get(root, "decoder"), err, errlen) ||
        load_post(t, qj_get(root, "post_processor"), 0, &templates, err, errlen) ||
        qrm_tok_added_load(&t->added, qj_get(root, "added_tokens"), &t->bpe, &t->norm, err, errlen))
        goto done;
    rc = 0;
done:
    qj_free(doc);
    return rc;
}

qrm_tokenizer *qrm_tokenizer_new(const char *tokenizer_json, size_t len,
                                 const char *tokenizer_config_json, size_t cfg_len, char *err,
                                 size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!tokenizer_json) {
        qrm_tok_fail(err, errlen, "tokenizer.json: no data");
        return NULL;
    }
    qrm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        qrm_tok_fail(err, errlen, "tokenizer: out of memory");
        return NULL;
    }
    if (load_tokenizer_json(t, tokenizer_json, len, err, errlen) != 0 ||
        (tokenizer_config_json && load_config(t, tokenizer_config_json, cfg_len, err, errlen) != 0)) {
        qrm_tokenizer_free(t);
        return NULL;
    }
    t->vocab_size = t->bpe.n_ids > t->added.n_ids ? t->bpe.n_ids : t->added.n_ids;
    t->bos_id = -1;
    if (t->cfg_token[0]) t->bos_id = qrm_tokenizer_token_to_id(t, t->cfg_token[0], strlen(t->cfg_token[0]));
    if (t->bos_id < 0 && t->n_prefix > 0) t->bos_id = t->prefix_ids[0];
    return t;
}

void qrm_tokenizer_free(qrm_tokenizer *t) {
    if (!t) return;
    qrm_tok_bpe_free(&t->bpe);
    qrm_tok_norm_free(&t->norm);
    qrm_tok_pretok_free(&t->pre);
    qrm_tok_added_free(&t->added);
    qrm_tok_decoder_free(&t->dec);
    free(t->prefix_ids);
    free(t->suffix_ids);
    free(t->chat_template);
    for (int i = 0; i < 4; i++) free(t->cfg_token[i]);
    for (size_t i = 0; i < t->n_additional; i++) free(t->additional[i]);
    free(t->additional);
    free(t);
}

/* ---------------------------------------------------------------- encoding */

typedef struct {
    const qrm_tokenizer *t;
    qrm_tok_ids ids;
    qrm_tok_bpe_work bpe;
    qrm_tok_pretok_work pre;
    qrm_tok_buf norm, norm_tmp;
    qrm_tok_spans raw, inner;
    qrm_tok_cache cache;
    char *err;
    size_t errlen;
    int model_failed; /* err already holds the message */
} encoder;

static int on_pretoken(void *ctx, const char *s, size_t n) {
    encoder *e = ctx;
    uint64_t h = 0;
    if (n <= QRM_TOK_CACHE_MAX_KEY) {
        size_t k;
        h = qrm_tok_hash(s, n);
        const int32_t *hit = qrm_tok_cache_get(&e->cache, s, n, h, &k);
        if (hit) {
            for (size_t i = 0; i < k; i++) qrm_tok_ids_push(&e->ids, hit[i]);
            return 0;
        }
    }
    size_t before = e->ids.n;
    if (qrm_tok_bpe_tokenize(&e->t->bpe, s, n, &e->bpe, &e->ids, e->err, e->errlen) != 0) {
        e->model_failed = 1;
        return -1;
    }
    if (n <= QRM_TOK_CACHE_MAX_KEY && !e->ids.oom)
        qrm_tok_cache_put(&e->cache, s, n, h, e->ids.v + before, e->ids.n - before);
    return 0;
}

/* Steps 2 and 3 for one piece of raw text between added tokens. */
static int encode_piece(encoder *e, const char *s, size_t n) {
    const qrm_tokenizer *t = e->t;
    if (t->norm.n > 0) {
        if (qrm_tok_norm_run(&t->norm, s, n, &e->norm, &e->norm_tmp) != 0) return -1;
        s = e->norm.data;
        n = e->norm.len;
    }
    if (n == 0) return 0;
    if (t->added.norm.n_tokens == 0) return qrm_tok_pretok_run(&t->pre, &e->pre, s, n, on_pretoken, e);
    if (qrm_tok_added_split(&t->added, &t->added.norm, s, n, &e->inner) != 0) return -1;
    for (size_t i = 0; i < e->inner.n; i++) {
        const qrm_tok_span *sp = &e->inner.v[i];
        if (sp->id >= 0) qrm_tok_ids_push(&e->ids, sp->id);
        else if (qrm_tok_pretok_run(&t->pre, &e->pre, s + sp->start, sp->end - sp->start, on_pretoken, e))
            return -1;
    }
    return 0;
}

int qrm_tokenizer_encode(const qrm_tokenizer *t, const char *text, size_t len, int add_special,
                         int32_t **ids, size_t *n, char *err, size_t errlen) {
    *ids = NULL;
    *n = 0;
    if (!text && len > 0) {
        qrm_tok_fail(err, errlen, "encode: text is NULL");
        return QRM_EINVAL;
    }
    if (!text) text = "";
    size_t bad = qrm_utf8_validate(text, len);
    if (bad != len) {
        qrm_tok_fail(err, errlen, "encode: invalid UTF-8 at byte offset %zu", bad);
        return QRM_ETEXT;
    }
    encoder e = {.t = t, .err = err, .errlen = errlen};
    int rc = 0;
    if (add_special)
        for (size_t i = 0; i < t->n_prefix; i++) qrm_tok_ids_push(&e.ids, t->prefix_ids[i]);
    if (qrm_tok_added_split(&t->added, &t->added.raw, text, len, &e.raw) != 0) rc = -1;
    for (size_t i = 0; rc == 0 && i < e.raw.n; i++) {
        const qrm_tok_span *sp = &e.raw.v[i];
        if (sp->id >= 0) qrm_tok_ids_push(&e.ids, sp->id);
        else rc = encode_piece(&e, text + sp->start, sp->end - sp->start);
    }
    if (add_special)
        for (size_t i = 0; i < t->n_suffix; i++) qrm_tok_ids_push(&e.ids, t->suffix_ids[i]);
    qrm_tok_ids_push(&e.ids, 0); /* so that *ids is never NULL; not counted */
    if (e.ids.oom && rc == 0) rc = -1;
    qrm_tok_bpe_work_free(&e.bpe);
    qrm_tok_pretok_work_free(&e.pre);
    qrm_tok_buf_free(&e.norm);
    qrm_tok_buf_free(&e.norm_tmp);
    qrm_tok_cache_free(&e.cache);
    free(e.raw.v);
    free(e.inner.v);
    if (rc != 0) {
        free(e.ids.v);
        if (e.model_failed) return QRM_ETEXT;
        qrm_tok_fail(err, errlen, "encode: out of memory");
        return QRM_ENOMEM;
    }
    *ids = e.ids.v;
    *n = e.ids.n - 1;
    return QRM_OK;
}

/* ---------------------------------------------------------------- accessors */

size_t qrm_tokenizer_vocab_size(const qrm_tokenizer *t) { return t->vocab_size; }

const char *qrm_tokenizer_id_to_token(const qrm_tokenizer *t, int32_t id, size_t *len) {
    const qrm_tok_added *a = qrm_tok_added_by_id(&t->added, id);
    if (a) {
        if (len) *len = a->len;
        return a->content;
    }
    size_t l = 0;
    const char *s = qrm_tok_bpe_id_to_token(&t->bpe, id, &l);
    if (len) *len = l;
    return s;
}

int32_t qrm_tokenizer_token_to_id(const qrm_tokenizer *t, const char *s, size_t len) {
    int32_t id = qrm_tok_added_id(&t->added, s, len);
    return id >= 0 ? id : qrm_tok_bpe_token_to_id(&t->bpe, s, len);
}

int qrm_tokenizer_is_special(const qrm_tokenizer *t, int32_t id) {
    size_t len;
    const char *s = qrm_tokenizer_id_to_token(t, id, &len);
    return s && qrm_tok_strmap_find(&t->added.special, s, len) >= 0;
}

int32_t qrm_tokenizer_bos_id(const qrm_tokenizer *t) { return t->bos_id; }

const char *qrm_tokenizer_bos_token(const qrm_tokenizer *t) {
    if (t->cfg_token[0]) return t->cfg_token[0];
    return t->bos_id >= 0 ? qrm_tokenizer_id_to_token(t, t->bos_id, NULL) : NULL;
}

const char *qrm_tokenizer_config_token(const qrm_tokenizer *t, const char *name) {
    static const char *const names[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, names[i])) return t->cfg_token[i];
    return NULL;
}

const char *qrm_tokenizer_eos_token(const qrm_tokenizer *t) { return t->cfg_token[1]; }

size_t qrm_tokenizer_n_additional_special(const qrm_tokenizer *t) { return t->n_additional; }

const char *qrm_tokenizer_additional_special(const qrm_tokenizer *t, size_t i) {
    return i < t->n_additional ? t->additional[i] : NULL;
}

const char *qrm_tokenizer_chat_template(const qrm_tokenizer *t) { return t->chat_template; }
