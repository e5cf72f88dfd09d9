/* Activation statistics for activation-aware int4 (qrm-convert --calib):
 * the float model runs over a calibration file and every linear layer's
 * input channels get their mean square, which then weights the int4 scale
 * search of that layer's weights (tools/quantize.c). */
#ifndef QRM_CALIB_H
#define QRM_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "convert.h"

typedef struct {
    char name[48];          /* the .qrm tensor name, "blk.0.attn_q" */
    int role, layer;        /* role -1: a head's matrix (head_slot), layer = n_layers */
    int head_slot;
    int N, K;
    double *sum;            /* [K]: sum of x^2 over the calibration tokens */
    double n;               /* tokens seen */
    float *imp;             /* [K]: E[x^2] plus a floor, the base of the weighting */
    float *x;               /* [QRM_CALIB_ROWS][K]: a uniform sample of the input rows (freed once used) */
    int *line;              /* [QRM_CALIB_ROWS]: the calibration line of each row */
    int nx;                 /* rows held in x */
    size_t seen;            /* rows offered to the sample */
    uint64_t rng;
    uint8_t *packed;        /* the int4 tensor chosen (qrm_quantize_q4_calibrated) */
    int method;             /* its qrm_q4_choice */
    double heldout_ratio;   /* held-out output error / plain's */
} qrm_calib_tensor;

/* Rows of calibration activations kept per matrix: GPTQ's covariance and
 * the held-out output error that chooses a matrix's method come from them
 * (tools/quantize.c). 2 KB per input channel and matrix, one layer at a
 * time (a 0.6B model: ~20 MB). */
#define QRM_CALIB_ROWS 512

typedef struct {
    qrm_calib_tensor *t;
    int n;
    size_t n_tokens, n_lines;
    size_t n_refused;       /* lines the model's head cannot score (no activations) */
    char refused[160];      /* the first of them, and why */
    char sha256[65];        /* of the calibration file */
} qrm_calib;

/* Converts o's checkpoint to a temporary f32 file next to o->out_path, runs
 * it over the calibration JSONL (lines with "ids", "text", "messages",
 * "prompt" + "response", or "prompt" + "chosen"/"rejected" strings), and
 * fills c. Layer by layer, as GPTQ does: a layer's matrices are quantized
 * (into packed) from the activations of the model whose earlier layers are
 * already quantized (their dequantized weights written into the float
 * file), so each layer's choice sees the error it inherits. 0, or -1. */
int qrm_calib_collect(const qrm_convert_opts *o, const char *path, qrm_calib *c, char *err,
                      size_t errlen);
/* The entry of a tensor by name, NULL when it was never seen. */
const qrm_calib_tensor *qrm_calib_find(const qrm_calib *c, const char *name, int K);
void qrm_calib_free(qrm_calib *c);

/* For --int4-budget: the output error a quantization of W[N][K] (read from
 * a checkpoint tensor) causes, sum over rows and channels of imp[k] (1 when
 * NULL) times the squared weight error, relative to the same weighting of
 * W itself (so layers of different scales compare). type: QRM_WQ8 / QRM_WQ4. */
double qrm_calib_rel_error(const void *src_tensor, int N, int K, int type, const float *imp);

#endif
