/* gen_unicode_tables: writes core/text/unicode_tables.c, the Unicode data the
 * tokenizer needs (character classes for the pre-tokenizer split patterns and
 * the canonical decomposition / composition data for NFC).
 *
 * Dev-time tool, not part of the library. Usage, from the repository root on a
 * Debian machine with the package unicode-data installed:
 *
 *     cc -std=c11 -O2 -Wall -Wextra -o /tmp/gen_unicode_tables tools/gen_unicode_tables.c
 *     /tmp/gen_unicode_tables /usr/share/unicode > core/text/unicode_tables.c
 *
 * It reads, from the given directory:
 *   UnicodeData.txt              general category, canonical combining class,
 *                                decomposition mappings
 *   PropList.txt                 White_Space, Join_Control
 *   DerivedCoreProperties.txt    Alphabetic
 *   DerivedNormalizationProps.txt NFC_QC, Full_Composition_Exclusion (which
 *                                already contains CompositionExclusions.txt
 *                                plus singletons and non-starter decompositions)
 *   CompositionExclusions.txt    only to cross-check the line above
 *
 * What it writes (names declared in core/text/unicode.h):
 *   qrm_uni_flags_*   two-stage table, code point -> QRM_UNI_* flag byte
 *   qrm_uni_ccc_*     two-stage table, code point -> canonical combining class
 *   qrm_uni_decomp_*  full (recursive) canonical decompositions, sorted by
 *                     code point; Hangul syllables are left to the algorithm
 *   qrm_uni_comp_*    primary composites: (first << 21 | second) -> composite,
 *                     sorted, without Full_Composition_Exclusion characters
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCP 0x110000
#define BLOCK 256

/* Keep in sync with core/text/unicode.h. */
#define F_L 0x01
#define F_N 0x02
#define F_WS 0x04
#define F_WORD 0x08
#define F_NFC_QC 0x10

static uint8_t flags[NCP];
static uint8_t ccc[NCP];
static uint8_t is_mark[NCP], is_nd[NCP], is_pc[NCP];
static uint8_t excluded[NCP];
static int32_t decomp_off[NCP]; /* -1: none; else index into raw_decomp */
static uint8_t decomp_len[NCP];
static uint32_t raw_decomp[8192];
static int n_raw;

static FILE *open_in(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "gen_unicode_tables: cannot open %s\n", path);
        exit(1);
    }
    return f;
}

/* Parses "XXXX" or "XXXX..YYYY" at the start of a property-file line. */
static int parse_range(const char *line, uint32_t *lo, uint32_t *hi) {
    char *end;
    unsigned long a = strtoul(line, &end, 16);
    if (end == line) return 0;
    unsigned long b = a;
    if (end[0] == '.' && end[1] == '.') b = strtoul(end + 2, &end, 16);
    if (a >= NCP || b >= NCP || b < a) return 0;
    *lo = (uint32_t)a;
    *hi = (uint32_t)b;
    return 1;
}

/* The property name after the first ';', trimmed. */
static void field2(const char *line, char *out, size_t n) {
    const char *p = strchr(line, ';');
    out[0] = 0;
    if (!p) return;
    p++;
    while (*p == ' ') p++;
    size_t i = 0;
    while (*p && *p != ';' && *p != '#' && *p != '\n' && i + 1 < n) out[i++] = *p++;
    while (i > 0 && out[i - 1] == ' ') i--;
    out[i] = 0;
}

static void set_category(uint32_t cp, const char *gc) {
    if (gc[0] == 'L') flags[cp] |= F_L;
    if (gc[0] == 'N') flags[cp] |= F_N;
    if (gc[0] == 'M') is_mark[cp] = 1;
    if (!strcmp(gc, "Nd")) is_nd[cp] = 1;
    if (!strcmp(gc, "Pc")) is_pc[cp] = 1;
}

static void read_unicode_data(const char *dir) {
    FILE *f = open_in(dir, "UnicodeData.txt");
    char line[1024];
    uint32_t range_first = 0;
    int in_range = 0;
    for (uint32_t i = 0; i < NCP; i++) decomp_off[i] = -1;
    while (fgets(line, sizeof line, f)) {
        char *fld[15];
        int nf = 0;
        char *p = line;
        fld[nf++] = p;
        while (*p && nf < 15) {
            if (*p == ';') {
                *p = 0;
                fld[nf++] = p + 1;
            }
            p++;
        }
        if (nf < 6) continue;
        uint32_t cp = (uint32_t)strtoul(fld[0], NULL, 16);
        if (cp >= NCP) continue;
        const char *name = fld[1], *gc = fld[2];
        int cc = atoi(fld[3]);
        if (strstr(name, ", First>")) {
            range_first = cp;
            in_range = 1;
            continue;
        }
        uint32_t lo = cp;
        if (in_range && strstr(name, ", Last>")) lo = range_first;
        in_range = 0;
        for (uint32_t c = lo; c <= cp; c++) {
            set_category(c, gc);
            ccc[c] = (uint8_t)cc;
        }
        const char *d = fld[5];
        if (*d && *d != '<') { /* canonical mapping (compatibility ones start with <tag>) */
            decomp_off[cp] = n_raw;
            char *e;
            while (*d) {
                unsigned long v = strtoul(d, &e, 16);
                if (e == d) break;
                if (n_raw >= (int)(sizeof raw_decomp / sizeof raw_decomp[0])) {
                    fprintf(stderr, "gen_unicode_tables: raw decomposition pool full\n");
                    exit(1);
                }
                raw_decomp[n_raw++] = (uint32_t)v;
                decomp_len[cp]++;
                d = e;
                while (*d == ' ') d++;
            }
        }
    }
    fclose(f);
}

