/* qrm-convert HF_DIR -o FILE.qrm [--quant f32|f16|int8|int4] [head options] [-q] */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "qrm.h"

static int usage(void) {
    fprintf(stderr, "usage: qrm-convert HF_DIR -o FILE.qrm [--quant f32|f16|int8|int4] [-q]\n"
                    "         [--labels A,B,...] [--step-separator TEXT] [--gating-pattern TEXT]\n");
    return 2;
}

int main(int argc, char **argv) {
    qrm_convert_opts o = {.quant = "int8", .verbose = 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) o.out_path = argv[++i];
        else if (!strcmp(argv[i], "--quant") && i + 1 < argc) o.quant = argv[++i];
        else if (!strcmp(argv[i], "-q")) o.verbose = 0;
        else if (!strcmp(argv[i], "--labels") && i + 1 < argc) o.labels = argv[++i];
        else if (!strcmp(argv[i], "--step-separator") && i + 1 < argc) o.step_separator = argv[++i];
        else if (!strcmp(argv[i], "--gating-pattern") && i + 1 < argc) o.gating_pattern = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(), 0;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "qrm-convert: unknown option '%s'\n", argv[i]);
            return usage();
        } else if (!o.hf_dir) o.hf_dir = argv[i];
        else {
            fprintf(stderr, "qrm-convert: unexpected argument '%s'\n", argv[i]);
            return usage();
        }
    }
    if (!o.hf_dir || !o.out_path) return usage();
    if (!isatty(2)) o.verbose = 0; /* progress is for people watching */
    char err[QRM_ERR_MAX];
    if (qrm_convert(&o, err, sizeof err)) {
        fprintf(stderr, "qrm-convert: %s\n", err);
        return 1;
    }
    return 0;
}
