/* Feature decoding (pure, tested on captured dumps) and the probe of the
 * running CPU. The only file that executes CPUID / reads HWCAP. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

void qrm_cpu_decode_x86(const qrm_cpuid_regs *r, qrm_cpu_features *f) {
    memset(f, 0, sizeof *f);
    int osxsave = (r->l1_ecx >> 27) & 1;
    uint64_t xcr0 = osxsave ? r->xcr0 : 0;
    /* The OS must save the registers: XMM|YMM for AVX, plus opmask|ZMM_Hi256|Hi16_ZMM. */
    f->os_avx = (xcr0 & 0x6) == 0x6;
    f->os_avx512 = f->os_avx && (xcr0 & 0xe0) == 0xe0;
    int avx = (r->l1_ecx >> 28) & 1;
    if (!(avx && f->os_avx)) return;
    f->fma = (r->l1_ecx >> 12) & 1;
    f->f16c = (r->l1_ecx >> 29) & 1;
    if (r->max_leaf < 7) return;
    f->avx2 = (r->l7_ebx >> 5) & 1;
    f->avxvnni = (r->l7s1_eax >> 4) & 1;
    if (!f->os_avx512) return;
    f->avx512f = (r->l7_ebx >> 16) & 1;
    f->avx512bw = (r->l7_ebx >> 30) & 1;
    f->avx512vl = (r->l7_ebx >> 31) & 1;
    f->avx512vnni = (r->l7_ecx >> 11) & 1;
}

/* Linux arch/arm64/include/uapi/asm/hwcap.h bit numbers. */
void qrm_cpu_decode_hwcap(uint64_t hwcap, uint64_t hwcap2, qrm_cpu_features *f) {
    memset(f, 0, sizeof *f);
    f->neon = (hwcap >> 1) & 1;     /* HWCAP_ASIMD */
    f->fphp = (hwcap >> 9) & 1;     /* HWCAP_FPHP */
    f->asimddp = (hwcap >> 20) & 1; /* HWCAP_ASIMDDP */
    f->sve = (hwcap >> 22) & 1;     /* HWCAP_SVE */
    f->i8mm = (hwcap2 >> 13) & 1;   /* HWCAP2_I8MM */
}

static int has_word(const char *list, const char *w) {
    size_t n = strlen(w);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t') p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t' && *e != '\n') e++;
        if ((size_t)(e - p) == n && memcmp(p, w, n) == 0) return 1;
        p = *e ? e + 1 : e;
    }
    return 0;
}

void qrm_cpu_decode_cpuinfo_flags(const char *flags, qrm_cpu_features *f) {
    memset(f, 0, sizeof *f);
    f->neon = has_word(flags, "asimd");
    f->fphp = has_word(flags, "fphp");
    f->asimddp = has_word(flags, "asimddp");
    f->sve = has_word(flags, "sve");
    f->i8mm = has_word(flags, "i8mm");
}

static qrm_cpu_features probe(void) {
    qrm_cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__) || defined(__i386__)
    qrm_cpuid_regs r;
    memset(&r, 0, sizeof r);
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d)) r.max_leaf = a;
    if (__get_cpuid(1, &a, &b, &c, &d)) r.l1_ecx = c;
    if (r.max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        r.l7_ebx = b, r.l7_ecx = c, r.l7_edx = d;
        __cpuid_count(7, 1, a, b, c, d);
        r.l7s1_eax = a;
    }
    if ((r.l1_ecx >> 27) & 1) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        r.xcr0 = ((uint64_t)hi << 32) | lo;
    }
    qrm_cpu_decode_x86(&r, &f);
#elif defined(__aarch64__) && defined(__linux__)
    qrm_cpu_decode_hwcap(getauxval(AT_HWCAP), getauxval(AT_HWCAP2), &f);
#elif defined(__aarch64__)
    f.neon = 1; /* ARMv8-A always has Advanced SIMD */
#endif
    return f;
}

static qrm_cpu_features probed;
static char probed_name[96];
static atomic_int probe_state; /* 0: not yet, 1: probing, 2: done */

const qrm_cpu_features *qrm_cpu_features_get(void) {
    /* Once, with C11 atomics (threads belong to the platform layer): the
     * first caller probes, any caller at the same moment waits the few
     * microseconds it takes, and everyone sees one complete result. */
    if (atomic_load(&probe_state) != 2) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&probe_state, &expected, 1)) {
            probed = probe();
            qrm_cpu_probe_name(probed_name, sizeof probed_name);
            atomic_store(&probe_state, 2);
        } else {
            while (atomic_load(&probe_state) != 2) {
            }
        }
    }
    return &probed;
}

const char *qrm_cpu_name(void) {
    qrm_cpu_features_get();
    return probed_name;
}

void qrm_cpu_features_str(const qrm_cpu_features *f, char *buf, int cap) {
    const char *names[16];
    int n = 0;
    if (f->avx2) names[n++] = "avx2";
    if (f->fma) names[n++] = "fma";
    if (f->f16c) names[n++] = "f16c";
    if (f->avx512f) names[n++] = "avx512f";
    if (f->avx512bw) names[n++] = "avx512bw";
    if (f->avx512vl) names[n++] = "avx512vl";
    if (f->avx512vnni) names[n++] = "avx512vnni";
    if (f->avxvnni) names[n++] = "avxvnni";
    if (f->neon) names[n++] = "neon";
    if (f->fphp) names[n++] = "fphp";
    if (f->asimddp) names[n++] = "dotprod";
    if (f->i8mm) names[n++] = "i8mm";
    if (f->sve) names[n++] = "sve";
    int len = 0;
    if (cap > 0) buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++) {
        int w = snprintf(buf + len, (size_t)(cap - len), "%s%s", i ? " " : "", names[i]);
        if (w < 0) break;
        len += w;
    }
    if (n == 0 && cap > 0) snprintf(buf, (size_t)cap, "(baseline only)");
}
