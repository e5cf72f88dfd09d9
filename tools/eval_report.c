/* `qrm eval`'s numbers from the scores, printed as a table or as one JSON
 * document (the two show the same numbers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "eval_report.h"
#include "json.h"

static int is_pairs(qrm_eval_format f) { return f == QRM_EVAL_RB1 || f == QRM_EVAL_PAIRS; }

static int ok(const qrm_eval_record *r) { return !r->skipped; }

static int is_ties(const qrm_eval_record *r) { return r->ties_ref >= 0; }

/* The index of the record's best unit (the first of equals). */
static size_t argmax(const double *s, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] > s[b]) b = i;
    return b;
}

static size_t subset_index(qrm_eval_metrics *m, const char *name) {
    const char *n = name ? name : "(none)";
    for (size_t i = 0; i < m->n_subsets; i++)
        if (!strcmp(m->subsets[i].name, n)) return i;
    m->subsets[m->n_subsets].name = n;
    return m->n_subsets++;
}

void qrm_eval_metrics_free(qrm_eval_metrics *m) {
    free(m->subsets);
    free(m->pc), free(m->pr), free(m->plc), free(m->plr);
    free(m->dist[0]), free(m->dist[1]);
    memset(m, 0, sizeof *m);
}

static void summarize(const double *v, size_t n, qrm_eval_dist *o) {
    static const double qs[QRM_EVAL_NQ] = {0.05, 0.25, 0.5, 0.75, 0.95};
    o->n = n;
    qrm_mean_std(v, n, &o->mean, &o->std);
    o->min = n ? v[0] : NAN, o->max = n ? v[0] : NAN;
    for (size_t i = 1; i < n; i++) {
        if (v[i] < o->min) o->min = v[i];
        if (v[i] > o->max) o->max = v[i];
    }
    for (int k = 0; k < QRM_EVAL_NQ; k++) o->q[k] = qrm_quantile(v, n, qs[k]);
}

