/* A tensor in place in a mapped .qrm file. */
#ifndef QRM_TENSOR_H
#define QRM_TENSOR_H

#include <stdint.h>

#include "kernels.h"

/* For a 2-D weight, ne0 = N (outputs) and ne1 = K (inputs). For Q8/Q4, qw
 * describes the packed layout. type is QRM_T_COUNT when the tensor is absent. */
typedef struct {
    uint32_t type;
    int64_t ne0, ne1;
    const void *data;
    uint64_t nbytes;
    qrm_qweight qw;
} qrm_tensor;

/* What a tensor is for, which decides the types it may be stored as. */
typedef enum {
    QRM_ROLE_HEAD,      /* a head's small tensor (core/heads/), f32 */
    QRM_ROLE_NORM,      /* 1-D, f32 */
    QRM_ROLE_BIAS,      /* 1-D, f32 */
    QRM_ROLE_MATRIX,    /* 2-D linear weight: quantized at int8/int4 */
    QRM_ROLE_EMBED,     /* 2-D, f16 or f32 */
} qrm_role_kind;

#endif
