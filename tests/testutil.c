#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qrm.h"

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert(buf != NULL);
    ck_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

int tu_for_each_line(const char *path, void (*fn)(const char *, size_t, void *), void *arg) {
    size_t n;
    char *buf = tu_read_file(path, &n);
    int count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || buf[i] == '\n') {
            /* every line, but not the empty remainder after a final newline */
            if (i < n || i > start) {
                fn(buf + start, i - start, arg);
                count++;
            }
            start = i + 1;
        }
    }
    free(buf);
    return count;
}

char *tu_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char *p = malloc(strlen(base) + 32);
    ck_assert(p != NULL);
    sprintf(p, "%s/qrm-test-XXXXXX", base);
    ck_assert_msg(mkdtemp(p) != NULL, "mkdtemp failed");
    return p;
}

char *tu_convert(const char *fixture, const char *quant, const qrm_convert_opts *extra) {
    char *dir = tu_tmpdir(), src[256], err[QRM_ERR_MAX];
    char *out = malloc(strlen(dir) + 16);
    ck_assert(out != NULL);
    sprintf(out, "%s/model.qrm", dir);
    snprintf(src, sizeof src, TEST_DATA "/models/%s", fixture);
    qrm_convert_opts o = {0};
    if (extra) o = *extra;
    o.hf_dir = src, o.out_path = out, o.quant = quant;
    ck_assert_msg(qrm_convert(&o, err, sizeof err) == 0, "convert %s: %s", fixture, err);
    free(dir);
    return out;
}

void tu_remove_converted(char *path) {
    unlink(path);
    *strrchr(path, '/') = 0;
    rmdir(path);
    free(path);
}

void tu_apply_isa_env(void) {
    char err[QRM_ERR_MAX];
    if (qrm_set_default_isa(getenv("QRM_ISA"), err, sizeof err) != QRM_OK) {
        fprintf(stderr, "QRM_ISA: %s\n", err);
        exit(1);
    }
}

int tu_run(Suite *s) {
    tu_apply_isa_env();
    /* The library has taken QRM_ISA; the programs a suite runs (build/qrm,
     * qrm-convert, qrm-bench) are the host's native build, which under
     * test-aarch64 cannot run the ARM family the variable names. */
    unsetenv("QRM_ISA");
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