int qrm_eval_compute(const qrm_eval_data *d, const double *s, qrm_eval_metrics *m) {
    memset(m, 0, sizeof *m);
    m->subsets = calloc(d->n_rec + 1, sizeof *m->subsets);
    size_t cap = d->n_units + 1;
    m->pc = malloc(cap * sizeof *m->pc), m->pr = malloc(cap * sizeof *m->pr);
    m->plc = malloc(cap * sizeof *m->plc), m->plr = malloc(cap * sizeof *m->plr);
    m->dist[0] = malloc(cap * sizeof *m->dist[0]), m->dist[1] = malloc(cap * sizeof *m->dist[1]);
    qrm_ties_sample *ts = calloc(d->n_rec + 1, sizeof *ts);
    int *pred = malloc((d->n_rec + 1) * sizeof *pred), *label = malloc((d->n_rec + 1) * sizeof *label);
    if (!m->subsets || !m->pc || !m->pr || !m->plc || !m->plr || !m->dist[0] || !m->dist[1] || !ts ||
        !pred || !label) {
        free(ts), free(pred), free(label);
        qrm_eval_metrics_free(m);
        return -1;
    }
    size_t n_ties = 0, n_pb = 0;
    double all_sum = 0;
    for (size_t i = 0; i < d->n_rec; i++) {
        const qrm_eval_record *r = &d->rec[i];
        m->n_records++;
        if (!ok(r)) {
            m->n_skipped++;
            continue;
        }
        m->n_scored++;
        const double *x = s + r->first;
        qrm_eval_subset *sb = &m->subsets[subset_index(m, r->subset)];
        if (d->format == QRM_EVAL_PB) {
            pred[n_pb] = qrm_pb_predict(x, r->n_units, d->threshold);
            label[n_pb++] = r->label;
            sb->n++;
            sb->sum += pred[n_pb - 1] == r->label;
            m->pb_label_hits += pred[n_pb - 1] == r->label;
            size_t end = r->label < 0 ? r->n_units : (size_t)r->label + 1;
            for (size_t u = 0; u < end; u++) {
                int wrong = r->label >= 0 && u == (size_t)r->label;
                m->dist[wrong][m->n_dist[wrong]++] = x[u];
            }
            continue;
        }
        for (size_t u = 0; u < r->n_resp; u++) {
            int rej = u >= r->n_correct;
            m->dist[rej][m->n_dist[rej]++] = x[u];
        }
        /* the diagnostics' pairs: the (first) chosen against each rejected */
        for (size_t u = r->n_correct; u < r->n_resp; u++) {
            m->pc[m->n_pairs] = x[0], m->pr[m->n_pairs] = x[u];
            m->plc[m->n_pairs] = d->length[r->first], m->plr[m->n_pairs] = d->length[r->first + u];
            m->n_pairs++;
        }
        if (is_ties(r)) {
            ts[n_ties++] = (qrm_ties_sample){r->ties_ref, r->ties_id, x, r->n_resp, r->n_correct};
            sb->is_ties = 1;
            sb->n++;
            continue;
        }
        double res = is_pairs(d->format) ? qrm_chosen_wins(x, r->n_resp) : qrm_bon_result(x, r->n_resp);
        sb->n++;
        sb->sum += res;
        all_sum += res;
        m->n_plain++;
    }
    for (size_t i = 0; i < m->n_subsets; i++) {
        qrm_eval_subset *sb = &m->subsets[i];
        sb->score = sb->n ? sb->sum / sb->n : NAN;
    }
    m->accuracy = m->n_plain ? all_sum / m->n_plain : NAN;
    m->has_ties = n_ties > 0;
    if (n_ties) {
        if (qrm_rb2_ties(ts, n_ties, &m->ties)) m->ties.overall = NAN;
        for (size_t i = 0; i < m->n_subsets; i++)
            if (m->subsets[i].is_ties) m->subsets[i].score = m->ties.overall;
    }
    if (d->format == QRM_EVAL_RB1) {
        const char **names = malloc((m->n_subsets + 1) * sizeof *names);
        double *acc = malloc((m->n_subsets + 1) * sizeof *acc);
        if (names && acc) {
            for (size_t i = 0; i < m->n_subsets; i++) names[i] = m->subsets[i].name, acc[i] = m->subsets[i].score;
            m->overall = qrm_rb1_sections(names, acc, m->n_subsets, m->sections);
            m->prior = qrm_rb1_prior_sets(names, acc, m->n_subsets);
            m->with_prior = qrm_rb1_score_with_prior(m->sections, m->prior);
        }
        free(names), free(acc);
    } else if (d->format == QRM_EVAL_RB2) {
        /* RewardBench 2's score is the plain mean of its subsets' scores */
        double sum = 0;
        size_t n = 0;
        for (size_t i = 0; i < m->n_subsets; i++)
            if (!isnan(m->subsets[i].score)) sum += m->subsets[i].score, n++;
        m->overall = n ? sum / n : NAN;
    } else if (d->format == QRM_EVAL_PB) {
        qrm_pb_metrics(pred, label, n_pb, &m->pb_acc_error, &m->pb_acc_correct, &m->pb_f1);
        for (size_t i = 0; i < n_pb; i++) m->pb_n_error += label[i] != -1;
        m->pb_n_correct = n_pb - m->pb_n_error;
        m->overall = m->pb_f1;
    } else {
        m->overall = m->accuracy;
    }
    free(ts), free(pred), free(label);
    for (int k = 0; k < 2; k++) summarize(m->dist[k], m->n_dist[k], &m->summary[k]);
    if (d->format != QRM_EVAL_PB) {
        /* length bias: over every scored response, and per pair */
        size_t n = m->n_dist[0] + m->n_dist[1], o = 0;
        double *sc = malloc((n + 1) * sizeof *sc), *ln = malloc((n + 1) * sizeof *ln);
        if (sc && ln) {
            for (size_t i = 0; i < d->n_rec; i++)
                if (ok(&d->rec[i]))
                    for (size_t u = 0; u < d->rec[i].n_units; u++, o++)
                        sc[o] = s[d->rec[i].first + u], ln[o] = d->length[d->rec[i].first + u];
            m->len_corr = qrm_pearson(sc, ln, o);
        } else {
            m->len_corr = NAN;
        }
        free(sc), free(ln);
        double hit[2] = {0};
        for (size_t i = 0; i < m->n_pairs; i++) {
            if (m->plc[i] == m->plr[i]) continue;
            int shorter = m->plc[i] < m->plr[i];
            m->n_len[shorter]++;
            hit[shorter] += qrm_pair_result(m->pc[i], m->pr[i]);
        }
        for (int k = 0; k < 2; k++) m->acc_len[k] = m->n_len[k] ? hit[k] / m->n_len[k] : NAN;
        m->ece = qrm_calibration(m->pc, m->pr, m->n_pairs, QRM_EVAL_BINS, m->bin_n, m->bin_conf, m->bin_freq);
    }
    return 0;
}

