/* qpass-fk: qpass with a fake Linux PCI core under it, for fixture trees.
 *
 * Real sysfs reacts to writes; a fixture tree is plain files. This fake applies each
 * write to the tree as Linux does (drivers/pci/pci-driver.c, drivers/base/bus.c):
 *   devices/ADDR/driver_override   stores the name; "\n" clears it to "(null)"
 *   drivers/D/unbind  ADDR         unlinks ADDR from D; ENODEV when D does not have it
 *   drivers/D/bind    ADDR         links ADDR to D; EBUSY when it has a driver, ENODEV
 *                                  when D does not match (override, or the ids)
 *   drivers_probe     ADDR         binds an unbound ADDR to its override, else to the
 *                                  driver its ids match (.fake-kernel-natural)
 * and /dev/vfio/N exists while a member of group N is on vfio-pci; `modprobe vfio-pci`
 * makes the driver appear. Everything else is written as it is.
 *
 * Faults, for the crash tests: QPASS_FAKE_FAULT=N:WHAT acts on the Nth sysfs write of
 * the process: WHAT is an errno name (EBUSY, ENODEV, EIO, EINVAL) to fail it, hang to
 * block it, kill to kill qpass before it, killafter to kill qpass after it took effect.
 * QPASS_FAKE_MEMLOCK=EPERM: RLIMIT_MEMLOCK cannot be raised. And CPU affinity on the
 * fixture's CPUs (which this machine need not have) is kept per thread and read back;
 * memory binds to any node the fixture has. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cpulist.h"
#include "base/kernel.h"
#include "base/root.h"
#include "base/util.h"
#include "cli/cli.h"

#define PCI "sys/bus/pci"

static int put(const struct qp_root *r, const char *rel, const char *text)
{
	int fd = openat(r->fd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? errno : 0;
}

/* The device's directory, relative to the root: "sys/devices/pci0000:00/.../ADDR". */
static char *dev_dir(const struct qp_root *r, const char *addr)
{
	qp_autofree char *link = qp_xasprintf(PCI "/devices/%s", addr);
	char target[4096];
	ssize_t n = readlinkat(r->fd, link, target, sizeof(target) - 1);
	if (n < 0)
		return NULL;
	target[n] = '\0';
	char *out = NULL;
	struct qp_err *err = NULL;
	if (qp_path_join_link(PCI "/devices", target, &out, &err) < 0)
		qp_err_free(err);
	return out;
}

/* A relative link at `at` (root-relative) to `to` (root-relative), as sysfs has them. */
static int link_rel(const struct qp_root *r, const char *at, const char *to)
{
	/* Both are folded paths: drop the common directories, climb out of the rest. */
	const char *slash = strrchr(at, '/');
	qp_autofree char *from = qp_xstrndup(at, slash ? (size_t)(slash - at) : 0);
	size_t common = 0, i = 0;
	for (;; i++) {
		char a = from[i], b = to[i];
		if ((a == '/' || !a) && (b == '/' || !b))
			common = i;
		if (!a || !b || a != b)
			break;
	}
	struct qp_buf rel = { 0 };
	qp_buf_add(&rel, "");
	/* One "../" per directory of `from` below the common part. */
	const char *rest = from + common + (from[common] == '/');
	if (*rest)
		qp_buf_add(&rel, "../");
	for (const char *p = rest; *p; p++)
		if (*p == '/')
			qp_buf_add(&rel, "../");
	qp_buf_add(&rel, to + common + (to[common] == '/'));
	qp_autofree char *s = qp_buf_steal(&rel);
	return symlinkat(s, r->fd, at) < 0 ? errno : 0;
}

static char *current_driver(const struct qp_root *r, const char *dir)
{
	qp_autofree char *link = qp_xasprintf("%s/driver", dir);
	char target[4096];
	ssize_t n = readlinkat(r->fd, link, target, sizeof(target) - 1);
	if (n < 0)
		return NULL;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	return qp_xstrdup(base ? base + 1 : target);
}

