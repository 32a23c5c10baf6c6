#include "vfio/bind.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vfio/holders.h"
#include "vfio/sysfs.h"
#include "base/kernel.h"
#include "base/rundir.h"
#include "base/sysparse.h"
#include "base/util.h"

#define WRITE_TIMEOUT_MS 10000
#define LINK_WAIT_MS 3000

/* --- the journal ---------------------------------------------------------------- */

struct entry {
	struct qp_pci_addr addr;
	char *driver;    /* the driver it had; NULL: none */
	char *override;  /* the driver_override it had; NULL: none */
};

struct journal {
	char *path;
	struct entry *e;
	size_t n;
};

static char *journal_dir(void)
{
	return qp_xasprintf("%s/journal", qp_rundir());
}

static void journal_free(struct journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->e[i].driver);
		free(j->e[i].override);
	}
	free(j->e);
	free(j->path);
	memset(j, 0, sizeof(*j));
}

static const char *str_member(json_object *o, const char *key)
{
	json_object *v = json_object_object_get(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int journal_load(const char *owner, struct journal *j, struct qp_err **err)
{
	memset(j, 0, sizeof(*j));
	qp_autofree char *dir = journal_dir();
	j->path = qp_xasprintf("%s/%s.json", dir, owner);
	json_object *root = json_object_from_file(j->path);
	if (!root) {
		if (access(j->path, F_OK) < 0 && errno == ENOENT)
			return 0;
		qp_err_set(err, 0, "the journal %s is unreadable", j->path);
		return qp_err_hint(err, "it records which driver each device had; compare it "
				   "with `qpass list --all` and fix or remove it by hand");
	}
	json_object *entries = json_object_object_get(root, "functions");
	size_t n = json_object_is_type(entries, json_type_array) ? json_object_array_length(entries)
								 : 0;
	j->e = qp_xcalloc(n ? n : 1, sizeof(*j->e));
	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(entries, i);
		const char *a = str_member(x, "address");
		struct qp_err *pe = NULL;
		if (!a || qp_parse_pci_addr(a, &j->e[j->n].addr, &pe) < 0) {
			qp_err_free(pe);
			json_object_put(root);
			return qp_err_set(err, 0, "the journal %s: entry %zu has no valid address",
					  j->path, i);
		}
		const char *d = str_member(x, "driver"), *o = str_member(x, "driver_override");
		j->e[j->n].driver = d ? qp_xstrdup(d) : NULL;
		j->e[j->n].override = o ? qp_xstrdup(o) : NULL;
		j->n++;
	}
	json_object_put(root);
	return 0;
}

/* Writes the journal so that a crash leaves either the old or the new one: a temporary
 * file, fsync'd, renamed over, and the directory fsync'd. An empty journal is removed. */
static int journal_save(const struct journal *j, struct qp_err **err)
{
	qp_autofree char *dir = journal_dir();
	if (mkdir(qp_rundir(), 0755) < 0 && errno != EEXIST)
		return qp_err_set(err, errno, "cannot create %s", qp_rundir());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return qp_err_set(err, errno, "cannot create %s", dir);
	if (!j->n) {
		if (unlink(j->path) < 0 && errno != ENOENT)
			return qp_err_set(err, errno, "cannot remove %s", j->path);
	} else {
		json_object *root = json_object_new_object();
		json_object_object_add(root, "version", json_object_new_int(1));
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < j->n; i++) {
			char addr[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&j->e[i].addr, addr);
			json_object *x = json_object_new_object();
			json_object_object_add(x, "address", json_object_new_string(addr));
			json_object_object_add(x, "driver", j->e[i].driver ?
					       json_object_new_string(j->e[i].driver) : NULL);
			json_object_object_add(x, "driver_override", j->e[i].override ?
					       json_object_new_string(j->e[i].override) : NULL);
			json_object_array_add(a, x);
		}
		json_object_object_add(root, "functions", a);
		qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
								    root, JSON_C_TO_STRING_PRETTY));
		json_object_put(root);
		qp_autofree char *tmp = qp_xasprintf("%s.tmp", j->path);
		qp_autoclose int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			return qp_err_set(err, errno, "cannot write %s", tmp);
		size_t len = strlen(text);
		if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
			return qp_err_set(err, errno, "cannot write %s", tmp);
		if (rename(tmp, j->path) < 0)
			return qp_err_set(err, errno, "cannot rename %s", tmp);
	}
	qp_autoclose int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		return qp_err_set(err, errno, "cannot sync %s", dir);
	return 0;
}

static struct entry *journal_find(struct journal *j, const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < j->n; i++)
		if (!qp_pci_addr_cmp(&j->e[i].addr, a))
			return &j->e[i];
	return NULL;
}

bool qp_vfio_journaled(const char *owner, const struct qp_pci_addr *a)
{
	struct journal j;
	if (journal_load(owner, &j, NULL) < 0)
		return false;
	bool found = a ? journal_find(&j, a) != NULL : j.n > 0;
	journal_free(&j);
	return found;
}

char **qp_vfio_journals(void)
{
	char **v = qp_xcalloc(1, sizeof(char *));
	qp_autofree char *dir = journal_dir();
	DIR *d = opendir(dir);
	if (!d)
		return v;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > 5 && !strcmp(e->d_name + n - 5, ".json"))
			qp_strv_push(&v, qp_xstrndup(e->d_name, n - 5));
	}
	closedir(d);
	size_t n = 0;
	while (v[n])
		n++;
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k && strcmp(v[k - 1], v[k]) > 0; k--) {
			char *t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	return v;
}

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
static int restore_one(const struct qp_root *root, const struct entry *e, bool release_only,
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

static int bind_one(const struct qp_root *root, struct journal *j, const struct qp_pci_addr *a,
		    struct qp_err **err)
{
	char addr[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(a, addr);
	struct state now;
	if (read_state(root, addr, &now, err) < 0)
		return -1;
	/* The journal first: after a crash, restore must know what this function had. */
	if (!journal_find(j, a)) {
		j->e = qp_xrealloc(j->e, (j->n + 1) * sizeof(*j->e));
		j->e[j->n++] = (struct entry){ *a, now.driver ? qp_xstrdup(now.driver) : NULL,
					       now.override ? qp_xstrdup(now.override) : NULL };
		if (journal_save(j, err) < 0) {
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
	struct journal j;
	if (journal_load(owner, &j, err) < 0)
		return -1;
	int rc = ensure_vfio_driver(root, err);
	size_t done = 0;
	for (; rc == 0 && done < n; done++)
		rc = bind_one(root, &j, &addrs[done], err);
	journal_free(&j);
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

int qp_vfio_restore(const struct qp_root *root, const char *owner,
		    const struct qp_pci_addr *addrs, size_t n, struct qp_err **err)
{
	struct journal j;
	if (journal_load(owner, &j, err) < 0)
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
	if (journal_save(&j, rc < 0 ? NULL : err) < 0 && rc == 0)
		rc = -1;
	journal_free(&j);
	return rc;
}
