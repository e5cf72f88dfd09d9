/* The guest's bare-metal runtime (rt.c, boot.S): what the harness needs in
 * place of an operating system. */
#ifndef QRM_EMU_RT_H
#define QRM_EMU_RT_H

#include <stddef.h>

/* One character / a string to bochs' port 0xE9 (its stdout). */
void rt_putc(char c);
void rt_puts(const char *s);

/* A buffer of n bytes in guard slot k (0..RT_GUARD_SLOTS-1), zeroed.
 * mode 0: it ends exactly where an unmapped page begins;
 * mode 1: it begins exactly where an unmapped page ends.
 * So any access past the end (0) or before the start (1) raises #PF, which
 * the exception handler reports with rt_case_name. */
#define RT_GUARD_SLOTS 16
void *rt_alloc_guarded(size_t n, int k, int mode);

/* Named in the report of an exception: the case that was running. */
extern const char *rt_case_name;

/* The harness itself (driver.c). */
void driver_main(void);

#endif
