/* The x86 kernel families, AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL, VNNI).
 *
 * Each family is split into files by job; a file's name says which ISA flags
 * it is compiled with (*_avx2.c or *_avx512.c, see the Makefile), so nothing
 * declared here may be called unless that family's CPU support was checked
 * (arch/dispatch.c does it, once).
 *
 * How the integer dot products stay exact (the reference sums are exact
 * int32, and every family must produce the very same integers):
 *
 *   AVX2 q8   vpmaddubsw multiplies u8 by s8 and adds pairs into a saturating
 *             int16. With u = |w| (0..128) and s = sign(a, w) (|a| <= 127)
 *             a pair is at most 2 * 128 * 127 = 32512 < 32767, so it never
 *             saturates; vpmaddwd by 1 widens it to int32 right away.
 *   AVX2 q4   the stored nibble u = w + 8 (0..15) is already unsigned: a pair
 *             is at most 2 * 15 * 127 = 3810, so the 8 vpmaddubsw of a group
 *             add up in int16 (8 * 3810 = 30480 < 32767) and are widened once
 *             per group. sum(u * a) = sum(w * a) + 8 * s, s = sum(a).
 *   AVX-512   vpdpbusd (u8 x s8, 4 products into int32, no saturation):
 *             q8 weights xor 0x80 become u = w + 128, q4 nibbles are u = w + 8;
 *             the accumulator starts at -128 * s (or -8 * s).
 *
 * Activation quants must lie in [-127, 127] (quantize_act clamps to that):
 * the AVX2 q8 sign trick relies on it.
 */
#ifndef QRM_KERNELS_X86_H
#define QRM_KERNELS_X86_H

#include "float_kernels.h"
#include "kernels.h"

/* ---- AVX2 + FMA + F16C ---- */
QRM_DECLARE_FLOAT_KERNELS(qrm_avx2_); /* float_avx2.c */
void qrm_avx2_quantize_act(const float *x, size_t ldx, qrm_qact *a);
QRM_QGEMM(qrm_avx2_gemm_q8);
QRM_QGEMM(qrm_avx2_gemm_q8_acc);
QRM_QGEMM(qrm_avx2_gemm_q4);

/* ---- AVX-512 F/BW/VL/VNNI ---- */
QRM_DECLARE_FLOAT_KERNELS(qrm_avx512_); /* float_avx512.c */
void qrm_avx512_quantize_act(const float *x, size_t ldx, qrm_qact *a);
QRM_QGEMM(qrm_avx512_gemm_q8);
QRM_QGEMM(qrm_avx512_gemm_q8_acc);
QRM_QGEMM(qrm_avx512_gemm_q4);

/* avx2's single-token GEMMs stream the weights from DRAM; between loads
 * there is enough arithmetic that the out-of-order core keeps too few misses
 * in flight, so the lines ahead are prefetched. Distances in bytes, measured
 * on Zen 3 (qwen3-0.6b shape, 1 token after 4, p50 over 48) in two A/B runs:
 * none vs 2048: q8 29.5 -> 28.2 ms, q4 16.3 -> 13.1; 1024 vs 2048: q8 25.6
 * vs 27.7, q4 13.3 vs 12.7 (q4 does twice the work per byte). DRAM bound
 * 24-26 ms (q8) and 12-13 ms (q4). The avx512 GEMVs do not prefetch: on Zen 4
 * the hardware prefetcher streams one panel at a time faster (the comment
 * in gemm_q8_avx512.c). */
#ifndef QRM_X86_GEMV_PREFETCH_Q8
#define QRM_X86_GEMV_PREFETCH_Q8 1024
#endif
#ifndef QRM_X86_GEMV_PREFETCH_Q4
#define QRM_X86_GEMV_PREFETCH_Q4 2048
#endif

/* Tokens per block of the prefill GEMMs: the block's activations (tokens x K
 * bytes) stay in L2 while every weight panel of the range streams past them
 * once, so a weight panel is read from memory once per block, not per tile. */
static inline int qrm_x86_token_block(int K, int tile) {
    int mb = (128 * 1024) / (K > 0 ? K : 1);
    mb -= mb % tile;
    return mb < tile ? tile : mb;
}

/* Groups of K per chunk of the avx512 q8 prefill GEMM. With the whole of K at
 * once, a panel pair of a large K (llama-1b's down projection: K = 8192,
 * 256 KB) outgrows L1 and the token block shrinks to 16 tokens, so every
 * weight is read from L3 or DRAM 32 times in a 512-token pass. A chunk of a
 * pair (2 x 16 rows x 1024 bytes) stays in L1 while the block's 128 tokens
 * pass over it; the outputs continue their sums from y between chunks, the
 * same chain of operations. bench/ab/kernel_ab.sh, M = 512 K = 8192 N =
 * 2048, 31 rounds, four runs on a Zen 5 EPYC: 1.05-1.09x; 16 groups 0.85x,
 * 64 1.01x; K <= 1024 unchanged; but K = 2048 and 3072 (qwen3-0.6b's o and
 * down) 0.99x, so only K above 4096 is split. q4 (half the bytes) lost 6-10 %
 * with every chunk tried (32, 64, 128 groups), so it takes K whole. A token
 * or a few read each weight once anyway: below two tiles K is not split. */
#ifndef QRM_X86_K_CHUNK_Q8
#define QRM_X86_K_CHUNK_Q8 32
#endif
static inline int qrm_x86_k_chunk(int M, int G, int chunk) {
    return M < 8 || G <= 4 * chunk ? (G > 0 ? G : 1) : chunk;
}

/* quantize_act's rows for both x86 families: `batch` groups at a time by
 * `many` (the transposing reductions of quantize_<family>.c), the row's last
 * groups one by one by `one`. Inlined, so the calls are direct. */
typedef void (*qrm_x86_quantize_fn)(const float *x, int8_t *q, float *d, int32_t *s);
static inline __attribute__((always_inline)) void qrm_x86_quantize_rows(const float *x, size_t ldx,
                                                                         qrm_qact *a, int batch,
                                                                         qrm_x86_quantize_fn many,
                                                                         qrm_x86_quantize_fn one) {
    const int G = a->K / QRM_QK;
    for (int m = 0; m < a->M; m++) {
        const float *xr = x + (size_t)m * ldx;
        int8_t *qr = a->q + (size_t)m * a->K;
        float *dr = a->d + (size_t)m * G;
        int32_t *sr = a->s + (size_t)m * G;
        int g = 0;
        for (; g + batch <= G; g += batch) many(xr + (size_t)g * QRM_QK, qr + (size_t)g * QRM_QK, dr + g, sr + g);
        for (; g < G; g++) one(xr + (size_t)g * QRM_QK, qr + (size_t)g * QRM_QK, dr + g, sr + g);
    }
}


#endif