int qrm_eval_agreement(const qrm_eval_data *d, qrm_eval_agreement_t *a) {
    memset(a, 0, sizeof *a);
    double *x = calloc(d->n_units + 1, sizeof *x), *y = calloc(d->n_units + 1, sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        return -1;
    }
    size_t n = 0;
    double lo = INFINITY, hi = -INFINITY, maxdiff = 0;
    for (size_t i = 0; i < d->n_rec; i++) {
        const qrm_eval_record *r = &d->rec[i];
        if (!ok(r)) continue;
        const double *s = d->score + r->first, *t = d->ref_score + r->first;
        for (size_t u = 0; u < r->n_units; u++) {
            x[n] = s[u], y[n++] = t[u];
            if (t[u] < lo) lo = t[u];
            if (t[u] > hi) hi = t[u];
            double df = fabs(s[u] - t[u]);
            if (df > maxdiff) maxdiff = df;
        }
        if (d->format == QRM_EVAL_PB) {
            for (size_t u = 0; u < r->n_units; u++) {
                a->n_decisions++;
                a->same += (s[u] >= d->threshold) == (t[u] >= d->threshold);
            }
            a->n_samples++;
            a->same_samples += qrm_pb_predict(s, r->n_units, d->threshold) ==
                               qrm_pb_predict(t, r->n_units, d->threshold);
        } else if (is_pairs(d->format)) {
            a->n_decisions++;
            a->same += qrm_chosen_wins(s, r->n_resp) == qrm_chosen_wins(t, r->n_resp);
        } else {
            a->n_decisions++;
            a->same += argmax(s, r->n_resp) == argmax(t, r->n_resp);
        }
    }
    a->n_units = n;
    a->agreement = a->n_decisions ? (double)a->same / a->n_decisions : NAN;
    a->tau_b = qrm_kendall_tau_b(x, y, n);
    a->max_diff = n ? maxdiff : NAN;
    a->ref_range = n ? hi - lo : NAN;
    a->max_rel = n && hi > lo ? maxdiff / (hi - lo) : NAN;
    free(x), free(y);
    return 0;
}

/* ---- printing ---- */

static void pnum(FILE *o, const char *fmt, double v) {
    if (isnan(v)) fprintf(o, "%s", "n/a");
    else fprintf(o, fmt, v);
}

static const char *dist_names(qrm_eval_format f, int k) {
    if (f == QRM_EVAL_PB) return k ? "first wrong step" : "steps before it";
    return k ? "rejected" : "chosen";
}

