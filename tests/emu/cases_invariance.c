/* Batch invariance of the avx512 family, bit for bit (what
 * tests/test_kernel_invariance.c and the exact scoring tests ask of every
 * family the CPU runs): a result may not depend on which other tokens share
 * its call, on its place in a register tile, on how columns or panels were
 * split, or, for attention, on trailing keys whose probability is 0. The
 * guest computes every variant; the host compares them with memcmp. */
#include <string.h>

#include "cases.h"
#include "f16.h"
#include "harness.h"

#define QK QRM_QK

#ifdef HOST
/* Section s of buf (each M x N floats) against section 0. */
static void same_as_first(const float *buf, int sections, int M, int N, const char *const *what) {
    size_t sz = (size_t)M * N;
    for (int s = 1; s < sections; s++)
        for (size_t i = 0; i < sz; i++)
            if (memcmp(&buf[i], &buf[s * sz + i], 4)) {
                check_fail("%s: y[%d][%d] %.9g, one call %.9g", what[s - 1], (int)(i / N),
                           (int)(i % N), (double)buf[s * sz + i], (double)buf[i]);
                break;
            }
}
#endif

/* gemm_f32 / gemm_f16: one call; every token alone; columns in odd ranges
 * (an attention score can come out of a 4-column group or a tail). */
static void gemm_float_invariance(int f16) {
    enum { M = 9, N = 37, K = 100, S = 3 };
    case_begin();
    case_name("invariance gemm_f%d M=%d N=%d K=%d", f16 ? 16 : 32, M, N, K);
    float *x = case_alloc(M * K * 4), *wf = case_alloc(N * K * 4);
    uint16_t *wh = case_alloc(N * K * 2);
    float *y = case_alloc((size_t)S * M * N * 4);
    rng_seed(f16 ? 711 : 710);
    for (int i = 0; i < M * K; i++) x[i] = rnd_sym(1.0f);
    for (int i = 0; i < N * K; i++) wf[i] = rnd_sym(0.1f), wh[i] = qrm_f32_to_f16(wf[i]);
    input_hash(x, M * K * 4), input_hash(f16 ? (void *)wh : (void *)wf, N * K * (f16 ? 2 : 4));
#define GEMM(xp, m, n0, n1, yp)                                                                \
    (f16 ? kern->gemm_f16((xp), K, (m), wh, K, (n0), (n1), (yp), N)                           \
         : kern->gemm_f32((xp), K, (m), wf, K, (n0), (n1), (yp), N))
    GEMM(x, M, 0, N, y);
    for (int m = 0; m < M; m++) GEMM(x + m * K, 1, 0, N, y + (size_t)M * N + (size_t)m * N);
    static const int edges[] = {0, 1, 4, 7, 8, 13, 16, 17, 31, N};
    for (int e = 0; e + 1 < (int)(sizeof edges / sizeof edges[0]); e++)
        GEMM(x, M, edges[e], edges[e + 1], y + (size_t)2 * M * N);
#undef GEMM
    record(y, (size_t)S * M * N * 4);
#ifdef HOST
    static const char *const what[] = {"a token alone", "column ranges"};
    check_begin();
    same_as_first(y, S, M, N, what);
    check_end();
#endif
    case_end();
}

/* gemm_q8 / gemm_q4: one call; tokens in slices of 1, 2, 3, 5; panel by
 * panel (as threads split them). */
