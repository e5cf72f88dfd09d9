/* CPU feature detection on captured data of real machines (tests/data/cpu/,
 * see its README), the family choice made from those features, and the
 * choice by name. Decoding is pure, so every file is decoded on every
 * architecture; the family choice is checked where the family is built. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "qrm.h"
#include "testutil.h"

#define CPU_DIR TEST_DATA "/cpu/"

typedef struct {
    qrm_cpuid_regs regs;
    int has_cpuid, has_hwcap, has_features;
    uint64_t hwcap, hwcap2;
    char features[1024];
    char expect[512];
    char best[32];
    char vendor[12];       /* CPUID leaf 0 EBX, EDX, ECX */
    uint32_t signature;    /* CPUID leaf 1 EAX */
    char midr_lines[256];  /* the CPU implementer / CPU part lines */
    char name[128];        /* the expected qrm_cpu_name */
} machine;

/* "CPUID 00000007: 00000000-D39FFFFB-00000000-00000000 [SL 01]" */
static void parse_cpuid_line(const char *line, machine *mc) {
    unsigned leaf, r[4], sl = 0;
    ck_assert_msg(sscanf(line, "CPUID %x: %x-%x-%x-%x", &leaf, &r[0], &r[1], &r[2], &r[3]) == 5,
                  "bad CPUID line: %s", line);
    const char *s = strstr(line, "[SL ");
    if (s) ck_assert(sscanf(s, "[SL %x]", &sl) == 1);
    mc->has_cpuid = 1;
    if (leaf == 0) {
        mc->regs.max_leaf = r[0];
        memcpy(mc->vendor, &r[1], 4), memcpy(mc->vendor + 4, &r[3], 4), memcpy(mc->vendor + 8, &r[2], 4);
    }
    if (leaf == 1) mc->regs.l1_ecx = r[2], mc->signature = r[0];
    if (leaf == 7 && sl == 0) mc->regs.l7_ebx = r[1], mc->regs.l7_ecx = r[2], mc->regs.l7_edx = r[3];
    if (leaf == 7 && sl == 1) mc->regs.l7s1_eax = r[0];
}

/* dst = prefix + src + suffix; a value that does not fit fails the test */
static void put(char *dst, size_t cap, const char *prefix, const char *src, const char *suffix) {
    size_t a = strlen(prefix), b = strlen(src), c = strlen(suffix);
    ck_assert_msg(a + b + c < cap, "value too long: %s", src);
    memcpy(dst, prefix, a);
    memcpy(dst + a, src, b);
    memcpy(dst + a + b, suffix, c + 1);
}

static void parse_line(const char *line, size_t len, void *arg) {
    machine *mc = arg;
    char buf[1100];
    ck_assert_msg(len < sizeof buf, "line too long");
    memcpy(buf, line, len);
    buf[len] = 0;
    unsigned long long v;
    if (buf[0] == '#' || buf[0] == 0) return;
    if (strncmp(buf, "CPUID ", 6) == 0) parse_cpuid_line(buf, mc);
    else if (sscanf(buf, "xcr0 %llx", &v) == 1) mc->regs.xcr0 = v;
    else if (sscanf(buf, "hwcap2 %llx", &v) == 1) mc->hwcap2 = v;
    else if (sscanf(buf, "hwcap %llx", &v) == 1) mc->hwcap = v, mc->has_hwcap = 1;
    else if (strncmp(buf, "Features", 8) == 0) {
        const char *colon = strchr(buf, ':');
        ck_assert(colon != NULL);
        put(mc->features, sizeof mc->features, "", colon + 1, "");
        mc->has_features = 1;
    } else if (strncmp(buf, "expect ", 7) == 0)
        put(mc->expect, sizeof mc->expect, " ", buf + 7, " ");
    else if (strncmp(buf, "best ", 5) == 0)
        put(mc->best, sizeof mc->best, "", buf + 5, "");
    else if (strncmp(buf, "name ", 5) == 0)
        put(mc->name, sizeof mc->name, "", buf + 5, "");
    else if (strncmp(buf, "CPU implementer", 15) == 0 || strncmp(buf, "CPU part", 8) == 0) {
        size_t n = strlen(mc->midr_lines);
        put(mc->midr_lines + n, sizeof mc->midr_lines - n, "", buf, "\n");
    }
    else
        ck_abort_msg("unknown line: %s", buf);
}

