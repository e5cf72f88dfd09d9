#include "quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "kernels.h"
#include "pool.h"

size_t qrm_quant_size(int type, int N, int K) {
    size_t n = (size_t)N * K;
    return (type == QRM_WQ8 ? n : n / 2) + n / QRM_QK * 2;
}

uint16_t qrm_quantize_group_q8(const float *x, int8_t *q) {
    float amax = 0;
    for (int i = 0; i < QRM_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
    uint16_t d16 = qrm_f32_to_f16(amax / 127.0f);
    float d = qrm_f16_to_f32(d16);
    for (int i = 0; i < QRM_QK; i++) {
        int v = d > 0 ? (int)lrintf(x[i] / d) : 0;
        q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return d16;
}

/* w (may be NULL: all 1) weights each element's squared error. */
static float q4_error(const float *x, const float *w, float d, int8_t *q) {
    float e = 0;
    for (int i = 0; i < QRM_QK; i++) {
        int v = d != 0 ? (int)lrintf(x[i] / d) : 0;
        v = v > 7 ? 7 : v < -8 ? -8 : v;
        q[i] = (int8_t)v;
        float r = x[i] - d * (float)v;
        e += w ? w[i] * r * r : r * r;
    }
    return e;
}

/* Scale search for 4 bits: plain absmax rounding (d = amax / 7) wastes the
 * -8 level and ignores where the other values fall. Try scales that map the
 * largest value to -8 or to 7 and a sweep of +-0.2 around them, refine each
 * with the least-squares scale for its rounding, keep the one with the least
 * squared error (measured with the f16-rounded scale that the file stores).
 * Measured on Gaussian groups (README, "Quantization"): 8.17% relative RMS
 * error against 9.71% for absmax/7 and 8.59% for Q4_0's max/-8; a +-1.0
 * sweep reaches 8.09% but converts 6x slower. */
uint16_t qrm_quantize_group_q4(const float *x, int8_t *q) { return qrm_quantize_group_q4_weighted(x, NULL, q); }

/* The same search with each element's error weighted by w[i] (the mean
 * square of the activation it multiplies): the least-squares refinement
 * and the comparison then minimize the expected output error of the group
 * rather than the weight error, as AWQ / llama.cpp's importance matrix do. */
uint16_t qrm_quantize_group_q4_weighted(const float *x, const float *w, int8_t *q) {
    float amax = 0, vmax = 0;
    for (int i = 0; i < QRM_QK; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), vmax = x[i];
    if (amax == 0) {
        memset(q, 0, QRM_QK);
        return 0;
    }
    int8_t tmp[QRM_QK];
    float best_err = INFINITY;
    uint16_t best = 0;
    for (int step = -2; step <= 2; step++) {
        for (int side = 0; side < 2; side++) {
            /* side 0: the extreme value lands near -8; side 1: near +7 (sign-aware) */
            float target = side == 0 ? -8.0f : 7.0f;
            float d = vmax / (target + 0.1f * (float)step * (target < 0 ? -1 : 1));
            for (int refine = 0; refine < 2; refine++) {
                uint16_t d16 = qrm_f32_to_f16(d);
                float err = q4_error(x, w, qrm_f16_to_f32(d16), tmp);
                if (err < best_err) {
                    best_err = err;
                    best = d16;
                    memcpy(q, tmp, QRM_QK);
                }
                /* least-squares scale for this rounding */
                float sxq = 0, sqq = 0;
                if (w)
                    for (int i = 0; i < QRM_QK; i++) sxq += w[i] * x[i] * tmp[i], sqq += w[i] * (float)(tmp[i] * tmp[i]);
                else
                    for (int i = 0; i < QRM_QK; i++) sxq += x[i] * tmp[i], sqq += (float)(tmp[i] * tmp[i]);
                if (sqq == 0) break;
                d = sxq / sqq;
            }
        }
    }
    return best;
}

void qrm_quantize_panel(int type, const float *rows, int K, int p, int N, uint8_t *out) {
    qrm_quantize_panel_weighted(type, rows, K, p, N, out, NULL);
}

/* Panel p's group g from its 16 rows' quants, in the layout of arch/kernels.h. */
static void pack_group(int type, int8_t q[QRM_PANEL][QRM_QK], uint8_t *blk) {
    if (type == QRM_WQ4) memset(blk, 0, 256);
    for (int k4 = 0; k4 < 8; k4++)
        for (int r = 0; r < QRM_PANEL; r++)
            for (int j = 0; j < 4; j++) {
                int e = k4 * 64 + r * 4 + j;
                int8_t v = q[r][k4 * 4 + j];
                if (type == QRM_WQ8) blk[e] = (uint8_t)v;
                else blk[e & 255] |= (uint8_t)((v + 8) << (e < 256 ? 0 : 4));
            }
}

void qrm_quantize_panel_weighted(int type, const float *rows, int K, int p, int N, uint8_t *out,
                                 const float *imp) {
    int G = K / QRM_QK;
    size_t qbytes = type == QRM_WQ8 ? (size_t)N * K : (size_t)N * K / 2;
    uint16_t *scales = (uint16_t *)(out + qbytes);
    size_t bsize = type == QRM_WQ8 ? 512 : 256;
    for (int g = 0; g < G; g++) {
        int8_t q[QRM_PANEL][QRM_QK];
        for (int r = 0; r < QRM_PANEL; r++) {
            const float *x = rows + (size_t)r * K + (size_t)g * QRM_QK;
            scales[((size_t)p * G + g) * QRM_PANEL + r] =
                type == QRM_WQ8 ? qrm_quantize_group_q8(x, q[r])
                                : qrm_quantize_group_q4_weighted(x, imp ? imp + (size_t)g * QRM_QK : NULL, q[r]);
        }
        pack_group(type, q, out + ((size_t)p * G + g) * bsize);
    }
}

/* ---- activation-aware int4 of a whole matrix (qrm-convert --calib) ---- */

/* The loops below run on the converter's thread pool when it has one. Every
 * element is computed by one task with the same arithmetic in the same order
 * as a serial loop would use, so the file is the same whatever the number of
 * threads. */
static void par(qrm_pool *pool, int n, qrm_task_fn fn, void *arg) {
    if (pool && n > 1) qrm_pool_run(pool, n, fn, arg);
    else
        for (int i = 0; i < n; i++) fn(arg, i, 0);
}

/* Rows in tasks of ROWS_PER_TASK: enough work per task to hide the hand-out. */
enum { ROWS_PER_TASK = 8 };
static int row_tasks(int N) { return (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK; }

typedef struct {
    const float *W, *w;
    int N, K;
    int8_t *q;
    uint16_t *d;
} rows_job;

static void rows_task(void *arg, int task, int thread) {
    const rows_job *j = arg;
    int G = j->K / QRM_QK;
    for (int n = task * ROWS_PER_TASK; n < j->N && n < (task + 1) * ROWS_PER_TASK; n++)
        for (int g = 0; g < G; g++)
            j->d[(size_t)n * G + g] = qrm_quantize_group_q4_weighted(j->W + (size_t)n * j->K + g * QRM_QK,
                                                                     j->w ? j->w + g * QRM_QK : NULL,
                                                                     j->q + (size_t)n * j->K + g * QRM_QK);
}

/* Every row group by group, weighted by w[K] (NULL: plain). */
static void q4_rows(qrm_pool *pool, const float *W, int N, int K, const float *w, int8_t *q, uint16_t *d) {
    rows_job j = {W, w, N, K, q, d};
    par(pool, row_tasks(N), rows_task, &j);
}

typedef struct {
    double *a;
    int K, j;
    double s;
} chol_job;

static void chol_task(void *arg, int i, int thread) {
    const chol_job *c = arg;
    int K = c->K, j = c->j;
    i += j + 1;
    double t = c->a[(size_t)i * K + j];
    for (int k = 0; k < j; k++) t -= c->a[(size_t)i * K + k] * c->a[(size_t)j * K + k];
    c->a[(size_t)i * K + j] = t / c->s;
}

/* In-place lower Cholesky factor of the symmetric K x K matrix a; -1 when
 * it is not positive definite. */
static int cholesky(qrm_pool *pool, double *a, int K) {
    for (int j = 0; j < K; j++) {
        double s = a[(size_t)j * K + j];
        for (int k = 0; k < j; k++) s -= a[(size_t)j * K + k] * a[(size_t)j * K + k];
        if (!(s > 0)) return -1;
        s = sqrt(s);
        a[(size_t)j * K + j] = s;
        chol_job c = {a, K, j, s};
        /* a column's entries are independent; a short column is not worth
         * waking the pool for */
        par(K - j - 1 >= 64 && j >= 64 ? pool : NULL, K - j - 1, chol_task, &c);
        for (int i = 0; i < j; i++) a[(size_t)i * K + j] = 0;
    }
    return 0;
}

typedef struct {
    const float *W, *X;
    int N, K, T;
    double *h, *inv;
    float *w;          /* [threads][K] */
    int8_t *q;
    uint16_t *d;
} gptq_job;

static void hessian_task(void *arg, int i, int thread) {   /* row i of X^T X, lower half */
    const gptq_job *g = arg;
    double *hi = g->h + (size_t)i * g->K;
    for (int t = 0; t < g->T; t++) {
        const float *x = g->X + (size_t)t * g->K;
        for (int j = 0; j <= i; j++) hi[j] += (double)x[i] * x[j];
    }
}

static void invert_task(void *arg, int c, int thread) {     /* column c of L^-1, stored as row c */
    const gptq_job *g = arg;
    int K = g->K;
    double *ic = g->inv + (size_t)c * K;
    for (int i = c; i < K; i++) {
        const double *hi = g->h + (size_t)i * K;
        double s = i == c ? 1.0 : 0.0;
        for (int k = c; k < i; k++) s -= hi[k] * ic[k];
        ic[i] = s / hi[i];
    }
}

static void gram_task(void *arg, int i, int thread) {       /* row i of Linv^T Linv into h */
    const gptq_job *g = arg;
    int K = g->K;
    for (int j = 0; j <= i; j++) {
        const double *ii = g->inv + (size_t)i * K, *ij = g->inv + (size_t)j * K;
        double s = 0;
        for (int k = i; k < K; k++) s += ii[k] * ij[k];
        g->h[(size_t)i * K + j] = s;
    }
}

static void sweep_task(void *arg, int task, int thread) {   /* GPTQ's column sweep over some rows */
    const gptq_job *j = arg;
    int K = j->K, G = K / QRM_QK;
    float *w = j->w + (size_t)thread * K;
    for (int n = task * ROWS_PER_TASK; n < j->N && n < (task + 1) * ROWS_PER_TASK; n++) {
        memcpy(w, j->W + (size_t)n * K, (size_t)K * sizeof *w);
        int8_t *qr = j->q + (size_t)n * K;
        for (int g = 0; g < G; g++) {
            uint16_t d16 = qrm_quantize_group_q4_weighted(w + g * QRM_QK, NULL, qr + g * QRM_QK);
            float dg = qrm_f16_to_f32(d16);
            j->d[(size_t)n * G + g] = d16;
            for (int i = g * QRM_QK; i < (g + 1) * QRM_QK; i++) {
                int v = dg != 0 ? (int)lrintf(w[i] / dg) : 0;
                v = v > 7 ? 7 : v < -8 ? -8 : v;
                qr[i] = (int8_t)v;
                const double *ui = j->inv + (size_t)i * K;
                double e = (w[i] - dg * (float)v) / ui[i];
                for (int k = i + 1; k < K; k++) w[k] -= (float)(e * ui[k]);
            }
        }
    }
}

/* GPTQ (Frantar et al. 2022, Algorithm 1, with groups): columns are
 * quantized left to right and each one's error, scaled by the inverse
 * Hessian H^-1 = (X^T X + damping)^-1 of the layer's output error, is
 * pushed onto the columns not yet quantized, where the correlated inputs
 * can absorb it. A group's scale is searched (plain) on its weights as the
 * updates left them, then fixed for its columns. 0, or -1 when H cannot be
 * factored or memory is short (the caller falls back). */
static int q4_gptq(qrm_pool *pool, const float *W, int N, int K, const float *X, int T, double damp, int8_t *q,
                   uint16_t *d) {
    int rc = -1, threads = pool ? qrm_pool_threads(pool) : 1;
    double *h = calloc((size_t)K * K, sizeof *h), *inv = calloc((size_t)K * K, sizeof *inv);
    float *w = malloc((size_t)K * threads * sizeof *w);
    gptq_job job = {W, X, N, K, T, h, inv, w, q, d};
    if (!h || !inv || !w) goto out;
    par(pool, K, hessian_task, &job);
    double mean = 0;
    for (int i = 0; i < K; i++) mean += h[(size_t)i * K + i];
    mean = mean > 0 ? mean / K : 1;
    /* damping keeps H invertible when the sample has fewer rows than
     * channels or a channel never fires, and trusts a small sample's
     * correlations less (GPTQ's default is 1 %) */
    for (int i = 0; i < K; i++) {
        h[(size_t)i * K + i] += damp * mean;
        for (int j = 0; j < i; j++) h[(size_t)j * K + i] = h[(size_t)i * K + j];
    }
    if (cholesky(pool, h, K)) goto out;
    /* H^-1 = L^-T L^-1: invert L (lower) column by column, then multiply.
     * inv holds L^-1 transposed (its row c is column c), and the sweep
     * reads U = L2^T by rows, so every inner loop walks memory in order: the
     * same arithmetic in the same order as by columns, without a cache miss
     * per step at K in the thousands. */
    par(pool, K, invert_task, &job);
    par(pool, K, gram_task, &job);   /* h <- H^-1 (h's factor is done with), lower half */
    for (int i = 0; i < K; i++)
        for (int j = 0; j < i; j++) h[(size_t)j * K + i] = h[(size_t)i * K + j];
    if (cholesky(pool, h, K)) goto out;   /* H^-1 = L2 L2^T; GPTQ's upper factor is U = L2^T */
    for (int i = 0; i < K; i++)           /* inv <- U, row by row */
        for (int j = i; j < K; j++) inv[(size_t)i * K + j] = h[(size_t)j * K + i];
    par(pool, row_tasks(N), sweep_task, &job);
    rc = 0;
out:
    free(h), free(inv), free(w);
    return rc;
}

typedef struct {
    const float *W, *X;
    int N, K, T;
    const int8_t *q;
    const uint16_t *d;
    float *r;          /* [threads][K] */
    double *row_err;   /* [N] */
} err_job;

static void err_task(void *arg, int task, int thread) {
    const err_job *j = arg;
    int K = j->K, G = K / QRM_QK;
    float *r = j->r + (size_t)thread * K;
    for (int n = task * ROWS_PER_TASK; n < j->N && n < (task + 1) * ROWS_PER_TASK; n++) {
        for (int k = 0; k < K; k++)
            r[k] = j->W[(size_t)n * K + k] -
                   qrm_f16_to_f32(j->d[(size_t)n * G + k / QRM_QK]) * (float)j->q[(size_t)n * K + k];
        double err = 0;
        for (int t = 0; t < j->T; t++) {
            const float *x = j->X + (size_t)t * K;
            double e = 0;
            for (int k = 0; k < K; k++) e += (double)x[k] * r[k];
            err += e * e;
        }
        j->row_err[n] = err;
    }
}

/* sum over rows X[t] of ||(W - dequant(q, d)) x_t||^2, summed row by row of
 * W in order (the same total for any number of threads); -1 when memory is
 * short */
static double q4_output_error(qrm_pool *pool, const float *W, int N, int K, const int8_t *q, const uint16_t *d,
                              const float *X, int T) {
    int threads = pool ? qrm_pool_threads(pool) : 1;
    float *r = malloc((size_t)K * threads * sizeof *r);
    double *row_err = malloc((size_t)N * sizeof *row_err), err = 0;
    if (!r || !row_err) {
        free(r), free(row_err);
        return -1;
    }
    err_job j = {W, X, N, K, T, q, d, r, row_err};
    par(pool, row_tasks(N), err_task, &j);
    for (int n = 0; n < N; n++) err += row_err[n];
    free(r), free(row_err);
    return err;
}

/* imp^alpha normalized to mean 1 (the float sums of the search stay in range) */
static void powered(const float *imp, int K, double alpha, float *w) {
    double mean = 0;
    for (int k = 0; k < K; k++) mean += pow(imp[k], alpha);
    mean /= K;
    for (int k = 0; k < K; k++) w[k] = (float)(pow(imp[k], alpha) / mean);
}

static const double alphas[] = {0.25, 0.5, 0.75, 1}, damps[] = {0.01, 0.1, 1};
enum { N_ALPHA = sizeof alphas / sizeof *alphas, N_DAMP = sizeof damps / sizeof *damps };

/* candidate c: 0 plain, 1..N_ALPHA weighted by imp^alpha, then GPTQ by damping */
static int q4_candidate(qrm_pool *pool, int c, const float *W, int N, int K, const float *imp, const float *X, int T,
                        float *w, int8_t *q, uint16_t *d) {
    if (c == 0) q4_rows(pool, W, N, K, NULL, q, d);
    else if (c <= N_ALPHA) {
        powered(imp, K, alphas[c - 1], w);
        q4_rows(pool, W, N, K, w, q, d);
    } else return q4_gptq(pool, W, N, K, X, T, damps[c - N_ALPHA - 1], q, d);
    return 0;
}

int qrm_quantize_q4_calibrated(const float *W, int N, int K, const float *imp, const float *X, const int *line,
                               int T, uint8_t *out, qrm_q4_choice *ch, qrm_pool *pool) {
    int G = K / QRM_QK, rc = -1, Tf = 0, Th = 0;
    /* held out by line: rows of one line are alike, so a split within lines
     * would not show a method that only fits the calibration text */
    for (int t = 0; t < T; t++) Th += line[t] % 2;
    if (!Th || Th == T) line = NULL, Th = T / 2;
    Tf = T - Th;
    int8_t *q = malloc((size_t)N * K);
    uint16_t *d = malloc((size_t)N * G * sizeof *d);
    float *w = malloc((size_t)K * sizeof *w);
    float *xf = malloc((size_t)K * (Tf ? Tf : 1) * sizeof *xf), *xh = malloc((size_t)K * (Th ? Th : 1) * sizeof *xh);
    float *impf = malloc((size_t)K * sizeof *impf);
    if (!q || !d || !w || !xf || !xh || !impf) goto out;
    /* every method is fitted on one part of the sample and judged on the
     * other, so a method that only fits its own sample loses; plain (no
     * fit) is a candidate, and the winner is refitted on all rows */
    for (int t = 0, nf = 0, nh = 0; t < T; t++) {
        int held = line ? line[t] % 2 : t % 2;
        memcpy(held ? xh + (size_t)nh++ * K : xf + (size_t)nf++ * K, X + (size_t)t * K, (size_t)K * sizeof *X);
    }
    double fmean = 0;
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int t = 0; t < Tf; t++) s += (double)xf[(size_t)t * K + k] * xf[(size_t)t * K + k];
        impf[k] = (float)(Tf ? s / Tf : 0);
        fmean += impf[k];
    }
    fmean /= K;
    for (int k = 0; k < K; k++) impf[k] += (float)(1e-3 * fmean + 1e-30);   /* the floor calib.c gives imp */
    int best = 0;
    double best_err = INFINITY, plain_err = 0;
    for (int c = 0; Th > 0 && c <= N_ALPHA + N_DAMP; c++) {
        if (q4_candidate(pool, c, W, N, K, impf, xf, Tf, w, q, d)) continue;
        double e = q4_output_error(pool, W, N, K, q, d, xh, Th);
        if (e < 0) goto out;
        if (c == 0) plain_err = e;
        if (e < best_err) best_err = e, best = c;
    }
    if (q4_candidate(pool, best, W, N, K, imp, X, T, w, q, d)) best = 0, q4_rows(pool, W, N, K, NULL, q, d);
    if (ch) {
        ch->method = best == 0 ? 0 : best <= N_ALPHA ? 1 : 2;
        ch->alpha = ch->method == 1 ? alphas[best - 1] : 0;
        ch->damp = ch->method == 2 ? damps[best - N_ALPHA - 1] : 0;
        ch->heldout_plain = plain_err, ch->heldout_chosen = Th > 0 ? best_err : 0;
    }
    uint16_t *scales = (uint16_t *)(out + (size_t)N * K / 2);
    for (int p = 0; p < N / QRM_PANEL; p++)
        for (int g = 0; g < G; g++) {
            int8_t qq[QRM_PANEL][QRM_QK];
            for (int rr = 0; rr < QRM_PANEL; rr++) {
                size_t n = (size_t)p * QRM_PANEL + rr;
                memcpy(qq[rr], q + n * K + g * QRM_QK, QRM_QK);
                scales[((size_t)p * G + g) * QRM_PANEL + rr] = d[n * G + g];
            }
            pack_group(QRM_WQ4, qq, out + ((size_t)p * G + g) * 256);
        }
    rc = 0;
out:
    free(q), free(d), free(w), free(xf), free(xh), free(impf);
    return rc;
}

void qrm_dequantize_q4(const uint8_t *packed, int N, int K, float *W) {
    int G = K / QRM_QK;
    const uint16_t *scales = (const uint16_t *)(packed + (size_t)N * K / 2);
    for (int p = 0; p < N / QRM_PANEL; p++)
        for (int g = 0; g < G; g++) {
            const uint8_t *blk = packed + ((size_t)p * G + g) * 256;
            for (int r = 0; r < QRM_PANEL; r++) {
                float d = qrm_f16_to_f32(scales[((size_t)p * G + g) * QRM_PANEL + r]);
                for (int k = 0; k < QRM_QK; k++) {
                    int e = (k / 4) * 64 + r * 4 + k % 4;
                    int v = (e < 256 ? blk[e & 255] & 15 : blk[e & 255] >> 4) - 8;
                    W[((size_t)p * QRM_PANEL + r) * K + (size_t)g * QRM_QK + k] = d * (float)v;
                }
            }
        }
}
