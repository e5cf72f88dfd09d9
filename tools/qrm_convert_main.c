/* qrm-convert HF_DIR [-o FILE.qrm] [--quant f32|f16|int8|int4] [head options] [-q] [--force] */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_opts.h"

#include "convert.h"
#include "json.h"
#include "platform.h"
#include "qrm.h"

/* A head specification from a JSON file: {"kind": "judge", "yes": "yes", "no":
 * "no", "norm": "pair"}, {"kind": "step_tag", "step_tag": " ки", "good": " +",
 * "bad": " -"} or {"kind": "lm"}. The fixtures' reward_head.json spellings
 * ("yes_token", "good_token", "kind": "prm" or "dpo") are accepted too. The
 * strings point into the parsed document, which lives until exit and is
 * freed then (the sanitizers' leak check runs the programs too). */
static char *spec_text;
static qj_doc *spec_doc;

static void free_head_spec(void) {
    qj_free(spec_doc);
    free(spec_text);
}

static int read_head_spec(const char *path, qrm_head_spec *sp) {
    char err[QRM_ERR_MAX];
    size_t len;
    atexit(free_head_spec);
    char *text = spec_text = qrm_read_file(path, &len, err, sizeof err);
    qj_doc *d = spec_doc = text ? qj_parse(text, len, err, sizeof err) : NULL;
    const qj_value *o = d ? qj_root(d) : NULL;
    const char *kind = o ? qj_get_str(o, "kind") : NULL;
    if (!kind) {
        fprintf(stderr, "qrm-convert: --head-spec %s: %s\n", path, !text || !d ? err : "no \"kind\"");
        return -1;
    }
#define STR(a, b) (qj_get_str(o, a) ? qj_get_str(o, a) : qj_get_str(o, b))
    if (!strcmp(kind, "judge")) {
        sp->judge_yes = STR("yes", "yes_token"), sp->judge_no = STR("no", "no_token");
        const char *norm = qj_get_str(o, "norm");
        sp->judge_full = norm && !strcmp(norm, "full");
        if (norm && strcmp(norm, "full") && strcmp(norm, "pair")) kind = "a judge with a norm other than pair or full";
    } else if (!strcmp(kind, "step_tag") || !strcmp(kind, "prm")) {
        sp->step_tag = qj_get_str(o, "step_tag"), sp->good = STR("good", "good_token"), sp->bad = STR("bad", "bad_token");
    } else if (!strcmp(kind, "lm") || !strcmp(kind, "dpo")) {
        sp->lm = 1;
    } else {
        fprintf(stderr, "qrm-convert: --head-spec %s: kind '%s' (judge, step_tag or lm)\n", path, kind);
        return -1;
    }
#undef STR
    if ((!strcmp(kind, "judge") && (!sp->judge_yes || !sp->judge_no)) ||
        ((!strcmp(kind, "step_tag") || !strcmp(kind, "prm")) && (!sp->step_tag || !sp->good || !sp->bad)) ||
        !strncmp(kind, "a judge", 7)) {
        fprintf(stderr, "qrm-convert: --head-spec %s: incomplete or invalid %s specification\n", path, kind);
        return -1;
    }
    return 0;
}

enum {
    C_OUTPUT, C_QUANT, C_QUIET, C_FORCE, C_LABELS, C_STEP_SEPARATOR, C_GATING, C_JUDGE, C_JUDGE_NORM,
    C_STEP_TAG, C_GOOD, C_BAD, C_HEAD, C_HEAD_SPEC, C_CALIB, C_INT4_BUDGET, C_N
};

static void print_version(FILE *f) {
    fprintf(f, "qrm-convert %s (converter %s, library %s)\n", QRM_VERSION_STRING, QRM_CONVERTER_VERSION,
            qrm_version());
}

static const char *const quants[] = {"f32", "f16", "int8", "int4"};

