/* Reading the host into the model, beyond its PCI devices: the NUMA nodes (CPUs, memory,
 * hugepages, distances), the CPUs and their topology, the kernel (command line, the CPU's
 * flags, modules) and /dev. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sysparse.h"
#include "base/util.h"
#include "probe/hostload-int.h"
#include "probe/sysread.h"

#define NODE_DIR "sys/devices/system/node"
#define CPU_DIR "sys/devices/system/cpu"

/* Orders for qsort: directory listings sort "node10" before "node2". */
#define QP_CMP_BY(name, type, field)                                                   \
	static int name(const void *a, const void *b)                                   \
	{                                                                               \
		const type *x = a, *y = b;                                              \
		return (x->field > y->field) - (x->field < y->field);                   \
	}
QP_CMP_BY(cmp_hugepages, struct qp_hugepages, size_kb)
QP_CMP_BY(cmp_node, struct qp_numa_node, id)
QP_CMP_BY(cmp_cpu, struct qp_cpu, id)

int qp_hostload_number(const char *s, long max, long *out)
{
	struct qp_err *e = NULL;
	int rc = qp_parse_sysfs_int(s, 0, max, out, &e);
	qp_err_free(e);
	/* "01" is not how the kernel names anything. */
	if (rc == 0 && s[0] == '0' && s[1])
		rc = -1;
	return rc;
}

/* Whether a directory entry is PREFIX and a number up to max ("node1", "cpu12"). */
static bool numbered(const char *name, const char *prefix, long max, long *id)
{
	size_t n = strlen(prefix);
	return !strncmp(name, prefix, n) && qp_hostload_number(name + n, max, id) == 0;
}

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
		if (qp_hostload_number(w, 255, &x) < 0) {
			qp_autofree char *q = qp_quote(w);
			qp_err_set(err, 0, "%s is not a distance (0-255)", q);
			return qp_sysread_name_file(r, rel, err);
		}
		nd->distance = qp_xrealloc(nd->distance, (nd->n_distance + 1) * sizeof(int));
		nd->distance[nd->n_distance++] = (int)x;
	}
	return 0;
}

