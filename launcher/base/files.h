/* The directories qpass makes for itself on the host (RUNDIR/NAME, the per-VM state
 * directory), outside the system root: reads of the host go through base/root.h. */
#ifndef QP_FILES_H
#define QP_FILES_H

#include <sys/types.h>

#include "base/err.h"

/* Creates path and its missing parents (0755); path itself gets mode. An existing
 * directory is fine. */
int qp_mkdir_p(const char *path, mode_t mode, struct qp_err **err);

#endif
