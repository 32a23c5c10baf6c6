/* Binding PCI functions to vfio-pci, and giving them back, never half way.
 *
 * Before it changes anything, qpass records each function's driver and driver_override
 * in a journal (vfio/journal.h: RUNDIR/journal/OWNER.json, atomic, fsync'd). Binding is
 * driver_override=vfio-pci, unbind from the current driver, drivers_probe, then a check
 * that the driver link points to vfio-pci. Restoring replays the journal: the recorded
 * override, unbind from vfio-pci, bind the recorded driver, check the link. Restoring
 * is idempotent, so `qpass restore` after a crash at any point puts the host back. */
#ifndef QP_BIND_H
#define QP_BIND_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/pciaddr.h"
#include "base/root.h"

/* Binds every function in addrs to vfio-pci for `owner` (a VM's name, or "manual"). On
 * failure, what was changed is restored before returning. */
int qp_vfio_bind(const struct qp_root *root, const char *owner, const struct qp_pci_addr *addrs,
		 size_t n, struct qp_err **err);

/* Records, before qpass gives /dev/vfio/GROUP to a VM's user, whose it was (the first
 * record of a group is kept), so that a restore after a crash gives it back. */
int qp_vfio_journal_node(const char *owner, int group, unsigned uid, unsigned gid,
			 struct qp_err **err);

/* Gives back the functions of owner's journal (all of them when addrs is NULL), then
 * drops them from the journal, and the journal when it is empty. The group nodes it
 * records go back to their owners once no function is left (a node the kernel removed
 * has nothing to undo). A missing journal is nothing to do. */
int qp_vfio_restore(const struct qp_root *root, const char *owner,
		    const struct qp_pci_addr *addrs, size_t n, struct qp_err **err);

#endif
