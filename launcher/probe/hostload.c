/* Reading the host into the model: PCI devices, IOMMU groups, NUMA nodes, CPUs, the
 * kernel's command line and modules, /dev. Every value is parsed strictly and every
 * error names its file; the model is checked for agreement (a group's members name
 * that group, every CPU of a node exists) before it is handed out. */
#include "probe/hostload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sysparse.h"
#include "base/util.h"
#include "probe/hostload-int.h"
#include "probe/pcilib.h"
#include "probe/sysread.h"
#include "vfio/holders.h"

#define PCI_DEVICES "sys/bus/pci/devices"
#define IOMMU_GROUPS "sys/kernel/iommu_groups"


static int cmp_group(const void *a, const void *b)
{
	const struct qp_iommu_group *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

/* --- PCI devices ---------------------------------------------------------------- */


static const char *const power_states[] = {
	"D0", "D1", "D2", "D3hot", "D3cold", "unknown", "error", NULL,
};

static int load_reset_methods(struct qp_rootdir *dd, struct qp_pci_dev *d, struct qp_err **err)
{
	qp_autofree char *line = NULL;
	if (qp_sysdir_line(dd, "reset_method", true, &line, err) < 0)
		return -1;
	if (!line)
		return 0;
	size_t n = 0;
	d->reset_methods = qp_xcalloc(1, sizeof(char *));
	char *save = NULL;
	for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		for (const char *p = w; *p; p++) {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
				qp_autofree char *q = qp_quote(w);
				qp_err_set(err, 0, "%s is not a reset method name", q);
				return qp_sysdir_name_file(dd, "reset_method", err);
			}
		}
		d->reset_methods = qp_xrealloc(d->reset_methods, (n + 2) * sizeof(char *));
		d->reset_methods[n++] = qp_xstrdup(w);
		d->reset_methods[n] = NULL;
	}
	return 0;
}

/* From config space qpass takes one byte, the header type: every dword read of it is
 * a device access, slow under a hypervisor and on hosts with hundreds of functions. */
static int load_header_type(struct qp_rootdir *dd, struct qp_pci_dev *d, struct qp_err **err)
{
	uint8_t byte, type;
	if (qp_rootdir_pread(dd, "config", 0x0e, &byte, 1, err) < 0)
		return -1;
	if (qp_parse_pci_header_type(byte, &type, &d->multifunction, err) < 0)
		return qp_sysdir_name_file(dd, "config", err);
	d->header_type = (enum qp_header_type)type;
	return 0;
}

static int load_power_state(struct qp_rootdir *dd, struct qp_pci_dev *d, struct qp_err **err)
{
	if (qp_sysdir_line(dd, "power_state", true, &d->power_state, err) < 0)
		return -1;
	if (!d->power_state)
		return 0;
	for (const char *const *s = power_states; *s; s++)
		if (!strcmp(*s, d->power_state))
			return 0;
	qp_autofree char *q = qp_quote(d->power_state);
	qp_err_set(err, 0, "unknown power state %s", q);
	return qp_sysdir_name_file(dd, "power_state", err);
}

/* Where the device really sits (its link in sys/bus/pci/devices, read in devs), and its
 * upstream bridge. */
static int load_dev_topology(struct qp_rootdir *devs, const char *name, struct qp_pci_dev *d,
			     struct qp_err **err)
{
	qp_autofree char *target = NULL;
	if (qp_rootdir_readlink(devs, name, false, &target, err) < 0)
		return -1;
	if (qp_path_join_link(PCI_DEVICES, target, &d->sysfs_path, err) < 0)
		return qp_sysdir_name_file(devs, name, err);
	const char *last = strrchr(d->sysfs_path, '/');
	if (strncmp(d->sysfs_path, "sys/devices/", 12) || !last || strcmp(last + 1, name)) {
		qp_autofree char *q = qp_quote(target);
		qp_err_set(err, 0, "expected a link to ../../../devices/.../%s, got %s", name, q);
		return qp_sysdir_name_file(devs, name, err);
	}
	const char *prev = last;
	while (prev > d->sysfs_path && prev[-1] != '/')
		prev--;
	qp_autofree char *up = qp_xstrndup(prev, (size_t)(last - prev));
	struct qp_err *ignored = NULL;
	d->has_parent = qp_parse_pci_addr(up, &d->parent, &ignored) == 0;
	qp_err_free(ignored);
	return 0;
}

