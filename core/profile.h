/* Where a forward pass spends its time, stage by stage (internal; qrm-bench
 * e2e --profile). A context with a profile attached (ctx->prof) adds the
 * wall time of each parallel step of qrm_forward to its stage; without one
 * the forward pass does no timing at all. Every stage is one or more
 * qrm_pool_run calls, so the stages add up to the pass minus the serial
 * glue between them (batch set-up, the head's own bookkeeping). */
#ifndef QRM_PROFILE_H
#define QRM_PROFILE_H

/* X(enum suffix, printed name) in the order a layer runs them */
#define QRM_STAGES(X)                                                                  \
    X(EMBED, "embedding")                                                              \
    X(NORM, "residual add + norm (+ quantize)")                                        \
    X(QKV_GEMM, "q/k/v GEMM")                                                          \
    X(QKV_POST, "q/k/v bias, q/k norm, RoPE, k quant")                                 \
    X(KV_STORE, "K/V cache write")                                                     \
    X(ATTENTION, "attention (scores, softmax, P.V)")                                   \
    X(ATT_QUANT, "attention output quantize")                                          \
    X(O_GEMM, "o GEMM")                                                                \
    X(UP_GEMM, "gate/up GEMM")                                                         \
    X(ACT, "activation (+ quantize)")                                                  \
    X(DOWN_GEMM, "down GEMM")                                                          \
    X(HEAD, "head")

typedef enum {
#define QRM_STAGE_ENUM_(e, name) QRM_STAGE_##e,
    QRM_STAGES(QRM_STAGE_ENUM_)
#undef QRM_STAGE_ENUM_
    QRM_N_STAGES
} qrm_stage;

typedef struct qrm_profile_s {
    double seconds[QRM_N_STAGES];
    double gemm_ops[QRM_N_STAGES]; /* 2 M N K of the matmuls a stage ran */
    long calls[QRM_N_STAGES];
} qrm_profile;

const char *qrm_stage_name(int stage);
/* 1 for the stages that are matrix products on weights */
int qrm_stage_is_gemm(int stage);

#endif
