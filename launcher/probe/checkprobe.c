/* `qpass check`: the edge. Reads what the host model does not hold, under the system
 * root; asks the QEMU binary what it is (-version, -device help) under a deadline; and
 * reads this process's memlock limit and capabilities. Never changes anything. */
#include "probe/checkprobe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/child.h"
#include "base/util.h"
#include "probe/files.h"
#include "vfio/holders.h"

/* --- pure parsers of what the probe reads ---------------------------------------- */

int qp_check_parse_interrupts(const char *text)
{
	/* Each line ends with the chip name, then the hwirq and trigger, then the handler:
	 * "  24:  0  0  IR-PCI-MSI 327680-edge  xhci_hcd". Remapped chips are named IR-*. */
	for (const char *p = text; (p = strstr(p, "IR-")); p += 3)
		if (p == text || p[-1] == ' ' || p[-1] == '\t')
			return 1;
	return 0;
}

char *qp_check_parse_qemu_version(const char *text)
{
	const char *p = strstr(text, "version ");
	if (!p)
		return NULL;
	p += strlen("version ");
	size_t n = strspn(p, "0123456789.");
	return n ? qp_xstrndup(p, n) : NULL;
}

/* --- the probe ------------------------------------------------------------------- */

/* Reads rel under the root; NULL when it is missing or unreadable. */
static char *read_opt(const struct qp_root *root, const char *rel)
{
	struct qp_err *err = NULL;
	char *s = NULL;
	if (qp_root_read_opt(root, rel, &s, NULL, &err) < 0) {
		qp_err_free(err);
		return NULL;
	}
	return s;
}

/* The value of KEY=value in an os-release file, unquoted; NULL when absent. */
static char *os_release_value(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) || l[kl] != '=')
			continue;
		const char *v = l + kl + 1;
		size_t n = strcspn(v, "\n");
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
			v++;
			n -= 2;
		}
		return qp_xstrndup(v, n);
	}
	return NULL;
}

static void probe_os(const struct qp_root *root, struct qp_check_facts *f)
{
	qp_autofree char *rel = read_opt(root, "etc/os-release");
	if (!rel)
		rel = read_opt(root, "usr/lib/os-release");
	if (rel) {
		qp_autofree char *id = os_release_value(rel, "ID");
		qp_autofree char *like = os_release_value(rel, "ID_LIKE");
		if (id || like)
			f->os_ids = qp_xasprintf("%s%s%s", id ? id : "", id && like ? " " : "",
						 like ? like : "");
	}
	qp_autofree char *grub = read_opt(root, "etc/default/grub");
	f->grub_file = grub != NULL;
	int lineno = 0;
	for (const char *l = grub; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		lineno++;
		if (!strncmp(l, "GRUB_CMDLINE_LINUX=", strlen("GRUB_CMDLINE_LINUX="))) {
			/* The shell takes the last assignment. */
			free(f->grub_line);
			f->grub_line = qp_xstrndup(l, n);
			f->grub_lineno = lineno;
		}
		l = nl ? nl + 1 : NULL;
	}
}

static int probe_kvm(const struct qp_root *root)
{
	int fd = qp_root_openat(root, "dev/kvm", O_RDWR | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode)) {
		rc = ioctl(fd, KVM_GET_API_VERSION, 0);
		if (rc < 0)
			rc = -errno;
	}
	close(fd);
	return rc;
}

