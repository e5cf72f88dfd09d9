/* qrm-bench tokenizer: encode speed of core/text/tokenizer.c on three corpora,
 * single thread, next to the Rust Hugging Face `tokenizers` library measured
 * on the same machine by an outside script (its results come in with --peer).
 *
 *   qrm-bench tokenizer [--tokenizer DIR ...] [--corpus NAME ...] [--seconds S]
 *                       [--data DIR] [--src DIR] [--read-corpus DIR] [--peer FILE] [--json]
 *   qrm-bench tokenizer --write-corpus DIR [--data DIR] [--src DIR]
 *
 * The corpora are built at run time, so the benchmark needs no data files of
 * its own; each is about 1 MB and cut into documents of at most 4 KB at line
 * boundaries, as requests arrive, and each document is one encode call with
 * add_special_tokens = false:
 *   english  the prose READMEs of tests/data plus the english and (mostly
 *            ASCII) documents texts of the tokenizer cases, repeated;
 *   code     the C sources of --src (default core/), sorted by name, repeated;
 *   cjk      lines of random 2-12 code point fragments of the CJK texts of the
 *            tokenizer cases (a fixed LCG seed). The fixtures hold only ~1 KB
 *            of CJK; repeating it would make every run between two punctuation
 *            marks a word-cache hit, while real CJK text is mostly runs the
 *            BPE has never seen, so the fragments are glued into new runs.
 * --write-corpus writes NAME.txt and NAME.chunks (the byte length of each
 * document, one a line) so the peer script encodes byte-identical documents;
 * --read-corpus benchmarks those files instead of building the corpora again
 * (the code corpus follows core/, which may change between the two runs).
 *
 * Each (tokenizer, corpus) is encoded once to count tokens and hash the ids,
 * then timed in whole passes over the corpus until --seconds of CPU time have
 * been spent; the figure is the best pass by process CPU time (the peer's
 * encode runs on a worker thread, so the calling thread's CPU time could not
 * be compared, and wall clock on a shared machine measures the neighbours;
 * the JSON line has the wall-clock figure too). Load time is CPU time as
 * well, reading the files included. The hash is FNV-1a-like
 * over the ids in order (h = (h ^ id) * 16777619 mod 2^32), so equal hashes
 * mean equal ids, not only equal counts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli_opts.h"
#include "json.h"
#include "platform.h"
#include "tokenizer.h"

/* The subcommand `qrm-bench tokenizer` (dispatched from bench/qrm_bench.c). */
int qrm_bench_tokenizer(int argc, char **argv);

#define CORPUS_TARGET 1000000 /* bytes per corpus */
#define CHUNK_MAX 4096        /* bytes per document (a longer line is one document) */
#define MAX_TOKENIZERS 16
#define MAX_CORPORA 3

static const char *const corpus_names[MAX_CORPORA] = {"english", "code", "cjk"};

/* ---------------------------------------------------------------- text buffers */

typedef struct {
    char *data;
    size_t len, cap;
} text;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "qrm-bench tokenizer: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

static void text_put(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->len + n + 1 > cap) cap *= 2;
        t->data = xrealloc(t->data, cap);
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
}

/* Appends s and a '\n' unless s already ends with one, so every source
 * ends at a line boundary. */
static void text_put_line(text *t, const char *s, size_t n) {
    text_put(t, s, n);
    if (n == 0 || s[n - 1] != '\n') text_put(t, "\n", 1);
}

/* dst = src repeated, cut at the last line boundary at or below target. */
static void repeat_to(text *dst, const text *src, size_t target) {
    if (src->len == 0) return;
    while (dst->len + src->len <= target) text_put(dst, src->data, src->len);
    size_t room = target - dst->len, cut = 0;
    for (size_t i = 0; i < room; i++)
        if (src->data[i] == '\n') cut = i + 1;
    text_put(dst, src->data, cut);
}

static int append_file(text *t, const char *path) {
    char err[256];
    size_t n;
    char *s = qrm_read_file(path, &n, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qrm-bench tokenizer: %s\n", err);
        return -1;
    }
    text_put_line(t, s, n);
    free(s);
    return 0;
}

