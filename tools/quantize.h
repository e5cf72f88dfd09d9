/* Weight quantization for the converter: f32 rows -> the packed q8 / q4
 * layouts of arch/kernels.h, group-wise (32 along K) with f16 scales. */
#ifndef QRM_QUANTIZE_H
#define QRM_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

struct qrm_pool;

/* Bytes of the packed tensor (quants then scales) for W[N][K]. */
size_t qrm_quant_size(int type, int N, int K); /* type: QRM_WQ8 / QRM_WQ4 */
/* Packs 16 rows (one panel) of W, rows[r][K], into the panel's quants and
 * scales at out (the whole tensor's buffer), panel index p. */
void qrm_quantize_panel(int type, const float *rows, int K, int p, int N, uint8_t *out);
/* One group: returns the f16 scale and writes q[32] in [-127,127] (q8) or
 * [-8,7] (q4). q4 searches the scale that minimizes the squared error
 * instead of plain absmax rounding. */
uint16_t qrm_quantize_group_q8(const float *x, int8_t *q);
uint16_t qrm_quantize_group_q4(const float *x, int8_t *q);
/* q4 with each element's squared error weighted by w[i] >= 0 (NULL: 1). */
uint16_t qrm_quantize_group_q4_weighted(const float *x, const float *w, int8_t *q);
/* qrm_quantize_panel with per-input-channel weights imp[K] for q4 (NULL: none). */
void qrm_quantize_panel_weighted(int type, const float *rows, int K, int p, int N, uint8_t *out,
                                 const float *imp);

/* Activation-aware int4 of a whole matrix W[N][K] (rows) into out (the
 * packed tensor): from the calibration's E[x^2] per input channel imp[K]
 * and a sample X[T][K] of the matrix's input rows. Candidates: the plain
 * search, the search weighted by imp^alpha (alpha 1/4 .. 1), and GPTQ on
 * X's covariance (damping 1 %, 10 %, 100 % of its mean diagonal). Each is
 * fitted on the rows of even calibration lines (line[T], NULL: even rows)
 * and the one with the least output error sum_t ||(W - Q(W)) x_t||^2 on
 * the other rows wins, refitted on all of X. pool (NULL: the calling thread
 * only) runs the work; the result does not depend on its size. 0, or -1 when
 * out of memory. */
typedef struct {
    int method;                     /* 0 plain, 1 weighted, 2 GPTQ */
    double alpha;                   /* method 1's exponent */
    double damp;                    /* method 2's damping */
    double heldout_plain, heldout_chosen; /* output errors on the held-out rows */
} qrm_q4_choice;
int qrm_quantize_q4_calibrated(const float *W, int N, int K, const float *imp, const float *X, const int *line,
                               int T, uint8_t *out, qrm_q4_choice *ch, struct qrm_pool *pool);
/* The dequantized W[N][K] of a packed int4 tensor. */
void qrm_dequantize_q4(const uint8_t *packed, int N, int K, float *W);

#endif
