/* POSIX implementation of the platform layer (see platform.h). */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int qrm_map_file(const char *path, qrm_mapped_file *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read '%s': not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "'%s' is empty", path);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map '%s': %s", path, strerror(errno));
        return -1;
    }
    out->data = p;
    out->size = (size_t)st.st_size;
    out->handle_ = p;
    out->handle_size_ = (size_t)st.st_size;
    return 0;
}

/* Anonymous memory in whole 2 MB pages, 2 MB aligned, when the buffer is
 * large enough for huge pages to be worth their rounding (a small KV cache
 * would take a whole 2 MB page); in 4 KB pages below that. Either way the
 * mapping is exactly the rounded size, so qrm_free_huge needs only the size
 * asked for. */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN (4 * HUGE_PAGE)
static size_t huge_round(size_t n) {
    size_t unit = n >= HUGE_MIN ? HUGE_PAGE : 4096;
    return (n + unit - 1) / unit * unit;
}

void *qrm_alloc_huge(size_t n) {
    if (n == 0 || n > SIZE_MAX - 2 * HUGE_PAGE) {
        errno = n ? ENOMEM : EINVAL;
        return NULL;
    }
    size_t want = huge_round(n), len = n >= HUGE_MIN ? want + HUGE_PAGE : want;
    char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    if (n < HUGE_MIN) return base;
    char *p = (char *)(((uintptr_t)base + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
    if (p > base) munmap(base, (size_t)(p - base));
    if (base + len > p + want) munmap(p + want, (size_t)(base + len - (p + want)));
#ifdef MADV_HUGEPAGE
    madvise(p, want, MADV_HUGEPAGE); /* a hint: no error if refused */
#endif
    return p;
}

void qrm_free_huge(void *p, size_t n) {
    if (p) munmap(p, huge_round(n));
}

int qrm_copy_file(const char *path, qrm_mapped_file *out, char *err, size_t errlen) {
    qrm_mapped_file f;
    if (qrm_map_file(path, &f, err, errlen)) return -1;
    char *p = qrm_alloc_huge(f.size); /* 2 MB pages for a file of 8 MB and more */
    if (!p) {
        snprintf(err, errlen, "cannot copy '%s' into memory: %zu bytes: %s", path, f.size, strerror(errno));
        qrm_unmap_file(&f);
        return -1;
    }
    size_t size = f.size;
    memcpy(p, f.data, size);
    qrm_unmap_file(&f);
    mprotect(p, huge_round(size), PROT_READ); /* as the mapping: nothing writes the weights */
    out->data = p;
    out->size = size;
    out->handle_ = p;
    out->handle_size_ = huge_round(size); /* qrm_free_huge's unmapping */
    return 0;
}

void qrm_unmap_file(qrm_mapped_file *f) {
    if (f->handle_) munmap(f->handle_, f->handle_size_);
    memset(f, 0, sizeof *f);
}

char *qrm_read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading '%s'", path);
        return NULL;
    }
    if (bad) {
        snprintf(err, errlen, "error reading '%s'", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int qrm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double qrm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t qrm_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#ifdef __APPLE__
    return (uint64_t)ru.ru_maxrss;
#else
    return (uint64_t)ru.ru_maxrss * 1024u;
#endif
}

struct qrm_thread {
    pthread_t t;
    void (*fn)(void *);
    void *arg;
};

static void *thread_tramp(void *p) {
    qrm_thread *t = p;
    t->fn(t->arg);
    return NULL;
}

qrm_thread *qrm_thread_start(void (*fn)(void *), void *arg) {
    qrm_thread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fn = fn;
    t->arg = arg;
    if (pthread_create(&t->t, NULL, thread_tramp, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void qrm_thread_join(qrm_thread *t) {
    if (!t) return;
    pthread_join(t->t, NULL);
    free(t);
}

struct qrm_mutex { pthread_mutex_t m; };
struct qrm_cond { pthread_cond_t c; };

qrm_mutex *qrm_mutex_new(void) {
    qrm_mutex *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->m, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}
void qrm_mutex_free(qrm_mutex *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->m);
    free(m);
}
void qrm_mutex_lock(qrm_mutex *m) { pthread_mutex_lock(&m->m); }
void qrm_mutex_unlock(qrm_mutex *m) { pthread_mutex_unlock(&m->m); }

qrm_cond *qrm_cond_new(void) {
    qrm_cond *c = calloc(1, sizeof *c);
    if (c && pthread_cond_init(&c->c, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}
void qrm_cond_free(qrm_cond *c) {
    if (!c) return;
    pthread_cond_destroy(&c->c);
    free(c);
}
void qrm_cond_wait(qrm_cond *c, qrm_mutex *m) { pthread_cond_wait(&c->c, &m->m); }
void qrm_cond_broadcast(qrm_cond *c) { pthread_cond_broadcast(&c->c); }
