/* `qrm eval --svg DIR`: three small plain-SVG figures (no library): the
 * reliability diagram, the score histograms of chosen and rejected, and
 * score against response length. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval.h"
#include "eval_report.h"

#define W 560
#define H 400
#define ML 70   /* margins: room for the tick labels and the axis titles */
#define MR 20
#define MT 40
#define MB 55

typedef struct {
    FILE *f;
    double xlo, xhi, ylo, yhi;
} plot;

static double px(const plot *p, double x) { return ML + (x - p->xlo) / (p->xhi - p->xlo) * (W - ML - MR); }
static double py(const plot *p, double y) { return H - MB - (y - p->ylo) / (p->yhi - p->ylo) * (H - MT - MB); }

/* A round step (1, 2 or 5 times a power of ten) giving about n intervals. */
static double nice_step(double range, int n) {
    double raw = range / n, p = pow(10, floor(log10(raw))), r = raw / p;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * p;
}

/* Widens [lo, hi] to multiples of a round step. */
static void nice_range(double *lo, double *hi, int n, double *step) {
    if (!(*hi > *lo)) *lo -= 0.5, *hi += 0.5;
    *step = nice_step(*hi - *lo, n);
    *lo = floor(*lo / *step + 1e-9) * *step;
    *hi = ceil(*hi / *step - 1e-9) * *step;
}

/* Enough decimals that consecutive ticks print differently. */
static int decimals(double step) {
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 8 ? 8 : d;
}

static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

static void frame(plot *p, const char *title, const char *xl, const char *yl, double xstep, double ystep) {
    FILE *f = p->f;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">", W / 2);
    esc(f, title);
    fprintf(f, "</text>\n");
    int dx = decimals(xstep), dy = decimals(ystep);
    for (int i = 0;; i++) {
        double x = p->xlo + i * xstep;
        if (x > p->xhi + xstep * 1e-6) break;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", px(p, x), MT, px(p, x), H - MB);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.*f</text>\n", px(p, x), H - MB + 16, dx,
                fabs(x) < xstep * 1e-6 ? 0.0 : x);
    }
    for (int i = 0;; i++) {
        double y = p->ylo + i * ystep;
        if (y > p->yhi + ystep * 1e-6) break;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, py(p, y), W - MR, py(p, y));
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", ML - 6, py(p, y) + 4, dy,
                fabs(y) < ystep * 1e-6 ? 0.0 : y);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", ML, MT,
            W - ML - MR, H - MT - MB);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 14);
    esc(f, xl);
    fprintf(f, "</text>\n<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\">", (MT + H - MB) / 2);
    esc(f, yl);
    fprintf(f, "</text>\n");
}

static void legend(plot *p, int i, const char *color, const char *label, int dashed) {
    double x = ML + 12, y = MT + 16 + 18 * i;
    /* a light backing keeps the legend readable over points and bars */
    fprintf(p->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%zu\" height=\"18\" fill=\"white\" fill-opacity=\"0.8\"/>\n",
            x - 4, y - 13, 36 + 7 * strlen(label));
    fprintf(p->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"%s/>\n", x,
            y - 4, x + 22, y - 4, color, dashed ? " stroke-dasharray=\"5 4\"" : "");
    fprintf(p->f, "<text x=\"%.1f\" y=\"%.1f\">", x + 28, y);
    esc(p->f, label);
    fprintf(p->f, "</text>\n");
}

static FILE *open_in(const char *dir, const char *name, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
    return f;
}

static int finish(FILE *f, char *err, size_t errlen) {
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    if (fclose(f) || bad) {
        snprintf(err, errlen, "cannot write an SVG file (disk full?)");
        return -1;
    }
    return 0;
}

#define C_CHOSEN "#1f77b4"
#define C_REJECTED "#d62728"

static int reliability(const qrm_eval_metrics *m, const char *dir, char *err, size_t errlen) {
    FILE *f = open_in(dir, "reliability.svg", err, errlen);
    if (!f) return -1;
    plot p = {f, 0, 1, 0, 1};
    frame(&p, "Reliability of sigmoid(s_chosen - s_rejected)", "predicted probability (bin mean)",
          "observed frequency", 0.1, 0.1);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777\" stroke-dasharray=\"5 4\"/>\n",
            px(&p, 0), py(&p, 0), px(&p, 1), py(&p, 1));
    fprintf(f, "<polyline fill=\"none\" stroke=\"" C_CHOSEN "\" stroke-width=\"2\" points=\"");
    for (int b = 0; b < QRM_EVAL_BINS; b++)
        if (m->bin_n[b]) fprintf(f, "%.1f,%.1f ", px(&p, m->bin_conf[b]), py(&p, m->bin_freq[b]));
    fprintf(f, "\"/>\n");
    for (int b = 0; b < QRM_EVAL_BINS; b++)
        if (m->bin_n[b])
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"" C_CHOSEN "\"><title>%zu points</title></circle>\n",
                    px(&p, m->bin_conf[b]), py(&p, m->bin_freq[b]), m->bin_n[b]);
    char lab[96];
    snprintf(lab, sizeof lab, "model (ECE %.3f, %zu pairs, both orders)", m->ece, m->n_pairs);
    legend(&p, 0, C_CHOSEN, lab, 0);
    legend(&p, 1, "#777", "perfect calibration", 1);
    return finish(f, err, errlen);
}

