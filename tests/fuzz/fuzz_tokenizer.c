/* The tokenizer (core/tokenizer*.c) on arbitrary text: two real
 * tokenizer.json files are loaded once (byte-level BPE: Llama 3;
 * SentencePiece-style BPE: Mistral), then each input is encoded and the ids
 * decoded, and the input's bytes are also decoded as ids (unknown ones
 * included). The first byte picks the tokenizer and the flags.
 * Valid UTF-8 must encode; decoding must always succeed. */
#include <string.h>

#include "fuzz.h"
#include "platform.h"
#include "tokenizer.h"
#include "utf8.h"

static const char *const names[] = {"llama3", "mistral"};
static qrm_tokenizer *toks[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 0; i < 2; i++) {
        char path[256], cpath[256], err[256];
        snprintf(path, sizeof path, "tests/data/tokenizers/%s/tokenizer.json", names[i]);
        snprintf(cpath, sizeof cpath, "tests/data/tokenizers/%s/tokenizer_config.json", names[i]);
        size_t len, clen;
        char *tj = qrm_read_file(path, &len, err, sizeof err);
        FZ_SETUP(tj, "%s", err);
        char *cj = qrm_read_file(cpath, &clen, err, sizeof err);
        FZ_SETUP(cj, "%s", err);
        toks[i] = qrm_tokenizer_new(tj, len, cj, clen, err, sizeof err);
        FZ_SETUP(toks[i], "%s: %s", path, err);
        free(tj), free(cj);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const qrm_tokenizer *t = toks[data[0] & 1];
    int add_special = (data[0] >> 1) & 1, skip_special = (data[0] >> 2) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = qrm_tokenizer_encode(t, text, len, add_special, &ids, &n, err, sizeof err);
    int valid = qrm_utf8_validate(text, len) == len;
    FZ_CHECK(rc == 0 || !valid, "valid UTF-8 failed to encode: %s", err);
    if (rc == 0) {
        size_t vs = qrm_tokenizer_vocab_size(t);
        for (size_t i = 0; i < n; i++)
            FZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < vs, "id %d out of the vocabulary", (int)ids[i]);
        char *out = NULL;
        size_t out_len = 0;
        rc = qrm_tokenizer_decode(t, ids, n, skip_special, &out, &out_len, err, sizeof err);
        FZ_CHECK(rc == 0, "decode of encoded ids failed: %s", err);
        FZ_CHECK(out[out_len] == 0, "decoded text not NUL-terminated");
        free(out);
        for (size_t i = 0; i < n && i < 8; i++) {
            size_t tl;
            const char *s = qrm_tokenizer_id_to_token(t, ids[i], &tl);
            if (s) qrm_tokenizer_token_to_id(t, s, tl);
            qrm_tokenizer_is_special(t, ids[i]);
        }
    }
    free(ids);
    /* the bytes as ids: any int32, so negative and unknown ones too */
    size_t nid = len / 4;
    int32_t *raw = malloc(nid ? nid * sizeof *raw : 1);
    if (!raw) return 0;
    memcpy(raw, text, nid * sizeof *raw);
    char *out = NULL;
    size_t out_len = 0;
    rc = qrm_tokenizer_decode(t, raw, nid, skip_special, &out, &out_len, err, sizeof err);
    FZ_CHECK(rc == 0, "decode of arbitrary ids failed: %s", err);
    free(out);
    free(raw);
    return 0;
}
