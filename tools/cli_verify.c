/* `qrm verify`: a file's structure and its data checksum (tools/verify.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_template.h"
#include "cli_commands.h"
#include "cli_opts.h"
#include "cpu.h"
#include "format.h"
#include "json.h"
#include "platform.h"
#include "qrm.h"
#include "text.h"
#include "tokenizer.h"
#include "verify.h"

/* ---- verify ---- */

int qrm_cli_verify(int argc, char **argv) {
    const cli_opt opts[] = {{"--model", 'm', CLI_STRING, "FILE.qrm", "required", "the file to check", .many = 0}};
    const cli_spec spec = {.prog = "qrm verify", .usage = "qrm verify -m FILE.qrm",
                           .about = "check a .qrm file's structure and its data checksum (reads it all)",
                           .opts = opts, .n_opts = 1,
                           .epilog = "Exit status: 0 intact, 1 damaged or unreadable, 2 for a usage error.\n"};
    cli_val v[1];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    const char *path = v[0].str;
    if (!path) return cli_usage_error(&spec, "no model: give -m FILE.qrm");
    char msg[QRM_ERR_MAX + 64];
    if (qrm_verify_file(path, msg, sizeof msg)) {
        fprintf(stderr, "qrm: %s: %s\n", path, msg);
        return 1;
    }
    printf("%s: %s\n", path, msg);
    return 0;
}

