/* The run directory, RUNDIR ($QPASS_RUNDIR, default /run/qpass), and every path under it.
 * Nothing else in qpass spells one of these paths:
 *
 *   RUNDIR/NAME/                 a running VM's runtime directory (run/vmdir.c):
 *       lock                     flock'd by its supervisor while the VM runs
 *       pid                      the supervisor's pid
 *       qmp.sock                 QEMU's QMP socket
 *       control.sock             the supervisor's control socket (run/control.c)
 *       state.json               pids and placement, once QEMU runs
 *   RUNDIR/journal/OWNER.json    what each bound function had (vfio/journal.c)
 *   RUNDIR/devices/ADDR.lock     who holds a PCI function: "NAME PID START" (run/devices.c)
 *   RUNDIR/leases/NAME.json      what a VM holds: devices, CPUs, memory (run/ledger.c)
 *   RUNDIR/leases/.lock          the host-wide lock for reading and writing them */
#ifndef QP_RUNDIR_H
#define QP_RUNDIR_H

#include "base/err.h"

#define QP_VM_LOCK "lock"
#define QP_VM_PID "pid"
#define QP_VM_QMP "qmp.sock"
#define QP_VM_CONTROL "control.sock"
#define QP_VM_STATE "state.json"

/* RUNDIR itself. */
const char *qp_rundir(void);

/* RUNDIR/NAME, or RUNDIR/NAME/leaf (one of QP_VM_*). Caller frees. */
char *qp_rundir_vm(const char *name, const char *leaf);

/* RUNDIR/journal, or RUNDIR/journal/OWNER.json. Caller frees. */
char *qp_rundir_journal(const char *owner);

/* RUNDIR/devices, or RUNDIR/devices/ADDR.lock. Caller frees. */
char *qp_rundir_device_lock(const char *addr);

/* RUNDIR/leases, or RUNDIR/leases/NAME.json. Caller frees. */
char *qp_rundir_lease(const char *name);

/* RUNDIR/leases/.lock. Caller frees. */
char *qp_rundir_leases_lock(void);

/* Makes RUNDIR (0755) and RUNDIR/sub (0700, sub "journal", "devices" or "leases") when
 * missing. */
int qp_rundir_mkdir(const char *sub, struct qp_err **err);

#endif
