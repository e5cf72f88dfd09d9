/* The counters of `qrm serve` and their Prometheus text exposition
 * (tools/serve_metrics.c). One mutex: every update is a few additions per
 * request, far below the cost of scoring it. */
#ifndef QRM_SERVE_METRICS_H
#define QRM_SERVE_METRICS_H

#include <pthread.h>
#include <stddef.h>

#include "json.h"

enum { QRM_PATH_SCORE, QRM_PATH_REWARD, QRM_PATH_HEALTH, QRM_PATH_METRICS, QRM_PATH_OTHER, QRM_PATH_COUNT };

#define QRM_N_STATUS 16
#define QRM_N_BUCKETS 14

typedef struct {
    pthread_mutex_t mu;
    unsigned long long requests[QRM_PATH_COUNT][QRM_N_STATUS];
    unsigned long long line_errors;                   /* results with "error" */
    unsigned long long lines;                         /* results (lines, queries) */
    unsigned long long tokens;
    unsigned long long bucket[QRM_PATH_COUNT][QRM_N_BUCKETS + 1]; /* the last is +Inf */
    double latency_sum[QRM_PATH_COUNT];
    unsigned long long timeouts, disconnects, rejected_conns;
} qrm_metrics;

void qrm_metrics_init(qrm_metrics *m);
void qrm_metrics_destroy(qrm_metrics *m);
/* One answered request; seconds from its first byte to its answer written. */
void qrm_metrics_request(qrm_metrics *m, int path, int status, double seconds);
void qrm_metrics_scored(qrm_metrics *m, size_t lines, size_t errors, size_t tokens);
void qrm_metrics_event(qrm_metrics *m, unsigned long long *counter);
/* Appends the exposition; the gauges are read by the caller under its own lock. */
void qrm_metrics_write(qrm_metrics *m, qj_buf *b, int queue_depth, int queue_cap, int busy,
                       int workers, int connections);
int qrm_metrics_path(const char *path);

#endif
