/* The one place where a kernel family is chosen: preference order per
 * architecture, and the process-wide default a program may force
 * (qrm_set_default_isa; the library itself never reads the environment,
 * so a host process decides, not whatever its environment happens to hold). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "qrm.h"

typedef struct {
    const char *name;
    const qrm_kernels *(*get)(void);
    int (*supported)(const qrm_cpu_features *f);
} family;

/* Whether the CPU runs a family: one test per family of arch/families.h,
 * named family_supports_<name>. */
static int family_supports_scalar(const qrm_cpu_features *f) { (void)f; return 1; }
#if defined(__x86_64__)
static int family_supports_avx2(const qrm_cpu_features *f) { return f->avx2 && f->fma && f->f16c; }
static int family_supports_avx512(const qrm_cpu_features *f) {
    return family_supports_avx2(f) && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni;
}
#endif
#if defined(__aarch64__)
static int family_supports_neon(const qrm_cpu_features *f) { return f->neon; }
static int family_supports_dotprod(const qrm_cpu_features *f) {
    return f->neon && f->asimddp && f->fphp;
}
static int family_supports_i8mm(const qrm_cpu_features *f) {
    return family_supports_dotprod(f) && f->i8mm;
}
#endif

/* The families built in, best first. */
#define FAMILY_ENTRY(f) {#f, qrm_kernels_##f, family_supports_##f},
static const family families[] = {QRM_FAMILIES_BUILT(FAMILY_ENTRY)};
#define N_FAMILIES (sizeof families / sizeof families[0])

const qrm_kernels *qrm_kernels_best(const qrm_cpu_features *f) {
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (families[i].supported(f) && families[i].get()) return families[i].get();
    return qrm_kernels_scalar();
}

void qrm_kernels_runnable(const qrm_cpu_features *f, char *buf, int len) {
    int used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_FAMILIES && used < len; i++)
        if (families[i].supported(f) && families[i].get())
            used += snprintf(buf + used, (size_t)(len - used), "%s%s", used ? " " : "",
                             families[i].name);
}

const qrm_kernels *qrm_kernels_by_name(const char *name, const qrm_cpu_features *f, char *err,
                                       int errlen) {
#define FAMILY_NAME(f) #f,
    static const char *const all[] = {QRM_FAMILIES_ALL(FAMILY_NAME)};
    for (size_t i = 0; i < N_FAMILIES; i++) {
        if (strcmp(families[i].name, name) != 0) continue;
        if (!families[i].supported(f) || !families[i].get()) {
            snprintf(err, (size_t)errlen, "kernel family '%s' is not supported by this CPU", name);
            return NULL;
        }
        return families[i].get();
    }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i], name) == 0) {
            snprintf(err, (size_t)errlen,
                     "kernel family '%s' is not built for this architecture", name);
            return NULL;
        }
    int used = snprintf(err, (size_t)errlen, "unknown kernel family '%s' (known:", name);
    for (size_t i = 0; i < sizeof all / sizeof all[0] && used > 0 && used < errlen; i++)
        used += snprintf(err + used, (size_t)(errlen - used), " %s", all[i]);
    if (used > 0 && used < errlen) snprintf(err + used, (size_t)(errlen - used), ")");
    return NULL;
}

/* NULL: the best family (the default until a program forces one). Atomic
 * because contexts may be made on any thread while a program sets it. */
static _Atomic(const qrm_kernels *) forced;

qrm_status qrm_set_default_isa(const char *name, char *err, size_t errlen) {
    if (!name || !*name) {
        atomic_store(&forced, NULL);
        return QRM_OK;
    }
    char e[QRM_ERR_MAX];
    const qrm_kernels *k = qrm_kernels_by_name(name, qrm_cpu_features_get(), e, sizeof e);
    if (!k) {
        if (errlen) snprintf(err, errlen, "%s", e);
        return QRM_EINVAL;
    }
    atomic_store(&forced, k);
    return QRM_OK;
}

const qrm_kernels *qrm_kernels_select(char *err, int errlen) {
    (void)err, (void)errlen;
    const qrm_kernels *k = atomic_load(&forced);
    return k ? k : qrm_kernels_best(qrm_cpu_features_get());
}
