/* Text in, token ids out: the model's tokenizer and chat template, built
 * from the blobs stored in the .qrm file on the first text call and shared
 * by every caller of the model (both are immutable once built), and the
 * reward-model input rule. The work is done on the model; a context's
 * text calls only redirect the message into its error buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "ctx.h"
#include "text.h"
#include "tokenizer.h"
#include "utf8.h"

typedef struct {
    qrm_tokenizer *tok;
    qrm_template *tmpl;       /* NULL when the tokenizer config has no template, or it failed */
    char *tmpl_err;           /* why it failed: reported when a conversation needs it, so
                               * that raw text and a context's own template still work */
    qj_doc *vars;             /* bos_token, eos_token, ... for the template */
} text_state;

void qrm_text_state_free(void *p) {
    text_state *s = p;
    if (!s) return;
    qrm_tokenizer_free(s->tok);
    qrm_template_free(s->tmpl);
    free(s->tmpl_err);
    qj_free(s->vars);
    free(s);
}

static void put_var(qj_buf *b, const char *name, const char *value) {
    if (!value) return;
    qj_buf_printf(b, "%s\"%s\":", b->len > 1 ? "," : "", name);
    qj_buf_put_string(b, value, strlen(value));
}

qj_doc *qrm_template_vars_for(const qrm_tokenizer *tok) {
    /* the special-token variables transformers passes to the template */
    qj_buf b = {0};
    char err[QRM_ERR_MAX];
    qj_buf_puts(&b, "{");
    static const char *names[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        put_var(&b, names[i], qrm_tokenizer_config_token(tok, names[i]));
    qj_buf_printf(&b, "%s\"additional_special_tokens\":[", b.len > 1 ? "," : "");
    for (size_t i = 0; i < qrm_tokenizer_n_additional_special(tok); i++) {
        const char *t = qrm_tokenizer_additional_special(tok, i);
        if (i) qj_buf_puts(&b, ",");
        qj_buf_put_string(&b, t, strlen(t));
    }
    qj_buf_puts(&b, "]}");
    qj_doc *d = b.oom ? NULL : qj_parse(b.buf, b.len, err, sizeof err);
    qj_buf_free(&b);
    return d;
}

/* Writes the message (err may be NULL when errlen is 0) and returns status. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail(char *err, size_t errlen, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return status;
}

static text_state *build(const qrm_model *m, char *err, size_t errlen) {
    if (!m->tokenizer_json) {
        fail(err, errlen, QRM_ETEXT, "the model file has no tokenizer");
        return NULL;
    }
    text_state *s = calloc(1, sizeof *s);
    if (!s) {
        fail(err, errlen, QRM_ENOMEM, "out of memory");
        return NULL;
    }
    char e[QRM_ERR_MAX];
    s->tok = qrm_tokenizer_new(m->tokenizer_json, m->tokenizer_json_len, m->tokenizer_config_json,
                               m->tokenizer_config_json_len, e, sizeof e);
    if (!s->tok) {
        fail(err, errlen, QRM_ETEXT, "%s", e);
        qrm_text_state_free(s);
        return NULL;
    }
    const char *src = qrm_tokenizer_chat_template(s->tok);
    if (src) {
        s->tmpl = qrm_template_compile(src, strlen(src), e, sizeof e);
        /* A template that does not compile is kept as its message (raw text
         * still works); running out of memory is not the template's fault
         * and must not stick to the model: the build fails, the next call
         * tries again. */
        int oom = !s->tmpl && strstr(e, "out of memory") != NULL;
        if (oom || (!s->tmpl && !(s->tmpl_err = strdup(e)))) {
            fail(err, errlen, QRM_ENOMEM, oom ? "chat template: %s" : "out of memory", e);
            qrm_text_state_free(s);
            return NULL;
        }
    }
    s->vars = qrm_template_vars_for(s->tok);
    if (!s->vars) {
        fail(err, errlen, QRM_ENOMEM, "out of memory");
        qrm_text_state_free(s);
        return NULL;
    }
    return s;
}