/* ---------------------------------------------------------------- corpus sources */

/* At least 90% of the bytes are ASCII. */
static int mostly_ascii(const char *s, size_t n) {
    size_t high = 0;
    for (size_t i = 0; i < n; i++) high += (unsigned char)s[i] >= 0x80;
    return high * 10 <= n;
}

/* Appends the "text" of every case of cases.jsonl whose "cat" is cat, one a
 * line; ascii_only selects texts that are (1) or are not (0) mostly ASCII,
 * -1 takes all. */
static int append_cases(text *t, const char *path, const char *cat, int ascii_only) {
    char err[256];
    size_t n;
    char *s = qrm_read_file(path, &n, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qrm-bench tokenizer: %s\n", err);
        return -1;
    }
    int rc = 0, line_no = 0;
    for (size_t at = 0; at < n && rc == 0;) {
        const char *nl = memchr(s + at, '\n', n - at);
        size_t end = nl ? (size_t)(nl - s) : n;
        line_no++;
        if (end > at) {
            qj_doc *d = qj_parse(s + at, end - at, err, sizeof err);
            const qj_value *txt = d ? qj_get_type(qj_root(d), "text", QJ_STRING) : NULL;
            const char *c = d ? qj_get_str(qj_root(d), "cat") : NULL;
            if (!txt || !c) {
                fprintf(stderr, "qrm-bench tokenizer: %s line %d: %s\n", path, line_no,
                        d ? "no \"text\" or \"cat\"" : err);
                rc = -1;
            } else if (!strcmp(c, cat) &&
                       (ascii_only < 0 || mostly_ascii(txt->u.str, txt->len) == ascii_only)) {
                text_put_line(t, txt->u.str, txt->len);
            }
            qj_free(d);
        }
        at = end + 1;
    }
    free(s);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends every .c file of dir, sorted by name. */
static int append_c_sources(text *t, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "qrm-bench tokenizer: cannot open directory '%s'\n", dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".c")) continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n] = xrealloc(NULL, len + 1);
        memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    int rc = n ? 0 : -1;
    if (!n) fprintf(stderr, "qrm-bench tokenizer: no .c files in '%s'\n", dir);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (rc == 0 && append_file(t, path)) rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

