/* Tokenizer tests: exact ids / decoded strings against the reference fixtures
 * in tests/data/tokenizers (produced by the Rust tokenizers library), error
 * handling, accessors, and an encoding-throughput report. */
#include "json.h"
#include "qrm.h"
#include "testutil.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKDIR TEST_DATA "/tokenizers"

static qrm_tokenizer *load_named(const char *name) {
    char path[256], cpath[256], err[256];
    snprintf(path, sizeof path, TOKDIR "/%s/tokenizer.json", name);
    snprintf(cpath, sizeof cpath, TOKDIR "/%s/tokenizer_config.json", name);
    size_t len, clen;
    char *json = tu_read_file(path, &len);
    char *cfg = tu_read_file(cpath, &clen);
    qrm_tokenizer *t = qrm_tokenizer_new(json, len, cfg, clen, err, sizeof err);
    ck_assert_msg(t != NULL, "%s: %s", name, err);
    free(json);
    free(cfg);
    return t;
}

/* Loaded once per process (each forked test loads what it uses). */
static qrm_tokenizer *tok(const char *name) {
    static const char *names[4] = {"qwen3", "llama3", "gemma3", "mistral"};
    static qrm_tokenizer *cache[4];
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            if (!cache[i]) cache[i] = load_named(name);
            return cache[i];
        }
    ck_abort_msg("unknown tokenizer %s", name);
    return NULL;
}

/* ---------------------------------------------------------------- fixtures */

