/* qrm-bench kernels: each kernel of one family at the shapes of a Qwen3-0.6B
 * layer (hidden 1024, FFN 3072; the q8 GEMM also at Llama-3.2-1B's 2048 and
 * 8192), single thread, next to the peak loops measured in the same run
 * (bench/peak.c).
 *
 * Rates: GEMMs in GOPS = 2*M*N*K / time, and that as a fraction of the int8
 * peak (q8, q4) or the fp32 peak (f32, f16); attention's probabilities x V
 * (wsum_rows) in GFLOP/s of the fp32 peak. For M = 1 (decode) also the
 * weight bytes read per second, since a GEMV is bound by memory. Element-
 * wise kernels in Gelem/s. Each figure is the best of several timed calls
 * after a warm-up, so it is the kernel's speed with its data in cache as far
 * as the shape allows (a 3 MB q8 matrix does not fit in L2).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli_opts.h"
#include "ctx.h"
#include "f16.h"
#include "kernels.h"

typedef struct {
    char kernel[16];
    char shape[40];
    int M, N, K;
    double us;      /* best time per call */
    double rate;    /* GOPS (gemm) or Gelem/s */
    int peak_kind;  /* 0: none, 1: int8 peak, 2: fp32 peak */
    double frac;    /* rate / that peak; < 0 when not applicable */
    double gbps;    /* bytes read from memory per second (M = 1 GEMMs: the weights; attn: K and V); 0 otherwise */
} result;

#define MAX_RESULTS 32

typedef struct {
    const qrm_kernels *k;
    double budget; /* seconds of timed calls per kernel */
    qrm_peak peak;
    result res[MAX_RESULTS];
    int n;
} bench;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(void) { return (float)(rnd() & 0xffffff) / 8388608.0f - 1.0f; } /* [-1, 1) */

/* 64-byte aligned, as the engine's weights (mapped from the file) and its
 * scratch are: with malloc's 16-byte alignment every row of a float GEMM
 * starts mid-line and half the avx2 loads split a cache line, which cost
 * the f32 GEMM a third of its rate here. */
