#include "vfio/sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/child.h"
#include "base/kernel.h"
#include "base/util.h"

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

struct write_job {
	const struct qp_root *root;
	const char *rel, *data;
};

/* In the child: the write, then its errno back through the pipe. */
static void writer(void *arg, int fd)
{
	const struct write_job *j = arg;
	int e = qp_kernel_write ? qp_kernel_write(j->root, j->rel, j->data)
				: real_write(j->root, j->rel, j->data);
	if (write(fd, &e, sizeof(e)) != sizeof(e))
		_exit(1);
	_exit(0);
}

int qp_sysfs_write(const struct qp_root *root, const char *rel, const char *data,
		   int timeout_ms, struct qp_err **err)
{
	qp_autofree char *where = qp_root_display(root, rel);
	qp_autofree char *shown = qp_quote(data);
	struct write_job job = { root, rel, data };
	struct qp_child_out out;
	qp_sysfs_writes++;
	if (qp_child_run(writer, &job, timeout_ms, sizeof(int), QP_CHILD_LEAVE_HUNG, &out,
			 err) < 0)
		return -1;
	qp_autofree char *got = out.data;
	/* Blocked in the kernel: it cannot be killed; it is left to finish. */
	if (out.cancelled)
		return qp_err_set(err, EINTR, "writing %s to %s: interrupted, qpass was asked to "
				  "stop", shown, where);
	if (out.timed_out)
		return qp_err_set(err, ETIMEDOUT, "writing %s to %s did not finish within %d ms",
				  shown, where, timeout_ms);
	if (out.len != sizeof(int))
		return qp_err_set(err, EIO, "writing %s to %s: the writer died", shown, where);
	int e;
	memcpy(&e, got, sizeof(e));
	if (e)
		return qp_err_set(err, e, "writing %s to %s", shown, where);
	return 0;
}