static void read_binary_prop(const char *dir, const char *file, const char *prop,
                             void (*set)(uint32_t)) {
    FILE *f = open_in(dir, file);
    char line[1024], name[128];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        uint32_t lo, hi;
        if (!parse_range(line, &lo, &hi)) continue;
        field2(line, name, sizeof name);
        if (strcmp(name, prop)) continue;
        for (uint32_t c = lo; c <= hi; c++) set(c);
        seen = 1;
    }
    fclose(f);
    if (!seen) {
        fprintf(stderr, "gen_unicode_tables: no %s in %s\n", prop, file);
        exit(1);
    }
}

static void set_ws(uint32_t c) { flags[c] |= F_WS; }
static void set_word(uint32_t c) { flags[c] |= F_WORD; }
static void set_excluded(uint32_t c) { excluded[c] = 1; }

/* NFC_QC lines have a third field: "0340..0341 ; NFC_QC; N". */
static void read_nfc_qc(const char *dir) {
    FILE *f = open_in(dir, "DerivedNormalizationProps.txt");
    char line[1024], name[128];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        uint32_t lo, hi;
        if (!parse_range(line, &lo, &hi)) continue;
        field2(line, name, sizeof name);
        if (strcmp(name, "NFC_QC")) continue;
        const char *v = strchr(strchr(line, ';') + 1, ';');
        if (!v) continue;
        v++;
        while (*v == ' ') v++;
        if (*v == 'N' || *v == 'M') {
            for (uint32_t c = lo; c <= hi; c++) flags[c] |= F_NFC_QC;
            seen = 1;
        }
    }
    fclose(f);
    if (!seen) {
        fprintf(stderr, "gen_unicode_tables: no NFC_QC values found\n");
        exit(1);
    }
}

static void check_composition_exclusions(const char *dir) {
    FILE *f = open_in(dir, "CompositionExclusions.txt");
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        uint32_t lo, hi;
        if (!parse_range(line, &lo, &hi)) continue;
        for (uint32_t c = lo; c <= hi; c++)
            if (!excluded[c]) {
                fprintf(stderr, "gen_unicode_tables: U+%04X excluded but not Full_Composition_Exclusion\n",
                        (unsigned)c);
                exit(1);
            }
    }
    fclose(f);
}

/* Full canonical decomposition of cp appended to out; returns the new length. */
static int full_decomp(uint32_t cp, uint32_t *out, int n) {
    if (decomp_off[cp] < 0) {
        out[n++] = cp;
        return n;
    }
    for (int i = 0; i < decomp_len[cp]; i++) n = full_decomp(raw_decomp[decomp_off[cp] + i], out, n);
    return n;
}

