#include "pool.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "platform.h"

#define SPIN_ROUNDS 20000

typedef struct {
    struct qrm_pool *pool;
    int index;
} worker_arg;

struct qrm_pool {
    int n_threads;
    qrm_thread **threads;
    worker_arg *args;
    qrm_mutex *mu;
    qrm_cond *wake, *done_cv;
    atomic_uint generation;     /* bumped for every job */
    /* The job's task count (high 32 bits) and next task index (low 32 bits)
     * in one word: a worker's fetch-and-add gets a consistent pair, so a
     * worker still leaving an old job can never run a task twice. */
    _Atomic uint64_t ticket;
    atomic_int tasks_left, sleepers;
    atomic_int stop;
    qrm_task_fn fn;
    void *arg;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause");
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void run_tasks(qrm_pool *p, int thread) {
    for (;;) {
        uint64_t t = atomic_fetch_add(&p->ticket, 1);
        uint32_t n = (uint32_t)(t >> 32), i = (uint32_t)t;
        if (i >= n) return;
        /* a real task of the current job: the job cannot finish before this
         * task does, so fn and arg are still this job's */
        p->fn(p->arg, (int)i, thread);
        if (atomic_fetch_sub(&p->tasks_left, 1) == 1) {
            qrm_mutex_lock(p->mu);
            qrm_cond_broadcast(p->done_cv);
            qrm_mutex_unlock(p->mu);
        }
    }
}

static void worker(void *arg) {
    worker_arg *wa = arg;
    qrm_pool *p = wa->pool;
    int thread = wa->index;
    unsigned seen = atomic_load(&p->generation);
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            qrm_mutex_lock(p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                qrm_cond_wait(p->wake, p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            qrm_mutex_unlock(p->mu);
        }
        if (atomic_load(&p->stop)) return;
        seen = atomic_load(&p->generation);
        run_tasks(p, thread);
    }
}

qrm_pool *qrm_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    qrm_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    p->mu = qrm_mutex_new();
    p->wake = qrm_cond_new();
    p->done_cv = qrm_cond_new();
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->args = calloc((size_t)n_threads, sizeof *p->args);
    if (!p->mu || !p->wake || !p->done_cv || !p->threads || !p->args) {
        qrm_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        p->args[i].pool = p;
        p->args[i].index = i;
        p->threads[i] = qrm_thread_start(worker, &p->args[i]);
        if (!p->threads[i]) {
            qrm_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void qrm_pool_free(qrm_pool *p) {
    if (!p) return;
    if (p->mu) {
        qrm_mutex_lock(p->mu);
        atomic_store(&p->stop, 1);
        if (p->wake) qrm_cond_broadcast(p->wake);
        qrm_mutex_unlock(p->mu);
    }
    if (p->threads)
        for (int i = 1; i < p->n_threads; i++) qrm_thread_join(p->threads[i]);
    free(p->threads);
    free(p->args);
    qrm_cond_free(p->wake);
    qrm_cond_free(p->done_cv);
    qrm_mutex_free(p->mu);
    free(p);
}

int qrm_pool_threads(const qrm_pool *p) { return p->n_threads; }

void qrm_pool_run(qrm_pool *p, int n_tasks, qrm_task_fn fn, void *arg) {
    if (n_tasks <= 0) return;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int i = 0; i < n_tasks; i++) fn(arg, i, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->tasks_left, n_tasks);
    atomic_store(&p->ticket, (uint64_t)n_tasks << 32);
    qrm_mutex_lock(p->mu);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) qrm_cond_broadcast(p->wake);
    qrm_mutex_unlock(p->mu);
    run_tasks(p, 0);
    /* wait for the stragglers: spin first, then sleep */
    for (int spins = 0; atomic_load(&p->tasks_left) > 0; spins++) {
        if (spins < SPIN_ROUNDS) {
            cpu_relax();
            continue;
        }
        qrm_mutex_lock(p->mu);
        while (atomic_load(&p->tasks_left) > 0) qrm_cond_wait(p->done_cv, p->mu);
        qrm_mutex_unlock(p->mu);
    }
}
