#include "run/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/files.h"
#include "base/rundir.h"
#include "base/util.h"
#include "run/ledger.h"
#include "vfio/bind.h"
#include "vfio/group.h"

/* A lock per function so that two VMs never take one; the loser names the VM that
 * holds it. */
static int lock_devices(struct qp_vm_devices *d, struct qp_err **err)
{
	if (qp_rundir_mkdir("devices", err) < 0)
		return -1;
	d->locks = qp_xcalloc(d->plan->n_devs, sizeof(int));
	for (size_t i = 0; i < d->plan->n_devs; i++) {
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&d->plan->devs[i].host, a);
		qp_autofree char *path = qp_rundir_device_lock(a);
		int fd = qp_lock_path(path, LOCK_EX | LOCK_NB);
		if (fd < 0 && errno == EWOULDBLOCK) {
			qp_autofree char *holder = qp_devices_lock_holder(a);
			return qp_err_set(err, 0, "%s is taken by the VM %s", a,
					  holder ? holder : "(unknown)");
		}
		if (fd < 0)
			return qp_err_set(err, errno, "cannot lock %s", path);
		/* Who holds it: the VM, and its qpass by pid and start time (as a lease). */
		struct qp_holder self = qp_holder_self();
		char who[128];
		int len = snprintf(who, sizeof(who), "%s %d %llu\n", d->name, self.pid,
				   (unsigned long long)self.start);
		if (ftruncate(fd, 0) < 0 || pwrite(fd, who, (size_t)len, 0) != len) {
			close(fd);
			return qp_err_set(err, errno, "cannot write %s", path);
		}
		d->locks[d->n_locks++] = fd;
	}
	return 0;
}

static void unlock_devices(struct qp_vm_devices *d)
{
	for (size_t i = 0; i < d->n_locks; i++) {
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&d->plan->devs[i].host, a);
		qp_autofree char *path = qp_rundir_device_lock(a);
		unlink(path);
		close(d->locks[i]);
	}
	free(d->locks);
	d->locks = NULL;
	d->n_locks = 0;
}

char *qp_devices_lock_holder(const char *addr)
{
	qp_autofree char *path = qp_rundir_device_lock(addr);
	qp_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || flock(fd, LOCK_SH | LOCK_NB) == 0)
		return NULL;  /* no lock file, or nobody holds it */
	char holder[128] = "";
	ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
	holder[n > 0 ? n : 0] = '\0';
	holder[strcspn(holder, " \n")] = '\0';
	return qp_xstrdup(*holder ? holder : "(unknown)");
}

char *qp_devices_holder(const struct qp_ledger *l, const struct qp_pci_addr *a,
			const char *self)
{
	const struct qp_lease *e = qp_ledger_dev_holder(l, a);
	if (e && (!self || strcmp(e->name, self)))
		return qp_xstrdup(e->name);
	char addr[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(a, addr);
	char *holder = qp_devices_lock_holder(addr);
	if (holder && self && !strcmp(holder, self))
		qp_freep(&holder);
	return holder;
}

int qp_devices_take(struct qp_vm_devices *d, struct qp_err **err)
{
	const struct qp_plan *plan = d->plan;
	if (!plan->n_devs)
		return 0;
	if (lock_devices(d, err) < 0)
		return -1;
	struct qp_pci_addr *addrs = qp_xcalloc(plan->n_devs, sizeof(*addrs));
	for (size_t i = 0; i < plan->n_devs; i++)
		addrs[i] = plan->devs[i].host;
	int rc = qp_vfio_bind(d->root, d->name, addrs, plan->n_devs, err);
	free(addrs);
	if (rc < 0)
		return -1;
	d->bound = true;
	d->chowned = qp_xcalloc(plan->n_groups, sizeof(int));
	d->chowned_was = qp_xcalloc(plan->n_groups, sizeof(struct stat));
	for (size_t g = 0; g < plan->n_groups; g++) {
		if (qp_vfio_check_group(d->root, plan->groups[g], err) < 0)
			return -1;
		if (!d->user)
			continue;
		qp_autofree char *rel = qp_xasprintf("dev/vfio/%d", plan->groups[g]);
		qp_autoclose int fd = qp_root_openat(d->root, rel, O_PATH);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return qp_err_set(err, errno, "cannot stat /%s", rel);
		qp_autofree char *path = qp_xasprintf("/proc/self/fd/%d", fd);
		/* Journaled first: a crash from here on leaves restore what to undo. */
		if (qp_vfio_journal_node(d->name, plan->groups[g], st.st_uid, st.st_gid, err) < 0)
			return -1;
		if (chown(path, d->uid, d->gid) < 0)
			return qp_err_set(err, errno, "cannot give /%s to %s", rel, d->user);
		d->chowned[d->n_chowned] = plan->groups[g];
		d->chowned_was[d->n_chowned++] = st;
	}
	return 0;
}

void qp_devices_give_back(struct qp_vm_devices *d)
{
	for (size_t i = 0; i < d->n_chowned; i++) {
		qp_autofree char *rel = qp_xasprintf("dev/vfio/%d", d->chowned[i]);
		qp_autoclose int fd = qp_root_openat(d->root, rel, O_PATH);
		qp_autofree char *path = qp_xasprintf("/proc/self/fd/%d", fd);
		if (fd >= 0 && chown(path, d->chowned_was[i].st_uid, d->chowned_was[i].st_gid) < 0)
			qp_say(d->name, "cannot give /%s back to uid %u", rel,
			       (unsigned)d->chowned_was[i].st_uid);
	}
	free(d->chowned);
	free(d->chowned_was);
	d->chowned = NULL;
	d->chowned_was = NULL;
	d->n_chowned = 0;
	if (d->bound) {
		struct qp_err *err = NULL;
		if (qp_vfio_restore(d->root, d->name, NULL, 0, &err) < 0) {
			qp_say(d->name, "%s", err->msg);
			qp_say(d->name, "run `qpass restore %s` to try again", d->name);
			qp_err_free(err);
		} else {
			qp_say(d->name, "the devices are back on their host drivers");
		}
		d->bound = false;
	}
	unlock_devices(d);
}
