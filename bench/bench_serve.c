/* `qrm-bench serve`: the HTTP server in-process on loopback, N requests
 * from C concurrent keep-alive clients, against the CLI's loop
 * (qrm_score_line on one context) over the same lines. Every answer is
 * compared with the CLI's line, so the figure is for identical results. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "cli_opts.h"
#include "json.h"
#include "platform.h"
#include "qrm.h"
#include "score_jsonl.h"
#include "serve.h"
#include "synth_model.h"

int qrm_bench_serve(int argc, char **argv);

typedef struct {
    int port, n;
    char **lines, **want;
    atomic_int next, mismatches, failures;
    double *latency;
} load;

static int dial_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request and its answer's body on a keep-alive connection (-1 on failure). */
static int roundtrip(int fd, const char *line, qj_buf *in, qj_buf *body) {
    qj_buf req = {0};
    qj_buf_printf(&req, "POST /score HTTP/1.1\r\nHost: b\r\nContent-Length: %zu\r\n\r\n%s", strlen(line), line);
    size_t off = 0;
    while (off < req.len) {
        ssize_t k = send(fd, req.buf + off, req.len - off, MSG_NOSIGNAL);
        if (k <= 0) break;
        off += (size_t)k;
    }
    qj_buf_free(&req);
    if (off < req.len) return -1;
    char tmp[8192];
    for (;;) {
        char *e = in->buf ? strstr(in->buf, "\r\n\r\n") : NULL;
        if (e) {
            size_t hl = (size_t)(e + 4 - in->buf);
            const char *cl = strcasestr(in->buf, "Content-Length:");
            size_t bl = cl ? strtoul(cl + 15, NULL, 10) : 0;
            if (in->len >= hl + bl) {
                int status = atoi(in->buf + 9);
                body->len = 0;
                qj_buf_put(body, in->buf + hl, bl);
                memmove(in->buf, in->buf + hl + bl, in->len - hl - bl);
                in->len -= hl + bl;
                in->buf[in->len] = 0;
                return status == 200 ? 0 : -1;
            }
        }
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k <= 0) return -1;
        qj_buf_put(in, tmp, (size_t)k);
    }
}

static void *client_main(void *arg) {
    load *l = arg;
    int fd = dial_port(l->port);
    qj_buf in = {0}, body = {0};
    int i;
    while ((i = atomic_fetch_add(&l->next, 1)) < l->n) {
        double t0 = qrm_bench_now();
        if (fd < 0 || roundtrip(fd, l->lines[i], &in, &body)) {
            atomic_fetch_add(&l->failures, 1);
            continue;
        }
        l->latency[i] = qrm_bench_now() - t0;
        if (strcmp(body.buf, l->want[i])) atomic_fetch_add(&l->mismatches, 1);
    }
    if (fd >= 0) close(fd);
    qj_buf_free(&in), qj_buf_free(&body);
    return NULL;
}

/* CPU seconds of the whole process: with wall time, how much of the
 * machine a phase had (other load on a shared machine shows here). */
