/* The CPU's name for `qrm info` and the benchmarks: vendor, family / model
 * (x86) or implementer / part (Arm), and the core it identifies.
 *
 * Speed figures are only comparable on the same core, and a cloud VM's brand
 * string says little ("AMD EPYC" for Zen 3, 4 and 5 alike), so the name comes
 * from the CPUID signature or the MIDR. Decoding is pure, like the feature
 * decoding, and tested on the captured dumps of tests/data/cpu/. The tables
 * list the cores qrm's families target; an unknown one is printed by its
 * numbers alone. Values: AMD's and Intel's family / model numbers as the
 * vendors' manuals and Linux's arch/x86 give them, Arm's MIDR part numbers
 * from the cores' technical reference manuals. */
#include <stdio.h>
#include <string.h>

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

typedef struct {
    unsigned family, model_lo, model_hi;
    const char *name;
} x86_core;

static const x86_core amd_cores[] = {
    {0x17, 0x00, 0x2f, "Zen / Zen+"}, {0x17, 0x30, 0xff, "Zen 2"},
    {0x19, 0x00, 0x0f, "Zen 3"},      {0x19, 0x10, 0x1f, "Zen 4"},
    {0x19, 0x20, 0x3f, "Zen 3"},      {0x19, 0x40, 0x4f, "Zen 3+"},
    {0x19, 0x50, 0x5f, "Zen 3"},      {0x19, 0x60, 0x7f, "Zen 4"},
    {0x19, 0xa0, 0xaf, "Zen 4"},      {0x1a, 0x00, 0xff, "Zen 5"},
};

/* Intel family 6: one model number per line (ranges do not apply). */
static const x86_core intel_cores[] = {
    {6, 0x2a, 0x2a, "Sandy Bridge"},   {6, 0x2d, 0x2d, "Sandy Bridge-E"},
    {6, 0x3a, 0x3a, "Ivy Bridge"},     {6, 0x3e, 0x3e, "Ivy Bridge-E"},
    {6, 0x3c, 0x3c, "Haswell"},        {6, 0x3f, 0x3f, "Haswell-E"},
    {6, 0x45, 0x46, "Haswell"},        {6, 0x3d, 0x3d, "Broadwell"},
    {6, 0x47, 0x47, "Broadwell"},      {6, 0x4f, 0x4f, "Broadwell-E"},
    {6, 0x56, 0x56, "Broadwell-DE"},   {6, 0x4e, 0x4e, "Skylake"},
    {6, 0x5e, 0x5e, "Skylake"},        {6, 0x55, 0x55, "Skylake-SP / Cascade Lake"},
    {6, 0x8e, 0x8e, "Kaby / Coffee / Comet Lake"}, {6, 0x9e, 0x9e, "Kaby / Coffee Lake"},
    {6, 0xa5, 0xa5, "Comet Lake"},     {6, 0x6a, 0x6a, "Ice Lake-SP"},
    {6, 0x6c, 0x6c, "Ice Lake-D"},     {6, 0x7d, 0x7e, "Ice Lake"},
    {6, 0x8c, 0x8d, "Tiger Lake"},     {6, 0xa7, 0xa7, "Rocket Lake"},
    {6, 0x8f, 0x8f, "Sapphire Rapids"}, {6, 0xcf, 0xcf, "Emerald Rapids"},
    {6, 0xad, 0xae, "Granite Rapids"}, {6, 0xaf, 0xaf, "Sierra Forest"},
    {6, 0x97, 0x97, "Alder Lake"},     {6, 0x9a, 0x9a, "Alder Lake"},
    {6, 0xb7, 0xb7, "Raptor Lake"},    {6, 0xba, 0xba, "Raptor Lake"},
    {6, 0xbf, 0xbf, "Raptor Lake"},    {6, 0xaa, 0xaa, "Meteor Lake"},
    {6, 0xc5, 0xc6, "Arrow Lake"},     {6, 0xbd, 0xbd, "Lunar Lake"},
};

static const char *x86_core_name(const x86_core *t, size_t n, unsigned family, unsigned model) {
    for (size_t i = 0; i < n; i++)
        if (t[i].family == family && model >= t[i].model_lo && model <= t[i].model_hi) return t[i].name;
    return NULL;
}

