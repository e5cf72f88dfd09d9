/* Random-weight models of real shapes for the benchmarks (bench/synth_model.c). */
#ifndef QRM_SYNTH_MODEL_H
#define QRM_SYNTH_MODEL_H

#include <stddef.h>

#include "hparams.h"

/* Shapes: "qwen3-0.6b" (hidden 1024, 28 layers, 16/8 heads, head dim 128, FFN
 * 3072, vocab 151936) and "llama-1b" (hidden 2048, 16 layers, 32/8 heads,
 * head dim 64, FFN 8192, vocab 128256). */
int qrm_synth_shape(const char *name, qrm_hparams *hp);
/* Writes a .qrm with random quants at quant ("f32", "f16", "int8", "int4")
 * and a head of the kind head ("linear", "prm", "gated"). */
int qrm_synth_model(const char *shape, const char *quant, const char *head, const char *path,
                    char *err, size_t errlen);
/* The folder of the cached models (build/bench-models by default; --models-dir). */
extern const char *qrm_synth_models_dir;
/* The same, cached as DIR/SHAPE-QUANT[-HEAD].qrm; path receives it. The
 * folder is named on stderr once per run. */
int qrm_synth_model_cached(const char *shape, const char *quant, const char *head, char *path,
                           size_t pathlen, char *err, size_t errlen);

#endif