/* The model's shared text state. The model is logically const: the lazy
 * build happens once, under the model's lock (a failed build is retried by
 * the next call, so that a transient out-of-memory is not remembered). */
static text_state *text(const qrm_model *cm, char *err, size_t errlen) {
    struct qrm_model *m = (struct qrm_model *)cm;
    qrm_mutex_lock(m->text_mu);
    if (!m->text) m->text = build(m, err, errlen);
    text_state *s = m->text;
    qrm_mutex_unlock(m->text_mu);
    return s;
}

/* The outputs' state after a failure, whatever step failed. */
static void clear_out(int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
}

/* The template a call renders with: a context's own (qrm_ctx_set_chat_template),
 * else the model's; NULL with the reason in err when there is none. */
static const qrm_template *pick_template(const qrm_template *own, const text_state *s, char *err,
                                         size_t errlen) {
    if (own) return own;
    if (s->tmpl_err) fail(err, errlen, QRM_ETEXT, "%s", s->tmpl_err);
    else if (!s->tmpl) fail(err, errlen, QRM_ETEXT, "the model's tokenizer_config.json has no chat_template");
    return s->tmpl;
}

qrm_status qrm_model_tokenize(const qrm_model *m, const char *str, size_t len, int add_special,
                              int32_t **ids, size_t *n, char *err, size_t errlen) {
    clear_out(ids, n);
    text_state *s = text(m, err, errlen);
    if (!s) return QRM_ETEXT;
    char e[QRM_ERR_MAX];
    if (qrm_tokenizer_encode(s->tok, str, len, add_special, ids, n, e, sizeof e)) {
        clear_out(ids, n);
        return fail(err, errlen, QRM_ETEXT, "%s", e);
    }
    return QRM_OK;
}

/* A conversation whose text has more bytes than this cannot fit the model's
 * positions: it is refused before the template and the tokenizer spend time
 * and memory on it (60 MB of text took 9 s and 1.5 GB to reach the same
 * refusal). A token of more than 64 bytes is rare enough that no real input
 * comes near the bound (the JSONL reader uses the same 64, per token of the
 * context's KV cap, for a whole line). */
#define QRM_TEXT_BYTES_PER_POSITION 64

static size_t string_bytes(const qj_value *v) {
    size_t n = 0;
    if (v->type == QJ_STRING) return v->len;
    if (v->type == QJ_ARRAY)
        for (uint32_t i = 0; i < v->len; i++) n += string_bytes(&v->u.items[i]);
    if (v->type == QJ_OBJECT)
        for (uint32_t i = 0; i < v->len; i++) n += string_bytes(&v->u.members[i].value);
    return n;
}

static qrm_status check_text_bytes(const qrm_model *m, size_t bytes, char *err, size_t errlen) {
    size_t limit = (size_t)QRM_TEXT_BYTES_PER_POSITION * (size_t)m->hp.max_positions;
    if (bytes > limit)
        return fail(err, errlen, QRM_ETOOLONG,
                    "the text is %zu bytes, more than the model's %d positions can hold "
                    "(%d bytes a position: %zu)",
                    bytes, m->hp.max_positions, QRM_TEXT_BYTES_PER_POSITION, limit);
    return QRM_OK;
}

