/* Fault injection for tests/test_faults.c, SQLite style: a countdown that
 * makes the Nth allocation, or the Nth file-IO call, fail. The test binary
 * is linked with -Wl,--wrap for each function below (Makefile), so every
 * call the library's objects make goes through tests/fault_inject.c; the
 * library itself has no hooks. Calls libc makes internally are not wrapped.
 *
 * Arm the countdown only around the call under test: Check and the test's
 * own setup allocate too. */
#ifndef QRM_FAULT_INJECT_H
#define QRM_FAULT_INJECT_H

#include <stddef.h>

typedef enum {
    FI_ALLOC,  /* malloc, calloc, realloc, strdup */
    FI_IO,     /* open, fstat, mmap, fopen, fread, fwrite, fputc, fflush, fclose, fseek, ftell, rename */
} fi_kind;

/* The nth call (1-based) of that kind from now fails; 0 only counts. */
void fi_arm(fi_kind kind, long nth);
/* Disarms; returns how many calls of the armed kind happened while armed. */
long fi_disarm(void);
/* Whether the armed fault has been injected. */
int fi_fired(void);
/* Neither counts nor fails calls in between (the test's own work while armed). */
void fi_pause(void);
void fi_resume(void);

#endif
