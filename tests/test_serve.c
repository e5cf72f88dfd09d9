/* `qrm serve` (tools/serve.c), in-process on loopback with an ephemeral
 * port: its scores are the CLI's bit for bit from concurrent clients, and
 * malformed, slow, vanishing and oversized clients, a full queue and a stop
 * never keep it from answering the others. The request-head parser is
 * checked on its own, and the binary for its signals and exit codes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "platform.h"
#include "qrm.h"
#include "score_jsonl.h"
#include "serve.h"
#include "serve_http.h"
#include "testutil.h"

static char *model_path;
static qrm_model *model;
static qrm_server *server;
static int port;

/* Workers held at the hook: tests fill the queue and stop mid-request. */
static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hook_cv = PTHREAD_COND_INITIALIZER;
static int hook_entered, hook_open = 1;

static void hook(void *arg) {
    pthread_mutex_lock(&hook_mu);
    hook_entered++;
    pthread_cond_broadcast(&hook_cv);
    while (!hook_open) pthread_cond_wait(&hook_cv, &hook_mu);
    pthread_mutex_unlock(&hook_mu);
}

static void hook_close(void) {
    pthread_mutex_lock(&hook_mu);
    hook_open = 0, hook_entered = 0;
    pthread_mutex_unlock(&hook_mu);
}

static void hook_release(void) {
    pthread_mutex_lock(&hook_mu);
    hook_open = 1;
    pthread_cond_broadcast(&hook_cv);
    pthread_mutex_unlock(&hook_mu);
}

static void hook_wait_entered(int n) {
    pthread_mutex_lock(&hook_mu);
    while (hook_entered < n) pthread_cond_wait(&hook_cv, &hook_mu);
    pthread_mutex_unlock(&hook_mu);
}

static void start_conns(int parallel, int queue, double timeout, int max_conns) {
    char err[QRM_ERR_MAX];
    qrm_serve_config c;
    qrm_serve_config_default(&c);
    c.port = 0, c.threads = 1, c.parallel = parallel, c.queue = queue, c.timeout = timeout;
    /* 1100 tokens: the JSONL line limit (64 bytes a token) passes a 64 KiB body */
    c.max_body = 64 << 10, c.max_head = 2048, c.max_tokens = 1100;
    c.model_name = "llama3-tiny";
    c.job_hook = hook;
    c.max_conns = max_conns;
    server = qrm_server_start(model, &c, err, sizeof err);
    ck_assert_msg(server != NULL, "%s", err);
    port = qrm_server_port(server);
    ck_assert_int_gt(port, 0);
}

static void start(int parallel, int queue, double timeout) { start_conns(parallel, queue, timeout, 256); }

static void setup(void) {
    char err[QRM_ERR_MAX];
    model_path = tu_convert("llama3-tiny", "int8", NULL);
    model = qrm_model_open(model_path, err, sizeof err);
    ck_assert_msg(model != NULL, "%s", err);
    hook_open = 1, hook_entered = 0;
    start(2, 16, 0.5);
}

static void teardown(void) {
    if (server) qrm_server_stop(server);
    server = NULL;
    qrm_model_close(model);
    tu_remove_converted(model_path);
}

/* ---- a small client ---- */

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_str(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        ck_assert_msg(k > 0, "send: %s", strerror(errno));
        s += k, n -= (size_t)k;
    }
}

typedef struct {
    int status;
    char head[2048];
    char *body;
    size_t len;
} reply;

/* Reads one response; status 0 when the connection closed first. The
 * connection may stay open for the next (bytes past it are kept in carry). */
static void read_reply(int fd, reply *r, qj_buf *carry) {
    memset(r, 0, sizeof *r);
    char tmp[4096];
    for (;;) {
        char *e = carry->buf ? strstr(carry->buf, "\r\n\r\n") : NULL;
        if (e) {
            size_t hl = (size_t)(e + 4 - carry->buf);
            ck_assert(hl < sizeof r->head);
            memcpy(r->head, carry->buf, hl);
            const char *cl = strcasestr(r->head, "Content-Length:");
            ck_assert_msg(cl != NULL, "no Content-Length: %s", r->head);
            size_t blen = strtoul(cl + 15, NULL, 10);
            if (carry->len >= hl + blen) {
                ck_assert_int_eq(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
                r->body = malloc(blen + 1);
                memcpy(r->body, carry->buf + hl, blen);
                r->body[blen] = 0;
                r->len = blen;
                memmove(carry->buf, carry->buf + hl + blen, carry->len - hl - blen);
                carry->len -= hl + blen;
                carry->buf[carry->len] = 0;
                return;
            }
        }
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k <= 0) return;
        qj_buf_put(carry, tmp, (size_t)k);
    }
}

