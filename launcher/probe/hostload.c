/* Reading the host into the model: PCI devices, IOMMU groups, NUMA nodes, CPUs, the
 * kernel's command line and modules, /dev. Every value is parsed strictly and every
 * error names its file; the model is checked for agreement (a group's members name
 * that group, every CPU of a node exists) before it is handed out. */
#include "probe/hostload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/sysparse.h"
#include "base/util.h"
#include "probe/pcilib.h"
#include "probe/sysread.h"

#define PCI_DEVICES "sys/bus/pci/devices"
#define IOMMU_GROUPS "sys/kernel/iommu_groups"
#define NODE_DIR "sys/devices/system/node"
#define CPU_DIR "sys/devices/system/cpu"

/* Orders for qsort: directory listings sort "node10" before "node2". */
#define QP_CMP_BY(name, type, field)                                                   \
	static int name(const void *a, const void *b)                                   \
	{                                                                               \
		const type *x = a, *y = b;                                              \
		return (x->field > y->field) - (x->field < y->field);                   \
	}
QP_CMP_BY(cmp_group, struct qp_iommu_group, id)
QP_CMP_BY(cmp_hugepages, struct qp_hugepages, size_kb)
QP_CMP_BY(cmp_node, struct qp_numa_node, id)
QP_CMP_BY(cmp_cpu, struct qp_cpu, id)

/* --- PCI devices ---------------------------------------------------------------- */

static int parse_int_name(const char *s, long max, long *out)
{
	struct qp_err *e = NULL;
	int rc = qp_parse_sysfs_int(s, 0, max, out, &e);
	qp_err_free(e);
	/* "01" is not how the kernel names anything. */
	if (rc == 0 && s[0] == '0' && s[1])
		rc = -1;
	return rc;
}

static const char *const power_states[] = {
	"D0", "D1", "D2", "D3hot", "D3cold", "unknown", "error", NULL,
};