static void print_table(const qrm_eval_data *d, const qrm_eval_metrics *m,
                        const qrm_eval_metrics *rm, const qrm_eval_agreement_t *a, FILE *o) {
    fprintf(o, "data: %s (%s): %zu records, %zu scored, %zu skipped\n", d->data_path,
            qrm_eval_format_name(d->format), m->n_records, m->n_scored, m->n_skipped);
    for (int k = 0; k < d->n_models; k++) {
        fprintf(o, "model%s: %s\n", d->n_models > 1 ? "" : "", d->model_paths[k]);
        qrm_print_provenance(o, d->models[k], "  ");
    }
    if (d->combine)
        fprintf(o, "ensemble: %d models, --combine %s of per-model z-scores\n", d->n_models, d->combine);
    if (d->kv) fprintf(o, "KV cache: %s (--kv; the reference keeps its default)\n", d->kv);
    if (d->dpo_ref_model) {
        fprintf(o, "DPO implicit reward against: %s\n", d->dpo_ref_path);
        qrm_print_provenance(o, d->dpo_ref_model, "  ");
    }
    if (d->dpo_mode) fprintf(o, "DPO reference-free reward: %s of the response's log-probabilities\n", d->dpo_mode);
    if (d->ref_model) {
        fprintf(o, "reference: %s\n", d->ref_path);
        qrm_print_provenance(o, d->ref_model, "  ");
    }
    fprintf(o, "\n%-28s %6s  %s\n", "subset", "n", d->format == QRM_EVAL_PB ? "accuracy" : "score");
    for (size_t i = 0; i < m->n_subsets; i++) {
        fprintf(o, "%-28s %6zu  ", m->subsets[i].name, m->subsets[i].n);
        pnum(o, "%.4f", m->subsets[i].score);
        fprintf(o, "%s\n", m->subsets[i].is_ties ? "  (Ties rule)" : "");
    }
    if (d->format == QRM_EVAL_RB1) {
        fprintf(o, "\n%-28s %s\n", "section", "score");
        for (int k = 0; k < QRM_RB1_N_SECTIONS; k++) {
            fprintf(o, "%-28s ", qrm_rb1_section_names[k]);
            pnum(o, "%.4f", m->sections[k]);
            fprintf(o, "\n");
        }
        if (!isnan(m->prior)) {
            fprintf(o, "%-28s ", "Prior Sets");
            pnum(o, "%.4f", m->prior);
            fprintf(o, "\n");
        }
        fprintf(o, "\nRewardBench score (mean of the sections present): ");
        pnum(o, "%.4f", m->overall);
        if (!isnan(m->prior)) {
            fprintf(o, "\nwith Prior Sets at 0.5 weight (the paper's): ");
            pnum(o, "%.4f", m->with_prior);
        }
        fprintf(o, "\naccuracy over all pairs: ");
        pnum(o, "%.4f", m->accuracy);
        fprintf(o, "\n");
    } else if (d->format == QRM_EVAL_RB2) {
        fprintf(o, "\nRewardBench 2 score (mean of the subsets): ");
        pnum(o, "%.4f", m->overall);
        fprintf(o, "\n");
        if (m->has_ties) {
            fprintf(o, "Ties: ref accuracy %.4f, tied accuracy %.4f, correctness preferred ", m->ties.ref_accuracy,
                    m->ties.tied_accuracy);
            pnum(o, "%.4f", m->ties.correctness_preferred);
            fprintf(o, " (hard ");
            pnum(o, "%.4f", m->ties.correctness_preferred_hard);
            fprintf(o, "), margin ");
            pnum(o, "%.4f", m->ties.margin_score);
            fprintf(o, "\n");
        }
    } else if (d->format == QRM_EVAL_PB) {
        fprintf(o, "\nthreshold %.3g: accuracy on erroneous samples ", d->threshold);
        pnum(o, "%.4f", m->pb_acc_error);
        fprintf(o, " (n %zu), on correct samples ", m->pb_n_error);
        pnum(o, "%.4f", m->pb_acc_correct);
        fprintf(o, " (n %zu), F1 ", m->pb_n_correct);
        pnum(o, "%.4f", m->pb_f1);
        fprintf(o, "\n");
    } else {
        fprintf(o, "\naccuracy: ");
        pnum(o, "%.4f", m->accuracy);
        fprintf(o, " (%zu pairs; a tie is a loss)\n", m->n_plain);
    }
    fprintf(o, "\nscore distribution   %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "n", "mean", "std", "min",
            "q05", "q25", "median", "q75", "q95");
    for (int k = 0; k < 2; k++) {
        const qrm_eval_dist *s = &m->summary[k];
        fprintf(o, "  %-18s %8zu", dist_names(d->format, k), s->n);
        double v[8] = {s->mean, s->std, s->min, s->q[0], s->q[1], s->q[2], s->q[3], s->q[4]};
        for (int j = 0; j < 8; j++) {
            fprintf(o, " ");
            if (isnan(v[j])) fprintf(o, "%8s", "n/a");
            else fprintf(o, "%8.4g", v[j]);
        }
        fprintf(o, "\n");
    }
    if (d->format != QRM_EVAL_PB) {
        fprintf(o, "\nlength bias: Pearson r(score, response tokens) ");
        pnum(o, "%.4f", m->len_corr);
        fprintf(o, "\n  accuracy when the chosen response is longer ");
        pnum(o, "%.4f", m->acc_len[0]);
        fprintf(o, " (%zu pairs), shorter ", m->n_len[0]);
        pnum(o, "%.4f", m->acc_len[1]);
        fprintf(o, " (%zu pairs)\n", m->n_len[1]);
        fprintf(o, "\ncalibration of sigmoid(s_chosen - s_rejected), each pair in both orders: ECE ");
        pnum(o, "%.4f", m->ece);
        fprintf(o, " over %zu pairs\n  %-11s %6s %9s %9s\n", m->n_pairs, "bin", "n", "mean p", "observed");
        for (int b = 0; b < QRM_EVAL_BINS; b++) {
            if (!m->bin_n[b]) continue;
            fprintf(o, "  [%.1f, %.1f%s %6zu %9.4f %9.4f\n", b / 10.0, (b + 1) / 10.0, b == QRM_EVAL_BINS - 1 ? "]" : ")",
                    m->bin_n[b], m->bin_conf[b], m->bin_freq[b]);
        }
    }
    if (a) {
        fprintf(o, "\nagreement with the reference %s\n", d->ref_path);
        fprintf(o, "  reference score: ");
        pnum(o, "%.4f", rm->overall);
        fprintf(o, " (this model: ");
        pnum(o, "%.4f", m->overall);
        fprintf(o, ")\n  same decision: %zu of %zu %s (", a->same, a->n_decisions,
                d->format == QRM_EVAL_PB ? "steps" : is_pairs(d->format) ? "pairs" : "best-of-N picks");
        pnum(o, "%.4f", a->agreement);
        fprintf(o, ")\n");
        if (d->format == QRM_EVAL_PB)
            fprintf(o, "  same predicted label: %zu of %zu samples\n", a->same_samples, a->n_samples);
        fprintf(o, "  Kendall tau-b over %zu scores: ", a->n_units);
        pnum(o, "%.4f", a->tau_b);
        fprintf(o, "\n  max |s - s_ref| / (max s_ref - min s_ref): ");
        pnum(o, "%.4g", a->max_rel);
        fprintf(o, " (");
        pnum(o, "%.4g", a->max_diff);
        fprintf(o, " / ");
        pnum(o, "%.4g", a->ref_range);
        fprintf(o, ")\n");
    }
}

