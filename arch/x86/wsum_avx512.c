/* Attention's weighted sum of V rows for AVX-512: out += sum_t w[t] V[t],
 * 64 outputs in four zmm registers while the rows stream past. */
#include <immintrin.h>

#include "kernels_x86.h"

void qrm_avx512_wsum_rows_f32(float *out, const float *w, const float *rows, int n, int d) {
    int i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512 a0 = _mm512_loadu_ps(out + i), a1 = _mm512_loadu_ps(out + i + 16);
        __m512 a2 = _mm512_loadu_ps(out + i + 32), a3 = _mm512_loadu_ps(out + i + 48);
        const float *r = rows + i;
        for (int t = 0; t < n; t++, r += d) {
            __m512 wt = _mm512_set1_ps(w[t]);
            a0 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(r), a0);
            a1 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(r + 16), a1);
            a2 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(r + 32), a2);
            a3 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(r + 48), a3);
        }
        _mm512_storeu_ps(out + i, a0), _mm512_storeu_ps(out + i + 16, a1);
        _mm512_storeu_ps(out + i + 32, a2), _mm512_storeu_ps(out + i + 48, a3);
    }
    for (; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - i)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(m, out + i);
        for (int t = 0; t < n; t++)
            a = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_maskz_loadu_ps(m, rows + (size_t)t * d + i), a);
        _mm512_mask_storeu_ps(out + i, m, a);
    }
}
