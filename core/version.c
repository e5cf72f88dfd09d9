/* The library's version, for programs built against another header. */
#include "qrm.h"

#include <stdlib.h>

const char *qrm_version(void) { return QRM_VERSION_STRING; }

void qrm_free(void *p) { free(p); }