static uint32_t lcg_next(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Lines of 40-160 code points glued from fragments of 2-12 code points cut at
 * random places of pool (fragments stop at a newline). */
static void glue_fragments(text *dst, const text *pool, size_t target) {
    size_t *cp = NULL, n = 0; /* byte offset of every code point start */
    for (size_t i = 0; i < pool->len; i++)
        if (((unsigned char)pool->data[i] & 0xc0) != 0x80) {
            cp = xrealloc(cp, (n + 1) * sizeof *cp);
            cp[n++] = i;
        }
    if (n < 16) {
        free(cp);
        return;
    }
    uint32_t seed = 12345;
    text line = {0};
    for (;;) {
        line.len = 0;
        size_t want = 40 + lcg_next(&seed) % 121, got = 0;
        while (got < want) {
            size_t start = lcg_next(&seed) % (n - 12), len = 2 + lcg_next(&seed) % 11;
            size_t k = 0;
            while (k < len && pool->data[cp[start + k]] != '\n') k++;
            if (k == 0) continue;
            text_put(&line, pool->data + cp[start], cp[start + k] - cp[start]);
            got += k;
        }
        text_put(&line, "\n", 1);
        if (dst->len + line.len > target) break;
        text_put(dst, line.data, line.len);
    }
    free(line.data);
    free(cp);
}

/* ---------------------------------------------------------------- corpora */

typedef struct {
    const char *name;
    text body;
    size_t *chunk_len; /* bytes of each document */
    size_t n_chunks;
} corpus;

static void split_chunks(corpus *c) {
    size_t cur = 0;
    for (size_t at = 0; at < c->body.len;) {
        const char *nl = memchr(c->body.data + at, '\n', c->body.len - at);
        size_t line = (nl ? (size_t)(nl - c->body.data) + 1 : c->body.len) - at;
        if (cur > 0 && cur + line > CHUNK_MAX) {
            c->chunk_len = xrealloc(c->chunk_len, (c->n_chunks + 1) * sizeof *c->chunk_len);
            c->chunk_len[c->n_chunks++] = cur;
            cur = 0;
        }
        cur += line;
        at += line;
    }
    if (cur > 0) {
        c->chunk_len = xrealloc(c->chunk_len, (c->n_chunks + 1) * sizeof *c->chunk_len);
        c->chunk_len[c->n_chunks++] = cur;
    }
}

static void free_corpus(corpus *c) {
    free(c->body.data);
    free(c->chunk_len);
}

static int build_corpus(corpus *c, const char *name, const char *data_dir, const char *src_dir) {
    char path[4096], cases[4096];
    text src = {0};
    int rc = 0;
    memset(c, 0, sizeof *c);
    c->name = name;
    snprintf(cases, sizeof cases, "%s/tokenizers/qwen3/cases.jsonl", data_dir);
    if (!strcmp(name, "english")) {
        static const char *const readmes[] = {"tokenizers", "models", "cpu"};
        for (int i = 0; i < 3 && rc == 0; i++) {
            snprintf(path, sizeof path, "%s/%s/README.md", data_dir, readmes[i]);
            rc = append_file(&src, path);
        }
        if (rc == 0) rc = append_cases(&src, cases, "english", -1);
        if (rc == 0) rc = append_cases(&src, cases, "documents", 1);
        if (rc == 0) repeat_to(&c->body, &src, CORPUS_TARGET);
    } else if (!strcmp(name, "code")) {
        rc = append_c_sources(&src, src_dir);
        if (rc == 0) repeat_to(&c->body, &src, CORPUS_TARGET);
    } else if (!strcmp(name, "cjk")) {
        rc = append_cases(&src, cases, "cjk", -1);
        if (rc == 0) rc = append_cases(&src, cases, "documents", 0);
        if (rc == 0) glue_fragments(&c->body, &src, CORPUS_TARGET);
    } else {
        fprintf(stderr, "qrm-bench tokenizer: unknown corpus '%s' (english, code, cjk)\n", name);
        rc = -1;
    }
    free(src.data);
    if (rc == 0 && c->body.len == 0) {
        fprintf(stderr, "qrm-bench tokenizer: corpus '%s' came out empty\n", name);
        rc = -1;
    }
    if (rc == 0) split_chunks(c);
    else free_corpus(c);
    return rc;
}

static int write_corpus(const corpus *c, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.txt", dir, c->name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(c->body.data, 1, c->body.len, f) == c->body.len;
    if (f && fclose(f)) ok = 0;
    if (ok) {
        snprintf(path, sizeof path, "%s/%s.chunks", dir, c->name);
        f = fopen(path, "w");
        ok = f != NULL;
        for (size_t i = 0; ok && i < c->n_chunks; i++) ok = fprintf(f, "%zu\n", c->chunk_len[i]) > 0;
        if (f && fclose(f)) ok = 0;
    }
    if (!ok) fprintf(stderr, "qrm-bench tokenizer: cannot write '%s'\n", path);
    return ok ? 0 : -1;
}

/* Reads what write_corpus wrote, so a run compares byte-identical documents
 * with the peer even when the C sources changed in between. On failure
 * nothing stays allocated. */
static int read_corpus(corpus *c, const char *name, const char *dir) {
    char path[4096], err[256];
    size_t n;
    memset(c, 0, sizeof *c);
    c->name = name;
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    char *body = qrm_read_file(path, &n, err, sizeof err);
    if (!body) {
        fprintf(stderr, "qrm-bench tokenizer: %s\n", err);
        return -1;
    }
    c->body = (text){.data = body, .len = n, .cap = n + 1};
    snprintf(path, sizeof path, "%s/%s.chunks", dir, name);
    char *lens = qrm_read_file(path, &n, err, sizeof err);
    if (!lens) {
        fprintf(stderr, "qrm-bench tokenizer: %s\n", err);
        free_corpus(c);
        return -1;
    }
    size_t sum = 0;
    int bad = 0;
    for (char *p = lens; *p && !bad;) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || *end != '\n' || v == 0 || v > c->body.len - sum) bad = 1;
        else {
            c->chunk_len = xrealloc(c->chunk_len, (c->n_chunks + 1) * sizeof *c->chunk_len);
            c->chunk_len[c->n_chunks++] = (size_t)v;
            sum += (size_t)v;
            p = end + 1;
        }
    }
    free(lens);
    if (bad || sum != c->body.len || sum == 0) {
        fprintf(stderr, "qrm-bench tokenizer: %s: not one document length a line summing to %zu bytes\n",
                path, c->body.len);
        free_corpus(c);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- peer results */

typedef struct {
    int found;
    int batch_differs; /* the peer's encodeBatch gave other ids than its encode */
    double load_ms, mbps, mbps_batch;
    int64_t tokens, bytes;
    char hash[16];
} peer_result;

static qj_doc *load_peer(const char *path) {
    char err[256];
    size_t n;
    char *s = qrm_read_file(path, &n, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qrm-bench tokenizer: %s\n", err);
        return NULL;
    }
    qj_doc *d = qj_parse(s, n, err, sizeof err);
    free(s);
    if (!d) fprintf(stderr, "qrm-bench tokenizer: %s: %s\n", path, err);
    else if (!qj_get_type(qj_root(d), "results", QJ_ARRAY)) {
        fprintf(stderr, "qrm-bench tokenizer: %s: no \"results\" array\n", path);
        qj_free(d);
        d = NULL;
    }
    return d;
}

static peer_result find_peer(const qj_doc *d, const char *tok, const char *corp) {
    peer_result p = {0};
    if (!d) return p;
    const qj_value *res = qj_get_type(qj_root(d), "results", QJ_ARRAY);
    for (uint32_t i = 0; i < res->len; i++) {
        const qj_value *r = &res->u.items[i];
        const char *t = qj_get_str(r, "tokenizer"), *c = qj_get_str(r, "corpus"), *h;
        if (!t || !c || strcmp(t, tok) || strcmp(c, corp)) continue;
        p.found = 1;
        qj_get_num(r, "load_ms", &p.load_ms);
        qj_get_num(r, "mbps", &p.mbps);
        qj_get_num(r, "mbps_batch", &p.mbps_batch);
        qj_get_int(r, "tokens", &p.tokens);
        qj_get_int(r, "bytes", &p.bytes);
        if ((h = qj_get_str(r, "hash"))) snprintf(p.hash, sizeof p.hash, "%s", h);
        p.batch_differs = qj_get_type(r, "batch_ids_equal", QJ_FALSE) && !qj_get_bool(r, "batch_ids_equal", 1);
    }
    return p;
}

/* ---------------------------------------------------------------- measuring */

typedef struct {
    const char *tokenizer, *corpus;
    double load_ms;
    size_t bytes, chunks, tokens;
    char hash[16];
    double mbps, mtoks; /* best pass, by process CPU time */
    double mbps_wall;   /* best pass, by wall clock */
    int passes;
    peer_result peer;
} result;

/* One pass over every document; 0 or -1 with the message printed. */
static int encode_pass(const qrm_tokenizer *t, const corpus *c, size_t *tokens, uint32_t *hash) {
    char err[256];
    const char *at = c->body.data;
    size_t total = 0;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < c->n_chunks; i++) {
        int32_t *ids;
        size_t n;
        if (qrm_tokenizer_encode(t, at, c->chunk_len[i], 0, &ids, &n, err, sizeof err)) {
            fprintf(stderr, "qrm-bench tokenizer: %s document %zu: %s\n", c->name, i, err);
            return -1;
        }
        if (hash)
            for (size_t k = 0; k < n; k++) h = (h ^ (uint32_t)ids[k]) * 16777619u;
        total += n;
        free(ids);
        at += c->chunk_len[i];
    }
    if (tokens) *tokens = total;
    if (hash) *hash = h;
    return 0;
}

