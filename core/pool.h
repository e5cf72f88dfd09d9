/* A fixed pool of worker threads for the forward pass.
 *
 * qrm_pool_run(p, n, fn, arg) calls fn(arg, i, thread) for every i in [0, n), spread
 * over the pool's threads and the calling thread, and returns when all are
 * done. Tasks are handed out dynamically (an atomic counter), so unequal
 * tasks balance. Workers spin briefly before sleeping: a forward pass runs
 * hundreds of parallel regions per token, and a condition-variable wake-up
 * per region would cost more than the work of a small one. */
#ifndef QRM_POOL_H
#define QRM_POOL_H

typedef struct qrm_pool qrm_pool;
/* thread is in [0, n_threads): an index for per-thread scratch. */
typedef void (*qrm_task_fn)(void *arg, int task, int thread);

/* n_threads counts the caller: 1 means no worker threads. NULL on failure. */
qrm_pool *qrm_pool_new(int n_threads);
void qrm_pool_free(qrm_pool *p);
int qrm_pool_threads(const qrm_pool *p);
void qrm_pool_run(qrm_pool *p, int n_tasks, qrm_task_fn fn, void *arg);

#endif
