/* qrm-bench: speed figures, always next to a limit measured in the same run.
 *
 *   qrm-bench kernels [-f FAMILY] [--json]                  (bench/bench_kernels.c)
 *   qrm-bench e2e --shape S --quant Q --seq N [-t N] [--reps R] [--decode D] [--svg F] [--json]
 *   qrm-bench bestofn --shape S --quant Q --prompt-len P --resp-len R --n N [-t N]
 *                     [--svg F] [--json]
 *   qrm-bench tokenizer [--tokenizer DIR ...] [--json]             (bench/bench_tokenizer.c)
 *   qrm-bench dram [-t N]
 *   qrm-bench scaling --shape S --quant Q --seq N [-t N] [--reps R] [--json]
 *   qrm-bench serve [-m F | --shape S --quant Q] [-n N] [-c C] [--len L] [--parallel P] [-t N]
 *                                                                   (bench/bench_serve.c)
 *
 * e2e: prefill tokens/s (median of reps), per-token latency of incremental
 * scoring with the KV cache (p50/p99 over D tokens) next to the DRAM bound
 * (weight bytes one token reads / read bandwidth measured here), peak RSS.
 * bestofn: one prompt and N responses scored with the shared prefix vs N
 * independent full passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli_opts.h"
#include "ctx.h"
#include "model.h"
#include "platform.h"
#include "pool.h"
#include "profile.h"
#include "qrm.h"
#include "synth_model.h"

int qrm_bench_tokenizer(int argc, char **argv); /* bench/bench_tokenizer.c */
int qrm_bench_serve(int argc, char **argv);     /* bench/bench_serve.c */

/* ---- DRAM read bandwidth: every thread sums its part of a buffer far larger than the caches ---- */

typedef struct {
    const uint64_t *buf;
    size_t n;
    int parts;
    uint64_t sink[64];
} bw_job;

static void bw_task(void *arg, int task, int thread) {
    bw_job *j = arg;
    size_t per = j->n / (size_t)j->parts, b = per * (size_t)task, e = b + per;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = b; i + 4 <= e; i += 4) a0 += j->buf[i], a1 += j->buf[i + 1], a2 += j->buf[i + 2], a3 += j->buf[i + 3];
    j->sink[thread & 63] += a0 + a1 + a2 + a3;
}

static double dram_read_gbs(int threads) {
    size_t bytes = (size_t)1 << 30, n = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    qrm_pool *pool = qrm_pool_new(threads);
    bw_job j = {.buf = buf, .n = n, .parts = threads};
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = qrm_now();
        qrm_pool_run(pool, threads, bw_task, &j);
        double dt = qrm_now() - t0;
        if (bytes / dt > best) best = bytes / dt;
    }
    qrm_pool_free(pool);
    free(buf);
    return best / 1e9;
}

/* ---- helpers ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void random_ids(int32_t *ids, int n, int vocab, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = (int32_t)((seed >> 8) % (unsigned)(vocab - 1000));
    }
}

/* Bytes of weights one token reads: every matrix, norm and bias, one embedding row, the head. */
static double weight_bytes_per_token(const qrm_model *m) {
    double b = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        const qrm_tensor *t = (const qrm_tensor *)&m->layers[l];
        for (size_t i = 0; i < sizeof(qrm_layer) / sizeof(qrm_tensor); i++)
            if (t[i].type < QRM_T_COUNT) b += (double)t[i].nbytes;
    }
    b += (double)m->tok_embd.nbytes / (double)m->hp.vocab_size;
    b += (double)m->out_norm.nbytes;
    for (int i = 0; i < QRM_HEAD_MAX_TENSORS; i++)
        if (m->head.t[i].type < QRM_T_COUNT) b += (double)m->head.t[i].nbytes;
    return b;
}

/* 2 * multiply-adds of the matrices per token (attention excluded). */
static double matmul_ops_per_token(const qrm_model *m) {
    double ops = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        const qrm_layer *L = &m->layers[l];
        const qrm_tensor *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) ops += 2.0 * (double)mats[i]->ne0 * (double)mats[i]->ne1;
    }
    return ops;
}

typedef struct {
    const char *shape, *quant, *svg, *head;
    int seq, threads, reps, decode, json, prompt_len, resp_len, n, kv_type, steps, profile;
    qrm_load load;
} opts;

/* The options of the model benchmarks, one table; each command takes the
 * subset its mask names, so the same option has one spelling, range and
 * default everywhere. */
enum { B_SHAPE, B_QUANT, B_SEQ, B_THREADS, B_REPS, B_DECODE, B_KV, B_SVG, B_PROMPT_LEN, B_RESP_LEN, B_N, B_STEPS,
       B_MODELS_DIR, B_JSON, B_PROFILE, B_LOAD, B_COUNT };
#define B(x) (1u << (x))
#define B_COMMON (B(B_SHAPE) | B(B_QUANT) | B(B_THREADS) | B(B_REPS) | B(B_MODELS_DIR) | B(B_JSON) | B(B_LOAD))

static const cli_opt bench_opts[B_COUNT] = {
    [B_SHAPE] = {"--shape", 0, CLI_CHOICE, NULL, "qwen3-0.6b", "the model shape (random weights)",
                 .choices = "qwen3-0.6b|llama-1b"},
    [B_QUANT] = {"--quant", 0, CLI_CHOICE, NULL, "int8", "the weights' type", .choices = "int8|int4|f16|f32"},
    [B_SEQ] = {"--seq", 0, CLI_INT, "N", "512", "tokens scored", .lo = 1, .hi = 1 << 20},
    [B_THREADS] = {"--threads", 't', CLI_INT, "N", "0: every core", "threads", .lo = 0, .hi = 4096},
    [B_REPS] = {"--reps", 0, CLI_INT, "R", "3", "repetitions (the median is reported)", .lo = 1, .hi = 1000},
    [B_DECODE] = {"--decode", 0, CLI_INT, "D", "64", "tokens appended one at a time after --seq", .lo = 1,
                  .hi = 1 << 20},
    [B_KV] = {"--kv", 0, CLI_CHOICE, NULL, "f16 for int8/int4, f32 otherwise", "KV cache type",
              .choices = "f32|f16|q8"},
    [B_SVG] = {"--svg", 0, CLI_STRING, "FILE.svg", NULL, "also draw the curve"},
    [B_PROMPT_LEN] = {"--prompt-len", 0, CLI_INT, "P", "512", "prompt tokens", .lo = 1, .hi = 1 << 20},
    [B_RESP_LEN] = {"--resp-len", 0, CLI_INT, "R", "128", "tokens per response", .lo = 1, .hi = 1 << 20},
    [B_N] = {"--n", 0, CLI_INT, "N", "16", "responses", .lo = 1, .hi = 4096},
    [B_STEPS] = {"--steps", 0, CLI_INT, "K", "16", "the PRM's steps (fewer than --seq)", .lo = 1, .hi = 1 << 20},
    [B_MODELS_DIR] = {"--models-dir", 0, CLI_STRING, "DIR", "build/bench-models",
                      "where the synthetic models are written once and reused"},
    [B_JSON] = {"--json", 0, CLI_FLAG, NULL, NULL, "only JSON on stdout (the table goes to stderr)"},
    [B_PROFILE] = {"--profile", 0, CLI_FLAG, NULL, NULL,
                   "also time each stage of the prefill (GEMMs, attention, norms...) in extra passes"},
    [B_LOAD] = CLI_OPT_LOAD,
};