static void jkey(qj_buf *b, const char *k) {
    if (b->len && b->buf[b->len - 1] != '{' && b->buf[b->len - 1] != '[') qj_buf_puts(b, ",");
    qj_buf_put_string(b, k, strlen(k));
    qj_buf_puts(b, ":");
}

static void jnum(qj_buf *b, const char *k, double v) {
    jkey(b, k);
    if (isnan(v) || isinf(v)) qj_buf_puts(b, "null");
    else qj_buf_printf(b, "%.9g", v);
}

static void jint(qj_buf *b, const char *k, size_t v) {
    jkey(b, k);
    qj_buf_printf(b, "%zu", v);
}

static void jstr(qj_buf *b, const char *k, const char *v) {
    jkey(b, k);
    if (v) qj_buf_put_string(b, v, strlen(v));
    else qj_buf_puts(b, "null");
}

static void jmodel(qj_buf *b, const char *path, const qrm_model *mod) {
    qj_buf_puts(b, "{");
    jstr(b, "path", path);
    jkey(b, "metadata");
    qj_buf_puts(b, qrm_model_metadata_json(mod));
    qj_buf_puts(b, "}");
}

static void jmetrics(qj_buf *b, const qrm_eval_data *d, const qrm_eval_metrics *m) {
    /* CONTRACT.md: "n", "accuracy" (the benchmark's own score for RewardBench
     * data) and "subsets" keyed by name */
    jint(b, "n", m->n_scored);
    jint(b, "records", m->n_records);
    jint(b, "scored", m->n_scored);
    jint(b, "skipped", m->n_skipped);
    jnum(b, "score", m->overall);
    if (d->format == QRM_EVAL_PB) {
        jnum(b, "accuracy", m->n_scored ? (double)m->pb_label_hits / (double)m->n_scored : NAN);
    } else {
        jnum(b, "accuracy", m->overall);
        jnum(b, "pair_accuracy", m->accuracy);
    }
    jkey(b, "subsets");
    qj_buf_puts(b, "{");
    for (size_t i = 0; i < m->n_subsets; i++) {
        jkey(b, m->subsets[i].name);
        qj_buf_puts(b, "{");
        jint(b, "n", m->subsets[i].n);
        jnum(b, "accuracy", m->subsets[i].score);
        if (m->subsets[i].is_ties) jstr(b, "rule", "ties");
        qj_buf_puts(b, "}");
    }
    qj_buf_puts(b, "}");
    if (d->format == QRM_EVAL_RB1) {
        jkey(b, "sections");
        qj_buf_puts(b, "{");
        for (int k = 0; k < QRM_RB1_N_SECTIONS; k++) jnum(b, qrm_rb1_section_names[k], m->sections[k]);
        jnum(b, "Prior Sets", m->prior);
        qj_buf_puts(b, "}");
        jnum(b, "score_with_prior_sets", m->with_prior);
    }
    if (m->has_ties) {
        jkey(b, "ties");
        qj_buf_puts(b, "{");
        jnum(b, "ref_accuracy", m->ties.ref_accuracy);
        jnum(b, "tied_accuracy", m->ties.tied_accuracy);
        jnum(b, "correctness_preferred", m->ties.correctness_preferred);
        jnum(b, "correctness_preferred_hard", m->ties.correctness_preferred_hard);
        jnum(b, "margin_score", m->ties.margin_score);
        jnum(b, "score", m->ties.overall);
        qj_buf_puts(b, "}");
    }
    if (d->format == QRM_EVAL_PB) {
        jkey(b, "processbench");
        qj_buf_puts(b, "{");
        jnum(b, "threshold", d->threshold);
        jnum(b, "error_accuracy", m->pb_acc_error);
        jint(b, "n_error", m->pb_n_error);
        jnum(b, "correct_accuracy", m->pb_acc_correct);
        jint(b, "n_correct", m->pb_n_correct);
        jnum(b, "f1", m->pb_f1);
        qj_buf_puts(b, "}");
    }
    jkey(b, "distribution");
    qj_buf_puts(b, "{");
    for (int k = 0; k < 2; k++) {
        const qrm_eval_dist *s = &m->summary[k];
        jkey(b, d->format == QRM_EVAL_PB ? (k ? "first_wrong_step" : "steps_before") : (k ? "rejected" : "chosen"));
        qj_buf_puts(b, "{");
        jint(b, "n", s->n);
        jnum(b, "mean", s->mean);
        jnum(b, "std", s->std);
        jnum(b, "min", s->min);
        jnum(b, "q05", s->q[0]);
        jnum(b, "q25", s->q[1]);
        jnum(b, "median", s->q[2]);
        jnum(b, "q75", s->q[3]);
        jnum(b, "q95", s->q[4]);
        jnum(b, "max", s->max);
        qj_buf_puts(b, "}");
    }
    qj_buf_puts(b, "}");
    if (d->format != QRM_EVAL_PB) {
        jkey(b, "length_bias");
        qj_buf_puts(b, "{");
        jnum(b, "pearson_score_tokens", m->len_corr);
        jnum(b, "accuracy_chosen_longer", m->acc_len[0]);
        jint(b, "n_chosen_longer", m->n_len[0]);
        jnum(b, "accuracy_chosen_shorter", m->acc_len[1]);
        jint(b, "n_chosen_shorter", m->n_len[1]);
        qj_buf_puts(b, "}");
        jkey(b, "calibration");
        qj_buf_puts(b, "{");
        jint(b, "pairs", m->n_pairs);
        jnum(b, "ece", m->ece);
        jkey(b, "bins");
        qj_buf_puts(b, "[");
        for (int k = 0; k < QRM_EVAL_BINS; k++) {
            if (k) qj_buf_puts(b, ",");
            qj_buf_puts(b, "{");
            jnum(b, "lo", k / 10.0);
            jnum(b, "hi", (k + 1) / 10.0);
            jint(b, "n", m->bin_n[k]);
            jnum(b, "mean_p", m->bin_conf[k]);
            jnum(b, "observed", m->bin_freq[k]);
            qj_buf_puts(b, "}");
        }
        qj_buf_puts(b, "]}");
    }
}

