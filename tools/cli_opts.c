/* The table-driven option parser of every qrm program (tools/cli_opts.h). */
#include "cli_opts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "qrm.h"

int cli_strict_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    /* strtol skips leading blanks: " 5" is as suspicious as "5 " */
    if (end == s || *end || errno || *s == ' ' || *s == '\t' || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

int cli_strict_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || *s == ' ' || *s == '\t' || !isfinite(x)) return -1;
    *out = x;
    return 0;
}

void cli_print_version(const char *prog, FILE *f) {
    fprintf(f, "%.*s %s (library %s, file format %d)\n", (int)strcspn(prog, " "), prog, QRM_VERSION_STRING,
            qrm_version(), QRM_FORMAT_VERSION);
}

static void print_usage_line(const cli_spec *s, FILE *f) {
    /* continuation lines of the synopsis line up under its first word */
    fprintf(f, "usage: ");
    for (const char *u = s->usage; *u; u++) {
        fputc(*u, f);
        if (*u == '\n' && u[1]) fprintf(f, "       ");
    }
    if (s->usage[0] && s->usage[strlen(s->usage) - 1] != '\n') fputc('\n', f);
}

int cli_usage_error(const cli_spec *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", s->prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    /* one line (scripts read the first line of stderr as the reason): the
     * problem first, the synopsis one command away */
    fprintf(stderr, " (%s --help lists every option)\n", s->prog);
    return 2;
}

static void opt_label(const cli_opt *o, char *buf, size_t n) {
    const char *arg = o->kind == CLI_FLAG ? "" : o->arg ? o->arg : o->choices ? o->choices : "VALUE";
    if (o->alias)
        snprintf(buf, n, "-%c, %s%s%s", o->alias, o->name, *arg ? " " : "", arg);
    else
        snprintf(buf, n, "%s%s%s", o->name, *arg ? " " : "", arg);
}

void cli_print_help(const cli_spec *s, FILE *f) {
    if (s->about) fprintf(f, "%s: %s\n\n", s->prog, s->about);
    print_usage_line(s, f);
    fprintf(f, "\noptions:\n");
    for (int i = 0; i < s->n_opts; i++) {
        const cli_opt *o = &s->opts[i];
        char label[128];
        opt_label(o, label, sizeof label);
        const char *def = o->def ? o->def : o->kind == CLI_FLAG ? "off" : "none";
        if (strlen(label) > 26)
            fprintf(f, "  %s\n  %-26s ", label, "");
        else
            fprintf(f, "  %-26s ", label);
        fprintf(f, "%s", o->help ? o->help : "");
        if (o->kind == CLI_INT && o->lo != o->hi) fprintf(f, " [%ld..%ld]", o->lo, o->hi);
        if (o->alt) fprintf(f, "; also %s", o->alt);
        if (!strcmp(def, "required")) fprintf(f, " (required)");
        else fprintf(f, " (default: %s)", def);
        fprintf(f, "%s\n", o->many ? " (repeatable)" : "");
    }
    fprintf(f, "  %-26s this text\n", "-h, --help");
    fprintf(f, "  %-26s the version\n", "--version");
    if (s->epilog) fprintf(f, "\n%s", s->epilog);
}

/* The option a word names: "--name", "--name=value", "-a"; NULL if none. */
static const cli_opt *find(const cli_spec *s, const char *w, const char **inline_val) {
    *inline_val = NULL;
    for (int i = 0; i < s->n_opts; i++) {
        const cli_opt *o = &s->opts[i];
        for (int k = 0; k < 2; k++) {
            const char *name = k ? o->alt : o->name;
            size_t n = name ? strlen(name) : 0;
            if (n && !strncmp(w, name, n) && (w[n] == 0 || (w[n] == '=' && o->kind != CLI_FLAG))) {
                if (w[n] == '=') *inline_val = w + n + 1;
                return o;
            }
        }
        if (o->alias && w[0] == '-' && w[1] == o->alias && w[2] == 0) return o;
    }
    return NULL;
}

static int choice_index(const char *choices, const char *v) {
    int k = 0;
    size_t vl = strlen(v);
    for (const char *c = choices; *c; k++) {
        size_t n = strcspn(c, "|");
        if (n == vl && !strncmp(c, v, n)) return k;
        c += n + (c[n] == '|');
    }
    return -1;
}

/* "f32|f16|int8" as "f32, f16 or int8" */
static void choices_text(const char *choices, char *buf, size_t len) {
    size_t at = 0;
    int total = 1;
    for (const char *c = choices; *c; c++) total += *c == '|';
    int k = 0;
    for (const char *c = choices; *c && at + 1 < len; k++) {
        size_t n = strcspn(c, "|");
        const char *sep = k == 0 ? "" : k == total - 1 ? " or " : ", ";
        at += (size_t)snprintf(buf + at, len - at, "%s%.*s", sep, (int)n, c);
        if (at >= len) break;
        c += n + (c[n] == '|');
    }
}

