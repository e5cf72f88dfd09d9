/* The .qrm file format, version 1: the on-disk constants and structures.
 * The full specification with rationale is docs/FORMAT.md.
 *
 *   [header 64 B][metadata JSON][tensor table: n x 96 B][pad][tensor data, each 64-aligned]
 *
 * Everything is little-endian. Offsets are absolute file offsets except the
 * tensor offsets, which are relative to data_offset. */
#ifndef QRM_FORMAT_H
#define QRM_FORMAT_H

#include <stdint.h>

#define QRM_MAGIC "QRMODEL\x1a"   /* 8 bytes; \x1a stops `type` on DOS-like tools */
#define QRM_FORMAT_VERSION 1
#define QRM_HEADER_SIZE 64
#define QRM_TENSOR_ENTRY_SIZE 96
#define QRM_TENSOR_NAME_MAX 48    /* including the terminating NUL */
#define QRM_ALIGN 64
#define QRM_MAX_TENSORS 65536
#define QRM_MAX_METADATA (64u << 20)

/* header field offsets */
enum {
    QRM_H_MAGIC = 0,            /* char[8] */
    QRM_H_VERSION = 8,          /* u32 */
    QRM_H_HEADER_SIZE = 12,     /* u32 = 64 */
    QRM_H_FILE_SIZE = 16,       /* u64: the whole file */
    QRM_H_META_OFFSET = 24,     /* u64 */
    QRM_H_META_SIZE = 32,       /* u64: bytes of UTF-8 JSON, no NUL */
    QRM_H_TABLE_OFFSET = 40,    /* u64 */
    QRM_H_TENSOR_COUNT = 48,    /* u32 */
    QRM_H_ENTRY_SIZE = 52,      /* u32 = 96 */
    QRM_H_DATA_OFFSET = 56,     /* u64, multiple of 64 */
};

/* tensor entry field offsets */
enum {
    QRM_T_NAME = 0,             /* char[48], NUL-terminated, NUL-padded */
    QRM_T_TYPE = 48,            /* u32: qrm_tensor_type */
    QRM_T_NDIM = 52,            /* u32: 1 or 2 */
    QRM_T_NE0 = 56,             /* u64: rows (N) for 2-D, length for 1-D */
    QRM_T_NE1 = 64,             /* u64: columns (K) for 2-D, 1 for 1-D */
    QRM_T_OFFSET = 72,          /* u64: from data_offset, multiple of 64 */
    QRM_T_SIZE = 80,            /* u64: bytes, must equal the size the type implies */
    QRM_T_RESERVED = 88,        /* u64: 0 */
};

typedef enum {
    QRM_T_F32 = 0,
    QRM_T_F16 = 1,
    QRM_T_Q8 = 2,               /* packed panels + f16 scales, arch/kernels.h */
    QRM_T_Q4 = 3,
    QRM_T_BYTES = 4,            /* opaque blob (tokenizer.json, ...) */
    QRM_T_COUNT
} qrm_tensor_type;

static inline uint32_t qrm_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t qrm_rd64(const uint8_t *p) {
    return (uint64_t)qrm_rd32(p) | (uint64_t)qrm_rd32(p + 4) << 32;
}
static inline void qrm_wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void qrm_wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Bytes a tensor of this type and shape occupies; 0 with *ok = 0 when the
 * shape is invalid for the type or the size overflows. */
uint64_t qrm_tensor_nbytes(uint32_t type, uint64_t ne0, uint64_t ne1, int *ok);
const char *qrm_tensor_type_name(uint32_t type);

#endif