int qp_hostload_nodes(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, NODE_DIR, true, &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; names[i] && rc == 0; i++) {
		long id;
		if (!numbered(names[i], "node", 65535, &id))
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
		rc = qp_parse_node_meminfo(mi, nd->id, &nd->mem_total_kb, &nd->mem_free_kb,
					   &nd->mem_reclaim_kb, err);
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

/* Everything of one CPU, for list: a complete host. */
static int load_cpu(const struct qp_root *r, const char *name, struct qp_cpu *c,
		    struct qp_err **err)
{
	/* Paths in a buffer of their own: there are four a CPU, and hundreds of CPUs. */
	char rel[128];
	snprintf(rel, sizeof(rel), CPU_DIR "/%s/online", name);
	long online;
	/* cpu0 usually has no "online" file: it cannot be taken offline. */
	if (qp_sysread_int(r, rel, true, 0, 1, 1, &online, err) < 0)
		return -1;
	c->online = online;
	snprintf(rel, sizeof(rel), CPU_DIR "/%s/topology", name);
	if (!c->online && !qp_root_exists(r, rel)) {
		/* Offline CPUs lose their topology directory. */
		c->package = c->core = -1;
		qp_cpulist_add(&c->siblings, c->id);
		return 0;
	}
	long v;
	snprintf(rel, sizeof(rel), CPU_DIR "/%s/topology/physical_package_id", name);
	if (qp_sysread_int(r, rel, false, -1, 1L << 30, -1, &v, err) < 0)
		return -1;
	c->package = (int)v;
	snprintf(rel, sizeof(rel), CPU_DIR "/%s/topology/core_id", name);
	if (qp_sysread_int(r, rel, false, -1, 1L << 30, -1, &v, err) < 0)
		return -1;
	c->core = (int)v;
	snprintf(rel, sizeof(rel), CPU_DIR "/%s/topology/thread_siblings_list", name);
	if (qp_sysread_cpulist(r, rel, &c->siblings, err) < 0)
		return -1;
	if (!qp_cpulist_has(&c->siblings, c->id)) {
		qp_err_set(err, 0, "the list of a CPU's threads must hold the CPU itself");
		return qp_sysread_name_file(r, rel, err);
	}
	return 0;
}

/* In h->cpus, sorted by id. */
static struct qp_cpu *find_cpu(struct qp_host *h, int id)
{
	size_t lo = 0, hi = h->n_cpus;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->cpus[mid].id == id)
			return &h->cpus[mid];
		if (h->cpus[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* By need (plan, up, check, bind), what placement uses of the CPUs: whether each is
 * online, from cpu/online when there is one, and its SMT threads, read once a core (the
 * kernel lists the same threads for every online thread of a core). Package and core
 * ids are left at -1: only list shows them. On the seed's host (56 CPUs) that is 29
 * files instead of 224. */
static int load_cpus_by_need(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	struct qp_cpulist online = { 0 };
	bool one_list = qp_root_exists(r, CPU_DIR "/online");
	if (one_list && qp_sysread_cpulist(r, CPU_DIR "/online", &online, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < h->n_cpus && rc == 0; i++) {
		struct qp_cpu *c = &h->cpus[i];
		c->package = c->core = -1;
		char rel[128];
		long v = 1;
		snprintf(rel, sizeof(rel), CPU_DIR "/cpu%d/online", c->id);
		if (one_list)
			v = qp_cpulist_has(&online, c->id);
		else if (qp_sysread_int(r, rel, true, 0, 1, 1, &v, err) < 0)
			rc = -1;
		c->online = v;
		if (rc < 0 || c->siblings.n)
			continue;
		if (!c->online) {
			qp_cpulist_add(&c->siblings, c->id);
			continue;
		}
		snprintf(rel, sizeof(rel), CPU_DIR "/cpu%d/topology/thread_siblings_list", c->id);
		if ((rc = qp_sysread_cpulist(r, rel, &c->siblings, err)) < 0)
			break;
		if (!qp_cpulist_has(&c->siblings, c->id)) {
			qp_err_set(err, 0, "the list of a CPU's threads must hold the CPU itself");
			rc = qp_sysread_name_file(r, rel, err);
			break;
		}
		for (size_t s = 0; s < c->siblings.n; s++) {
			struct qp_cpu *t = find_cpu(h, c->siblings.cpu[s]);
			if (t && t != c && !t->siblings.n)
				qp_cpulist_copy(&t->siblings, &c->siblings);
		}
	}
	qp_cpulist_free(&online);
	return rc;
}

int qp_hostload_cpus(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	char **names = NULL;
	if (qp_root_list(r, CPU_DIR, false, &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; names[i] && rc == 0; i++) {
		long id;
		if (!numbered(names[i], "cpu", QP_MAX_CPU, &id))
			continue;
		h->cpus = qp_xrealloc(h->cpus, (h->n_cpus + 1) * sizeof(*h->cpus));
		struct qp_cpu *c = &h->cpus[h->n_cpus++];
		memset(c, 0, sizeof(*c));
		c->id = (int)id;
		c->node = -1;
		if (h->complete)
			rc = load_cpu(r, names[i], c, err);
	}
	qp_strv_free(names);
	if (rc < 0)
		return rc;
	if (h->n_cpus)
		qsort(h->cpus, h->n_cpus, sizeof(*h->cpus), cmp_cpu);
	if (!h->complete && load_cpus_by_need(r, h, err) < 0)
		return -1;
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
				qp_err_set(err, 0, "CPU %d is in node %d and node %d", c->id,
					   c->node, nd->id);
				return qp_sysread_name_file(r, rel, err);
			}
			c->node = nd->id;
		}
	}
	return 0;
}

/* --- kernel, modules, /dev ---------------------------------------------------- */

int qp_hostload_kernel(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	if (qp_sysread_line(r, "proc/cmdline", false, &h->cmdline, err) < 0)
		return -1;

	/* /proc/cpuinfo is free text: qpass takes what it knows from the first processor. */
	qp_autofree char *info = NULL;
	if (qp_root_read_opt(r, "proc/cpuinfo", &info, NULL, err) < 0)
		return -1;
	h->phys_bits = info ? qp_parse_phys_bits(info) : 0;
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

int qp_hostload_dev(const struct qp_root *r, struct qp_host *h, struct qp_err **err)
{
	h->dev_kvm = qp_root_exists(r, "dev/kvm");
	h->dev_vfio = qp_root_exists(r, "dev/vfio/vfio");
	char **names = NULL;
	if (qp_root_list(r, "dev/vfio", true, &names, err) < 0)
		return -1;
	for (size_t i = 0; names[i]; i++) {
		long g;
		/* Besides the group nodes: "vfio", "devices/", "noiommu-N". */
		if (qp_hostload_number(names[i], 1L << 30, &g) < 0)
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
