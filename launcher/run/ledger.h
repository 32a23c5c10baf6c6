/* The ledger on disk (core/ledger.h's leases): RUNDIR/leases/NAME.json for every VM that
 * runs or starts, and RUNDIR/leases/.lock, the host-wide lock under which `qpass up`
 * reads them, reclaims the dead, picks and plans, and writes its own; so that two `up`
 * racing never get the same GPU or core. A lease names its qpass and its QEMU by pid
 * and start time: it is dead when neither runs, and only then reclaimed. */
#ifndef QP_RUN_LEDGER_H
#define QP_RUN_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/root.h"
#include "core/ledger.h"

/* The start time of process pid (field 22 of /proc/PID/stat), 0 when there is none. */
uint64_t qp_proc_start(int pid);

/* This process, as a lease names it. */
struct qp_holder qp_holder_self(void);

/* Takes the host-wide lock, waiting up to 30 s for another `up` to let go; returns its
 * fd (the lock goes with it), or -1 with *err naming the holder. */
int qp_ledger_lock(struct qp_err **err);

/* Reads every lease into *out (sorted by name). A dead lease (neither its qpass nor its
 * QEMU runs) is left out; with `reclaim` (under the lock) its devices are also given
 * back to their host drivers (the VM's journal, under root) and the lease removed. A
 * lease whose qpass is gone but whose QEMU runs is kept, marked orphan. root is only
 * used to reclaim (NULL without). Returns how many leases it reclaimed, or -1. */
int qp_ledger_load(const struct qp_root *root, bool reclaim, struct qp_ledger *out,
		   struct qp_err **err);

/* The live lease of VM name in l, or NULL. */
const struct qp_lease *qp_ledger_find(const struct qp_ledger *l, const char *name);

/* Writes the lease, atomically (a temporary file, then rename). */
int qp_ledger_write(const struct qp_lease *lease, struct qp_err **err);

/* Removes VM name's lease; nothing when there is none. */
void qp_ledger_remove(const char *name);

#endif
