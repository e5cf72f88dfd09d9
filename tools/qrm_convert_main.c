/* qrm-convert HF_DIR -o FILE.qrm [--quant f32|f16|int8|int4] [head options] [-q] */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "json.h"
#include "platform.h"
#include "qrm.h"

static int usage(void) {
    fprintf(stderr, "usage: qrm-convert HF_DIR -o FILE.qrm [--quant f32|f16|int8|int4] [-q]\n"
                    "         [--labels A,B,...] [--step-separator TEXT] [--gating-pattern TEXT]\n"
                    "         *ForCausalLM: --judge-tokens YES,NO [--judge-norm pair|full] |\n"
                    "                       --step-tag TAG --good GOOD --bad BAD | --head lm |\n"
                    "                       --head-spec FILE.json\n");
    return 2;
}

/* A head specification from a JSON file: {"kind": "judge", "yes": "yes", "no":
 * "no", "norm": "pair"}, {"kind": "step_tag", "step_tag": " ки", "good": " +",
 * "bad": " -"} or {"kind": "lm"}. The fixtures' reward_head.json spellings
 * ("yes_token", "good_token", "kind": "prm" or "dpo") are accepted too. The
 * strings point into the parsed document, which lives until exit. */
static int read_head_spec(const char *path, qrm_head_spec *sp) {
    char err[QRM_ERR_MAX];
    size_t len;
    char *text = qrm_read_file(path, &len, err, sizeof err);
    qj_doc *d = text ? qj_parse(text, len, err, sizeof err) : NULL;
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

int main(int argc, char **argv) {
    qrm_convert_opts o = {.quant = "int8", .verbose = 1};
    const char *judge = NULL, *norm = NULL, *spec_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) o.out_path = argv[++i];
        else if (!strcmp(argv[i], "--quant") && i + 1 < argc) o.quant = argv[++i];
        else if (!strcmp(argv[i], "-q")) o.verbose = 0;
        else if (!strcmp(argv[i], "--labels") && i + 1 < argc) o.labels = argv[++i];
        else if (!strcmp(argv[i], "--step-separator") && i + 1 < argc) o.step_separator = argv[++i];
        else if (!strcmp(argv[i], "--gating-pattern") && i + 1 < argc) o.gating_pattern = argv[++i];
        else if (!strcmp(argv[i], "--judge-tokens") && i + 1 < argc) judge = argv[++i];
        else if (!strcmp(argv[i], "--judge-norm") && i + 1 < argc) norm = argv[++i];
        else if (!strcmp(argv[i], "--step-tag") && i + 1 < argc) o.spec.step_tag = argv[++i];
        else if (!strcmp(argv[i], "--good") && i + 1 < argc) o.spec.good = argv[++i];
        else if (!strcmp(argv[i], "--bad") && i + 1 < argc) o.spec.bad = argv[++i];
        else if (!strcmp(argv[i], "--head") && i + 1 < argc && !strcmp(argv[i + 1], "lm")) o.spec.lm = 1, i++;
        else if (!strcmp(argv[i], "--head-spec") && i + 1 < argc) spec_file = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(), 0;
        else if (!strcmp(argv[i], "--version")) {
            printf("qrm-convert %s (converter %s, library %s)\n", QRM_VERSION_STRING, QRM_CONVERTER_VERSION, qrm_version());
            if (fflush(stdout) || ferror(stdout)) {
                fprintf(stderr, "qrm-convert: writing the output failed: %s\n", strerror(errno));
                return 1;
            }
            return 0;
        }
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
    if (qrm_convert(&o, err, sizeof err)) {
        fprintf(stderr, "qrm-convert: %s\n", err);
        return 1;
    }
    return 0;
}
