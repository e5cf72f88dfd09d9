/* qrm verify: a file's structure (the loader's checks) and its data
 * checksum (recorded by the converter), tools/verify.c. */
#ifndef QRM_VERIFY_H
#define QRM_VERIFY_H

#include <stddef.h>

/* 0 when the file is intact (msg: a summary), -1 with a one-line message
 * naming the damage (or that the file records no checksum). Reads the whole
 * file: opening a model stays O(1), verifying is O(size). */
int qrm_verify_file(const char *path, char *msg, size_t n);

#endif
