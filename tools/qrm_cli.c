/* qrm: the command-line tool.
 *
 *   qrm info [-m FILE.qrm]
 *   qrm score -m FILE.qrm ...                                        (tools/score_jsonl.c)
 *   qrm serve -m FILE.qrm [--host ADDR] [--port N] [--parallel P] ...   (tools/serve.c)
 *   qrm tokenize (--tokenizer DIR | -m FILE.qrm) (--text T [--special] | --input F [--special] | --chat F)
 *   qrm verify -m FILE.qrm
 *   qrm eval -m FILE.qrm [-m ...] --data FILE.jsonl [--against REF.qrm] ... (tools/eval.c)
 *
 * Every command's options are a table for tools/cli_opts.c: `qrm COMMAND --help`
 * lists them. See README.md for the JSONL formats.
 */
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
#include "score_jsonl.h"
#include "serve.h"
#include "platform.h"
#include "qrm.h"
#include "text.h"
#include "tokenizer.h"
#include "verify.h"


static const char qrm_usage[] =
    "usage: qrm COMMAND [options]     (qrm COMMAND --help lists a command's options)\n"
    "\n"
    "  info [-m FILE.qrm]           the CPU, the kernels chosen, and a model's shape and head\n"
    "  score -m FILE.qrm ...        score ids, text, a conversation or a JSONL stream\n"
    "  serve -m FILE.qrm ...        the HTTP server (POST /score, /get_reward; /health, /metrics)\n"
    "  tokenize ...                 token ids of text, or of conversations through the chat template\n"
    "  verify -m FILE.qrm           check a file's structure and data checksum\n"
    "  eval -m FILE.qrm --data F    accuracy on RewardBench / preference / ProcessBench files;\n"
    "                               agreement with a reference (--against); ensembles (several -m)\n"
    "\n"
    "  -h, --help                   this text\n"
    "  --version                    the version\n";

static int usage(void) {
    fputs(qrm_usage, stderr);
    return 2;
}

static int run(int argc, char **argv) {
    if (argc < 2) return usage();
    /* The library reads no environment; the program passes QRM_ISA on, once,
     * before any context exists. */
    char err[QRM_ERR_MAX];
    if (qrm_set_default_isa(getenv("QRM_ISA"), err, sizeof err) != QRM_OK) {
        fprintf(stderr, "qrm: QRM_ISA: %s\n", err);
        return 1;
    }
    if (!strcmp(argv[1], "info")) return qrm_cli_info(argc - 2, argv + 2);
    if (!strcmp(argv[1], "score")) {
        int n_models = 0;
        for (int i = 2; i + 1 < argc; i++) n_models += !strcmp(argv[i], "-m") || !strcmp(argv[i], "--model");
        return n_models > 1 ? qrm_cli_score_ensemble(argc - 2, argv + 2) : qrm_cli_score(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "tokenize")) return qrm_cli_tokenize(argc - 2, argv + 2);
    if (!strcmp(argv[1], "verify")) return qrm_cli_verify(argc - 2, argv + 2);
    if (!strcmp(argv[1], "serve")) return qrm_cli_serve(argc - 2, argv + 2);
    if (!strcmp(argv[1], "eval")) return qrm_cli_eval(argc - 2, argv + 2);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return fputs(qrm_usage, stdout), 0;
    if (!strcmp(argv[1], "--version")) {
        cli_print_version("qrm", stdout);
        return 0;
    }
    fprintf(stderr, "qrm: unknown command '%s'\n", argv[1]);
    return usage();
}

int main(int argc, char **argv) {
    int rc = run(argc, argv);
    /* a full disk or a closed pipe is an error, not a lost result (qrm score
     * checks its own output and has said so when it fails) */
    if (rc == 0 && (fflush(stdout) || ferror(stdout))) {
        fprintf(stderr, "qrm: writing the output failed: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}
