/* One JSONL request line (qrm_score_line, tools/score_jsonl.c) against tiny
 * models converted from the fixtures once at start-up: a one-output head
 * (qwen3-tiny), a five-output head (llama3-helpsteer2-tiny) and a process
 * reward model (qwen2-prm-tiny). The first byte picks the model and the
 * options; the rest is the line. Every line must give one JSON object on
 * one line, a result or {"error": ...}. */
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "fuzz.h"
#include "json.h"
#include "qrm.h"
#include "score_jsonl.h"

#define N_MODELS 3
static const char *const fixtures[N_MODELS] = {"qwen3-tiny", "llama3-helpsteer2-tiny", "qwen2-prm-tiny"};
static qrm_model *models[N_MODELS];
static qrm_ctx *ctxs[N_MODELS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char dir[] = "/tmp/qrm-fuzz-score-XXXXXX", err[QRM_ERR_MAX];
    FZ_SETUP(mkdtemp(dir), "cannot make a temporary folder");
    for (int i = 0; i < N_MODELS; i++) {
        char src[256], out[256];
        snprintf(src, sizeof src, "tests/data/models/%s", fixtures[i]);
        snprintf(out, sizeof out, "%s/%s.qrm", dir, fixtures[i]);
        qrm_convert_opts o = {.hf_dir = src, .out_path = out, .quant = "int8"};
        FZ_SETUP(qrm_convert(&o, err, sizeof err) == 0, "convert %s: %s", src, err);
        models[i] = qrm_model_open(out, err, sizeof err);
        FZ_SETUP(models[i], "open %s: %s", out, err);
        /* the mapping stays valid once the name is gone */
        unlink(out);
        qrm_ctx_params p;
        qrm_ctx_params_default(&p);
        p.n_threads = 1;
        ctxs[i] = qrm_ctx_new(models[i], &p, err, sizeof err);
        FZ_SETUP(ctxs[i], "context: %s", err);
    }
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned sel = data[0];
    qrm_score_opts o;
    memset(&o, 0, sizeof o);
    o.mode = (sel >> 2) & 3;
    o.top_k = 2;
    o.min_score = 0.0;
    o.aggregate = (qrm_aggregate)((sel >> 4) & 3);
    qrm_ctx *c = ctxs[(sel & 3) % N_MODELS];
    /* --rank-by as the CLI accepts it: an output of a sequence head */
    qrm_model_info info;
    qrm_model_get_info(qrm_ctx_model(c), &info);
    if (!info.per_step && info.n_outputs > 1) o.rank_by = (sel >> 6) % info.n_outputs;
    qj_buf b = {0};
    size_t n_tokens = 0;
    qrm_score_line(c, (const char *)data + 1, size - 1, &o, &b, &n_tokens);
    FZ_CHECK(!b.oom && b.buf, "no output");
    FZ_CHECK(!memchr(b.buf, '\n', b.len), "output spans lines: %.300s", b.buf);
    char err[256];
    qj_doc *d = qj_parse(b.buf, b.len, err, sizeof err);
    FZ_CHECK(d && qj_root(d)->type == QJ_OBJECT, "output is not a JSON object (%s): %.300s", err, b.buf);
    qj_free(d);
    qj_buf_free(&b);
    return 0;
}