/* One request on a fresh connection. */
static reply exchange(const char *raw, size_t n) {
    int fd = dial();
    send_str(fd, raw, n);
    reply r;
    qj_buf carry = {0};
    read_reply(fd, &r, &carry);
    qj_buf_free(&carry);
    close(fd);
    return r;
}

static char *request(const char *method, const char *path, const char *body, int keep) {
    qj_buf b = {0};
    qj_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                  method, path, keep ? "" : "Connection: close\r\n", body ? strlen(body) : 0,
                  body ? body : "");
    return b.buf;
}

static reply post(const char *path, const char *body) {
    char *raw = request("POST", path, body, 0);
    reply r = exchange(raw, strlen(raw));
    free(raw);
    return r;
}

static reply get(const char *path) {
    char *raw = request("GET", path, NULL, 0);
    reply r = exchange(raw, strlen(raw));
    free(raw);
    return r;
}

static void expect_ok_health(void) {
    reply r = get("/health");
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"status\":\"ok\"") && strstr(r.body, "\"model\":\"llama3-tiny\""), "%s", r.body);
    free(r.body);
}

/* ---- the lines and what the CLI makes of them ---- */

static const char *const lines[] = {
    "{\"id\":1,\"prompt\":\"What is 2+2?\",\"responses\":[\"4\",\"five\",\"22\"]}",
    "{\"ids\":[316,5,6,7]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello \\\"there\\\" ]\"}]}",
    "{\"id\":\"x\",\"meta\":{\"a\":[1,2,{\"b\":\"]}\"}]},\"prompt\":\"Why?\",\"responses\":[\"because\"]}",
    "{\"ids\":[]}",
    "{\"prompt\":\"no responses\"}",
    "[1,2]",
    "{\"ids\":[1,2,3],\"error\":\"mine\",\"scores\":0}",
};
#define N_LINES (int)(sizeof lines / sizeof lines[0])

/* The CLI's result for each line: qrm_score_line on a context like the
 * server's (one thread, the same KV cap). */
static char **cli_results(void) {
    char err[QRM_ERR_MAX];
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = 1, p.max_tokens = 1100;
    qrm_ctx *c = qrm_ctx_new(model, &p, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    char **want = calloc(N_LINES, sizeof *want);
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    for (int i = 0; i < N_LINES; i++) {
        qj_buf b = {0};
        size_t nt = 0;
        qrm_score_line(c, lines[i], strlen(lines[i]), &o, &b, &nt);
        want[i] = b.buf;
    }
    qrm_ctx_free(c);
    return want;
}

typedef struct {
    char **want;
    int failures;
    char msg[512];
} client_arg;

/* Every line as its own request on one keep-alive connection, then all of
 * them as one array. */
static void *client(void *arg) {
    client_arg *a = arg;
    int fd = dial();
    qj_buf carry = {0};
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < N_LINES; i++) {
            char *raw = request("POST", "/score", lines[i], 1);
            send_str(fd, raw, strlen(raw));
            free(raw);
            reply r;
            read_reply(fd, &r, &carry);
            /* "[1,2]" is an array whose element is no object: a result with "error" */
            int want_status = 200;
            if (r.status != want_status || !r.body ||
                (i == 6 ? strcmp(r.body, "[{\"error\":\"a line must be a JSON object\"},{\"error\":\"a line must be a JSON object\"}]")
                        : strcmp(r.body, a->want[i]))) {
                if (!a->failures++)
                    snprintf(a->msg, sizeof a->msg, "line %d: status %d, got %s, want %s", i, r.status,
                             r.body ? r.body : "(nothing)", a->want[i]);
            }
            free(r.body);
        }
    qj_buf arr = {0}, want = {0};
    qj_buf_puts(&arr, " [\n");
    qj_buf_puts(&want, "[");
    for (int i = 0; i < N_LINES; i++) {
        if (i == 6) continue;
        qj_buf_printf(&arr, "%s%s", want.len > 1 ? " ,\n " : "", lines[i]);
        qj_buf_printf(&want, "%s%s", want.len > 1 ? "," : "", a->want[i]);
    }
    qj_buf_puts(&arr, "\n]\n");
    qj_buf_puts(&want, "]");
    char *raw = request("POST", "/score", arr.buf, 0);
    send_str(fd, raw, strlen(raw));
    free(raw);
    reply r;
    read_reply(fd, &r, &carry);
    if (r.status != 200 || !r.body || strcmp(r.body, want.buf))
        if (!a->failures++)
            snprintf(a->msg, sizeof a->msg, "batch: status %d, got %s", r.status, r.body ? r.body : "(nothing)");
    free(r.body);
    qj_buf_free(&arr), qj_buf_free(&want), qj_buf_free(&carry);
    close(fd);
    return NULL;
}

