#include "base/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

int qp_mkdir_p(const char *path, mode_t mode, struct qp_err **err)
{
	qp_autofree char *p = qp_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return qp_err_set(err, errno, "cannot create %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return qp_err_set(err, errno, "cannot create %s", p);
	return 0;
}

static int sync_dir(const char *path, struct qp_err **err)
{
	const char *slash = strrchr(path, '/');
	qp_autofree char *dir = slash == path ? qp_xstrdup("/") :
				slash ? qp_xstrndup(path, (size_t)(slash - path)) : qp_xstrdup(".");
	qp_autoclose int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return qp_err_set(err, errno, "cannot sync %s", dir);
	return 0;
}

int qp_write_atomic(const char *path, const char *text, size_t len, mode_t mode, bool sync,
		    struct qp_err **err)
{
	qp_autofree char *tmp = qp_xasprintf("%s.%d.tmp", path, (int)getpid());
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
	int fd = open(tmp, flags, mode);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
		fd = open(tmp, flags, mode);  /* a dead process's, of the same pid */
	if (fd < 0)
		return qp_err_set(err, errno, "cannot create %s", tmp);
	int rc = 0;
	ssize_t n = write(fd, text, len);
	if (n != (ssize_t)len || (sync && fsync(fd) < 0))
		rc = qp_err_set(err, n < 0 || n == (ssize_t)len ? errno : EIO, "cannot write %s", tmp);
	if (close(fd) < 0 && rc == 0)
		rc = qp_err_set(err, errno, "cannot write %s", tmp);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = qp_err_set(err, errno, "cannot rename %s to %s", tmp, path);
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	return sync ? sync_dir(path, err) : 0;
}

int qp_lock_path(const char *path, int op)
{
	for (int tries = 0; tries < 1000; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -1;
		int rc;
		do
			rc = flock(fd, op);
		while (rc < 0 && errno == EINTR);
		struct stat held, now;
		if (rc == 0 && fstat(fd, &held) == 0 && stat(path, &now) == 0 &&
		    held.st_dev == now.st_dev && held.st_ino == now.st_ino)
			return fd;
		int e = errno;
		close(fd);
		if (rc < 0) {
			errno = e;
			return -1;
		}
		/* Unlinked (or replaced) by its last holder as it let go: again. */
	}
	errno = EAGAIN;
	return -1;
}

void qp_remove_stale_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".tmp"))
			continue;
		/* NAME.PID.tmp: the PID between the last two dots. */
		const char *end = e->d_name + n - 4, *dot = end;
		while (dot > e->d_name && dot[-1] != '.')
			dot--;
		if (dot == e->d_name || dot == end)
			continue;
		char *stop;
		long pid = strtol(dot, &stop, 10);
		if (stop != end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}