static machine load(const char *name) {
    machine mc;
    memset(&mc, 0, sizeof mc);
    char path[256];
    snprintf(path, sizeof path, CPU_DIR "%s", name);
    tu_for_each_line(path, parse_line, &mc);
    ck_assert_msg(mc.best[0] && mc.expect[0], "%s: no expect/best line", name);
    return mc;
}

static int expected(const machine *mc, const char *field) {
    char key[40];
    snprintf(key, sizeof key, " %s ", field);
    return strstr(mc->expect, key) != NULL;
}

/* Every field of qrm_cpu_features against the expect line. */
static void check_features(const char *file, const char *how, const machine *mc,
                           const qrm_cpu_features *f) {
    struct { const char *name; int v; } fields[] = {
        {"avx2", f->avx2}, {"fma", f->fma}, {"f16c", f->f16c}, {"avx512f", f->avx512f},
        {"avx512bw", f->avx512bw}, {"avx512vl", f->avx512vl}, {"avx512vnni", f->avx512vnni},
        {"avxvnni", f->avxvnni}, {"os_avx", f->os_avx}, {"os_avx512", f->os_avx512},
        {"neon", f->neon}, {"asimddp", f->asimddp}, {"i8mm", f->i8mm}, {"fphp", f->fphp},
        {"sve", f->sve},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ck_assert_msg(fields[i].v == expected(mc, fields[i].name), "%s (%s): %s is %d, expected %d",
                      file, how, fields[i].name, fields[i].v, expected(mc, fields[i].name));
}

/* The table of a family built for this architecture (NULL while it is a
 * placeholder); only families of this architecture exist in the binary. */
static const qrm_kernels *family_table(const char *name) {
#define FAMILY_TABLE(f) if (!strcmp(name, #f)) return qrm_kernels_##f();
    QRM_FAMILIES_BUILT(FAMILY_TABLE)
    ck_abort_msg("family %s is not of this architecture", name);
    return NULL;
}

static void check_best(const char *file, const machine *mc, const qrm_cpu_features *f) {
    if (!family_table(mc->best)) {
        /* the family exists only as a placeholder so far: nothing to pick */
        printf("note: %s: family %s not built, best-choice check skipped\n", file, mc->best);
        return;
    }
    const qrm_kernels *k = qrm_kernels_best(f);
    ck_assert_ptr_nonnull(k);
    ck_assert_msg(!strcmp(k->name, mc->best), "%s: best family %s, expected %s", file, k->name,
                  mc->best);
    char err[200] = "";
    ck_assert_msg(qrm_kernels_by_name(mc->best, f, err, sizeof err) == k, "%s: by name: %s", file,
                  err);
}

static const char *const x86_files[] = {
    "x86-icelake-server.txt", "x86-skylake-x.txt", "x86-skylake-x-no-zmm-state.txt",
    "x86-zen4.txt",           "x86-haswell.txt",   "x86-zen3-live.txt",
    "x86-zen5-live.txt",
};
static const char *const arm_files[] = {
    "arm64-graviton2.txt",      "arm64-graviton3.txt",      "arm64-rpi5.txt",
    "arm64-rpi4.txt",           "arm64-apple-m1-asahi.txt", "arm64-apple-m2-asahi.txt",
    "arm64-ampere-altra.txt",
};

START_TEST(x86_dumps_decode) {
    const char *file = x86_files[_i];
    machine mc = load(file);
    ck_assert_msg(mc.has_cpuid, "%s: no CPUID lines", file);
    qrm_cpu_features f;
    qrm_cpu_decode_x86(&mc.regs, &f);
    check_features(file, "cpuid", &mc, &f);
#if defined(__x86_64__)
    check_best(file, &mc, &f);
#endif
    char name[128];
    ck_assert_msg(mc.name[0], "%s: no name line", file);
    qrm_cpu_name_x86(mc.vendor, mc.signature, name, sizeof name);
    ck_assert_msg(!strcmp(name, mc.name), "%s: name '%s', expected '%s'", file, name, mc.name);
}
END_TEST

START_TEST(arm_dumps_decode) {
    const char *file = arm_files[_i];
    machine mc = load(file);
    ck_assert_msg(mc.has_features && mc.has_hwcap, "%s: needs Features and hwcap lines", file);
    qrm_cpu_features fh, fc;
    qrm_cpu_decode_hwcap(mc.hwcap, mc.hwcap2, &fh);
    qrm_cpu_decode_cpuinfo_flags(mc.features, &fc);
    check_features(file, "hwcap", &mc, &fh);
    check_features(file, "cpuinfo Features", &mc, &fc);
#if defined(__aarch64__)
    check_best(file, &mc, &fh);
#endif
    /* the name, where the source gave the MIDR fields */
    unsigned impl, part;
    if (!mc.midr_lines[0]) {
        ck_assert_msg(!mc.name[0], "%s: a name line without CPU implementer / CPU part lines", file);
        return;
    }
    ck_assert_msg(qrm_cpu_midr_from_cpuinfo(mc.midr_lines, &impl, &part), "%s: MIDR lines not read", file);
    char name[128];
    qrm_cpu_name_arm(impl, part, name, sizeof name);
    ck_assert_msg(!strcmp(name, mc.name), "%s: name '%s', expected '%s'", file, name, mc.name);
}
END_TEST

/* Names of cores the tables do not list, vendors that are neither AMD nor
 * Intel (printable, no JSON metacharacters), a small buffer, and MIDR
 * lines that are missing or malformed. */
START_TEST(cpu_names_edge_cases) {
    char buf[128];
    qrm_cpu_name_x86("AuthenticAMD", 0x00800F12, buf, sizeof buf); /* family 0x17 model 0x01: Zen */
    ck_assert_str_eq(buf, "AMD family 0x17 model 0x01 stepping 2 (Zen / Zen+)");
    qrm_cpu_name_x86("AuthenticAMD", 0x00F00F00, buf, sizeof buf); /* family 0x1e: not listed */
    ck_assert_str_eq(buf, "AMD family 0x1e model 0x00 stepping 0");
    qrm_cpu_name_x86("GenuineIntel", 0x000B0671, buf, sizeof buf); /* 06_B7: Raptor Lake */
    ck_assert_str_eq(buf, "Intel family 0x6 model 0xb7 stepping 1 (Raptor Lake)");
    qrm_cpu_name_x86("GenuineIntel", 0x00000F29, buf, sizeof buf); /* a Pentium 4: family 0xf */
    ck_assert_str_eq(buf, "Intel family 0xf model 0x02 stepping 9");
    qrm_cpu_name_x86("Hyg\"nGe\001uine", 0x00900F11, buf, sizeof buf);
    ck_assert_str_eq(buf, "Hyg?nGe?uine family 0x18 model 0x01 stepping 1");
    char small[12];
    qrm_cpu_name_x86("AuthenticAMD", 0x00B00F21, small, sizeof small);
    ck_assert_str_eq(small, "AMD family ");
    qrm_cpu_name_x86("AuthenticAMD", 0x00B00F21, small, 0); /* nothing written, no crash */
    qrm_cpu_name_arm(0x41, 0xfff, buf, sizeof buf);
    ck_assert_str_eq(buf, "implementer 0x41 part 0xfff");
    qrm_cpu_name_arm(0x61, 0x033, buf, sizeof buf);
    ck_assert_str_eq(buf, "implementer 0x61 part 0x033 (Apple M2 Avalanche)");
    unsigned impl = 7, part = 7;
    ck_assert(!qrm_cpu_midr_from_cpuinfo("", &impl, &part));
    ck_assert(!qrm_cpu_midr_from_cpuinfo("CPU implementer\t: 0x41\n", &impl, &part));
    ck_assert(!qrm_cpu_midr_from_cpuinfo("CPU implementer\t: zz\nCPU part\t: 0xd0c\n", &impl, &part));
    ck_assert(!qrm_cpu_midr_from_cpuinfo("CPU implementer 0x41\nCPU part 0xd0c\n", &impl, &part)); /* no colon */
    /* the first of each, as on a big.LITTLE machine's list of cores */
    ck_assert(qrm_cpu_midr_from_cpuinfo("processor\t: 0\nCPU implementer\t: 0x41\nCPU variant\t: 0x4\n"
                                        "CPU part\t: 0xd05\n\nprocessor\t: 4\nCPU implementer\t: 0x41\n"
                                        "CPU part\t: 0xd0b\n",
                                        &impl, &part));
    ck_assert_uint_eq(impl, 0x41);
    ck_assert_uint_eq(part, 0xd05);
    const char *live = qrm_cpu_name();
    ck_assert_ptr_eq(live, qrm_cpu_name());
    ck_assert(live[0] != 0);
    printf("this machine: %s\n", live);
}
END_TEST

/* The same leaves without OS support (XCR0) or without OSXSAVE lose every
 * VEX/EVEX feature: executing them would fault. */
START_TEST(x86_os_state_gates_features) {
    machine mc = load("x86-icelake-server.txt");
    qrm_cpu_features f;
    qrm_cpuid_regs r = mc.regs;
    r.xcr0 = 0x3; /* x87 + SSE only */
    qrm_cpu_decode_x86(&r, &f);
    ck_assert(!f.os_avx && !f.avx2 && !f.fma && !f.avx512f && !f.avx512vnni);
    r = mc.regs;
    r.l1_ecx &= ~(1u << 27); /* OSXSAVE clear: XCR0 must be ignored */
    qrm_cpu_decode_x86(&r, &f);
    ck_assert(!f.os_avx && !f.avx2 && !f.avx512f);
    r = mc.regs;
    r.max_leaf = 6; /* leaf 7 not valid: its registers must be ignored */
    qrm_cpu_decode_x86(&r, &f);
    ck_assert(f.fma && f.f16c && !f.avx2 && !f.avx512f);
    /* everything set but XCR0 without Hi16_ZMM */
    r = mc.regs;
    r.xcr0 = 0x67;
    qrm_cpu_decode_x86(&r, &f);
    ck_assert(f.os_avx && !f.os_avx512 && f.avx2 && !f.avx512f && !f.avx512vnni);
}
END_TEST

START_TEST(cpuinfo_flags_whole_words_only) {
    qrm_cpu_features f;
    /* "asimddp" must not count as "asimd", nor "svei8mm" as "i8mm" */
    qrm_cpu_decode_cpuinfo_flags("fp asimddp svei8mm sve2 fphpx", &f);
    ck_assert(!f.neon && f.asimddp && !f.i8mm && !f.sve && !f.fphp);
    qrm_cpu_decode_cpuinfo_flags("\tasimd\t i8mm\n", &f);
    ck_assert(f.neon && f.i8mm);
    qrm_cpu_decode_cpuinfo_flags("", &f);
    ck_assert(!f.neon && !f.asimddp && !f.i8mm && !f.fphp && !f.sve);
    qrm_cpu_decode_hwcap(0, 0, &f);
    ck_assert(!f.neon && !f.asimddp && !f.i8mm);
    qrm_cpu_decode_hwcap(~0ull, ~0ull, &f);
    ck_assert(f.neon && f.asimddp && f.i8mm && f.fphp && f.sve && !f.avx2);
}
END_TEST

START_TEST(features_str_lists_names) {
    machine mc = load("arm64-graviton3.txt");
    qrm_cpu_features f;
    qrm_cpu_decode_hwcap(mc.hwcap, mc.hwcap2, &f);
    char buf[128];
    qrm_cpu_features_str(&f, buf, sizeof buf);
    ck_assert_str_eq(buf, "neon fphp dotprod i8mm sve");
    char tiny[6];
    qrm_cpu_features_str(&f, tiny, sizeof tiny); /* truncates, stays terminated */
    ck_assert(strlen(tiny) < sizeof tiny);
    memset(&f, 0, sizeof f);
    qrm_cpu_features_str(&f, buf, sizeof buf);
    ck_assert_str_eq(buf, "(baseline only)");
}
END_TEST

START_TEST(by_name_rejects_unknown_and_unsupported) {
    char err[200];
    qrm_cpu_features none;
    memset(&none, 0, sizeof none);
    const char *bad[] = {"", "avx1024", "NEON", "scalar ", "i8mm,dotprod"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ck_assert_ptr_null(qrm_kernels_by_name(bad[i], &none, err, sizeof err));
        ck_assert_msg(strstr(err, "unknown") != NULL, "'%s': %s", bad[i], err);
    }
    ck_assert_ptr_nonnull(qrm_kernels_by_name("scalar", &none, err, sizeof err));
    /* families of the other architecture are never built in */
#if defined(__x86_64__)
    const char *foreign[] = {"neon", "dotprod", "i8mm"};
    machine weak = load("x86-haswell.txt");
    const char *unsupported = "avx512";
    qrm_cpu_features f;
    qrm_cpu_decode_x86(&weak.regs, &f);
#elif defined(__aarch64__)
    const char *foreign[] = {"avx2", "avx512"};
    machine weak = load("arm64-graviton2.txt");
    const char *unsupported = "i8mm";
    qrm_cpu_features f;
    qrm_cpu_decode_hwcap(weak.hwcap, weak.hwcap2, &f);
#else
    const char *foreign[] = {"avx2", "neon"};
    const char *unsupported = NULL;
    qrm_cpu_features f = none;
#endif
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        err[0] = 0;
        ck_assert_ptr_null(qrm_kernels_by_name(foreign[i], &f, err, sizeof err));
        ck_assert_msg(strstr(err, "not built") != NULL, "%s: %s", foreign[i], err);
    }
    if (unsupported) {
        err[0] = 0;
        ck_assert_ptr_null(qrm_kernels_by_name(unsupported, &f, err, sizeof err));
        ck_assert_msg(strstr(err, "not supported") != NULL, "%s: %s", unsupported, err);
        /* and with no features at all, even the baseline SIMD family is refused */
#if defined(__aarch64__)
        ck_assert_ptr_null(qrm_kernels_by_name("neon", &none, err, sizeof err));
#endif
    }
}
END_TEST

