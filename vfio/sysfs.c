#include "vfio/sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

int (*qp_kernel_write)(const struct qp_root *root, const char *rel, const char *data);
unsigned qp_sysfs_writes;

/* A real sysfs write: the whole value in one write(), as sysfs wants it. */
static int real_write(const struct qp_root *root, const char *rel, const char *data)
{
	int fd = qp_root_openat(root, rel, O_WRONLY | O_NOCTTY);
	if (fd < 0)
		return errno;
	size_t n = strlen(data);
	ssize_t w = write(fd, data, n);
	int e = w < 0 ? errno : (size_t)w != n ? EIO : 0;
	if (close(fd) < 0 && !e)
		e = errno;
	return e;
}

int qp_sysfs_write(const struct qp_root *root, const char *rel, const char *data,
		   int timeout_ms, struct qp_err **err)
{
	qp_autofree char *where = qp_root_display(root, rel);
	qp_autofree char *shown = qp_quote(data);
	int status_pipe[2];
	if (pipe2(status_pipe, O_CLOEXEC) < 0)
		return qp_err_set(err, errno, "pipe");
	qp_sysfs_writes++;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(status_pipe[0]);
		close(status_pipe[1]);
		return qp_err_set(err, e, "fork");
	}
	if (pid == 0) {
		close(status_pipe[0]);
		int e = qp_kernel_write ? qp_kernel_write(root, rel, data)
					: real_write(root, rel, data);
		if (write(status_pipe[1], &e, sizeof(e)) != sizeof(e))
			_exit(1);
		_exit(0);
	}
	close(status_pipe[1]);
	struct pollfd p = { .fd = status_pipe[0], .events = POLLIN };
	int rc;
	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	int e = 0;
	ssize_t n = rc > 0 ? read(status_pipe[0], &e, sizeof(e)) : 0;
	close(status_pipe[0]);
	if (rc == 0) {
		/* Blocked in the kernel: it cannot be killed; it is left to finish. */
		kill(pid, SIGKILL);
		return qp_err_set(err, ETIMEDOUT, "writing %s to %s did not finish within %d ms",
				  shown, where, timeout_ms);
	}
	waitpid(pid, NULL, 0);
	if (n != sizeof(e))
		return qp_err_set(err, EIO, "writing %s to %s: the writer died", shown, where);
	if (e)
		return qp_err_set(err, e, "writing %s to %s", shown, where);
	return 0;
}