/* What the device is: its ids, class, revision and header. */
static int load_dev_identity(struct qp_rootdir *dd, struct qp_pci_dev *d, struct qp_err **err)
{
	uint32_t v;
	if (qp_sysdir_hex(dd, "vendor", 16, &v, err) < 0)
		return -1;
	d->vendor = (uint16_t)v;
	if (qp_sysdir_hex(dd, "device", 16, &v, err) < 0)
		return -1;
	d->device = (uint16_t)v;
	if (qp_sysdir_hex(dd, "subsystem_vendor", 16, &v, err) < 0)
		return -1;
	d->subvendor = (uint16_t)v;
	if (qp_sysdir_hex(dd, "subsystem_device", 16, &v, err) < 0)
		return -1;
	d->subdevice = (uint16_t)v;
	if (qp_sysdir_hex(dd, "class", 24, &d->class, err) < 0)
		return -1;
	if (qp_sysdir_hex(dd, "revision", 8, &v, err) < 0)
		return -1;
	d->revision = (uint8_t)v;
	return load_header_type(dd, d, err);
}

/* Where the device stands now: its node and CPUs, driver, group, resets, power. */
static int load_dev_state(struct qp_rootdir *dd, struct qp_pci_dev *d, struct qp_err **err)
{
	long node;
	if (qp_sysdir_int(dd, "numa_node", true, -1, 65535, -1, &node, err) < 0)
		return -1;
	d->numa_node = (int)node;
	if (qp_sysdir_cpulist(dd, "local_cpulist", &d->local_cpus, err) < 0 ||
	    qp_sysdir_link_name(dd, "driver", "drivers", &d->driver, err) < 0 ||
	    qp_sysdir_line(dd, "driver_override", true, &d->driver_override, err) < 0)
		return -1;
	if (d->driver_override && !strcmp(d->driver_override, "(null)"))
		qp_freep(&d->driver_override);

	qp_autofree char *group = NULL;
	if (qp_sysdir_link_name(dd, "iommu_group", "iommu_groups", &group, err) < 0)
		return -1;
	long g = -1;
	if (group && qp_hostload_number(group, 1L << 30, &g) < 0) {
		qp_autofree char *q = qp_quote(group);
		qp_err_set(err, 0, "the group %s is not a number", q);
		return qp_sysdir_name_file(dd, "iommu_group", err);
	}
	d->iommu_group = (int)g;

	long bv;
	if (qp_sysdir_int(dd, "boot_vga", true, 0, 1, 0, &bv, err) < 0)
		return -1;
	d->boot_vga = bv;

	if (load_reset_methods(dd, d, err) < 0)
		return -1;
	qp_autofree char *res = NULL;
	if (qp_rootdir_read(dd, "resource", true, &res, NULL, err) < 0)
		return -1;
	int n = res ? qp_parse_pci_resource(res, d->bars, err) : 0;
	if (n < 0)
		return qp_sysdir_name_file(dd, "resource", err);
	d->n_bars = (unsigned)n;
	for (unsigned i = 0; i < d->n_bars; i++) {
		/* Resizable BAR (Linux 5.12+): the sizes it may take, as a hex mask. */
		char name[32];
		snprintf(name, sizeof(name), "resource%u_resize", d->bars[i].index);
		qp_autofree char *mask = NULL;
		if (qp_rootdir_read(dd, name, true, &mask, NULL, err) < 0)
			return -1;
		d->bars[i].resize_mask = mask ? strtoull(mask, NULL, 16) : 0;
	}
	return load_power_state(dd, d, err);
}

