/* A child process under a deadline, for work that may never return: a sysfs write that
 * blocks in the kernel while someone holds the device (vfio/sysfs.c), a program asked
 * what it is that hangs (probe/checkprobe.c).
 *
 * The child's only way back is a pipe; the parent reads it until the child closes it or
 * the deadline passes, then kills the child. */
#ifndef QP_CHILD_H
#define QP_CHILD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* At the deadline the child is killed but not waited for: a writer blocked in the
 * kernel cannot die until its write returns, and is left to finish. */
#define QP_CHILD_LEAVE_HUNG 1u

struct qp_child_out {
	char *data;      /* what the child wrote, NUL-terminated (never NULL) */
	size_t len;      /* its bytes; reading stops keeping them once len reaches max */
	bool timed_out;  /* the deadline passed and the child was killed */
	bool cancelled;  /* the cancel fd became readable first (and the child was killed) */
	bool reaped;     /* status holds the child's wait status */
	int status;
};

/* Forks; the child runs fn(arg, fd), fd the pipe's write end, and must end in _exit().
 * Returns 0 with *out filled (free data), or -1 when no child could be started. */
int qp_child_run(void (*fn)(void *arg, int fd), void *arg, int timeout_ms, size_t max,
		 unsigned flags, struct qp_child_out *out, struct qp_err **err);

/* While fd (a signalfd; -1: none) is set, a wait for a child ends as soon as fd is
 * readable: the child is killed as at its deadline, and out->cancelled is set. Once:
 * the cancel is then off, so the roll-back that follows runs to its end. fd is only
 * polled, never read: the caller reads it, and says why. */
void qp_child_cancel_on(int fd);

/* Reads every signal waiting in signalfd fd (SIGCHLD aside): the last one's number, or 0
 * when none came. For the caller to say "asked to stop" instead of dying of it later. */
int qp_child_stop_asked(int fd);

#endif
