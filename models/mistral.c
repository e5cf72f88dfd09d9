/* Mistral: Llama's layout with an optional sliding window on every layer
 * (4096 in v0.1, null from v0.2). */
#include "arch.h"

static int read_config(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen) {
    if (qrm_hf_opt_int(cfg, "sliding_window", 0, 1 << 24, &hp->sliding_window, err, errlen))
        return -1;
    for (int l = 0; l < hp->n_layers; l++) hp->sliding[l] = hp->sliding_window > 0;
    return 0;
}

const qrm_arch qrm_arch_mistral = {
    .name = "mistral",
    .hf_prefix = "Mistral",
    .act_key = "hidden_act",
    .default_act = "silu",
    .read_config = read_config,
};
