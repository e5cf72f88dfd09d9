/* Qwen2 / Qwen2.5: biases on the q, k and v projections (not on o). The
 * sliding window applies only when use_sliding_window is true, which no
 * released checkpoint sets; it is refused rather than half-supported. */
#include "arch.h"

const qrm_arch qrm_arch_qwen2 = {
    .name = "qwen2",
    .hf_prefix = "Qwen2",
    .qkv_bias = 1,
    .act_key = "hidden_act",
    .default_act = "silu",
    .read_config = qrm_hf_refuse_sliding_window,
};