static int ids_equal(const qj_value *want, const int32_t *got, size_t n) {
    if (!want || want->type != QJ_ARRAY || want->len != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (want->u.items[i].type != QJ_NUMBER || (int64_t)want->u.items[i].u.num != got[i]) return 0;
    return 1;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

typedef struct {
    qrm_tokenizer *t;
    const char *name;
    int chat; /* chat.jsonl: encode "rendered", compare "ids" */
    int lines, ok_ids, ok_special, ok_decoded, shown;
} case_run;

static void check_line(const char *line, size_t len, void *arg) {
    case_run *r = arg;
    char err[256];
    qj_doc *doc = qj_parse(line, len, err, sizeof err);
    ck_assert_msg(doc != NULL, "%s line %d: %s", r->name, r->lines + 1, err);
    const qj_value *root = qj_root(doc);
    const qj_value *text = qj_get_type(root, r->chat ? "rendered" : "text", QJ_STRING);
    ck_assert(text != NULL);
    r->lines++;
    int32_t *ids;
    size_t n;
    int rc = qrm_tokenizer_encode(r->t, text->u.str, text->len, 0, &ids, &n, err, sizeof err);
    ck_assert_msg(rc == QRM_OK, "%s line %d: %s", r->name, r->lines, err);
    int good = ids_equal(qj_get(root, "ids"), ids, n);
    r->ok_ids += good;
    if (!good && r->shown++ < 5) {
        fprintf(stderr, "%s line %d ids differ for %.*s\n", r->name, r->lines,
                (int)(text->len > 200 ? 200 : text->len), text->u.str);
        print_ids("got", ids, n);
    }
    if (!r->chat) {
        int32_t *ids2;
        size_t n2;
        rc = qrm_tokenizer_encode(r->t, text->u.str, text->len, 1, &ids2, &n2, err, sizeof err);
        ck_assert_msg(rc == QRM_OK, "%s line %d: %s", r->name, r->lines, err);
        good = ids_equal(qj_get(root, "ids_special"), ids2, n2);
        r->ok_special += good;
        if (!good && r->shown++ < 5) fprintf(stderr, "%s line %d ids_special differ\n", r->name, r->lines);
        free(ids2);
        /* decode the reference ids, so that a decode bug shows on its own */
        const qj_value *want_ids = qj_get_type(root, "ids", QJ_ARRAY);
        const qj_value *want = qj_get_type(root, "decoded", QJ_STRING);
        ck_assert(want_ids && want);
        int32_t *ref = malloc((want_ids->len + 1) * sizeof *ref);
        for (uint32_t i = 0; i < want_ids->len; i++) ref[i] = (int32_t)want_ids->u.items[i].u.num;
        char *out;
        size_t out_len;
        rc = qrm_tokenizer_decode(r->t, ref, want_ids->len, 0, &out, &out_len, err, sizeof err);
        ck_assert_msg(rc == QRM_OK, "%s line %d: %s", r->name, r->lines, err);
        good = out_len == want->len && !memcmp(out, want->u.str, out_len);
        r->ok_decoded += good;
        if (!good && r->shown++ < 5)
            fprintf(stderr, "%s line %d decoded differs: got \"%.*s\" want \"%.*s\"\n", r->name,
                    r->lines, (int)(out_len > 200 ? 200 : out_len), out,
                    (int)(want->len > 200 ? 200 : want->len), want->u.str);
        free(out);
        free(ref);
    }
    free(ids);
    qj_free(doc);
}

static void run_cases(const char *name) {
    char path[256];
    snprintf(path, sizeof path, TOKDIR "/%s/cases.jsonl", name);
    case_run r = {.t = tok(name), .name = name};
    tu_for_each_line(path, check_line, &r);
    printf("%s cases.jsonl: ids %d/%d, ids_special %d/%d, decoded %d/%d\n", name, r.ok_ids,
           r.lines, r.ok_special, r.lines, r.ok_decoded, r.lines);
    ck_assert_int_eq(r.lines, 301);
    ck_assert_int_eq(r.ok_ids, r.lines);
    ck_assert_int_eq(r.ok_special, r.lines);
    ck_assert_int_eq(r.ok_decoded, r.lines);
}

static void run_chat(const char *name) {
    char path[256];
    snprintf(path, sizeof path, TOKDIR "/%s/chat.jsonl", name);
    case_run r = {.t = tok(name), .name = name, .chat = 1};
    tu_for_each_line(path, check_line, &r);
    printf("%s chat.jsonl: ids %d/%d\n", name, r.ok_ids, r.lines);
    ck_assert_int_eq(r.lines, 44);
    ck_assert_int_eq(r.ok_ids, r.lines);
}

START_TEST(qwen3_cases) { run_cases("qwen3"); }
END_TEST
START_TEST(qwen3_chat) { run_chat("qwen3"); }
END_TEST
START_TEST(llama3_cases) { run_cases("llama3"); }
END_TEST
START_TEST(llama3_chat) { run_chat("llama3"); }
END_TEST
START_TEST(gemma3_cases) { run_cases("gemma3"); }
END_TEST
START_TEST(gemma3_chat) { run_chat("gemma3"); }
END_TEST
START_TEST(mistral_cases) { run_cases("mistral"); }
END_TEST

/* ---------------------------------------------------------------- errors */

static void expect_encode_error(qrm_tokenizer *t, const char *text, size_t len, const char *needle) {
    char err[256] = "";
    int32_t *ids = (int32_t *)1;
    size_t n = 99;
    int rc = qrm_tokenizer_encode(t, text, len, 0, &ids, &n, err, sizeof err);
    ck_assert_int_eq(rc, QRM_ETEXT);
    ck_assert_ptr_null(ids);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err, needle) != NULL, "error '%s' does not mention '%s'", err, needle);
}

START_TEST(invalid_utf8) {
    qrm_tokenizer *t = tok("qwen3");
    expect_encode_error(t, "abc\xff", 4, "byte offset 3");
    expect_encode_error(t, "\xe4\xb8", 2, "byte offset 0");           /* truncated */
    expect_encode_error(t, "ok \xc0\xaf", 5, "byte offset 3");        /* overlong */
    expect_encode_error(t, "x\xed\xa0\x80y", 5, "byte offset 1");     /* surrogate */
    expect_encode_error(t, "\xf4\x90\x80\x80", 4, "byte offset 0");   /* > U+10FFFF */
}
END_TEST

/* A minimal tokenizer.json with one part replaced. */
static qrm_tokenizer *load_variant(const char *normalizer, const char *pre, const char *model,
                                   const char *decoder, char *err, size_t errlen) {
    char json[4096];
    snprintf(json, sizeof json,
             "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[],"
             "\"normalizer\":%s,\"pre_tokenizer\":%s,\"post_processor\":null,\"decoder\":%s,"
             "\"model\":%s}",
             normalizer, pre, decoder,
             model ? model
                   : "{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}");
    return qrm_tokenizer_new(json, strlen(json), NULL, 0, err, errlen);
}