/* Device `name`; devs is sys/bus/pci/devices. */
static int load_pci_dev(struct qp_rootdir *devs, const char *name, struct qp_pci_dev *d,
			struct qp_err **err)
{
	if (qp_parse_pci_addr(name, &d->addr, err) < 0)
		return qp_sysdir_name_file(devs, name, err);
	if (load_dev_topology(devs, name, d, err) < 0)
		return -1;
	char rel[sizeof(PCI_DEVICES) + QP_PCI_ADDR_LEN + 1];
	snprintf(rel, sizeof(rel), PCI_DEVICES "/%s", name);
	struct qp_rootdir dd;
	qp_rootdir_init(&dd, devs->root, rel);
	int rc = load_dev_identity(&dd, d, err);
	if (rc == 0)
		rc = load_dev_state(&dd, d, err);
	qp_rootdir_close(&dd);
	return rc;
}

static int cmp_dev(const void *a, const void *b)
{
	return qp_pci_addr_cmp(&((const struct qp_pci_dev *)a)->addr,
			       &((const struct qp_pci_dev *)b)->addr);
}

/* Reads the devices names[0..n), appended to h->devs. */
static int load_named(const struct qp_root *r, struct qp_host *h, char *const *names, size_t n,
		      struct qp_err **err)
{
	h->devs = qp_xrealloc(h->devs, (h->n_devs + n + 1) * sizeof(*h->devs));
	struct qp_rootdir devs;
	qp_rootdir_init(&devs, r, PCI_DEVICES);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct qp_pci_dev *d = &h->devs[h->n_devs++];
		memset(d, 0, sizeof(*d));
		rc = load_pci_dev(&devs, names[i], d, err);
	}
	qp_rootdir_close(&devs);
	return rc;
}

/* Every device. */
static int load_all(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, PCI_DEVICES, false, &names, err) < 0)
		return qp_err_hint(err, "is %s the root of a Linux system with sysfs mounted?",
				   r->path);
	size_t n = 0;
	while (names[n])
		n++;
	int rc = load_named(r, h, names, n, err);
	qp_strv_free(names);
	return rc;
}

/* Every display device (class 03xxxx), for a profile's "gpus": its class is read of
 * each device, the rest only of those. */