static int parse(const char *cmd, const char *usage, unsigned mask, int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->shape = "qwen3-0.6b", o->quant = "int8", o->head = "linear", o->seq = 512, o->threads = 0, o->reps = 3;
    o->decode = 64, o->prompt_len = 512, o->resp_len = 128, o->n = 16, o->steps = 16;
    cli_opt table[B_COUNT];
    int map[B_COUNT], n = 0;
    for (int i = 0; i < B_COUNT; i++)
        if (mask & B(i)) table[n] = bench_opts[i], map[n++] = i;
    char prog[64];
    snprintf(prog, sizeof prog, "qrm-bench %s", cmd);
    const cli_spec spec = {.prog = prog, .usage = usage, .opts = table, .n_opts = n,
                           .epilog = "Synthetic models are random weights of the real shapes, written once.\n"};
    cli_val got[B_COUNT], v[B_COUNT];
    int pr = cli_parse(&spec, argc, argv, got, NULL, NULL);
    if (pr) return pr > 0 ? 1 : -1;
    memset(v, 0, sizeof v);
    for (int i = 0; i < n; i++) v[map[i]] = got[i];
    static const char *const shapes[] = {"qwen3-0.6b", "llama-1b"}, *const quants[] = {"int8", "int4", "f16", "f32"};
    if (v[B_SHAPE].count) o->shape = shapes[v[B_SHAPE].choice];
    if (v[B_QUANT].count) o->quant = quants[v[B_QUANT].choice];
    o->load = cli_load(&v[B_LOAD]);
    if (v[B_KV].count) o->kv_type = v[B_KV].choice == 0 ? QRM_KV_F32 : v[B_KV].choice == 1 ? QRM_KV_F16 : QRM_KV_Q8;
#define INT(k, f) if (v[k].count) o->f = (int)v[k].i
    INT(B_SEQ, seq); INT(B_THREADS, threads); INT(B_REPS, reps); INT(B_DECODE, decode);
    INT(B_PROMPT_LEN, prompt_len); INT(B_RESP_LEN, resp_len); INT(B_N, n); INT(B_STEPS, steps);
#undef INT
    o->svg = v[B_SVG].str;
    o->json = v[B_JSON].count > 0;
    o->profile = v[B_PROFILE].count > 0;
    if (v[B_MODELS_DIR].count) qrm_synth_models_dir = v[B_MODELS_DIR].str;
    if (o->threads <= 0) o->threads = qrm_cpu_count();
    /* everything is checked before a model is written or a file opened */
    if ((mask & B(B_STEPS)) && (o->seq < 64 || o->steps >= o->seq))
        return cli_usage_error(&spec, "--steps %d with --seq %d: heads needs --seq >= 64 and --steps < --seq",
                               o->steps, o->seq), -1;
    if (o->svg) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", o->svg);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        if (access(slash ? (dir[0] ? dir : "/") : ".", W_OK)) {
            fprintf(stderr, "%s: --svg: cannot write '%s' (its folder is missing or read-only)\n", prog, o->svg);
            return -1;
        }
    }
    return 0;
}

/* `return` value of a command whose options parse returned r (not 0). */
#define PARSED(r) ((r) > 0 ? 0 : 2)

static qrm_ctx *open_ctx(const opts *o, qrm_model **mp) {
    char path[256], err[QRM_ERR_MAX];
    if (qrm_synth_model_cached(o->shape, o->quant, o->head, path, sizeof path, err, sizeof err)) {
        fprintf(stderr, "qrm-bench: %s\n", err);
        return NULL;
    }
    qrm_model *m = qrm_model_open_with(path, o->load, err, sizeof err);
    if (!m) {
        fprintf(stderr, "qrm-bench: %s\n", err);
        return NULL;
    }
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = o->threads;
    p.kv_type = o->kv_type;
    qrm_ctx *c = qrm_ctx_new(m, &p, err, sizeof err);
    if (!c) {
        fprintf(stderr, "qrm-bench: %s\n", err);
        qrm_model_close(m);
        return NULL;
    }
    *mp = m;
    return c;
}

/* ---- an SVG line chart, no dependencies ---- */

/* A tick step of 1, 2 or 5 x 10^k giving at most max_ticks intervals over
 * span: labels a reader can add up, and never two alike. */
static double nice_step(double span, int max_ticks) {
    if (!(span > 0)) return 1;
    double raw = span / max_ticks, p = pow(10, floor(log10(raw)));
    static const double m[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (m[i] * p >= raw) return m[i] * p;
    return 10 * p;
}

/* Enough significant digits that adjacent ticks print differently. */
static int tick_decimals(double step) {
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 9 ? 9 : d;
}

/* series[0] (and series[1], optional) against x, named in a legend, with a
 * dashed horizontal reference line at yline when yline > 0. */
static void svg_chart(const char *path, const char *title, const char *xlabel, const char *ylabel,
                      const double *x, const double *y, const double *y2, int n, double yline,
                      const char *yline_label, const char *y_name, const char *y2_name) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "qrm-bench: cannot write %s\n", path);
        return;
    }
    double W = 720, H = 420, L = 70, R = 20, T = 40, B = 50;
    double xmin = x[0], xmax = x[n - 1] > x[0] ? x[n - 1] : x[0] + 1, ymax = yline;
    for (int i = 0; i < n; i++) {
        if (y[i] > ymax) ymax = y[i];
        if (y2 && y2[i] > ymax) ymax = y2[i];
    }
    if (!(ymax > 0)) ymax = 1;
    /* the axes end on a tick: the top one just above the data */
    double ystep = nice_step(ymax * 1.05, 6), xstep = nice_step(xmax - xmin, 8);
    ymax = ceil(ymax * 1.05 / ystep) * ystep;
    double x0 = floor(xmin / xstep) * xstep, x1 = ceil(xmax / xstep) * xstep;
    xmin = x0, xmax = x1 > x0 ? x1 : x0 + xstep;
    int yd = tick_decimals(ystep), xd = tick_decimals(xstep);