int qrm_eval_report(const qrm_eval_data *d, FILE *out, int json) {
    qrm_eval_metrics m, rm;
    qrm_eval_agreement_t a;
    if (qrm_eval_compute(d, d->score, &m)) return -1;
    int have_ref = d->ref_score != NULL;
    if (have_ref && (qrm_eval_compute(d, d->ref_score, &rm) || qrm_eval_agreement(d, &a))) {
        qrm_eval_metrics_free(&m);
        return -1;
    }
    int rc = 0;
    if (!json) {
        print_table(d, &m, have_ref ? &rm : NULL, have_ref ? &a : NULL, out);
    } else {
        qj_buf b = {0};
        qj_buf_puts(&b, "{");
        jstr(&b, "data", d->data_path);
        jstr(&b, "format", qrm_eval_format_name(d->format));
        jkey(&b, "models");
        qj_buf_puts(&b, "[");
        for (int k = 0; k < d->n_models; k++) {
            if (k) qj_buf_puts(&b, ",");
            jmodel(&b, d->model_paths[k], d->models[k]);
        }
        qj_buf_puts(&b, "]");
        jstr(&b, "combine", d->combine);
        jstr(&b, "kv", d->kv);
        if (d->dpo_ref_model) {
            jkey(&b, "dpo_reference");
            jmodel(&b, d->dpo_ref_path, d->dpo_ref_model);
        }
        jstr(&b, "dpo_mode", d->dpo_mode);
        jmetrics(&b, d, &m);
        if (have_ref) {
            jkey(&b, "reference");
            jmodel(&b, d->ref_path, d->ref_model);
            b.len--; /* reopen the object: the reference's own metrics go inside */
            jmetrics(&b, d, &rm);
            qj_buf_puts(&b, "}");
            /* CONTRACT.md: the fraction of records with the same decision (for
             * ProcessBench a record's decision is its predicted label) */
            jnum(&b, "agreement", d->format != QRM_EVAL_PB ? a.agreement
                                  : a.n_samples           ? (double)a.same_samples / (double)a.n_samples
                                                          : NAN);
            jkey(&b, "agreement_detail");
            qj_buf_puts(&b, "{");
            jint(&b, "decisions", a.n_decisions);
            jint(&b, "same", a.same);
            jnum(&b, "rate", a.agreement);
            if (d->format == QRM_EVAL_PB) {
                jint(&b, "samples", a.n_samples);
                jint(&b, "same_label", a.same_samples);
            }
            jint(&b, "scores", a.n_units);
            jnum(&b, "kendall_tau_b", a.tau_b);
            jnum(&b, "max_abs_diff", a.max_diff);
            jnum(&b, "ref_range", a.ref_range);
            jnum(&b, "max_diff_over_range", a.max_rel);
            qj_buf_puts(&b, "}");
        }
        qj_buf_puts(&b, "}\n");
        if (b.oom) rc = -1;
        else fwrite(b.buf, 1, b.len, out);
        qj_buf_free(&b);
    }
    qrm_eval_metrics_free(&m);
    if (have_ref) qrm_eval_metrics_free(&rm);
    return rc;
}
