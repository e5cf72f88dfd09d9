/* The converter as a library call (tools/qrm_convert_main.c is its CLI). */
#ifndef QRM_CONVERT_H
#define QRM_CONVERT_H

#include <stddef.h>

#include "head.h"

#define QRM_CONVERTER_VERSION "1.2"

typedef struct {
    const char *hf_dir;
    const char *out_path;
    const char *quant;     /* "f32", "f16", "int8" (default), "int4" */
    int verbose;           /* progress on stderr */
    /* Head options (NULL: what the checkpoint says) */
    const char *labels;         /* comma-separated output names (ArmoRM: the objectives) */
    const char *step_separator; /* PRM step separator text (default "<extra_0>") */
    const char *gating_pattern; /* ArmoRM gating pattern text */
    qrm_head_spec spec;         /* a *ForCausalLM checkpoint's vocabulary head */
    /* int4 only: a JSONL file whose activations (on the float model) weight
     * the scale search (tools/calib.c); NULL: plain least squares */
    const char *calib;
    /* int4 only, > 0: mean bits per quantized weight allowed (4.5 = all
     * int4, 8.5 = all int8); the matrices whose int4 error costs most per
     * bit are stored int8 until the budget is spent */
    double int4_budget;
} qrm_convert_opts;

/* 0, or -1 with a one-line message in err and no output file left behind. */
int qrm_convert(const qrm_convert_opts *o, char *err, size_t errlen);

#endif
