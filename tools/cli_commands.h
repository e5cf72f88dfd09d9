/* The subcommands of `qrm` that live in their own files (tools/cli_*.c);
 * score, serve and eval declare theirs in score_jsonl.h, serve.h, eval.h.
 * Each takes the arguments after its name and returns the exit status. */
#ifndef QRM_CLI_COMMANDS_H
#define QRM_CLI_COMMANDS_H

int qrm_cli_info(int argc, char **argv);
int qrm_cli_tokenize(int argc, char **argv);
int qrm_cli_verify(int argc, char **argv);

#endif