static int load_reset_methods(const struct qp_root *r, const char *dir, struct qp_pci_dev *d,
			      struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("%s/reset_method", dir);
	qp_autofree char *line = NULL;
	if (qp_sysread_line(r, rel, true, &line, err) < 0)
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
				return qp_sysread_name_file(r, rel, err);
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
static int load_header_type(const struct qp_root *r, const char *dir, struct qp_pci_dev *d,
			    struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("%s/config", dir);
	uint8_t byte, type;
	if (qp_root_pread(r, rel, 0x0e, &byte, 1, err) < 0)
		return -1;
	if (qp_parse_pci_header_type(byte, &type, &d->multifunction, err) < 0)
		return qp_sysread_name_file(r, rel, err);
	d->header_type = (enum qp_header_type)type;
	return 0;
}

static int load_power_state(const struct qp_root *r, const char *dir, struct qp_pci_dev *d,
			    struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("%s/power_state", dir);
	if (qp_sysread_line(r, rel, true, &d->power_state, err) < 0)
		return -1;
	if (!d->power_state)
		return 0;
	for (const char *const *s = power_states; *s; s++)
		if (!strcmp(*s, d->power_state))
			return 0;
	qp_autofree char *q = qp_quote(d->power_state);
	qp_err_set(err, 0, "unknown power state %s", q);
	return qp_sysread_name_file(r, rel, err);
}

/* Where the device really sits, and its upstream bridge. */
static int load_dev_topology(const struct qp_root *r, const char *name, const char *dir,
			     struct qp_pci_dev *d, struct qp_err **err)
{
	qp_autofree char *target = NULL;
	if (qp_root_readlink(r, dir, false, &target, err) < 0)
		return -1;
	if (qp_path_join_link(PCI_DEVICES, target, &d->sysfs_path, err) < 0)
		return qp_sysread_name_file(r, dir, err);
	const char *last = strrchr(d->sysfs_path, '/');
	if (strncmp(d->sysfs_path, "sys/devices/", 12) || !last || strcmp(last + 1, name)) {
		qp_autofree char *q = qp_quote(target);
		qp_err_set(err, 0, "expected a link to ../../../devices/.../%s, got %s", name, q);
		return qp_sysread_name_file(r, dir, err);
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
static int load_dev_identity(const struct qp_root *r, const char *dir, struct qp_pci_dev *d,
			     struct qp_err **err)
{
	uint32_t v;
	if (qp_sysread_hex(r, dir, "vendor", 16, &v, err) < 0)
		return -1;
	d->vendor = (uint16_t)v;
	if (qp_sysread_hex(r, dir, "device", 16, &v, err) < 0)
		return -1;
	d->device = (uint16_t)v;
	if (qp_sysread_hex(r, dir, "subsystem_vendor", 16, &v, err) < 0)
		return -1;
	d->subvendor = (uint16_t)v;
	if (qp_sysread_hex(r, dir, "subsystem_device", 16, &v, err) < 0)
		return -1;
	d->subdevice = (uint16_t)v;
	if (qp_sysread_hex(r, dir, "class", 24, &d->class, err) < 0)
		return -1;
	if (qp_sysread_hex(r, dir, "revision", 8, &v, err) < 0)
		return -1;
	d->revision = (uint8_t)v;
	return load_header_type(r, dir, d, err);
}

/* Where the device stands now: its node and CPUs, driver, group, resets, power. */
static int load_dev_state(const struct qp_root *r, const char *dir, struct qp_pci_dev *d,
			  struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("%s/numa_node", dir);
	long node;
	if (qp_sysread_int(r, rel, true, -1, 65535, -1, &node, err) < 0)
		return -1;
	d->numa_node = (int)node;

	free(rel);
	rel = qp_xasprintf("%s/local_cpulist", dir);
	if (qp_sysread_cpulist(r, rel, &d->local_cpus, err) < 0)
		return -1;

	free(rel);
	rel = qp_xasprintf("%s/driver", dir);
	if (qp_sysread_link_name(r, rel, "drivers", &d->driver, err) < 0)
		return -1;

	free(rel);
	rel = qp_xasprintf("%s/driver_override", dir);
	if (qp_sysread_line(r, rel, true, &d->driver_override, err) < 0)
		return -1;
	if (d->driver_override && !strcmp(d->driver_override, "(null)"))
		qp_freep(&d->driver_override);

	free(rel);
	rel = qp_xasprintf("%s/iommu_group", dir);
	qp_autofree char *group = NULL;
	if (qp_sysread_link_name(r, rel, "iommu_groups", &group, err) < 0)
		return -1;
	long g = -1;
	if (group && parse_int_name(group, 1L << 30, &g) < 0) {
		qp_autofree char *q = qp_quote(group);
		qp_err_set(err, 0, "the group %s is not a number", q);
		return qp_sysread_name_file(r, rel, err);
	}
	d->iommu_group = (int)g;

	free(rel);
	rel = qp_xasprintf("%s/boot_vga", dir);
	long bv;
	if (qp_sysread_int(r, rel, true, 0, 1, 0, &bv, err) < 0)
		return -1;
	d->boot_vga = bv;

	if (load_reset_methods(r, dir, d, err) < 0)
		return -1;
	return load_power_state(r, dir, d, err);
}

static int load_pci_dev(const struct qp_root *r, const char *name, struct qp_pci_dev *d,
			struct qp_err **err)
{
	qp_autofree char *dir = qp_xasprintf(PCI_DEVICES "/%s", name);
	if (qp_parse_pci_addr(name, &d->addr, err) < 0)
		return qp_sysread_name_file(r, dir, err);
	if (load_dev_topology(r, name, dir, d, err) < 0 || load_dev_identity(r, dir, d, err) < 0)
		return -1;
	return load_dev_state(r, dir, d, err);
}

static int load_pci(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, PCI_DEVICES, false, &names, err) < 0)
		return qp_err_hint(err, "is %s the root of a Linux system with sysfs mounted?",
				   r->path);
	size_t n = 0;
	while (names[n])
		n++;
	h->devs = qp_xcalloc(n, sizeof(*h->devs));
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = load_pci_dev(r, names[i], &h->devs[i], err);
		h->n_devs = i + 1;
	}
	qp_strv_free(names);
	/* Sorted by name is sorted by address: the names have fixed width. */
	return rc;
}

