/* The plumbing of harness.h: buffers, case names, input hashes, records,
 * the generator; on the host also the replay reader and the failure count. */
#include <stdarg.h>
#include <string.h>

#include "harness.h"

#ifdef HOST
#include <stdio.h>
#include <stdlib.h>
#else
#include "rt.h"
#endif

const qrm_kernels *kern;
int guard_pass;
char case_title[200];

/* ---- buffers ---- */
#ifdef HOST
static void *bufs[32];
static int nbufs;
void case_begin(void) {}
void *case_alloc(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p || nbufs == 32) {
        fprintf(stderr, "emu-check: out of memory in case [%s]\n", case_title);
        exit(2);
    }
    return bufs[nbufs++] = p;
}
void case_end(void) {
    while (nbufs) free(bufs[--nbufs]);
}
#else
static int slot;
void case_begin(void) { slot = 0; }
void *case_alloc(size_t bytes) { return rt_alloc_guarded(bytes, slot++, guard_pass); }
void case_end(void) { slot = 0; }
#endif

size_t strided(int rows, size_t ld, int cols) {
    return rows > 0 ? (size_t)(rows - 1) * ld + (size_t)cols : 0;
}

/* ---- names: a formatter of our own, the guest has no printf ---- */
static char *put_int(char *o, const char *end, long v) {
    char digits[24];
    int n = 0;
    unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
    if (v < 0 && o < end) *o++ = '-';
    do digits[n++] = (char)('0' + u % 10), u /= 10;
    while (u);
    while (n && o < end) *o++ = digits[--n];
    return o;
}

void case_name(const char *fmt, ...) {
    char *o = case_title, *end = case_title + sizeof case_title - 1;
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt && o < end; fmt++) {
        if (*fmt != '%') {
            *o++ = *fmt;
            continue;
        }
        fmt++;
        if (*fmt == 'd') o = put_int(o, end, va_arg(ap, int));
        else if (*fmt == 's')
            for (const char *s = va_arg(ap, const char *); *s && o < end;) *o++ = *s++;
    }
    *o = 0;
    va_end(ap);
#ifndef HOST
    rt_case_name = case_title;
#endif
}

/* ---- input hash: FNV-1a over every input byte since the last record ---- */
#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull
static uint64_t in_hash = FNV_OFFSET;
void input_hash(const void *p, size_t bytes) {
    const uint8_t *b = p;
    for (size_t i = 0; i < bytes; i++) in_hash = (in_hash ^ b[i]) * FNV_PRIME;
}

/* ---- records: "R <index> <bytes> <input hash> <case>", hex, "E" ---- */
static int rec_index;
static const char hexdigit[] = "0123456789abcdef";

#ifndef HOST
static void put_hex(uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; i--) rt_putc(hexdigit[(v >> (4 * i)) & 15]);
}
void record(void *buf, size_t bytes) {
    char head[40], *o = head;
    *o++ = 'R', *o++ = ' ';
    o = put_int(o, head + sizeof head, rec_index);
    *o++ = ' ';
    o = put_int(o, head + sizeof head, (long)bytes);
    *o++ = ' ', *o = 0;
    rt_puts(head);
    put_hex(in_hash, 16);
    rt_putc(' ');
    rt_puts(case_title);
    rt_putc('\n');
    const uint8_t *b = buf;
    for (size_t i = 0; i < bytes; i++) {
        put_hex(b[i], 2);
        if (i % 64 == 63) rt_putc('\n');
    }
    rt_puts("\nE\n");
    rec_index++;
    in_hash = FNV_OFFSET;
}
void record_own_check(void *buf, size_t bytes) { record(buf, bytes); }
#else
static FILE *dump;
static long nrecords;

void replay_open_or_exit(const char *path) {
    dump = fopen(path, "r");
    if (!dump) {
        perror(path);
        exit(2);
    }
}
int replaying(void) { return dump != NULL; }
long records_read(void) { return nrecords; }

