/* A VM's PCI functions while it runs: a lock per function (RUNDIR/devices/ADDR.lock: two
 * VMs never take one), bound to vfio-pci (vfio/bind.h, journaled under the VM's name),
 * each IOMMU group proven usable and handed to run_as; and all of it given back when
 * the VM ends. */
#ifndef QP_DEVICES_H
#define QP_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/root.h"
#include "core/ledger.h"
#include "core/plan.h"

struct qp_vm_devices {
	/* Set by the caller. */
	const struct qp_plan *plan;
	const struct qp_root *root;
	const char *name;         /* the VM's: the locks' holder, the journal's owner */
	const char *user;         /* run_as, who gets the groups; NULL: root keeps them */
	uid_t uid;
	gid_t gid;
	/* What was taken, for the give-back. */
	int *locks;               /* one flock per passed function */
	size_t n_locks;
	bool bound;               /* functions are on vfio-pci for this VM */
	int *chowned;             /* /dev/vfio/N handed to run_as */
	struct stat *chowned_was;
	size_t n_chowned;
};

/* Locks, binds, checks and hands over the plan's functions. On failure what was taken
 * stays recorded in *d: qp_devices_give_back() undoes it. */
int qp_devices_take(struct qp_vm_devices *d, struct qp_err **err);

/* Gives the groups back to their owner, every function back to its driver (saying what
 * to run when that fails), and drops the locks. */
void qp_devices_give_back(struct qp_vm_devices *d);

/* The VM named in the lock of function addr ("0000:04:00.0") while a live process
 * holds it, else NULL. Caller frees. */
char *qp_devices_lock_holder(const char *addr);

/* Who holds function a, other than the VM self (NULL: anyone): a lease of l, or a held
 * device lock; NULL when nobody. Caller frees. Ask under the host lock
 * (qp_ledger_lock), which every change of who holds what takes. */
char *qp_devices_holder(const struct qp_ledger *l, const struct qp_pci_addr *a,
			const char *self);

#endif