#define PX(v) (L + (W - L - R) * ((v) - xmin) / (xmax - xmin))
#define PY(v) (H - B - (H - T - B) * (v) / ymax)
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' font-family='sans-serif' font-size='12'>\n", W, H);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n<text x='%g' y='22' font-size='15'>%s</text>\n", L, title);
    for (int k = 0; k * ystep <= ymax * (1 + 1e-9); k++) {
        double yv = k * ystep, py = PY(yv);
        fprintf(f, "<line x1='%g' y1='%.1f' x2='%g' y2='%.1f' stroke='#ddd'/>\n", L, py, W - R, py);
        fprintf(f, "<text x='%g' y='%.1f' text-anchor='end'>%.*f</text>\n", L - 6, py + 4, yd, yv);
    }
    for (int k = 0; xmin + k * xstep <= xmax * (1 + 1e-9) + 1e-12; k++) {
        double xv = xmin + k * xstep, px = PX(xv);
        fprintf(f, "<line x1='%.1f' y1='%g' x2='%.1f' y2='%g' stroke='black'/>\n", px, H - B, px, H - B + 4);
        fprintf(f, "<text x='%.1f' y='%g' text-anchor='middle'>%.*f</text>\n", px, H - B + 18, xd, xv);
    }
    fprintf(f, "<line x1='%g' y1='%g' x2='%g' y2='%g' stroke='black'/>\n", L, H - B, W - R, H - B);
    fprintf(f, "<line x1='%g' y1='%g' x2='%g' y2='%g' stroke='black'/>\n", L, T, L, H - B);
    fprintf(f, "<text x='%g' y='%g' text-anchor='middle'>%s</text>\n", (L + W - R) / 2, H - 10, xlabel);
    fprintf(f, "<text x='16' y='%g' transform='rotate(-90 16 %g)' text-anchor='middle'>%s</text>\n", (T + H - B) / 2, (T + H - B) / 2, ylabel);
    const double *series[2] = {y, y2};
    const char *names[2] = {y_name, y2_name};
    const char *colors[2] = {"#1f77b4", "#d62728"};
    for (int s = 0; s < 2; s++) {
        if (!series[s]) continue;
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", colors[s]);
        for (int i = 0; i < n; i++) fprintf(f, "%.1f,%.1f ", PX(x[i]), PY(series[s][i]));
        fprintf(f, "'/>\n");
    }
    if (yline > 0) {
        double py = PY(yline);
        fprintf(f, "<line x1='%g' y1='%.1f' x2='%g' y2='%.1f' stroke='#2ca02c' stroke-dasharray='6 4'/>\n", L, py, W - R, py);
    }
    /* the legend, top left inside the plot: every line drawn, by name */
    double ly = T + 14;
    fprintf(f, "<g font-size='12'>\n");
    for (int s = 0; s < 2; s++) {
        if (!series[s]) continue;
        fprintf(f, "<line x1='%g' y1='%.1f' x2='%g' y2='%.1f' stroke='%s' stroke-width='2'/>"
                   "<text x='%g' y='%.1f'>%s</text>\n", L + 10, ly, L + 34, ly, colors[s], L + 40, ly + 4, names[s]);
        ly += 16;
    }
    if (yline > 0)
        fprintf(f, "<line x1='%g' y1='%.1f' x2='%g' y2='%.1f' stroke='#2ca02c' stroke-dasharray='6 4'/>"
                   "<text x='%g' y='%.1f'>%s</text>\n", L + 10, ly, L + 34, ly, L + 40, ly + 4, yline_label);
    fprintf(f, "</g>\n</svg>\n");
#undef PX
#undef PY
    fclose(f);
}

/* ---- e2e ---- */

/* The prefill again, reps times, with a profile attached: the time of each
 * stage (core/profile.h), summed over the passes, and the passes' own time.
 * Separate from the timed passes so that those carry no timing calls. */
static int profile_prefill(qrm_ctx *c, const int32_t *ids, int seq, int reps, qrm_profile *prof,
                           double *pass_s) {
    memset(prof, 0, sizeof *prof);
    float s;
    double t0 = qrm_now();
    c->prof = prof;
    for (int r = 0; r < reps; r++)
        if (qrm_score_ids(c, ids, (size_t)seq, &s)) {
            c->prof = NULL;
            fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
            return 1;
        }
    c->prof = NULL;
    *pass_s = (qrm_now() - t0) / reps;
    for (int i = 0; i < QRM_N_STAGES; i++) prof->seconds[i] /= reps, prof->gemm_ops[i] /= reps;
    return 0;
}

/* One line per stage: its share of the profiled pass and, for the weight
 * GEMMs, their rate against this run's int8 peak (all threads). what: "the
 * prefill" or "one token after N"; ref_s: the untimed pass (median) it is
 * compared with; json_name: the --json record's "bench". */
static void print_profile(const qrm_profile *p, double pass_s, double ref_s, double peak_gops, int json,
                          const char *what, const char *json_name) {
    double gemm_s = 0, staged = 0;
    for (int i = 0; i < QRM_N_STAGES; i++) {
        staged += p->seconds[i];
        if (qrm_stage_is_gemm(i)) gemm_s += p->seconds[i];
    }
    printf("  profile of %s (a pass with timing: %.3f ms, %+.1f%% against the untimed median):\n", what,
           pass_s * 1e3, 100 * (pass_s / ref_s - 1));
    printf("    %-38s %9s %7s %9s %7s\n", "stage", "ms/pass", "share", "GOPS", "peak");
    for (int i = 0; i < QRM_N_STAGES; i++) {
        if (!p->calls[i]) continue;
        printf("    %-38s %9.3f %6.1f%%", qrm_stage_name(i), p->seconds[i] * 1e3, 100 * p->seconds[i] / pass_s);
        if (p->gemm_ops[i] > 0 && p->seconds[i] > 0) {
            double g = p->gemm_ops[i] / p->seconds[i] / 1e9;
            printf(" %9.1f", g);
            if (peak_gops > 0) printf(" %6.1f%%", 100 * g / peak_gops);
        }
        printf("\n");
    }
    printf("    %-38s %9.3f %6.1f%%\n", "between stages (serial glue)", (pass_s - staged) * 1e3,
           100 * (pass_s - staged) / pass_s);
    printf("    weight GEMMs %.1f%% of the pass; everything else %.1f%%\n", 100 * gemm_s / pass_s,
           100 * (1 - gemm_s / pass_s));
    if (json) {
        fprintf(qrm_bench_json, "{\"bench\":\"%s\",\"pass_s\":%.6f,\"gemm_share\":%.4f,\"stages\":[", json_name,
                pass_s, gemm_s / pass_s);
        int first = 1;
        for (int i = 0; i < QRM_N_STAGES; i++) {
            if (!p->calls[i]) continue;
            fprintf(qrm_bench_json, "%s{\"stage\":\"%s\",\"seconds\":%.6f,\"gemm_ops\":%.0f}", first ? "" : ",",
                    qrm_stage_name(i), p->seconds[i], p->gemm_ops[i]);
            first = 0;
        }
        fprintf(qrm_bench_json, "]}\n");
    }
}

