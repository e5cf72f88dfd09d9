/* Glue between the tokenizer and the chat template (core/text/ctx_text.c). */
#ifndef QRM_TEXT_H
#define QRM_TEXT_H

#include "json.h"
#include "tokenizer.h"

/* The variables transformers gives a chat template besides messages:
 * bos_token, eos_token, pad_token, unk_token (when the config has them)
 * and additional_special_tokens. NULL on out of memory. */
qj_doc *qrm_template_vars_for(const qrm_tokenizer *tok);

#endif
