/* The model loader (qrm_model_open_memory, core/model.c) on arbitrary
 * bytes. A file that opens is then used as a caller would: its info, output
 * names, metadata and tokenizer, a context, a short sequence scored and a
 * text tokenized; the loader's checks must make all of that safe. */
#include <string.h>

#include "format.h"
#include "fuzz.h"
#include "qrm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the loader wants a 64-byte aligned image; posix_memalign (unlike
     * aligned_alloc) takes any size, so a read past the end still traps */
    void *vbuf = NULL;
    if (posix_memalign(&vbuf, QRM_ALIGN, size ? size : 1)) return 0;
    uint8_t *buf = vbuf;
    memcpy(buf, data, size);
    /* A mutation that changes the length would otherwise stop at the file
     * size check every time; the header says the size the input has. */
    if (size >= QRM_HEADER_SIZE) qrm_wr64(buf + QRM_H_FILE_SIZE, size);
    char err[QRM_ERR_MAX];
    err[0] = 0;
    qrm_model *m = qrm_model_open_memory(buf, size, err, sizeof err);
    if (!m) {
        FZ_CHECK(err[0] && !strchr(err, '\n'), "open failed without a one-line message: '%s'", err);
        free(buf);
        return 0;
    }
    qrm_model_info info;
    qrm_model_get_info(m, &info);
    for (int i = 0; i < info.n_outputs; i++)
        FZ_CHECK(qrm_model_output_name(m, i) != NULL, "output %d has no name", i);
    FZ_CHECK(qrm_model_metadata_json(m) != NULL, "no metadata");
    const char *tj, *cj;
    size_t tl, cl;
    qrm_model_tokenizer_blobs(m, &tj, &tl, &cj, &cl);

    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = 1;
    p.max_tokens = 16;
    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
    if (c) {
        int32_t ids[3] = {0, info.vocab_size > 1 ? 1 : 0, info.vocab_size - 1};
        qrm_scores s;
        memset(&s, 0, sizeof s);
        if (info.logprobs) qrm_logprobs(c, ids, 3, 1, &s);
        else qrm_score(c, ids, 3, &s);
        qrm_scores_free(&s);
        int32_t *tid = NULL;
        size_t n = 0;
        qrm_tokenize(c, "Hi there", 8, 1, &tid, &n);
        qrm_free(tid);
        qrm_ctx_free(c);
    }
    qrm_model_close(m);
    free(buf);
    return 0;
}