static int bench_e2e(int argc, char **argv) {
    opts o;
    int pr = parse("e2e", "qrm-bench e2e [--shape S] [--quant Q] [--seq N] [-t N] [--reps R] [--decode D]\n"
                          "[--kv f32|f16|q8] [--svg FILE] [--profile] [--models-dir DIR] [--json]",
                   B_COMMON | B(B_SEQ) | B(B_DECODE) | B(B_KV) | B(B_SVG) | B(B_PROFILE), argc, argv, &o);
    if (pr) return PARSED(pr);
    qrm_model *m;
    qrm_ctx *c = open_ctx(&o, &m);
    if (!c) return 1;
    qrm_peak peak;
    qrm_bench_peak(c->k->name, 0.2, &peak); /* the family this context runs */
    /* --profile: decode more tokens after the timed ones, with the profile */
    int total = o.seq + o.decode, extra = o.profile ? o.decode : 0;
    int32_t *ids = malloc((size_t)(total + extra) * sizeof *ids);
    random_ids(ids, total + extra, m->hp.vocab_size, 1);
    float s;
    /* prefill: median of reps */
    double *t = malloc((size_t)o.reps * sizeof *t);
    qrm_score_ids(c, ids, (size_t)(o.seq < 8 ? o.seq : 8), &s); /* warm-up: pages, pool */
    for (int r = 0; r < o.reps; r++) {
        double t0 = qrm_now();
        if (qrm_score_ids(c, ids, (size_t)o.seq, &s)) {
            fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
            return 1;
        }
        t[r] = qrm_now() - t0;
    }
    double prefill_s = percentile(t, o.reps, 0.5);
    double tok_s = o.seq / prefill_s;
    qrm_profile prof;
    double prof_pass_s = 0;
    if (o.profile && profile_prefill(c, ids, o.seq, o.reps, &prof, &prof_pass_s)) return 1;
    /* incremental: the KV cache holds seq tokens, then one token at a time.
     * With --svg, every token from the first is appended alone, so the chart
     * shows latency against the whole range of context lengths. */
    int from = o.svg ? 0 : o.seq, npos = total - from;
    double *all_lat = malloc((size_t)npos * sizeof *all_lat), *pos = malloc((size_t)npos * sizeof *pos);
    qrm_ctx_reset(c);
    /* no cache growth inside the timed loop */
    if (qrm_ctx_reserve(c, (size_t)(total + extra)) || (from && qrm_ctx_append(c, ids, (size_t)from, NULL, &s))) {
        fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
        return 1;
    }
    for (int i = 0; i < npos; i++) {
        double t0 = qrm_now();
        int rc = qrm_ctx_append(c, ids + from + i, 1, NULL, &s);
        all_lat[i] = (qrm_now() - t0) * 1e3;
        if (rc) {
            fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
            return 1;
        }
        pos[i] = from + i;
    }
    double *lat = all_lat + (o.seq - from); /* the decode tokens after seq */
    /* the profile of one token: as many more, one at a time, with timing */
    qrm_profile dprof;
    double dprof_s = 0;
    if (extra) {
        memset(&dprof, 0, sizeof dprof);
        c->prof = &dprof;
        double t0 = qrm_now();
        for (int i = 0; i < extra; i++)
            if (qrm_ctx_append(c, ids + total + i, 1, NULL, &s)) {
                c->prof = NULL;
                fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
                return 1;
            }
        dprof_s = (qrm_now() - t0) / extra;
        c->prof = NULL;
        for (int i = 0; i < QRM_N_STAGES; i++) dprof.seconds[i] /= extra, dprof.gemm_ops[i] /= extra;
    }
    double *lat_sorted = malloc((size_t)o.decode * sizeof *lat_sorted);
    memcpy(lat_sorted, lat, (size_t)o.decode * sizeof *lat);
    double p50 = percentile(lat_sorted, o.decode, 0.5), p99 = percentile(lat_sorted, o.decode, 0.99);
    /* RSS before the bandwidth probe, whose 1 GiB buffer would count */
    double rss_mb = (double)qrm_peak_rss() / 1048576.0;
    double bw = dram_read_gbs(o.threads);
    double wbytes = weight_bytes_per_token(m);
    double bound_ms = wbytes / (bw * 1e9) * 1e3;
    double ops = matmul_ops_per_token(m);
    double gops = ops * tok_s / 1e9;
    double peak_all = peak.int8_gops * o.threads;
    /* bytes of K and V per cached token: layers x kv heads x head_dim x 2 */
    double kv_tok = (double)qrm_ctx_kv_bytes_per_token(c);
    double kv_mb = (double)c->kv_cap * kv_tok / 1048576.0;
    /* the single-token pass also reads the K/V of the seq tokens before it */
    double bound_kv_ms = (wbytes + o.seq * kv_tok) / (bw * 1e9) * 1e3;
    printf("e2e %s %s, %d threads, kernels %s, KV cache %s, cpu %s\n", o.shape, o.quant, o.threads,
           qrm_ctx_isa(c), qrm_ctx_kv_name(c), qrm_cpu_name());
    if (peak_all > 0)
        printf("  prefill %d tokens: %.3f s, %.1f tokens/s, %.1f GOPS = %.1f%% of the int8 peak (%s, %.1f GOPS x %d)\n",
               o.seq, prefill_s, tok_s, gops, 100 * gops / peak_all, peak.int8_loop, peak.int8_gops, o.threads);
    else /* the scalar family has no int8 loop to measure against */
        printf("  prefill %d tokens: %.3f s, %.1f tokens/s, %.1f GOPS (no int8 peak loop for family %s)\n", o.seq,
               prefill_s, tok_s, gops, qrm_ctx_isa(c));
    printf("  incremental, 1 token after %d: p50 %.2f ms, p99 %.2f ms; DRAM bound %.2f ms (%.1f MB of weights / %.1f GB/s) -> p50 = %.2fx the bound; "
           "%.2f ms with the %.1f MB of K/V it reads -> %.2fx\n",
           o.seq, p50, p99, bound_ms, wbytes / 1e6, bw, p50 / bound_ms, bound_kv_ms,
           o.seq * kv_tok / 1e6, p50 / bound_kv_ms);
    printf("  peak RSS %.1f MB; file %.1f MB (mapped: only the pages read count), KV cache %.1f MB\n",
           rss_mb, (double)m->size / 1048576.0, kv_mb);
    if (o.profile) {
        char what[80];
        print_profile(&prof, prof_pass_s, prefill_s, peak_all, o.json, "the prefill", "e2e-profile");
        snprintf(what, sizeof what, "one token after %d to %d (%d tokens)", total, total + extra - 1, extra);
        print_profile(&dprof, dprof_s, p50 * 1e-3, peak_all, o.json, what, "e2e-decode-profile");
    }
    if (o.svg) {
        char title[200];
        snprintf(title, sizeof title, "qrm %s %s, %d threads: latency of one more token vs context", o.shape, o.quant, o.threads);
        svg_chart(o.svg, title, "tokens already in the KV cache", "ms per token", pos, all_lat, NULL, npos, bound_ms,
                  "DRAM bound (weights only)", "latency of one more token", NULL);
    }
    if (o.json)
        fprintf(qrm_bench_json, "{\"bench\":\"e2e\",\"shape\":\"%s\",\"quant\":\"%s\",\"threads\":%d,\"isa\":\"%s\",\"cpu\":\"%s\",\"seq\":%d,"
               "\"prefill_tok_s\":%.2f,\"prefill_gops\":%.2f,\"int8_peak_gops\":%.2f,\"peak_fraction\":%.4f,"
               "\"decode_ms_per_tok\":%.3f,\"decode_p50_ms\":%.3f,\"decode_p99_ms\":%.3f,\"dram_gbs\":%.2f,"
               "\"dram_bound_ms\":%.3f,\"dram_bound_with_kv_ms\":%.3f,\"weight_mb_per_tok\":%.2f,\"peak_rss_mb\":%.1f,\"file_mb\":%.1f,\"kv_mb\":%.1f,\"kv\":\"%s\",\"load\":\"%s\"}\n",
               o.shape, o.quant, o.threads, qrm_ctx_isa(c), qrm_cpu_name(), o.seq, tok_s, gops, peak_all, peak_all > 0 ? gops / peak_all : 0.0,
               p50, p50, p99, bw, bound_ms, bound_kv_ms, wbytes / 1e6, rss_mb, (double)m->size / 1048576.0, kv_mb,
               qrm_ctx_kv_name(c), o.load == QRM_LOAD_COPY ? "copy" : "map");
    free(ids), free(t), free(all_lat), free(pos), free(lat_sorted);
    qrm_ctx_free(c);
    qrm_model_close(m);
    return 0;
}

