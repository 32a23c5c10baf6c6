#include "base/child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"

static int cancel_fd = -1;

void qp_child_cancel_on(int fd)
{
	cancel_fd = fd;
}

int qp_child_stop_asked(int fd)
{
	struct signalfd_siginfo si;
	int asked = 0;
	while (fd >= 0 && read(fd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo != SIGCHLD)
			asked = (int)si.ssi_signo;
	return asked;
}

/* Reads fd until EOF or the deadline: true when the deadline passed first, or (with
 * *cancelled) the cancel fd became readable. */
static bool collect(int fd, int64_t end, size_t max, struct qp_buf *b, bool *cancelled)
{
	for (;;) {
		int64_t left = end - qp_now_ms();
		if (left <= 0)
			return true;
		struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN },
					 { .fd = cancel_fd, .events = POLLIN } };
		int n = poll(pfd, cancel_fd >= 0 ? 2 : 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0;
		if (cancel_fd >= 0 && pfd[1].revents && !pfd[0].revents) {
			cancel_fd = -1;  /* once: what follows (a roll-back) runs on */
			*cancelled = true;
			return true;
		}
		char chunk[4096];
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return false;
		if (b->len < max)
			qp_buf_addn(b, chunk, (size_t)got);
	}
}

int qp_child_run(void (*fn)(void *arg, int fd), void *arg, int timeout_ms, size_t max,
		 unsigned flags, struct qp_child_out *out, struct qp_err **err)
{
	memset(out, 0, sizeof(*out));
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return qp_err_set(err, errno, "pipe");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return qp_err_set(err, e, "fork");
	}
	if (pid == 0) {
		close(p[0]);
		fn(arg, p[1]);
		_exit(127);
	}
	close(p[1]);
	struct qp_buf b = { 0 };
	out->timed_out = collect(p[0], qp_now_ms() + timeout_ms, max, &b, &out->cancelled);
	if (out->cancelled)
		out->timed_out = false;
	close(p[0]);
	out->len = b.len;
	out->data = qp_buf_steal(&b);
	if (out->timed_out || out->cancelled) {
		kill(pid, SIGKILL);
		if (flags & QP_CHILD_LEAVE_HUNG)
			return 0;
	}
	while (waitpid(pid, &out->status, 0) < 0)
		if (errno != EINTR)
			return 0;
	out->reaped = true;
	return 0;
}
