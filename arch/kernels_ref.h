/* Helpers of the scalar reference that tests, the converter and SIMD
 * families share: element access into the packed layouts, and the
 * quantization of one group. */
#ifndef QRM_KERNELS_REF_H
#define QRM_KERNELS_REF_H

#include "kernels.h"

int8_t qrm_ref_q8_get(const qrm_qweight *w, int n, int k);
int qrm_ref_q4_get(const qrm_qweight *w, int n, int k);      /* -8..7 */
float qrm_ref_w_scale(const qrm_qweight *w, int n, int g);
/* One activation group of QRM_QK floats -> q, d, s (see qrm_qact). */
void qrm_ref_quantize_group(const float *x, int8_t *q, float *d, int32_t *s);

#endif
