/* `qrm serve`: the HTTP scoring server.
 *
 * Threads: an acceptor, a reader per connection, P workers. A reader
 * receives a whole request (with a deadline, so a slow client costs only its
 * own thread), answers what needs no model (/health, /metrics, errors)
 * itself, and puts a scoring request on the bounded queue, then waits for
 * its worker and writes the answer. Workers touch nothing but the queue and
 * their own context, so a context is only ever used by one thread.
 *
 * Scores are the CLI's bit for bit: /score runs every object through
 * qrm_score_line, the function behind `qrm score --input`, on exactly the
 * bytes the client sent for it. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_opts.h"
#include "json.h"
#include "platform.h"
#include "serve_http.h"
#include "serve_metrics.h"

enum { JOB_SCORE, JOB_REWARD };

typedef struct job {
    int kind;
    const char *body;
    size_t len;
    qj_buf out;
    int status;
    size_t lines, errors, tokens;
    int done;
    pthread_cond_t cv;
    struct job *next;
} job;

struct qrm_server {
    qrm_serve_config cfg;
    const qrm_model *model;
    qrm_model_info info;
    int lfd, port, wake[2];
    pthread_t acceptor;
    pthread_t *workers;
    qrm_ctx **ctx;
    int n_workers, n_started;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, idle_cv;
    job *head, *tail;
    int depth, busy, conns, stopping, workers_exit;
    qrm_metrics metrics;
};

void qrm_serve_config_default(qrm_serve_config *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->parallel = 1;
    c->queue = 64;
    c->max_body = 16u << 20;
    c->max_head = 16u << 10;
    c->timeout = 30;
    c->max_conns = 256;
    c->model_name = "model";
    c->opts.mode = QRM_KEEP_ALL;
}

int qrm_server_port(const qrm_server *s) { return s->port; }

static int is_stopping(qrm_server *s) {
    pthread_mutex_lock(&s->mu);
    int v = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* ---- scoring (worker threads) ---- */

/* 1 when a result object carries "error" (qrm_score_line puts a clashing
 * input field inside "input", so a top-level "error" is always qrm's). */
static int result_is_error(const char *r, size_t n) {
    char e[8];
    qj_doc *d = qj_parse(r, n, e, sizeof e);
    int is = d && qj_get(qj_root(d), "error") != NULL;
    qj_free(d);
    return is;
}

/* The bytes of each element of a JSON array the reader already validated:
 * strings are skipped whole, so brackets and commas inside them are text. */
