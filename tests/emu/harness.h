/* The plumbing every case uses, identical in both builds so that both make
 * the same inputs in the same order (README.md has the whole picture).
 *
 * Guest (bare metal, under bochs): kern is the avx512 family; record() writes
 * each output buffer to port 0xE9 with a hash of the inputs behind it.
 * Host (-DHOST): the same code rebuilds the inputs, record() checks the hash
 * and replaces the buffer with the guest's bytes, and the checks that follow
 * (host only) judge them. */
#ifndef QRM_EMU_HARNESS_H
#define QRM_EMU_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

extern const qrm_kernels *kern;   /* the family under test */

/* 0: every buffer ends at an unmapped page; 1: every buffer starts after one
 * (guest only; the host runs both passes the same way to stay in step). */
extern int guard_pass;

/* A case's buffers, zeroed, each in its own guard slot in the guest (so
 * exact sizes matter: one element too many hides an overrun), released by
 * case_end(). At most RT_GUARD_SLOTS (16) per case. */
void case_begin(void);
void *case_alloc(size_t bytes);
void case_end(void);
/* Elements of rows x cols with row stride ld, the last row without its gap. */
size_t strided(int rows, size_t ld, int cols);

/* The current case's name (%d and %s only), shown by failures and by the
 * guest's exception report. */
void case_name(const char *fmt, ...);
extern char case_title[200];

/* Inputs are hashed as they are made; record() closes the hash. */
void input_hash(const void *p, size_t bytes);
void record(void *buf, size_t bytes);
/* The same, for an output whose own check decides bit by bit what may
 * differ from the scalar reference: the f16 conversions, where bochs' own
 * VCVTPS2PH rounds ties away from zero (f16_ties.h). */
void record_own_check(void *buf, size_t bytes);

/* The xorshift generator of tests/test_kernels.c. */
void rng_seed(uint64_t s);
uint32_t rnd(void);
int rnd_int(int lo, int hi);
float rnd_unit(void);
float rnd_sym(float a);

/* Written into output slots a kernel must leave alone (stride gaps, panels
 * outside the requested range). */
#define SENTINEL 7777.0f

#ifdef HOST
/* ---- host: judging ---- */
#include <float.h>

/* Replay mode reads records from this dump; NULL: kern's own outputs are
 * judged (the control run on the host). */
void replay_open_or_exit(const char *path);
int replaying(void);
/* After the last case: the guest must have finished ("GUEST DONE"). */
int replay_finished(void);

void check_begin(void);
void check_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void check_end(void);
long cases_checked(void), cases_failed(void), values_failed(void), records_read(void);
/* Replay: records whose bytes differ from the scalar reference's */
long records_differ(void);

/* The tolerances of tests/test_kernels.c and tests/test_wsum.c, from the
 * same header (the reasoning behind each is there). */
#include "../tolerances.h"
#endif

#endif
