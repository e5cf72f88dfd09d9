/* The list of head kinds: the only place that names them all. Adding one is
 * a file (core/heads/NAME.c, defining qrm_head_NAME) and one entry here. */
#include <stdio.h>
#include <string.h>

#include "head.h"

#define QRM_HEAD_LIST(X) X(linear) X(prm) X(gated) X(judge) X(step_tag) X(lm)

#define DECLARE(n) extern const qrm_head_ops qrm_head_##n;
QRM_HEAD_LIST(DECLARE)
#define ENTRY(n) &qrm_head_##n,
static const qrm_head_ops *const heads[] = {QRM_HEAD_LIST(ENTRY)};
#define N_HEADS (sizeof heads / sizeof heads[0])

const qrm_head_ops *qrm_head_by_kind(const char *kind) {
    for (size_t i = 0; kind && i < N_HEADS; i++)
        if (!strcmp(heads[i]->kind, kind)) return heads[i];
    /* files written before the head component called the linear head "score" */
    if (kind && !strcmp(kind, "score")) return &qrm_head_linear;
    return NULL;
}

const qrm_head_ops *qrm_head_by_hf_suffix(const char *suffix) {
    for (size_t i = 0; suffix && i < N_HEADS; i++)
        if (heads[i]->hf_suffix && !strcmp(heads[i]->hf_suffix, suffix)) return heads[i];
    return NULL;
}

void qrm_head_list(char *buf, size_t n, int suffixes) {
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_HEADS && len < n; i++) {
        const char *s = suffixes ? heads[i]->hf_suffix : heads[i]->kind;
        if (s) len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", s);
    }
}