static void expect_load_error(const char *normalizer, const char *pre, const char *model,
                              const char *decoder, const char *needle) {
    char err[256] = "";
    qrm_tokenizer *t = load_variant(normalizer, pre, model, decoder, err, sizeof err);
    ck_assert_msg(t == NULL, "loaded although '%s' is unsupported", needle);
    ck_assert_msg(strstr(err, needle) != NULL, "error '%s' does not mention '%s'", err, needle);
    ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: %s", err);
}

START_TEST(unsupported_features) {
    /* the baseline loads and works */
    char err[256];
    qrm_tokenizer *t = load_variant("null", "null", NULL, "null", err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(qrm_tokenizer_encode(t, "abab", 4, 1, &ids, &n, err, sizeof err), QRM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 2);
    ck_assert_int_eq(ids[1], 2);
    free(ids);
    qrm_tokenizer_free(t);

    expect_load_error("{\"type\":\"NFKC\"}", "null", NULL, "null",
                      "unsupported normalizer type 'NFKC'");
    expect_load_error("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\" \"}",
                      "null", NULL, "null", "Regex");
    expect_load_error("null", "{\"type\":\"Metaspace\",\"replacement\":\"_\"}", NULL, "null",
                      "unsupported pre_tokenizer type 'Metaspace'");
    expect_load_error("null",
                      "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},\"behavior\":\"Isolated\",\"invert\":false}",
                      NULL, "null", "unsupported Split regex '\\w+'");
    expect_load_error("null", "null", "{\"type\":\"Unigram\",\"vocab\":[]}", "null",
                      "unsupported model type 'Unigram'");
    expect_load_error("null", "null",
                      "{\"type\":\"BPE\",\"dropout\":0.1,\"vocab\":{\"a\":0},\"merges\":[]}", "null",
                      "dropout");
    expect_load_error("null", "null",
                      "{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a c\"]}", "null",
                      "not in the vocabulary");
    expect_load_error("null", "null", NULL, "{\"type\":\"CTC\"}", "unsupported decoder type 'CTC'");
}
END_TEST

START_TEST(garbage_json) {
    char err[256];
    size_t len;
    char *json = tu_read_file(TOKDIR "/qwen3/tokenizer.json", &len);
    static const size_t cuts[] = {0, 1, 100, 5000, 1000000};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        err[0] = 0;
        ck_assert_ptr_null(qrm_tokenizer_new(json, cuts[i], NULL, 0, err, sizeof err));
        ck_assert_msg(strncmp(err, "tokenizer.json", 14) == 0, "cut %zu: '%s'", cuts[i], err);
    }
    free(json);
    static const char *const bad[] = {"not json", "[1,2,3]", "{}", "{\"model\":3}",
                                      "{\"model\":{\"type\":\"BPE\"}}", "\"\\ud800\"",
                                      "{\"version\":\"2.0\",\"model\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ck_assert_ptr_null(qrm_tokenizer_new(bad[i], strlen(bad[i]), NULL, 0, err, sizeof err));
        ck_assert_msg(err[0] != 0, "no message for %s", bad[i]);
    }
    /* a broken tokenizer_config.json is reported as such */
    json = tu_read_file(TOKDIR "/mistral/tokenizer.json", &len);
    err[0] = 0;
    ck_assert_ptr_null(qrm_tokenizer_new(json, len, "{\"bos_token\":", 13, err, sizeof err));
    ck_assert_msg(strstr(err, "tokenizer_config.json") != NULL, "%s", err);
    free(json);
}
END_TEST