static void gemm_q_invariance(int type) {
    enum { M = 9, N = 48, K = 96, G = K / QK, S = 6 };
    static const int cuts[] = {1, 2, 3, 5};
    case_begin();
    case_name("invariance gemm_q%d M=%d N=%d K=%d", type == QRM_WQ8 ? 8 : 4, M, N, K);
    size_t nq = type == QRM_WQ8 ? (size_t)N * K : (size_t)N * K / 2;
    float *x = case_alloc(M * K * 4);
    uint8_t *q = case_alloc(nq);
    uint16_t *d = case_alloc((size_t)N * G * 2);
    qrm_qact a = {M, K, case_alloc(M * K), case_alloc(M * G * 4), case_alloc(M * G * 4)};
    float *y = case_alloc((size_t)S * M * N * 4);
    rng_seed(type == QRM_WQ8 ? 720 : 721);
    for (int i = 0; i < M * K; i++) x[i] = rnd_sym(i % 17 ? 1.0f : 8.0f);
    for (size_t i = 0; i < nq; i++) q[i] = (uint8_t)rnd();
    for (int i = 0; i < N * G; i++) d[i] = qrm_f32_to_f16(0.01f + 0.01f * rnd_unit());
    input_hash(x, M * K * 4), input_hash(q, nq), input_hash(d, (size_t)N * G * 2);
    qrm_qweight w = {type, N, K, q, d, 0};
    void (*gemm)(const qrm_qact *, const qrm_qweight *, int, int, float *, size_t) =
        type == QRM_WQ8 ? kern->gemm_q8 : kern->gemm_q4;
    kern->quantize_act(x, K, &a);
    gemm(&a, &w, 0, N / QRM_PANEL, y, N);
    for (int c = 0; c < 4; c++)
        for (int m0 = 0; m0 < M; m0 += cuts[c]) {
            int mm = M - m0 < cuts[c] ? M - m0 : cuts[c];
            qrm_qact sub = {mm, K, a.q + (size_t)m0 * K, a.d + (size_t)m0 * G, a.s + (size_t)m0 * G};
            gemm(&sub, &w, 0, N / QRM_PANEL, y + (size_t)(1 + c) * M * N + (size_t)m0 * N, N);
        }
    for (int p = 0; p < N / QRM_PANEL; p++) gemm(&a, &w, p, p + 1, y + (size_t)5 * M * N, N);
    record(y, (size_t)S * M * N * 4);
#ifdef HOST
    static const char *const what[] = {"slices of 1", "slices of 2", "slices of 3",
                                       "slices of 5", "panel by panel"};
    check_begin();
    same_as_first(y, S, M, N, what);
    check_end();
#endif
    case_end();
}

/* Attention's probabilities x V as the forward pass calls it: a block of M
 * rows over n keys, row m's probabilities 0 past its own nt = n - (M-1-m)
 * keys, must give row m's bits alone over nt keys. */
static void wsum_block_invariance(int f16) {
    enum { M = 11, NK = 45, D = 40 };
    case_begin();
    case_name("invariance wsum_rows_f%d block of %d rows, %d keys, d=%d", f16 ? 16 : 32, M, NK, D);
    float *w = case_alloc(M * NK * 4), *v = case_alloc(NK * D * 4);
    uint16_t *vh = case_alloc(NK * D * 2);
    float *o = case_alloc((size_t)2 * M * D * 4);
    rng_seed(f16 ? 731 : 730);
    for (int m = 0; m < M; m++)
        for (int t = 0; t < NK; t++) w[m * NK + t] = t < NK - (M - 1 - m) ? rnd_unit() / NK : 0.0f;
    for (int i = 0; i < NK * D; i++) v[i] = rnd_sym(3.0f), vh[i] = qrm_f32_to_f16(v[i]);
    input_hash(w, M * NK * 4), input_hash(f16 ? (void *)vh : (void *)v, NK * D * (f16 ? 2 : 4));
    if (f16) kern->wsum_rows_f16(o, D, w, NK, M, vh, D, NK, D);
    else kern->wsum_rows_f32(o, D, w, NK, M, v, D, NK, D);
    for (int m = 0; m < M; m++) {
        int nt = NK - (M - 1 - m);
        float *alone = o + (size_t)M * D + (size_t)m * D;
        if (f16) kern->wsum_rows_f16(alone, D, w + m * NK, NK, 1, vh, D, nt, D);
        else kern->wsum_rows_f32(alone, D, w + m * NK, NK, 1, v, D, nt, D);
    }
    record(o, (size_t)2 * M * D * 4);
#ifdef HOST
    static const char *const what[] = {"a row alone over its own keys"};
    check_begin();
    same_as_first(o, 2, M, D, what);
    check_end();
#endif
    case_end();
}

void cases_invariance(void) {
    gemm_float_invariance(0);
    gemm_float_invariance(1);
    gemm_q_invariance(QRM_WQ8);
    gemm_q_invariance(QRM_WQ4);
    wsum_block_invariance(0);
    wsum_block_invariance(1);
}