/* ---- best-of-N ---- */

static int bench_bestofn(int argc, char **argv) {
    opts o;
    int pr = parse("bestofn", "qrm-bench bestofn [--shape S] [--quant Q] [--prompt-len P] [--resp-len R] [--n N]\n"
                              "[-t N] [--reps R] [--kv f32|f16|q8] [--svg FILE] [--models-dir DIR] [--json]",
                   B_COMMON | B(B_PROMPT_LEN) | B(B_RESP_LEN) | B(B_N) | B(B_KV) | B(B_SVG), argc, argv, &o);
    if (pr) return PARSED(pr);
    qrm_model *m;
    qrm_ctx *c = open_ctx(&o, &m);
    if (!c) return 1;
    int P = o.prompt_len, R = o.resp_len, N = o.n;
    int32_t *prompt = malloc((size_t)P * sizeof(int32_t)), *full = malloc((size_t)(P + R) * sizeof(int32_t));
    int32_t **resp = malloc((size_t)N * sizeof *resp);
    size_t *rl = malloc((size_t)N * sizeof *rl);
    float *scores = malloc((size_t)N * sizeof(float)), s;
    random_ids(prompt, P, m->hp.vocab_size, 11);
    for (int i = 0; i < N; i++) {
        resp[i] = malloc((size_t)R * sizeof(int32_t));
        random_ids(resp[i], R, m->hp.vocab_size, 100u + (unsigned)i);
        rl[i] = (size_t)R;
    }
    qrm_score_ids(c, prompt, 8, &s); /* warm-up: pages, pool */
    /* The first shared call also grows the KV cache to P + N R tokens and
     * touches its memory for the first time (280 MB at the defaults: 0.5 s
     * of a 3.7-4 s call on the VM of 2026-12-07, where first touches of
     * fresh memory are slow), which the independent passes after it never
     * pay; a user scoring many prompts pays it once. So that first call is
     * timed apart (`the first call`) and both sides are medians of --reps
     * alternating calls after it. */
    double first_s = qrm_now();
    if (qrm_score_shared_prefix(c, prompt, (size_t)P, (const int32_t *const *)resp, rl, (size_t)N, scores)) {
        fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
        return 1;
    }
    first_s = qrm_now() - first_s;
    /* sweep N for the chart: 1, 2, 4, ... N */
    int npts = 0;
    double xs[16], shared_t[16], naive_t[16];
    double shared_s = 0, naive_s = 0;
    double *ts = malloc((size_t)o.reps * sizeof *ts), *tn = malloc((size_t)o.reps * sizeof *tn);
    if (!ts || !tn) {
        fprintf(stderr, "qrm-bench: out of memory\n");
        return 1;
    }
    for (int n = 1;; n = n * 2 > N ? N : n * 2) {
        if (o.svg || n == N) {
            for (int r = 0; r < o.reps; r++) { /* alternating, so drift hits both sides */
                double t0 = qrm_now();
                if (qrm_score_shared_prefix(c, prompt, (size_t)P, (const int32_t *const *)resp, rl, (size_t)n, scores)) {
                    fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
                    return 1;
                }
                ts[r] = qrm_now() - t0;
                t0 = qrm_now();
                for (int i = 0; i < n; i++) {
                    memcpy(full, prompt, (size_t)P * sizeof(int32_t));
                    memcpy(full + P, resp[i], (size_t)R * sizeof(int32_t));
                    if (qrm_score_ids(c, full, (size_t)(P + R), &s)) { /* a failed call is not timed */
                        fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c));
                        return 1;
                    }
                }
                tn[r] = qrm_now() - t0;
            }
            double ms = percentile(ts, o.reps, 0.5), mn = percentile(tn, o.reps, 0.5);
            if (npts < 16) xs[npts] = n, shared_t[npts] = ms, naive_t[npts] = mn, npts++;
            if (n == N) shared_s = ms, naive_s = mn;
        }
        if (n == N) break;
    }
    free(ts), free(tn);
    double rss_mb = (double)qrm_peak_rss() / 1048576.0;
    double kv_mb = (double)c->kv_cap * (double)qrm_ctx_kv_bytes_per_token(c) / 1048576.0;
    printf("bestofn %s %s, %d threads, kernels %s, cpu %s: prompt %d, %d responses of %d tokens\n", o.shape,
           o.quant, o.threads, qrm_ctx_isa(c), qrm_cpu_name(), P, N, R);
    printf("  shared prefix: %.3f s (%.1f response tokens/s), median of %d; the first call %.3f s\n", shared_s,
           N * R / shared_s, o.reps, first_s);
    printf("  %d independent full passes: %.3f s, median of %d\n", N, naive_s, o.reps);
    printf("  speedup %.2fx; peak RSS %.1f MB (file %.1f MB + KV cache %.1f MB)\n", naive_s / shared_s,
           rss_mb, (double)m->size / 1048576.0, kv_mb);
    if (o.svg) {
        char title[200];
        snprintf(title, sizeof title, "qrm %s %s best-of-N, prompt %d, responses %d: blue shared prefix, red independent", o.shape, o.quant, P, R);
        svg_chart(o.svg, title, "N (responses)", "seconds", xs, shared_t, naive_t, npts, 0, "",
                  "shared prompt prefix (qrm)", "N independent passes");
    }
    if (o.json)
        fprintf(qrm_bench_json, "{\"bench\":\"bestofn\",\"shape\":\"%s\",\"quant\":\"%s\",\"threads\":%d,\"isa\":\"%s\",\"cpu\":\"%s\",\"prompt_len\":%d,"
               "\"resp_len\":%d,\"n\":%d,\"reps\":%d,\"first_shared_s\":%.4f,\"shared_s\":%.4f,\"naive_s\":%.4f,\"speedup\":%.3f,\"peak_rss_mb\":%.1f,\"kv_mb\":%.1f}\n",
               o.shape, o.quant, o.threads, qrm_ctx_isa(c), qrm_cpu_name(), P, R, N, o.reps, first_s, shared_s, naive_s, naive_s / shared_s, rss_mb, kv_mb);
    for (int i = 0; i < N; i++) free(resp[i]);
    free(resp), free(rl), free(prompt), free(full), free(scores);
    qrm_ctx_free(c);
    qrm_model_close(m);
    return 0;
}

