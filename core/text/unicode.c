/* NFC normalization (UAX #15) over the generated tables in unicode_tables.c.
 *
 * The input is split into segments that each start at a starter (ccc 0 and
 * NFC_QC Yes) so memory stays proportional to the longest segment's code
 * points, not to the whole text. Each segment is decomposed canonically
 * (Hangul by arithmetic), its combining marks are put in canonical order
 * (stable by ccc), and then recomposed with the usual "blocked" rule.
 */
#include "unicode.h"

#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Hangul syllable arithmetic (Unicode chapter 3.12). */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7 };
enum { LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int decomp_lookup(uint32_t cp, const uint32_t **seq) {
    int lo = 0, hi = qrm_uni_decomp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (qrm_uni_decomp_cp[mid] == cp) {
            unsigned at = qrm_uni_decomp_at[mid];
            *seq = qrm_uni_decomp_data + (at >> 4);
            return (int)(at & 15);
        }
        if (qrm_uni_decomp_cp[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE &&
        b < TBASE + TCOUNT)
        return a + (b - TBASE);
    uint64_t key = (uint64_t)a << 21 | b;
    int lo = 0, hi = qrm_uni_comp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (qrm_uni_comp_key[mid] == key) return qrm_uni_comp_value[mid];
        if (qrm_uni_comp_key[mid] < key) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

typedef struct {
    uint32_t *cp;
    size_t n, cap;
    int oom;
} cp_buf;

static void cp_push(cp_buf *b, uint32_t c) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        uint32_t *p = realloc(b->cp, cap * sizeof *p);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->cp = p;
        b->cap = cap;
    }
    b->cp[b->n++] = c;
}

static void decompose_into(cp_buf *b, uint32_t c) {
    if (c >= SBASE && c < SBASE + SCOUNT) {
        uint32_t s = c - SBASE;
        cp_push(b, LBASE + s / NCOUNT);
        cp_push(b, VBASE + (s % NCOUNT) / TCOUNT);
        if (s % TCOUNT) cp_push(b, TBASE + s % TCOUNT);
        return;
    }
    const uint32_t *seq;
    int n = decomp_lookup(c, &seq);
    if (n == 0) {
        cp_push(b, c);
        return;
    }
    for (int i = 0; i < n; i++) cp_push(b, seq[i]);
}

/* Stable sort of the non-starters c[0..n) by ccc. Short runs (the normal
 * case) use insertion sort; long ones a counting sort, so that a hostile run
 * of a million marks costs linear time. */
static int sort_marks(uint32_t *c, size_t n) {
    if (n < 2) return 0;
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t v = c[i];
            unsigned cc = qrm_uni_ccc(v);
            size_t j = i;
            while (j > 0 && qrm_uni_ccc(c[j - 1]) > cc) {
                c[j] = c[j - 1];
                j--;
            }
            c[j] = v;
        }
        return 0;
    }
    size_t count[257] = {0};
    uint32_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return -1;
    for (size_t i = 0; i < n; i++) count[qrm_uni_ccc(c[i]) + 1]++;
    for (int k = 1; k <= 256; k++) count[k] += count[k - 1];
    for (size_t i = 0; i < n; i++) tmp[count[qrm_uni_ccc(c[i])]++] = c[i];
    memcpy(c, tmp, n * sizeof *tmp);
    free(tmp);
    return 0;
}

/* Canonical ordering: each run of non-starters sorted by ccc, stably. */
static int canonical_order(uint32_t *c, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (qrm_uni_ccc(c[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && qrm_uni_ccc(c[j]) != 0) j++;
        if (sort_marks(c + i, j - i) != 0) return -1;
        i = j;
    }
    return 0;
}

/* Recomposes c[0..n) in place; returns the new length. */
static size_t compose(uint32_t *c, size_t n) {
    if (n == 0) return 0;
    size_t out = 0;
    long starter = -1; /* index in the output of the last starter */
    int last_cc = -1;  /* ccc of the last char after the starter; -1: none */
    for (size_t i = 0; i < n; i++) {
        uint32_t ch = c[i];
        int cc = (int)qrm_uni_ccc(ch);
        if (starter >= 0) {
            int blocked = last_cc != -1 && last_cc >= cc;
            if (!blocked) {
                uint32_t comp = compose_pair(c[starter], ch);
                if (comp) {
                    c[starter] = comp;
                    continue;
                }
            }
        }
        c[out] = ch;
        if (cc == 0) {
            starter = (long)out;
            last_cc = -1;
        } else {
            last_cc = cc;
        }
        out++;
    }
    return out;
}

/* A character where a new segment may begin: a starter that nothing before it
 * can compose with or reorder around (ccc 0 and NFC_QC Yes). */
static int is_safe_start(uint32_t cp) {
    return qrm_uni_ccc(cp) == 0 && !(qrm_uni_flags(cp) & QRM_UNI_NFC_QC);
}

int qrm_uni_is_nfc_quick(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned last_cc = 0;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            last_cc = 0;
            i++;
            continue;
        }
        uint32_t cp;
        int len = qrm_utf8_decode(u + i, n - i, &cp);
        if (len == 0) return 0;
        unsigned f = qrm_uni_flags(cp), cc = qrm_uni_ccc(cp);
        if (f & QRM_UNI_NFC_QC) return 0;
        if (cc != 0 && last_cc > cc) return 0;
        last_cc = cc;
        i += (size_t)len;
    }
    return 1;
}

int qrm_uni_nfc(const char *s, size_t n, char **out, size_t *out_len) {
    const unsigned char *u = (const unsigned char *)s;
    char *o = malloc(n * 3 + 1 + 16); /* NFC of UTF-8 grows at most 3x */
    if (!o) return -1;
    size_t olen = 0;
    cp_buf seg = {0};
    size_t i = 0;
    while (i < n) {
        /* Copy ASCII that is followed by ASCII straight through: nothing can
         * compose with it or reorder around it. */
        if (u[i] < 0x80 && (i + 1 == n || u[i + 1] < 0x80)) {
            o[olen++] = (char)u[i++];
            continue;
        }
        /* Collect one segment: this char plus everything up to the next safe start. */
        seg.n = 0;
        size_t j = i;
        int first = 1;
        while (j < n) {
            uint32_t cp;
            int len = qrm_utf8_decode(u + j, n - j, &cp);
            if (len == 0) { /* invalid input: the caller validates; copy as is */
                cp = 0xFFFD;
                len = 1;
            }
            if (!first && is_safe_start(cp)) break;
            decompose_into(&seg, cp);
            first = 0;
            j += (size_t)len;
        }
        if (seg.oom) {
            free(seg.cp);
            free(o);
            return -1;
        }
        if (canonical_order(seg.cp, seg.n) != 0) {
            free(seg.cp);
            free(o);
            return -1;
        }
        size_t m = compose(seg.cp, seg.n);
        for (size_t k = 0; k < m; k++) olen += (size_t)qrm_utf8_encode(seg.cp[k], o + olen);
        i = j;
    }
    free(seg.cp);
    o[olen] = 0;
    *out = o;
    *out_len = olen;
    return 0;
}
