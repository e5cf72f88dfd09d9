/* Qwen3: no biases, an RMSNorm per head on q and k before RoPE, and an
 * explicit head_dim (128 where hidden / heads would say 64). */
#include <stdio.h>

#include "arch.h"

static int read_config(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen) {
    (void)hp;
    if (qj_get_bool(cfg, "use_sliding_window", 0)) {
        snprintf(err, errlen, "config.json: use_sliding_window = true is not supported for qwen3");
        return -1;
    }
    return 0;
}

const qrm_arch qrm_arch_qwen3 = {
    .name = "qwen3",
    .hf_prefix = "Qwen3",
    .qk_norm = 1,
    .act_key = "hidden_act",
    .default_act = "silu",
    .read_config = read_config,
};