/* ---- heads: what each head costs on top of the forward pass ---- */

static double median_of(double *t, int n) { return percentile(t, n, 0.5); }

/* The head alone: its positions, then apply on that many hidden rows
 * (median seconds of 200 calls). */
static double time_apply(qrm_ctx *c, const qrm_model *m, const int32_t *ids, int n, size_t *points) {
    const qrm_head *h = &m->head;
    int32_t *pos = malloc(((size_t)n + 2) * sizeof *pos);
    size_t npos = 0, D = (size_t)m->hp.hidden;
    char err[QRM_ERR_MAX];
    h->ops->positions(h, ids, (size_t)n, pos, &npos, err, sizeof err);
    *points = h->ops->point_per_row ? npos : 1;
    float *hid = malloc((npos ? npos : 1) * D * sizeof *hid), *out = malloc((npos + 1) * 64 * sizeof *out);
    double t[200];
    for (size_t i = 0; i < npos * D; i++) hid[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    qrm_head_run run = qrm_ctx_head_run(c);
    for (int r = 0; r < 200; r++) {
        double t0 = qrm_now();
        h->ops->positions(h, ids, (size_t)n, pos, &npos, err, sizeof err);
        h->ops->apply(h, &run, ids, pos, hid, (int)npos, (int)D, out);
        t[r] = qrm_now() - t0;
    }
    free(pos), free(hid), free(out);
    return median_of(t, 200);
}

static int bench_heads(int argc, char **argv) {
    opts o;
    int pr = parse("heads", "qrm-bench heads [--shape S] [--quant Q] [--seq N] [--steps K] [-t N] [--reps R]\n"
                            "[--models-dir DIR] [--json]",
                   B_COMMON | B(B_SEQ) | B(B_STEPS), argc, argv, &o);
    if (pr) return PARSED(pr);
    int steps = o.steps;
    static const char *kinds[] = {"linear", "prm", "gated", "judge"};
    enum { NK = 4 };
    qrm_model *m[NK];
    qrm_ctx *c[NK];
    int32_t *ids[NK];
    double apply_s[NK], score_s[NK], plain_s[NK], *t = malloc((size_t)o.reps * NK * 2 * sizeof *t);
    size_t points[NK];
    for (int k = 0; k < NK; k++) {
        o.head = kinds[k];
        if (!(c[k] = open_ctx(&o, &m[k]))) return 1;
        ids[k] = malloc((size_t)o.seq * sizeof *ids[k]);
        random_ids(ids[k], o.seq, m[k]->hp.vocab_size, 7);
        const qrm_head *h = &m[k]->head;
        if (h->ops->steps) /* K separators spread evenly, the last at the end */
            for (int i = 1; i <= steps; i++) ids[k][(size_t)o.seq * i / steps - 1] = h->sep_id;
        if (h->n_pattern) /* the gating pattern where a prompt would end (3/4 of the way) */
            memcpy(ids[k] + o.seq * 3 / 4, h->pattern, (size_t)h->n_pattern * sizeof *ids[k]);
        qrm_scores s;
        if (qrm_score(c[k], ids[k], (size_t)o.seq, &s)) { /* warm-up */
            fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c[k]));
            return 1;
        }
        qrm_scores_free(&s);
        apply_s[k] = time_apply(c[k], m[k], ids[k], o.seq, &points[k]);
    }
    /* whole scoring calls against plain passes of the same tokens through
     * the same file (no row kept, no head), alternating in every round (the
     * machine drifts, and files of the same weights can differ in speed);
     * which of the two goes first alternates too, since the first call on a
     * model after another model ran is the slower one */
    for (int r = 0; r < o.reps; r++)
        for (int k = 0; k < NK; k++)
            for (int half = 0; half < 2; half++) {
                int plain = half ^ (r & 1);
                double t0 = qrm_now();
                if (plain) {
                    qrm_ctx_reset(c[k]);
                    qrm_ctx_append(c[k], ids[k], (size_t)o.seq, NULL, NULL);
                } else {
                    qrm_scores s;
                    qrm_score(c[k], ids[k], (size_t)o.seq, &s);
                    qrm_scores_free(&s);
                }
                t[(2 * k + plain) * o.reps + r] = qrm_now() - t0;
            }
    for (int k = 0; k < NK; k++)
        score_s[k] = median_of(t + 2 * k * o.reps, o.reps), plain_s[k] = median_of(t + (2 * k + 1) * o.reps, o.reps);
    printf("heads %s %s, %d threads, kernels %s, %d tokens (prm: %d steps), median of %d alternating rounds\n",
           o.shape, o.quant, o.threads, qrm_ctx_isa(c[0]), o.seq, steps, o.reps);
    for (int k = 0; k < NK; k++)
        printf("  %-6s score %.3f s, plain pass %.3f s: %+.2f%%; head alone %.1f us = %.3f%% of the pass (%zu point%s)\n",
               kinds[k], score_s[k], plain_s[k], 100 * (score_s[k] / plain_s[k] - 1), apply_s[k] * 1e6,
               100 * apply_s[k] / plain_s[k], points[k], points[k] == 1 ? "" : "s");
    if (o.json) {
        fprintf(qrm_bench_json, "{\"bench\":\"heads\",\"shape\":\"%s\",\"quant\":\"%s\",\"threads\":%d,\"isa\":\"%s\",\"seq\":%d,\"steps\":%d",
               o.shape, o.quant, o.threads, qrm_ctx_isa(c[0]), o.seq, steps);
        for (int k = 0; k < NK; k++)
            fprintf(qrm_bench_json, ",\"%s_score_s\":%.5f,\"%s_plain_s\":%.5f,\"%s_head_us\":%.2f,\"%s_head_fraction\":%.6f",
                   kinds[k], score_s[k], kinds[k], plain_s[k], kinds[k], apply_s[k] * 1e6, kinds[k],
                   apply_s[k] / plain_s[k]);
        fprintf(qrm_bench_json, "}\n");
    }
    for (int k = 0; k < NK; k++) {
        free(ids[k]);
        qrm_ctx_free(c[k]);
        qrm_model_close(m[k]);
    }
    free(t);
    return 0;
}

