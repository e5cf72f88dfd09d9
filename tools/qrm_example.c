/* The smallest program built against an installed qrm: scores the token ids
 * given on the command line and prints the score as `qrm score --ids` does.
 *
 *   cc qrm_example.c $(pkg-config --cflags --libs qrm) -o qrm-example
 *   ./qrm-example MODEL.qrm 316 5 6 7
 */
#include <stdio.h>
#include <stdlib.h>

#include <qrm.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.qrm ID...\n", argv[0]);
        return 2;
    }
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(argv[1], err, sizeof err);
    if (!m) {
        fprintf(stderr, "qrm-example: %s\n", err);
        return 1;
    }
    qrm_ctx *c = qrm_ctx_new(m, NULL, err, sizeof err);
    if (!c) {
        fprintf(stderr, "qrm-example: %s\n", err);
        qrm_model_close(m);
        return 1;
    }
    size_t n = (size_t)argc - 2;
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)atoi(argv[i + 2]);
    qrm_scores s;
    int rc = qrm_score(c, ids, n, &s);
    if (rc) fprintf(stderr, "qrm-example: %s\n", qrm_ctx_error(c));
    for (size_t i = 0; !rc && i < s.n_points * (size_t)s.n_values; i++)
        printf("%s%.9g", i ? " " : "", (double)s.values[i]);
    if (!rc) printf("\n");
    qrm_scores_free(&s);
    free(ids);
    qrm_ctx_free(c);
    qrm_model_close(m);
    return rc ? 1 : 0;
}
