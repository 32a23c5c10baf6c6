/* `qpass up`: launch, place and supervise QEMU in the foreground. */
#ifndef QP_UP_H
#define QP_UP_H

#include "base/err.h"
#include "base/root.h"
#include "core/ledger.h"
#include "core/plan.h"

/* What the command line adds to the plan. */
struct qp_up_opts {
	/* The whole stop on a signal, from it to qpass's exit, fits in this many seconds
	 * (a scheduler's SIGTERM-then-SIGKILL schedule, a unit's TimeoutStopSec); 0: the
	 * profile's shutdown_timeout, then the quit, then the give-back. */
	int stop_timeout;
};

/* Runs the plan's VM until it ends. Returns the exit status for qpass (QP_EXIT_OK when
 * QEMU stopped as asked, QP_EXIT_QEMU when it ended on its own), or -1 with *err when
 * the VM could not be started; nothing is left running then. lease (NULL: none) is the
 * VM's in the ledger (run/ledger.h), written by the caller: its QEMU is added to it at
 * every start, and `running` once the guest runs. host is the one the plan was made
 * on (for `qpass pin`'s checks). opts may be NULL. */
int qp_up(const struct qp_plan *plan, const struct qp_host *host, const struct qp_root *root,
	  struct qp_lease *lease, const struct qp_up_opts *opts, struct qp_err **err);

#endif
