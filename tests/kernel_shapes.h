/* The shapes the kernel tests run, in one place: the Check suites
 * (test_kernels, test_bitwise) and the bochs harness (tests/emu) include
 * this, so the avx512 family under emulation meets the same cases as every
 * family on hardware.
 *
 * Quantized GEMMs: odd M, several N and K, panel ranges not starting at 0;
 * M = 130 at K = 1024 spans two token blocks of the x86 kernels (128 tokens
 * each); M = 9 at K = 4160 takes avx512 q8's K chunks (4 x 32 groups, then
 * 2, each continuing its outputs' sums); M = 1 is the GEMV path. Float GEMMs: every tail of a 16-lane
 * vector in K, column ranges inside N, 70 tokens at K = 1024 span two
 * blocks; K = 1800 (f32) and 3100 (f32, f16) take avx2's K-blocked
 * tiles (fk_gemm_kblocked), 40 tokens at 1800 more tiles than one round
 * of them holds. Token counts one past whole tiles (6 and 11 on NEON's
 * 5-token tiles, 9 on avx512's 4) run as tiles of T - 1 and 2 in place of
 * the last whole tile (fk_gemm). The bochs guest's buffer slots bound the
 * sizes. */
#ifndef QRM_TEST_KERNEL_SHAPES_H
#define QRM_TEST_KERNEL_SHAPES_H

static const struct { int M, N, K, p0, p1; } qshapes[] = {
    {1, 16, 32, 0, 1},     {2, 32, 64, 1, 2},       {3, 48, 96, 1, 3},      {5, 160, 32, 2, 9},
    {7, 48, 1024, 0, 3},   {13, 160, 96, 3, 10},    {64, 32, 1024, 0, 2},   {100, 48, 64, 1, 3},
    {1, 512, 1024, 0, 32}, {3, 3072, 64, 100, 192}, {100, 160, 1024, 1, 10}, {5, 3072, 32, 5, 7},
    {130, 16, 1024, 0, 1}, {4, 32, 96, 0, 2},       {6, 64, 160, 1, 4},     {9, 32, 4160, 0, 2},
};
#define N_QSHAPES ((int)(sizeof qshapes / sizeof qshapes[0]))

static const struct { int M, N, K, n0, n1; } fshapes[] = {
    {1, 37, 1, 3, 30},   {2, 16, 3, 0, 16},   {3, 37, 8, 5, 37},     {5, 40, 13, 1, 39},
    {1, 64, 100, 0, 64}, {4, 12, 32, 2, 11},  {7, 37, 1024, 0, 37},  {1, 300, 1024, 17, 291},
    {2, 9, 1027, 0, 9},  {64, 24, 64, 4, 24}, {70, 20, 1024, 3, 19}, {9, 29, 17, 0, 29},
    {6, 50, 256, 0, 50}, {3, 37, 17, 5, 37},   {40, 7, 1800, 0, 7},   {37, 7, 3100, 1, 7},
    {11, 22, 40, 1, 22},
};
#define N_FSHAPES ((int)(sizeof fshapes / sizeof fshapes[0]))

#endif