static void *xmalloc(size_t n) {
    size_t rounded = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        fprintf(stderr, "qrm-bench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* What one timed call runs. */
typedef struct {
    const qrm_kernels *k;
    int op;
    int M, N, K;
    float *x, *y, *v, *y0;
    qrm_qact act;
    qrm_qweight w;
    float *wf;
    uint16_t *wh;
    /* OP_ATT16: n_copies (layer, KV head) blocks of an f16 cache, each K
     * in tiles (core/ctx.h) at wh + block * q_stride, V after it; a call
     * runs per_call of them from block `copy` on (then the next ones, so
     * that the blocks rotate through more than any cache holds); the
     * scores into v, the probabilities (fixed) in wf */
    int per_call;
    /* cold: the weights rotate over n_copies copies (q/d at copy * stride),
     * more than any cache holds, so every call reads them from memory as a
     * forward pass does (its 28 layers pass through the caches once) */
    int n_copies, copy;
    size_t q_stride, d_stride;
} work;

enum { OP_Q8, OP_Q4, OP_F32, OP_F16, OP_QUANT, OP_DOT, OP_AXPY, OP_SCALE, OP_RMS, OP_SOFTMAX,
       OP_SILU, OP_GELU, OP_ROPE, OP_WSUM32, OP_WSUM16, OP_ATT16 };

static volatile float sink;

static void run_once(work *t) {
    const qrm_kernels *k = t->k;
    /* In-place kernels start from the same values every call, so repeated
     * calls neither overflow nor drift into subnormals (the copy of at most
     * 12 KB from L1 is part of the time). */
    if (t->y0) memcpy(t->y, t->y0, (size_t)t->K * sizeof(float));
    qrm_qweight w = t->w;
    if (t->n_copies > 1 && t->op != OP_ATT16) {
        w.q += (size_t)t->copy * t->q_stride, w.d += (size_t)t->copy * t->d_stride;
        t->copy = (t->copy + 1) % t->n_copies;
    }
    switch (t->op) {
    case OP_Q8: k->gemm_q8(&t->act, &w, 0, t->N / QRM_PANEL, t->y, (size_t)t->N); break;
    case OP_Q4: k->gemm_q4(&t->act, &w, 0, t->N / QRM_PANEL, t->y, (size_t)t->N); break;
    case OP_F32: k->gemm_f32(t->x, (size_t)t->K, t->M, t->wf, t->K, 0, t->N, t->y, (size_t)t->N); break;
    case OP_F16: k->gemm_f16(t->x, (size_t)t->K, t->M, t->wh, t->K, 0, t->N, t->y, (size_t)t->N); break;
    case OP_QUANT: k->quantize_act(t->x, (size_t)t->K, &t->act); break;
    case OP_DOT: sink = k->dot_f32(t->x, t->v, t->K); break;
    case OP_AXPY: k->axpy_f32(t->y, 1e-3f, t->x, t->K); break;
    case OP_SCALE: k->scale_f32(t->y, 0.999f, t->K); break;
    case OP_RMS: k->rmsnorm_f32(t->y, t->x, t->v, t->K, 1e-6f); break;
    case OP_SOFTMAX: k->softmax_f32(t->y, t->K); break;
    case OP_SILU: k->silu_mul_f32(t->y, t->v, t->K); break;
    case OP_GELU: k->gelu_tanh_mul_f32(t->y, t->v, t->K); break;
    case OP_ROPE: k->rope_neox_f32(t->y, t->x, t->v, t->K); break;
    /* probabilities [M][N] times V [N][K] into y [M][K] */
    case OP_WSUM32: k->wsum_rows_f32(t->y, (size_t)t->K, t->x, (size_t)t->N, t->M, t->wf, (size_t)t->K, t->N, t->K); break;
    case OP_WSUM16: k->wsum_rows_f16(t->y, (size_t)t->K, t->x, (size_t)t->N, t->M, t->wh, (size_t)t->K, t->N, t->K); break;
    case OP_ATT16: /* a token's M heads over N keys (K [tile][K][QRM_KTILE], then V [N][K]) in every block */
        for (int i = 0; i < t->per_call; i++) {
            int blk = (t->copy + i) % t->n_copies;
            const uint16_t *kb = t->wh + (size_t)blk * t->q_stride, *vb = kb + t->q_stride / 2;
            memset(t->v, 0, (size_t)t->M * t->N * sizeof(float));
            for (int x = 0; x < t->N; x += QRM_KTILE) {
                int len = t->N - x < QRM_KTILE ? t->N - x : QRM_KTILE;
                k->wsum_rows_f16(t->v + x, (size_t)t->N, t->x, (size_t)t->K, t->M, kb + (size_t)x * t->K,
                                 QRM_KTILE, t->K, len);
            }
            memset(t->y, 0, (size_t)t->M * t->K * sizeof(float));
            k->wsum_rows_f16(t->y, (size_t)t->K, t->wf, (size_t)t->N, t->M, vb, (size_t)t->K, t->N, t->K);
        }
        t->copy = (t->copy + t->per_call) % t->n_copies;
        break;
    default: break;
    }
}

/* Best seconds per call: one warm-up call, then batches of calls until the
 * budget is spent (at least 3 batches, unless one call alone takes longer
 * than the budget). A batch lasts >= 2 ms so that reading the thread clock
 * (a system call, ~0.5 us in a VM) is noise even for a 100 ns kernel. */
static double time_it(work *t, double budget) {
    double t0 = qrm_bench_thread_seconds();
    run_once(t);
    double first = qrm_bench_thread_seconds() - t0;
    if (first > budget) return first;
    long reps = 1;
    while (reps < (1L << 24)) { /* calibrate the batch */
        double a = qrm_bench_thread_seconds();
        for (long r = 0; r < reps; r++) run_once(t);
        if (qrm_bench_thread_seconds() - a >= 2e-3) break;
        reps *= 2;
    }
    double best = 1e30, start = qrm_bench_thread_seconds();
    for (int i = 0; i < 100000; i++) {
        double a = qrm_bench_thread_seconds();
        for (long r = 0; r < reps; r++) run_once(t);
        double dt = (qrm_bench_thread_seconds() - a) / (double)reps;
        if (dt < best) best = dt;
        if (i >= 2 && qrm_bench_thread_seconds() - start > budget) break;
    }
    return best;
}

static result *add_result(bench *b, const char *kernel) {
    if (b->n >= MAX_RESULTS) return NULL;
    result *r = &b->res[b->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->kernel, sizeof r->kernel, "%s", kernel);
    r->frac = -1;
    return r;
}

/* cold: the weights read from memory on every call (quantized weights only;
 * ignored for float ones) */
static void bench_gemm_(bench *b, int op, int M, int K, int N, int cold) {
    static const char *names[] = {"gemm_q8", "gemm_q4", "gemm_f32", "gemm_f16"};
    static const char *cold_names[] = {"gemm_q8 cold", "gemm_q4 cold"};
    cold = cold && (op == OP_Q8 || op == OP_Q4);
    work t;
    memset(&t, 0, sizeof t);
    t.k = b->k, t.op = op, t.M = M, t.N = N, t.K = K;
    t.x = xmalloc((size_t)M * K * sizeof(float));
    t.y = xmalloc((size_t)M * N * sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++) t.x[i] = rndf();
    size_t wbytes = 0;
    if (op == OP_Q8 || op == OP_Q4) {
        int G = K / QRM_QK;
        t.act.M = M, t.act.K = K;
        t.act.q = xmalloc((size_t)M * K);
        t.act.d = xmalloc((size_t)M * G * sizeof(float));
        t.act.s = xmalloc((size_t)M * G * sizeof(int32_t));
        b->k->quantize_act(t.x, (size_t)K, &t.act);
        size_t nq = (size_t)N * K / (op == OP_Q8 ? 1 : 2), nd = (size_t)N * G;
        t.n_copies = cold ? (int)((512u << 20) / (nq + 2 * nd)) + 1 : 1; /* 512 MB */
        t.q_stride = (nq + 63) / 64 * 64, t.d_stride = (nd + 31) / 32 * 32;
        uint8_t *q = xmalloc(t.q_stride * (size_t)t.n_copies);
        uint16_t *d = xmalloc(t.d_stride * sizeof(uint16_t) * (size_t)t.n_copies);
        for (size_t i = 0; i < nq; i++) q[i] = (uint8_t)rnd();
        for (size_t i = 0; i < nd; i++) d[i] = qrm_f32_to_f16(0.01f * (1.0f + rndf()));
        for (int c = 1; c < t.n_copies; c++) {
            memcpy(q + (size_t)c * t.q_stride, q, nq);
            memcpy(d + (size_t)c * t.d_stride, d, nd * sizeof(uint16_t));
        }
        t.w.type = op == OP_Q8 ? QRM_WQ8 : QRM_WQ4, t.w.N = N, t.w.K = K, t.w.q = q, t.w.d = d;
        wbytes = nq + (size_t)N * G * sizeof(uint16_t);
    } else if (op == OP_F32) {
        t.wf = xmalloc((size_t)N * K * sizeof(float));
        for (size_t i = 0; i < (size_t)N * K; i++) t.wf[i] = 0.05f * rndf();
        wbytes = (size_t)N * K * sizeof(float);
    } else {
        t.wh = xmalloc((size_t)N * K * sizeof(uint16_t));
        for (size_t i = 0; i < (size_t)N * K; i++) t.wh[i] = qrm_f32_to_f16(0.05f * rndf());
        wbytes = (size_t)N * K * sizeof(uint16_t);
    }
    double s = time_it(&t, b->budget);
    result *r = add_result(b, cold ? cold_names[op] : names[op]);
    if (r) {
        snprintf(r->shape, sizeof r->shape, "M=%d K=%d N=%d", M, K, N);
        r->M = M, r->N = N, r->K = K;
        r->us = s * 1e6;
        r->rate = 2.0 * M * (double)N * K / s * 1e-9;
        r->peak_kind = op == OP_Q8 || op == OP_Q4 ? 1 : 2;
        r->gbps = M == 1 ? (double)wbytes / s * 1e-9 : 0;
    }
    free(t.x), free(t.y), free(t.act.q), free(t.act.d), free(t.act.s);
    free((void *)t.w.q), free((void *)t.w.d), free(t.wf), free(t.wh);
}
static void bench_gemm(bench *b, int op, int M, int K, int N) { bench_gemm_(b, op, M, K, N, 0); }

static void bench_vec(bench *b, int op, const char *name, int M, int n) {
    work t;
    memset(&t, 0, sizeof t);
    t.k = b->k, t.op = op, t.M = M, t.K = n;
    size_t len = (size_t)M * n;
    t.x = xmalloc(len * sizeof(float));
    t.y = xmalloc(len * sizeof(float));
    t.v = xmalloc(len * sizeof(float));
    for (size_t i = 0; i < len; i++) t.x[i] = 4 * rndf(), t.y[i] = rndf(), t.v[i] = rndf();
    if (op == OP_QUANT) {
        t.act.M = M, t.act.K = n;
        t.act.q = xmalloc(len);
        t.act.d = xmalloc(len / QRM_QK * sizeof(float));
        t.act.s = xmalloc(len / QRM_QK * sizeof(int32_t));
    }
    if (op == OP_ROPE)
        for (int i = 0; i < n / 2; i++) t.x[i] = cosf(0.1f * (float)i), t.v[i] = sinf(0.1f * (float)i);
    if (op == OP_AXPY || op == OP_SCALE || op == OP_SOFTMAX || op == OP_SILU || op == OP_GELU ||
        op == OP_ROPE) {
        t.y0 = xmalloc(len * sizeof(float));
        memcpy(t.y0, t.y, len * sizeof(float));
    }
    double s = time_it(&t, b->budget);
    result *r = add_result(b, name);
    if (r) {
        if (M > 1)
            snprintf(r->shape, sizeof r->shape, "M=%d n=%d", M, n);
        else
            snprintf(r->shape, sizeof r->shape, "n=%d", n);
        r->M = M, r->K = n;
        r->us = s * 1e6;
        r->rate = (double)len / s * 1e-9;
    }
    free(t.x), free(t.y), free(t.v), free(t.y0), free(t.act.q), free(t.act.d), free(t.act.s);
}

/* wsum_rows, attention's two products: M query rows (tokens x heads of one
 * KV head) times n rows of d. Probabilities x V: n keys, d = head_dim; the
 * scores: n = head_dim, d = keys (the K cache transposed). Rows in f32 or f16
 * (the KV cache). */
static void bench_wsum(bench *b, int f16, int M, int n, int d) {
    work t;
    memset(&t, 0, sizeof t);
    t.k = b->k, t.op = f16 ? OP_WSUM16 : OP_WSUM32, t.M = M, t.N = n, t.K = d;
    t.x = xmalloc((size_t)M * n * sizeof(float));
    t.y = xmalloc((size_t)M * d * sizeof(float));
    for (size_t i = 0; i < (size_t)M * n; i++) t.x[i] = (1.0f + rndf()) / (float)n;
    for (size_t i = 0; i < (size_t)M * d; i++) t.y[i] = 0;
    if (f16) {
        t.wh = xmalloc((size_t)n * d * sizeof(uint16_t));
        for (size_t i = 0; i < (size_t)n * d; i++) t.wh[i] = qrm_f32_to_f16(rndf());
    } else {
        t.wf = xmalloc((size_t)n * d * sizeof(float));
        for (size_t i = 0; i < (size_t)n * d; i++) t.wf[i] = rndf();
    }
    double s = time_it(&t, b->budget);
    result *r = add_result(b, f16 ? "wsum_rows_f16" : "wsum_rows_f32");
    if (r) {
        snprintf(r->shape, sizeof r->shape, "M=%d n=%d d=%d", M, n, d);
        r->M = M, r->N = n, r->K = d;
        r->us = s * 1e6;
        r->rate = 2.0 * M * (double)n * d / s * 1e-9;
        r->peak_kind = 2;
    }
    free(t.x), free(t.y), free(t.wf), free(t.wh);
}

/* A token's attention as a forward pass runs it, out of cache: M query rows
 * (the heads sharing one KV head) over n keys of head_dim d, in each of
 * `blocks` (layer, KV head) blocks of an f16 cache laid out as the engine's
 * (K in tiles of QRM_KTILE slots, V by slot); the scores, then P.V with
 * uniform probabilities (the softmax is not what is timed). Successive
 * calls take the next `blocks` of 256 MB of blocks, so each call reads K and
 * V from memory: its GB/s is comparable with the DRAM read rate. With
 * cold = 0 the same blocks every call (in cache when they fit). */
static void bench_attention_token(bench *b, int M, int n, int d, int blocks, int cold) {
    work t;
    memset(&t, 0, sizeof t);
    t.k = b->k, t.op = OP_ATT16, t.M = M, t.N = n, t.K = d, t.per_call = blocks;
    size_t tiles = (size_t)(n + QRM_KTILE - 1) / QRM_KTILE;
    t.q_stride = 2 * tiles * QRM_KTILE * (size_t)d; /* K's tiles, then V (as many elements) */
    size_t per_block = t.q_stride * sizeof(uint16_t);
    t.n_copies = cold ? (int)(((size_t)256 << 20) / per_block) + 1 : blocks;
    if (t.n_copies < blocks) t.n_copies = blocks;
    t.wh = xmalloc((size_t)t.n_copies * per_block);
    for (size_t i = 0; i < (size_t)t.n_copies * t.q_stride; i++) t.wh[i] = qrm_f32_to_f16(rndf());
    t.x = xmalloc((size_t)M * d * sizeof(float));
    t.v = xmalloc((size_t)M * n * sizeof(float));
    t.y = xmalloc((size_t)M * d * sizeof(float));
    t.wf = xmalloc((size_t)M * n * sizeof(float)); /* uniform probabilities, set once */
    for (size_t i = 0; i < (size_t)M * d; i++) t.x[i] = rndf() * 0.1f;
    for (size_t i = 0; i < (size_t)M * n; i++) t.wf[i] = 1.0f / (float)n;
    double s = time_it(&t, b->budget);
    result *r = add_result(b, cold ? "attn_f16 cold" : "attn_f16");
    if (r) {
        snprintf(r->shape, sizeof r->shape, "M=%d n=%d d=%d x%d", M, n, d, blocks);
        r->M = M, r->N = n, r->K = d;
        r->us = s * 1e6;
        r->rate = 4.0 * M * (double)n * d * blocks / s * 1e-9;
        r->peak_kind = 2;
        r->gbps = 2.0 * 2.0 * (double)n * d * blocks / s * 1e-9; /* the K and V bytes read */
    }
    free(t.wh), free(t.wf), free(t.x), free(t.v), free(t.y);
}

int qrm_bench_kernels(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"--family", 'f', CLI_STRING, "FAMILY", "QRM_ISA, else the best for this CPU",
         "scalar, avx2, avx512, neon, dotprod or i8mm", .many = 0},
        {"--quick", 0, CLI_FLAG, NULL, NULL, "shorter timings and no M=512 runs for slow families", .many = 0},
        {"--json", 0, CLI_FLAG, NULL, NULL, "only JSON on stdout (the table goes to stderr)", .many = 0},
    };
    static const cli_spec spec = {.prog = "qrm-bench kernels", .usage = "qrm-bench kernels [-f FAMILY] [--quick] [--json]",
                                  .about = "each kernel of a family at a Qwen3-0.6B layer's shapes, against this run's peaks",
                                  .opts = opts, .n_opts = 3};
    cli_val v[3];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    const char *family = v[0].str;
    int quick = v[1].count > 0, json = v[2].count > 0;
    const qrm_cpu_features *f = qrm_cpu_features_get();
    char err[160] = "";
    const qrm_kernels *k =
        family ? qrm_kernels_by_name(family, f, err, sizeof err) : qrm_kernels_select(err, sizeof err);
    if (!k) {
        fprintf(stderr, "qrm-bench: %s\n", err);
        return 1;
    }
    static bench b;
    memset(&b, 0, sizeof b);
    b.k = k;
    b.budget = quick ? 0.1 : 0.4;
    char feats[256];
    qrm_cpu_features_str(f, feats, sizeof feats);
    printf("qrm-bench kernels: family %s, 1 thread, cpu: %s, %s\n", k->name, qrm_cpu_name(), feats);
    fflush(stdout);
    qrm_bench_peak(k->name, quick ? 0.05 : 0.2, &b.peak);
    printf("peak int8: %8.1f GOPS    %s\n", b.peak.int8_gops, b.peak.int8_loop);
    printf("peak fp32: %8.1f GFLOPS  %s\n", b.peak.fp32_gflops, b.peak.fp32_loop);
    fflush(stdout);

    /* a family without SIMD would take minutes at M = 512 */
    int big = !(quick && strcmp(k->name, "scalar") == 0);
    int Mp = big ? 512 : 16;
    bench_gemm(&b, OP_Q8, Mp, 1024, 3072);
    bench_gemm(&b, OP_Q8, Mp, 3072, 1024);
    bench_gemm(&b, OP_Q4, Mp, 1024, 3072);
    bench_gemm(&b, OP_Q4, Mp, 3072, 1024);
    bench_gemm(&b, OP_Q8, Mp, 2048, 8192); /* llama-1b: gate/up, down */
    bench_gemm(&b, OP_Q8, Mp, 8192, 2048);
    bench_gemm_(&b, OP_Q8, Mp, 1024, 3072, 1); /* as in a forward pass: weights from memory */
    bench_gemm_(&b, OP_Q4, Mp, 1024, 3072, 1);
    bench_gemm(&b, OP_Q8, 1, 1024, 3072);
    bench_gemm(&b, OP_Q8, 1, 3072, 1024);
    bench_gemm(&b, OP_Q4, 1, 1024, 3072);
    bench_gemm(&b, OP_Q4, 1, 3072, 1024);
    bench_gemm_(&b, OP_Q8, 1, 1024, 3072, 1); /* a token's GEMV, weights from DRAM: its GB/s */
    bench_gemm_(&b, OP_Q4, 1, 1024, 3072, 1);
    bench_gemm(&b, OP_F32, big ? 64 : 8, 1024, 3072);
    bench_gemm(&b, OP_F16, big ? 64 : 8, 1024, 3072);
    bench_gemm(&b, OP_F32, 1, 1024, 3072);
    bench_gemm(&b, OP_F16, 1, 1024, 3072);
    /* attention scores: 16 query rows x 512 keys of head_dim 128, the keys
     * in the lanes (the K cache is transposed), K in f16 and in f32 */
    bench_wsum(&b, 1, 16, 128, 512);
    bench_wsum(&b, 0, 16, 128, 512);
    bench_wsum(&b, 0, 16, 512, 128);       /* attention: probabilities x V */
    bench_wsum(&b, 1, 16, 512, 128);
    bench_wsum(&b, 1, 2, 512, 128);        /* a single token (2 heads per KV head) */
    /* a token's attention after 600 tokens, every layer and KV head of
     * qwen3-0.6b (28 x 8 blocks, 69 MB of f16 K and V): its GB/s */
    bench_attention_token(&b, 2, 600, 128, 28 * 8, big);
    bench_vec(&b, OP_QUANT, "quantize_act", Mp, 1024);
    bench_vec(&b, OP_DOT, "dot_f32", 1, 1024);
    bench_vec(&b, OP_AXPY, "axpy_f32", 1, 1024);
    bench_vec(&b, OP_SCALE, "scale_f32", 1, 1024);
    bench_vec(&b, OP_RMS, "rmsnorm_f32", 1, 1024);
    bench_vec(&b, OP_SOFTMAX, "softmax_f32", 1, 512);
    bench_vec(&b, OP_SILU, "silu_mul_f32", 1, 3072);
    bench_vec(&b, OP_GELU, "gelu_tanh_mul", 1, 3072);
    bench_vec(&b, OP_ROPE, "rope_neox_f32", 1, 128);

    /* The peaks again: on a shared machine the core may have been slower at
     * the start; fractions use the best of both measurements. */
    qrm_peak again;
    qrm_bench_peak(k->name, quick ? 0.05 : 0.2, &again);
    if (again.int8_gops > b.peak.int8_gops) b.peak.int8_gops = again.int8_gops;
    if (again.fp32_gflops > b.peak.fp32_gflops) b.peak.fp32_gflops = again.fp32_gflops;
    printf("peaks measured again: int8 %.1f GOPS, fp32 %.1f GFLOPS (fractions use the best)\n\n",
           again.int8_gops, again.fp32_gflops);
    for (int i = 0; i < b.n; i++) {
        result *r = &b.res[i];
        double peak = r->peak_kind == 1 ? b.peak.int8_gops : r->peak_kind == 2 ? b.peak.fp32_gflops : 0;
        r->frac = peak > 0 ? r->rate / peak : -1;
    }
    printf("%-14s %-22s %11s %10s %8s %9s\n", "kernel", "shape", "us/call", "rate", "of peak",
           "GB/s read");
    for (int i = 0; i < b.n; i++) {
        result *r = &b.res[i];
        char frac[16] = "-", gb[16] = "-";
        if (r->frac >= 0) snprintf(frac, sizeof frac, "%.1f%%", 100 * r->frac);
        if (r->gbps > 0) snprintf(gb, sizeof gb, "%.1f", r->gbps);
        const char *unit = r->peak_kind == 1 ? "GOPS" : r->peak_kind == 2 ? "GFLOP" : "Ge/s";
        printf("%-14s %-22s %11.2f %6.2f %-5s %8s %9s\n", r->kernel, r->shape, r->us, r->rate,
               unit, frac, gb);
    }
    if (json) {
        FILE *j = qrm_bench_json;
        fprintf(j, "{\"bench\":\"kernels\",\"family\":\"%s\",\"threads\":1,\"cpu\":\"%s\","
               "\"peak_int8_gops\":%.2f,\"peak_int8_loop\":\"%s\",\"peak_fp32_gflops\":%.2f,"
               "\"peak_fp32_loop\":\"%s\",\"results\":[",
               k->name, feats, b.peak.int8_gops, b.peak.int8_loop, b.peak.fp32_gflops,
               b.peak.fp32_loop);
        for (int i = 0; i < b.n; i++) {
            result *r = &b.res[i];
            int gemm = strncmp(r->kernel, "gemm", 4) == 0;
            fprintf(j, "%s{\"kernel\":\"%s\",\"M\":%d,\"K\":%d", i ? "," : "", r->kernel, r->M, r->K);
            if (gemm) fprintf(j, ",\"N\":%d", r->N);
            const char *unit = gemm ? "gops" : r->peak_kind == 2 ? "gflops" : "gelem_s";
            fprintf(j, ",\"us\":%.3f,\"%s\":%.3f", r->us, unit, r->rate);
            if (r->frac >= 0) fprintf(j, ",\"frac_peak\":%.4f", r->frac);
            if (r->gbps > 0) fprintf(j, ",\"%s\":%.2f", gemm ? "weight_gb_s" : "read_gb_s", r->gbps);
            fprintf(j, "}");
        }
        fprintf(j, "]}\n");
    }
    return 0;
}
