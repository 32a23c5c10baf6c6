#include "run/ledger.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/rundir.h"
#include "base/sysparse.h"
#include "base/util.h"
#include "run/vmdir.h"
#include "vfio/bind.h"

/* How long `up` waits for another `up` to let go of the host lock. */
#define LOCK_WAIT_MS 30000

uint64_t qp_proc_start(int pid)
{
	if (pid <= 0)
		return 0;
	char path[32], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	qp_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The start time is field 22. A zombie has ended. */
	char state = qp_parse_stat_state(buf);
	unsigned long long start;
	if (state == 'Z' || state == 'X' || qp_parse_stat_field(buf, 22, &start) < 0)
		return 0;
	return start;
}

struct qp_holder qp_holder_self(void)
{
	return (struct qp_holder){ getpid(), qp_proc_start(getpid()) };
}

static bool alive(const struct qp_holder *h)
{
	return h->pid > 0 && h->start && qp_proc_start(h->pid) == h->start;
}

int qp_ledger_lock(struct qp_err **err)
{
	if (qp_rundir_mkdir("leases", err) < 0)
		return -1;
	qp_autofree char *path = qp_rundir_leases_lock();
	int64_t until = qp_now_ms() + LOCK_WAIT_MS;
	int fd;
	while ((fd = qp_lock_path(path, LOCK_EX | LOCK_NB)) < 0) {
		if (errno != EWOULDBLOCK || qp_now_ms() > until) {
			int e = errno;
			char pid[24] = "";
			qp_autoclose int rd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			ssize_t n = rd < 0 ? -1 : pread(rd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			qp_err_set(err, e == EWOULDBLOCK ? 0 : e, "cannot take the host lock %s%s%s%s",
				   path, *pid ? " (qpass pid " : "", pid, *pid ? " holds it)" : "");
			return qp_err_hint(err, "another qpass (up, bind, unbind or restore) is changing "
					   "the host; try again");
		}
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	char pid[24];
	int len = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		close(fd);
		return qp_err_set(err, errno, "cannot write %s", path);
	}
	return fd;
}

/* What the lease's QEMU has resident now, in MiB (VmRSS). */
static uint64_t resident_mib(int pid)
{
	char path[32], line[128];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	qp_autofclose FILE *f = fopen(path, "re");
	unsigned long long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	return kb / 1024;
}

/* A dead VM's lease: its devices given back, then the lease gone. */
static int reclaim_lease(const struct qp_root *root, const struct qp_lease *e, const char *path,
			 struct qp_err **err)
{
	if (qp_vfio_restore(root, e->name, NULL, 0, err) < 0)
		return qp_err_hint(err, "the VM %s is gone (its qpass and QEMU are not running), "
				   "but its devices could not be given back; run `qpass restore %s`",
				   e->name, e->name);
	if (unlink(path) < 0 && errno != ENOENT)
		return qp_err_set(err, errno, "cannot remove %s", path);
	fprintf(stderr, "qpass: restored the devices of %s (its qpass and QEMU are gone) and "
		"freed what it held\n", e->name);
	return 0;
}

static int read_lease(const char *path, struct qp_lease *e, struct qp_err **err)
{
	json_object *o = json_object_from_file(path);
	if (!o) {
		qp_err_set(err, 0, "cannot read the lease %s: %s", path, json_util_get_last_err());
		return qp_err_hint(err, "when its VM is gone, `qpass restore NAME` clears it");
	}
	int rc = qp_lease_parse(o, path, e, err);
	json_object_put(o);
	return rc;
}

static int cmp_lease(const void *a, const void *b)
{
	return strcmp(((const struct qp_lease *)a)->name, ((const struct qp_lease *)b)->name);
}

int qp_ledger_load(const struct qp_root *root, bool reclaim, struct qp_ledger *out,
		   struct qp_err **err)
{
	struct qp_ledger l = { 0 };
	qp_autofree char *dir = qp_rundir_lease(NULL);
	if (reclaim)
		qp_remove_stale_tmp(dir);  /* under the host lock, as every reclaim */
	DIR *d = opendir(dir);
	if (!d && errno != ENOENT)
		return qp_err_set(err, errno, "cannot read %s", dir);
	int rc = 0, reclaimed = 0;
	for (struct dirent *de; d && rc == 0 && (de = readdir(d));) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		qp_autofree char *path = qp_xasprintf("%s/%s", dir, de->d_name);
		struct qp_lease e;
		if ((rc = read_lease(path, &e, err)) < 0)
			break;
		bool qpass = alive(&e.qpass), qemu = alive(&e.qemu);
		/* A QEMU whose qpass died dies with it (PR_SET_PDEATHSIG): a moment. */
		for (int i = 0; reclaim && !qpass && qemu && i < 100; i++) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			qemu = alive(&e.qemu);
		}
		/* A QEMU of the VM that state.json names, with the VM's -name, is its QEMU too
		 * (one started before its lease said so). */
		pid_t other = !qpass && !qemu && reclaim ? qp_vm_orphan_qemu(e.name) : 0;
		if (other) {
			e.qemu = (struct qp_holder){ other, qp_proc_start(other) };
			qemu = true;
		}
		if (!qpass && !qemu) {
			if (reclaim && (rc = reclaim_lease(root, &e, path, err)) == 0)
				reclaimed++;
			qp_lease_free(&e);
			continue;
		}
		e.orphan = !qpass;
		e.resident_mib = qemu ? resident_mib(e.qemu.pid) : 0;
		l.leases = qp_xrealloc(l.leases, (l.n + 1) * sizeof(*l.leases));
		l.leases[l.n++] = e;
	}
	if (d)
		closedir(d);
	if (rc < 0) {
		qp_ledger_free(&l);
		return -1;
	}
	if (l.n)
		qsort(l.leases, l.n, sizeof(*l.leases), cmp_lease);
	*out = l;
	return reclaimed;
}

const struct qp_lease *qp_ledger_find(const struct qp_ledger *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->leases[i].name, name))
			return &l->leases[i];
	return NULL;
}

int qp_ledger_write(const struct qp_lease *lease, struct qp_err **err)
{
	if (qp_rundir_mkdir("leases", err) < 0)
		return -1;
	json_object *o = qp_lease_json(lease);
	qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
						  o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	json_object_put(o);
	qp_autofree char *path = qp_rundir_lease(lease->name);
	return qp_write_atomic(path, text, strlen(text), 0600, false, err);
}

void qp_ledger_remove(const char *name)
{
	qp_autofree char *path = qp_rundir_lease(name);
	unlink(path);
}
