/* Reading Hugging Face safetensors checkpoints: one model.safetensors, or
 * shards listed by model.safetensors.index.json. Files are mapped, never
 * read whole; every header field is validated. */
#ifndef QRM_SAFETENSORS_H
#define QRM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "platform.h"

typedef enum { QRM_ST_F32, QRM_ST_F16, QRM_ST_BF16 } qrm_st_dtype;

typedef struct {
    char *name;
    qrm_st_dtype dtype;
    int ndim;
    int64_t shape[4];
    const uint8_t *data;
    uint64_t nbytes;
    int file;             /* index into the checkpoint's files */
    int used;             /* set by the converter */
} qrm_st_tensor;

typedef struct {
    int n_files;
    char **file_names;    /* base names, for provenance */
    char (*sha256)[65];
    qrm_mapped_file *maps;
    qrm_st_tensor *tensors;
    int n_tensors;
    int dtypes_seen;      /* bit mask of 1 << qrm_st_dtype */
} qrm_checkpoint;

/* Opens dir/model.safetensors or the shards of dir/model.safetensors.index.json.
 * 0 or -1 with err. Computes each file's sha256 when hash is set. */
int qrm_checkpoint_open(qrm_checkpoint *ck, const char *dir, int hash, char *err, size_t errlen);
void qrm_checkpoint_close(qrm_checkpoint *ck);
const qrm_st_tensor *qrm_checkpoint_find(qrm_checkpoint *ck, const char *name);
const char *qrm_st_dtype_name(qrm_st_dtype t);
/* Element i of t converted to float (exact for all three dtypes). */
float qrm_st_get(const qrm_st_tensor *t, size_t i);

#endif
