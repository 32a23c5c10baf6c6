#include "run/vmdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/rundir.h"
#include "base/util.h"

int qp_vmdir_take(const char *name, struct qp_vmdir *d, struct qp_err **err)
{
	d->lock_fd = -1;
	d->path = qp_rundir_vm(name, NULL);
	if (qp_mkdir_p(d->path, 0700, err) < 0)
		return -1;
	if (chmod(d->path, 0700) < 0)
		return qp_err_set(err, errno, "cannot chmod %s", d->path);
	qp_autofree char *lock = qp_rundir_vm(name, QP_VM_LOCK);
	d->lock_fd = qp_lock_path(lock, LOCK_EX | LOCK_NB);
	qp_autofree char *pidfile = qp_rundir_vm(name, QP_VM_PID);
	if (d->lock_fd < 0) {
		int e = errno;
		if (e != EWOULDBLOCK)
			return qp_err_set(err, e, "cannot lock %s", lock);
		char pid[32] = "";
		qp_autofclose FILE *f = fopen(pidfile, "re");
		if (f && !fgets(pid, sizeof(pid), f))
			pid[0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		qp_err_set(err, 0, "a VM named %s is already running%s%s%s", name,
			   *pid ? " (qpass pid " : "", pid, *pid ? ")" : "");
		/* The directory belongs to the running VM: not ours to remove. */
		qp_freep(&d->path);
		return qp_err_hint(err, "stop it first (SIGTERM to that qpass), or give this VM "
				   "another \"name\"");
	}
	/* Left by a qpass that died: the lock says nobody uses them. */
	qp_autofree char *qmp = qp_rundir_vm(name, QP_VM_QMP);
	unlink(qmp);
	qp_autofree char *stale = qp_rundir_vm(name, QP_VM_STATE);
	unlink(stale);
	qp_autofclose FILE *f = fopen(pidfile, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fflush(f) != 0)
		return qp_err_set(err, errno, "cannot write %s", pidfile);
	return 0;
}

void qp_vmdir_release(struct qp_vmdir *d)
{
	if (!d->path)
		return;
	const char *files[] = { QP_VM_QMP, QP_VM_CONTROL, QP_VM_PID, QP_VM_STATE, QP_VM_LOCK };
	for (size_t i = 0; i < QP_ARRAY_SIZE(files); i++) {
		qp_autofree char *f = qp_xasprintf("%s/%s", d->path, files[i]);
		unlink(f);
	}
	rmdir(d->path);
	qp_closep(&d->lock_fd);
	qp_freep(&d->path);
}

void qp_vmdir_write_state(const struct qp_vmdir *d, json_object *state)
{
	qp_autofree char *path = qp_xasprintf("%s/%s", d->path, QP_VM_STATE);
	qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
						  state, JSON_C_TO_STRING_PRETTY));
	json_object_put(state);
	struct qp_err *err = NULL;
	if (qp_write_atomic(path, text, strlen(text), 0644, false, &err) < 0)
		qp_err_free(err);
}

int qp_vmdir_hold(const char *name)
{
	qp_autofree char *dir = qp_rundir_vm(name, NULL);
	qp_autofree char *lock = qp_rundir_vm(name, QP_VM_LOCK);
	if (qp_mkdir_p(dir, 0700, NULL) < 0)
		return -1;
	return qp_lock_path(lock, LOCK_EX | LOCK_NB);
}

void qp_vmdir_unhold(const char *name, int fd)
{
	if (fd < 0)
		return;
	qp_autofree char *dir = qp_rundir_vm(name, NULL);
	qp_autofree char *lock = qp_rundir_vm(name, QP_VM_LOCK);
	/* Unlinked while held: a qpass that locks it next sees that, and locks anew. */
	unlink(lock);
	rmdir(dir);
	close(fd);
}

bool qp_vm_running(const char *name)
{
	qp_autofree char *lock = qp_rundir_vm(name, QP_VM_LOCK);
	qp_autoclose int fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return true;
	flock(fd, LOCK_UN);
	return false;
}

/* Whether pid is the QEMU of the VM name: its command line has -name guest=NAME,...
 * (a pid reused by another program is not taken for it). A zombie has none. */
static bool is_vm_qemu(pid_t pid, const char *name)
{
	qp_autofree char *path = qp_xasprintf("/proc/%d/cmdline", (int)pid);
	qp_autofclose FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	qp_autofree char *want = qp_xasprintf("guest=%s,", name);
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (!strncmp(buf + i, want, strlen(want)))
			return true;
	return false;
}

pid_t qp_vm_orphan_qemu(const char *name)
{
	qp_autofree char *path = qp_rundir_vm(name, QP_VM_STATE);
	json_object *st = json_object_from_file(path), *v;
	pid_t pid = 0;
	if (st && json_object_object_get_ex(st, "qemu_pid", &v))
		pid = (pid_t)json_object_get_int(v);
	json_object_put(st);
	for (int i = 0; pid > 0 && i < 100; i++) {
		if (!is_vm_qemu(pid, name))
			return 0;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return pid > 0 && is_vm_qemu(pid, name) ? pid : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **qp_vm_names(void)
{
	char **v = qp_xcalloc(1, sizeof(char *));
	size_t n = 0;
	DIR *d = opendir(qp_rundir());
	if (!d)
		return v;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		qp_autofree char *sock = qp_rundir_vm(e->d_name, QP_VM_CONTROL);
		if (access(sock, F_OK) < 0)
			continue;
		v = qp_xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = qp_xstrdup(e->d_name);
		v[n] = NULL;
	}
	closedir(d);
	qsort(v, n, sizeof(char *), cmp_str);
	return v;
}