/* --- IOMMU groups ------------------------------------------------------------- */

static int load_groups(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, IOMMU_GROUPS, true, &names, err) < 0)
		return -1;
	size_t n = 0;
	while (names[n])
		n++;
	h->groups = qp_xcalloc(n, sizeof(*h->groups));
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct qp_iommu_group *g = &h->groups[i];
		h->n_groups = i + 1;
		qp_autofree char *dir = qp_xasprintf(IOMMU_GROUPS "/%s", names[i]);
		long id;
		if (parse_int_name(names[i], 1L << 30, &id) < 0) {
			rc = qp_err_set(err, 0, "an IOMMU group's name is not a number");
			qp_sysread_name_file(r, dir, err);
			break;
		}
		g->id = (int)id;
		qp_autofree char *rel = qp_xasprintf("%s/type", dir);
		if ((rc = qp_sysread_line(r, rel, true, &g->type, err)) < 0)
			break;
		free(rel);
		rel = qp_xasprintf("%s/devices", dir);
		char **members = NULL;
		if ((rc = qp_root_list(r, rel, false, &members, err)) < 0)
			break;
		size_t m = 0;
		while (members[m])
			m++;
		g->members = qp_xcalloc(m, sizeof(*g->members));
		for (size_t j = 0; j < m && rc == 0; j++) {
			qp_autofree char *mrel = qp_xasprintf("%s/%s", rel, members[j]);
			rc = qp_parse_pci_addr(members[j], &g->members[j], err);
			if (rc < 0) {
				qp_sysread_name_file(r, mrel, err);
				break;
			}
			g->n_members = j + 1;
			const struct qp_pci_dev *d = qp_host_dev(h, &g->members[j]);
			if (!d || d->iommu_group != g->id) {
				qp_autofree char *dev = qp_root_display(r, PCI_DEVICES);
				rc = qp_err_set(err, 0, "%s is in group %d, but %s/%s/iommu_group %s",
						members[j], g->id, dev, members[j],
						!d ? "does not exist" : "says otherwise");
			}
		}
		qp_strv_free(members);
	}
	qp_strv_free(names);
	if (rc < 0)
		return rc;
	/* Sort numerically: the directory listing sorts "100" before "44". */
	if (h->n_groups)
		qsort(h->groups, h->n_groups, sizeof(*h->groups), cmp_group);
	/* Every device that names a group must be listed in it. */
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
			return qp_err_set(err, 0, "%s names IOMMU group %d, but %s/%d/devices/%s "
					  "does not exist", a, d->iommu_group, where, d->iommu_group, a);
		}
	}
	return 0;
}

/* --- NUMA nodes and CPUs ------------------------------------------------------- */

static int load_hugepages(const struct qp_root *r, const char *dir, struct qp_numa_node *nd,
			  struct qp_err **err)
{
	qp_autofree char *hdir = qp_xasprintf("%s/hugepages", dir);
	char **names = NULL;
	if (qp_root_list(r, hdir, true, &names, err) < 0)
		return -1;
	int rc = 0;
	size_t n = 0;
	while (names[n])
		n++;
	nd->hugepages = qp_xcalloc(n, sizeof(*nd->hugepages));
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct qp_hugepages *hp = &nd->hugepages[i];
		qp_autofree char *sub = qp_xasprintf("%s/%s", hdir, names[i]);
		char kb[32];
		int end = 0;
		uint64_t size;
		if (sscanf(names[i], "hugepages-%31[0-9]kB%n", kb, &end) != 1 ||
		    names[i][end] != '\0' || qp_parse_sysfs_u64(kb, &size, err) < 0 || !size) {
			rc = qp_err_set(err, 0, "expected a directory named hugepages-<size>kB");
			qp_sysread_name_file(r, sub, err);
			break;
		}
		hp->size_kb = size;
		qp_autofree char *rel = qp_xasprintf("%s/nr_hugepages", sub);
		if ((rc = qp_sysread_u64(r, rel, &hp->total, err)) < 0)
			break;
		free(rel);
		rel = qp_xasprintf("%s/free_hugepages", sub);
		if ((rc = qp_sysread_u64(r, rel, &hp->free, err)) < 0)
			break;
		nd->n_hugepages = i + 1;
	}
	qp_strv_free(names);
	/* By size: "hugepages-1048576kB" lists before "hugepages-2048kB". */
	if (nd->n_hugepages)
		qsort(nd->hugepages, nd->n_hugepages, sizeof(*nd->hugepages), cmp_hugepages);
	return rc;
}