/* Two-stage table: stage1[cp >> 8] is a block number, stage2 holds unique blocks. */
static void emit_two_stage(const char *name, const uint8_t *data) {
    static uint16_t stage1[NCP / BLOCK];
    static uint8_t blocks[NCP];
    int nblocks = 0;
    for (int b = 0; b < NCP / BLOCK; b++) {
        const uint8_t *blk = data + (size_t)b * BLOCK;
        int found = -1;
        for (int k = 0; k < nblocks; k++)
            if (!memcmp(blocks + (size_t)k * BLOCK, blk, BLOCK)) {
                found = k;
                break;
            }
        if (found < 0) {
            memcpy(blocks + (size_t)nblocks * BLOCK, blk, BLOCK);
            found = nblocks++;
        }
        stage1[b] = (uint16_t)found;
    }
    printf("const uint16_t qrm_uni_%s_stage1[%d] = {", name, NCP / BLOCK);
    for (int b = 0; b < NCP / BLOCK; b++) printf("%s%u,", b % 24 ? "" : "\n", stage1[b]);
    printf("\n};\n\n");
    printf("const uint8_t qrm_uni_%s_stage2[%d] = {", name, nblocks * BLOCK);
    for (int i = 0; i < nblocks * BLOCK; i++) printf("%s%u,", i % 32 ? "" : "\n", blocks[i]);
    printf("\n};\n\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s /usr/share/unicode > core/text/unicode_tables.c\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    read_unicode_data(dir);
    read_binary_prop(dir, "PropList.txt", "White_Space", set_ws);
    read_binary_prop(dir, "PropList.txt", "Join_Control", set_word);
    read_binary_prop(dir, "DerivedCoreProperties.txt", "Alphabetic", set_word);
    read_binary_prop(dir, "DerivedNormalizationProps.txt", "Full_Composition_Exclusion",
                     set_excluded);
    read_nfc_qc(dir);
    check_composition_exclusions(dir);
    /* \w as the regex crate defines it: Alphabetic, M, Nd, Pc, Join_Control. */
    for (uint32_t c = 0; c < NCP; c++)
        if (is_mark[c] || is_nd[c] || is_pc[c]) flags[c] |= F_WORD;

    char version[128] = "unknown";
    {
        FILE *f = open_in(dir, "DerivedNormalizationProps.txt");
        char line[256];
        if (fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "Props-");
            const char *t = p ? strstr(p, ".txt") : NULL;
            if (p && t) {
                p += strlen("Props-"); /* "DerivedNormalizationProps-15.0.0.txt" */
                size_t n = (size_t)(t - p);
                if (n > 0 && n < sizeof version) {
                    memcpy(version, p, n);
                    version[n] = 0;
                }
            }
        }
        fclose(f);
    }

    printf("/* Generated by tools/gen_unicode_tables.c from the Unicode %s data files\n"
           " * (Debian package unicode-data). Do not edit; regenerate with:\n"
           " *   cc -std=c11 -O2 -o /tmp/gen_unicode_tables tools/gen_unicode_tables.c\n"
           " *   /tmp/gen_unicode_tables /usr/share/unicode > core/text/unicode_tables.c\n"
           " */\n",
           version);
    printf("#include \"unicode.h\"\n\n");
    printf("const char qrm_uni_version[] = \"%s\";\n\n", version);
    emit_two_stage("flags", flags);
    emit_two_stage("ccc", ccc);

    /* Decompositions (non-Hangul; UnicodeData lists none for Hangul syllables). */
    static uint32_t pool[16384];
    int npool = 0, nkeys = 0;
    printf("const uint32_t qrm_uni_decomp_cp[] = {");
    for (uint32_t c = 0; c < NCP; c++)
        if (decomp_off[c] >= 0) printf("%s0x%X,", nkeys++ % 12 ? "" : "\n", (unsigned)c);
    printf("\n};\n\nconst uint16_t qrm_uni_decomp_at[] = {");
    int k = 0;
    for (uint32_t c = 0; c < NCP; c++) {
        if (decomp_off[c] < 0) continue;
        uint32_t tmp[64];
        int n = full_decomp(c, tmp, 0);
        if (npool + n > (int)(sizeof pool / sizeof pool[0]) || n > 15) {
            fprintf(stderr, "gen_unicode_tables: decomposition pool overflow\n");
            return 1;
        }
        /* stored as offset << 4 | length in 16 bits */
        if (npool >= 4096) {
            fprintf(stderr, "gen_unicode_tables: decomposition offsets exceed 12 bits\n");
            return 1;
        }
        printf("%s0x%X,", k++ % 12 ? "" : "\n", (unsigned)(npool << 4 | n));
        memcpy(pool + npool, tmp, (size_t)n * sizeof tmp[0]);
        npool += n;
    }
    printf("\n};\n\nconst uint32_t qrm_uni_decomp_data[] = {");
    for (int i = 0; i < npool; i++) printf("%s0x%X,", i % 12 ? "" : "\n", (unsigned)pool[i]);
    printf("\n};\n\nconst int qrm_uni_decomp_count = %d;\n\n", nkeys);

    /* Primary composites: two-code-point canonical mappings not excluded. */
    int ncomp = 0;
    for (uint32_t c = 0; c < NCP; c++)
        if (decomp_off[c] >= 0 && decomp_len[c] == 2 && !excluded[c]) {
            ncomp++;
        }
    /* Sort by key (simple insertion into an array; a thousand entries). */
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)ncomp);
    uint32_t *vals = malloc(sizeof(uint32_t) * (size_t)ncomp);
    if (!keys || !vals) return 1;
    int m = 0;
    for (uint32_t c = 0; c < NCP; c++)
        if (decomp_off[c] >= 0 && decomp_len[c] == 2 && !excluded[c]) {
            uint64_t key = (uint64_t)raw_decomp[decomp_off[c]] << 21 | raw_decomp[decomp_off[c] + 1];
            int j = m++;
            while (j > 0 && keys[j - 1] > key) {
                keys[j] = keys[j - 1];
                vals[j] = vals[j - 1];
                j--;
            }
            keys[j] = key;
            vals[j] = c;
        }
    printf("const uint64_t qrm_uni_comp_key[] = {");
    for (int i = 0; i < ncomp; i++) printf("%s0x%llXull,", i % 6 ? "" : "\n", (unsigned long long)keys[i]);
    printf("\n};\n\nconst uint32_t qrm_uni_comp_value[] = {");
    for (int i = 0; i < ncomp; i++) printf("%s0x%X,", i % 12 ? "" : "\n", (unsigned)vals[i]);
    printf("\n};\n\nconst int qrm_uni_comp_count = %d;\n", ncomp);
    free(keys);
    free(vals);
    return 0;
}