/* The guest stopped early: show why (its exception report, if any). */
static void stream_broken(const char *what, const char *line) {
    printf("FAIL: %s at record %d [%s]%s%s", what, rec_index, case_title, line ? ": " : "\n",
           line ? line : "");
    exit(3);
}

#define SHOWN_DIFFER 10
static void read_record_into(uint8_t *out, size_t bytes) {
    char line[512];
    for (;;) {
        if (!fgets(line, sizeof line, dump)) stream_broken("the guest's output ends", NULL);
        if (!strncmp(line, "EXCEPTION", 9) || !strncmp(line, "FATAL", 5))
            stream_broken("the guest aborted", line);
        if (line[0] == 'R' && line[1] == ' ') break;
    }
    int idx;
    size_t nb;
    unsigned long long h;
    if (sscanf(line, "R %d %zu %llx", &idx, &nb, &h) != 3 || idx != rec_index || nb != bytes)
        stream_broken("the records are out of step (guest and host differ)", line);
    if (h != in_hash) stream_broken("input hash differs (guest and host made other inputs)", line);
    size_t got = 0;
    int c, high = -1;
    while (got < bytes && (c = fgetc(dump)) != EOF) {
        const char *d = c ? strchr(hexdigit, c) : NULL;
        if (!d) continue;
        if (high < 0) high = (int)(d - hexdigit);
        else out[got++] = (uint8_t)(high << 4 | (int)(d - hexdigit)), high = -1;
    }
    if (got != bytes) stream_broken("a record is cut short", NULL);
}

/* Every family computes what the scalar reference computes, bit for bit
 * (arch/float_kernels.h): in replay mode kern is the scalar family, so the
 * host's own buffer is the reference for the guest's. */
static long nrecords_differ;
static int own_check;
long records_differ(void) { return nrecords_differ; }

void record_own_check(void *buf, size_t bytes) {
    own_check = 1;
    record(buf, bytes);
    own_check = 0;
}

void record(void *buf, size_t bytes) {
    if (dump && own_check) {
        read_record_into(buf, bytes), nrecords++;
    } else if (dump) {
        uint8_t *mine = malloc(bytes ? bytes : 1);
        if (!mine) stream_broken("out of memory", NULL);
        memcpy(mine, buf, bytes);
        read_record_into(buf, bytes), nrecords++;
        if (memcmp(mine, buf, bytes) != 0) {
            if (nrecords_differ < SHOWN_DIFFER)
                printf("  FAIL [%s] the guest's output differs from the scalar reference's bits\n",
                       case_title);
            nrecords_differ++;
        }
        free(mine);
    }
    rec_index++;
    in_hash = FNV_OFFSET;
}

int replay_finished(void) {
    char line[512];
    while (fgets(line, sizeof line, dump))
        if (!strncmp(line, "GUEST DONE", 10)) return 1;
    return 0;
}

/* ---- failures: every value counts, the first few of a case are shown ---- */
#define SHOWN_PER_CASE 6
static long nchecked, ncases_failed, nvalues_failed;
static int case_values_failed;
void check_begin(void) { nchecked++, case_values_failed = 0; }
void check_fail(const char *fmt, ...) {
    nvalues_failed++;
    if (case_values_failed++ >= SHOWN_PER_CASE) return;
    va_list ap;
    va_start(ap, fmt);
    printf("  FAIL [%s] ", case_title);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}
void check_end(void) {
    if (!case_values_failed) return;
    ncases_failed++;
    printf("  ... [%s]: %d failing values\n", case_title, case_values_failed);
}
long cases_checked(void) { return nchecked; }
long cases_failed(void) { return ncases_failed; }
long values_failed(void) { return nvalues_failed; }
#endif

/* ---- the generator ---- */
static uint64_t rng;
void rng_seed(uint64_t s) { rng = s * 0x9e3779b97f4a7c15ull + 1; }
uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 17);
}
int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
float rnd_unit(void) { return (float)(rnd() & 0xffffff) / 16777216.0f; }
float rnd_sym(float a) { return a * (2 * rnd_unit() - 1); }