static qrm_status encode_messages(const qrm_model *m, const qrm_template *own,
                                  const qj_value *messages, int32_t **ids, size_t *n,
                                  char **rendered, char *err, size_t errlen) {
    clear_out(ids, n);
    if (rendered) *rendered = NULL;
    text_state *s = text(m, err, errlen);
    if (!s) return QRM_ETEXT;
    const qrm_template *tmpl = pick_template(own, s, err, errlen);
    if (!tmpl) return QRM_ETEXT;
    if (check_text_bytes(m, string_bytes(messages), err, errlen)) return QRM_ETOOLONG;
    char e[QRM_ERR_MAX], *out;
    size_t out_len;
    if (qrm_template_render(tmpl, messages, qj_root(s->vars), 0, &out, &out_len, e, sizeof e))
        return fail(err, errlen, QRM_ETEXT, "%s", e);
    /* The reward-model cards render, strip the template's BOS, and tokenize
     * with the special tokens the tokenizer adds; the net effect is one BOS.
     * Encoding with add_special and dropping a doubled leading BOS is that. */
    if (qrm_tokenizer_encode(s->tok, out, out_len, 1, ids, n, e, sizeof e)) {
        free(out);
        clear_out(ids, n);
        return fail(err, errlen, QRM_ETEXT, "%s", e);
    }
    int32_t bos = qrm_tokenizer_bos_id(s->tok);
    if (bos >= 0 && *n >= 2 && (*ids)[0] == bos && (*ids)[1] == bos) {
        memmove(*ids, *ids + 1, (*n - 1) * sizeof **ids);
        (*n)--;
    }
    if (rendered) *rendered = out;
    else free(out);
    return QRM_OK;
}

static qrm_status encode_chat(const qrm_model *m, const qrm_template *own, const char *messages_json,
                              size_t len, int32_t **ids, size_t *n, char **rendered, char *err,
                              size_t errlen) {
    char e[QRM_ERR_MAX];
    clear_out(ids, n);
    if (rendered) *rendered = NULL;
    qj_doc *d = qj_parse(messages_json, len, e, sizeof e);
    if (!d) return fail(err, errlen, QRM_EINVAL, "messages: %s", e);
    qrm_status rc = encode_messages(m, own, qj_root(d), ids, n, rendered, err, errlen);
    qj_free(d);
    return rc;
}

qrm_status qrm_model_encode_chat(const qrm_model *m, const char *messages_json, size_t len,
                                 int32_t **ids, size_t *n, char **rendered, char *err,
                                 size_t errlen) {
    return encode_chat(m, NULL, messages_json, len, ids, n, rendered, err, errlen);
}

/* The conversation handed to the template as the value JSON parsing would
 * give, built over the caller's strings (no copy, no JSON text): what the
 * template sees is exactly what qrm_model_encode_chat would pass it. */