static int next_element(const char *s, size_t n, size_t *i, size_t *start, size_t *end) {
    size_t k = *i;
    while (k < n && strchr(" \t\r\n", s[k])) k++;
    if (k >= n || s[k] == ']') return 0;
    *start = k;
    int depth = 0, in_str = 0;
    for (; k < n; k++) {
        char c = s[k];
        if (in_str) {
            if (c == '\\') k++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') in_str = 1;
        else if (c == '[' || c == '{') depth++;
        else if (c == ']' || c == '}') {
            if (depth == 0) break;
            depth--;
        } else if (c == ',' && depth == 0) break;
    }
    size_t e = k;
    while (e > *start && strchr(" \t\r\n", s[e - 1])) e--;
    *end = e;
    *i = k < n && s[k] == ',' ? k + 1 : k;
    return 1;
}

static void score_one_line(qrm_server *s, qrm_ctx *c, job *j, const char *line, size_t len) {
    size_t at = j->out.len;
    qrm_score_line(c, line, len, &s->cfg.opts, &j->out, &j->tokens);
    j->lines++;
    j->errors += result_is_error(j->out.buf + at, j->out.len - at);
}

static void run_score(qrm_server *s, qrm_ctx *c, job *j) {
    size_t i = 0;
    while (i < j->len && strchr(" \t\r\n", j->body[i])) i++;
    j->status = 200;
    if (i == j->len || j->body[i] != '[') {
        score_one_line(s, c, j, j->body, j->len);
        return;
    }
    i++;
    size_t a, b;
    qj_buf_puts(&j->out, "[");
    for (int first = 1; next_element(j->body, j->len, &i, &a, &b); first = 0) {
        if (!first) qj_buf_puts(&j->out, ",");
        score_one_line(s, c, j, j->body + a, b - a);
    }
    qj_buf_puts(&j->out, "]");
}

static void error_body(qj_buf *b, const char *msg) {
    b->len = 0;
    qj_buf_puts(b, "{\"error\":");
    qj_buf_put_string(b, msg, strlen(msg));
    qj_buf_puts(b, "}");
}

/* OpenRLHF's remote reward model (--reward.remote_url, formerly
 * --remote_rm_url; read at github.com/OpenRLHF/OpenRLHF commit 3c3be62): it POSTs
 * {"query": [text...], "prompts": [...], "labels": [...]} and reads
 * "rewards" (and "scores") from the answer; see openrlhf/utils/agent.py
 * (SingleTurnAgentExecutor._fetch_rewards_via_http) and its reference server
 * openrlhf/cli/serve_rm.py (POST /get_reward), which tokenizes each query
 * with add_special_tokens=False: the query is the whole rendered
 * conversation, decoded with its special tokens. Each reward here is
 * `qrm tokenize --text Q` then `qrm score --ids` of those ids. */
static void run_reward(qrm_server *s, qrm_ctx *c, job *j) {
    char err[QRM_ERR_MAX + 64], e[8];
    qj_doc *d = qj_parse(j->body, j->len, e, sizeof e);
    const qj_value *q = d ? qj_get(qj_root(d), "query") : NULL;
    double *r = NULL;
    j->status = 400;
    if (!d || qj_root(d)->type != QJ_OBJECT || !q || q->type != QJ_ARRAY) {
        error_body(&j->out, "the body must be an object with \"query\": an array of strings");
        goto out;
    }
    if (s->info.logprobs) {
        error_body(&j->out, "a log-probability model (DPO) has no reward per text: use POST /score");
        goto out;
    }
    for (uint32_t i = 0; i < q->len; i++)
        if (q->u.items[i].type != QJ_STRING) {
            snprintf(err, sizeof err, "'query' element %u is not a string", i);
            error_body(&j->out, err);
            goto out;
        }
    r = malloc((q->len ? q->len : 1) * sizeof *r);
    if (!r) {
        j->status = 500;
        error_body(&j->out, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < q->len; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        qrm_scores sc = {0};
        int rc = qrm_tokenize(c, q->u.items[i].u.str, q->u.items[i].len, 0, &ids, &n);
        if (!rc && n == 0) {
            snprintf(err, sizeof err, "query %u: encodes to no tokens", i);
        } else if (!rc && !(rc = qrm_score(c, ids, n, &sc))) {
            r[i] = s->info.per_step ? qrm_aggregate_steps(sc.values, sc.n_points, s->cfg.opts.aggregate)
                                    : sc.values[s->cfg.opts.rank_by];
        } else {
            snprintf(err, sizeof err, "query %u: %s", i, qrm_ctx_error(c));
        }
        qrm_scores_free(&sc);
        free(ids);
        j->tokens += n;
        j->lines++;
        if (rc || n == 0) {
            j->errors++;
            j->status = 422;
            error_body(&j->out, err);
            goto out;
        }
    }
    j->status = 200;
    for (int k = 0; k < 2; k++) {
        qj_buf_puts(&j->out, k ? "],\"scores\":[" : "{\"rewards\":[");
        for (uint32_t i = 0; i < q->len; i++) {
            if (i) qj_buf_puts(&j->out, ",");
            qrm_put_num(&j->out, r[i]);
        }
    }
    qj_buf_puts(&j->out, "]}");
out:
    free(r);
    qj_free(d);
}

static void *worker_main(void *arg) {
    void **a = arg;
    qrm_server *s = a[0];
    qrm_ctx *c = a[1];
    free(a);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->workers_exit) pthread_cond_wait(&s->work_cv, &s->mu);
        job *j = s->head;
        if (!j) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        s->depth--, s->busy++;
        pthread_mutex_unlock(&s->mu);
        if (s->cfg.job_hook) s->cfg.job_hook(s->cfg.hook_arg);
        if (j->kind == JOB_SCORE) run_score(s, c, j);
        else run_reward(s, c, j);
        if (j->out.oom) {
            j->out.oom = 0;
            j->status = 500;
            error_body(&j->out, "out of memory");
        }
        qrm_metrics_scored(&s->metrics, j->lines, j->errors, j->tokens);
        pthread_mutex_lock(&s->mu);
        s->busy--;
        j->done = 1;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* ---- connections (reader threads) ---- */

typedef struct {
    qrm_server *s;
    int fd;
    char *buf;
    size_t len, cap;
} conn;

/* Waits until fd can be read (or written, with out) or the deadline passes:
 * 1 ready, 0 timed out, -1 the server stops (only watched when idle). */
static int wait_fd(qrm_server *s, int fd, int out, double deadline, int idle) {
    for (;;) {
        double left = deadline - qrm_now();
        if (left <= 0) return 0;
        struct pollfd p[2] = {{.fd = fd, .events = out ? POLLOUT : POLLIN},
                              {.fd = s->wake[0], .events = POLLIN}};
        int ms = left > 1000 ? 1000000 : (int)(left * 1000) + 1;
        int n = poll(p, idle ? 2 : 1, ms);
        if (n < 0 && errno != EINTR) return 0;
        if (n > 0 && p[0].revents) return 1;
        if (n > 0 && idle && p[1].revents) return -1;
    }
}

static int send_all(qrm_server *s, int fd, const char *p, size_t n) {
    double deadline = qrm_now() + s->cfg.timeout;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            p += k, n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(s, fd, 1, deadline, 0) != 1) return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static int respond(qrm_server *s, int fd, int status, const char *ctype, const char *body,
                   size_t len, int keep, const char *extra) {
    qj_buf h = {0};
    qj_buf_printf(&h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n%s\r\n",
                  status, qrm_http_reason(status), ctype, len, keep ? "keep-alive" : "close",
                  extra ? extra : "");
    qj_buf_put(&h, body, len);
    int rc = h.oom ? -1 : send_all(s, fd, h.buf, h.len);
    qj_buf_free(&h);
    return rc;
}

static int respond_json(qrm_server *s, int fd, int status, const qj_buf *b, int keep, const char *extra) {
    return respond(s, fd, status, "application/json", b->buf ? b->buf : "", b->len, keep, extra);
}

static int respond_error(qrm_server *s, int fd, int status, const char *msg, int keep, const char *extra) {
    qj_buf b = {0};
    error_body(&b, msg);
    int rc = respond_json(s, fd, status, &b, keep, extra);
    qj_buf_free(&b);
    return rc;
}

/* Reads more bytes into c->buf: 1 read, 0 the peer closed, -1 an error. */
static int read_more(conn *c, size_t limit) {
    if (c->len == c->cap) {
        size_t cap = c->cap * 2 > limit ? limit : c->cap * 2;
        char *nb = cap > c->cap ? realloc(c->buf, cap) : NULL;
        if (!nb) return -1;
        c->buf = nb, c->cap = cap;
    }
    for (;;) {
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (k > 0) {
            c->len += (size_t)k;
            return 1;
        }
        if (k == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
        return -1;
    }
}

static const char *head_messages(int status) {
    switch (status) {
    case 431: return "request line and headers too large";
    case 414: return "request target too long";
    case 501: return "method not implemented";
    case 505: return "only HTTP/1.x is served";
    default: return "malformed request";
    }
}

static void health(qrm_server *s, qj_buf *b) {
    qj_buf_puts(b, "{\"status\":\"ok\",\"model\":");
    qj_buf_put_string(b, s->cfg.model_name, strlen(s->cfg.model_name));
    qj_buf_printf(b, ",\"arch\":\"%s\",\"head\":\"%s\",\"outputs\":[", s->info.arch, s->info.head);
    for (int i = 0; i < s->info.n_outputs; i++) {
        const char *n = qrm_model_output_name(s->model, i);
        if (i) qj_buf_puts(b, ",");
        qj_buf_put_string(b, n, strlen(n));
    }
    pthread_mutex_lock(&s->mu);
    qj_buf_printf(b, "],\"workers\":%d,\"queue_depth\":%d}", s->n_workers, s->depth);
    pthread_mutex_unlock(&s->mu);
}

/* Queues a scoring request and waits for its answer; 503 when the queue is full. */
static int run_job(qrm_server *s, job *j) {
    pthread_cond_init(&j->cv, NULL);
    pthread_mutex_lock(&s->mu);
    if (s->depth >= s->cfg.queue) {
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&j->cv);
        return -1;
    }
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->depth++;
    pthread_cond_signal(&s->work_cv);
    while (!j->done) pthread_cond_wait(&j->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&j->cv);
    return 0;
}

/* One request whose head and body are in c->buf; returns the status sent,
 * or -1 when the answer could not be written. *keep may be cleared. */
static int dispatch(conn *c, const qrm_http_request *r, const char *body, size_t blen, int *keep,
                    int path) {
    qrm_server *s = c->s;
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    if (path == QRM_PATH_HEALTH || path == QRM_PATH_METRICS) {
        if (!get) return respond_error(s, c->fd, 405, "use GET", *keep, "Allow: GET\r\n") ? -1 : 405;
        qj_buf b = {0};
        int rc;
        if (path == QRM_PATH_HEALTH) {
            health(s, &b);
            rc = respond_json(s, c->fd, 200, &b, *keep, NULL);
        } else {
            pthread_mutex_lock(&s->mu);
            int depth = s->depth, busy = s->busy, conns = s->conns;
            pthread_mutex_unlock(&s->mu);
            qrm_metrics_write(&s->metrics, &b, depth, s->cfg.queue, busy, s->n_workers, conns);
            rc = respond(s, c->fd, 200, "text/plain; version=0.0.4; charset=utf-8", b.buf ? b.buf : "",
                         b.len, *keep, NULL);
        }
        qj_buf_free(&b);
        return rc ? -1 : 200;
    }
    if (path == QRM_PATH_OTHER)
        return respond_error(s, c->fd, 404, "no such endpoint: POST /score, POST /get_reward (or /), GET /health, GET /metrics",
                             *keep, NULL) ? -1 : 404;
    if (!post) return respond_error(s, c->fd, 405, "use POST", *keep, "Allow: POST\r\n") ? -1 : 405;
    /* a malformed body is the client's error as a whole (400), unlike a
     * line that parses but cannot be scored (a result with "error") */
    char err[256], jerr[200];
    qj_doc *d = qj_parse(body, blen, jerr, sizeof jerr);
    qj_type t = d ? qj_root(d)->type : QJ_NULL;
    qj_free(d);
    if (!d || (t != QJ_OBJECT && t != QJ_ARRAY) || (path == QRM_PATH_REWARD && t != QJ_OBJECT)) {
        if (d) snprintf(err, sizeof err, path == QRM_PATH_REWARD ? "the body must be a JSON object"
                                                                 : "the body must be a JSON object or an array of objects");
        else snprintf(err, sizeof err, "invalid JSON: %s", jerr);
        return respond_error(s, c->fd, 400, err, *keep, NULL) ? -1 : 400;
    }
    job j = {.kind = path == QRM_PATH_SCORE ? JOB_SCORE : JOB_REWARD, .body = body, .len = blen};
    if (run_job(s, &j))
        return respond_error(s, c->fd, 503, "the queue is full; retry later", *keep, "Retry-After: 1\r\n") ? -1 : 503;
    int rc = respond_json(s, c->fd, j.status, &j.out, *keep, NULL);
    qj_buf_free(&j.out);
    return rc ? -1 : j.status;
}

static void serve_conn(conn *c) {
    qrm_server *s = c->s;
    size_t limit = s->cfg.max_head + s->cfg.max_body + 1;
    c->cap = 4096;
    c->buf = malloc(c->cap);
    if (!c->buf) return;
    for (;;) {
        qrm_http_request r;
        double t0 = 0, deadline = 0;
        int pr, path = QRM_PATH_OTHER;
        if (c->len) t0 = qrm_now(), deadline = t0 + s->cfg.timeout;
        while ((pr = qrm_http_parse(c->buf, c->len, s->cfg.max_head, &r)) == 0) {
            int idle = c->len == 0;
            int w = wait_fd(s, c->fd, 0, idle ? qrm_now() + s->cfg.timeout : deadline, idle);
            if (w < 0 || (w == 0 && idle)) return; /* stopping, or an idle keep-alive expired */
            if (w == 0) {
                qrm_metrics_event(&s->metrics, &s->metrics.timeouts);
                respond_error(s, c->fd, 408, "request not received in time", 0, NULL);
                qrm_metrics_request(&s->metrics, QRM_PATH_OTHER, 408, qrm_now() - t0);
                return;
            }
            int rm = read_more(c, limit);
            if (rm <= 0) {
                if (c->len) qrm_metrics_event(&s->metrics, &s->metrics.disconnects);
                return;
            }
            if (idle && c->len) t0 = qrm_now(), deadline = t0 + s->cfg.timeout;
        }
        if (pr < 0) {
            respond_error(s, c->fd, -pr, head_messages(-pr), 0, NULL);
            qrm_metrics_request(&s->metrics, QRM_PATH_OTHER, -pr, qrm_now() - t0);
            return;
        }
        path = qrm_metrics_path(r.path);
        int status = 0, keep = r.keep_alive;
        long long cl = r.content_length < 0 ? 0 : r.content_length;
        /* without a length the body's end is unknown: refuse and close */
        if (r.transfer_encoding)
            status = 501, respond_error(s, c->fd, 501, "Transfer-Encoding (chunked bodies) is not supported: send Content-Length", 0, NULL);
        else if (!strcmp(r.method, "POST") && r.content_length < 0)
            status = 411, respond_error(s, c->fd, 411, "POST needs a Content-Length", 0, NULL);
        else if ((unsigned long long)cl > s->cfg.max_body) {
            char m[96];
            snprintf(m, sizeof m, "the body is longer than %zu bytes (--max-body)", s->cfg.max_body);
            status = 413, respond_error(s, c->fd, 413, m, 0, NULL);
        }
        if (status) {
            qrm_metrics_request(&s->metrics, path, status, qrm_now() - t0);
            return;
        }
        size_t need = r.head_len + (size_t)cl;
        if (r.expect_continue && c->len < need &&
            send_all(s, c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
            return;
        while (c->len < need) {
            int w = wait_fd(s, c->fd, 0, deadline, 0);
            if (w == 0) {
                qrm_metrics_event(&s->metrics, &s->metrics.timeouts);
                respond_error(s, c->fd, 408, "request body not received in time", 0, NULL);
                qrm_metrics_request(&s->metrics, path, 408, qrm_now() - t0);
                return;
            }
            if (read_more(c, limit) <= 0) {
                qrm_metrics_event(&s->metrics, &s->metrics.disconnects);
                return;
            }
        }
        if (is_stopping(s)) keep = 0;
        status = dispatch(c, &r, c->buf + r.head_len, (size_t)cl, &keep, path);
        if (status < 0) return;
        qrm_metrics_request(&s->metrics, path, status, qrm_now() - t0);
        if (!keep) return;
        memmove(c->buf, c->buf + need, c->len - need);
        c->len -= need;
    }
}

static void *conn_main(void *arg) {
    conn *c = arg;
    qrm_server *s = c->s;
    serve_conn(c);
    /* A lingering close: closing with unread bytes (the rest of a body
     * refused with 413, say) sends a reset, which can destroy the answer
     * before the client reads it. So: FIN first, then discard what the
     * client still sends until it closes, for a second at most. */
    shutdown(c->fd, SHUT_WR);
    double deadline = qrm_now() + (s->cfg.timeout < 1 ? s->cfg.timeout : 1);
    char sink[4096];
    while (wait_fd(s, c->fd, 0, deadline, 0) == 1 && recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
    close(c->fd);
    free(c->buf);
    free(c);
    pthread_mutex_lock(&s->mu);
    if (--s->conns == 0) pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *acceptor_main(void *arg) {
    qrm_server *s = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* a reader parses heads and copies bytes: a small stack is plenty */
    pthread_attr_setstacksize(&attr, 256u << 10);
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        if (!p[0].revents) continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            /* out of descriptors: let the readers close some */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) usleep(10000);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&s->mu);
        int full = s->conns >= s->cfg.max_conns;
        if (!full) s->conns++;
        pthread_mutex_unlock(&s->mu);
        conn *c = full ? NULL : calloc(1, sizeof *c);
        pthread_t t;
        if (c) {
            c->s = s, c->fd = fd;
            if (pthread_create(&t, &attr, conn_main, c) == 0) continue;
            free(c);
        }
        if (!full) {
            pthread_mutex_lock(&s->mu);
            if (--s->conns == 0) pthread_cond_broadcast(&s->idle_cv);
            pthread_mutex_unlock(&s->mu);
        }
        qrm_metrics_event(&s->metrics, &s->metrics.rejected_conns);
#define BUSY_BODY "{\"error\":\"too many open connections\"}"
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 37\r\nConnection: close\r\nRetry-After: 1\r\n\r\n" BUSY_BODY;
        _Static_assert(sizeof BUSY_BODY - 1 == 37, "the Content-Length above");
        send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        shutdown(fd, SHUT_WR);
        /* what the client sent already, read, so the close sends no reset
         * (the acceptor cannot wait for more: that is a reader's job) */
        char sink[4096];
        for (int k = 0; k < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; k++) {}
        close(fd);
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

/* ---- start and stop ---- */

static int listen_on(const char *host, int port, int *bound, char *err, size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE},
                    *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g) {
        snprintf(err, errlen, "--host '%s': %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 512)) {
            snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void free_server(qrm_server *s) {
    for (int i = 0; s->ctx && i < s->n_workers; i++) qrm_ctx_free(s->ctx[i]);
    free(s->ctx);
    free(s->workers);
    if (s->lfd >= 0) close(s->lfd);
    if (s->wake[0] >= 0) close(s->wake[0]), close(s->wake[1]);
    qrm_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->idle_cv);
    free(s);
}

static void join_workers(qrm_server *s) {
    pthread_mutex_lock(&s->mu);
    s->workers_exit = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_started; i++) pthread_join(s->workers[i], NULL);
}

qrm_server *qrm_server_start(const qrm_model *m, const qrm_serve_config *cfg, char *err, size_t errlen) {
    qrm_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->model = m;
    s->lfd = -1, s->wake[0] = s->wake[1] = -1;
    qrm_model_get_info(m, &s->info);
    qrm_metrics_init(&s->metrics);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    s->n_workers = cfg->parallel;
    s->ctx = calloc((size_t)s->n_workers, sizeof *s->ctx);
    s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
    if (!s->ctx || !s->workers || pipe2(s->wake, O_CLOEXEC)) {
        snprintf(err, errlen, "out of memory");
        free_server(s);
        return NULL;
    }
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = cfg->threads ? cfg->threads : qrm_cpu_count() / cfg->parallel;
    if (p.n_threads < 1) p.n_threads = 1;
    p.max_tokens = cfg->max_tokens;
    p.kv_type = cfg->kv_type;
    for (int i = 0; i < s->n_workers; i++)
        if (!(s->ctx[i] = qrm_ctx_new(m, &p, err, errlen))) {
            free_server(s);
            return NULL;
        }
    s->lfd = listen_on(cfg->host, cfg->port, &s->port, err, errlen);
    if (s->lfd < 0) {
        free_server(s);
        return NULL;
    }
    for (; s->n_started < s->n_workers; s->n_started++) {
        void **a = malloc(2 * sizeof *a);
        if (a) a[0] = s, a[1] = s->ctx[s->n_started];
        if (!a || pthread_create(&s->workers[s->n_started], NULL, worker_main, a)) {
            free(a);
            snprintf(err, errlen, "cannot start a worker thread");
            join_workers(s);
            free_server(s);
            return NULL;
        }
    }
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s)) {
        snprintf(err, errlen, "cannot start the acceptor thread");
        join_workers(s);
        free_server(s);
        return NULL;
    }
    return s;
}

void qrm_server_stop(qrm_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    /* never read: it stays readable, waking the acceptor and idle readers */
    if (write(s->wake[1], "x", 1) < 0) perror("qrm serve: wake");
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    s->lfd = -1;
    pthread_mutex_lock(&s->mu);
    while (s->conns > 0) pthread_cond_wait(&s->idle_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    join_workers(s);
    free_server(s);
}

/* ---- the command ---- */

enum {
    V_MODEL, V_HOST, V_PORT, V_THREADS, V_PARALLEL, V_QUEUE, V_MAX_BODY, V_MAX_HEADER, V_TIMEOUT,
    V_MAX_CONNS, V_MAX_TOKENS, V_KV, V_AGGREGATE, V_RANK_BY, V_LOAD, V_N
};

int qrm_cli_serve(int argc, char **argv) {
    qrm_serve_config cfg;
    qrm_serve_config_default(&cfg);
    const cli_opt opts[V_N] = {
        [V_MODEL] = {"--model", 'm', CLI_STRING, "FILE.qrm", "required", "the model"},
        [V_HOST] = {"--host", 0, CLI_STRING, "ADDR", "127.0.0.1",
                    "the address to listen on (0.0.0.0 for every interface)"},
        [V_PORT] = {"--port", 0, CLI_INT, "N", "8080", "the TCP port (0: any free port, printed on stderr)",
                    .lo = 0, .hi = 65535},
        [V_THREADS] = {"--threads", 't', CLI_INT, "N", "0: the cores divided among the contexts",
                       "threads per context", .lo = 0, .hi = 4L * qrm_cpu_count()},
        [V_PARALLEL] = {"--parallel", 0, CLI_INT, "P", "1", "scoring contexts, each scoring one request at a time",
                        .lo = 1, .hi = 256},
        [V_QUEUE] = {"--queue", 0, CLI_INT, "Q", "64", "requests that may wait for a context; beyond, 503",
                     .lo = 1, .hi = 1L << 20},
        [V_MAX_BODY] = {"--max-body", 0, CLI_INT, "BYTES", "16777216", "the largest request body; beyond, 413",
                        .lo = 1, .hi = 1L << 30},
        [V_MAX_HEADER] = {"--max-header", 0, CLI_INT, "BYTES", "16384",
                          "the largest request line and headers; beyond, 431", .lo = 256, .hi = 1L << 20},
        [V_TIMEOUT] = {"--timeout", 0, CLI_DOUBLE, "SECONDS", "30",
                       "to receive a whole request (else 408), and an idle keep-alive", .dlo = 0.001,
                       .dhi = 86400},
        [V_MAX_CONNS] = {"--max-conns", 0, CLI_INT, "N", "256", "open connections; beyond, 503 and close",
                         .lo = 1, .hi = 65536},
        [V_MAX_TOKENS] = {"--max-tokens", 'c', CLI_INT, "N", "the model's context",
                          "each context's KV cache cap in tokens", .lo = 1, .hi = 1L << 30, .alt = "--ctx-size"},
        [V_KV] = {"--kv", 0, CLI_CHOICE, NULL, "f16 for int8/int4 models, f32 otherwise", "KV cache type",
                  .choices = "f32|f16|q8"},
        [V_AGGREGATE] = {"--aggregate", 0, CLI_CHOICE, NULL, "min", "a PRM's steps into one score",
                         .choices = "min|last|mean|prod"},
        [V_RANK_BY] = {"--rank-by", 0, CLI_STRING, "NAME", "the first output", "the output /get_reward returns"},
        [V_LOAD] = CLI_OPT_LOAD,
    };
    const cli_spec spec = {
        .prog = "qrm serve",
        .about = "an HTTP/1.1 scoring server",
        .usage = "qrm serve -m FILE.qrm [--host ADDR] [--port N] [-t N] [--parallel P] [--queue Q]\n"
                 "[--max-body BYTES] [--max-header BYTES] [--timeout SECONDS] [--max-conns N]\n"
                 "[--max-tokens N] [--kv f32|f16|q8] [--aggregate min|last|mean|prod] [--rank-by NAME]\n"
                 "[--load map|copy]",
        .opts = opts,
        .n_opts = V_N,
        .epilog =
            "Endpoints: POST /score (a JSONL line's object, or an array of them: the results of `qrm score\n"
            "--input`), POST /get_reward and POST / (OpenRLHF --remote_rm_url: {\"query\": [text...]} ->\n"
            "{\"rewards\": [...], \"scores\": [...]}), GET /health, GET /metrics (Prometheus).\n"
            "SIGTERM or SIGINT: stop accepting, answer the requests received, exit 0.\n",
    };
    cli_val v[V_N];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    const char *model = v[V_MODEL].str, *rank_by = v[V_RANK_BY].str;
    if (v[V_HOST].count) cfg.host = v[V_HOST].str;
    if (v[V_PORT].count) cfg.port = (int)v[V_PORT].i;
    if (v[V_THREADS].count) cfg.threads = (int)v[V_THREADS].i;
    if (v[V_PARALLEL].count) cfg.parallel = (int)v[V_PARALLEL].i;
    if (v[V_QUEUE].count) cfg.queue = (int)v[V_QUEUE].i;
    if (v[V_MAX_BODY].count) cfg.max_body = (size_t)v[V_MAX_BODY].i;
    if (v[V_MAX_HEADER].count) cfg.max_head = (size_t)v[V_MAX_HEADER].i;
    if (v[V_TIMEOUT].count) cfg.timeout = v[V_TIMEOUT].d;
    if (v[V_MAX_CONNS].count) cfg.max_conns = (int)v[V_MAX_CONNS].i;
    if (v[V_MAX_TOKENS].count) cfg.max_tokens = (size_t)v[V_MAX_TOKENS].i;
    if (v[V_KV].count) cfg.kv_type = v[V_KV].choice == 0 ? QRM_KV_F32 : v[V_KV].choice == 1 ? QRM_KV_F16 : QRM_KV_Q8;
    if (v[V_AGGREGATE].count) cfg.opts.aggregate = (qrm_aggregate)v[V_AGGREGATE].choice;
    if (!model) return cli_usage_error(&spec, "no model: give -m FILE.qrm");
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open_with(model, cli_load(&v[V_LOAD]), err, sizeof err);
    if (!m) {
        fprintf(stderr, "qrm: %s\n", err);
        return 1;
    }
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    if (rank_by) {
        cfg.opts.rank_by = -1;
        for (int i = 0; i < info.n_outputs; i++)
            if (!strcmp(qrm_model_output_name(m, i), rank_by)) cfg.opts.rank_by = i;
        if (cfg.opts.rank_by < 0 || info.per_step) {
            fprintf(stderr, "qrm: --rank-by '%s': %s\n", rank_by,
                    info.per_step ? "a process reward model ranks by --aggregate"
                                  : "not one of the model's outputs (qrm info -m lists them)");
            qrm_model_close(m);
            return 1;
        }
    }
    const char *slash = strrchr(model, '/');
    cfg.model_name = slash ? slash + 1 : model;
    /* the signals go to sigwait below, never to a worker mid-request */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    qrm_server *s = qrm_server_start(m, &cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qrm: %s\n", err);
        qrm_model_close(m);
        return 1;
    }
    fprintf(stderr, "qrm serve: listening on %s:%d (%s, %d context%s, queue %d)\n", cfg.host,
            qrm_server_port(s), cfg.model_name, cfg.parallel, cfg.parallel > 1 ? "s" : "", cfg.queue);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    fprintf(stderr, "qrm serve: %s: finishing the requests received\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    qrm_server_stop(s);
    qrm_model_close(m);
    fprintf(stderr, "qrm serve: stopped\n");
    return 0;
}