START_TEST(empty_and_long) {
    static const char *names[] = {"qwen3", "llama3", "gemma3", "mistral"};
    static const int32_t bos[] = {-1, 128000, 2, 1};
    char err[256];
    for (int k = 0; k < 4; k++) {
        qrm_tokenizer *t = tok(names[k]);
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(qrm_tokenizer_encode(t, "", 0, 0, &ids, &n, err, sizeof err), QRM_OK);
        ck_assert_ptr_nonnull(ids);
        ck_assert_uint_eq(n, 0);
        free(ids);
        ck_assert_int_eq(qrm_tokenizer_encode(t, NULL, 0, 1, &ids, &n, err, sizeof err), QRM_OK);
        ck_assert_uint_eq(n, bos[k] < 0 ? 0 : 1);
        if (bos[k] >= 0) ck_assert_int_eq(ids[0], bos[k]);
        free(ids);
        char *out;
        size_t olen;
        ck_assert_int_eq(qrm_tokenizer_decode(t, NULL, 0, 0, &out, &olen, err, sizeof err), QRM_OK);
        ck_assert_uint_eq(olen, 0);
        ck_assert_str_eq(out, "");
        free(out);

        /* 3000-character inputs of several shapes decode back to themselves
         * (mistral's decoder strips the leading space it prepended). */
        static const char *units[] = {"a", " ", "ab ", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "1",
                                      "\n", "<", "'s"};
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t ul = strlen(units[u]);
            char *text = malloc(3000 * ul + 1);
            for (int i = 0; i < 3000; i++) memcpy(text + i * ul, units[u], ul);
            size_t tl = 3000 * ul;
            ck_assert_int_eq(qrm_tokenizer_encode(t, text, tl, 0, &ids, &n, err, sizeof err), QRM_OK);
            ck_assert(n > 0 && n <= tl + 1);
            ck_assert_int_eq(qrm_tokenizer_decode(t, ids, n, 0, &out, &olen, err, sizeof err), QRM_OK);
            ck_assert_msg(olen == tl && !memcmp(out, text, tl), "%s: 3000 x '%s' does not round-trip",
                          names[k], units[u]);
            free(out);
            free(ids);
            free(text);
        }
    }
}
END_TEST

/* Random valid UTF-8 (many scripts, controls, NUL, specials' pieces): never
 * fails, and byte-level tokenizers without a normalizer round-trip exactly. */
