/* The converter (tools/convert.c) and its safetensors reader
 * (tools/safetensors.c) on arbitrary config.json and model.safetensors.
 * Input: one byte choosing the quantization, the config.json text, the
 * separator below, then the safetensors bytes. The converter reads a folder,
 * so each input is written into a per-process folder (in /dev/shm, else
 * /tmp) next to a fixed tokenizer (qwen2-prm-tiny's), removed at exit. A conversion may
 * fail with a message; one that succeeds must write a file that loads. */
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "fuzz.h"
#include "platform.h"
#include "qrm.h"

#define SEP "\n--safetensors--\n"

/* tmpfs where there is one: the target writes and removes files on every
 * execution, and a disk file system's bookkeeping would dominate the run */
static char dir[64];
static char cfg_path[64], st_path[64], out_path[64], tok_path[64], tcfg_path[64];

static void put_file(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FZ_SETUP(fd >= 0, "cannot write %s", path);
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        FZ_SETUP(w > 0, "cannot write %s", path);
        c += w, n -= (size_t)w;
    }
    close(fd);
}

static void cleanup(void) {
    unlink(cfg_path), unlink(st_path), unlink(out_path), unlink(tok_path), unlink(tcfg_path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/qrm-fuzz-convert-XXXXXX", base);
    FZ_SETUP(mkdtemp(dir), "cannot make a temporary folder in %s", base);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    snprintf(out_path, sizeof out_path, "%s/out.qrm", dir);
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    snprintf(tcfg_path, sizeof tcfg_path, "%s/tokenizer_config.json", dir);
    atexit(cleanup);
    static const char *const names[2] = {"tokenizer.json", "tokenizer_config.json"};
    const char *dst[2] = {tok_path, tcfg_path};
    for (int i = 0; i < 2; i++) {
        char src[256], err[256];
        size_t len;
        snprintf(src, sizeof src, "tests/data/models/qwen2-prm-tiny/%s", names[i]);
        char *text = qrm_read_file(src, &len, err, sizeof err);
        FZ_SETUP(text, "%s", err);
        put_file(dst[i], text, len);
        free(text);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const quants[4] = {"f32", "f16", "int8", "int4"};
    if (size < 1) return 0;
    const char *quant = quants[data[0] & 3];
    const char *cfg = (const char *)data + 1, *end = (const char *)data + size;
    const char *sep = memmem(cfg, (size_t)(end - cfg), SEP, sizeof SEP - 1);
    const char *st = sep ? sep + sizeof SEP - 1 : end;
    put_file(cfg_path, cfg, (size_t)((sep ? sep : end) - cfg));
    put_file(st_path, st, (size_t)(end - st));
    char err[QRM_ERR_MAX];
    err[0] = 0;
    qrm_convert_opts o = {.hf_dir = dir, .out_path = out_path, .quant = quant};
    if (qrm_convert(&o, err, sizeof err) == 0) {
        qrm_model *m = qrm_model_open(out_path, err, sizeof err);
        FZ_CHECK(m, "the converter wrote a file that does not load: %s", err);
        qrm_model_close(m);
        unlink(out_path);
    } else {
        FZ_CHECK(err[0] && !strchr(err, '\n'), "failed without a one-line message: '%s'", err);
        FZ_CHECK(access(out_path, F_OK) != 0, "a failed conversion left its output behind");
    }
    return 0;
}
