/* Qwen3: no biases, an RMSNorm per head on q and k before RoPE, and an
 * explicit head_dim (128 where hidden / heads would say 64). */
#include "arch.h"

const qrm_arch qrm_arch_qwen3 = {
    .name = "qwen3",
    .hf_prefix = "Qwen3",
    .qk_norm = 1,
    .act_key = "hidden_act",
    .default_act = "silu",
    .read_config = qrm_hf_refuse_sliding_window,
};
