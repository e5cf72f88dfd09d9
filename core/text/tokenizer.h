/* Hugging Face tokenizers in C: loads tokenizer.json (+ tokenizer_config.json)
 * and produces exactly the ids of the Rust `tokenizers` library (0.22) for the
 * byte-level BPE (Qwen2/3, Llama-3, GPT-2) and SentencePiece-style BPE
 * (Mistral/Llama-2, Gemma) families. Anything in tokenizer.json that is not
 * supported makes loading fail with a message naming it; the list is at the
 * top of core/text/tokenizer.c.
 *
 * A qrm_tokenizer is immutable after loading: any number of threads may use
 * one at the same time. Functions that can fail return 0 (QRM_OK) or a
 * negative QRM_* status and write a one-line message into err.
 */
#ifndef QRM_TOKENIZER_H
#define QRM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct qrm_tokenizer qrm_tokenizer;

/* Builds a tokenizer from the two JSON texts in memory (neither needs a NUL).
 * tokenizer_config_json may be NULL. Returns NULL with a message in err. */
qrm_tokenizer *qrm_tokenizer_new(const char *tokenizer_json, size_t len,
                                 const char *tokenizer_config_json, size_t cfg_len, char *err,
                                 size_t errlen);
void qrm_tokenizer_free(qrm_tokenizer *t);

/* encode(text, add_special_tokens): added tokens that appear in the text are
 * matched; add_special puts the post-processor's tokens (BOS) around the ids.
 * *ids is malloc'd (never NULL on success, even for zero ids); the caller
 * frees it. Invalid UTF-8 is an error naming the byte offset. */
int qrm_tokenizer_encode(const qrm_tokenizer *t, const char *text, size_t len, int add_special,
                         int32_t **ids, size_t *n, char *err, size_t errlen);

/* decode(ids, skip_special_tokens) through the tokenizer.json decoder. Ids
 * that name no token are skipped, as the library does. *out is malloc'd and
 * NUL-terminated. */
int qrm_tokenizer_decode(const qrm_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                         char **out, size_t *out_len, char *err, size_t errlen);

/* Highest token id + 1 over the model vocabulary and the added tokens. */
size_t qrm_tokenizer_vocab_size(const qrm_tokenizer *t);
/* The token string of id (not NUL-terminated: *len), or NULL. Added tokens
 * take precedence over the model vocabulary, as in the library. */
const char *qrm_tokenizer_id_to_token(const qrm_tokenizer *t, int32_t id, size_t *len);
/* The id of a token string, or -1. */
int32_t qrm_tokenizer_token_to_id(const qrm_tokenizer *t, const char *s, size_t len);
/* 1 when id is an added token marked special (what skip_special drops). */
int qrm_tokenizer_is_special(const qrm_tokenizer *t, int32_t id);

/* BOS: the config's bos_token if it is a token, else the first token the
 * post-processor adds; -1 / NULL when there is none. */
int32_t qrm_tokenizer_bos_id(const qrm_tokenizer *t);
const char *qrm_tokenizer_bos_token(const qrm_tokenizer *t);

/* Strings from tokenizer_config.json (NULL when absent or null). name is one
 * of "bos_token", "eos_token", "pad_token", "unk_token"; each may be written
 * as a string or as {"content": ...}. */
const char *qrm_tokenizer_config_token(const qrm_tokenizer *t, const char *name);
const char *qrm_tokenizer_eos_token(const qrm_tokenizer *t);
size_t qrm_tokenizer_n_additional_special(const qrm_tokenizer *t);
const char *qrm_tokenizer_additional_special(const qrm_tokenizer *t, size_t i);
/* The chat_template (a string, or the "default" entry of a list of named
 * templates), or NULL. */
const char *qrm_tokenizer_chat_template(const qrm_tokenizer *t);

#endif
