/* One VM's runtime directory, RUNDIR/NAME (base/rundir.h): taken by the VM's supervisor
 * with its lock, one VM per name; its pid and state.json; and the questions others ask
 * of it: does the VM run, does its QEMU run without it, which VMs are there. */
#ifndef QP_VMDIR_H
#define QP_VMDIR_H

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/err.h"

struct qp_vmdir {
	char *path;   /* RUNDIR/NAME; NULL when not ours */
	int lock_fd;  /* flock'd while the VM runs */
};

/* Takes RUNDIR/NAME for this process: made (0700) and locked, what a dead qpass left
 * there (QMP socket, state.json) removed, this pid written. Another VM of that name
 * running is an error that names its qpass; the directory is then left alone. */
int qp_vmdir_take(const char *name, struct qp_vmdir *d, struct qp_err **err);

/* Removes what the supervisor made there, the directory, and the lock. */
void qp_vmdir_release(struct qp_vmdir *d);

/* Writes state (taken) to RUNDIR/NAME/state.json, atomically; best effort. */
void qp_vmdir_write_state(const struct qp_vmdir *d, json_object *state);

/* Holds the runtime directory's lock of a VM that is not running (made if missing), so
 * that no `up NAME` starts while its journal is replayed: the fd, or -1 with errno
 * (EWOULDBLOCK: the VM runs). qp_vmdir_unhold() lets go and removes what it made. */
int qp_vmdir_hold(const char *name);
void qp_vmdir_unhold(const char *name, int fd);

/* Whether a VM of this name runs: its supervisor holds the runtime directory's lock
 * (the kernel drops it however the supervisor ends). */
bool qp_vm_running(const char *name);

/* The QEMU of a VM whose qpass is gone, when it still runs: its pid, after up to 5 s
 * for it to die with its qpass (PR_SET_PDEATHSIG); else 0. Its devices are in use:
 * giving them back under it would pull them out of a running guest. */
pid_t qp_vm_orphan_qemu(const char *name);

/* The names of the VMs whose supervisor listens on a control socket, sorted
 * (NULL-terminated). */
char **qp_vm_names(void);

#endif