START_TEST(random_text_roundtrip) {
    static const uint32_t pool[] = {'a', 'Z', ' ', ' ', '\n', '\r', '\t', '0', '7', '\'', 's',
                                    '<', '|', '>', '_', 0, 0x85, 0xA0, 0xE9, 0x301, 0x3000,
                                    0x4E2D, 0x1F600, 0x200D, 0xFE0F, 0x10FFFD, 0x2581, 0x5D0,
                                    0x661, 0xFFFD, 0x17F, 0x1F1FA};
    char err[256];
    srand(12345);
    qrm_tokenizer *t = tok("llama3");
    for (int iter = 0; iter < 200; iter++) {
        char text[4096];
        size_t tl = 0;
        int nchars = rand() % 300;
        for (int i = 0; i < nchars; i++) {
            uint32_t cp = pool[rand() % (sizeof pool / sizeof pool[0])];
            if (cp < 0x80) text[tl++] = (char)cp;
            else if (cp < 0x800) {
                text[tl++] = (char)(0xC0 | (cp >> 6));
                text[tl++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                text[tl++] = (char)(0xE0 | (cp >> 12));
                text[tl++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                text[tl++] = (char)(0x80 | (cp & 0x3F));
            } else {
                text[tl++] = (char)(0xF0 | (cp >> 18));
                text[tl++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                text[tl++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                text[tl++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(qrm_tokenizer_encode(t, text, tl, 0, &ids, &n, err, sizeof err), QRM_OK);
        char *out;
        size_t olen;
        ck_assert_int_eq(qrm_tokenizer_decode(t, ids, n, 0, &out, &olen, err, sizeof err), QRM_OK);
        ck_assert_msg(olen == tl && !memcmp(out, text, tl), "iteration %d does not round-trip", iter);
        free(out);
        free(ids);
        static const char *others[] = {"qwen3", "gemma3", "mistral"};
        for (int k = 0; k < 3; k++) {
            ck_assert_int_eq(qrm_tokenizer_encode(tok(others[k]), text, tl, 1, &ids, &n, err, sizeof err),
                             QRM_OK);
            free(ids);
        }
    }
}
END_TEST

/* ---------------------------------------------------------------- accessors */

START_TEST(accessors) {
    qrm_tokenizer *q = tok("qwen3"), *l = tok("llama3"), *g = tok("gemma3"), *m = tok("mistral");
    ck_assert_uint_eq(qrm_tokenizer_vocab_size(q), 151669);
    ck_assert_uint_eq(qrm_tokenizer_vocab_size(l), 128256);
    ck_assert_uint_eq(qrm_tokenizer_vocab_size(g), 262145);
    ck_assert_uint_eq(qrm_tokenizer_vocab_size(m), 32000);
    ck_assert_int_eq(qrm_tokenizer_bos_id(q), -1);
    ck_assert_ptr_null(qrm_tokenizer_bos_token(q));
    ck_assert_int_eq(qrm_tokenizer_bos_id(l), 128000);
    ck_assert_str_eq(qrm_tokenizer_bos_token(l), "<|begin_of_text|>");
    ck_assert_int_eq(qrm_tokenizer_bos_id(g), 2);
    ck_assert_int_eq(qrm_tokenizer_bos_id(m), 1);
    ck_assert_str_eq(qrm_tokenizer_eos_token(q), "<|im_end|>");
    ck_assert_str_eq(qrm_tokenizer_eos_token(l), "<|eot_id|>");
    ck_assert_str_eq(qrm_tokenizer_eos_token(g), "<end_of_turn>");
    ck_assert_str_eq(qrm_tokenizer_eos_token(m), "</s>");
    ck_assert_str_eq(qrm_tokenizer_config_token(q, "pad_token"), "<|endoftext|>");
    ck_assert_ptr_null(qrm_tokenizer_config_token(m, "pad_token"));
    ck_assert_str_eq(qrm_tokenizer_config_token(g, "unk_token"), "<unk>");
    ck_assert_ptr_null(qrm_tokenizer_config_token(g, "no_such_token"));
    ck_assert_uint_eq(qrm_tokenizer_n_additional_special(q), 13);
    ck_assert_str_eq(qrm_tokenizer_additional_special(q, 0), "<|im_start|>");
    ck_assert_ptr_null(qrm_tokenizer_additional_special(q, 13));
    ck_assert_uint_eq(qrm_tokenizer_n_additional_special(m), 0);
    ck_assert_ptr_nonnull(qrm_tokenizer_chat_template(q));
    ck_assert_ptr_nonnull(strstr(qrm_tokenizer_chat_template(q), "<|im_start|>"));
    ck_assert_ptr_nonnull(qrm_tokenizer_chat_template(l));
    ck_assert_ptr_nonnull(strstr(qrm_tokenizer_chat_template(g), "<start_of_turn>"));
    ck_assert_ptr_null(qrm_tokenizer_chat_template(m));
    size_t len;
    const char *s = qrm_tokenizer_id_to_token(m, 22557, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(len, 8);
    ck_assert(!memcmp(s, "\xe2\x96\x81Hello", 8));
    ck_assert_int_eq(qrm_tokenizer_token_to_id(m, "\xe2\x96\x81Hello", 8), 22557);
    ck_assert_int_eq(qrm_tokenizer_token_to_id(q, "<|im_end|>", 10), 151645);
    ck_assert_int_eq(qrm_tokenizer_token_to_id(q, "no such token", 13), -1);
    ck_assert_ptr_null(qrm_tokenizer_id_to_token(q, -5, &len));
    ck_assert_ptr_null(qrm_tokenizer_id_to_token(q, 999999, &len));
    ck_assert(qrm_tokenizer_is_special(q, 151645));
    ck_assert(!qrm_tokenizer_is_special(q, 151667)); /* <think> is added, not special */
    ck_assert(!qrm_tokenizer_is_special(q, 9707));
    ck_assert(qrm_tokenizer_is_special(g, 2));
}
END_TEST

START_TEST(decode_skip_special_and_bad_ids) {
    qrm_tokenizer *q = tok("qwen3");
    char err[256];
    int32_t *ids;
    size_t n;
    const char *text = "<|im_start|>user\nHi<think>x</think><|im_end|>";
    ck_assert_int_eq(qrm_tokenizer_encode(q, text, strlen(text), 0, &ids, &n, err, sizeof err), QRM_OK);
    char *out;
    size_t olen;
    ck_assert_int_eq(qrm_tokenizer_decode(q, ids, n, 1, &out, &olen, err, sizeof err), QRM_OK);
    ck_assert_str_eq(out, "user\nHi<think>x</think>");
    free(out);
    /* ids naming no token are skipped, like the library */
    int32_t mixed[] = {9707, -1, 99999999, 1879};
    ck_assert_int_eq(qrm_tokenizer_decode(q, mixed, 4, 0, &out, &olen, err, sizeof err), QRM_OK);
    ck_assert_str_eq(out, "Hello world");
    free(out);
    free(ids);
    /* byte-fallback pieces that are not valid UTF-8 become U+FFFD each */
    qrm_tokenizer *m = tok("mistral");
    int32_t partial[] = {3, 0xE4 + 3, 0xB8 + 3};  /* <0x00> <0xE4> <0xB8> */
    ck_assert_int_eq(qrm_tokenizer_decode(m, partial, 3, 0, &out, &olen, err, sizeof err), QRM_OK);
    ck_assert_uint_eq(olen, 9);
    ck_assert(!memcmp(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9));
    free(out);
}
END_TEST

/* The tiny model fixtures carry a GPT-2 style ByteLevel(use_regex) tokenizer. */
START_TEST(tiny_model_tokenizers) {
    static const char *dirs[] = {"gemma2-tiny", "llama3-tiny", "qwen3-tiny"};
    for (int k = 0; k < 3; k++) {
        char path[256], cpath[256], err[256];
        snprintf(path, sizeof path, TEST_DATA "/models/%s/tokenizer.json", dirs[k]);
        snprintf(cpath, sizeof cpath, TEST_DATA "/models/%s/tokenizer_config.json", dirs[k]);
        size_t len, clen;
        char *json = tu_read_file(path, &len), *cfg = tu_read_file(cpath, &clen);
        qrm_tokenizer *t = qrm_tokenizer_new(json, len, cfg, clen, err, sizeof err);
        ck_assert_msg(t != NULL, "%s: %s", dirs[k], err);
        ck_assert_uint_eq(qrm_tokenizer_vocab_size(t), 320);
        ck_assert_int_eq(qrm_tokenizer_bos_id(t), 316);
        const char *text = "<|begin_of_text|>user: it's 2 + 2<|eot_id|>  x\n";
        int32_t *ids;
        size_t n;
        ck_assert_int_eq(qrm_tokenizer_encode(t, text, strlen(text), 0, &ids, &n, err, sizeof err), QRM_OK);
        ck_assert_int_eq(ids[0], 316);
        char *out;
        size_t olen;
        ck_assert_int_eq(qrm_tokenizer_decode(t, ids, n, 0, &out, &olen, err, sizeof err), QRM_OK);
        ck_assert_str_eq(out, text);
        free(out);
        free(ids);
        free(json);
        free(cfg);
        qrm_tokenizer_free(t);
    }
}
END_TEST

/* Features the fixture tokenizers do not use, on the tiny model tokenizer
 * patched by text substitution. The expected ids and strings were produced by
 * the reference (Rust tokenizers 0.22.2 through @anush008/tokenizers 0.6.0)
 * on the same patched files. */
typedef struct {
    const char *text;
    int32_t ids[40];
    size_t n;
    const char *decoded;
} ref_case;

static char *patched_tiny(const char *find, const char *replace) {
    size_t len;
    char *base = tu_read_file(TEST_DATA "/models/llama3-tiny/tokenizer.json", &len);
    char *at = strstr(base, find);
    ck_assert_msg(at != NULL, "patch anchor not found");
    size_t fl = strlen(find), rl = strlen(replace);
    char *out = malloc(len - fl + rl + 1);
    memcpy(out, base, (size_t)(at - base));
    memcpy(out + (at - base), replace, rl);
    strcpy(out + (at - base) + rl, at + fl);
    free(base);
    return out;
}

static void check_ref_cases(const char *json, const ref_case *cases, size_t ncases) {
    char err[256];
    qrm_tokenizer *t = qrm_tokenizer_new(json, strlen(json), NULL, 0, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    for (size_t c = 0; c < ncases; c++) {
        int32_t *ids;
        size_t n;
        const ref_case *rc = &cases[c];
        ck_assert_int_eq(qrm_tokenizer_encode(t, rc->text, strlen(rc->text), 0, &ids, &n, err, sizeof err), QRM_OK);
        if (n != rc->n || memcmp(ids, rc->ids, n * sizeof *ids)) print_ids("got", ids, n);
        ck_assert_msg(n == rc->n && !memcmp(ids, rc->ids, n * sizeof *ids), "ids differ for \"%s\"", rc->text);
        char *out;
        size_t olen;
        ck_assert_int_eq(qrm_tokenizer_decode(t, ids, n, 0, &out, &olen, err, sizeof err), QRM_OK);
        ck_assert_str_eq(out, rc->decoded);
        free(out);
        free(ids);
    }
    qrm_tokenizer_free(t);
}

START_TEST(added_token_flags) {
    /* <L> lstrip, <R> rstrip, "hi" single_word, " you" normalized (after NFC) */
    char *json = patched_tiny(
        "\"special\": true\n  }\n ],\n \"normalizer\": null,",
        "\"special\": true\n  },\n"
        "  {\"id\":320,\"content\":\"<L>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":false,\"normalized\":false,\"special\":true},\n"
        "  {\"id\":321,\"content\":\"<R>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":false,\"special\":false},\n"
        "  {\"id\":322,\"content\":\"hi\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false},\n"
        "  {\"id\":323,\"content\":\" you\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false}\n"
        " ],\n \"normalizer\": {\"type\":\"NFC\"},");
    static const ref_case cases[] = {
        {"a  <L>  b", {97, 320, 32, 307}, 4, "a<L>  b"},
        {"x<R>   y<R>", {120, 321, 121, 321}, 4, "x<R>y<R>"},
        {"hi there", {322, 259, 258}, 3, "hi there"},
        {"this hi", {116, 104, 266, 32, 322}, 5, "this hi"},
        {"ohi hi_", {111, 104, 105, 277, 105, 95}, 6, "ohi hi_"},
        {"hi", {322}, 1, "hi"},
        {" you you", {323, 323}, 2, " you you"},
        {"<L><R>", {320, 321}, 2, "<L><R>"},
        {"  <L>", {320}, 1, "<L>"},
        {"<R>\n\n", {321}, 1, "<R>"},
        {"he\xcc\x81llo you<L>hi", {104, 195, 169, 108, 108, 111, 323, 320, 322}, 9, "h\xc3\xa9llo you<L>hi"},
    };
    check_ref_cases(json, cases, sizeof cases / sizeof cases[0]);
    free(json);
}
END_TEST

START_TEST(split_merged_with_previous_and_prefix_space) {
    char *json = patched_tiny(
        "\"pre_tokenizer\": {\n  \"type\": \"ByteLevel\",\n  \"add_prefix_space\": false,\n"
        "  \"trim_offsets\": true,\n  \"use_regex\": true\n },",
        "\"pre_tokenizer\": {\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
        "{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "
        "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        "\"behavior\":\"MergedWithPrevious\",\"invert\":false},{\"type\":\"ByteLevel\","
        "\"add_prefix_space\":true,\"trim_offsets\":false,\"use_regex\":false}]},");
    static const ref_case cases[] = {
        {"Hello world  it's 123456 ok\n\n x",
         {32, 72, 101, 108, 108, 111, 270, 111, 114, 108, 100, 32, 32, 287, 32, 39, 115, 32, 32,
          49, 50, 51, 32, 52, 53, 54, 309, 107, 32, 10, 10, 32, 120},
         33, " Hello world  it 's  123 456 ok \n\n x"},
        {"  a", {32, 32, 97}, 3, "  a"},
        {"'S'sup", {32, 39, 83, 32, 39, 115, 32, 117, 112}, 9, " 'S 's up"},
        {"tab\there\r\nnext", {257, 97, 98, 32, 9, 256, 258, 32, 13, 10, 32, 110, 101, 120, 116}, 15,
         " tab \there \r\n next"},
    };
    check_ref_cases(json, cases, sizeof cases / sizeof cases[0]);
    free(json);
}
END_TEST

/* ---------------------------------------------------------------- throughput */

/* Collects the texts of some categories of cases.jsonl into one buffer. */
typedef struct {
    const char *const *cats;
    char *buf;
    size_t len, cap;
} corpus;

static void collect_line(const char *line, size_t len, void *arg) {
    corpus *c = arg;
    char err[256];
    qj_doc *doc = qj_parse(line, len, err, sizeof err);
    ck_assert(doc != NULL);
    const char *cat = qj_get_str(qj_root(doc), "cat");
    const qj_value *text = qj_get_type(qj_root(doc), "text", QJ_STRING);
    for (int i = 0; cat && text && c->cats[i]; i++)
        if (!strcmp(cat, c->cats[i])) {
            if (c->len + text->len + 1 > c->cap) {
                c->cap = (c->len + text->len + 1) * 2;
                c->buf = realloc(c->buf, c->cap);
                ck_assert(c->buf != NULL);
            }
            memcpy(c->buf + c->len, text->u.str, text->len);
            c->len += text->len;
            c->buf[c->len++] = '\n';
        }
    qj_free(doc);
}

/* CPU time of this process: the tokenizer is single-threaded, and on a
 * shared machine wall time mostly measures waiting for a core. */
static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Reports MB/s (of CPU time); asserts only that repeated encodings agree.
 * Speed targets live in the benchmarks, not here. */
START_TEST(throughput) {
    static const char *const english[] = {"english", "documents", "contractions", NULL};
    static const char *const code[] = {"code", "math", "urls", NULL};
    static const char *const cjk[] = {"cjk", NULL};
    static const char *const *sets[] = {english, code, cjk};
    static const char *const set_names[] = {"english", "code", "cjk"};
    static const char *names[] = {"qwen3", "llama3", "gemma3", "mistral"};
    char err[256];
    for (int k = 0; k < 4; k++) {
        char path[256];
        snprintf(path, sizeof path, TOKDIR "/%s/cases.jsonl", names[k]);
        qrm_tokenizer *t = tok(names[k]);
        printf("%-8s", names[k]);
        for (int s = 0; s < 3; s++) {
            corpus c = {.cats = sets[s]};
            tu_for_each_line(path, collect_line, &c);
            ck_assert(c.len > 0);
            int32_t *first = NULL;
            size_t nfirst = 0, total = 0;
            double t0 = now_sec(), elapsed;
            int reps = 0;
            do {
                int32_t *ids;
                size_t n;
                ck_assert_int_eq(qrm_tokenizer_encode(t, c.buf, c.len, 0, &ids, &n, err, sizeof err), QRM_OK);
                if (!first) {
                    first = ids;
                    nfirst = n;
                } else {
                    ck_assert(n == nfirst && !memcmp(ids, first, n * sizeof *ids));
                    free(ids);
                }
                total += c.len;
                reps++;
                elapsed = now_sec() - t0;
            } while (elapsed < 0.2 || reps < 3);
            printf("  %s %.1f MB/s (%zu KB, %zu tokens)", set_names[s], total / elapsed / 1e6,
                   c.len / 1024, nfirst);
            free(first);
            free(c.buf);
        }
        printf("\n");
    }
}
END_TEST

START_TEST(load_time) {
    size_t len, clen;
    char *json = tu_read_file(TOKDIR "/gemma3/tokenizer.json", &len);
    char *cfg = tu_read_file(TOKDIR "/gemma3/tokenizer_config.json", &clen);
    char err[256];
    double t0 = now_sec();
    qrm_tokenizer *t = qrm_tokenizer_new(json, len, cfg, clen, err, sizeof err);
    double el = now_sec() - t0;
    ck_assert_msg(t != NULL, "%s", err);
    printf("gemma3 tokenizer.json (%.1f MB) loaded in %.3f s of CPU time\n", len / 1e6, el);
    qrm_tokenizer_free(t);
    free(json);
    free(cfg);
}
END_TEST

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, qwen3_cases);
    tcase_add_test(tc, qwen3_chat);
    tcase_add_test(tc, llama3_cases);
    tcase_add_test(tc, llama3_chat);
    tcase_add_test(tc, mistral_cases);
    tcase_add_test(tc, gemma3_cases);
    tcase_add_test(tc, gemma3_chat);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_set_timeout(te, 300);
    tcase_add_test(te, invalid_utf8);
    tcase_add_test(te, unsupported_features);
    tcase_add_test(te, garbage_json);
    tcase_add_test(te, empty_and_long);
    tcase_add_test(te, random_text_roundtrip);
    suite_add_tcase(s, te);
    TCase *ta = tcase_create("api");
    tcase_set_timeout(ta, 300);
    tcase_add_test(ta, accessors);
    tcase_add_test(ta, decode_skip_special_and_bad_ids);
    tcase_add_test(ta, tiny_model_tokenizers);
    tcase_add_test(ta, added_token_flags);
    tcase_add_test(ta, split_merged_with_previous_and_prefix_space);
    tcase_add_test(ta, load_time);
    tcase_add_test(ta, throughput);
    suite_add_tcase(s, ta);
    return s;
}

int main(void) { return tu_run(tokenizer_suite()); }