/* GET /metrics until it holds `line` (2 s at most). A request is counted
 * after its answer is written (its duration includes the write), so a client
 * can read its answer a moment before the server counts it. */
static reply metrics_with(const char *line) {
    reply r = get("/metrics");
    for (int tries = 0; tries < 200 && r.status == 200 && !strstr(r.body, line); tries++) {
        free(r.body);
        usleep(10000);
        r = get("/metrics");
    }
    return r;
}

START_TEST(concurrent_clients_get_the_cli_scores) {
    char **want = cli_results();
    ck_assert_msg(strstr(want[0], "\"scores\":[") && strstr(want[4], "\"error\""), "%s / %s", want[0], want[4]);
    enum { C = 4 };
    pthread_t t[C];
    client_arg a[C];
    for (int i = 0; i < C; i++) {
        a[i] = (client_arg){.want = want};
        ck_assert_int_eq(pthread_create(&t[i], NULL, client, &a[i]), 0);
    }
    for (int i = 0; i < C; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < C; i++) ck_assert_msg(a[i].failures == 0, "client %d: %d failures; %s", i, a[i].failures, a[i].msg);
    /* the counters saw it all */
    char want_line[128];
    snprintf(want_line, sizeof want_line, "qrm_http_requests_total{path=\"/score\",code=\"200\"} %d\n", C * (3 * N_LINES + 1));
    reply r = metrics_with(want_line);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.head, "Content-Type: text/plain; version=0.0.4"), "%s", r.head);
    ck_assert_msg(strstr(r.body, want_line), "%s", r.body);
    ck_assert_msg(strstr(r.body, "qrm_http_request_duration_seconds_bucket{path=\"/score\",le=\"+Inf\"}"), "%s", r.body);
    ck_assert_msg(strstr(r.body, "qrm_queue_depth 0\n") && strstr(r.body, "qrm_tokens_scored_total "), "%s", r.body);
    free(r.body);
    for (int i = 0; i < N_LINES; i++) free(want[i]);
    free(want);
}
END_TEST

START_TEST(get_reward_is_tokenize_then_score) {
    static const char *const q[] = {"<|begin_of_text|>Hello there, how are you?", "2+2=4", "caf\xc3\xa9 \xe2\x82\xac"};
    char err[QRM_ERR_MAX];
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = 1, p.max_tokens = 1100;
    qrm_ctx *c = qrm_ctx_new(model, &p, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    qj_buf body = {0}, want = {0};
    qj_buf_puts(&body, "{\"query\":[");
    for (int k = 0; k < 2; k++) {
        qj_buf_puts(&want, k ? "],\"scores\":[" : "{\"rewards\":[");
        for (int i = 0; i < 3; i++) {
            int32_t *ids;
            size_t n;
            float s;
            ck_assert_int_eq(qrm_tokenize(c, q[i], strlen(q[i]), 0, &ids, &n), 0);
            ck_assert_int_eq(qrm_score_ids(c, ids, n, &s), 0);
            free(ids);
            qj_buf_printf(&want, "%s%.9g", i ? "," : "", (double)s);
            if (!k) {
                if (i) qj_buf_puts(&body, ",");
                qj_buf_put_string(&body, q[i], strlen(q[i]));
            }
        }
    }
    qj_buf_puts(&want, "]}");
    qj_buf_puts(&body, "],\"prompts\":[\"a\",\"b\",\"c\"],\"labels\":[null,null,null]}");
    qrm_ctx_free(c);
    const char *paths[] = {"/get_reward", "/"};
    for (int i = 0; i < 2; i++) {
        reply r = post(paths[i], body.buf);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, want.buf);
        free(r.body);
    }
    reply r = post("/get_reward", "{\"prompts\":[]}");
    ck_assert_int_eq(r.status, 400);
    free(r.body);
    r = post("/get_reward", "{\"query\":[\"ok\",\"\"]}");
    ck_assert_int_eq(r.status, 422);
    ck_assert_msg(strstr(r.body, "query 1"), "%s", r.body);
    free(r.body);
    r = post("/get_reward", "[]");
    ck_assert_int_eq(r.status, 400);
    free(r.body);
    qj_buf_free(&body), qj_buf_free(&want);
}
END_TEST

