/* CPU feature detection and the one place where a kernel family is chosen.
 *
 * Detection is split in two so that it can be tested on captured data of
 * real machines (tests/data/cpu/): a pure decoding function that turns raw
 * CPUID leaves / HWCAP words into qrm_cpu_features, and a thin probe that
 * reads those raw values from the running CPU/OS.
 */
#ifndef QRM_CPU_H
#define QRM_CPU_H

#include <stdint.h>
#include "kernels.h"

typedef struct {
    /* x86 */
    unsigned avx2 : 1, fma : 1, f16c : 1, avx512f : 1, avx512bw : 1, avx512vl : 1,
        avx512vnni : 1, avxvnni : 1, os_avx : 1, os_avx512 : 1;
    /* aarch64 */
    unsigned neon : 1, asimddp : 1, i8mm : 1, fphp : 1, sve : 1;
} qrm_cpu_features;

/* Raw x86 CPUID registers needed for decoding: leaf 1 ecx, leaf 7.0 ebx/ecx/edx,
 * leaf 7.1 eax, and XCR0 (0 when OSXSAVE is clear). */
typedef struct {
    uint32_t max_leaf, l1_ecx, l7_ebx, l7_ecx, l7_edx, l7s1_eax;
    uint64_t xcr0;
} qrm_cpuid_regs;

void qrm_cpu_decode_x86(const qrm_cpuid_regs *r, qrm_cpu_features *f);
/* Linux aarch64 getauxval(AT_HWCAP), getauxval(AT_HWCAP2). */
void qrm_cpu_decode_hwcap(uint64_t hwcap, uint64_t hwcap2, qrm_cpu_features *f);
/* The "Features" line of an aarch64 /proc/cpuinfo (space-separated flags). */
void qrm_cpu_decode_cpuinfo_flags(const char *flags, qrm_cpu_features *f);

/* Features of the running machine (probed once). */
const qrm_cpu_features *qrm_cpu_features_get(void);
/* Human-readable list, e.g. "avx2 fma f16c avx512f ...". */
void qrm_cpu_features_str(const qrm_cpu_features *f, char *buf, int cap);

/* The CPU's name (arch/cpu_name.c): "AMD family 0x1a model 0x02 stepping 1
 * (Zen 5)", "implementer 0x41 part 0xd0c (Neoverse N1)"; numbers alone for a
 * core the tables do not list. vendor: CPUID leaf 0's EBX, EDX, ECX;
 * signature: leaf 1's EAX. */
void qrm_cpu_name_x86(const char vendor[12], uint32_t signature, char *buf, int cap);
void qrm_cpu_name_arm(unsigned implementer, unsigned part, char *buf, int cap);
/* The first "CPU implementer" and "CPU part" of an aarch64 /proc/cpuinfo;
 * 0 if either is missing. */
int qrm_cpu_midr_from_cpuinfo(const char *text, unsigned *implementer, unsigned *part);
/* The running CPU's name into buf ("unknown" if it cannot be read). */
void qrm_cpu_probe_name(char *buf, int cap);
/* The same, probed once with the features (qrm_cpu_features_get). */
const char *qrm_cpu_name(void);

/* Best family for these features (the preference order lives here only). */
const qrm_kernels *qrm_kernels_best(const qrm_cpu_features *f);
/* Names of the families this CPU can run, best first, space-separated. */
void qrm_kernels_runnable(const qrm_cpu_features *f, char *buf, int len);
/* Family by name; NULL and a message in err if unknown or unsupported by f. */
const qrm_kernels *qrm_kernels_by_name(const char *name, const qrm_cpu_features *f,
                                       char *err, int errlen);
/* The process-wide choice: the family qrm_set_default_isa forced, else the
 * best. Never NULL today (the forced family was checked when it was set);
 * err is kept for callers that treat NULL as an error. */
const qrm_kernels *qrm_kernels_select(char *err, int errlen);

#endif
