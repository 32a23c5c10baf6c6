#include "vfio/bind.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/kernel.h"
#include "base/sysparse.h"
#include "base/util.h"
#include "vfio/holders.h"
#include "vfio/journal.h"
#include "vfio/sysfs.h"

#define WRITE_TIMEOUT_MS 10000
#define LINK_WAIT_MS 3000

/* --- one function's state in sysfs ---------------------------------------------- */

struct state {
	char *driver;
	char *override;
};

static void state_free(struct state *s)
{
	free(s->driver);
	free(s->override);
	s->driver = s->override = NULL;
}

static int read_state(const struct qp_root *root, const char *addr, struct state *s,
		      struct qp_err **err)
{
	memset(s, 0, sizeof(*s));
	qp_autofree char *link = qp_xasprintf("sys/bus/pci/devices/%s/driver", addr);
	qp_autofree char *target = NULL;
	if (qp_root_readlink(root, link, true, &target, err) < 0)
		return -1;
	if (target && qp_parse_link_name(target, "drivers", &s->driver, err) < 0)
		return -1;
	qp_autofree char *ov = qp_xasprintf("sys/bus/pci/devices/%s/driver_override", addr);
	qp_autofree char *text = NULL;
	size_t len;
	if (qp_root_read_opt(root, ov, &text, &len, err) < 0)
		return -1;
	if (text) {
		if (qp_parse_line(text, len, &s->override, err) < 0)
			return -1;
		if (!strcmp(s->override, "(null)") || !*s->override)
			qp_freep(&s->override);
	}
	return 0;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Waits, bounded, for the driver link to become `want` (NULL: no driver). */
static int wait_driver(const struct qp_root *root, const char *addr, const char *want,
		       struct qp_err **err)
{
	for (int waited = 0;; waited += 20) {
		struct state s;
		if (read_state(root, addr, &s, err) < 0)
			return -1;
		bool ok = same(s.driver, want);
		qp_autofree char *now = s.driver ? qp_xstrdup(s.driver) : NULL;
		state_free(&s);
		if (ok)
			return 0;
		if (waited >= LINK_WAIT_MS)
			return qp_err_set(err, 0, "%s: its driver is %s, not %s as asked", addr,
					  now ? now : "none", want ? want : "none");
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* The deadline of one sysfs write: QPASS_SYSFS_TIMEOUT_MS, else 10 s. */
static int write_timeout_ms(void)
{
	const char *v = secure_getenv("QPASS_SYSFS_TIMEOUT_MS");
	int ms = v ? atoi(v) : 0;
	return ms > 0 ? ms : WRITE_TIMEOUT_MS;
}

static int write_attr(const struct qp_root *root, const char *rel, const char *data,
		      struct qp_err **err)
{
	return qp_sysfs_write(root, rel, data, write_timeout_ms(), err);
}

/* --- give back, bind ------------------------------------------------------------ */

/* Puts one function back as the journal entry says; nothing when it already is. With
 * release_only, only takes it off the driver it has now, when that is not the
 * journaled one (the first of restore's two passes). */
static int restore_one(const struct qp_root *root, const struct qp_journal_entry *e, bool release_only,
		       struct qp_err **err)
{
	char addr[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(&e->addr, addr);
	struct state now;
	if (read_state(root, addr, &now, err) < 0)
		return -1;
	int rc = 0;
	if (!release_only && !same(now.override, e->override)) {
		qp_autofree char *rel = qp_xasprintf("sys/bus/pci/devices/%s/driver_override", addr);
		/* A newline clears an override. */
		qp_autofree char *val = qp_xasprintf("%s\n", e->override ? e->override : "");
		rc = write_attr(root, rel, val, err);
	}
	if (rc == 0 && now.driver && !same(now.driver, e->driver)) {
		qp_autofree char *rel = qp_xasprintf("sys/bus/pci/drivers/%s/unbind", now.driver);
		rc = write_attr(root, rel, addr, err);
	}
	if (!release_only && rc == 0 && e->driver && !same(now.driver, e->driver)) {
		qp_autofree char *rel = qp_xasprintf("sys/bus/pci/drivers/%s/bind", e->driver);
		rc = write_attr(root, rel, addr, err);
	}
	state_free(&now);
	if (!release_only && rc == 0)
		rc = wait_driver(root, addr, e->driver, err);
	if (rc < 0)
		qp_err_prefix(err, "giving %s back to %s", addr, e->driver ? e->driver : "no driver");
	return rc;
}

static int ensure_vfio_driver(const struct qp_root *root, struct qp_err **err)
{
	if (qp_root_exists(root, "sys/bus/pci/drivers/vfio-pci"))
		return 0;
	int rc;
	if (qp_kernel_modprobe) {
		rc = qp_kernel_modprobe(root, "vfio-pci");
	} else {
		pid_t pid = fork();
		if (pid == 0) {
			execlp("modprobe", "modprobe", "vfio-pci", (char *)NULL);
			_exit(127);
		}
		int status = 0;
		rc = pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		     WEXITSTATUS(status) ? -1 : 0;
	}
	if (rc < 0 || !qp_root_exists(root, "sys/bus/pci/drivers/vfio-pci")) {
		qp_err_set(err, 0, "the vfio-pci driver is not loaded, and modprobe vfio-pci "
			   "failed");
		return qp_err_hint(err, "load it (modprobe vfio-pci), and at every boot: echo "
				   "vfio-pci > /etc/modules-load.d/vfio-pci.conf");
	}
	return 0;
}

static int bind_one(const struct qp_root *root, struct qp_journal *j, const struct qp_pci_addr *a,
		    struct qp_err **err)
{
	char addr[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(a, addr);
	struct state now;
	if (read_state(root, addr, &now, err) < 0)
		return -1;
	/* The journal first: after a crash, restore must know what this function had. */
	if (!qp_journal_find(j, a)) {
		j->e = qp_xrealloc(j->e, (j->n + 1) * sizeof(*j->e));
		j->e[j->n++] = (struct qp_journal_entry){ *a, now.driver ? qp_xstrdup(now.driver) : NULL,
					       now.override ? qp_xstrdup(now.override) : NULL };
		if (qp_journal_save(j, err) < 0) {
			state_free(&now);
			return -1;
		}
	}
	int rc = 0;
	if (!same(now.driver, "vfio-pci")) {
		qp_autofree char *ov = qp_xasprintf("sys/bus/pci/devices/%s/driver_override", addr);
		rc = write_attr(root, ov, "vfio-pci", err);
		if (rc == 0 && now.driver) {
			qp_autofree char *rel = qp_xasprintf("sys/bus/pci/drivers/%s/unbind",
							     now.driver);
			rc = write_attr(root, rel, addr, err);
			/* A driver that will not let go: someone has the device open. */
			if (rc < 0 && err && *err && (*err)->errnum == ETIMEDOUT) {
				qp_autofree char *who = qp_vfio_holders(root, addr);
				if (who)
					qp_err_hint(err, "the device is in use by %s: stop %s (a "
						    "display server, a CUDA program), then try again",
						    who, strchr(who, ',') ? "them" : "it");
				else
					qp_err_hint(err, "the %s driver is still using the device; "
						    "stop what uses it (a display server?)", now.driver);
			}
		}
		if (rc == 0)
			rc = write_attr(root, "sys/bus/pci/drivers_probe", addr, err);
		if (rc == 0)
			rc = wait_driver(root, addr, "vfio-pci", err);
	}
	state_free(&now);
	if (rc < 0)
		qp_err_prefix(err, "binding %s to vfio-pci", addr);
	return rc;
}

int qp_vfio_bind(const struct qp_root *root, const char *owner, const struct qp_pci_addr *addrs,
		 size_t n, struct qp_err **err)
{
	struct qp_journal j;
	if (qp_journal_load(owner, &j, err) < 0)
		return -1;
	int rc = ensure_vfio_driver(root, err);
	size_t done = 0;
	for (; rc == 0 && done < n; done++)
		rc = bind_one(root, &j, &addrs[done], err);
	qp_journal_free(&j);
	if (rc == 0)
		return 0;
	/* Nothing is left half bound: every function this call touched goes back. */
	struct qp_err *rerr = NULL;
	if (qp_vfio_restore(root, owner, addrs, done, &rerr) < 0) {
		qp_err_hint(err, "putting the devices back failed too (%s); `qpass restore %s` "
			    "tries again", rerr->msg, owner);
		qp_err_free(rerr);
	}
	return -1;
}

int qp_vfio_journal_node(const char *owner, int group, unsigned uid, unsigned gid,
			 struct qp_err **err)
{
	struct qp_journal j;
	if (qp_journal_load(owner, &j, err) < 0)
		return -1;
	for (size_t i = 0; i < j.n_nodes; i++)
		if (j.nodes[i].group == group) {
			qp_journal_free(&j);
			return 0;
		}
	j.nodes = qp_xrealloc(j.nodes, (j.n_nodes + 1) * sizeof(*j.nodes));
	j.nodes[j.n_nodes++] = (struct qp_journal_node){ group, uid, gid };
	int rc = qp_journal_save(&j, err);
	qp_journal_free(&j);
	return rc;
}

/* Each recorded group node back to its owner; those done (or gone) leave the journal. */
static int restore_nodes(const struct qp_root *root, struct qp_journal *j, struct qp_err **err)
{
	int rc = 0;
	size_t kept = 0;
	for (size_t i = 0; i < j->n_nodes; i++) {
		struct qp_journal_node *nd = &j->nodes[i];
		qp_autofree char *rel = qp_xasprintf("dev/vfio/%d", nd->group);
		qp_autoclose int fd = qp_root_openat(root, rel, O_PATH | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT)
			continue;  /* the kernel removed it with the group */
		int e = fd < 0 ? errno : 0;
		qp_autofree char *path = qp_xasprintf("/proc/self/fd/%d", fd);
		if (fd >= 0 && chown(path, nd->uid, nd->gid) < 0)
			e = errno;
		if (e) {
			if (rc == 0 && err && !*err)
				qp_err_set(err, e, "cannot give /%s back to uid %u gid %u", rel,
					   nd->uid, nd->gid);
			rc = -1;
			j->nodes[kept++] = *nd;
		}
	}
	j->n_nodes = kept;
	return rc;
}

int qp_vfio_restore(const struct qp_root *root, const char *owner,
		    const struct qp_pci_addr *addrs, size_t n, struct qp_err **err)
{
	struct qp_journal j;
	if (qp_journal_load(owner, &j, err) < 0)
		return -1;
	int rc = 0;
	bool *skip = qp_xcalloc(j.n ? j.n : 1, sizeof(bool));
	for (size_t i = 0; i < j.n; i++) {
		bool wanted = !addrs;
		for (size_t k = 0; addrs && k < n; k++)
			wanted = wanted || !qp_pci_addr_cmp(&addrs[k], &j.e[i].addr);
		skip[i] = !wanted;
	}
	/* First every function off vfio-pci, the last bound first. Each unbind waits until
	 * QEMU has let go of that device, and vfio-pci resets the device's functions
	 * together when the last one closes: a host driver bound before then races with
	 * that reset (seen in the lab after kill -9: EBUSY from bind, or a bind that
	 * succeeds and leaves no driver). */
	for (size_t i = j.n; i-- > 0;) {
		struct qp_err *e1 = NULL;
		if (skip[i] || restore_one(root, &j.e[i], true, &e1) == 0)
			continue;
		if (rc == 0 && err && !*err)
			*err = e1;
		else
			qp_err_free(e1);
		rc = -1;
		skip[i] = true;  /* stays in the journal */
	}
	/* Then each back to its driver, in the same order. */
	for (size_t i = j.n; i-- > 0;) {
		if (skip[i])
			continue;
		struct qp_err *e1 = NULL;
		if (restore_one(root, &j.e[i], false, &e1) < 0) {
			/* Go on with the others; report the first failure. */
			if (rc == 0 && err && !*err)
				*err = e1;
			else
				qp_err_free(e1);
			rc = -1;
			continue;
		}
		free(j.e[i].driver);
		free(j.e[i].override);
		memmove(&j.e[i], &j.e[i + 1], (j.n - i - 1) * sizeof(*j.e));
		memmove(&skip[i], &skip[i + 1], (j.n - i - 1) * sizeof(*skip));
		j.n--;
	}
	free(skip);
	if (!j.n && restore_nodes(root, &j, rc < 0 ? NULL : err) < 0)
		rc = -1;
	if (qp_journal_save(&j, rc < 0 ? NULL : err) < 0 && rc == 0)
		rc = -1;
	qp_journal_free(&j);
	return rc;
}
