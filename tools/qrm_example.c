/* The smallest program built against an installed qrm: scores the token ids
 * given on the command line, or a user prompt and an assistant response
 * (encoded by the model's chat template), and prints the score as
 * `qrm score --ids` / `qrm score --prompt --response` does.
 *
 *   cc qrm_example.c $(pkg-config --cflags --libs qrm) -o qrm-example
 *   ./qrm-example MODEL.qrm 316 5 6 7
 *   ./qrm-example MODEL.qrm --prompt "What is 2+2?" --response "4"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qrm.h>

int main(int argc, char **argv) {
    int text = argc == 6 && !strcmp(argv[2], "--prompt") && !strcmp(argv[4], "--response");
    if (argc < 3 || (!text && argv[2][0] == '-')) {
        fprintf(stderr, "usage: %s MODEL.qrm (ID... | --prompt P --response R)\n", argv[0]);
        return 2;
    }
    char err[QRM_ERR_MAX];
    qrm_model *m = qrm_model_open(argv[1], err, sizeof err);
    if (!m) {
        fprintf(stderr, "qrm-example: %s\n", err);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    qrm_status rc = QRM_OK;
    if (text) {
        /* the tokenizer belongs to the model: no context needed to encode */
        const qrm_message chat[] = {{"user", argv[3]}, {"assistant", argv[5]}};
        rc = qrm_model_encode_messages(m, chat, 2, &ids, &n, NULL, err, sizeof err);
    } else {
        n = (size_t)argc - 2;
        ids = malloc(n * sizeof *ids);
        if (!ids) rc = QRM_ENOMEM, snprintf(err, sizeof err, "out of memory");
        for (size_t i = 0; ids && i < n; i++) ids[i] = (int32_t)atoi(argv[i + 2]);
    }
    if (rc != QRM_OK) {
        fprintf(stderr, "qrm-example: %s\n", err);
        qrm_model_close(m);
        return 1;
    }
    qrm_ctx_params p;
    qrm_ctx_params_default(&p); /* every field, including those a later version adds */
    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
    if (!c) {
        fprintf(stderr, "qrm-example: %s\n", err);
        text ? qrm_free(ids) : free(ids);
        qrm_model_close(m);
        return 1;
    }
    qrm_scores s;
    rc = qrm_score(c, ids, n, &s);
    if (rc != QRM_OK) fprintf(stderr, "qrm-example: %s\n", qrm_ctx_error(c));
    for (size_t i = 0; rc == QRM_OK && i < s.n_points * (size_t)s.n_values; i++)
        printf("%s%.9g", i ? " " : "", (double)s.values[i]);
    if (rc == QRM_OK) printf("\n");
    qrm_scores_free(&s);
    /* ids from the library go back through qrm_free, the program's own through free */
    text ? qrm_free(ids) : free(ids);
    qrm_ctx_free(c);
    qrm_model_close(m);
    return rc == QRM_OK ? 0 : 1;
}
