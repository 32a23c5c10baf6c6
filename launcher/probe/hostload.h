/* Reading the host: sysfs, procfs and /dev under the system root into the host model
 * (core/host.h), once per command. The only reader of the model's facts; everything
 * after it works on the snapshot. */
#ifndef QP_HOSTLOAD_H
#define QP_HOSTLOAD_H

#include "base/err.h"
#include "base/root.h"
#include "core/host.h"

/* Reads the host under root into *host. On failure *host is left empty and *err says
 * which file or device was wrong and why. */
int qp_host_load(const struct qp_root *root, struct qp_host *host, struct qp_err **err);

/* Without QP_HOST_NAMES libpci is not asked at all: the devices' name fields stay NULL
 * and its second reading of the tree is skipped. Parsing pci.ids is most of the cost
 * of reading a host, and `up` shows no names. */
#define QP_HOST_NAMES 1u
int qp_host_load_ex(const struct qp_root *root, unsigned flags, struct qp_host *host,
		    struct qp_err **err);

#endif