static void expect_status(const char *raw, int status, const char *what) {
    reply r = exchange(raw, strlen(raw));
    ck_assert_msg(r.status == status, "%s: status %d, want %d (%s)", what, r.status, status,
                  r.body ? r.body : "");
    if (status >= 400) ck_assert_msg(r.body && strstr(r.body, "{\"error\":") == r.body, "%s: %s", what, r.body);
    free(r.body);
}

START_TEST(malformed_requests_get_their_status) {
    expect_status("GARBAGE\r\n\r\n", 400, "bad request line");
    expect_status("GET /health HTTP/2.0\r\n\r\n", 505, "HTTP/2");
    expect_status("BREW /health HTTP/1.1\r\n\r\n", 501, "unknown method");
    expect_status("GET /health HTTP/1.1\r\nBad Header\r\n\r\n", 400, "header without colon");
    expect_status("POST /score HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n{}x", 400, "two lengths");
    expect_status("POST /score HTTP/1.1\r\nContent-Length: 4\r\n\r\n{bad", 400, "bad JSON");
    expect_status("POST /score HTTP/1.1\r\nContent-Length: 2\r\n\r\n42", 400, "a number");
    expect_status("POST /score HTTP/1.1\r\n\r\n{}", 411, "no Content-Length");
    expect_status("POST /score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 501, "chunked");
    expect_status("POST /score HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{}", 413, "oversized body");
    expect_status("GET /nowhere HTTP/1.1\r\n\r\n", 404, "unknown path");
    expect_status("GET /score HTTP/1.1\r\n\r\n", 405, "GET /score");
    expect_status("POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "POST /health");
    qj_buf big = {0};
    qj_buf_puts(&big, "GET /health HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 300; i++) qj_buf_puts(&big, "0123456789");
    qj_buf_puts(&big, "\r\n\r\n");
    expect_status(big.buf, 431, "header too large");
    qj_buf_free(&big);
    /* a body just at the limit is read, scored, and answered */
    qj_buf body = {0};
    qj_buf_puts(&body, "{\"ids\":[316,5],\"pad\":\"");
    while (body.len < (64 << 10) - 2) qj_buf_puts(&body, "x");
    qj_buf_puts(&body, "\"}");
    reply r = post("/score", body.buf);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"scores\":["), "%.100s", r.body);
    free(r.body);
    qj_buf_puts(&body, " ");
    r = post("/score", body.buf);
    ck_assert_int_eq(r.status, 413);
    free(r.body);
    qj_buf_free(&body);
    expect_ok_health();
    r = metrics_with("qrm_http_requests_total{path=\"/score\",code=\"413\"} 2\n");
    ck_assert_msg(strstr(r.body, "qrm_http_requests_total{path=\"/score\",code=\"413\"} 2\n"), "%s", r.body);
    free(r.body);
}
END_TEST

START_TEST(keep_alive_pipelining_and_close) {
    int fd = dial();
    /* three requests in one write: three answers in order */
    char *a = request("GET", "/health", NULL, 1), *b = request("POST", "/score", "{\"ids\":[316]}", 1),
         *c = request("GET", "/health", NULL, 0);
    qj_buf all = {0}, carry = {0};
    qj_buf_puts(&all, a), qj_buf_puts(&all, b), qj_buf_puts(&all, c);
    send_str(fd, all.buf, all.len);
    reply r[3];
    for (int i = 0; i < 3; i++) {
        read_reply(fd, &r[i], &carry);
        ck_assert_int_eq(r[i].status, 200);
    }
    ck_assert_msg(strstr(r[1].body, "\"scores\":["), "%s", r[1].body);
    ck_assert_msg(strstr(r[0].head, "Connection: keep-alive") && strstr(r[2].head, "Connection: close"), "%s", r[2].head);
    char x;
    ck_assert_int_eq(recv(fd, &x, 1, 0), 0); /* closed after Connection: close */
    for (int i = 0; i < 3; i++) free(r[i].body);
    close(fd);
    /* HTTP/1.0 closes unless asked */
    r[0] = exchange("GET /health HTTP/1.0\r\n\r\n", 24);
    ck_assert_msg(strstr(r[0].head, "Connection: close"), "%s", r[0].head);
    free(r[0].body);
    /* Expect: 100-continue gets its interim answer, then the result */
    fd = dial();
    const char *h = "POST /score HTTP/1.1\r\nContent-Length: 13\r\nExpect: 100-continue\r\n\r\n";
    send_str(fd, h, strlen(h));
    char buf[64] = {0};
    ck_assert_int_eq(recv(fd, buf, 25, MSG_WAITALL), 25);
    ck_assert_str_eq(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_str(fd, "{\"ids\":[316]}", 13);
    read_reply(fd, &r[0], &carry);
    ck_assert_int_eq(r[0].status, 200);
    free(r[0].body);
    close(fd);
    free(a), free(b), free(c);
    qj_buf_free(&all), qj_buf_free(&carry);
}
END_TEST

START_TEST(slow_client_gets_408_others_served) {
    qrm_server_stop(server);
    start(2, 16, 1.0);
    double t0 = qrm_now();
    int slow = dial(), slow_body = dial();
    send_str(slow, "POST /score HTTP/1.1\r\nContent-Le", 33);
    const char *h = "POST /score HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"ids\"";
    send_str(slow_body, h, strlen(h));
    /* the workers are free for everyone else meanwhile */
    for (int i = 0; i < 5; i++) {
        reply r = post("/score", "{\"ids\":[316,5]}");
        ck_assert_int_eq(r.status, 200);
        free(r.body);
    }
    ck_assert_msg(qrm_now() - t0 < 0.9, "the others waited for the slow client");
    int fds[2] = {slow, slow_body};
    for (int i = 0; i < 2; i++) {
        reply r;
        qj_buf carry = {0};
        read_reply(fds[i], &r, &carry);
        ck_assert_msg(r.status == 408, "slow client %d: status %d", i, r.status);
        free(r.body);
        qj_buf_free(&carry);
        close(fds[i]);
    }
    double dt = qrm_now() - t0;
    ck_assert_msg(dt >= 0.95 && dt < 6, "408 after %.2f s, timeout 1 s", dt);
    /* an idle keep-alive connection is closed without an answer */
    int idle = dial();
    char x;
    ck_assert_int_eq(recv(idle, &x, 1, 0), 0);
    close(idle);
    expect_ok_health();
}
END_TEST

START_TEST(clients_that_vanish_do_not_hurt) {
    for (int i = 0; i < 10; i++) {
        int fd = dial();
        const char *parts[] = {"POS", "POST /score HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"ids\":",
                               "POST /score HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"ids\":[316]}", ""};
        send_str(fd, parts[i % 4], strlen(parts[i % 4]));
        /* a reset instead of a FIN, too */
        if (i % 2) {
            struct linger l = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(fd);
    }
    for (int i = 0; i < 5; i++) {
        reply r = post("/score", "{\"ids\":[316,5]}");
        ck_assert_int_eq(r.status, 200);
        free(r.body);
    }
    reply r = get("/metrics");
    ck_assert_msg(strstr(r.body, "qrm_http_client_disconnects_total ") &&
                  !strstr(r.body, "qrm_http_client_disconnects_total 0\n"), "%s", r.body);
    free(r.body);
}
END_TEST

typedef struct {
    const char *body;
    reply r;
} bg_arg;

static void *bg_post(void *arg) {
    bg_arg *a = arg;
    a->r = post("/score", a->body);
    return NULL;
}

static int queue_depth(void) {
    reply r = get("/health");
    const char *q = strstr(r.body, "\"queue_depth\":");
    int d = q ? atoi(q + 14) : -1;
    free(r.body);
    return d;
}

START_TEST(full_queue_503_with_retry_after) {
    qrm_server_stop(server);
    start(1, 1, 5);
    hook_close();
    bg_arg a = {.body = "{\"ids\":[316,5,6]}"}, b = {.body = "{\"ids\":[316,7]}"};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, bg_post, &a), 0);
    hook_wait_entered(1); /* a holds the only context */
    ck_assert_int_eq(pthread_create(&tb, NULL, bg_post, &b), 0);
    for (int i = 0; i < 500 && queue_depth() != 1; i++) usleep(10000);
    ck_assert_int_eq(queue_depth(), 1); /* b waits */
    reply c = post("/score", "{\"ids\":[316]}");
    ck_assert_int_eq(c.status, 503);
    ck_assert_msg(strstr(c.head, "\r\nRetry-After: 1\r\n"), "%s", c.head);
    free(c.body);
    expect_ok_health(); /* what needs no context is still answered */
    hook_release();
    pthread_join(ta, NULL), pthread_join(tb, NULL);
    ck_assert_int_eq(a.r.status, 200);
    ck_assert_int_eq(b.r.status, 200);
    free(a.r.body), free(b.r.body);
    c = post("/score", "{\"ids\":[316]}");
    ck_assert_int_eq(c.status, 200);
    free(c.body);
}
END_TEST

START_TEST(excess_connections_503_then_served) {
    qrm_server_stop(server);
    start_conns(1, 4, 5, 2);
    int a = dial(), b = dial();
    /* both are accepted once each has been answered once */
    int fds[2] = {a, b};
    qj_buf carry = {0};
    for (int i = 0; i < 2; i++) {
        char *raw = request("GET", "/health", NULL, 1);
        send_str(fds[i], raw, strlen(raw));
        free(raw);
        reply r;
        read_reply(fds[i], &r, &carry);
        ck_assert_int_eq(r.status, 200);
        free(r.body);
    }
    reply r = get("/health");
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(strstr(r.head, "\r\nRetry-After: 1\r\n"), "%s", r.head);
    ck_assert_str_eq(r.body, "{\"error\":\"too many open connections\"}");
    free(r.body);
    close(a);
    close(b);
    /* their slots come back */
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        r = get("/health");
        ok = r.status == 200;
        free(r.body);
        if (!ok) usleep(10000);
    }
    ck_assert(ok);
    qj_buf_free(&carry);
}
END_TEST

