/* Qwen2 / Qwen2.5: biases on the q, k and v projections (not on o). The
 * sliding window applies only when use_sliding_window is true, which no
 * released checkpoint sets; it is refused rather than half-supported. */
#include <stdio.h>

#include "arch.h"

static int read_config(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen) {
    (void)hp;
    if (qj_get_bool(cfg, "use_sliding_window", 0)) {
        snprintf(err, errlen, "config.json: use_sliding_window = true is not supported for qwen2");
        return -1;
    }
    return 0;
}

const qrm_arch qrm_arch_qwen2 = {
    .name = "qwen2",
    .hf_prefix = "Qwen2",
    .qkv_bias = 1,
    .act_key = "hidden_act",
    .default_act = "silu",
    .read_config = read_config,
};
