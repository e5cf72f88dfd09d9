/* SHA-256 (FIPS 180-4), for the provenance of converted files. */
#ifndef QRM_SHA256_H
#define QRM_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t fill;
} qrm_sha256;

void qrm_sha256_init(qrm_sha256 *s);
void qrm_sha256_update(qrm_sha256 *s, const void *data, size_t n);
void qrm_sha256_final(qrm_sha256 *s, uint8_t out[32]);
/* Hex digest of a buffer into hex[65]. */
void qrm_sha256_hex(const void *data, size_t n, char hex[65]);

#endif