static int add_displays(const struct qp_root *r, char ***names, struct qp_err **err)
{
	char **all = NULL;
	if (qp_root_list(r, PCI_DEVICES, false, &all, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; all[i] && rc == 0; i++) {
		char dir[sizeof(PCI_DEVICES) + QP_PCI_ADDR_LEN + 1];
		snprintf(dir, sizeof(dir), PCI_DEVICES "/%s", all[i]);
		uint32_t cls;
		rc = qp_sysread_hex(r, dir, "class", 24, &cls, err);
		if (rc == 0 && (cls >> 16) == 0x03 && !qp_strv_contains(*names, all[i]))
			qp_strv_push(names, qp_xstrdup(all[i]));
	}
	qp_strv_free(all);
	return rc;
}

/* The devices the selectors name that exist: a slot's functions are tried, 0 to 7. */
static int load_selected(const struct qp_root *r, struct qp_host *h, unsigned flags,
			 const struct qp_pci_sel *sel, size_t n_sel, struct qp_err **err)
{
	qp_autoclose int dir = qp_root_openat(r, PCI_DEVICES, O_PATH | O_DIRECTORY);
	if (dir < 0) {
		qp_autofree char *where = qp_root_display(r, PCI_DEVICES);
		qp_err_set(err, errno, "cannot open the directory %s", where);
		return qp_err_hint(err, "is %s the root of a Linux system with sysfs mounted?",
				   r->path);
	}
	char **names = NULL;
	for (size_t i = 0; i < n_sel; i++) {
		for (unsigned f = sel[i].slot ? 0 : sel[i].addr.func; f < 8; f++) {
			struct qp_pci_addr a = sel[i].addr;
			a.func = (uint8_t)f;
			char name[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&a, name);
			struct stat st;
			if (!qp_strv_contains(names, name) &&
			    fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				qp_strv_push(&names, qp_xstrdup(name));
			if (!sel[i].slot)
				break;
		}
	}
	if ((flags & QP_HOST_GPUS) && add_displays(r, &names, err) < 0) {
		qp_strv_free(names);
		return -1;
	}
	size_t n = 0;
	while (names && names[n])
		n++;
	int rc = load_named(r, h, names, n, err);
	qp_strv_free(names);
	return rc;
}

/* --- IOMMU groups ------------------------------------------------------------- */

/* Reads group `name`'s type and members into g. */
static int load_group(const struct qp_root *r, const char *name, struct qp_iommu_group *g,
		      struct qp_err **err)
{
	qp_autofree char *dir = qp_xasprintf(IOMMU_GROUPS "/%s", name);
	qp_autofree char *rel = qp_xasprintf("%s/type", dir);
	if (qp_sysread_line(r, rel, true, &g->type, err) < 0)
		return -1;
	free(rel);
	rel = qp_xasprintf("%s/devices", dir);
	char **members = NULL;
	if (qp_root_list(r, rel, false, &members, err) < 0)
		return -1;
	size_t m = 0;
	while (members[m])
		m++;
	g->members = qp_xcalloc(m, sizeof(*g->members));
	int rc = 0;
	for (size_t j = 0; j < m && rc == 0; j++) {
		qp_autofree char *mrel = qp_xasprintf("%s/%s", rel, members[j]);
		rc = qp_parse_pci_addr(members[j], &g->members[j], err);
		if (rc < 0)
			qp_sysread_name_file(r, mrel, err);
		else
			g->n_members = j + 1;
	}
	qp_strv_free(members);
	return rc;
}

/* Every member of g is a device that names g. */
static int check_members(const struct qp_root *r, const struct qp_host *h,
			 const struct qp_iommu_group *g, struct qp_err **err)
{
	for (size_t j = 0; j < g->n_members; j++) {
		const struct qp_pci_dev *d = qp_host_dev(h, &g->members[j]);
		if (d && d->iommu_group == g->id)
			continue;
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&g->members[j], a);
		qp_autofree char *dev = qp_root_display(r, PCI_DEVICES);
		return qp_err_set(err, 0, "%s is in group %d, but %s/%s/iommu_group %s", a, g->id,
				  dev, a, !d ? "does not exist" : "says otherwise");
	}
	return 0;
}

/* Every device that names a group is listed in it. */
static int check_listed(const struct qp_root *r, const struct qp_host *h, struct qp_err **err)
{
	for (size_t i = 0; i < h->n_devs; i++) {
		const struct qp_pci_dev *d = &h->devs[i];
		if (d->iommu_group < 0)
			continue;
		const struct qp_iommu_group *g = qp_host_group(h, d->iommu_group);
		bool listed = false;
		for (size_t j = 0; g && j < g->n_members; j++)
			listed = listed || !qp_pci_addr_cmp(&g->members[j], &d->addr);
		if (!listed) {
			char a[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&d->addr, a);
			qp_autofree char *where = qp_root_display(r, IOMMU_GROUPS);
			return qp_err_set(err, 0,
					  "%s names IOMMU group %d, but %s/%d/devices/%s "
					  "does not exist",
					  a, d->iommu_group, where, d->iommu_group, a);
		}
	}
	return 0;
}

static bool has_group_of(const struct qp_host *h, int id)
{
	for (size_t i = 0; i < h->n_devs; i++)
		if (h->devs[i].iommu_group == id)
			return true;
	return false;
}

/* The groups: all of them on a complete host; else those of the devices read, whose
 * other members are read too. In the listing's order, so that the first error is the
 * same whatever the host holds. */
static int load_groups(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, IOMMU_GROUPS, true, &names, err) < 0)
		return -1;
	size_t n = 0;
	while (names[n])
		n++;
	h->n_iommu_groups = n;
	h->groups = qp_xcalloc(n, sizeof(*h->groups));
	char **more = NULL;  /* members not read yet */
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		long id;
		if (qp_hostload_number(names[i], 1L << 30, &id) < 0) {
			qp_autofree char *dir = qp_xasprintf(IOMMU_GROUPS "/%s", names[i]);
			rc = qp_err_set(err, 0, "an IOMMU group's name is not a number");
			qp_sysread_name_file(r, dir, err);
			break;
		}
		if (!h->complete && !has_group_of(h, (int)id))
			continue;
		struct qp_iommu_group *g = &h->groups[h->n_groups++];
		g->id = (int)id;
		if ((rc = load_group(r, names[i], g, err)) < 0)
			break;
		if (h->complete)
			rc = check_members(r, h, g, err);
		for (size_t j = 0; !h->complete && j < g->n_members; j++) {
			char a[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&g->members[j], a);
			if (!qp_host_dev(h, &g->members[j]) && !qp_strv_contains(more, a))
				qp_strv_push(&more, qp_xstrdup(a));
		}
	}
	qp_strv_free(names);
	size_t n_more = 0;
	while (more && more[n_more])
		n_more++;
	if (rc == 0 && n_more) {
		rc = load_named(r, h, more, n_more, err);
		qsort(h->devs, h->n_devs, sizeof(*h->devs), cmp_dev);
	}
	qp_strv_free(more);
	/* Sort numerically: the directory listing sorts "100" before "44". */
	if (h->n_groups)
		qsort(h->groups, h->n_groups, sizeof(*h->groups), cmp_group);
	for (size_t i = 0; rc == 0 && !h->complete && i < h->n_groups; i++)
		rc = check_members(r, h, &h->groups[i], err);
	return rc < 0 ? rc : check_listed(r, h, err);
}

