/* Verifying a .qrm file: the loader's structural checks (every header
 * field, offset, size and shape), then the sha256 of the tensor data
 * against the one qrm-convert recorded (metadata "integrity.data_sha256",
 * covering data_offset to the end of the file). A flipped bit in a weight
 * passes every structural check and changes the scores: only the checksum
 * finds it. */
#include "verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "json.h"
#include "qrm.h"
#include "sha256.h"

#define FAIL(...) do { snprintf(msg, n, __VA_ARGS__); goto out; } while (0)

int qrm_verify_file(const char *path, char *msg, size_t n) {
    char err[QRM_ERR_MAX], jerr[200], want[65] = "", got[65];
    int rc = -1;
    qj_doc *d = NULL;
    FILE *f = NULL;
    uint8_t *buf = NULL;
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    if (!m) FAIL("%s", err);
    const char *meta = qrm_model_metadata_json(m);
    d = qj_parse(meta, strlen(meta), jerr, sizeof jerr);
    if (!d) FAIL("metadata: %s", jerr); /* the loader parsed it: out of memory */
    const qj_value *integ = qj_get_type(qj_root(d), "integrity", QJ_OBJECT);
    const char *sum = integ ? qj_get_str(integ, "data_sha256") : NULL;
    if (!sum) FAIL("the file records no data checksum (converted before qrm-convert 1.2): only its structure is intact");
    if (strlen(sum) != 64 || strspn(sum, "0123456789abcdef") != 64)
        FAIL("the recorded data checksum is not a sha256 digest");
    snprintf(want, sizeof want, "%s", sum);
    uint8_t h[QRM_HEADER_SIZE];
    if (!(f = fopen(path, "rb"))) FAIL("cannot open the file again: %s", strerror(errno));
    if (fread(h, 1, sizeof h, f) != sizeof h)
        FAIL("cannot read the file again: %s", ferror(f) ? strerror(errno) : "it is shorter now");
    uint64_t off = qrm_rd64(h + QRM_H_DATA_OFFSET);
    if (fseek(f, (long)off, SEEK_SET)) FAIL("cannot seek to the tensor data");
    qrm_sha256 s;
    qrm_sha256_init(&s);
    enum { CHUNK = 1 << 20 };
    if (!(buf = malloc(CHUNK))) FAIL("out of memory");
    size_t k;
    while ((k = fread(buf, 1, CHUNK, f)) > 0) qrm_sha256_update(&s, buf, k);
    if (ferror(f)) FAIL("reading the tensor data failed");
    uint8_t dg[32];
    qrm_sha256_final(&s, dg);
    for (int i = 0; i < 32; i++) snprintf(got + 2 * i, 3, "%02x", dg[i]);
    if (strcmp(got, want))
        FAIL("the tensor data is damaged: its sha256 is %.16s..., the file records %.16s...", got, want);
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    snprintf(msg, n, "intact: structure checked, %llu bytes, data sha256 %s",
             (unsigned long long)info.file_size, got);
    rc = 0;
out:
    free(buf);
    if (f) fclose(f);
    qj_free(d);
    qrm_model_close(m);
    return rc;
}
