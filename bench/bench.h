/* Shared declarations of qrm-bench: the subcommands (bench/qrm_bench.c
 * dispatches `qrm-bench NAME ...` to qrm_bench_NAME), the clock and the peak
 * loops every speed figure is compared with. */
#ifndef QRM_BENCH_H
#define QRM_BENCH_H

#include <stdio.h>

#include "cpu.h"

/* Where the JSON line of --json goes: stdout, whose human text main()
 * moves to stderr under --json. */
extern FILE *qrm_bench_json;

/* Seconds on a monotonic clock (only differences mean anything). */
double qrm_bench_now(void);
/* CPU seconds of the calling thread: single-thread figures use it, so time
 * the thread spends descheduled on a busy machine does not count. */
double qrm_bench_thread_seconds(void);

/* What one core can do at best, measured by loops of the ISA's widest
 * multiply-accumulate with enough independent chains to hide latency.
 * "ops" count a multiply and an add as 2, so a GEMM doing 2*M*N*K ops at
 * int8_gops would be running at 100%. */
typedef struct {
    double int8_gops;      /* best int8 dot-product loop this CPU runs; 0 if none */
    const char *int8_loop; /* which, e.g. "vpdpbusd zmm (avx512vnni)" */
    double fp32_gflops;    /* best fp32 FMA loop */
    const char *fp32_loop;
} qrm_peak;

/* Measures the int8 and fp32 loops of one kernel family (its name: "avx512",
 * "avx2", "neon", "dotprod", "i8mm"; "scalar" has none and gets 0), so that
 * a family's GEMMs are fractions of its own instructions' peak. Each loop
 * runs about `seconds` (best of 3 runs). Single thread. */
void qrm_bench_peak(const char *family, double seconds, qrm_peak *out);

/* `qrm-bench kernels [-f FAMILY] [--json] [--quick]`: the peak loops, then
 * each kernel of a family (QRM_ISA / the best one by default) at the shapes of
 * a Qwen3-0.6B layer. argv holds the arguments after "kernels" (argv[0] is
 * the first of them). Returns the process exit code. */
int qrm_bench_kernels(int argc, char **argv);

#endif