int main(int argc, char **argv) {
    static const cli_opt opts[C_N] = {
        [C_OUTPUT] = {"--output", 'o', CLI_STRING, "FILE.qrm", "./HF_DIR's name-QUANT.qrm",
                      "the file to write (an existing FILE is replaced)", .alt = "--outfile"},
        [C_QUANT] = {"--quant", 0, CLI_CHOICE, NULL, "int8", "the weights' type", .choices = "f32|f16|int8|int4",
                     .alt = "--outtype"},
        [C_QUIET] = {"--quiet", 'q', CLI_FLAG, NULL, NULL, "no progress and no summary line"},
        [C_FORCE] = {"--force", 'f', CLI_FLAG, NULL, NULL, "without -o: replace an existing file of the default name"},
        [C_LABELS] = {"--labels", 0, CLI_STRING, "A,B,...", "the checkpoint's", "the outputs' names"},
        [C_STEP_SEPARATOR] = {"--step-separator", 0, CLI_STRING, "TEXT", "<extra_0>", "a PRM's step separator"},
        [C_GATING] = {"--gating-pattern", 0, CLI_STRING, "TEXT", "the checkpoint's", "ArmoRM's gating pattern"},
        [C_JUDGE] = {"--judge-tokens", 0, CLI_STRING, "YES,NO", NULL,
                     "*ForCausalLM: score p(YES) against p(NO) at the last token"},
        [C_JUDGE_NORM] = {"--judge-norm", 0, CLI_CHOICE, NULL, "pair", "with --judge-tokens: over YES and NO, or the vocabulary",
                          .choices = "pair|full"},
        [C_STEP_TAG] = {"--step-tag", 0, CLI_STRING, "TAG", NULL, "*ForCausalLM: a step-tag PRM (with --good, --bad)"},
        [C_GOOD] = {"--good", 0, CLI_STRING, "GOOD", NULL, "the step tag's good token"},
        [C_BAD] = {"--bad", 0, CLI_STRING, "BAD", NULL, "the step tag's bad token"},
        [C_HEAD] = {"--head", 0, CLI_CHOICE, NULL, NULL, "*ForCausalLM: log-probabilities (DPO)", .choices = "lm"},
        [C_HEAD_SPEC] = {"--head-spec", 0, CLI_STRING, "FILE.json", NULL,
                         "the head from a JSON file ({\"kind\": \"judge\"|\"step_tag\"|\"lm\", ...})"},
        [C_CALIB] = {"--calib", 0, CLI_STRING, "FILE.jsonl", NULL,
                     "int4: weight each group's scale search by the activations of this text (AWQ-style)"},
        [C_INT4_BUDGET] = {"--int4-budget", 0, CLI_DOUBLE, "BITS", "4.5 (all int4)",
                           "int4: mean bits per weight; the most sensitive matrices stay int8 until spent",
                           .dlo = 4.5, .dhi = 8.5},
    };
    static const cli_spec spec = {
        .prog = "qrm-convert",
        .about = "a Hugging Face reward model folder (safetensors) to one .qrm file",
        .usage = "qrm-convert HF_DIR [-o FILE.qrm] [--quant f32|f16|int8|int4] [-q] [--force]\n"
                 "  [--calib FILE.jsonl] [--int4-budget BITS]\n"
                 "  [--labels A,B,...] [--step-separator TEXT] [--gating-pattern TEXT]\n"
                 "  *ForCausalLM: --judge-tokens YES,NO [--judge-norm pair|full] |\n"
                 "                --step-tag TAG --good GOOD --bad BAD | --head lm | --head-spec FILE.json",
        .opts = opts,
        .n_opts = C_N,
        .max_pos = 1,
        .version = print_version,
        .epilog = "Without -o the file is HF_DIR's last component and the quantization, in the current\n"
                  "folder (reward-model-int8.qrm), and an existing file of that name is kept unless --force.\n"
                  "On success one line on stdout: the path, its size, the quantization, the seconds taken.\n"
                  "Exit status: 0, 1 when the conversion fails (no file left behind), 2 for a usage error.\n",
    };
    cli_val v[C_N];
    const char *pos[1];
    int n_pos = 0;
    int pr = cli_parse(&spec, argc - 1, argv + 1, v, pos, &n_pos);
    if (pr > 0 && (fflush(stdout) || ferror(stdout))) { /* --help, --version to a full disk */
        fprintf(stderr, "qrm-convert: writing the output failed: %s\n", strerror(errno));
        return 1;
    }
    if (pr) return pr > 0 ? 0 : 2;
    if (!n_pos) return cli_usage_error(&spec, "no model folder: give HF_DIR");
    qrm_convert_opts o = {.quant = "int8", .verbose = !v[C_QUIET].count, .hf_dir = pos[0]};
    if (v[C_QUANT].count) o.quant = quants[v[C_QUANT].choice];
    o.labels = v[C_LABELS].str, o.step_separator = v[C_STEP_SEPARATOR].str, o.gating_pattern = v[C_GATING].str;
    o.spec.step_tag = v[C_STEP_TAG].str, o.spec.good = v[C_GOOD].str, o.spec.bad = v[C_BAD].str;
    o.spec.lm = v[C_HEAD].count > 0;
    o.calib = v[C_CALIB].str;
    if (v[C_INT4_BUDGET].count) o.int4_budget = v[C_INT4_BUDGET].d;
    const char *judge = v[C_JUDGE].str, *norm = v[C_JUDGE_NORM].str, *spec_file = v[C_HEAD_SPEC].str;
    int quiet = v[C_QUIET].count > 0;
    /* <basename of HF_DIR>-<quant>.qrm here: what llama.cpp users name their GGUF files */
    char out_buf[4096];
    o.out_path = v[C_OUTPUT].str;
    if (!o.out_path) {
        char dir_buf[4096];
        snprintf(dir_buf, sizeof dir_buf, "%s", o.hf_dir);
        size_t l = strlen(dir_buf);
        while (l > 1 && dir_buf[l - 1] == '/') dir_buf[--l] = 0;
        const char *base = basename(dir_buf);
        if (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/"))
            return cli_usage_error(&spec, "HF_DIR '%s' has no name to make the output's from: give -o FILE.qrm", o.hf_dir);
        snprintf(out_buf, sizeof out_buf, "%s-%s.qrm", base, o.quant);
        o.out_path = out_buf;
        struct stat st;
        if (!v[C_FORCE].count && stat(o.out_path, &st) == 0) {
            fprintf(stderr, "qrm-convert: %s exists: give --force to replace it, or -o FILE.qrm\n", o.out_path);
            return 1;
        }
    }
    if (spec_file && (read_head_spec(spec_file, &o.spec) || judge || norm)) {
        if (judge || norm) fprintf(stderr, "qrm-convert: --head-spec replaces the head flags\n");
        return 2;
    }
    /* YES,NO: split at the last comma, so that a token may itself be a comma */
    char judge_buf[256];
    if (judge) {
        const char *comma = strrchr(judge, ',');
        if (!comma || comma == judge || !comma[1] || strlen(judge) >= sizeof judge_buf) {
            fprintf(stderr, "qrm-convert: --judge-tokens wants YES,NO (two token strings)\n");
            return 2;
        }
        snprintf(judge_buf, sizeof judge_buf, "%s", judge);
        judge_buf[comma - judge] = 0;
        o.spec.judge_yes = judge_buf, o.spec.judge_no = judge_buf + (comma - judge) + 1;
    }
    if (norm && strcmp(norm, "pair") && strcmp(norm, "full")) {
        fprintf(stderr, "qrm-convert: --judge-norm is pair or full, not '%s'\n", norm);
        return 2;
    }
    if (norm) o.spec.judge_full = !strcmp(norm, "full");
    if ((norm && !judge) || (!o.spec.step_tag != !o.spec.good) || (!o.spec.step_tag != !o.spec.bad)) {
        fprintf(stderr, "qrm-convert: --judge-norm goes with --judge-tokens, and --step-tag with --good and --bad\n");
        return 2;
    }
    if (!isatty(2)) o.verbose = 0; /* progress is for people watching */
    char err[QRM_ERR_MAX];
    double t0 = qrm_now();
    if (qrm_convert(&o, err, sizeof err)) {
        fprintf(stderr, "qrm-convert: %s\n", err);
        return 1;
    }
    if (!quiet) {
        struct stat st;
        double size = stat(o.out_path, &st) == 0 ? (double)st.st_size : 0;
        printf("qrm-convert: wrote %s (%.1f MiB, %s, %.1f s)\n", o.out_path, size / (1 << 20), o.quant,
               qrm_now() - t0);
        if (fflush(stdout)) return 1;
    }
    return 0;
}