/* qrm_set_default_isa forces a family; an unusable one is an error that
 * keeps the previous choice, never a fallback. */
START_TEST(select_honours_qrm_isa) {
    char err[200];
    ck_assert_int_eq(qrm_set_default_isa("scalar", err, sizeof err), QRM_OK);
    const qrm_kernels *k = qrm_kernels_select(err, sizeof err);
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->name, "scalar");
    err[0] = 0;
    ck_assert_int_eq(qrm_set_default_isa("no-such-isa", err, sizeof err), QRM_EINVAL);
    ck_assert(strstr(err, "no-such-isa") != NULL);
    ck_assert_str_eq(qrm_kernels_select(err, sizeof err)->name, "scalar");
    ck_assert_int_eq(qrm_set_default_isa(NULL, err, sizeof err), QRM_OK);
    k = qrm_kernels_select(err, sizeof err);
    ck_assert_ptr_eq(k, qrm_kernels_best(qrm_cpu_features_get()));
    /* the library itself ignores QRM_ISA: only a program passes it on */
    char *env = getenv("QRM_ISA") ? strdup(getenv("QRM_ISA")) : NULL;
    setenv("QRM_ISA", "scalar", 1);
    ck_assert_ptr_eq(qrm_kernels_select(err, sizeof err), qrm_kernels_best(qrm_cpu_features_get()));
    if (env) setenv("QRM_ISA", env, 1);
    else unsetenv("QRM_ISA");
    free(env);
    tu_apply_isa_env();
}
END_TEST

