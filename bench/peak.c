/* Peak loops: the most multiply-accumulates one core can retire per second
 * with each ISA's inner instruction, used as the 100% mark of qrm-bench.
 *
 * Written in inline asm so the compiler can neither fold the repeated
 * operations nor need the ISA flags for this file (the bench is built with
 * baseline flags; a loop only runs after checking the CPU features). Each
 * loop has more independent accumulators than latency x throughput, and
 * touches no memory.
 *
 * int8 loops (ops = 2 per multiply-add):
 *   avx512vnni  vpdpbusd zmm: 64 MACs
 *   avx2        vpmaddubsw + vpmaddwd + vpaddd ymm: 32 MACs (the way to an
 *               exact int32 sum of int8 products without VNNI)
 *   i8mm        smmla: 32 MACs;  dotprod  sdot: 16 MACs;  neon  smlal .8h: 8
 * fp32 loops: vfmadd231ps zmm / ymm (16 / 8 FMAs), fmla .4s (4 FMAs).
 */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "bench.h"

double qrm_bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double qrm_bench_thread_seconds(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return qrm_bench_now();
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*loop_fn)(long iters);

#if defined(__x86_64__)
/* One asm block per loop: sources zeroed, then `iters` rounds of the body
 * (counter in a general register), then vzeroupper for the SSE code after. */