static int histogram(const qrm_eval_data *d, const qrm_eval_metrics *m, const char *dir, char *err,
                     size_t errlen) {
    FILE *f = open_in(dir, "histogram.svg", err, errlen);
    if (!f) return -1;
    double lo = INFINITY, hi = -INFINITY, step;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < m->n_dist[k]; i++) {
            if (m->dist[k][i] < lo) lo = m->dist[k][i];
            if (m->dist[k][i] > hi) hi = m->dist[k][i];
        }
    if (!isfinite(lo)) lo = 0, hi = 1;
    nice_range(&lo, &hi, 8, &step);
    /* bins: half a tick each, so that bin edges fall on round values */
    int nb = (int)lround((hi - lo) / step) * 2;
    if (nb < 1) nb = 1;
    double bw = (hi - lo) / nb;
    size_t *cnt[2] = {calloc((size_t)nb, sizeof(size_t)), calloc((size_t)nb, sizeof(size_t))};
    size_t top = 1;
    for (int k = 0; k < 2 && cnt[0] && cnt[1]; k++)
        for (size_t i = 0; i < m->n_dist[k]; i++) {
            int b = (int)floor((m->dist[k][i] - lo) / bw);
            b = b < 0 ? 0 : b >= nb ? nb - 1 : b;
            if (++cnt[k][b] > top) top = cnt[k][b];
        }
    double ylo = 0, yhi = (double)top, ystep;
    nice_range(&ylo, &yhi, 5, &ystep);
    if (ystep < 1) ystep = 1, yhi = ceil(yhi);
    plot p = {f, lo, hi, ylo, yhi};
    int pb = d->format == QRM_EVAL_PB;
    frame(&p, pb ? "Step scores" : "Scores of chosen and rejected responses", pb ? "step probability" : "score",
          pb ? "steps" : "responses", step, ystep);
    const char *col[2] = {C_CHOSEN, C_REJECTED};
    for (int k = 0; k < 2 && cnt[0] && cnt[1]; k++) {
        for (int b = 0; b < nb; b++)
            if (cnt[k][b])
                fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.45\" stroke=\"%s\"/>\n",
                        px(&p, lo + b * bw), py(&p, (double)cnt[k][b]), px(&p, lo + (b + 1) * bw) - px(&p, lo + b * bw),
                        py(&p, 0) - py(&p, (double)cnt[k][b]), col[k], col[k]);
    }
    char lab[96];
    snprintf(lab, sizeof lab, "%s (%zu)", pb ? "steps before the first wrong one" : "chosen", m->n_dist[0]);
    legend(&p, 0, C_CHOSEN, lab, 0);
    snprintf(lab, sizeof lab, "%s (%zu)", pb ? "first wrong step" : "rejected", m->n_dist[1]);
    legend(&p, 1, C_REJECTED, lab, 0);
    free(cnt[0]), free(cnt[1]);
    return finish(f, err, errlen);
}

static int scatter(const qrm_eval_data *d, const char *dir, char *err, size_t errlen) {
    FILE *f = open_in(dir, "length.svg", err, errlen);
    if (!f) return -1;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY, xs, ys;
    for (size_t i = 0; i < d->n_rec; i++) {
        const qrm_eval_record *r = &d->rec[i];
        if (r->skipped) continue;
        for (size_t u = 0; u < r->n_units; u++) {
            double x = d->length[r->first + u], y = d->score[r->first + u];
            xlo = x < xlo ? x : xlo, xhi = x > xhi ? x : xhi;
            ylo = y < ylo ? y : ylo, yhi = y > yhi ? y : yhi;
        }
    }
    if (!isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
    xlo = 0;
    nice_range(&xlo, &xhi, 6, &xs);
    if (xs < 1) xs = 1, xhi = ceil(xhi);   /* token counts are whole */
    nice_range(&ylo, &yhi, 6, &ys);
    plot p = {f, xlo, xhi, ylo, yhi};
    frame(&p, "Score against response length", "response tokens (after the shared prefix)", "score", xs, ys);
    for (size_t i = 0; i < d->n_rec; i++) {
        const qrm_eval_record *r = &d->rec[i];
        if (r->skipped) continue;
        for (size_t u = 0; u < r->n_units; u++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" fill-opacity=\"0.7\"/>\n",
                    px(&p, d->length[r->first + u]), py(&p, d->score[r->first + u]),
                    u < r->n_correct ? C_CHOSEN : C_REJECTED);
    }
    legend(&p, 0, C_CHOSEN, "chosen", 0);
    legend(&p, 1, C_REJECTED, "rejected", 0);
    return finish(f, err, errlen);
}

int qrm_eval_svg(const qrm_eval_data *d, const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0777) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create '%s': %s", dir, strerror(errno));
        return -1;
    }
    qrm_eval_metrics m;
    if (qrm_eval_compute(d, d->score, &m)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = histogram(d, &m, dir, err, errlen);
    if (!rc && d->format != QRM_EVAL_PB) rc = reliability(&m, dir, err, errlen);
    if (!rc && d->format != QRM_EVAL_PB) rc = scatter(d, dir, err, errlen);
    qrm_eval_metrics_free(&m);
    return rc;
}
