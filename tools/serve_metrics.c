/* Prometheus text format 0.0.4: counters end in _total, the latency
 * histogram has cumulative buckets with an le label, _sum and _count. */
#include "serve_metrics.h"

#include <string.h>

static const int statuses[QRM_N_STATUS] = {200, 400, 404, 405, 408, 411, 413, 414,
                                           422, 431, 500, 501, 503, 505, 100, 0};
static const double bounds[QRM_N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10,   30};
static const char *const path_names[QRM_PATH_COUNT] = {"/score", "/get_reward", "/health",
                                                       "/metrics", "other"};

int qrm_metrics_path(const char *path) {
    if (!strcmp(path, "/score")) return QRM_PATH_SCORE;
    if (!strcmp(path, "/get_reward") || !strcmp(path, "/")) return QRM_PATH_REWARD;
    if (!strcmp(path, "/health")) return QRM_PATH_HEALTH;
    if (!strcmp(path, "/metrics")) return QRM_PATH_METRICS;
    return QRM_PATH_OTHER;
}

void qrm_metrics_init(qrm_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void qrm_metrics_destroy(qrm_metrics *m) { pthread_mutex_destroy(&m->mu); }

void qrm_metrics_request(qrm_metrics *m, int path, int status, double seconds) {
    int s = QRM_N_STATUS - 1; /* the last slot collects codes not listed */
    for (int i = 0; i < QRM_N_STATUS - 1; i++)
        if (statuses[i] == status) s = i;
    int b = 0;
    while (b < QRM_N_BUCKETS && seconds > bounds[b]) b++;
    pthread_mutex_lock(&m->mu);
    m->requests[path][s]++;
    m->bucket[path][b]++;
    m->latency_sum[path] += seconds;
    pthread_mutex_unlock(&m->mu);
}

void qrm_metrics_scored(qrm_metrics *m, size_t lines, size_t errors, size_t tokens) {
    pthread_mutex_lock(&m->mu);
    m->lines += lines;
    m->line_errors += errors;
    m->tokens += tokens;
    pthread_mutex_unlock(&m->mu);
}

void qrm_metrics_event(qrm_metrics *m, unsigned long long *counter) {
    pthread_mutex_lock(&m->mu);
    (*counter)++;
    pthread_mutex_unlock(&m->mu);
}

static void family(qj_buf *b, const char *name, const char *type, const char *help) {
    qj_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void qrm_metrics_write(qrm_metrics *m, qj_buf *b, int queue_depth, int queue_cap, int busy,
                       int workers, int connections) {
    pthread_mutex_lock(&m->mu);
    family(b, "qrm_http_requests_total", "counter", "HTTP requests answered, by path and status code.");
    for (int p = 0; p < QRM_PATH_COUNT; p++)
        for (int s = 0; s < QRM_N_STATUS; s++)
            if (m->requests[p][s]) {
                if (statuses[s]) qj_buf_printf(b, "qrm_http_requests_total{path=\"%s\",code=\"%d\"} %llu\n",
                                               path_names[p], statuses[s], m->requests[p][s]);
                else qj_buf_printf(b, "qrm_http_requests_total{path=\"%s\",code=\"other\"} %llu\n",
                                   path_names[p], m->requests[p][s]);
            }
    family(b, "qrm_http_request_duration_seconds", "histogram",
           "Time from a request's first byte to its answer being written.");
    for (int p = 0; p < QRM_PATH_COUNT; p++) {
        unsigned long long cum = 0, n = 0;
        for (int k = 0; k <= QRM_N_BUCKETS; k++) n += m->bucket[p][k];
        if (!n) continue; /* a path never asked has no distribution to show */
        for (int k = 0; k <= QRM_N_BUCKETS; k++) {
            cum += m->bucket[p][k];
            if (k < QRM_N_BUCKETS)
                qj_buf_printf(b, "qrm_http_request_duration_seconds_bucket{path=\"%s\",le=\"%g\"} %llu\n",
                              path_names[p], bounds[k], cum);
            else
                qj_buf_printf(b, "qrm_http_request_duration_seconds_bucket{path=\"%s\",le=\"+Inf\"} %llu\n",
                              path_names[p], cum);
        }
        qj_buf_printf(b, "qrm_http_request_duration_seconds_sum{path=\"%s\"} %.9g\n", path_names[p],
                      m->latency_sum[p]);
        qj_buf_printf(b, "qrm_http_request_duration_seconds_count{path=\"%s\"} %llu\n", path_names[p], cum);
    }
    family(b, "qrm_scored_total", "counter", "Lines of /score and queries of /get_reward scored.");
    qj_buf_printf(b, "qrm_scored_total %llu\n", m->lines);
    family(b, "qrm_score_errors_total", "counter", "Lines and queries answered with an error.");
    qj_buf_printf(b, "qrm_score_errors_total %llu\n", m->line_errors);
    family(b, "qrm_tokens_scored_total", "counter", "Tokens run through the model.");
    qj_buf_printf(b, "qrm_tokens_scored_total %llu\n", m->tokens);
    family(b, "qrm_http_read_timeouts_total", "counter", "Requests not received within --timeout (408).");
    qj_buf_printf(b, "qrm_http_read_timeouts_total %llu\n", m->timeouts);
    family(b, "qrm_http_client_disconnects_total", "counter", "Connections closed by the client mid-request.");
    qj_buf_printf(b, "qrm_http_client_disconnects_total %llu\n", m->disconnects);
    family(b, "qrm_http_rejected_connections_total", "counter", "Connections refused at --max-conns (503).");
    qj_buf_printf(b, "qrm_http_rejected_connections_total %llu\n", m->rejected_conns);
    pthread_mutex_unlock(&m->mu);
    family(b, "qrm_queue_depth", "gauge", "Scoring requests waiting for a context.");
    qj_buf_printf(b, "qrm_queue_depth %d\n", queue_depth);
    family(b, "qrm_queue_capacity", "gauge", "The most requests that may wait (--queue).");
    qj_buf_printf(b, "qrm_queue_capacity %d\n", queue_cap);
    family(b, "qrm_workers_busy", "gauge", "Contexts scoring a request now.");
    qj_buf_printf(b, "qrm_workers_busy %d\n", busy);
    family(b, "qrm_workers", "gauge", "Scoring contexts (--parallel).");
    qj_buf_printf(b, "qrm_workers %d\n", workers);
    family(b, "qrm_http_connections", "gauge", "Open client connections.");
    qj_buf_printf(b, "qrm_http_connections %d\n", connections);
}
