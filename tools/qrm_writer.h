/* Writing a .qrm file (docs/FORMAT.md): the header, metadata and tensor
 * table first (every size is known from the shapes), then each tensor's
 * data in table order, streamed, so that converting a large model never
 * holds more than one tensor in memory. The file is written under a
 * temporary name and renamed at the end: a failed conversion leaves nothing. */
#ifndef QRM_WRITER_H
#define QRM_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sha256.h"

/* The metadata's placeholder for the data checksum: the converter writes
 * this text, the writer overwrites its 64 zeros with the sha256 of
 * everything from data_offset to the end once that is written (same length,
 * so nothing moves). qrm verify recomputes it. */
#define QRM_SHA256_PLACEHOLDER "\"data_sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\""
typedef struct {
    char name[48];
    uint32_t type;
    int ndim;
    uint64_t ne0, ne1;
    uint64_t offset, size;
} qrm_wtensor;

typedef struct {
    FILE *f;
    char *path, *tmp_path;
    qrm_wtensor *t;
    int n, cap, next;
    uint64_t data_offset, file_size;
    qrm_sha256 hash;            /* of the data region, as it is written */
    int hashing;
    long checksum_at;           /* file offset of the placeholder's hex digits, or -1 */
} qrm_writer;

void qrm_writer_init(qrm_writer *w);
/* Declares a tensor; call for all tensors before qrm_writer_begin. */
int qrm_writer_add(qrm_writer *w, const char *name, uint32_t type, int ndim, uint64_t ne0,
                   uint64_t ne1, char *err, size_t errlen);
/* Writes header, metadata and table to path's temporary file. */
int qrm_writer_begin(qrm_writer *w, const char *path, const char *meta_json, size_t meta_len,
                     char *err, size_t errlen);
/* Data of the next declared tensor, exactly its size. */
int qrm_writer_data(qrm_writer *w, const void *data, size_t n, char *err, size_t errlen);
/* Closes and renames into place; 0 or -1. */
int qrm_writer_finish(qrm_writer *w, char *err, size_t errlen);
/* Removes the temporary file and frees everything (safe after finish). */
void qrm_writer_abort(qrm_writer *w);

#endif
