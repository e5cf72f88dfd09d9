/* The cases, one group per file; driver.c runs them in this order, once per
 * guard pass. Each builds its inputs, runs kern, records every output and
 * (host) checks it. */
#ifndef QRM_EMU_CASES_H
#define QRM_EMU_CASES_H

/* cases_quant.c: quantize_act, gemm_q8, gemm_q4 */
void cases_quantize_act(void);
void cases_gemm_q_saturation(void);
void cases_quantize_then_gemm_q8(void);
void cases_gemm_q(void);

/* cases_float.c: gemm_f32, gemm_f16, dot, axpy, scale, rmsnorm, softmax,
 * silu_mul, gelu_tanh_mul, rope_neox */
void cases_gemm_float(void);
void cases_dot_axpy_scale(void);
void cases_rmsnorm(void);
void cases_softmax(void);
void cases_silu_gelu(void);
void cases_rope(void);

/* cases_kv.c: wsum_rows_f32, wsum_rows_f16, f32_to_f16 */
void cases_wsum_rows(int f16_rows);
void cases_f32_to_f16(void);

/* cases_invariance.c: the batch invariance of gemm_f32/f16, gemm_q8/q4 and
 * wsum_rows, bit for bit */
void cases_invariance(void);

#endif
