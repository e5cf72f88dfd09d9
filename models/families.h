/* Model families: Hugging Face config.json -> qrm_hparams (models/families.c). */
#ifndef QRM_FAMILIES_H
#define QRM_FAMILIES_H

#include <stddef.h>

#include "hparams.h"
#include "json.h"

/* Fills hp from a parsed config.json; -1 with a one-line message in err for
 * an unsupported architecture (named, with the supported list) or an
 * inconsistent / invalid config. */
int qrm_hparams_from_hf_config(const qj_value *cfg, qrm_hparams *hp, char *err, size_t errlen);
/* "LlamaForSequenceClassification, ..." */
const char *qrm_supported_architectures(void);

#endif
