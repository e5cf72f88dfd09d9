/* Llama (Llama 2, Llama 3.x): the reference layout every other family is
 * described against. Llama-3.1's rope_scaling is read by the common code. */
#include "arch.h"

const qrm_arch qrm_arch_llama = {
    .name = "llama",
    .hf_prefix = "Llama",
    .act_key = "hidden_act",
    .default_act = "silu",
};
