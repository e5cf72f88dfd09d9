/* `qrm info`: the CPU, the kernel families, and a model's shape, head and provenance. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_template.h"
#include "cli_commands.h"
#include "cli_opts.h"
#include "cpu.h"
#include "eval.h"
#include "format.h"
#include "json.h"
#include "platform.h"
#include "qrm.h"
#include "text.h"
#include "tokenizer.h"
#include "verify.h"

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "qrm: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

/* ---- info ---- */

int qrm_cli_info(int argc, char **argv) {
    const cli_opt opts[] = {
        {"--model", 'm', CLI_STRING, "FILE.qrm", NULL, "also the model's shape, head and metadata", .many = 0},
    };
    const cli_spec spec = {.prog = "qrm info", .usage = "qrm info [-m FILE.qrm]",
                           .about = "the CPU's features, the kernels chosen and the runnable families; a model's shape",
                           .opts = opts, .n_opts = 1,
                           .epilog = "QRM_ISA=scalar|avx2|avx512|neon|dotprod|i8mm forces a kernel family.\n"};
    cli_val v[1];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    const char *path = v[0].str;
    char feat[256], err[QRM_ERR_MAX];
    qrm_cpu_features_str(qrm_cpu_features_get(), feat, sizeof feat);
    printf("cpu: %s\n", qrm_cpu_name());
    printf("cpu features: %s\n", feat);
    const qrm_kernels *k = qrm_kernels_select(err, sizeof err);
    if (!k) die("%s", err);
    printf("kernels: %s%s\n", k->name, getenv("QRM_ISA") && *getenv("QRM_ISA") ? " (forced by QRM_ISA)" : "");
    char runnable[128];
    qrm_kernels_runnable(qrm_cpu_features_get(), runnable, sizeof runnable);
    printf("runnable: %s\n", runnable);
    printf("threads: %d\n", qrm_cpu_count());
    if (!path) return 0;
    qrm_model *m = qrm_model_open(path, err, sizeof err);
    if (!m) die("%s", err);
    qrm_model_info in;
    qrm_model_get_info(m, &in);
    printf("model: %s\n", path);
    printf("architecture: %s (%s)\n", in.arch, in.hf_architecture ? in.hf_architecture : "?");
    printf("quantization: %s\n", in.quant);
    printf("shape: vocab %d, hidden %d, layers %d, heads %d, kv heads %d, head dim %d, ffn %d\n",
           in.vocab_size, in.hidden_size, in.n_layers, in.n_heads, in.n_kv_heads, in.head_dim,
           in.ffn_size);
    printf("max positions: %d\n", in.max_positions);
    printf("head: %s, %s, %d output%s per point, pad token %d\n", in.head,
           in.per_step ? "a score point per step" : in.logprobs ? "a log-probability per next token"
                                                                  : "one score point per sequence",
           in.n_outputs, in.n_outputs > 1 ? "s" : "", (int)in.pad_token_id);
    printf("outputs:");
    for (int i = 0; i < in.n_outputs; i++) printf(" %s", qrm_model_output_name(m, i));
    printf("\n");
    printf("parameters: %llu\n", (unsigned long long)in.n_params);
    printf("file size: %llu bytes\n", (unsigned long long)in.file_size);
    printf("provenance:\n");
    qrm_print_provenance(stdout, m, "  ");
    printf("metadata: %s\n", qrm_model_metadata_json(m));
    qrm_model_close(m);
    return 0;
}

