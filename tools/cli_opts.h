/* One option parser for every command line of qrm, qrm-convert and
 * qrm-bench: each command describes its options in a table, and the parser
 * gives every command the same manners (strict numbers, one message naming
 * the option and the bad value, --help from the table, --version). */
#ifndef QRM_CLI_OPTS_H
#define QRM_CLI_OPTS_H

#include <stdio.h>

#include "qrm.h"

typedef enum {
    CLI_FLAG,   /* no value */
    CLI_INT,    /* a whole decimal integer in [lo, hi] */
    CLI_DOUBLE, /* a finite number in [dlo, dhi] */
    CLI_STRING,
    CLI_CHOICE  /* one of choices ("f32|f16"); the index lands in cli_val.choice */
} cli_kind;

typedef struct {
    const char *name;   /* "--model" (every option has a long name) */
    char alias;         /* 'm' for -m, or 0 */
    cli_kind kind;
    const char *arg;    /* the value's name in --help ("FILE.qrm"); choices when NULL */
    const char *def;    /* the default as --help shows it; NULL: "none", or "off" for a flag */
    const char *help;
    long lo, hi;        /* CLI_INT */
    double dlo, dhi;    /* CLI_DOUBLE; both 0 means any finite number */
    const char *choices;
    int many;           /* may be repeated, every value kept (else a repeat is an error) */
    int group;          /* options sharing a nonzero group exclude each other */
    const char *alt;    /* a second long name ("--ctx-size"): the spelling llama.cpp users type */
} cli_opt;

typedef struct {
    int count;          /* times given */
    const char *str;    /* the (last) value as written */
    long i;
    double d;
    int choice;
    const char **all;   /* many: every value, count of them (freed by cli_free) */
} cli_val;

typedef struct {
    const char *prog;       /* "qrm score": the prefix of every message */
    const char *usage;      /* the synopsis after "usage: " (may hold newlines) */
    const char *about;      /* one line for --help; may be NULL */
    const cli_opt *opts;
    int n_opts;
    int max_pos;            /* positional arguments allowed */
    const char *epilog;     /* after the options in --help; may be NULL */
    const char **groups;    /* groups[g - 1]: why group g's options exclude each other; may be NULL */
    void (*version)(FILE *f); /* --version's line; NULL: the program, qrm's version, library and format */
} cli_spec;

/* Parses argv[0..argc) (the words after the command). Returns 0 to go on,
 * 1 when --help or --version was printed (exit 0), -1 after a usage error
 * on stderr (exit 2). vals has spec->n_opts entries; pos gets at most
 * max_pos positional arguments, their number in *n_pos. */
int cli_parse(const cli_spec *spec, int argc, char **argv, cli_val *vals, const char **pos, int *n_pos);
void cli_free(const cli_spec *spec, cli_val *vals);
/* "PROG: message", the synopsis, and where the full list is; returns 2. */
int cli_usage_error(const cli_spec *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_print_help(const cli_spec *spec, FILE *f);
/* The --version line of a program without its own: "qrm 1.2.3 (library ..., file format N)". */
void cli_print_version(const char *prog, FILE *f);
/* Strict numbers, for values the table cannot describe: 0 when the whole of
 * s is an integer (or finite number) in range. */
int cli_strict_long(const char *s, long lo, long hi, long *out);
int cli_strict_double(const char *s, double *out);

/* --load map|copy, one spelling for qrm score, qrm serve and qrm-bench:
 * how qrm_model_open_with holds the file. */
#define CLI_OPT_LOAD                                                                                  \
    {"--load", 0, CLI_CHOICE, NULL, "map",                                                          \
     "map the file, or copy it into huge-page memory (faster tokens, slower start)", .choices = "map|copy"}
static inline qrm_load cli_load(const cli_val *v) { return v->count && v->choice == 1 ? QRM_LOAD_COPY : QRM_LOAD_MAP; }

#endif
