/* What the fuzz targets share. Each target defines LLVMFuzzerTestOneInput
 * (and, when it needs a fixture loaded once, LLVMFuzzerInitialize); the
 * same file links either with libFuzzer (make fuzz, clang) or with
 * replay.c (make test, any compiler), so every stored input runs both ways.
 * Targets run from the repository root (they read tests/data/). */
#ifndef QRM_FUZZ_H
#define QRM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "qrm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken invariant: libFuzzer and the replay driver both report an abort. */
#define FZ_CHECK(cond, ...)                                                                  \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz invariant failed at %s:%d: ", __FILE__, __LINE__);        \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* Setup failures (a fixture missing) are not findings: say so and stop. */
#define FZ_SETUP(cond, ...)                                                                  \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz setup: ");                                                 \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            exit(2);                                                                         \
        }                                                                                    \
    } while (0)

/* The kernel family from QRM_ISA (the library reads no environment), set
 * before libFuzzer's main or replay's runs anything. make fuzz sets
 * QRM_ISA=scalar: its build leaves the SIMD families uninstrumented (Makefile,
 * fuzz-build), so the kernels run under ASan and UBSan are the reference's. */
__attribute__((constructor)) static void fz_take_isa_env(void) {
    char err[QRM_ERR_MAX];
    if (qrm_set_default_isa(getenv("QRM_ISA"), err, sizeof err) != QRM_OK) {
        fprintf(stderr, "fuzz setup: QRM_ISA: %s\n", err);
        exit(2);
    }
}

#endif