/* ---- DPO: log-probabilities of a response in a policy and a reference ---- */

static int bench_dpo(int argc, char **argv) {
    opts o;
    int pr = parse("dpo", "qrm-bench dpo [--shape S] [--quant Q] [--prompt-len P] [--resp-len R] [-t N] [--reps R]\n"
                          "[--models-dir DIR] [--json]",
                   B_COMMON | B(B_PROMPT_LEN) | B(B_RESP_LEN), argc, argv, &o);
    if (pr) return PARSED(pr);
    int P = o.prompt_len, R = o.resp_len, T = P + R;
    qrm_model *mp;
    o.head = "lm";
    qrm_ctx *cp = open_ctx(&o, &mp);
    if (!cp) return 1;
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    random_ids(ids, T, mp->hp.vocab_size, 5);
    double *t = malloc((size_t)o.reps * sizeof *t), *u = malloc((size_t)o.reps * sizeof *u);
    qrm_scores s;
    if (qrm_logprobs(cp, ids, (size_t)T, (size_t)P, &s)) { /* warm-up */
        fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(cp));
        return 1;
    }
    qrm_scores_free(&s);
    /* alternating: the DPO pair (policy + reference: the same file twice,
     * as speed does not depend on the values) and two plain passes of the
     * same tokens through the same file (no head at all) */
    for (int r = 0; r < o.reps; r++) {
        double t0 = qrm_now();
        qrm_logprobs(cp, ids, (size_t)T, (size_t)P, &s);
        qrm_scores_free(&s);
        qrm_logprobs(cp, ids, (size_t)T, (size_t)P, &s);
        qrm_scores_free(&s);
        t[r] = qrm_now() - t0;
        t0 = qrm_now();
        for (int k = 0; k < 2; k++) qrm_ctx_reset(cp), qrm_ctx_append(cp, ids, (size_t)T, NULL, NULL);
        u[r] = qrm_now() - t0;
    }
    double dpo_s = median_of(t, o.reps), plain_s = median_of(u, o.reps);
    printf("dpo %s %s, %d threads, kernels %s: prompt %d + response %d tokens, vocabulary %d\n", o.shape,
           o.quant, o.threads, qrm_ctx_isa(cp), P, R, mp->hp.vocab_size);
    printf("  policy + reference log-probabilities: %.3f s; two plain passes: %.3f s; ratio %.3fx\n", dpo_s,
           plain_s, dpo_s / plain_s);
    if (o.json)
        fprintf(qrm_bench_json, "{\"bench\":\"dpo\",\"shape\":\"%s\",\"quant\":\"%s\",\"threads\":%d,\"isa\":\"%s\",\"prompt_len\":%d,"
               "\"resp_len\":%d,\"dpo_s\":%.4f,\"plain_s\":%.4f,\"ratio\":%.4f}\n",
               o.shape, o.quant, o.threads, qrm_ctx_isa(cp), P, R, dpo_s, plain_s, dpo_s / plain_s);
    free(ids), free(t), free(u);
    qrm_ctx_free(cp);
    qrm_model_close(mp);
    return 0;
}

/* ---- scaling: one prefill at 1 thread and at N, alternating pass by pass ---- */

/* Two contexts of one model, 1 and N threads, each pass of one timed right
 * after the other's: this machine's speed swings by 10-20 % within minutes,
 * and runs of each minutes apart measured the swing. The ratio of each round
 * is reported (median, range) next to the medians of the rates. */