void qrm_cpu_name_x86(const char vendor[12], uint32_t signature, char *buf, int cap) {
    if (cap <= 0) return;
    /* CPUID leaf 1 EAX: stepping 3:0, model 7:4, family 11:8, extended
     * model 19:16, extended family 27:20. The extended family adds to a
     * family of 0xF; the extended model extends families 6 and 0xF up. */
    unsigned stepping = signature & 0xf, model = (signature >> 4) & 0xf, family = (signature >> 8) & 0xf;
    if (family == 0xf) family += (signature >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf) model |= ((signature >> 16) & 0xf) << 4;
    int amd = memcmp(vendor, "AuthenticAMD", 12) == 0, intel = memcmp(vendor, "GenuineIntel", 12) == 0;
    const char *core = amd     ? x86_core_name(amd_cores, sizeof amd_cores / sizeof *amd_cores, family, model)
                       : intel ? x86_core_name(intel_cores, sizeof intel_cores / sizeof *intel_cores, family, model)
                               : NULL;
    char v[13];
    memcpy(v, vendor, 12);
    v[12] = 0;
    for (int i = 0; i < 12; i++)
        /* a hypervisor may put anything here; the name goes into JSON */
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == '"' || v[i] == '\\') v[i] = '?';
    snprintf(buf, (size_t)cap, "%s family 0x%x model 0x%02x stepping %u%s%s%s", amd ? "AMD" : intel ? "Intel" : v,
             family, model, stepping, core ? " (" : "", core ? core : "", core ? ")" : "");
}

typedef struct {
    unsigned implementer, part;
    const char *name;
} arm_core;

static const arm_core arm_cores[] = {
    {0x41, 0xd03, "Cortex-A53"},   {0x41, 0xd04, "Cortex-A35"},   {0x41, 0xd05, "Cortex-A55"},
    {0x41, 0xd07, "Cortex-A57"},   {0x41, 0xd08, "Cortex-A72"},   {0x41, 0xd09, "Cortex-A73"},
    {0x41, 0xd0a, "Cortex-A75"},   {0x41, 0xd0b, "Cortex-A76"},   {0x41, 0xd0c, "Neoverse N1"},
    {0x41, 0xd0d, "Cortex-A77"},   {0x41, 0xd40, "Neoverse V1"},  {0x41, 0xd41, "Cortex-A78"},
    {0x41, 0xd44, "Cortex-X1"},    {0x41, 0xd46, "Cortex-A510"},  {0x41, 0xd47, "Cortex-A710"},
    {0x41, 0xd48, "Cortex-X2"},    {0x41, 0xd49, "Neoverse N2"},  {0x41, 0xd4d, "Cortex-A715"},
    {0x41, 0xd4e, "Cortex-X3"},    {0x41, 0xd4f, "Neoverse V2"},  {0x41, 0xd80, "Cortex-A520"},
    {0x41, 0xd81, "Cortex-A720"},  {0x41, 0xd82, "Cortex-X4"},    {0x41, 0xd84, "Neoverse V3"},
    {0x41, 0xd8e, "Neoverse N3"},  {0x61, 0x022, "Apple M1 Icestorm"}, {0x61, 0x023, "Apple M1 Firestorm"},
    {0x61, 0x032, "Apple M2 Blizzard"}, {0x61, 0x033, "Apple M2 Avalanche"},
    {0xc0, 0xac3, "AmpereOne"},
};

void qrm_cpu_name_arm(unsigned implementer, unsigned part, char *buf, int cap) {
    if (cap <= 0) return;
    const char *core = NULL;
    for (size_t i = 0; i < sizeof arm_cores / sizeof *arm_cores; i++)
        if (arm_cores[i].implementer == implementer && arm_cores[i].part == part) core = arm_cores[i].name;
    snprintf(buf, (size_t)cap, "implementer 0x%02x part 0x%03x%s%s%s", implementer, part, core ? " (" : "",
             core ? core : "", core ? ")" : "");
}

/* The value of the first "KEY\t: 0x..." line of a /proc/cpuinfo text. */
static int cpuinfo_hex(const char *text, const char *key, unsigned *out) {
    size_t kl = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, key, kl) != 0) continue;
        const char *p = l + kl;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != ':') continue;
        unsigned v;
        if (sscanf(p + 1, " %x", &v) == 1) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

int qrm_cpu_midr_from_cpuinfo(const char *text, unsigned *implementer, unsigned *part) {
    return cpuinfo_hex(text, "CPU implementer", implementer) && cpuinfo_hex(text, "CPU part", part);
}

void qrm_cpu_probe_name(char *buf, int cap) {
    if (cap <= 0) return;
    snprintf(buf, (size_t)cap, "unknown");
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    char vendor[12];
    memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4);
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    qrm_cpu_name_x86(vendor, a, buf, cap);
#elif defined(__aarch64__) && defined(__linux__)
    /* The first core's MIDR (a big.LITTLE machine has several kinds; the
     * first is what `qrm info` names). */
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    unsigned impl, part;
    if (qrm_cpu_midr_from_cpuinfo(text, &impl, &part)) qrm_cpu_name_arm(impl, part, buf, cap);
#endif
}