static char *find_in_path(const char *name)
{
	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? qp_xstrdup(name) : NULL;
	const char *path = getenv("PATH");
	qp_autofree char *copy = qp_xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *full = qp_xasprintf("%s/%s", *dir ? dir : ".", name);
		if (access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

/* In the child: argv with stdin from /dev/null, stdout and stderr into the pipe. */
static void exec_child(void *arg, int fd)
{
	char **argv = arg;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(126);
	execv(argv[0], argv);
	_exit(127);
}

/* Runs argv with stdout and stderr captured together (64 KiB at most), under a deadline.
 * 0 when it exited 0; else -1 with *err saying why. *out is what it printed. */
static int run_capture(char *argv[], int timeout_ms, char **out, struct qp_err **err)
{
	*out = NULL;
	struct qp_child_out c;
	if (qp_child_run(exec_child, argv, timeout_ms, 65536, 0, &c, err) < 0)
		return -1;
	*out = c.data;
	if (c.timed_out)
		return qp_err_set(err, 0, "gave no answer within %d s", timeout_ms / 1000);
	int status = c.reaped ? c.status : 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		size_t n = strcspn(c.data, "\n");
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return qp_err_set(err, 0, "could not be executed");
		return qp_err_set(err, 0, "failed (%s %d)%s%.*s",
				  WIFEXITED(status) ? "exit" : "signal",
				  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				  n ? ": " : "", (int)(n > 200 ? 200 : n), c.data);
	}
	return 0;
}

static void probe_qemu(const struct qp_check_target *t, struct qp_check_facts *f)
{
	f->qemu = t->profile && t->profile->qemu ? t->profile->qemu : "qemu-system-x86_64";
	f->qemu_vfio = -1;
	f->qemu_path = find_in_path(f->qemu);
	if (!f->qemu_path)
		return;
	char a_version[] = "-version", a_machine[] = "-machine", a_none[] = "none",
	     a_device[] = "-device", a_help[] = "help";
	char *version_argv[] = { f->qemu_path, a_version, NULL };
	qp_autofree char *out = NULL;
	qp_autoerr struct qp_err *err = NULL;
	if (run_capture(version_argv, 10000, &out, &err) < 0) {
		f->qemu_error = qp_xstrdup(err->msg);
		return;
	}
	f->qemu_version = qp_check_parse_qemu_version(out);
	free(out);
	out = NULL;
	char *help_argv[] = { f->qemu_path, a_machine, a_none, a_device, a_help, NULL };
	if (run_capture(help_argv, 10000, &out, &err) < 0) {
		f->qemu_error = qp_xstrdup(err->msg);
		return;
	}
	f->qemu_vfio = strstr(out, "name \"vfio-pci\"") != NULL;
}

char *qp_probe_qemu_version(const char *qemu)
{
	qp_autofree char *path = find_in_path(qemu);
	if (!path)
		return NULL;
	char a_version[] = "-version";
	char *argv[] = { path, a_version, NULL };
	qp_autofree char *out = NULL;
	qp_autoerr struct qp_err *err = NULL;
	if (run_capture(argv, 10000, &out, &err) < 0)
		return NULL;
	return qp_check_parse_qemu_version(out);
}

static int open_errno(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static void probe_hugetlbfs(const struct qp_root *root, const struct qp_check_target *t,
			    struct qp_check_facts *f)
{
	const struct qp_profile *p = t->profile;
	if (!p || !p->hugepage_kb)
		return;
	qp_autofree char *mounts = read_opt(root, "proc/mounts");
	for (const char *l = mounts; l && *l;) {
		char dev[256], dir[4096], type[64];
		if (sscanf(l, "%255s %4095s %63s", dev, dir, type) == 3 &&
		    !strcmp(type, "hugetlbfs") && !strcmp(dir, p->hugepage_path))
			f->hugetlbfs = 1;
		l = strchr(l, '\n');
		l = l ? l + 1 : NULL;
	}
}

static bool cap_sys_resource(void)
{
	/* This process's own capabilities, not the system root's. */
	FILE *s = fopen("/proc/self/status", "re");
	if (!s)
		return false;
	char line[256];
	unsigned long long caps = 0;
	while (fgets(line, sizeof(line), s))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(s);
	return caps & (1ull << 24);  /* CAP_SYS_RESOURCE */
}

static void probe_dev(const struct qp_root *root, const struct qp_pci_addr *a,
		      struct qp_check_dev *d)
{
	memset(d, 0, sizeof(*d));
	d->addr = *a;
	char addr[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(a, addr);
	qp_autofree char *rel = qp_xasprintf("sys/bus/pci/devices/%s/resource", addr);
	qp_autofree char *res = read_opt(root, rel);
	const char *l = res;
	for (int bar = 0; l && *l && bar < 6; bar++) {
		unsigned long long s, e, flags;
		if (sscanf(l, "%llx %llx %llx", &s, &e, &flags) == 3 && (flags & 0x200) && e) {
			d->bar_start[bar] = s;  /* IORESOURCE_MEM */
			d->bar_end[bar] = e;
		}
		l = strchr(l, '\n');
		l = l ? l + 1 : NULL;
	}
	d->holders = qp_vfio_holders(root, addr);
}

/* Whether some PCI device has a reset_method file: one the host model read, or else
 * the first one found among the others. */
static bool shows_resets(const struct qp_root *root, const struct qp_host *h)
{
	for (size_t i = 0; i < h->n_devs; i++)
		if (h->devs[i].reset_methods)
			return true;
	if (h->complete)
		return false;
	char **names = NULL;
	struct qp_err *err = NULL;
	bool found = false;
	if (qp_root_list(root, "sys/bus/pci/devices", true, &names, &err) == 0) {
		for (char **n = names; *n && !found; n++) {
			qp_autofree char *rel = qp_xasprintf("sys/bus/pci/devices/%s/reset_method",
							     *n);
			found = qp_root_exists(root, rel);
		}
	}
	qp_err_free(err);
	qp_strv_free(names);
	return found;
}

void qp_check_probe(const struct qp_root *root, const struct qp_host *h,
		    const struct qp_check_target *t, struct qp_check_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->acpi_dmar = qp_root_exists(root, "sys/firmware/acpi/tables/DMAR");
	f->acpi_ivrs = qp_root_exists(root, "sys/firmware/acpi/tables/IVRS");
	qp_autofree char *irqs = read_opt(root, "proc/interrupts");
	f->irq_remap = irqs ? qp_check_parse_interrupts(irqs) : -1;
	qp_autofree char *unsafe =
		read_opt(root, "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
	f->unsafe_interrupts = unsafe ? (unsafe[0] == 'Y' || unsafe[0] == '1') : -1;
	probe_os(root, f);
	f->iomem = read_opt(root, "proc/iomem");
	f->kvm = probe_kvm(root);
	probe_qemu(t, f);
	if (t->profile)
		f->file_problems = qp_probe_profile_files(root, t->profile, false, &f->n_files);
	if (t->profile && t->profile->firmware == QP_FW_OVMF) {
		f->ovmf_code = open_errno(t->profile->ovmf_code);
		f->ovmf_vars = open_errno(t->profile->ovmf_vars);
	}
	probe_hugetlbfs(root, t, f);
	struct rlimit rl;
	f->memlock_max = getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_max != RLIM_INFINITY
				 ? (uint64_t)rl.rlim_max : UINT64_MAX;
	f->cap_sys_resource = cap_sys_resource();
	f->kernel_shows_resets = t->n_fns && shows_resets(root, h);
	f->devs = qp_xcalloc(t->n_fns ? t->n_fns : 1, sizeof(*f->devs));
	for (size_t i = 0; i < t->n_fns; i++)
		probe_dev(root, &t->fns[i], &f->devs[f->n_devs++]);
}

void qp_check_facts_free(struct qp_check_facts *f)
{
	free(f->os_ids);
	free(f->grub_line);
	free(f->iomem);
	free(f->qemu_path);
	free(f->qemu_version);
	free(f->qemu_error);
	qp_strv_free(f->file_problems);
	for (size_t i = 0; i < f->n_devs; i++)
		free(f->devs[i].holders);
	free(f->devs);
	memset(f, 0, sizeof(*f));
}
