/* UTF-8 decoding and validation shared by the JSON reader, the tokenizer and the CLI. */
#ifndef QRM_UTF8_H
#define QRM_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at s[0..n). Returns its length in bytes (1-4), or 0
 * for an invalid, overlong, surrogate or truncated sequence. */
int qrm_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Encodes cp (<= 0x10FFFF, not a surrogate) into out[4]; returns the length. */
int qrm_utf8_encode(uint32_t cp, char *out);
/* Returns the offset of the first invalid byte, or n if s is valid UTF-8. */
size_t qrm_utf8_validate(const char *s, size_t n);

#endif