static void *bg_stop(void *arg) {
    qrm_server_stop(server);
    return NULL;
}

START_TEST(stop_finishes_the_request_in_flight) {
    char **want = cli_results();
    hook_close();
    bg_arg a = {.body = lines[0]};
    pthread_t ta, ts;
    ck_assert_int_eq(pthread_create(&ta, NULL, bg_post, &a), 0);
    hook_wait_entered(1);
    /* an idle keep-alive connection does not hold the stop up */
    int idle = dial();
    char *raw = request("GET", "/health", NULL, 1);
    send_str(idle, raw, strlen(raw));
    free(raw);
    reply h;
    qj_buf carry = {0};
    read_reply(idle, &h, &carry);
    ck_assert_int_eq(h.status, 200);
    free(h.body);
    qj_buf_free(&carry);
    ck_assert_int_eq(pthread_create(&ts, NULL, bg_stop, NULL), 0);
    char x;
    ck_assert_int_eq(recv(idle, &x, 1, 0), 0);
    close(idle);
    /* no longer accepting */
    int refused = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        refused = connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0;
        close(fd);
        if (!refused) usleep(5000);
    }
    ck_assert(refused);
    hook_release();
    pthread_join(ta, NULL);
    pthread_join(ts, NULL);
    server = NULL;
    ck_assert_int_eq(a.r.status, 200);
    ck_assert_str_eq(a.r.body, want[0]);
    free(a.r.body);
    for (int i = 0; i < N_LINES; i++) free(want[i]);
    free(want);
}
END_TEST