/* CPU seconds of the whole process. The peer measures the same thing
 * (process.cpuUsage()), which counts its JS thread and the worker thread
 * that runs the Rust encode, and neither side is charged for time spent
 * descheduled on a busy machine. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int measure(const qrm_tokenizer *t, const corpus *c, double seconds, result *r) {
    uint32_t h;
    if (encode_pass(t, c, &r->tokens, &h)) return -1; /* also the warm-up */
    snprintf(r->hash, sizeof r->hash, "%08x", h);
    r->bytes = c->body.len;
    r->chunks = c->n_chunks;
    double best = 1e30, best_wall = 1e30, start = cpu_seconds();
    r->passes = 0;
    do {
        double c0 = cpu_seconds(), w0 = qrm_now();
        if (encode_pass(t, c, NULL, NULL)) return -1;
        double dt = cpu_seconds() - c0, wall = qrm_now() - w0;
        if (dt < best) best = dt;
        if (wall < best_wall) best_wall = wall;
        r->passes++;
    } while (cpu_seconds() - start < seconds);
    r->mbps = (double)r->bytes / best / 1e6;
    r->mtoks = (double)r->tokens / best / 1e6;
    r->mbps_wall = (double)r->bytes / best_wall / 1e6;
    return 0;
}

static qrm_tokenizer *load_tokenizer(const char *dir, double *ms) {
    char path[4096], err[512];
    size_t n, cfg_n = 0;
    double t0 = cpu_seconds();
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    char *json = qrm_read_file(path, &n, err, sizeof err);
    if (!json) {
        fprintf(stderr, "qrm-bench tokenizer: %s\n", err);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *cfg = qrm_read_file(path, &cfg_n, err, sizeof err); /* optional */
    qrm_tokenizer *t = qrm_tokenizer_new(json, n, cfg, cfg_n, err, sizeof err);
    *ms = (cpu_seconds() - t0) * 1e3;
    if (!t) fprintf(stderr, "qrm-bench tokenizer: %s: %s\n", dir, err);
    free(json);
    free(cfg);
    return t;
}

/* "tests/data/tokenizers/qwen3/" -> "qwen3" (points into a static buffer). */
static const char *base_name(const char *dir) {
    static char names[MAX_TOKENIZERS][256];
    static int next;
    char *out = names[next++ % MAX_TOKENIZERS];
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(out, 256, "%.*s", (int)(n - b), dir + b);
    return out;
}

/* ---------------------------------------------------------------- report */

static void print_table(const result *r, int n, int have_peer) {
    printf("%-8s %-8s %7s %6s %9s %9s %9s %8s", "tok", "corpus", "MB", "docs", "load ms", "tokens",
           "qrm MB/s", "Mtok/s");
    if (have_peer) printf(" %9s %9s %9s %7s %9s %s", "HF load", "HF tokens", "HF MB/s", "HF b1",
                          "ratio", "ids");
    printf("\n");
    for (int i = 0; i < n; i++) {
        const result *x = &r[i];
        printf("%-8s %-8s %7.3f %6zu %9.1f %9zu %9.2f %8.3f", x->tokenizer, x->corpus, x->bytes / 1e6,
               x->chunks, x->load_ms, x->tokens, x->mbps, x->mtoks);
        if (have_peer && x->peer.found) {
            double hf = x->peer.mbps > x->peer.mbps_batch ? x->peer.mbps : x->peer.mbps_batch;
            int same = x->peer.tokens == (int64_t)x->tokens && !strcmp(x->peer.hash, x->hash);
            printf(" %9.1f %9lld %9.2f %7.2f %8.2fx %s", x->peer.load_ms, (long long)x->peer.tokens,
                   x->peer.mbps, x->peer.mbps_batch, hf > 0 ? x->mbps / hf : 0.0,
                   x->peer.bytes != (int64_t)x->bytes ? "other corpus bytes" : !same ? "DIFFER" : x->peer.batch_differs ? "equal (HF batch differs)" : "equal");
        } else if (have_peer) {
            printf("  (no peer result)");
        }
        printf("\n");
    }
    if (have_peer)
        printf("HF MB/s: one awaited encode() per document; HF b1: encodeBatch() of all documents "
               "with RAYON_NUM_THREADS=1;\nratio: qrm MB/s over the better of the two; ids: token "
               "count and id hash both equal\n");
}

static void print_json(const result *r, int n) {
    FILE *j = qrm_bench_json;
    fprintf(j, "{\"bench\":\"tokenizer\",\"results\":[");
    for (int i = 0; i < n; i++) {
        const result *x = &r[i];
        fprintf(j, "%s{\"tokenizer\":\"%s\",\"corpus\":\"%s\",\"bytes\":%zu,\"chunks\":%zu,\"load_ms\":%.1f,"
               "\"tokens\":%zu,\"hash\":\"%s\",\"mbps\":%.3f,\"mtok_s\":%.4f,\"mbps_wall\":%.3f,\"passes\":%d",
               i ? "," : "", x->tokenizer, x->corpus, x->bytes, x->chunks, x->load_ms, x->tokens,
               x->hash, x->mbps, x->mtoks, x->mbps_wall, x->passes);
        if (x->peer.found)
            fprintf(j, ",\"hf_load_ms\":%.1f,\"hf_tokens\":%lld,\"hf_hash\":\"%s\",\"hf_mbps\":%.3f,"
                   "\"hf_mbps_batch\":%.3f",
                   x->peer.load_ms, (long long)x->peer.tokens, x->peer.hash, x->peer.mbps,
                   x->peer.mbps_batch);
        fprintf(j, "}");
    }
    fprintf(j, "]}\n");
}

/* ---------------------------------------------------------------- entry */

enum { T_TOKENIZER, T_CORPUS, T_SECONDS, T_DATA, T_SRC, T_PEER, T_WRITE, T_READ, T_JSON, T_N };

int qrm_bench_tokenizer(int argc, char **argv) {
    static const cli_opt opts[T_N] = {
        [T_TOKENIZER] = {"--tokenizer", 0, CLI_STRING, "DIR", "the qwen3, llama3, gemma3 and mistral fixtures",
                         "a Hugging Face tokenizer folder", .many = 1},
        [T_CORPUS] = {"--corpus", 0, CLI_CHOICE, NULL, "all three", "a corpus", .choices = "english|code|cjk",
                      .many = 1},
        [T_SECONDS] = {"--seconds", 0, CLI_DOUBLE, "S", "1", "time per tokenizer and corpus", .dlo = 0, .dhi = 3600},
        [T_DATA] = {"--data", 0, CLI_STRING, "DIR", "tests/data", "the test data (fixtures, cases)"},
        [T_SRC] = {"--src", 0, CLI_STRING, "DIR", "core", "the C sources of the code corpus"},
        [T_PEER] = {"--peer", 0, CLI_STRING, "FILE", NULL, "Hugging Face tokenizers' figures to compare with"},
        [T_WRITE] = {"--write-corpus", 0, CLI_STRING, "DIR", NULL, "write the corpora there and stop",
                     .group = 1},
        [T_READ] = {"--read-corpus", 0, CLI_STRING, "DIR", NULL, "read the corpora from there", .group = 1},
        [T_JSON] = {"--json", 0, CLI_FLAG, NULL, NULL, "only JSON on stdout (the table goes to stderr)"},
    };
    static const cli_spec spec = {
        .prog = "qrm-bench tokenizer",
        .usage = "qrm-bench tokenizer [--tokenizer DIR ...] [--corpus english|code|cjk ...] [--seconds S]\n"
                 "[--data DIR] [--src DIR] [--read-corpus DIR] [--peer FILE] [--json]\n"
                 "qrm-bench tokenizer --write-corpus DIR [--data DIR] [--src DIR]",
        .about = "tokenizer throughput (MB/s, tokens/s) on three corpora",
        .opts = opts, .n_opts = T_N};
    cli_val v[T_N];
    int pr = cli_parse(&spec, argc, argv, v, NULL, NULL);
    if (pr) return pr > 0 ? 0 : 2;
    if (v[T_TOKENIZER].count > MAX_TOKENIZERS || v[T_CORPUS].count > MAX_CORPORA) {
        cli_free(&spec, v);
        return cli_usage_error(&spec, "at most %d --tokenizer and %d --corpus", MAX_TOKENIZERS, MAX_CORPORA);
    }
    const char *dirs[MAX_TOKENIZERS], *want[MAX_CORPORA];
    int n_dirs = v[T_TOKENIZER].count, n_want = v[T_CORPUS].count, json = v[T_JSON].count > 0;
    for (int i = 0; i < n_dirs; i++) dirs[i] = v[T_TOKENIZER].all[i];
    for (int i = 0; i < n_want; i++) {
        const char *c = v[T_CORPUS].all[i];
        for (int k = 0; k < MAX_CORPORA; k++)
            if (!strcmp(c, corpus_names[k])) want[i] = corpus_names[k];
    }
    const char *data_dir = v[T_DATA].str ? v[T_DATA].str : "tests/data", *src_dir = v[T_SRC].str ? v[T_SRC].str : "core",
               *peer_path = v[T_PEER].str, *write_dir = v[T_WRITE].str, *read_dir = v[T_READ].str;
    double seconds = v[T_SECONDS].count ? v[T_SECONDS].d : 1.0;
    cli_free(&spec, v);
    if (n_want == 0)
        for (int i = 0; i < MAX_CORPORA; i++) want[n_want++] = corpus_names[i];

    corpus corpora[MAX_CORPORA];
    int n_corpora = 0, rc = 0;
    for (int i = 0; i < n_want && rc == 0; i++) {
        if (read_dir ? read_corpus(&corpora[n_corpora], want[i], read_dir)
                     : build_corpus(&corpora[n_corpora], want[i], data_dir, src_dir))
            rc = 1;
        else n_corpora++;
    }
    if (rc == 0 && write_dir) {
        for (int i = 0; i < n_corpora && rc == 0; i++) {
            if (write_corpus(&corpora[i], write_dir)) rc = 1;
            else printf("wrote %s/%s.txt: %zu bytes, %zu documents\n", write_dir, corpora[i].name,
                        corpora[i].body.len, corpora[i].n_chunks);
        }
    } else if (rc == 0) {
        static char default_dirs[4][256];
        static const char *const defaults[] = {"qwen3", "llama3", "gemma3", "mistral"};
        if (n_dirs == 0)
            for (int i = 0; i < 4; i++) {
                snprintf(default_dirs[i], sizeof default_dirs[i], "%s/tokenizers/%s", data_dir, defaults[i]);
                dirs[n_dirs++] = default_dirs[i];
            }
        qj_doc *peer = peer_path ? load_peer(peer_path) : NULL;
        if (peer_path && !peer) rc = 1;
        result *res = xrealloc(NULL, sizeof *res * (size_t)(n_dirs * n_corpora));
        int n_res = 0;
        for (int d = 0; d < n_dirs && rc == 0; d++) {
            double load_ms;
            qrm_tokenizer *t = load_tokenizer(dirs[d], &load_ms);
            const char *tok_name = base_name(dirs[d]); /* at most MAX_TOKENIZERS calls */
            if (!t) {
                rc = 1;
                break;
            }
            for (int c = 0; c < n_corpora && rc == 0; c++) {
                result *r = &res[n_res];
                memset(r, 0, sizeof *r);
                r->tokenizer = tok_name;
                r->corpus = corpora[c].name;
                r->load_ms = load_ms;
                if (measure(t, &corpora[c], seconds, r)) rc = 1;
                else {
                    r->peer = find_peer(peer, r->tokenizer, r->corpus);
                    n_res++;
                }
            }
            qrm_tokenizer_free(t);
        }
        if (n_res > 0) print_table(res, n_res, peer != NULL);
        if (n_res > 0 && json) print_json(res, n_res);
        free(res);
        qj_free(peer);
    }
    for (int i = 0; i < n_corpora; i++) free_corpus(&corpora[i]);
    return rc;
}
