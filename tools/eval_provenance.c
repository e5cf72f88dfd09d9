/* A model's provenance (the converter's metadata) as readable lines, for the
 * header of `qrm eval` and for `qrm info -m`: which source files, converted
 * how and when, so that a report says which judge it describes. */
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "json.h"

static void print_strings(FILE *out, const qj_value *a) {
    for (uint32_t i = 0; a && a->type == QJ_ARRAY && i < a->len; i++)
        if (a->u.items[i].type == QJ_STRING) fprintf(out, "%s%s", i ? ", " : "", a->u.items[i].u.str);
}

void qrm_print_provenance(FILE *out, const qrm_model *m, const char *indent) {
    const char *meta = qrm_model_metadata_json(m);
    char err[QRM_ERR_MAX];
    qj_doc *d = qj_parse(meta, strlen(meta), err, sizeof err);
    if (!d) {
        fprintf(out, "%sprovenance: unreadable metadata (%s)\n", indent, err);
        return;
    }
    const qj_value *root = qj_root(d);
    const qj_value *pv = qj_get_type(root, "provenance", QJ_OBJECT);
    const qj_value *q = qj_get_type(root, "quant", QJ_OBJECT);
    const qj_value *h = qj_get_type(root, "head", QJ_OBJECT);
    const qj_value *in = qj_get_type(root, "integrity", QJ_OBJECT);
    if (pv) {
        const qj_value *files = qj_get_type(pv, "files", QJ_ARRAY);
        for (uint32_t i = 0; files && i < files->len; i++) {
            const qj_value *f = &files->u.items[i];
            const char *name = qj_get_str(f, "name"), *sha = qj_get_str(f, "sha256");
            double bytes;
            fprintf(out, "%ssource file: %s", indent, name ? name : "?");
            if (qj_get_num(f, "bytes", &bytes)) fprintf(out, " (%.0f bytes)", bytes);
            fprintf(out, " sha256 %s\n", sha ? sha : "?");
        }
        fprintf(out, "%ssource dtype: ", indent);
        print_strings(out, qj_get(pv, "source_dtypes"));
        const char *conv = qj_get_str(pv, "converter"), *created = qj_get_str(pv, "created");
        fprintf(out, "\n%sconverter: %s, %s\n", indent, conv ? conv : "?", created ? created : "?");
        const char *calib = qj_get_str(pv, "calibration_sha256");
        if (calib) fprintf(out, "%scalibration data sha256: %s\n", indent, calib);
    } else {
        fprintf(out, "%sprovenance: not recorded (a file from an older converter)\n", indent);
    }
    if (q) {
        const char *t = qj_get_str(q, "type");
        /* a float file records the int8 scheme's fields too; they do not apply */
        if (t && (!strcmp(t, "f32") || !strcmp(t, "f16"))) {
            fprintf(out, "%squantization: none (%s weights)\n", indent, t);
            q = NULL;
        }
    }
    if (q) {
        const char *t = qj_get_str(q, "type"), *ws = qj_get_str(q, "weight_scales"),
                   *w = qj_get_str(q, "weights"), *act = qj_get_str(q, "activations");
        double gs;
        fprintf(out, "%squantization: %s", indent, t ? t : "?");
        if (qj_get_num(q, "group_size", &gs)) fprintf(out, ", groups of %.0f", gs);
        if (ws) fprintf(out, ", %s scales", ws);
        if (w) fprintf(out, "; weights %s", w);
        if (act) fprintf(out, "; activations %s", act);
        fprintf(out, "\n");
    }
    if (h) {
        const char *kind = qj_get_str(h, "kind");
        fprintf(out, "%shead: %s, labels: ", indent, kind ? kind : "?");
        print_strings(out, qj_get(h, "labels"));
        fprintf(out, "\n");
    }
    const char *sha = in ? qj_get_str(in, "data_sha256") : NULL;
    if (sha) fprintf(out, "%stensor data sha256: %s\n", indent, sha);
    qj_free(d);
}
