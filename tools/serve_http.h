/* The HTTP/1.1 request head of `qrm serve` (tools/serve_http.c): only what
 * a scoring server needs, parsed strictly from a buffer so that tests can
 * drive it without a socket. */
#ifndef QRM_SERVE_HTTP_H
#define QRM_SERVE_HTTP_H

#include <stddef.h>

typedef struct {
    char method[16];
    char path[256];          /* the target without its query string */
    int minor;               /* HTTP/1.<minor> */
    long long content_length; /* -1: no Content-Length */
    int transfer_encoding;   /* a Transfer-Encoding header was sent */
    int keep_alive;          /* after Connection and the version's default */
    int expect_continue;     /* Expect: 100-continue */
    size_t head_len;         /* bytes of the request line and headers, blank line included */
} qrm_http_request;

/* Parses the head at buf[0..len). Returns 1 when complete (r filled), 0 when
 * more bytes are needed, or a negative HTTP status: -400 malformed, -431 the
 * head is longer than max_head, -501 a method this server does not know,
 * -505 not HTTP/1.x. */
int qrm_http_parse(const char *buf, size_t len, size_t max_head, qrm_http_request *r);

/* The reason phrase of a status ("Not Found"); "Unknown" otherwise. */
const char *qrm_http_reason(int status);

#endif
