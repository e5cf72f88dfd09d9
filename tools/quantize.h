/* Weight quantization for the converter: f32 rows -> the packed q8 / q4
 * layouts of arch/kernels.h, group-wise (32 along K) with f16 scales. */
#ifndef QRM_QUANTIZE_H
#define QRM_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

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

#endif
