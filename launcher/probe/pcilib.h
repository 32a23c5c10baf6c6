/* libpci, kept at the edge: names from pci.ids, and a second reader of the same sysfs
 * tree (pointed at ROOT/sys/bus/pci through its sysfs.path parameter) whose view must
 * agree with qpass's own. The only file that includes <pci/pci.h>. */
#ifndef QP_PCILIB_H
#define QP_PCILIB_H

#include <stdbool.h>

#include "base/err.h"
#include "base/root.h"

struct qp_host;

/* Fills the name fields of every device of the host (when `names`), and checks that libpci sees the
 * same devices with the same ids and classes. libpci's errors (its default handler would
 * exit the process) and warnings come back as *err and host warnings. */
int qp_pcilib_annotate(const struct qp_root *root, struct qp_host *host, bool names,
		       struct qp_err **err);

#endif