static int load_distance(const struct qp_root *r, const char *dir, struct qp_numa_node *nd,
			 struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("%s/distance", dir);
	qp_autofree char *line = NULL;
	if (qp_sysread_line(r, rel, false, &line, err) < 0)
		return -1;
	char *save = NULL;
	for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		long x;
		if (parse_int_name(w, 255, &x) < 0) {
			qp_autofree char *q = qp_quote(w);
			qp_err_set(err, 0, "%s is not a distance (0-255)", q);
			return qp_sysread_name_file(r, rel, err);
		}
		nd->distance = qp_xrealloc(nd->distance, (nd->n_distance + 1) * sizeof(int));
		nd->distance[nd->n_distance++] = (int)x;
	}
	return 0;
}

static int load_nodes(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, NODE_DIR, true, &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; names[i] && rc == 0; i++) {
		long id;
		if (strncmp(names[i], "node", 4) || parse_int_name(names[i] + 4, 65535, &id) < 0)
			continue;
		h->nodes = qp_xrealloc(h->nodes, (h->n_nodes + 1) * sizeof(*h->nodes));
		struct qp_numa_node *nd = &h->nodes[h->n_nodes++];
		memset(nd, 0, sizeof(*nd));
		nd->id = (int)id;
		qp_autofree char *dir = qp_xasprintf(NODE_DIR "/%s", names[i]);
		qp_autofree char *rel = qp_xasprintf("%s/cpulist", dir);
		if ((rc = qp_sysread_cpulist(r, rel, &nd->cpus, err)) < 0)
			break;
		free(rel);
		rel = qp_xasprintf("%s/meminfo", dir);
		qp_autofree char *mi = NULL;
		if ((rc = qp_root_read(r, rel, &mi, NULL, err)) < 0)
			break;
		rc = qp_parse_node_meminfo(mi, nd->id, &nd->mem_total_kb, &nd->mem_free_kb, err);
		if (rc < 0) {
			qp_sysread_name_file(r, rel, err);
			break;
		}
		if ((rc = load_distance(r, dir, nd, err)) < 0)
			break;
		rc = load_hugepages(r, dir, nd, err);
	}
	qp_strv_free(names);
	if (rc < 0)
		return rc;
	if (h->n_nodes)
		qsort(h->nodes, h->n_nodes, sizeof(*h->nodes), cmp_node);
	for (size_t i = 0; i < h->n_nodes; i++) {
		if (h->nodes[i].n_distance != h->n_nodes) {
			qp_autofree char *rel = qp_xasprintf(NODE_DIR "/node%d/distance",
							     h->nodes[i].id);
			qp_err_set(err, 0, "%zu distances for %zu nodes", h->nodes[i].n_distance,
				   h->n_nodes);
			return qp_sysread_name_file(r, rel, err);
		}
	}
	return 0;
}

