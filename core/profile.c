/* Stage names of the forward pass's profile (profile.h). */
#include "profile.h"

const char *qrm_stage_name(int stage) {
    static const char *const names[] = {
#define QRM_STAGE_NAME_(e, name) name,
        QRM_STAGES(QRM_STAGE_NAME_)
#undef QRM_STAGE_NAME_
    };
    return stage >= 0 && stage < QRM_N_STAGES ? names[stage] : "?";
}

int qrm_stage_is_gemm(int stage) {
    return stage == QRM_STAGE_QKV_GEMM || stage == QRM_STAGE_O_GEMM || stage == QRM_STAGE_UP_GEMM ||
           stage == QRM_STAGE_DOWN_GEMM;
}
