/* One VM under `qpass up`, as run/up.c, launch.c and supervise.c share it; for those
 * three files only (up.h is the interface). */
#ifndef QP_UP_INT_H
#define QP_UP_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "base/err.h"
#include "base/root.h"
#include "core/plan.h"
#include "profiles/profile.h"
#include "qmp/qmp.h"
#include "run/devices.h"
#include "run/vmdir.h"

#define QMP_TIMEOUT_MS 30000

struct vm {
	const struct qp_plan *plan;
	const struct qp_profile *p;
	const struct qp_root *root;
	struct qp_vmdir dir;        /* RUNDIR/NAME, locked */
	char *qmp_path;
	int sig_fd;
	pid_t qemu;
	int out_fd;                 /* QEMU's stdout and stderr */
	struct qp_qmp *qmp;
	int ctl_fd;                 /* the control socket, listening */
	bool has_user;
	uid_t uid;
	gid_t gid;
	char line[4096];            /* QEMU's output, a line at a time */
	size_t line_len;
	time_t started;
	struct qp_root proc;        /* the real /proc: QEMU runs here, whatever the sysroot */
	struct qp_vm_devices devs;
	struct qp_lease *lease;     /* in the ledger; NULL: none */
};

/* How a run of QEMU ended. */
enum outcome {
	OUT_STOPPED,    /* QEMU ended because it was asked to */
	OUT_DIED,       /* QEMU ended on its own */
	OUT_RELAUNCH,   /* on_crash restart: start again with the same placement */
};

/* launch.c: QEMU started paused with its fds, QMP connected, every thread placed. */
int qp_up_spawn(struct vm *vm, struct qp_err **err);
int qp_up_connect_qmp(struct vm *vm, struct qp_err **err);
int qp_up_place(struct vm *vm, struct qp_err **err);
/* Forwards QEMU's output, a line at a time, prefixed. Returns false at EOF. */
bool qp_up_forward_output(struct vm *vm);
/* Runs a QMP command that must succeed; its return value is dropped. */
int qp_up_qmp_ok(struct vm *vm, const char *cmd, json_object *args, struct qp_err **err);

/* supervise.c: until QEMU ends, QMP events, signals and control requests. */
enum outcome qp_up_supervise(struct vm *vm);

#endif
