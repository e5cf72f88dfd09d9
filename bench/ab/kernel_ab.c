/* One binary, two builds of a family's float GEMM: A (a git revision) and B
 * (the working tree), built and renamed by bench/ab/kernel_ab.sh. Both read
 * the same buffers, so where the code lies in memory and where the data lie
 * are the only differences left between them, and the order alternates.
 *
 *   kernel_ab f32|f16|q8|q4 M K N [ROUNDS]
 *
 * Prints each side's median GFLOP/s and B's speed over A's. ROUNDS = 0
 * calls each side once and times nothing: the ARM families are compared by
 * the instructions qemu executes in each function (bench/ab/kernel_ab.sh).
 * Compiled with -DFN_A=... -DFN_B=... naming the two renamed gemm
 * functions. With -DSCORES, B is instead a wsum_rows over W transposed
 * (attention scores with the keys in the lanes, as the K cache is stored
 * since dcdfd17): the same products y = x . W^T, in another order, so the
 * outputs are compared within a tolerance. q8 / q4 time gemm_q8 / gemm_q4
 * (GOPS: 2 M K N integer operations a call) on random packed weights and
 * activation quants: their bits must match. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

typedef void gemm_fn(const float *x, size_t ldx, int M, const void *w, int K, int n0, int n1, float *y,
                     size_t ldy);
void FN_A(const float *, size_t, int, const void *, int, int, int, float *, size_t);
#ifdef SCORES
void FN_B(float *out, size_t ldo, const float *w, size_t ldw, int M, const void *rows, size_t ldr, int n, int d);
static const void *w_transposed; /* [K][N] */

/* y[m][n] = x[m] . W[n] from W^T, as the attention scores are computed. */
static void scores_b(const float *x, size_t ldx, int M, const void *w, int K, int n0, int n1, float *y,
                     size_t ldy) {
    (void)w, (void)n0;
    for (int m = 0; m < M; m++) memset(y + (size_t)m * ldy, 0, (size_t)n1 * sizeof(float));
    FN_B(y, ldy, x, ldx, M, w_transposed, (size_t)n1, K, n1);
}
#else
void FN_B(const float *, size_t, int, const void *, int, int, int, float *, size_t);
#endif

/* The quantized GEMMs' operands (q8 / q4 modes). */
static qrm_qact qa;
static qrm_qweight qw;

#ifdef FN_QA
static void qgemm_a(const float *x, size_t ldx, int M, const void *w, int K, int n0, int n1, float *y,
                    size_t ldy) {
    (void)x, (void)ldx, (void)M, (void)w, (void)K;
    void FN_QA(const qrm_qact *, const qrm_qweight *, int, int, float *, size_t);
    FN_QA(&qa, &qw, n0 / QRM_PANEL, n1 / QRM_PANEL, y, ldy);
}

static void qgemm_b(const float *x, size_t ldx, int M, const void *w, int K, int n0, int n1, float *y,
                    size_t ldy) {
    (void)x, (void)ldx, (void)M, (void)w, (void)K;
    void FN_QB(const qrm_qact *, const qrm_qweight *, int, int, float *, size_t);
    FN_QB(&qa, &qw, n0 / QRM_PANEL, n1 / QRM_PANEL, y, ldy);
}
#endif

static uint64_t rng = 1;
static uint32_t next(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 32);
}

/* Random quants and scales, laid out as arch/kernels.h says. */
static int fill_quantized(int q4, int M, int K, int N) {
    size_t G = (size_t)K / QRM_QK, nq = (size_t)N * (size_t)K / (q4 ? 2 : 1);
    qa = (qrm_qact){.M = M, .K = K, .q = aligned_alloc(64, ((size_t)M * K + 63) / 64 * 64),
                    .d = malloc(sizeof(float) * M * G), .s = malloc(sizeof(int32_t) * M * G)};
    uint8_t *wq = aligned_alloc(64, (nq + 63) / 64 * 64);
    uint16_t *wd = aligned_alloc(64, (2 * (size_t)N * G + 63) / 64 * 64);
    if (!qa.q || !qa.d || !qa.s || !wq || !wd) return -1;
    for (size_t i = 0; i < (size_t)M * G; i++) {
        int32_t sum = 0;
        for (int k = 0; k < QRM_QK; k++) sum += qa.q[i * QRM_QK + k] = (int8_t)((int)(next() % 255) - 127);
        qa.s[i] = sum;
        qa.d[i] = (float)(1 + next() % 1000) / 1e5f;
    }
    for (size_t i = 0; i < nq; i++) wq[i] = (uint8_t)next();
    for (size_t i = 0; i < (size_t)N * G; i++) wd[i] = (uint16_t)(0x2000 + (next() & 0x0fff));
    qw = (qrm_qweight){.type = q4 ? QRM_WQ4 : QRM_WQ8, .N = N, .K = K, .q = wq, .d = wd};
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The best of 20 timings of `reps` calls: the call's own speed, not the
 * machine's interruptions. */
static double seconds_per_call(gemm_fn *f, const float *x, int M, const void *w, int K, int N, float *y,
                               int reps) {
    double best = 1e30;
    for (int s = 0; s < 20; s++) {
        double t0 = now();
        for (int i = 0; i < reps; i++) f(x, (size_t)K, M, w, K, 0, N, y, (size_t)N);
        double dt = (now() - t0) / reps;
        if (dt < best) best = dt;
    }
    return best;
}

/* "bitwise equal", or how far apart the two sides' outputs are */
static const char *same(const float *a, const float *b, size_t n) {
    static char msg[80];
    if (!memcmp(a, b, n * sizeof(float))) return "bitwise equal";
    double worst = 0, top = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > worst) worst = d;
        if (fabs((double)a[i]) > top) top = fabs((double)a[i]);
    }
    snprintf(msg, sizeof msg, "differ (by up to %.2g of the largest output)", top > 0 ? worst / top : worst);
    return msg;
}

