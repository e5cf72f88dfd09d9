/* The platform layer: the only place that touches files, memory mapping,
 * threads and clocks. Everything else in core/ and arch/ uses only memory,
 * math and string functions of libc. POSIX (Linux, macOS, BSD). */
#ifndef QRM_PLATFORM_H
#define QRM_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* A read-only mapping of a whole file. */
typedef struct {
    const void *data;
    size_t size;
    void *handle_;      /* private: what to unmap */
    size_t handle_size_;
} qrm_mapped_file;

/* 0 on success; on failure -1 and a message "cannot open 'x': No such file". */
int qrm_map_file(const char *path, qrm_mapped_file *out, char *err, size_t errlen);
/* The same, but the bytes are copied into private anonymous memory from
 * qrm_alloc_huge (below: huge pages asked for from 8 MB up), read-only
 * after the copy. On failure -1 and a message. */
int qrm_copy_file(const char *path, qrm_mapped_file *out, char *err, size_t errlen);
/* Either kind. */
void qrm_unmap_file(qrm_mapped_file *f);

/* Zeroed anonymous memory for large buffers read often (the KV cache):
 * from 8 MB up 2 MB aligned and asking for transparent huge pages (a hint),
 * whole 4 KB pages below. NULL on failure (errno says why) or for n = 0.
 * Freed with the same n. */
void *qrm_alloc_huge(size_t n);
void qrm_free_huge(void *p, size_t n);

/* Reads a whole file into a malloc'd NUL-terminated buffer. */
char *qrm_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* Number of online CPUs (at least 1). */
int qrm_cpu_count(void);
/* Monotonic time in seconds. */
double qrm_now(void);
/* Peak resident set size of the process in bytes (0 if unknown). */
uint64_t qrm_peak_rss(void);

/* Threads: a minimal wrapper so core/pool.c needs no pthread.h. */
typedef struct qrm_thread qrm_thread;
qrm_thread *qrm_thread_start(void (*fn)(void *), void *arg);
void qrm_thread_join(qrm_thread *t);

typedef struct qrm_mutex qrm_mutex;
qrm_mutex *qrm_mutex_new(void);
void qrm_mutex_free(qrm_mutex *m);
void qrm_mutex_lock(qrm_mutex *m);
void qrm_mutex_unlock(qrm_mutex *m);
/* A condition variable bound to a mutex. */
typedef struct qrm_cond qrm_cond;
qrm_cond *qrm_cond_new(void);
void qrm_cond_free(qrm_cond *c);
void qrm_cond_wait(qrm_cond *c, qrm_mutex *m);
void qrm_cond_broadcast(qrm_cond *c);

#endif
