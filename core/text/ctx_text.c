/* Text in, token ids out: the model's tokenizer and chat template, built
 * from the blobs stored in the .qrm file on the first text call of any of
 * the model's contexts and shared by all of them, and the reward-model
 * input rule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "ctx.h"
#include "text.h"
#include "tokenizer.h"

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

static text_state *build(qrm_ctx *c) {
    const qrm_model *m = c->m;
    if (!m->tokenizer_json) {
        qrm_ctx_fail(c, QRM_ETEXT, "the model file has no tokenizer");
        return NULL;
    }
    text_state *s = calloc(1, sizeof *s);
    if (!s) {
        qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        return NULL;
    }
    char err[QRM_ERR_MAX];
    s->tok = qrm_tokenizer_new(m->tokenizer_json, m->tokenizer_json_len, m->tokenizer_config_json,
                               m->tokenizer_config_json_len, err, sizeof err);
    if (!s->tok) {
        qrm_ctx_fail(c, QRM_ETEXT, "%s", err);
        qrm_text_state_free(s);
        return NULL;
    }
    const char *src = qrm_tokenizer_chat_template(s->tok);
    if (src) {
        s->tmpl = qrm_template_compile(src, strlen(src), err, sizeof err);
        /* A template that does not compile is kept as its message (raw text
         * still works); running out of memory is not the template's fault
         * and must not stick to the model: the build fails, the next call
         * tries again. */
        int oom = !s->tmpl && strstr(err, "out of memory") != NULL;
        if (oom || (!s->tmpl && !(s->tmpl_err = strdup(err)))) {
            qrm_ctx_fail(c, QRM_ENOMEM, oom ? "chat template: %s" : "out of memory", err);
            qrm_text_state_free(s);
            return NULL;
        }
    }
    s->vars = qrm_template_vars_for(s->tok);
    if (!s->vars) {
        qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        qrm_text_state_free(s);
        return NULL;
    }
    return s;
}

/* The model's shared text state; the model is logically const: the lazy
 * build happens once, under the model's lock. */
static text_state *text(qrm_ctx *c) {
    struct qrm_model *m = (struct qrm_model *)c->m;
    qrm_mutex_lock(m->text_mu);
    if (!m->text) m->text = build(c);
    text_state *s = m->text;
    qrm_mutex_unlock(m->text_mu);
    return s;
}

int qrm_tokenize(qrm_ctx *c, const char *str, size_t len, int add_special, int32_t **ids,
                 size_t *n) {
    text_state *s = text(c);
    if (!s) return QRM_ETEXT;
    char err[QRM_ERR_MAX];
    if (qrm_tokenizer_encode(s->tok, str, len, add_special, ids, n, err, sizeof err))
        return qrm_ctx_fail(c, QRM_ETEXT, "%s", err);
    return QRM_OK;
}

/* The template this context renders with: its own, else the model's. */
static const qrm_template *chat_template(qrm_ctx *c, const text_state *s) {
    if (c->chat_template) return c->chat_template;
    if (s->tmpl_err) qrm_ctx_fail(c, QRM_ETEXT, "%s", s->tmpl_err);
    else if (!s->tmpl) qrm_ctx_fail(c, QRM_ETEXT, "the model's tokenizer_config.json has no chat_template");
    return s->tmpl;
}