/* ---- the parser alone ---- */

START_TEST(http_head_parser) {
    qrm_http_request r;
    const char *ok = "\r\nPOST /score?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length:  12 \r\nConnection: Keep-Alive, close\r\n\r\nBODY";
    ck_assert_int_eq(qrm_http_parse(ok, strlen(ok), 1024, &r), 1);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_str_eq(r.path, "/score");
    ck_assert_int_eq(r.content_length, 12);
    ck_assert_int_eq(r.keep_alive, 0);
    ck_assert_int_eq(r.head_len, strlen(ok) - 4);
    /* every prefix needs more bytes */
    for (size_t n = 0; n < strlen(ok) - 4; n++) ck_assert_int_eq(qrm_http_parse(ok, n, 1024, &r), 0);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.1\n\n", 16, 1024, &r), 1);
    ck_assert_int_eq(r.keep_alive, 1);
    ck_assert_int_eq(r.content_length, -1);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 42, 1024, &r), 1);
    ck_assert_int_eq(r.keep_alive, 1);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 28, 1024, &r), -400);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.1\r\nX : a\r\n\r\n", 25, 1024, &r), -400);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 39, 1024, &r), -400);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 56, 1024, &r), 1);
    ck_assert_int_eq(qrm_http_parse("GET  / HTTP/1.1\r\n\r\n", 19, 1024, &r), -400);
    ck_assert_int_eq(qrm_http_parse("GET http://a/ HTTP/1.1\r\n\r\n", 26, 1024, &r), -400);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/3.0\r\n\r\n", 18, 1024, &r), -505);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 52, 32, &r), -431);
    ck_assert_int_eq(qrm_http_parse("GET / HTTP/1.1\r\nX: a\r\n\r\n", 24, 16, &r), -431);
}
END_TEST

