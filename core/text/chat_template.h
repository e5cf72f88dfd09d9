/* Chat templates: the subset of Jinja2 that Hugging Face chat templates use,
 * rendered exactly as Python Jinja2 3.1 renders them in transformers
 * (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
 * `tojson` = json.dumps(ensure_ascii=False), raise_exception, strftime_now).
 *
 * Anything this module does not implement is an error that names the
 * construct and the template line, never a silently different output.
 * Rendering is bounded: output size, memory, nesting depth and the number of
 * evaluation steps all have limits (below); exceeding one is an error.
 *
 * Errors are one line, starting with "chat template: ".
 */
#ifndef QRM_CHAT_TEMPLATE_H
#define QRM_CHAT_TEMPLATE_H

#include <stddef.h>

#include "json.h"

#define QRM_TEMPLATE_MAX_OUTPUT (64u << 20)   /* bytes of any rendered string */
#define QRM_TEMPLATE_MAX_MEMORY (512u << 20)  /* bytes of values during one render */
#define QRM_TEMPLATE_MAX_STEPS 20000000L      /* statements + expressions evaluated */
#define QRM_TEMPLATE_MAX_CALL_DEPTH 100       /* nested macro calls */
#define QRM_TEMPLATE_MAX_NESTING 200          /* nested expressions/blocks in the source */

typedef struct qrm_template qrm_template;

/* Compiles template source src[0..len) (UTF-8). Returns NULL and a one-line
 * message naming the line ("chat template: line 3: unclosed 'for' block")
 * on a syntax error. The result is immutable: any number of threads may
 * render it at once. */
qrm_template *qrm_template_compile(const char *src, size_t len, char *err, size_t errlen);

/* Renders with `messages` (any JSON value, normally an array of objects)
 * and `add_generation_prompt`. Every member of extra_vars (a JSON object or
 * NULL: bos_token, eos_token, tools, ...) becomes a template variable too.
 * On success returns 0 and *out (malloc'd, NUL-terminated, *out_len bytes);
 * on error returns -1 with the message in err. */
int qrm_template_render(const qrm_template *t, const qj_value *messages,
                        const qj_value *extra_vars, int add_generation_prompt, char **out,
                        size_t *out_len, char *err, size_t errlen);

void qrm_template_free(qrm_template *t);

#endif
