/* Reading the host: sysfs, procfs and /dev under the system root into the host model
 * (core/host.h), once per command. The only reader of the model's facts; everything
 * after it works on the snapshot. */
#ifndef QP_HOSTLOAD_H
#define QP_HOSTLOAD_H

#include <stddef.h>

#include "base/err.h"
#include "base/root.h"
#include "core/host.h"

/* Reads the host under root into *host. On failure *host is left empty and *err says
 * which file or device was wrong and why. */
int qp_host_load(const struct qp_root *root, struct qp_host *host, struct qp_err **err);

/* Reads what a command needs. With sel (n_sel selectors, possibly none), only the PCI
 * devices they name and every member of those devices' IOMMU groups are read, besides
 * the rest of the host (nodes, CPUs, kernel, /dev, the number of IOMMU groups); with
 * sel NULL, every device. With QP_HOST_NAMES the devices' names come from pci.ids, for
 * output that shows them; without, the name fields stay NULL (`up` shows none). */
#define QP_HOST_NAMES 1u
/* With QP_HOST_GPUS, every display device too (and its IOMMU group), and which host
 * processes hold each open (core/host.h's holders): for a profile's "gpus". */
#define QP_HOST_GPUS 2u
int qp_host_load_ex(const struct qp_root *root, unsigned flags, const struct qp_pci_sel *sel,
		    size_t n_sel, struct qp_host *host, struct qp_err **err);

#endif