int qrm_ctx_set_chat_template(qrm_ctx *c, const char *src, size_t len) {
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

static int encode_messages(qrm_ctx *c, const qj_value *messages, int32_t **ids, size_t *n,
                           char **rendered) {
    text_state *s = text(c);
    if (!s) return QRM_ETEXT;
    const qrm_template *tmpl = chat_template(c, s);
    if (!tmpl) return QRM_ETEXT;
    char err[QRM_ERR_MAX], *out;
    size_t out_len;
    if (qrm_template_render(tmpl, messages, qj_root(s->vars), 0, &out, &out_len, err, sizeof err))
        return qrm_ctx_fail(c, QRM_ETEXT, "%s", err);
    /* The reward-model cards render, strip the template's BOS, and tokenize
     * with the special tokens the tokenizer adds; the net effect is one BOS.
     * Encoding with add_special and dropping a doubled leading BOS is that. */
    int rc = qrm_tokenizer_encode(s->tok, out, out_len, 1, ids, n, err, sizeof err);
    if (rc) {
        free(out);
        return qrm_ctx_fail(c, QRM_ETEXT, "%s", err);
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

int qrm_encode_chat(qrm_ctx *c, const char *messages_json, size_t len, int32_t **ids, size_t *n,
                    char **rendered) {
    char err[QRM_ERR_MAX];
    qj_doc *d = qj_parse(messages_json, len, err, sizeof err);
    if (!d) return qrm_ctx_fail(c, QRM_EINVAL, "messages: %s", err);
    int rc = encode_messages(c, qj_root(d), ids, n, rendered);
    qj_free(d);
    return rc;
}

int qrm_encode_prompt_response(qrm_ctx *c, const char *prompt, size_t plen, const char *response,
                               size_t rlen, int32_t **ids, size_t *n) {
    qj_buf b = {0};
    qj_buf_puts(&b, "[{\"role\":\"user\",\"content\":");
    qj_buf_put_string(&b, prompt, plen);
    qj_buf_puts(&b, "},{\"role\":\"assistant\",\"content\":");
    qj_buf_put_string(&b, response, rlen);
    qj_buf_puts(&b, "}]");
    if (b.oom) {
        qj_buf_free(&b);
        return qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
    }
    int rc = qrm_encode_chat(c, b.buf, b.len, ids, n, NULL);
    qj_buf_free(&b);
    return rc;
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
int qrm_encode_steps(qrm_ctx *c, const char *prompt, size_t plen, const char *const *steps,
                     const size_t *step_len, size_t n_steps, int32_t **ids, size_t *n) {
    const qrm_head *h = &c->m->head;
    qrm_steps_rule rule = h->ops->steps;
    if (rule == QRM_STEPS_NONE)
        return qrm_ctx_fail(c, QRM_EINVAL, "this model's %s head does not score steps", h->ops->kind);
    if (n_steps == 0) return qrm_ctx_fail(c, QRM_EINVAL, "no steps to score");
    text_state *s = text(c);
    if (!s) return QRM_ETEXT;
    size_t sl = 0;
    char *sep = NULL, err[QRM_ERR_MAX] = "";
    if (h->tag_text[0]) { /* as the specification wrote it (decoding may drop a leading space) */
        sep = strdup(h->tag_text);
        if (!sep) return qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
        sl = strlen(sep);
    } else if (qrm_tokenizer_decode(s->tok, &h->sep_id, 1, 0, &sep, &sl, err, sizeof err)) {
        /* a failed decode (out of memory) is not a separator without text */
        return qrm_ctx_fail(c, QRM_ETEXT, "the step separator (token %d): %s", (int)h->sep_id, err);
    }
    if (!sep || sl == 0) {
        free(sep);
        return qrm_ctx_fail(c, QRM_ETEXT, "the step separator (token %d) has no text", (int)h->sep_id);
    }
    int rc = QRM_OK;
    qj_buf content = {0}, b = {0};
    char shown[64];
    qrm_printable(sep, shown, sizeof shown);
    if (memmem(prompt, plen, sep, sl))
        rc = qrm_ctx_fail(c, QRM_EINVAL, "the prompt contains the step separator '%s'", shown);
    for (size_t i = 0; i < n_steps && !rc; i++) {
        if (step_len[i] == 0) rc = qrm_ctx_fail(c, QRM_EINVAL, "step %zu is empty", i);
        else if (memmem(steps[i], step_len[i], sep, sl))
            rc = qrm_ctx_fail(c, QRM_EINVAL, "step %zu contains the step separator '%s'", i, shown);
        else if (rule == QRM_STEPS_TAGGED_TEXT && memmem(steps[i], step_len[i], "\n\n", 2))
            rc = qrm_ctx_fail(c, QRM_EINVAL, "step %zu contains a blank line, which separates steps", i);
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
        rc = b.oom || content.oom ? qrm_ctx_fail(c, QRM_ENOMEM, "out of memory")
                                  : qrm_encode_chat(c, b.buf, b.len, ids, n, NULL);
    } else if (!rc) {
        qj_buf_put(&b, prompt, plen);
        qj_buf_puts(&b, " ");
        qj_buf_put(&b, content.buf, content.len);
        rc = b.oom || content.oom ? qrm_ctx_fail(c, QRM_ENOMEM, "out of memory")
                                  : qrm_tokenize(c, b.buf, b.len, 1, ids, n);
    }
    /* one separator token per step, or the text merged with a tag somewhere */
    size_t tags = 0;
    for (size_t i = 0; !rc && i < *n; i++) tags += (*ids)[i] == h->sep_id;
    if (!rc && tags != n_steps) {
        free(*ids);
        *ids = NULL;
        rc = qrm_ctx_fail(c, QRM_EINVAL, "the %zu steps encode to %zu step separators (a step's text merges with one)",
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
int qrm_encode_dpo(qrm_ctx *c, const char *messages_json, size_t len, int32_t **ids, size_t *n,
                   size_t *response_start) {
    text_state *s = text(c);
    if (!s) return QRM_ETEXT;
    const qrm_template *tmpl = chat_template(c, s);
    if (!tmpl) return QRM_ETEXT;
    char err[QRM_ERR_MAX];
    qj_doc *d = qj_parse(messages_json, len, err, sizeof err);
    if (!d) return qrm_ctx_fail(c, QRM_EINVAL, "messages: %s", err);
    const qj_value *all = qj_root(d);
    const char *last_role = all->type == QJ_ARRAY && all->len >= 2 &&
                                    all->u.items[all->len - 1].type == QJ_OBJECT
                                ? qj_get_str(&all->u.items[all->len - 1], "role") : NULL;
    if (!last_role || strcmp(last_role, "assistant")) {
        qj_free(d);
        return qrm_ctx_fail(c, QRM_EINVAL, "a DPO conversation needs at least one prompt turn and ends with the assistant's response");
    }
    /* the prompt turns as their own array */
    qj_buf pb = {0};
    qj_buf_puts(&pb, "[");
    for (uint32_t i = 0; i + 1 < all->len; i++) {
        if (i) qj_buf_puts(&pb, ",");
        qj_buf_put_value(&pb, &all->u.items[i]);
    }
    qj_buf_puts(&pb, "]");
    qj_doc *pd = pb.oom ? NULL : qj_parse(pb.buf, pb.len, err, sizeof err);
    qj_buf_free(&pb);
    char *ptext = NULL, *ftext = NULL;
    size_t plen = 0, flen = 0, np = 0, nf = 0;
    int32_t *p = NULL, *f = NULL;
    int rc = QRM_OK;
    if (!pd) rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
    else if (qrm_template_render(tmpl, qj_root(pd), qj_root(s->vars), 0, &ptext, &plen, err, sizeof err) ||
             qrm_template_render(tmpl, all, qj_root(s->vars), 0, &ftext, &flen, err, sizeof err))
        rc = qrm_ctx_fail(c, QRM_ETEXT, "%s", err);
    else if (plen > flen || memcmp(ptext, ftext, plen))
        rc = qrm_ctx_fail(c, QRM_ETEXT, "the chat template does not render the prompt turns as the start of the conversation");
    else if (qrm_tokenizer_encode(s->tok, ptext, plen, 0, &p, &np, err, sizeof err) ||
             qrm_tokenizer_encode(s->tok, ftext, flen, 0, &f, &nf, err, sizeof err))
        rc = qrm_ctx_fail(c, QRM_ETEXT, "%s", err);
    int32_t bos = qrm_tokenizer_bos_id(s->tok), eos = -1;
    const char *eos_text = qrm_tokenizer_eos_token(s->tok);
    if (eos_text) eos = qrm_tokenizer_token_to_id(s->tok, eos_text, strlen(eos_text));
    if (!rc && eos < 0) rc = qrm_ctx_fail(c, QRM_ETEXT, "the tokenizer has no EOS token to end the response with");
    if (!rc) {
        size_t start = np;
        if (start > nf || memcmp(f, p, start * sizeof *f)) start = start ? start - 1 : 0;
        if (start >= nf) rc = qrm_ctx_fail(c, QRM_EINVAL, "the response encodes to no tokens");
        else if (!(*ids = malloc((nf + 2) * sizeof **ids))) rc = qrm_ctx_fail(c, QRM_ENOMEM, "out of memory");
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