#define X86_LOOP(zero, body, iters)                                                               \
    do {                                                                                          \
        long n_ = (iters);                                                                        \
        if (n_ < 1) n_ = 1;                                                                       \
        __asm__ volatile(zero "1:\n" body "dec %0\n jnz 1b\n vzeroupper\n"                        \
                         : "+r"(n_)                                                               \
                         :                                                                        \
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",        \
                           "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",  \
                           "cc");                                                                 \
    } while (0)

#define ZERO_Y "vpxor %%xmm13, %%xmm13, %%xmm13\n vpxor %%xmm14, %%xmm14, %%xmm14\n vpxor %%xmm15, %%xmm15, %%xmm15\n"
#define ZERO_Z "vpxord %%zmm14, %%zmm14, %%zmm14\n vpxord %%zmm15, %%zmm15, %%zmm15\n"

/* vpdpbusd: latency 5, up to 2 per cycle: 12 accumulators. */
#define DP(a) "vpdpbusd %%zmm14, %%zmm15, %%zmm" #a "\n"
static void loop_vpdpbusd(long iters) { /* 12 x 64 MACs per iteration */
    X86_LOOP(ZERO_Z, DP(0) DP(1) DP(2) DP(3) DP(4) DP(5) DP(6) DP(7) DP(8) DP(9) DP(10) DP(11),
             iters);
}

/* 8 chains through 4 rotating temporaries. */
#define MB(t, a)                                                                                  \
    "vpmaddubsw %%ymm13, %%ymm14, %%ymm" #t "\n vpmaddwd %%ymm15, %%ymm" #t ", %%ymm" #t            \
    "\n vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n"
static void loop_maddubs(long iters) { /* 8 x 32 MACs per iteration */
    X86_LOOP(ZERO_Y, MB(8, 0) MB(9, 1) MB(10, 2) MB(11, 3) MB(8, 4) MB(9, 5) MB(10, 6) MB(11, 7),
             iters);
}

#define FZ(a) "vfmadd231ps %%zmm14, %%zmm15, %%zmm" #a "\n"
static void loop_fma_zmm(long iters) { /* 12 x 16 FMAs */
    X86_LOOP(ZERO_Z, FZ(0) FZ(1) FZ(2) FZ(3) FZ(4) FZ(5) FZ(6) FZ(7) FZ(8) FZ(9) FZ(10) FZ(11),
             iters);
}

#define FY(a) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #a "\n"
static void loop_fma_ymm(long iters) { /* 12 x 8 FMAs */
    X86_LOOP(ZERO_Y, FY(0) FY(1) FY(2) FY(3) FY(4) FY(5) FY(6) FY(7) FY(8) FY(9) FY(10) FY(11),
             iters);
}
#endif

#if defined(__aarch64__)
/* `.arch` lets the assembler take the instructions; a loop only runs when the
 * CPU has the feature. Accumulators v0..v11, sources v16, v17 (zeroed). */
#define ARM_LOOP(body, iters)                                                                     \
    do {                                                                                          \
        long n_ = (iters);                                                                        \
        if (n_ < 1) n_ = 1;                                                                       \
        __asm__ volatile(".arch armv8.2-a+dotprod+i8mm\n movi v16.16b, #0\n movi v17.16b, #0\n"  \
                         "1:\n" body "subs %0, %0, #1\n b.ne 1b\n"                                \
                         : "+r"(n_)                                                               \
                         :                                                                        \
                         : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",     \
                           "v11", "v16", "v17", "cc");                                            \
    } while (0)
#define B12(op, acc, src)                                                                         \
    op " v0." acc ", " src "\n" op " v1." acc ", " src "\n" op " v2." acc ", " src "\n" op        \
       " v3." acc ", " src "\n" op " v4." acc ", " src "\n" op " v5." acc ", " src "\n" op        \
       " v6." acc ", " src "\n" op " v7." acc ", " src "\n" op " v8." acc ", " src "\n" op        \
       " v9." acc ", " src "\n" op " v10." acc ", " src "\n" op " v11." acc ", " src "\n"
static void loop_smmla(long iters) { ARM_LOOP(B12("smmla", "4s", "v16.16b, v17.16b"), iters); }
static void loop_sdot(long iters) { ARM_LOOP(B12("sdot", "4s", "v16.16b, v17.16b"), iters); }
static void loop_smlal(long iters) { ARM_LOOP(B12("smlal", "8h", "v16.8b, v17.8b"), iters); }
static void loop_fmla(long iters) { ARM_LOOP(B12("fmla", "4s", "v16.4s, v17.4s"), iters); }
#endif

/* Ops per second of fn (ops_per_iter per call iteration), best of 3 runs of
 * about `seconds` each. */
static double measure(loop_fn fn, double ops_per_iter, double seconds) {
    long iters = 1000;
    for (;;) { /* calibrate to about a tenth of the budget */
        double t0 = qrm_bench_thread_seconds();
        fn(iters);
        double dt = qrm_bench_thread_seconds() - t0;
        if (dt > seconds / 10 || iters > (1L << 40)) {
            iters = (long)((double)iters * seconds / (dt > 1e-9 ? dt : 1e-9));
            break;
        }
        iters *= 4;
    }
    if (iters < 1) iters = 1;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = qrm_bench_thread_seconds();
        fn(iters);
        double dt = qrm_bench_thread_seconds() - t0;
        double rate = ops_per_iter * (double)iters / (dt > 1e-9 ? dt : 1e-9);
        if (rate > best) best = rate;
    }
    return best;
}

/* The loops of `family` (its name, as arch/families.h spells it): a family's
 * GEMMs are measured against its own instructions, so `-f avx2` on an
 * AVX-512 machine uses the ymm loops. The caller has checked that the CPU
 * runs the family. */
void qrm_bench_peak(const char *family, double seconds, qrm_peak *out) {
    out->int8_gops = 0, out->int8_loop = "none";
    out->fp32_gflops = 0, out->fp32_loop = "none";
    (void)family, (void)seconds, (void)measure;
#if defined(__x86_64__)
    if (!strcmp(family, "avx512")) {
        out->int8_gops = 1e-9 * measure(loop_vpdpbusd, 12 * 64 * 2, seconds);
        out->int8_loop = "vpdpbusd zmm (avx512vnni)";
        out->fp32_gflops = 1e-9 * measure(loop_fma_zmm, 12 * 16 * 2, seconds);
        out->fp32_loop = "vfmadd231ps zmm (avx512f)";
    } else if (!strcmp(family, "avx2")) {
        out->int8_gops = 1e-9 * measure(loop_maddubs, 8 * 32 * 2, seconds);
        out->int8_loop = "vpmaddubsw+vpmaddwd+vpaddd ymm (avx2)";
        out->fp32_gflops = 1e-9 * measure(loop_fma_ymm, 12 * 8 * 2, seconds);
        out->fp32_loop = "vfmadd231ps ymm (fma)";
    }
#elif defined(__aarch64__)
    int i8mm = !strcmp(family, "i8mm"), dotprod = !strcmp(family, "dotprod"), neon = !strcmp(family, "neon");
    if (i8mm) {
        out->int8_gops = 1e-9 * measure(loop_smmla, 12 * 32 * 2, seconds);
        out->int8_loop = "smmla (i8mm)";
    } else if (dotprod) {
        out->int8_gops = 1e-9 * measure(loop_sdot, 12 * 16 * 2, seconds);
        out->int8_loop = "sdot (dotprod)";
    } else if (neon) {
        out->int8_gops = 1e-9 * measure(loop_smlal, 12 * 8 * 2, seconds);
        out->int8_loop = "smlal .8h (neon)";
    }
    if (i8mm || dotprod || neon) {
        out->fp32_gflops = 1e-9 * measure(loop_fmla, 12 * 4 * 2, seconds);
        out->fp32_loop = "fmla .4s (neon)";
    }
#endif
}