/* name: the option as the user wrote it (-t or --threads) */
static int take_value(const cli_spec *s, const cli_opt *o, const char *name, const char *v, cli_val *r) {
    char buf[256];
    switch (o->kind) {
    case CLI_FLAG:
        break;
    case CLI_INT:
        if (cli_strict_long(v, o->lo, o->hi, &r->i))
            return cli_usage_error(s, "%s: '%s' is not an integer in [%ld, %ld]", name, v, o->lo, o->hi);
        break;
    case CLI_DOUBLE:
        if (cli_strict_double(v, &r->d) || ((o->dlo != 0 || o->dhi != 0) && (r->d < o->dlo || r->d > o->dhi))) {
            if (o->dlo != 0 || o->dhi != 0)
                return cli_usage_error(s, "%s: '%s' is not a number in [%g, %g]", name, v, o->dlo, o->dhi);
            return cli_usage_error(s, "%s: '%s' is not a number", name, v);
        }
        break;
    case CLI_CHOICE:
        r->choice = choice_index(o->choices, v);
        if (r->choice < 0) {
            choices_text(o->choices, buf, sizeof buf);
            return cli_usage_error(s, "%s: '%s' is not %s", name, v, buf);
        }
        break;
    case CLI_STRING:
        break;
    }
    r->str = v;
    return 0;
}

int cli_parse(const cli_spec *s, int argc, char **argv, cli_val *vals, const char **pos, int *n_pos) {
    memset(vals, 0, (size_t)s->n_opts * sizeof *vals);
    if (n_pos) *n_pos = 0;
    /* --help and --version answer whatever else the line holds, but a
     * value that reads "--help" (--text --help) is still a value */
    for (int i = 0; i < argc && strcmp(argv[i], "--"); i++) {
        const char *iv;
        const cli_opt *o = find(s, argv[i], &iv);
        if (o && o->kind != CLI_FLAG && !iv) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cli_print_help(s, stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--version")) {
            if (s->version) s->version(stdout);
            else cli_print_version(s->prog, stdout);
            return 1;
        }
    }
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i], *v = NULL;
        if (!only_pos && !strcmp(w, "--")) {
            only_pos = 1;
            continue;
        }
        /* a lone "-" is a value (stdin), never an option */
        if (only_pos || w[0] != '-' || w[1] == 0) {
            if (!pos || !n_pos || *n_pos >= s->max_pos) {
                cli_free(s, vals);
                return cli_usage_error(s, "unexpected argument '%s'", w), -1;
            }
            pos[(*n_pos)++] = w;
            continue;
        }
        const cli_opt *o = find(s, w, &v);
        if (!o) {
            cli_free(s, vals);
            return cli_usage_error(s, "unknown option '%s'", w), -1;
        }
        cli_val *r = &vals[o - s->opts];
        if (o->kind != CLI_FLAG && !v) {
            if (i + 1 >= argc) {
                cli_free(s, vals);
                return cli_usage_error(s, "%s needs a value", w), -1;
            }
            v = argv[++i];
        }
        char typed[64];
        snprintf(typed, sizeof typed, "%.*s", (int)strcspn(w, "="), w);
        /* a second value would silently win: say which two were given */
        if (r->count && !o->many) {
            int same = o->kind == CLI_FLAG || (r->str && v && !strcmp(r->str, v));
            cli_free(s, vals);
            if (same) return cli_usage_error(s, "%s is given twice", typed), -1;
            return cli_usage_error(s, "%s is given twice ('%s' and '%s'): give one", typed, r->str, v), -1;
        }
        if (take_value(s, o, typed, v, r)) {
            cli_free(s, vals);
            return -1;
        }
        if (o->many) {
            if (!r->all && !(r->all = malloc((size_t)argc * sizeof *r->all))) {
                cli_free(s, vals);
                fprintf(stderr, "%s: out of memory\n", s->prog);
                return -1;
            }
            r->all[r->count] = v;
        }
        r->count++;
    }
    /* exclusive groups, after the whole line: name the first two given */
    for (int a = 0; a < s->n_opts; a++) {
        if (!s->opts[a].group || !vals[a].count) continue;
        for (int b = a + 1; b < s->n_opts; b++)
            if (s->opts[b].group == s->opts[a].group && vals[b].count) {
                const char *why = s->groups ? s->groups[s->opts[a].group - 1] : NULL;
                cli_usage_error(s, "%s and %s %s", s->opts[a].name, s->opts[b].name,
                                why ? why : "exclude each other: give one");
                cli_free(s, vals);
                return -1;
            }
    }
    return 0;
}

void cli_free(const cli_spec *s, cli_val *vals) {
    for (int i = 0; i < s->n_opts; i++) {
        free(vals[i].all);
        vals[i].all = NULL;
    }
}
