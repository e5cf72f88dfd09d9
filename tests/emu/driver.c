/* qrm's AVX-512 kernel family, run under bochs on a machine without
 * AVX-512, checked on the host against the scalar reference. See README.md.
 *
 * One source, two builds. Guest (bare metal, rt.c): driver_main() runs every
 * case on the avx512 family and writes the outputs to port 0xE9. Host
 * (-DHOST, this file's main): `emu-check DUMP` runs the same cases, which
 * rebuild the same inputs, and judges the guest's outputs in DUMP;
 * `emu-check --host FAMILY` judges FAMILY run on this CPU instead (a control
 * for the checks themselves). */
#include "cases.h"
#include "f16_ties.h"
#include "harness.h"

#ifndef HOST
#include "rt.h"
#endif

static void all_cases(void) {
    cases_quantize_act();
    cases_gemm_q_saturation();
    cases_quantize_then_gemm_q8();
    cases_gemm_float();
    cases_dot_axpy_scale();
    cases_rmsnorm();
    cases_softmax();
    cases_silu_gelu();
    cases_rope();
    cases_wsum_rows(0);
    cases_wsum_rows(1);
    cases_f32_to_f16();
    cases_gemm_q();
    cases_invariance();
}

#ifndef HOST
void driver_main(void) {
    kern = qrm_kernels_avx512();
    rt_puts("family: ");
    rt_puts(kern->name);
    rt_puts("\n");
    f16_tie_probe();
    for (guard_pass = 0; guard_pass < 2; guard_pass++) {
        rt_puts(guard_pass ? "pass 1: every buffer starts at the end of an unmapped page\n"
                           : "pass 0: every buffer ends at the start of an unmapped page\n");
        all_cases();
    }
}
#else
#include <stdio.h>
#include <string.h>

#include "cpu.h"

int main(int argc, char **argv) {
    const char *what;
    if (argc == 2 && argv[1][0] != '-') {
        replay_open_or_exit(argv[1]);
        kern =
            qrm_kernels_scalar(); /* computes something; record() puts the guest's bytes over it */
        what = "avx512 under bochs";
        printf("checking the guest's records in %s\n", argv[1]);
    } else if (argc == 3 && !strcmp(argv[1], "--host")) {
        char err[200];
        kern = qrm_kernels_by_name(argv[2], qrm_cpu_features_get(), err, sizeof err);
        if (!kern) {
            printf("%s\n", err);
            return 2;
        }
        what = argv[2];
        printf("control run: %s computed on this host, same checks\n", kern->name);
    } else {
        fprintf(stderr,
                "usage: %s DUMP           judge the guest's outputs (bochs' port 0xE9 log)\n"
                "       %s --host FAMILY  judge FAMILY computed on this CPU\n",
                argv[0], argv[0]);
        return 2;
    }
    f16_tie_probe();
    for (guard_pass = 0; guard_pass < 2; guard_pass++) all_cases();
    if (replaying() && !replay_finished()) {
        printf("FAIL: the guest's output has no GUEST DONE after the last record\n");
        return 3;
    }
    f16_tie_report();
    printf("%s: %ld cases, %ld failures (%ld failing values, %ld records, %ld not bitwise the scalar "
           "reference's)\n",
           what, cases_checked(), cases_failed(), values_failed(), records_read(), records_differ());
    return cases_failed() || records_differ() ? 1 : 0;
}
#endif