static int load_cpu(const struct qp_root *r, const char *name, long id, struct qp_cpu *c,
		    struct qp_err **err)
{
	c->id = (int)id;
	c->node = -1;
	qp_autofree char *rel = qp_xasprintf(CPU_DIR "/%s/online", name);
	long online;
	/* cpu0 usually has no "online" file: it cannot be taken offline. */
	if (qp_sysread_int(r, rel, true, 0, 1, 1, &online, err) < 0)
		return -1;
	c->online = online;
	free(rel);
	rel = qp_xasprintf(CPU_DIR "/%s/topology", name);
	if (!c->online && !qp_root_exists(r, rel)) {
		/* Offline CPUs lose their topology directory. */
		c->package = c->core = -1;
		qp_cpulist_add(&c->siblings, c->id);
		return 0;
	}
	long v;
	free(rel);
	rel = qp_xasprintf(CPU_DIR "/%s/topology/physical_package_id", name);
	if (qp_sysread_int(r, rel, false, -1, 1L << 30, -1, &v, err) < 0)
		return -1;
	c->package = (int)v;
	free(rel);
	rel = qp_xasprintf(CPU_DIR "/%s/topology/core_id", name);
	if (qp_sysread_int(r, rel, false, -1, 1L << 30, -1, &v, err) < 0)
		return -1;
	c->core = (int)v;
	free(rel);
	rel = qp_xasprintf(CPU_DIR "/%s/topology/thread_siblings_list", name);
	if (qp_sysread_cpulist(r, rel, &c->siblings, err) < 0)
		return -1;
	if (!qp_cpulist_has(&c->siblings, c->id)) {
		qp_err_set(err, 0, "the list of a CPU's threads must hold the CPU itself");
		return qp_sysread_name_file(r, rel, err);
	}
	return 0;
}

static struct qp_cpu *find_cpu(struct qp_host *h, int id)
{
	for (size_t i = 0; i < h->n_cpus; i++)
		if (h->cpus[i].id == id)
			return &h->cpus[i];
	return NULL;
}

static int load_cpus(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, CPU_DIR, false, &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; names[i] && rc == 0; i++) {
		long id;
		if (strncmp(names[i], "cpu", 3) || parse_int_name(names[i] + 3, QP_MAX_CPU, &id) < 0)
			continue;
		h->cpus = qp_xrealloc(h->cpus, (h->n_cpus + 1) * sizeof(*h->cpus));
		struct qp_cpu *c = &h->cpus[h->n_cpus++];
		memset(c, 0, sizeof(*c));
		rc = load_cpu(r, names[i], id, c, err);
	}
	qp_strv_free(names);
	if (rc < 0)
		return rc;
	if (h->n_cpus)
		qsort(h->cpus, h->n_cpus, sizeof(*h->cpus), cmp_cpu);
	for (size_t i = 0; i < h->n_nodes; i++) {
		const struct qp_numa_node *nd = &h->nodes[i];
		for (size_t j = 0; j < nd->cpus.n; j++) {
			struct qp_cpu *c = find_cpu(h, nd->cpus.cpu[j]);
			qp_autofree char *rel = qp_xasprintf(NODE_DIR "/node%d/cpulist", nd->id);
			if (!c) {
				qp_err_set(err, 0, "CPU %d is not in " CPU_DIR, nd->cpus.cpu[j]);
				return qp_sysread_name_file(r, rel, err);
			}
			if (c->node >= 0) {
				qp_err_set(err, 0, "CPU %d is in node %d and node %d", c->id, c->node,
					   nd->id);
				return qp_sysread_name_file(r, rel, err);
			}
			c->node = nd->id;
		}
	}
	return 0;
}

/* --- kernel, modules, /dev ---------------------------------------------------- */

