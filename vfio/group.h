/* Proving a VFIO group usable before QEMU starts, and handing it to QEMU's user. */
#ifndef QP_GROUP_H
#define QP_GROUP_H

#include <sys/types.h>

#include "base/err.h"
#include "base/root.h"

/* Waits (bounded) for /dev/vfio/N, opens it, checks that VFIO_GROUP_GET_STATUS says
 * viable and that the container supports the type1 IOMMU, and closes it again: QEMU
 * opens it itself, and a group can be open only once. */
int qp_vfio_check_group(const struct qp_root *root, int group, struct qp_err **err);

#endif