/* ---- the binary ---- */

START_TEST(cli_serve_sigterm_exits_0) {
    if (access(QRM_TEST_BIN_DIR "/qrm", X_OK) != 0) {
        printf(QRM_TEST_BIN_DIR "/qrm not built: skipping the binary checks\n");
        return;
    }
    qrm_server_stop(server);
    server = NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm serve --help >/dev/null");
    ck_assert_int_eq(system(cmd), 0);
    const char *bad[] = {"--port 70000", "--port 8x", "--queue 0", "--timeout -1", "--parallel", "--bogus 1"};
    for (int i = 0; i < 6; i++) {
        snprintf(cmd, sizeof cmd, QRM_TEST_BIN_DIR "/qrm serve -m %s %s 2>/dev/null", model_path, bad[i]);
        int st = system(cmd);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %d", bad[i], st);
    }
    int errp[2];
    ck_assert_int_eq(pipe(errp), 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        dup2(errp[1], 2);
        close(errp[0]);
        execl(QRM_TEST_BIN_DIR "/qrm", "qrm", "serve", "-m", model_path, "--port", "0", "-t", "1", (char *)NULL);
        _exit(127);
    }
    close(errp[1]);
    char buf[512] = {0};
    size_t n = 0;
    while (n < sizeof buf - 1 && !strchr(buf, '\n')) {
        ssize_t k = read(errp[0], buf + n, sizeof buf - 1 - n);
        ck_assert_msg(k > 0, "qrm serve said nothing");
        n += (size_t)k;
    }
    const char *at = strstr(buf, "listening on 127.0.0.1:");
    ck_assert_msg(at != NULL, "%s", buf);
    port = atoi(at + 23);
    reply r = post("/score", lines[1]);
    ck_assert_int_eq(r.status, 200);
    free(r.body);
    kill(pid, SIGTERM);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    close(errp[0]);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("serve");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, concurrent_clients_get_the_cli_scores);
    tcase_add_test(tc, get_reward_is_tokenize_then_score);
    tcase_add_test(tc, malformed_requests_get_their_status);
    tcase_add_test(tc, keep_alive_pipelining_and_close);
    tcase_add_test(tc, slow_client_gets_408_others_served);
    tcase_add_test(tc, clients_that_vanish_do_not_hurt);
    tcase_add_test(tc, full_queue_503_with_retry_after);
    tcase_add_test(tc, excess_connections_503_then_served);
    tcase_add_test(tc, stop_finishes_the_request_in_flight);
    tcase_add_test(tc, cli_serve_sigterm_exits_0);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("parser");
    tcase_add_test(tp, http_head_parser);
    suite_add_tcase(s, tp);
    return s;
}

int main(void) { return tu_run(suite()); }
