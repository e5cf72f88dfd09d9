/* The list of supported architectures: the only place that names them all.
 * Adding one is a descriptor file (models/NAME.c, defining qrm_arch_NAME)
 * and one entry here. */
#include <stdio.h>
#include <string.h>

#include "arch.h"

#define QRM_ARCH_LIST(X) X(llama) X(mistral) X(qwen2) X(qwen3) X(gemma2)

#define DECLARE(n) extern const qrm_arch qrm_arch_##n;
QRM_ARCH_LIST(DECLARE)
#define ENTRY(n) &qrm_arch_##n,
static const qrm_arch *const archs[] = {QRM_ARCH_LIST(ENTRY)};
#define N_ARCHS (sizeof archs / sizeof archs[0])

const qrm_arch *qrm_arch_by_name(const char *name) {
    for (size_t i = 0; name && i < N_ARCHS; i++)
        if (!strcmp(archs[i]->name, name)) return archs[i];
    return NULL;
}

const qrm_arch *qrm_arch_by_hf_class(const char *hf, const char **suffix) {
    for (size_t i = 0; hf && i < N_ARCHS; i++) {
        size_t n = strlen(archs[i]->hf_prefix);
        /* the prefix must end where a capital starts the suffix ("Qwen2"
         * must not take "Qwen2Moe...", which has its own layers) */
        if (!strncmp(hf, archs[i]->hf_prefix, n) && !strncmp(hf + n, "For", 3)) {
            *suffix = hf + n;
            return archs[i];
        }
    }
    return NULL;
}

void qrm_arch_prefixes(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_ARCHS && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", archs[i]->hf_prefix);
}
