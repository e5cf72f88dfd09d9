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

static int sup_scalar(const qrm_cpu_features *f) { (void)f; return 1; }
#if defined(__x86_64__)
static int sup_avx2(const qrm_cpu_features *f) { return f->avx2 && f->fma && f->f16c; }
static int sup_avx512(const qrm_cpu_features *f) {
    return sup_avx2(f) && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni;
}
#endif
#if defined(__aarch64__)
static int sup_neon(const qrm_cpu_features *f) { return f->neon; }
static int sup_dotprod(const qrm_cpu_features *f) { return f->neon && f->asimddp && f->fphp; }
static int sup_i8mm(const qrm_cpu_features *f) { return sup_dotprod(f) && f->i8mm; }
#endif

/* Best first. Families of other architectures are not compiled in. */
static const family families[] = {
#if defined(__x86_64__)
    {"avx512", qrm_kernels_avx512, sup_avx512},
    {"avx2", qrm_kernels_avx2, sup_avx2},
#endif
#if defined(__aarch64__)
    {"i8mm", qrm_kernels_i8mm, sup_i8mm},
    {"dotprod", qrm_kernels_dotprod, sup_dotprod},
    {"neon", qrm_kernels_neon, sup_neon},
#endif
    {"scalar", qrm_kernels_scalar, sup_scalar},
};
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
    static const char *all[] = {"scalar", "avx2", "avx512", "neon", "dotprod", "i8mm"};
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
    snprintf(err, (size_t)errlen,
             "unknown kernel family '%s' (known: scalar avx2 avx512 neon dotprod i8mm)", name);
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
