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

#endif