/* --- the whole host ------------------------------------------------------------- */

int qp_host_load(const struct qp_root *root, struct qp_host *host, struct qp_err **err)
{
	return qp_host_load_ex(root, QP_HOST_NAMES, NULL, 0, host, err);
}

/* A display device without a NUMA node on a host with several. */
static void warn_numa(struct qp_host *h)
{
	for (size_t i = 0; h->n_nodes > 1 && i < h->n_devs; i++) {
		if (h->devs[i].numa_node >= 0 || !qp_pci_is_display(&h->devs[i]))
			continue;
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&h->devs[i].addr, a);
		qp_strv_push(&h->warnings, qp_xasprintf("%s: the firmware gives no NUMA node for "
							"this display device on a %zu-node host",
							a, h->n_nodes));
	}
}

int qp_host_load_ex(const struct qp_root *root, unsigned flags, const struct qp_pci_sel *sel,
		    size_t n_sel, struct qp_host *host, struct qp_err **err)
{
	struct qp_host h = { .complete = !sel };
	h.root = qp_xstrdup(root->path);
	int rc = sel ? load_selected(root, &h, flags, sel, n_sel, err) : load_all(root, &h, err);
	if (rc == 0 && h.n_devs)
		qsort(h.devs, h.n_devs, sizeof(*h.devs), cmp_dev);
	if (rc < 0 || load_groups(root, &h, err) < 0 || qp_hostload_nodes(root, &h, err) < 0 ||
	    qp_hostload_cpus(root, &h, err) < 0 || qp_hostload_kernel(root, &h, err) < 0 ||
	    qp_hostload_dev(root, &h, err) < 0 ||
	    ((flags & QP_HOST_NAMES) && qp_pcilib_names(NULL, &h, err) < 0)) {
		qp_host_free(&h);
		return -1;
	}
	warn_numa(&h);
	for (size_t i = 0; (flags & QP_HOST_GPUS) && i < h.n_devs; i++) {
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&h.devs[i].addr, a);
		if (qp_pci_is_display(&h.devs[i]))
			h.devs[i].holders = qp_vfio_holders(root, a);
	}
	*host = h;
	return 0;
}
