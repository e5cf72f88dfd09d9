/* The wrappers behind tests/fault_inject.h. A failed call looks like the
 * real failure: NULL with ENOMEM for an allocation; for IO -1 / NULL /
 * MAP_FAILED / EOF / a short count with errno EIO (ENOSPC for writes), and a
 * stream's error indicator set, because the library checks ferror() after
 * reading and writing, as it must for real faults. */
#include "fault_inject.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
int __real_open(const char *path, int flags, ...);
int __real_fstat(int fd, struct stat *st);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
FILE *__real_fopen(const char *path, const char *mode);
size_t __real_fread(void *p, size_t size, size_t n, FILE *f);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __real_fputc(int c, FILE *f);
int __real_fflush(FILE *f);
int __real_fclose(FILE *f);
int __real_fseek(FILE *f, long off, int whence);
long __real_ftell(FILE *f);
int __real_rename(const char *from, const char *to);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
int __wrap_open(const char *path, int flags, ...);
int __wrap_fstat(int fd, struct stat *st);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
FILE *__wrap_fopen(const char *path, const char *mode);
size_t __wrap_fread(void *p, size_t size, size_t n, FILE *f);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __wrap_fputc(int c, FILE *f);
int __wrap_fflush(FILE *f);
int __wrap_fclose(FILE *f);
int __wrap_fseek(FILE *f, long off, int whence);
long __wrap_ftell(FILE *f);
int __wrap_rename(const char *from, const char *to);

/* Atomic: the pool's threads may allocate while the countdown runs. */
static atomic_int armed_kind = -1;
static atomic_long countdown, calls;
static atomic_int fired, paused;

void fi_arm(fi_kind kind, long nth) {
    atomic_store(&countdown, nth);
    atomic_store(&calls, 0);
    atomic_store(&fired, 0);
    atomic_store(&armed_kind, (int)kind);
}

long fi_disarm(void) {
    atomic_store(&armed_kind, -1);
    return atomic_load(&calls);
}

int fi_fired(void) { return atomic_load(&fired); }
void fi_pause(void) { atomic_store(&paused, 1); }
void fi_resume(void) { atomic_store(&paused, 0); }

/* 1 when this call is the one to fail. */
static int fail_now(fi_kind kind) {
    if (atomic_load(&armed_kind) != (int)kind || atomic_load(&paused)) return 0;
    atomic_fetch_add(&calls, 1);
    if (atomic_fetch_sub(&countdown, 1) != 1) return 0;
    atomic_store(&fired, 1);
    if (getenv("QRM_FAULT_TRACE")) { /* where the fault lands */
        void *frames[12];
        int n = backtrace(frames, 12);
        backtrace_symbols_fd(frames, n, 2);
        fprintf(stderr, "--\n");
    }
    return 1;
}

void *__wrap_malloc(size_t n) {
    if (fail_now(FI_ALLOC)) return errno = ENOMEM, NULL;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
    if (fail_now(FI_ALLOC)) return errno = ENOMEM, NULL;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
    if (fail_now(FI_ALLOC)) return errno = ENOMEM, NULL;
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s) {
    if (fail_now(FI_ALLOC)) return errno = ENOMEM, NULL;
    return __real_strdup(s);
}

/* glibc sets a stream's error indicator when it is used against its
 * direction (a write to a read-only stream, a read from a write-only one):
 * that is the one portable-enough way to set it from outside, and the
 * library's streams are all "rb" or "wb". */
static void set_error(FILE *f) {
    char c = 0;
    int e = errno;
    if (!ferror(f)) __real_fwrite(&c, 1, 1, f);
    if (!ferror(f)) __real_fread(&c, 1, 1, f);
    if (!ferror(f)) {
        fprintf(stderr, "fault_inject: cannot set a stream's error indicator on this libc\n");
        abort();
    }
    errno = e;
}

int __wrap_open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { /* the only calls that pass a mode */
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (fail_now(FI_IO)) return errno = EIO, -1;
    return __real_open(path, flags, mode);
}

int __wrap_fstat(int fd, struct stat *st) {
    if (fail_now(FI_IO)) return errno = EIO, -1;
    return __real_fstat(fd, st);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (fail_now(FI_IO)) return errno = ENOMEM, MAP_FAILED;
    return __real_mmap(addr, len, prot, flags, fd, off);
}

FILE *__wrap_fopen(const char *path, const char *mode) {
    if (fail_now(FI_IO)) return errno = strchr(mode, 'w') ? ENOSPC : EIO, NULL;
    return __real_fopen(path, mode);
}

size_t __wrap_fread(void *p, size_t size, size_t n, FILE *f) {
    if (fail_now(FI_IO)) {
        set_error(f);
        return errno = EIO, 0;
    }
    return __real_fread(p, size, n, f);
}

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f) {
    if (fail_now(FI_IO)) {
        set_error(f);
        return errno = ENOSPC, 0;
    }
    return __real_fwrite(p, size, n, f);
}

int __wrap_fputc(int c, FILE *f) {
    if (fail_now(FI_IO)) {
        set_error(f);
        return errno = ENOSPC, EOF;
    }
    return __real_fputc(c, f);
}

int __wrap_fflush(FILE *f) {
    if (fail_now(FI_IO)) {
        if (f) set_error(f);
        return errno = ENOSPC, EOF;
    }
    return __real_fflush(f);
}

/* A failed fclose still releases the stream (C11 7.21.5.1), as the real
 * one does when its final flush fails. */
int __wrap_fclose(FILE *f) {
    if (fail_now(FI_IO)) {
        __real_fclose(f);
        return errno = ENOSPC, EOF;
    }
    return __real_fclose(f);
}

int __wrap_fseek(FILE *f, long off, int whence) {
    if (fail_now(FI_IO)) return errno = EIO, -1;
    return __real_fseek(f, off, whence);
}

long __wrap_ftell(FILE *f) {
    if (fail_now(FI_IO)) return errno = EIO, -1L;
    return __real_ftell(f);
}

int __wrap_rename(const char *from, const char *to) {
    if (fail_now(FI_IO)) return errno = EIO, -1;
    return __real_rename(from, to);
}