/* The running machine: the probe is stable, and its best family runs. */
START_TEST(live_probe_is_consistent) {
    const qrm_cpu_features *a = qrm_cpu_features_get(), *b = qrm_cpu_features_get();
    ck_assert_ptr_eq(a, b);
    const qrm_kernels *k = qrm_kernels_best(a);
    ck_assert_ptr_nonnull(k);
    char err[200];
    ck_assert_ptr_eq(qrm_kernels_by_name(k->name, a, err, sizeof err), k);
#if defined(__aarch64__)
    ck_assert(a->neon); /* every aarch64 CPU has Advanced SIMD */
#endif
    char buf[200];
    qrm_cpu_features_str(a, buf, sizeof buf);
    printf("this machine: %s -> %s\n", buf, k->name);
}
END_TEST

static Suite *cpu_suite(void) {
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("decode");
    /* Check's default 4 s does not hold under the sanitizers or qemu on a busy 2-core machine */
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, x86_dumps_decode, 0, (int)(sizeof x86_files / sizeof x86_files[0]));
    tcase_add_loop_test(tc, arm_dumps_decode, 0, (int)(sizeof arm_files / sizeof arm_files[0]));
    tcase_add_test(tc, x86_os_state_gates_features);
    tcase_add_test(tc, cpuinfo_flags_whole_words_only);
    tcase_add_test(tc, features_str_lists_names);
    tcase_add_test(tc, cpu_names_edge_cases);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("choice");
    /* Check's default 4 s does not hold under the sanitizers or qemu on a busy 2-core machine */
    tcase_set_timeout(tc2, 300);
    tcase_add_test(tc2, by_name_rejects_unknown_and_unsupported);
    tcase_add_test(tc2, select_honours_qrm_isa);
    tcase_add_test(tc2, live_probe_is_consistent);
    suite_add_tcase(s, tc2);
    return s;
}

int main(void) { return tu_run(cpu_suite()); }