static int load_kernel(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	if (qp_sysread_line(r, "proc/cmdline", false, &h->cmdline, err) < 0)
		return -1;

	/* /proc/cpuinfo is free text: qpass takes what it knows from the first processor. */
	qp_autofree char *info = NULL;
	if (qp_root_read_opt(r, "proc/cpuinfo", &info, NULL, err) < 0)
		return -1;
	for (char *line = info, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!*line)
			break; /* the end of the first processor */
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		char *v = colon + 1;
		while (*v == ' ')
			v++;
		if (!strncmp(line, "vendor_id", 9) && !h->cpu_vendor) {
			h->cpu_vendor = qp_xstrdup(v);
		} else if (!strncmp(line, "flags", 5)) {
			qp_autofree char *flags = qp_xasprintf(" %s ", v);
			h->cpu_vmx = strstr(flags, " vmx ") != NULL;
			h->cpu_svm = strstr(flags, " svm ") != NULL;
		}
	}

	qp_autofree char *mods = NULL;
	if (qp_root_read_opt(r, "proc/modules", &mods, NULL, err) < 0)
		return -1;
	char **loaded = NULL;
	if (mods && qp_parse_proc_modules(mods, &loaded, err) < 0)
		return qp_sysread_name_file(r, "proc/modules", err);
	for (int m = 0; m < QP_MOD_COUNT; m++) {
		const char *name = qp_module_name((enum qp_module)m);
		qp_autofree char *dir = qp_xasprintf("sys/module/%s", name);
		qp_autofree char *initstate = qp_xasprintf("%s/initstate", dir);
		if (qp_strv_contains(loaded, name))
			h->modules[m] = QP_MOD_LOADED;
		else if (!qp_root_exists(r, dir))
			h->modules[m] = QP_MOD_ABSENT;
		/* Loadable modules have an initstate; built-in ones do not. */
		else if (qp_root_exists(r, initstate))
			h->modules[m] = QP_MOD_LOADED;
		else
			h->modules[m] = QP_MOD_BUILTIN;
	}
	qp_strv_free(loaded);
	return 0;
}

static int load_dev(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	h->dev_kvm = qp_root_exists(r, "dev/kvm");
	h->dev_vfio = qp_root_exists(r, "dev/vfio/vfio");
	char **names = NULL;
	if (qp_root_list(r, "dev/vfio", true, &names, err) < 0)
		return -1;
	for (size_t i = 0; names[i]; i++) {
		long g;
		/* Besides the group nodes: "vfio", "devices/", "noiommu-N". */
		if (parse_int_name(names[i], 1L << 30, &g) < 0)
			continue;
		h->vfio_groups = qp_xrealloc(h->vfio_groups, (h->n_vfio_groups + 1) * sizeof(int));
		size_t j = h->n_vfio_groups++;
		for (; j && h->vfio_groups[j - 1] > g; j--)
			h->vfio_groups[j] = h->vfio_groups[j - 1];
		h->vfio_groups[j] = (int)g;
	}
	qp_strv_free(names);
	return 0;
}

/* --- the whole host ------------------------------------------------------------- */

int qp_host_load(const struct qp_root *root, struct qp_host *host, struct qp_err **err)
{
	return qp_host_load_ex(root, QP_HOST_NAMES, host, err);
}

int qp_host_load_ex(const struct qp_root *root, unsigned flags, struct qp_host *host,
		    struct qp_err **err)
{
	struct qp_host h = { 0 };
	h.root = qp_xstrdup(root->path);
	if (load_pci(root, &h, err) < 0 || load_groups(root, &h, err) < 0 ||
	    load_nodes(root, &h, err) < 0 || load_cpus(root, &h, err) < 0 ||
	    load_kernel(root, &h, err) < 0 || load_dev(root, &h, err) < 0 ||
	    ((flags & QP_HOST_NAMES) && qp_pcilib_annotate(root, &h, true, err) < 0)) {
		qp_host_free(&h);
		return -1;
	}
	if (h.n_nodes > 1) {
		for (size_t i = 0; i < h.n_devs; i++) {
			if (h.devs[i].numa_node >= 0 || !qp_pci_is_display(&h.devs[i]))
				continue;
			char a[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&h.devs[i].addr, a);
			qp_strv_push(&h.warnings, qp_xasprintf("%s: the firmware gives no NUMA node for this "
						     "display device on a %zu-node host",
						     a, h.n_nodes));
		}
	}
	*host = h;
	return 0;
}

