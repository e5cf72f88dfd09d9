/* `qrm serve`: an HTTP/1.1 scoring server (tools/serve.c), as library calls
 * so that tests and the benchmark can run it in-process.
 *
 * One shared model, P scoring contexts each owned by one worker thread, a
 * bounded queue of waiting requests, an acceptor thread and one reader
 * thread per connection (at most max_conns): a slow client holds only its
 * own reader, never a context. */
#ifndef QRM_SERVE_H
#define QRM_SERVE_H

#include <stddef.h>

#include "qrm.h"
#include "score_jsonl.h"

typedef struct {
    const char *host;       /* "127.0.0.1" */
    int port;               /* 8080; 0 picks a free port (qrm_server_port) */
    int threads;            /* per context; 0: the cores divided among the contexts */
    int parallel;           /* contexts, one worker thread each: 1 */
    int queue;              /* requests that may wait for a context: 64 */
    size_t max_body;        /* bytes: 16 MiB */
    size_t max_head;        /* bytes of request line and headers: 16 KiB */
    double timeout;         /* seconds to receive a request, and an idle keep-alive: 30 */
    int max_conns;          /* open connections: 256 */
    size_t max_tokens;      /* each context's KV cap (0: the model's) */
    int kv_type;            /* QRM_KV_* */
    const char *model_name; /* for /health */
    qrm_score_opts opts;    /* how lines are scored (aggregate, rank_by) */
    /* Called by a worker before it scores each request (tests hold workers
     * with it to fill the queue); NULL normally. */
    void (*job_hook)(void *arg);
    void *hook_arg;
} qrm_serve_config;

typedef struct qrm_server qrm_server;

void qrm_serve_config_default(qrm_serve_config *c);
/* Binds, creates the contexts and starts the threads; NULL and err on
 * failure. m must outlive the server. */
qrm_server *qrm_server_start(const qrm_model *m, const qrm_serve_config *c, char *err, size_t errlen);
int qrm_server_port(const qrm_server *s);
/* Stops accepting, lets every request already received (or being received)
 * be answered, then joins the threads and frees the server. */
void qrm_server_stop(qrm_server *s);

/* `qrm serve ARGS...`; returns the exit status. */
int qrm_cli_serve(int argc, char **argv);

#endif
