/* One VM under `qpass up`, as run/up.c, launch.c, placement.c and supervise.c share it;
 * for those files only (up.h is the interface). */
#ifndef QP_UP_INT_H
#define QP_UP_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "base/err.h"
#include "base/root.h"
#include "core/placement.h"
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
	int stop_fd;          /* a signalfd of SIGTERM, SIGINT, SIGHUP only: polled, not read */
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
	const struct qp_host *host; /* what the plan was made on */
	/* Where the threads go now: the plan's, or what `qpass pin` made of it (kept when
	 * QEMU starts again); and where the devices' interrupts go (empty: left alone). */
	int *pins;                  /* index: vCPU */
	struct qp_cpulist emulator;
	struct qp_cpulist irq_cpus;
	struct qp_cpulist *irq_node_cpus;  /* across nodes: index guest node, its own */
	pid_t *vcpu_tids;           /* the running QEMU's, from QMP; index: vCPU */
	int stop_timeout;           /* qp_up_opts's; 0: none */
};

/* How a run of QEMU ended. */
enum outcome {
	OUT_STOPPED,    /* QEMU ended because it was asked to */
	OUT_DIED,       /* QEMU ended on its own */
	OUT_RELAUNCH,   /* on_crash restart: start again with the same placement */
};

/* launch.c: QEMU started paused with its fds, QMP connected. */
int qp_up_spawn(struct vm *vm, struct qp_err **err);
int qp_up_connect_qmp(struct vm *vm, struct qp_err **err);

/* placement.c: every thread placed (vCPUs on vm->pins, the rest on vm->emulator) and
 * read back; one vCPU or the emulator moved while it runs (vcpu -1: the emulator); the
 * devices' vfio interrupts sent to vm->irq_cpus (failures are said); and what the
 * kernel says of all of it. check_pin: whether a pin may be made (online CPUs, one for
 * a vCPU, none on a core another VM of l holds unless both share). */
int qp_up_place(struct vm *vm, struct qp_err **err);
int qp_up_check_pin(const struct vm *vm, const struct qp_ledger *l, int vcpu,
		    const struct qp_cpulist *cpus, struct qp_err **err);
int qp_up_repin(struct vm *vm, int vcpu, const struct qp_cpulist *cpus, struct qp_err **err);
void qp_up_place_irqs(struct vm *vm);
/* Where the interrupts of device dev go: vm->irq_cpus, or across nodes its guest node's
 * CPUs; NULL: left alone. */
const struct qp_cpulist *qp_up_irq_target(const struct vm *vm, const struct qp_pci_addr *dev);
void qp_up_measure(struct vm *vm, struct qp_measured *out);
/* Only the guest RAM's pages per node (out's other parts stay empty). */
void qp_up_measure_memory(struct vm *vm, struct qp_measured *out);

/* up.c: state.json and the lease, rewritten after a change of placement. */
void qp_up_write_state(struct vm *vm);
/* Forwards QEMU's output, a line at a time, prefixed. Returns false at EOF. */
bool qp_up_forward_output(struct vm *vm);
/* Runs a QMP command that must succeed; its return value is dropped. */
int qp_up_qmp_ok(struct vm *vm, const char *cmd, json_object *args, struct qp_err **err);

/* supervise.c: until QEMU ends, QMP events, signals and control requests. */
enum outcome qp_up_supervise(struct vm *vm);

#endif