static double process_cpu(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { W_MODEL, W_SHAPE, W_QUANT, W_REQUESTS, W_CLIENTS, W_LEN, W_PARALLEL, W_THREADS, W_MODELS_DIR, W_JSON, W_N };

int qrm_bench_serve(int argc, char **argv) {
    static const cli_opt opts[W_N] = {
        [W_MODEL] = {"--model", 'm', CLI_STRING, "FILE.qrm", "a synthetic --shape/--quant model", "the model served",
                     .group = 1},
        [W_SHAPE] = {"--shape", 0, CLI_CHOICE, NULL, "qwen3-0.6b", "the synthetic model's shape",
                     .choices = "qwen3-0.6b|llama-1b", .group = 1},
        [W_QUANT] = {"--quant", 0, CLI_CHOICE, NULL, "int8", "the synthetic model's weights",
                     .choices = "int8|int4|f16|f32"},
        [W_REQUESTS] = {"--requests", 'n', CLI_INT, "N", "64", "id lines sent", .lo = 1, .hi = 1000000},
        [W_CLIENTS] = {"--clients", 'c', CLI_INT, "C", "4", "keep-alive clients sending at once", .lo = 1,
                       .hi = 1000000},
        [W_LEN] = {"--len", 0, CLI_INT, "L", "64", "tokens per line", .lo = 1, .hi = 1000000},
        [W_PARALLEL] = {"--parallel", 0, CLI_INT, "P", "1", "the server's scoring contexts", .lo = 1, .hi = 256},
        [W_THREADS] = {"--threads", 't', CLI_INT, "N", "0: the cores divided among the contexts",
                       "threads per context", .lo = 0, .hi = 4096},
        [W_MODELS_DIR] = {"--models-dir", 0, CLI_STRING, "DIR", "build/bench-models",
                          "where the synthetic models are written once and reused"},
        [W_JSON] = {"--json", 0, CLI_FLAG, NULL, NULL, "only JSON on stdout (the table goes to stderr)"},
    };
    static const char *const groups[] = {"both choose the model: give one"};
    static const cli_spec spec = {
        .prog = "qrm-bench serve",
        .usage = "qrm-bench serve [-m FILE.qrm | --shape S --quant Q] [-n N] [-c CLIENTS] [--len L]\n"
                 "[--parallel P] [-t THREADS per context] [--models-dir DIR] [--json]",
        .about = "qrm serve in-process on loopback against the CLI's qrm_score_line loop",
        .opts = opts, .n_opts = W_N, .groups = (const char **)groups};
    cli_val v[W_N];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    static const char *const shapes[] = {"qwen3-0.6b", "llama-1b"}, *const quants[] = {"int8", "int4", "f16", "f32"};
    const char *path = v[W_MODEL].str, *shape = shapes[v[W_SHAPE].count ? v[W_SHAPE].choice : 0],
               *quant = quants[v[W_QUANT].count ? v[W_QUANT].choice : 0];
    if (path && v[W_QUANT].count) return cli_usage_error(&spec, "--quant is the synthetic model's: not with -m");
    int n = v[W_REQUESTS].count ? (int)v[W_REQUESTS].i : 64, clients = v[W_CLIENTS].count ? (int)v[W_CLIENTS].i : 4,
        len = v[W_LEN].count ? (int)v[W_LEN].i : 64, parallel = v[W_PARALLEL].count ? (int)v[W_PARALLEL].i : 1,
        threads = v[W_THREADS].count ? (int)v[W_THREADS].i : 0, json = v[W_JSON].count > 0;
    if (v[W_MODELS_DIR].count) qrm_synth_models_dir = v[W_MODELS_DIR].str;
    char err[QRM_ERR_MAX], synth[512];
    if (!path) {
        if (qrm_synth_model_cached(shape, quant, "linear", synth, sizeof synth, err, sizeof err)) {
            fprintf(stderr, "qrm-bench serve: %s\n", err);
            return 1;
        }
        path = synth;
    }
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    if (!m) {
        fprintf(stderr, "qrm-bench serve: %s\n", err);
        return 1;
    }
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    if (threads == 0) threads = qrm_cpu_count() / parallel > 0 ? qrm_cpu_count() / parallel : 1;
    /* the lines: random ids, so any model (a synthetic one has no tokenizer) */
    char **lines = calloc((size_t)n, sizeof *lines), **want = calloc((size_t)n, sizeof *want);
    unsigned seed = 12345;
    int vocab = info.vocab_size > 1000 ? info.vocab_size - 1000 : info.vocab_size;
    for (int i = 0; i < n; i++) {
        qj_buf b = {0};
        qj_buf_printf(&b, "{\"id\":%d,\"ids\":[", i);
        for (int k = 0; k < len; k++) {
            seed = seed * 1664525u + 1013904223u;
            qj_buf_printf(&b, "%s%u", k ? "," : "", (seed >> 8) % (unsigned)vocab);
        }
        qj_buf_puts(&b, "]}");
        lines[i] = b.buf;
    }
    /* the CLI: one context with every thread the server uses, line after line */
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = threads * parallel;
    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
    if (!c) {
        fprintf(stderr, "qrm-bench serve: %s\n", err);
        return 1;
    }
    qrm_score_opts o = {.mode = QRM_KEEP_ALL};
    size_t nt = 0;
    qj_buf warm = {0};
    qrm_score_line(c, lines[0], strlen(lines[0]), &o, &warm, &nt);
    qj_buf_free(&warm);
    nt = 0;
    double t0 = qrm_bench_now(), c0 = process_cpu();
    for (int i = 0; i < n; i++) {
        qj_buf b = {0};
        qrm_score_line(c, lines[i], strlen(lines[i]), &o, &b, &nt);
        want[i] = b.buf;
    }
    double cli_s = qrm_bench_now() - t0, cli_cpu = process_cpu() - c0;

    qrm_serve_config cfg;
    qrm_serve_config_default(&cfg);
    cfg.port = 0, cfg.parallel = parallel, cfg.threads = threads;
    cfg.queue = clients + 1, cfg.model_name = "bench";
    qrm_server *s = qrm_server_start(m, &cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qrm-bench serve: %s\n", err);
        return 1;
    }
    load l = {.port = qrm_server_port(s), .n = n, .lines = lines, .want = want};
    l.latency = calloc((size_t)n, sizeof *l.latency);
    pthread_t *t = calloc((size_t)clients, sizeof *t);
    /* one warm-up request, as the CLI had its warm-up line */
    {
        load w = {.port = l.port, .n = 1, .lines = lines, .want = want, .latency = l.latency};
        client_main(&w);
    }
    t0 = qrm_bench_now(), c0 = process_cpu();
    for (int i = 0; i < clients; i++) pthread_create(&t[i], NULL, client_main, &l);
    for (int i = 0; i < clients; i++) pthread_join(t[i], NULL);
    double srv_s = qrm_bench_now() - t0, srv_cpu = process_cpu() - c0;
    qrm_server_stop(s);
    /* the CLI again, after the server: on a shared machine the load drifts,
     * and the faster of the two CLI runs keeps the ratio conservative */
    t0 = qrm_bench_now(), c0 = process_cpu();
    for (int i = 0; i < n; i++) {
        qj_buf b = {0};
        size_t nt2 = 0;
        qrm_score_line(c, lines[i], strlen(lines[i]), &o, &b, &nt2);
        qj_buf_free(&b);
    }
    double cli2_s = qrm_bench_now() - t0, cli2_cpu = process_cpu() - c0;
    if (cli2_s < cli_s) cli_s = cli2_s, cli_cpu = cli2_cpu;
    qrm_ctx_free(c);
    int failures = atomic_load(&l.failures), mism = atomic_load(&l.mismatches);
    qsort(l.latency, (size_t)n, sizeof *l.latency, cmp_d);
    double p50 = l.latency[(n - 1) / 2], p99 = l.latency[(int)ceil(0.99 * n) - 1];
    printf("model: %s (%s, %s, %d layers, hidden %d), %d lines of %d tokens\n", path, info.arch, info.quant,
           info.n_layers, info.hidden_size, n, len);
    printf("server: %d context%s x %d thread%s, %d clients: %.2f requests/s, %.0f tokens/s, latency p50 %.1f ms, p99 %.1f ms\n",
           parallel, parallel > 1 ? "s" : "", threads, threads > 1 ? "s" : "", clients, n / srv_s,
           (double)nt / srv_s, p50 * 1e3, p99 * 1e3);
    printf("CLI loop (qrm_score_line, one context x %d threads, the faster of a run before and after): %.2f lines/s, %.0f tokens/s\n", threads * parallel,
           n / cli_s, (double)nt / cli_s);
    printf("CPU seconds used (all threads): server %.2f (%.2f per wall second), CLI %.2f (%.2f per wall second)\n",
           srv_cpu, srv_cpu / srv_s, cli_cpu, cli_cpu / cli_s);
    printf("server time / CLI time: %.3f (%.3f s / %.3f s); answers identical to the CLI's: %d of %d%s\n",
           srv_s / cli_s, srv_s, cli_s, n - mism - failures, n, failures ? " (some requests failed)" : "");
    if (json)
        fprintf(qrm_bench_json, "{\"bench\":\"serve\",\"n\":%d,\"len\":%d,\"clients\":%d,\"parallel\":%d,\"threads\":%d,"
               "\"rps\":%.4g,\"tokens_per_s\":%.4g,\"p50_ms\":%.4g,\"p99_ms\":%.4g,\"cli_s\":%.4g,\"server_s\":%.4g,"
               "\"ratio\":%.4g,\"mismatches\":%d,\"failures\":%d}\n",
               n, len, clients, parallel, threads, n / srv_s, (double)nt / srv_s, p50 * 1e3, p99 * 1e3, cli_s,
               srv_s, srv_s / cli_s, mism, failures);
    for (int i = 0; i < n; i++) free(lines[i]), free(want[i]);
    free(lines), free(want), free(l.latency), free(t);
    qrm_model_close(m);
    return failures || mism ? 1 : 0;
}
