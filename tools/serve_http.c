/* The request head of `qrm serve`. Strict where leniency would let two
 * readers of one request disagree about where its body ends (RFC 9112 §6.3:
 * conflicting Content-Length values, obsolete line folding, whitespace
 * before a header's colon), tolerant of a bare LF as line end and of blank
 * lines before the request line, as RFC 9112 §2.2 allows. */
#include "serve_http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line starting at p (at the CR of CRLF or the LF), or NULL. */
static const char *line_end(const char *p, const char *end) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) return NULL;
    return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
}

static const char *next_line(const char *eol) { return *eol == '\r' ? eol + 2 : eol + 1; }

/* 1 when the comma-separated list v[0..n) holds token t (any case). */
static int list_has(const char *v, size_t n, const char *t) {
    size_t tl = strlen(t), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - s == tl && !strncasecmp(v + s, t, tl)) return 1;
    }
    return 0;
}

static int parse_request_line(const char *p, const char *eol, qrm_http_request *r) {
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                        "PATCH", "TRACE", "CONNECT"};
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (!sp1 || sp1 == p || sp1 - p >= (long)sizeof r->method) return -400;
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q)) return -400;
    memcpy(r->method, p, (size_t)(sp1 - p));
    r->method[sp1 - p] = 0;
    const char *t = sp1 + 1, *sp2 = memchr(t, ' ', (size_t)(eol - t));
    if (!sp2 || sp2 == t) return -400;
    for (const char *q = t; q < sp2; q++)
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f) return -400;
    const char *v = sp2 + 1;
    if (eol - v != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1') return -505;
    r->minor = v[7] - '0';
    int is_known = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) is_known |= !strcmp(r->method, known[i]);
    if (!is_known) return -501;
    /* origin-form only: this server has no proxy or OPTIONS * use */
    if (*t != '/') return -400;
    const char *qm = memchr(t, '?', (size_t)(sp2 - t));
    size_t plen = (size_t)((qm ? qm : sp2) - t);
    if (plen >= sizeof r->path) return -414;
    memcpy(r->path, t, plen);
    r->path[plen] = 0;
    return 0;
}

int qrm_http_parse(const char *buf, size_t len, size_t max_head, qrm_http_request *r) {
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    const char *p = buf, *end = buf + len;
    while (p < end && (*p == '\r' || *p == '\n')) p++;
    /* the head ends at the first empty line */
    const char *q = p, *eoh = NULL;
    for (;;) {
        const char *eol = line_end(q, end);
        if (!eol) break;
        if (eol == q) {
            eoh = next_line(eol);
            break;
        }
        q = next_line(eol);
    }
    if (!eoh) return len > max_head ? -431 : 0;
    if ((size_t)(eoh - buf) > max_head) return -431;
    r->head_len = (size_t)(eoh - buf);

    const char *eol = line_end(p, end);
    int rc = parse_request_line(p, eol, r);
    if (rc) return rc;
    int close = 0, keep = 0;
    for (p = next_line(eol); (eol = line_end(p, end)) != p; p = next_line(eol)) {
        if (*p == ' ' || *p == '\t') return -400; /* obsolete folding */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) return -400;
        for (const char *c = p; c < colon; c++)
            if (!is_tchar((unsigned char)*c)) return -400;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char *c = v; c < ve; c++)
            if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f) return -400;
        size_t nl = (size_t)(colon - p), vl = (size_t)(ve - v);
        if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
            long long x = 0;
            if (vl == 0 || vl > 18) return -400;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') return -400;
                x = x * 10 + (v[i] - '0');
            }
            if (r->content_length >= 0 && r->content_length != x) return -400;
            r->content_length = x;
        } else if (nl == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
            r->transfer_encoding = 1;
        } else if (nl == 10 && !strncasecmp(p, "connection", 10)) {
            close |= list_has(v, vl, "close");
            keep |= list_has(v, vl, "keep-alive");
        } else if (nl == 6 && !strncasecmp(p, "expect", 6)) {
            r->expect_continue |= vl == 12 && !strncasecmp(v, "100-continue", 12);
        }
    }
    /* HTTP/1.1 keeps the connection unless told; 1.0 closes unless asked */
    r->keep_alive = !close && (r->minor >= 1 || keep);
    return 1;
}

const char *qrm_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