static int bench_scaling(int argc, char **argv) {
    opts o;
    int pr = parse("scaling", "qrm-bench scaling [--shape S] [--quant Q] [--seq N] [-t N] [--reps R]\n"
                              "[--kv f32|f16|q8] [--models-dir DIR] [--json]   (R rounds: 10 or more)",
                   B_COMMON | B(B_SEQ) | B(B_KV), argc, argv, &o);
    if (pr) return PARSED(pr);
    int nt = o.threads;
    if (nt < 2) {
        fprintf(stderr, "qrm-bench scaling: needs 2 threads or more (-t %d%s)\n", nt,
                qrm_cpu_count() < 2 ? ": this machine has one core" : "");
        return 2;
    }
    qrm_model *m;
    o.threads = 1;
    qrm_ctx *c[2] = {open_ctx(&o, &m), NULL};
    if (!c[0]) return 1;
    char err[QRM_ERR_MAX];
    qrm_ctx_params p;
    qrm_ctx_params_default(&p);
    p.n_threads = nt, p.kv_type = o.kv_type;
    if (!(c[1] = qrm_ctx_new(m, &p, err, sizeof err))) {
        fprintf(stderr, "qrm-bench: %s\n", err);
        return 1;
    }
    int32_t *ids = malloc((size_t)o.seq * sizeof *ids);
    double *t = malloc((size_t)o.reps * 3 * sizeof *t), *ratio = t + 2 * o.reps;
    random_ids(ids, o.seq, m->hp.vocab_size, 7);
    float s;
    for (int k = 0; k < 2; k++) /* warm-up: the cache grown, pages touched, the pool started */
        if (qrm_score_ids(c[k], ids, (size_t)o.seq, &s)) {
            fprintf(stderr, "qrm-bench: %s\n", qrm_ctx_error(c[k]));
            return 1;
        }
    for (int r = 0; r < o.reps; r++) {
        for (int k = 0; k < 2; k++) {
            double t0 = qrm_now();
            qrm_score_ids(c[k], ids, (size_t)o.seq, &s);
            t[k * o.reps + r] = qrm_now() - t0;
        }
        ratio[r] = t[r] / t[o.reps + r];
    }
    double t1 = median_of(t, o.reps), tn = median_of(t + o.reps, o.reps), rmed = median_of(ratio, o.reps);
    double rmin = ratio[0], rmax = ratio[0];
    for (int r = 1; r < o.reps; r++) rmin = ratio[r] < rmin ? ratio[r] : rmin, rmax = ratio[r] > rmax ? ratio[r] : rmax;
    printf("scaling %s %s, kernels %s, cpu %s: prefill %d tokens, %d rounds, 1 and %d threads alternating\n",
           o.shape, o.quant, qrm_ctx_isa(c[0]), qrm_cpu_name(), o.seq, o.reps, nt);
    printf("  1 thread %.1f tokens/s, %d threads %.1f tokens/s (medians); %d threads / 1 in each round: median "
           "%.3fx (%.3f-%.3f), %.1f%% of linear\n",
           o.seq / t1, nt, o.seq / tn, nt, rmed, rmin, rmax, 100.0 * rmed / nt);
    if (o.json)
        fprintf(qrm_bench_json, "{\"bench\":\"scaling\",\"shape\":\"%s\",\"quant\":\"%s\",\"threads\":%d,\"isa\":\"%s\","
                "\"cpu\":\"%s\",\"seq\":%d,\"rounds\":%d,\"tok_s_1\":%.2f,\"tok_s_n\":%.2f,\"ratio_median\":%.4f,"
                "\"ratio_min\":%.4f,\"ratio_max\":%.4f}\n",
                o.shape, o.quant, nt, qrm_ctx_isa(c[0]), qrm_cpu_name(), o.seq, o.reps, o.seq / t1, o.seq / tn, rmed,
                rmin, rmax);
    free(ids), free(t);
    qrm_ctx_free(c[0]), qrm_ctx_free(c[1]);
    qrm_model_close(m);
    return 0;
}

static int bench_dram(int argc, char **argv) {
    static const cli_opt o[] = {{"--threads", 't', CLI_INT, "N", "1", "threads reading", .lo = 1, .hi = 4096}};
    static const cli_spec spec = {.prog = "qrm-bench dram", .usage = "qrm-bench dram [-t N]",
                                  .about = "DRAM read bandwidth (a 1 GiB buffer, best of 5)", .opts = o, .n_opts = 1};
    cli_val v[1];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return PARSED(pr);
    int threads = v[0].count ? (int)v[0].i : 1;
    printf("DRAM read bandwidth, %d thread%s: %.2f GB/s\n", threads, threads > 1 ? "s" : "", dram_read_gbs(threads));
    return 0;
}

FILE *qrm_bench_json;

static const char bench_usage[] =
    "usage: qrm-bench COMMAND [options]   (qrm-bench COMMAND --help lists a command's options)\n"
    "\n"
    "  kernels [-f FAMILY]                 each kernel against the int8 / fp32 peaks of this run\n"
    "  e2e [--shape S] [--quant Q] [--seq N] [-t N] [--decode D] [--kv f32|f16|q8] [--svg F]\n"
    "                                      prefill tokens/s, per-token latency vs the DRAM bound\n"
    "  bestofn [--shape S] [--quant Q] [--prompt-len P] [--resp-len R] [--n N] [-t N] [--svg F]\n"
    "                                      shared-prefix best-of-N vs N independent passes\n"
    "  heads [--shape S] [--quant Q] [--seq N] [--steps K] [-t N]\n"
    "                                      each head's cost against a plain pass\n"
    "  dpo [--shape S] [--quant Q] [--prompt-len P] [--resp-len R] [-t N]\n"
    "                                      DPO log-probabilities vs two plain passes\n"
    "  scaling [--shape S] [--quant Q] [--seq N] [-t N] [--reps R]\n"
    "                                      prefill at 1 thread and at N, alternating pass by pass\n"
    "  tokenizer                           tokenizer throughput on the shipped tokenizers\n"
    "  dram [-t N]                         DRAM read bandwidth\n"
    "  serve [-m F] [-n N] [-c C] [--len L] [--parallel P] [-t N]\n"
    "                                      qrm serve on loopback, C clients, vs the CLI's loop\n"
    "\n"
    "Shapes: qwen3-0.6b (default), llama-1b; quant: int8 (default), int4, f16, f32; -t: all cores.\n"
    "Synthetic models (random weights of the real shapes) are written once to build/bench-models/\n"
    "(--models-dir DIR elsewhere) and reused. --json: only one JSON line on stdout, the table on stderr.\n"
    "\n"
    "  -h, --help                          this text\n"
    "  --version                           the version\n";

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {{"kernels", qrm_bench_kernels}, {"e2e", bench_e2e},         {"bestofn", bench_bestofn},
                {"dram", bench_dram},           {"heads", bench_heads},     {"dpo", bench_dpo},
                {"tokenizer", qrm_bench_tokenizer}, {"serve", qrm_bench_serve}, {"scaling", bench_scaling}};
    qrm_bench_json = stdout;
    char err[QRM_ERR_MAX];
    if (qrm_set_default_isa(getenv("QRM_ISA"), err, sizeof err) != QRM_OK) {
        fprintf(stderr, "qrm-bench: QRM_ISA: %s\n", err);
        return 1;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        cli_print_version("qrm-bench", stdout);
        return 0;
    }
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) return fputs(bench_usage, stdout), 0;
    for (size_t i = 0; argc >= 2 && i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name)) continue;
        /* --json: stdout carries the JSON line alone, so `qrm-bench ... --json | jq` works;
         * the human table, printed to stdout everywhere, is moved to stderr under it */
        int json = 0;
        for (int k = 2; k < argc; k++) json |= !strcmp(argv[k], "--json");
        for (int k = 2; k < argc; k++) json &= strcmp(argv[k], "-h") && strcmp(argv[k], "--help");
        if (json) {
            fflush(stdout);
            int fd = dup(1);
            if (fd < 0 || !(qrm_bench_json = fdopen(fd, "w")) || dup2(2, 1) < 0) {
                perror("qrm-bench: --json");
                return 1;
            }
        }
        int rc = cmds[i].run(argc - 2, argv + 2);
        fflush(stdout);
        if (json && fclose(qrm_bench_json)) rc = rc ? rc : 1;
        return rc;
    }
    if (argc >= 2) fprintf(stderr, "qrm-bench: unknown command '%s'\n", argv[1]);
    fputs(bench_usage, stderr);
    return 2;
}