/* 64-byte aligned, as the engine's weights (core/format.h) and activation
 * buffers are: a 16-byte aligned row splits a different share of the
 * loads across cache lines, which moved the two sides differently. */
static void *alloc64(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (argc < 5 || (strcmp(mode, "f32") && strcmp(mode, "f16") && strcmp(mode, "q8") && strcmp(mode, "q4"))) {
        fprintf(stderr, "usage: kernel_ab f32|f16|q8|q4 M K N [ROUNDS]\n");
        return 2;
    }
    int f16 = !strcmp(argv[1], "f16"), M = atoi(argv[2]), K = atoi(argv[3]), N = atoi(argv[4]);
    int quant = argv[1][0] == 'q', q4 = !strcmp(argv[1], "q4");
    int rounds = argc > 5 ? atoi(argv[5]) : 9;
    if (M < 1 || K < 1 || N < 1 || rounds < 0 || rounds > 99 ||
        (quant && (K % QRM_QK || N % QRM_PANEL))) {
        fprintf(stderr, "kernel_ab: M, K, N must be >= 1 (q8 / q4: K %% %d == 0, N %% %d == 0) and ROUNDS in [0, 99]\n",
                QRM_QK, QRM_PANEL);
        return 2;
    }
    if (quant && fill_quantized(q4, M, K, N)) {
        fprintf(stderr, "kernel_ab: out of memory\n");
        return 1;
    }
    size_t nw = (size_t)N * (size_t)K;
    float *x = alloc64(sizeof(float) * (size_t)M * (size_t)K), *y = alloc64(sizeof(float) * (size_t)M * (size_t)N);
    float *y2 = alloc64(sizeof(float) * (size_t)M * (size_t)N);
    void *w = alloc64(nw * (f16 ? 2 : 4));
    if (!x || !y || !y2 || !w) {
        fprintf(stderr, "kernel_ab: out of memory\n");
        return 1;
    }
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)M * (size_t)K; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) % 2001) / 1000.0f - 1.0f;
    }
    for (size_t i = 0; i < nw; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        if (f16) ((uint16_t *)w)[i] = (uint16_t)(0x3000 + ((s >> 40) & 0x0fff)); /* 0.125 .. 0.5 */
        else ((float *)w)[i] = (float)((s >> 40) % 2001) / 1000.0f - 1.0f;
    }
#ifdef SCORES
    size_t es = f16 ? 2 : 4;
    char *wt = alloc64(nw * es);
    if (!wt) {
        fprintf(stderr, "kernel_ab: out of memory\n");
        return 1;
    }
    for (size_t n = 0; n < (size_t)N; n++)
        for (size_t k = 0; k < (size_t)K; k++) memcpy(wt + (k * (size_t)N + n) * es, (char *)w + (n * (size_t)K + k) * es, es);
    w_transposed = wt;
    gemm_fn *fn[2] = {(gemm_fn *)FN_A, scores_b};
#else
    gemm_fn *fn[2] = {(gemm_fn *)FN_A, (gemm_fn *)FN_B};
#ifdef FN_QA
    if (quant) fn[0] = qgemm_a, fn[1] = qgemm_b;
#else
    if (quant) {
        fprintf(stderr, "kernel_ab: built without FN_QA / FN_QB (bench/ab/kernel_ab.sh passes them for q8 / q4)\n");
        return 2;
    }
#endif
#endif
    if (rounds == 0) {
        fn[0](x, (size_t)K, M, w, K, 0, N, y, (size_t)N);
        fn[1](x, (size_t)K, M, w, K, 0, N, y2, (size_t)N);
        printf("outputs %s\n", same(y, y2, (size_t)M * (size_t)N));
        free(x), free(y), free(y2), free(w);
        return 0;
    }
    double flop = 2.0 * M * K * N;
    int reps = (int)(1e8 / flop); /* ~2 ms a timing at 50 GFLOP/s */
    if (reps < 1) reps = 1;
    double t[2][99];
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < 2; i++) {
            int v = (r & 1) ? 1 - i : i; /* A B, B A, A B, ... */
            t[v][r] = seconds_per_call(fn[v], x, M, w, K, N, y, reps);
        }
    fn[0](x, (size_t)K, M, w, K, 0, N, y, (size_t)N);
    fn[1](x, (size_t)K, M, w, K, 0, N, y2, (size_t)N);
    double med[2];
    for (int v = 0; v < 2; v++) {
        qsort(t[v], (size_t)rounds, sizeof(double), by_value);
        med[v] = t[v][rounds / 2];
    }
    const char *unit = quant ? "GOPS" : "GFLOP/s";
    printf("gemm_%s M=%d K=%d N=%d, %d rounds: A %.1f %s, B %.1f %s, B/A speed %.3f, outputs %s\n",
           argv[1], M, K, N, rounds, flop / med[0] / 1e9, unit, flop / med[1] / 1e9, unit, med[0] / med[1],
           same(y, y2, (size_t)M * (size_t)N));
    free(x), free(y), free(y2), free(w);
    return 0;
}