static qrm_status encode_structs(const qrm_model *m, const qrm_template *own,
                                 const qrm_message *msgs, size_t n_msgs, int32_t **ids, size_t *n,
                                 char **rendered, char *err, size_t errlen) {
    clear_out(ids, n);
    if (rendered) *rendered = NULL;
    if (n_msgs > UINT32_MAX) return fail(err, errlen, QRM_EINVAL, "too many messages");
    for (size_t i = 0; i < n_msgs; i++) {
        const char *f[2] = {msgs[i].role, msgs[i].content};
        for (int k = 0; k < 2; k++) {
            const char *what = k ? "content" : "role";
            if (!f[k]) return fail(err, errlen, QRM_EINVAL, "message %zu has no %s", i, what);
            size_t l = strlen(f[k]);
            /* the JSON reader guarantees valid UTF-8 and lengths that fit its
             * 32-bit field; the template relies on both */
            if (l > UINT32_MAX) return fail(err, errlen, QRM_EINVAL, "message %zu: %s too long", i, what);
            size_t bad = qrm_utf8_validate(f[k], l);
            if (bad != l)
                return fail(err, errlen, QRM_EINVAL, "message %zu: %s is not valid UTF-8 at byte %zu",
                            i, what, bad);
        }
    }
    qj_value *items = calloc(n_msgs ? n_msgs : 1, sizeof *items);
    qj_member *mem = calloc(n_msgs ? 2 * n_msgs : 1, sizeof *mem);
    if (!items || !mem) {
        free(items), free(mem);
        return fail(err, errlen, QRM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n_msgs; i++) {
        qj_member *r = &mem[2 * i], *c = &mem[2 * i + 1];
        r->key = "role", r->key_len = 4;
        r->value = (qj_value){.type = QJ_STRING, .len = (uint32_t)strlen(msgs[i].role),
                              .u.str = msgs[i].role};
        c->key = "content", c->key_len = 7;
        c->value = (qj_value){.type = QJ_STRING, .len = (uint32_t)strlen(msgs[i].content),
                              .u.str = msgs[i].content};
        items[i] = (qj_value){.type = QJ_OBJECT, .len = 2, .u.members = r};
    }
    qj_value all = {.type = QJ_ARRAY, .len = (uint32_t)n_msgs, .u.items = items};
    qrm_status rc = encode_messages(m, own, &all, ids, n, rendered, err, errlen);
    free(items), free(mem);
    return rc;
}

qrm_status qrm_model_encode_messages(const qrm_model *m, const qrm_message *msgs, size_t n_msgs,
                                     int32_t **ids, size_t *n, char **rendered, char *err,
                                     size_t errlen) {
    return encode_structs(m, NULL, msgs, n_msgs, ids, n, rendered, err, errlen);
}

static qrm_status encode_prompt_response(const qrm_model *m, const qrm_template *own,
                                         const char *prompt, size_t plen, const char *response,
                                         size_t rlen, int32_t **ids, size_t *n, char *err,
                                         size_t errlen) {
    clear_out(ids, n);
    qj_buf b = {0};
    qj_buf_puts(&b, "[{\"role\":\"user\",\"content\":");
    qj_buf_put_string(&b, prompt, plen);
    qj_buf_puts(&b, "},{\"role\":\"assistant\",\"content\":");
    qj_buf_put_string(&b, response, rlen);
    qj_buf_puts(&b, "}]");
    if (b.oom) {
        qj_buf_free(&b);
        return fail(err, errlen, QRM_ENOMEM, "out of memory");
    }
    qrm_status rc = encode_chat(m, own, b.buf, b.len, ids, n, NULL, err, errlen);
    qj_buf_free(&b);
    return rc;
}

qrm_status qrm_model_encode_prompt_response(const qrm_model *m, const char *prompt, size_t plen,
                                            const char *response, size_t rlen, int32_t **ids,
                                            size_t *n, char *err, size_t errlen) {
    return encode_prompt_response(m, NULL, prompt, plen, response, rlen, ids, n, err, errlen);
}

/* A step head's input (qrm_steps_rule):
 *   QRM_STEPS_CHAT (the Qwen2.5-Math-PRM model card): the user turn is the
 *     prompt, the assistant turn "<extra_0>".join(steps) + "<extra_0>",
 *     rendered without a generation prompt and tokenized;
 *   QRM_STEPS_TAGGED_TEXT (Math-Shepherd, as search-and-learn builds it):
 *     f"{prompt} {steps joined by \n\n}" with the tag text (" ки") after
 *     every step, tokenized with the tokenizer's special tokens (its BOS).
 * A step may not be empty or contain the separator (it would add or merge
 * steps), nor a blank line in the tagged form (it would split the step);
 * the prompt may not contain the separator (it would be scored as a step). */
static qrm_status encode_steps(const qrm_model *m, const qrm_template *own, const char *prompt,
                               size_t plen, const char *const *steps, const size_t *step_len,
                               size_t n_steps, int32_t **ids, size_t *n, char *err, size_t errlen) {
    const qrm_head *h = &m->head;
    qrm_steps_rule rule = h->ops->steps;
    clear_out(ids, n);
    if (rule == QRM_STEPS_NONE)
        return fail(err, errlen, QRM_EINVAL, "this model's %s head does not score steps", h->ops->kind);
    if (n_steps == 0) return fail(err, errlen, QRM_EINVAL, "no steps to score");
    text_state *s = text(m, err, errlen);
    if (!s) return QRM_ETEXT;
    size_t sl = 0;
    char *sep = NULL, e[QRM_ERR_MAX] = "";
    if (h->tag_text[0]) { /* as the specification wrote it (decoding may drop a leading space) */
        sep = strdup(h->tag_text);
        if (!sep) return fail(err, errlen, QRM_ENOMEM, "out of memory");
        sl = strlen(sep);
    } else if (qrm_tokenizer_decode(s->tok, &h->sep_id, 1, 0, &sep, &sl, e, sizeof e)) {
        /* a failed decode (out of memory) is not a separator without text */
        return fail(err, errlen, QRM_ETEXT, "the step separator (token %d): %s", (int)h->sep_id, e);
    }
    if (!sep || sl == 0) {
        free(sep);
        return fail(err, errlen, QRM_ETEXT, "the step separator (token %d) has no text", (int)h->sep_id);
    }
    size_t total = plen;
    for (size_t i = 0; i < n_steps; i++) total += step_len[i];
    if (check_text_bytes(m, total, err, errlen)) {
        free(sep);
        return QRM_ETOOLONG;
    }
    qrm_status rc = QRM_OK;
    qj_buf content = {0}, b = {0};
    char shown[64];
    qrm_printable(sep, shown, sizeof shown);
    if (memmem(prompt, plen, sep, sl))
        rc = fail(err, errlen, QRM_EINVAL, "the prompt contains the step separator '%s'", shown);
    for (size_t i = 0; i < n_steps && !rc; i++) {
        if (step_len[i] == 0) rc = fail(err, errlen, QRM_EINVAL, "step %zu is empty", i);
        else if (memmem(steps[i], step_len[i], sep, sl))
            rc = fail(err, errlen, QRM_EINVAL, "step %zu contains the step separator '%s'", i, shown);
        else if (rule == QRM_STEPS_TAGGED_TEXT && memmem(steps[i], step_len[i], "\n\n", 2))
            rc = fail(err, errlen, QRM_EINVAL, "step %zu contains a blank line, which separates steps", i);
        if (rc) break;
        if (rule == QRM_STEPS_TAGGED_TEXT && i) qj_buf_puts(&content, "\n\n");
        qj_buf_put(&content, steps[i], step_len[i]);
        qj_buf_put(&content, sep, sl);
    }
    if (!rc && rule == QRM_STEPS_CHAT) {
        qj_buf_puts(&b, "[{\"role\":\"user\",\"content\":");
        qj_buf_put_string(&b, prompt, plen);
        qj_buf_puts(&b, "},{\"role\":\"assistant\",\"content\":");
        qj_buf_put_string(&b, content.buf, content.len);
        qj_buf_puts(&b, "}]");
        rc = b.oom || content.oom ? fail(err, errlen, QRM_ENOMEM, "out of memory")
                                  : encode_chat(m, own, b.buf, b.len, ids, n, NULL, err, errlen);
    } else if (!rc) {
        qj_buf_put(&b, prompt, plen);
        qj_buf_puts(&b, " ");
        qj_buf_put(&b, content.buf, content.len);
        rc = b.oom || content.oom ? fail(err, errlen, QRM_ENOMEM, "out of memory")
                                  : qrm_model_tokenize(m, b.buf, b.len, 1, ids, n, err, errlen);
    }
    /* one separator token per step, or the text merged with a tag somewhere */
    size_t tags = 0;
    for (size_t i = 0; !rc && i < *n; i++) tags += (*ids)[i] == h->sep_id;
    if (!rc && tags != n_steps) {
        free(*ids);
        clear_out(ids, n);
        rc = fail(err, errlen, QRM_EINVAL, "the %zu steps encode to %zu step separators (a step's text merges with one)",
                          n_steps, tags);
    }
    qj_buf_free(&b), qj_buf_free(&content), free(sep);
    return rc;
}

/* A DPO sequence as RewardBench builds it (rewardbench/dpo.py, the TRL
 * tokenize_row it copies): prompt_text = the template over every turn but
 * the last, without a generation prompt; the conversation's full text must
 * start with it. The response starts where the prompt's own tokens end in
 * the tokens of the whole text, one token earlier when the prompt's last
 * token merges with the response. Then BOS (EOS when the tokenizer has no
 * BOS) is prepended unconditionally, so a template that writes its own BOS
 * gives two, and EOS is appended to the response. */
static qrm_status encode_dpo(const qrm_model *m, const qrm_template *own, const char *messages_json,
                             size_t len, int32_t **ids, size_t *n, size_t *response_start, char *err,
                             size_t errlen) {
    clear_out(ids, n);
    text_state *s = text(m, err, errlen);
    if (!s) return QRM_ETEXT;
    const qrm_template *tmpl = pick_template(own, s, err, errlen);
    if (!tmpl) return QRM_ETEXT;
    char e[QRM_ERR_MAX];
    qj_doc *d = qj_parse(messages_json, len, e, sizeof e);
    if (!d) return fail(err, errlen, QRM_EINVAL, "messages: %s", e);
    const qj_value *all = qj_root(d);
    if (check_text_bytes(m, string_bytes(all), err, errlen)) {
        qj_free(d);
        return QRM_ETOOLONG;
    }
    const char *last_role = all->type == QJ_ARRAY && all->len >= 2 &&
                                    all->u.items[all->len - 1].type == QJ_OBJECT
                                ? qj_get_str(&all->u.items[all->len - 1], "role") : NULL;
    if (!last_role || strcmp(last_role, "assistant")) {
        qj_free(d);
        return fail(err, errlen, QRM_EINVAL, "a DPO conversation needs at least one prompt turn and ends with the assistant's response");
    }
    /* the prompt turns as their own array */
    qj_buf pb = {0};
    qj_buf_puts(&pb, "[");
    for (uint32_t i = 0; i + 1 < all->len; i++) {
        if (i) qj_buf_puts(&pb, ",");
        qj_buf_put_value(&pb, &all->u.items[i]);
    }
    qj_buf_puts(&pb, "]");
    qj_doc *pd = pb.oom ? NULL : qj_parse(pb.buf, pb.len, e, sizeof e);
    qj_buf_free(&pb);
    char *ptext = NULL, *ftext = NULL;
    size_t plen = 0, flen = 0, np = 0, nf = 0;
    int32_t *p = NULL, *f = NULL;
    qrm_status rc = QRM_OK;
    if (!pd) rc = fail(err, errlen, QRM_ENOMEM, "out of memory");
    else if (qrm_template_render(tmpl, qj_root(pd), qj_root(s->vars), 0, &ptext, &plen, e, sizeof e) ||
             qrm_template_render(tmpl, all, qj_root(s->vars), 0, &ftext, &flen, e, sizeof e))
        rc = fail(err, errlen, QRM_ETEXT, "%s", e);
    else if (plen > flen || memcmp(ptext, ftext, plen))
        rc = fail(err, errlen, QRM_ETEXT, "the chat template does not render the prompt turns as the start of the conversation");
    else if (qrm_tokenizer_encode(s->tok, ptext, plen, 0, &p, &np, e, sizeof e) ||
             qrm_tokenizer_encode(s->tok, ftext, flen, 0, &f, &nf, e, sizeof e))
        rc = fail(err, errlen, QRM_ETEXT, "%s", e);
    int32_t bos = qrm_tokenizer_bos_id(s->tok), eos = -1;
    const char *eos_text = qrm_tokenizer_eos_token(s->tok);
    if (eos_text) eos = qrm_tokenizer_token_to_id(s->tok, eos_text, strlen(eos_text));
    if (!rc && eos < 0) rc = fail(err, errlen, QRM_ETEXT, "the tokenizer has no EOS token to end the response with");
    if (!rc) {
        size_t start = np;
        if (start > nf || memcmp(f, p, start * sizeof *f)) start = start ? start - 1 : 0;
        if (start >= nf) rc = fail(err, errlen, QRM_EINVAL, "the response encodes to no tokens");
        else if (!(*ids = malloc((nf + 2) * sizeof **ids))) rc = fail(err, errlen, QRM_ENOMEM, "out of memory");
        else {
            (*ids)[0] = bos >= 0 ? bos : eos;
            memcpy(*ids + 1, f, nf * sizeof *f);
            (*ids)[nf + 1] = eos;
            *n = nf + 2;
            *response_start = start + 1;
        }
    }
    free(ptext), free(ftext), free(p), free(f);
    qj_free(pd);
    qj_free(d);
    return rc;
}

qrm_status qrm_model_encode_steps(const qrm_model *m, const char *prompt, size_t plen,
                                  const char *const *steps, const size_t *step_len, size_t n_steps,
                                  int32_t **ids, size_t *n, char *err, size_t errlen) {
    return encode_steps(m, NULL, prompt, plen, steps, step_len, n_steps, ids, n, err, errlen);
}

qrm_status qrm_model_encode_dpo(const qrm_model *m, const char *messages_json, size_t len,
                                int32_t **ids, size_t *n, size_t *response_start, char *err,
                                size_t errlen) {
    return encode_dpo(m, NULL, messages_json, len, ids, n, response_start, err, errlen);
}

/* ---- the same on a context's model and its own template, the message in
 * qrm_ctx_error ---- */

qrm_status qrm_ctx_set_chat_template(qrm_ctx *c, const char *src, size_t len) {
    if (!src || len == 0) {
        qrm_template_free(c->chat_template);
        c->chat_template = NULL;
        return QRM_OK;
    }
    char err[QRM_ERR_MAX];
    qrm_template *t = qrm_template_compile(src, len, err, sizeof err);
    if (!t) return qrm_ctx_fail(c, QRM_ETEXT, "%s", err);
    qrm_template_free(c->chat_template);
    c->chat_template = t;
    return QRM_OK;
}

qrm_status qrm_tokenize(qrm_ctx *c, const char *str, size_t len, int add_special, int32_t **ids,
                        size_t *n) {
    return qrm_model_tokenize(c->m, str, len, add_special, ids, n, c->err, sizeof c->err);
}

qrm_status qrm_encode_messages(qrm_ctx *c, const qrm_message *msgs, size_t n_msgs, int32_t **ids,
                               size_t *n, char **rendered) {
    return encode_structs(c->m, c->chat_template, msgs, n_msgs, ids, n, rendered, c->err, sizeof c->err);
}

qrm_status qrm_encode_chat(qrm_ctx *c, const char *messages_json, size_t len, int32_t **ids,
                           size_t *n, char **rendered) {
    return encode_chat(c->m, c->chat_template, messages_json, len, ids, n, rendered, c->err,
                       sizeof c->err);
}

qrm_status qrm_encode_prompt_response(qrm_ctx *c, const char *prompt, size_t plen,
                                      const char *response, size_t rlen, int32_t **ids, size_t *n) {
    return encode_prompt_response(c->m, c->chat_template, prompt, plen, response, rlen, ids, n,
                                  c->err, sizeof c->err);
}

qrm_status qrm_encode_steps(qrm_ctx *c, const char *prompt, size_t plen, const char *const *steps,
                            const size_t *step_len, size_t n_steps, int32_t **ids, size_t *n) {
    return encode_steps(c->m, c->chat_template, prompt, plen, steps, step_len, n_steps, ids, n,
                        c->err, sizeof c->err);
}

qrm_status qrm_encode_dpo(qrm_ctx *c, const char *messages_json, size_t len, int32_t **ids,
                          size_t *n, size_t *response_start) {
    return encode_dpo(c->m, c->chat_template, messages_json, len, ids, n, response_start, c->err,
                      sizeof c->err);
}
