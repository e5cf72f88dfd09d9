/* Attention's weighted sum of V rows for AVX2 + FMA: out += sum_t w[t] V[t].
 * 32 outputs stay in four registers while every row streams past, instead of
 * a load and store of out per row (what a loop of axpy calls costs). */
#include <immintrin.h>

#include "kernels_x86.h"

void qrm_avx2_wsum_rows_f32(float *out, const float *w, const float *rows, int n, int d) {
    int i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 a0 = _mm256_loadu_ps(out + i), a1 = _mm256_loadu_ps(out + i + 8);
        __m256 a2 = _mm256_loadu_ps(out + i + 16), a3 = _mm256_loadu_ps(out + i + 24);
        const float *r = rows + i;
        for (int t = 0; t < n; t++, r += d) {
            __m256 wt = _mm256_broadcast_ss(w + t);
            a0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(r), a0);
            a1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(r + 8), a1);
            a2 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(r + 16), a2);
            a3 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(r + 24), a3);
        }
        _mm256_storeu_ps(out + i, a0), _mm256_storeu_ps(out + i + 8, a1);
        _mm256_storeu_ps(out + i + 16, a2), _mm256_storeu_ps(out + i + 24, a3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 a = _mm256_loadu_ps(out + i);
        for (int t = 0; t < n; t++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t), _mm256_loadu_ps(rows + (size_t)t * d + i), a);
        _mm256_storeu_ps(out + i, a);
    }
    for (; i < d; i++) {
        float a = out[i];
        for (int t = 0; t < n; t++) a = __builtin_fmaf(w[t], rows[(size_t)t * d + i], a);
        out[i] = a;
    }
}