static char *override_of(const struct qp_root *r, const char *dir)
{
	qp_autofree char *rel = qp_xasprintf("%s/driver_override", dir);
	qp_autofree char *text = NULL;
	struct qp_err *err = NULL;
	if (qp_root_read(r, rel, &text, NULL, &err) < 0) {
		qp_err_free(err);
		return NULL;
	}
	text[strcspn(text, "\n")] = '\0';
	return strcmp(text, "(null)") && *text ? qp_xstrdup(text) : NULL;
}

static char *natural_of(const struct qp_root *r, const char *addr)
{
	qp_autofree char *text = NULL;
	struct qp_err *err = NULL;
	if (qp_root_read(r, ".fake-kernel-natural", &text, NULL, &err) < 0) {
		qp_err_free(err);
		return NULL;
	}
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char a[32], d[64];
		if (sscanf(line, "%31s %63s", a, d) == 2 && !strcmp(a, addr))
			return qp_xstrdup(d);
	}
	return NULL;
}

/* /dev/vfio/N follows whether any member of group N is on vfio-pci. */
static void update_group_node(const struct qp_root *r, const char *dir)
{
	qp_autofree char *glink = qp_xasprintf("%s/iommu_group", dir);
	char target[4096];
	ssize_t n = readlinkat(r->fd, glink, target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	const char *group = strrchr(target, '/') + 1;
	qp_autofree char *members = qp_xasprintf("sys/kernel/iommu_groups/%s/devices", group);
	char **names = NULL;
	struct qp_err *err = NULL;
	bool any = false;
	if (qp_root_list(r, members, true, &names, &err) == 0) {
		for (char **m = names; *m; m++) {
			qp_autofree char *d = dev_dir(r, *m);
			qp_autofree char *drv = d ? current_driver(r, d) : NULL;
			any = any || (drv && !strcmp(drv, "vfio-pci"));
		}
	}
	qp_err_free(err);
	qp_strv_free(names);
	qp_autofree char *node = qp_xasprintf("dev/vfio/%s", group);
	if (any) {
		mkdirat(r->fd, "dev/vfio", 0755);
		put(r, node, "");
	} else {
		unlinkat(r->fd, node, 0);
	}
}

static int do_bind(const struct qp_root *r, const char *drv, const char *dir, const char *addr)
{
	qp_autofree char *drvdir = qp_xasprintf(PCI "/drivers/%s", drv);
	qp_autofree char *at_dev = qp_xasprintf("%s/driver", dir);
	qp_autofree char *at_drv = qp_xasprintf("%s/%s", drvdir, addr);
	int e = link_rel(r, at_dev, drvdir);
	if (!e)
		e = link_rel(r, at_drv, dir);
	if (!strcmp(drv, "vfio-pci"))
		update_group_node(r, dir);
	return e;
}

static int apply(const struct qp_root *r, const char *rel, const char *data)
{
	qp_autofree char *value = qp_xstrdup(data);
	value[strcspn(value, "\n")] = '\0';
	char addr[64], drv[128], attr[64];
	if (sscanf(rel, PCI "/devices/%63[^/]/%63s", addr, attr) == 2 &&
	    !strcmp(attr, "driver_override")) {
		qp_autofree char *text = qp_xasprintf("%s\n", *value ? value : "(null)");
		return put(r, rel, text);
	}
	if (!strcmp(rel, PCI "/drivers_probe")) {
		qp_autofree char *dir = dev_dir(r, value);
		if (!dir)
			return ENODEV;
		qp_autofree char *now = current_driver(r, dir);
		if (now)
			return 0;
		qp_autofree char *target = override_of(r, dir);
		if (!target)
			target = natural_of(r, value);
		qp_autofree char *drvdir = target ? qp_xasprintf(PCI "/drivers/%s", target) : NULL;
		if (!target || faccessat(r->fd, drvdir, F_OK, 0) < 0)
			return 0;  /* no driver wants it: it stays unbound, as in Linux */
		return do_bind(r, target, dir, value);
	}
	if (sscanf(rel, PCI "/drivers/%127[^/]/%63s", drv, attr) == 2 &&
	    (!strcmp(attr, "bind") || !strcmp(attr, "unbind"))) {
		qp_autofree char *dir = dev_dir(r, value);
		if (!dir)
			return ENODEV;
		qp_autofree char *now = current_driver(r, dir);
		if (!strcmp(attr, "unbind")) {
			if (!now || strcmp(now, drv))
				return ENODEV;
			qp_autofree char *at_dev = qp_xasprintf("%s/driver", dir);
			qp_autofree char *at_drv = qp_xasprintf(PCI "/drivers/%s/%s", drv, value);
			unlinkat(r->fd, at_dev, 0);
			unlinkat(r->fd, at_drv, 0);
			if (!strcmp(drv, "vfio-pci"))
				update_group_node(r, dir);
			return 0;
		}
		if (now)
			return EBUSY;
		qp_autofree char *ov = override_of(r, dir);
		qp_autofree char *nat = natural_of(r, value);
		if (ov ? strcmp(ov, drv) : (!nat || strcmp(nat, drv)))
			return ENODEV;
		return do_bind(r, drv, dir, value);
	}
	return put(r, rel, data);
}

static int fault_at(unsigned step, char *what, size_t len)
{
	const char *f = getenv("QPASS_FAKE_FAULT");
	unsigned n;
	char w[32];
	if (!f || sscanf(f, "%u:%31s", &n, w) != 2 || n != step)
		return 0;
	snprintf(what, len, "%s", w);
	return 1;
}

static int fake_write(const struct qp_root *r, const char *rel, const char *data)
{
	char what[32];
	if (fault_at(qp_sysfs_writes, what, sizeof(what))) {
		if (!strcmp(what, "EBUSY"))
			return EBUSY;
		if (!strcmp(what, "ENODEV"))
			return ENODEV;
		if (!strcmp(what, "EIO"))
			return EIO;
		if (!strcmp(what, "EINVAL"))
			return EINVAL;
		if (!strcmp(what, "hang")) {
			pause();
			return EINTR;
		}
		if (!strcmp(what, "kill")) {
			kill(getppid(), SIGKILL);
			return EINTR;
		}
		if (!strcmp(what, "killafter")) {
			int e = apply(r, rel, data);
			kill(getppid(), SIGKILL);
			return e;
		}
	}
	return apply(r, rel, data);
}

static int fake_modprobe(const struct qp_root *r, const char *module)
{
	if (strcmp(module, "vfio-pci"))
		return -1;
	mkdirat(r->fd, PCI "/drivers/vfio-pci", 0755);
	const char *files[] = { "bind", "unbind", "new_id", "remove_id", "uevent" };
	for (size_t i = 0; i < QP_ARRAY_SIZE(files); i++) {
		qp_autofree char *f = qp_xasprintf(PCI "/drivers/vfio-pci/%s", files[i]);
		put(r, f, "");
	}
	mkdirat(r->fd, "sys/module/vfio_pci", 0755);
	put(r, "sys/module/vfio_pci/initstate", "live\n");
	mkdirat(r->fd, "dev/vfio", 0755);
	put(r, "dev/vfio/vfio", "");
	return 0;
}

/* A group is viable when every member but bridges is on vfio-pci, pci-stub or none. */
static int fake_vfio_check(const struct qp_root *r, int group)
{
	qp_autofree char *members = qp_xasprintf("sys/kernel/iommu_groups/%d/devices", group);
	char **names = NULL;
	struct qp_err *err = NULL;
	if (qp_root_list(r, members, false, &names, &err) < 0) {
		qp_err_free(err);
		return ENOENT;
	}
	int rc = 0;
	for (char **m = names; *m && !rc; m++) {
		qp_autofree char *dir = dev_dir(r, *m);
		qp_autofree char *cls = qp_xasprintf("%s/class", dir ? dir : "");
		qp_autofree char *text = NULL;
		if (qp_root_read(r, cls, &text, NULL, &err) == 0 && !strncmp(text, "0x0604", 6))
			continue;
		qp_err_free(err);
		err = NULL;
		qp_autofree char *drv = dir ? current_driver(r, dir) : NULL;
		if (drv && strcmp(drv, "vfio-pci") && strcmp(drv, "pci-stub"))
			rc = EINVAL;
	}
	qp_strv_free(names);
	return rc;
}

/* Locked memory is the real kernel's business; a fixture VM locks none. With
 * QPASS_FAKE_MEMLOCK=EPERM the limit cannot be raised, as without CAP_SYS_RESOURCE. */
static int fake_memlock(uint64_t bytes)
{
	(void)bytes;
	const char *m = getenv("QPASS_FAKE_MEMLOCK");
	return m && !strcmp(m, "EPERM") ? EPERM : 0;
}

/* CPU affinity: the fixture's CPUs are not this machine's, so the fake keeps what each
 * thread was pinned to, as the kernel would, and gives it back. As the kernel, it
 * refuses a set with no online CPU of the host (EINVAL). */
static struct qp_cpulist online;
static struct {
	int tid;
	struct qp_cpulist cpus;
} pinned[256];
static size_t n_pinned;

static int fake_setaffinity(int tid, const struct qp_cpulist *cpus)
{
	bool any = false;
	for (size_t i = 0; i < cpus->n; i++)
		any = any || qp_cpulist_has(&online, cpus->cpu[i]);
	if (!any)
		return EINVAL;
	size_t i = 0;
	while (i < n_pinned && pinned[i].tid != tid)
		i++;
	if (i == n_pinned) {
		if (n_pinned == QP_ARRAY_SIZE(pinned))
			return ENOMEM;
		pinned[n_pinned++].tid = tid;
	}
	qp_cpulist_free(&pinned[i].cpus);
	for (size_t c = 0; c < cpus->n; c++)
		if (qp_cpulist_has(&online, cpus->cpu[c]))
			qp_cpulist_add(&pinned[i].cpus, cpus->cpu[c]);
	return 0;
}

static int fake_getaffinity(int pid, int tid, struct qp_cpulist *out)
{
	(void)pid;
	for (size_t i = 0; i < n_pinned; i++) {
		if (pinned[i].tid == tid) {
			qp_cpulist_copy(out, &pinned[i].cpus);
			return 0;
		}
	}
	/* Never pinned: every CPU of the host. */
	qp_cpulist_copy(out, &online);
	return 0;
}

/* Memory: a fixture's nodes are not this machine's either; binding to one that the
 * fixture has succeeds, as it would there. */
static const char *fixture_root;

static int fake_membind(int node)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/sys/devices/system/node/node%d", fixture_root, node);
	return access(path, F_OK) == 0 ? 0 : EINVAL;
}

/* The host's online CPUs, from the fixture named by --sysroot or QPASS_SYSROOT. */
static void read_online(int argc, char **argv)
{
	const char *root = getenv("QPASS_SYSROOT");
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--sysroot"))
			root = argv[i + 1];
	if (!root)
		return;
	fixture_root = root;
	qp_autofree char *path = qp_xasprintf("%s/sys/devices/system/cpu/online", root);
	char buf[4096] = "";
	qp_autofclose FILE *f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f)) {
		struct qp_err *err = NULL;
		if (qp_cpulist_parse(buf, &online, &err) < 0)
			qp_err_free(err);
	}
}

int main(int argc, char **argv)
{
	read_online(argc, argv);
	if (online.n) {
		qp_kernel_setaffinity = fake_setaffinity;
		qp_kernel_getaffinity = fake_getaffinity;
		qp_kernel_membind = fake_membind;
	}
	qp_kernel_memlock = fake_memlock;
	qp_kernel_vfio_check = fake_vfio_check;
	qp_kernel_write = fake_write;
	qp_kernel_modprobe = fake_modprobe;
	return qp_main(argc, argv);
}
