#include "cli/list.h"

#include <string.h>

#include "base/jsonout.h"
#include "base/util.h"
#include "core/advice.h"

#define WIDTH 80

/* --- what is shown ------------------------------------------------------------ */

/* A GPU: one PCI slot with a display function, and all functions in it. */
struct gpu {
	const struct qp_pci_dev **funcs;
	size_t n_funcs;
	int *groups;  /* the distinct IOMMU groups of its functions */
	size_t n_groups;
	const struct qp_pci_dev **peers;  /* other members of those groups */
	size_t n_peers;
};

struct view {
	struct gpu *gpus;
	size_t n_gpus;
	bool *shown;  /* per host device: part of a GPU or a GPU's group */
};

static bool in_list(const int *v, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void view_build(const struct qp_host *h, struct view *v)
{
	memset(v, 0, sizeof(*v));
	v->shown = qp_xcalloc(h->n_devs, sizeof(bool));
	for (size_t i = 0; i < h->n_devs; i++) {
		const struct qp_pci_dev *d = &h->devs[i];
		if (!qp_pci_is_display(d))
			continue;
		/* One entry per slot, however many display functions it has. */
		bool known = false;
		for (size_t g = 0; g < v->n_gpus; g++)
			known = known || qp_pci_same_slot(&v->gpus[g].funcs[0]->addr, &d->addr);
		if (known)
			continue;
		v->gpus = qp_xrealloc(v->gpus, (v->n_gpus + 1) * sizeof(*v->gpus));
		struct gpu *gpu = &v->gpus[v->n_gpus++];
		memset(gpu, 0, sizeof(*gpu));
		for (size_t j = 0; j < h->n_devs; j++) {
			const struct qp_pci_dev *f = &h->devs[j];
			if (!qp_pci_same_slot(&f->addr, &d->addr))
				continue;
			gpu->funcs = qp_xrealloc(gpu->funcs, (gpu->n_funcs + 1) * sizeof(f));
			gpu->funcs[gpu->n_funcs++] = f;
			v->shown[j] = true;
			if (f->iommu_group >= 0 && !in_list(gpu->groups, gpu->n_groups, f->iommu_group)) {
				gpu->groups = qp_xrealloc(gpu->groups, (gpu->n_groups + 1) * sizeof(int));
				gpu->groups[gpu->n_groups++] = f->iommu_group;
			}
		}
		for (size_t j = 0; j < h->n_devs; j++) {
			const struct qp_pci_dev *p = &h->devs[j];
			if (qp_pci_same_slot(&p->addr, &d->addr) ||
			    !in_list(gpu->groups, gpu->n_groups, p->iommu_group))
				continue;
			gpu->peers = qp_xrealloc(gpu->peers, (gpu->n_peers + 1) * sizeof(p));
			gpu->peers[gpu->n_peers++] = p;
			v->shown[j] = true;
		}
	}
}

static void view_free(struct view *v)
{
	for (size_t i = 0; i < v->n_gpus; i++) {
		free(v->gpus[i].funcs);
		free(v->gpus[i].groups);
		free(v->gpus[i].peers);
	}
	free(v->gpus);
	free(v->shown);
}

/* --- text --------------------------------------------------------------------- */

/* Appends s cut to `width` columns ("..." marks a cut), padded when `pad`. */
static void add_cell(struct qp_buf *b, const char *s, size_t width, bool pad)
{
	size_t n = strlen(s);
	if (n > width) {
		qp_autofree char *cut = qp_xstrndup(s, width > 3 ? width - 3 : 0);
		qp_buf_addf(b, "%s%.*s", cut, (int)(width < 3 ? width : 3), "...");
	} else {
		qp_buf_add(b, s);
		for (size_t i = n; pad && i < width; i++)
			qp_buf_addc(b, ' ');
	}
}

static char *fmt_group(int g)
{
	return g < 0 ? qp_xstrdup("-") : qp_xasprintf("%d", g);
}

static char *fmt_mem(uint64_t kb)
{
	double x = (double)kb;
	if (kb >= 1024 * 1024)
		return qp_xasprintf("%.1f GiB", x / (1024 * 1024));
	return qp_xasprintf("%.0f MiB", x / 1024);
}

static char *fmt_hugesize(uint64_t kb)
{
	if (kb >= 1024 * 1024 && kb % (1024 * 1024) == 0)
		return qp_xasprintf("%lluG", (unsigned long long)(kb / (1024 * 1024)));
	if (kb >= 1024 && kb % 1024 == 0)
		return qp_xasprintf("%lluM", (unsigned long long)(kb / 1024));
	return qp_xasprintf("%lluK", (unsigned long long)kb);
}

/* The device's own name where pci.ids knows it (tables are narrow), else lspci's. */
static const char *short_name(const struct qp_pci_dev *d)
{
	return d->device_name ? d->device_name : d->name;
}

/* "  0000:04:00.0  0300  10de:1e04  vfio-pci        VGA compatible controller" */
static void add_dev_row(struct qp_buf *b, const struct qp_pci_dev *d, const char *desc)
{
	char a[QP_PCI_ADDR_LEN], cls[8], ids[12];
	qp_pci_addr_fmt(&d->addr, a);
	snprintf(cls, sizeof(cls), "%04x", d->class >> 8);
	snprintf(ids, sizeof(ids), "%04x:%04x", d->vendor, d->device);
	size_t start = b->len;
	qp_buf_addf(b, "  %s  %s  %s  ", a, cls, ids);
	add_cell(b, d->driver ? d->driver : "-", 15, true);
	qp_buf_addc(b, ' ');
	add_cell(b, desc, WIDTH - (b->len - start), false);
	qp_buf_addc(b, '\n');
}

static void text_gpu(struct qp_buf *b, const struct qp_host *h, const struct gpu *g)
{
	const struct qp_pci_dev *f0 = g->funcs[0];
	char slot[QP_PCI_SLOT_LEN];
	qp_pci_slot_fmt(&f0->addr, slot);
	/* Name the GPU by its display function, which may not be function 0. */
	const struct qp_pci_dev *disp = f0;
	for (size_t i = 0; i < g->n_funcs; i++)
		if (qp_pci_is_display(g->funcs[i])) {
			disp = g->funcs[i];
			break;
		}
	qp_autofree char *head = qp_xasprintf("GPU %s  ", slot);
	size_t hl = strlen(head);
	qp_buf_add(b, head);
	add_cell(b, disp->name, WIDTH - hl, false);
	qp_buf_addc(b, '\n');

	struct qp_buf info = { 0 };
	if (!g->n_groups) {
		qp_buf_add(&info, "no IOMMU group");
	} else {
		qp_buf_add(&info, g->n_groups > 1 ? "IOMMU groups " : "IOMMU group ");
		for (size_t i = 0; i < g->n_groups; i++)
			qp_buf_addf(&info, "%s%d", i ? ", " : "", g->groups[i]);
	}
	if (disp->numa_node >= 0)
		qp_buf_addf(&info, ", NUMA node %d", disp->numa_node);
	else
		qp_buf_add(&info, ", NUMA node unknown");
	qp_autofree char *cpus = qp_cpulist_fmt(&disp->local_cpus);
	qp_buf_addf(&info, ", local CPUs %s", cpus);
	for (size_t i = 0; i < g->n_funcs; i++)
		if (g->funcs[i]->boot_vga)
			qp_buf_add(&info, ", boot VGA");
	qp_autofree char *infos = qp_buf_steal(&info);
	qp_buf_add_wrapped(b, WIDTH, "  ", infos);

	for (size_t i = 0; i < g->n_funcs; i++)
		add_dev_row(b, g->funcs[i], g->funcs[i]->class_name);
	if (!g->n_groups)
		return;
	if (!g->n_peers) {
		qp_buf_add(b, g->n_groups > 1 ? "  its groups hold nothing else\n"
					      : "  its group holds nothing else\n");
		return;
	}
	qp_buf_add(b, "  also in its group:\n");
	for (size_t i = 0; i < g->n_peers; i++) {
		const struct qp_pci_dev *p = g->peers[i];
		qp_autofree char *desc = qp_xasprintf("%s%s", p->header_type == QP_HDR_BRIDGE ?
						      "[bridge] " : "", short_name(p));
		add_dev_row(b, p, desc);
	}
	(void)h;
}

static void text_nodes(struct qp_buf *b, const struct qp_host *h)
{
	qp_buf_add(b, "NUMA nodes\n");
	if (!h->n_nodes) {
		qp_buf_add(b, "  none: this kernel has no NUMA support\n");
		return;
	}
	for (size_t i = 0; i < h->n_nodes; i++) {
		const struct qp_numa_node *nd = &h->nodes[i];
		qp_autofree char *cpus = qp_cpulist_fmt(&nd->cpus);
		qp_autofree char *prefix = qp_xasprintf("  node %d  CPUs ", nd->id);
		qp_buf_add_wrapped(b, WIDTH, prefix, *cpus ? cpus : "none");
		qp_autofree char *total = fmt_mem(nd->mem_total_kb);
		qp_autofree char *free_ = fmt_mem(nd->mem_free_kb);
		struct qp_buf line = { 0 };
		qp_buf_addf(&line, "memory %s, %s free", total, free_);
		for (size_t j = 0; j < nd->n_hugepages; j++) {
			qp_autofree char *sz = fmt_hugesize(nd->hugepages[j].size_kb);
			qp_buf_addf(&line, "%s %s %llu/%llu", j ? "," : "; hugepages free/total",
				    sz, (unsigned long long)nd->hugepages[j].free,
				    (unsigned long long)nd->hugepages[j].total);
		}
		qp_autofree char *l = qp_buf_steal(&line);
		qp_autofree char *pad = qp_xasprintf("%*s", (int)strlen(prefix) - 5, "");
		qp_buf_add_wrapped(b, WIDTH, pad, l);
	}
}

static void text_host(struct qp_buf *b, const struct qp_host *h)
{
	qp_buf_add(b, "Host\n");
	if (qp_host_iommu_on(h)) {
		qp_buf_addf(b, "  IOMMU  on, %zu groups\n", h->n_iommu_groups);
	} else {
		qp_buf_add(b, "  IOMMU  off\n");
		qp_autofree char *advice = qp_advice_iommu_off(h);
		/* Each paragraph wrapped and indented under the heading. */
		for (char *para = advice, *next; para && *para; para = next) {
			next = strchr(para, '\n');
			if (next)
				*next++ = '\0';
			qp_buf_add_wrapped(b, WIDTH, "         ", para);
		}
	}
	struct qp_buf kvm = { 0 };
	qp_buf_add(&kvm, h->dev_kvm ? "/dev/kvm present" : "/dev/kvm missing");
	for (int m = QP_MOD_KVM; m <= QP_MOD_KVM_AMD; m++)
		if (h->modules[m] != QP_MOD_ABSENT)
			qp_buf_addf(&kvm, ", %s %s", qp_module_name(m),
				    qp_module_state_name(h->modules[m]));
	qp_autofree char *k = qp_buf_steal(&kvm);
	qp_buf_add_wrapped(b, WIDTH, "  KVM    ", k);
	struct qp_buf vfio = { 0 };
	for (int m = QP_MOD_VFIO; m <= QP_MOD_VFIO_IOMMU_TYPE1; m++)
		qp_buf_addf(&vfio, "%s%s %s", m == QP_MOD_VFIO ? "" : ", ", qp_module_name(m),
			    qp_module_state_name(h->modules[m]));
	if (h->n_vfio_groups) {
		qp_buf_add(&vfio, "; /dev/vfio groups ");
		for (size_t i = 0; i < h->n_vfio_groups; i++)
			qp_buf_addf(&vfio, "%s%d", i ? "," : "", h->vfio_groups[i]);
	}
	qp_autofree char *v = qp_buf_steal(&vfio);
	qp_buf_add_wrapped(b, WIDTH, "  VFIO   ", v);
}

static void text_others(struct qp_buf *b, const struct qp_host *h, const struct view *v)
{
	qp_buf_add(b, "Other devices\n");
	qp_buf_add(b, "  ADDRESS       CLASS IDS        GROUP NODE DRIVER       NAME\n");
	for (size_t i = 0; i < h->n_devs; i++) {
		if (v->shown[i])
			continue;
		const struct qp_pci_dev *d = &h->devs[i];
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&d->addr, a);
		qp_autofree char *g = fmt_group(d->iommu_group);
		qp_autofree char *n = d->numa_node < 0 ? qp_xstrdup("-")
						      : qp_xasprintf("%d", d->numa_node);
		size_t start = b->len;
		qp_buf_addf(b, "  %s  %04x  %04x:%04x  %-5s %-4s ", a, d->class >> 8, d->vendor,
			    d->device, g, n);
		add_cell(b, d->driver ? d->driver : "-", 12, true);
		qp_buf_addc(b, ' ');
		add_cell(b, short_name(d), WIDTH - (b->len - start), false);
		qp_buf_addc(b, '\n');
	}
}

char *qp_list_text(const struct qp_host *h, const struct qp_list_opts *o)
{
	struct view v;
	view_build(h, &v);
	struct qp_buf b = { 0 };
	if (!v.n_gpus)
		qp_buf_add(&b, "No GPU (PCI display controller, class 03xx) on this host.\n");
	for (size_t i = 0; i < v.n_gpus; i++) {
		text_gpu(&b, h, &v.gpus[i]);
		qp_buf_addc(&b, '\n');
	}
	text_nodes(&b, h);
	qp_buf_addc(&b, '\n');
	text_host(&b, h);
	if (o->all) {
		qp_buf_addc(&b, '\n');
		text_others(&b, h, &v);
	}
	view_free(&v);
	return qp_buf_steal(&b);
}

/* --- JSON --------------------------------------------------------------------- */

static json_object *json_hex(unsigned width, unsigned value)
{
	char s[16];
	snprintf(s, sizeof(s), "%0*x", (int)width, value);
	return json_object_new_string(s);
}

static json_object *json_dev(const struct qp_host *h, const struct qp_pci_dev *d)
{
	json_object *o = json_object_new_object();
	char a[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(&d->addr, a);
	qp_json_add(o, "address", json_object_new_string(a));
	qp_json_add(o, "vendor", json_hex(4, d->vendor));
	qp_json_add(o, "device", json_hex(4, d->device));
	qp_json_add(o, "subsystem_vendor", json_hex(4, d->subvendor));
	qp_json_add(o, "subsystem_device", json_hex(4, d->subdevice));
	qp_json_add(o, "class", json_hex(4, d->class >> 8));
	qp_json_add(o, "prog_if", json_hex(2, d->class & 0xff));
	qp_json_add(o, "revision", json_hex(2, d->revision));
	qp_json_add(o, "name", qp_json_str(d->name));
	qp_json_add(o, "vendor_name", qp_json_str(d->vendor_name));
	qp_json_add(o, "device_name", qp_json_str(d->device_name));
	qp_json_add(o, "class_name", qp_json_str(d->class_name));
	qp_json_add(o, "header_type", json_object_new_string(qp_header_type_name(d->header_type)));
	qp_json_add(o, "driver", qp_json_str(d->driver));
	qp_json_add(o, "driver_override", qp_json_str(d->driver_override));
	qp_json_add(o, "iommu_group", d->iommu_group < 0 ? NULL : json_object_new_int(d->iommu_group));
	qp_json_add(o, "numa_node", json_object_new_int(d->numa_node));
	qp_json_add(o, "local_cpus", qp_json_cpus(&d->local_cpus));
	qp_json_add(o, "boot_vga", json_object_new_boolean(d->boot_vga));
	json_object *rm = NULL;
	if (d->reset_methods) {
		rm = json_object_new_array();
		for (char **m = d->reset_methods; *m; m++)
			json_object_array_add(rm, json_object_new_string(*m));
	}
	qp_json_add(o, "reset_methods", rm);
	qp_json_add(o, "power_state", qp_json_str(d->power_state));
	char p[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(&d->parent, p);
	qp_json_add(o, "parent", d->has_parent ? json_object_new_string(p) : NULL);
	qp_autofree char *path = qp_xasprintf("/%s", d->sysfs_path);
	qp_json_add(o, "sysfs_path", json_object_new_string(path));
	(void)h;
	return o;
}

static json_object *json_addr(const struct qp_pci_dev *d)
{
	char a[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(&d->addr, a);
	return json_object_new_string(a);
}

static json_object *json_gpu(const struct gpu *g)
{
	json_object *o = json_object_new_object();
	const struct qp_pci_dev *disp = g->funcs[0];
	for (size_t i = 0; i < g->n_funcs; i++)
		if (qp_pci_is_display(g->funcs[i])) {
			disp = g->funcs[i];
			break;
		}
	char slot[QP_PCI_SLOT_LEN];
	qp_pci_slot_fmt(&disp->addr, slot);
	qp_json_add(o, "slot", json_object_new_string(slot));
	qp_json_add(o, "name", qp_json_str(disp->name));
	json_object *groups = json_object_new_array();
	for (size_t i = 0; i < g->n_groups; i++)
		json_object_array_add(groups, json_object_new_int(g->groups[i]));
	qp_json_add(o, "iommu_groups", groups);
	qp_json_add(o, "numa_node", json_object_new_int(disp->numa_node));
	qp_json_add(o, "local_cpus", qp_json_cpus(&disp->local_cpus));
	bool boot = false;
	json_object *funcs = json_object_new_array();
	for (size_t i = 0; i < g->n_funcs; i++) {
		json_object_array_add(funcs, json_addr(g->funcs[i]));
		boot = boot || g->funcs[i]->boot_vga;
	}
	qp_json_add(o, "boot_vga", json_object_new_boolean(boot));
	qp_json_add(o, "functions", funcs);
	json_object *peers = json_object_new_array();
	for (size_t i = 0; i < g->n_peers; i++)
		json_object_array_add(peers, json_addr(g->peers[i]));
	qp_json_add(o, "group_peers", peers);
	return o;
}

static json_object *json_nodes(const struct qp_host *h)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < h->n_nodes; i++) {
		const struct qp_numa_node *nd = &h->nodes[i];
		json_object *o = json_object_new_object();
		qp_json_add(o, "node", json_object_new_int(nd->id));
		qp_json_add(o, "cpus", qp_json_cpus(&nd->cpus));
		qp_json_add(o, "memory_kib", json_object_new_uint64(nd->mem_total_kb));
		qp_json_add(o, "free_kib", json_object_new_uint64(nd->mem_free_kb));
		json_object *hp = json_object_new_array();
		for (size_t j = 0; j < nd->n_hugepages; j++) {
			json_object *x = json_object_new_object();
			qp_json_add(x, "size_kib", json_object_new_uint64(nd->hugepages[j].size_kb));
			qp_json_add(x, "total", json_object_new_uint64(nd->hugepages[j].total));
			qp_json_add(x, "free", json_object_new_uint64(nd->hugepages[j].free));
			json_object_array_add(hp, x);
		}
		qp_json_add(o, "hugepages", hp);
		json_object *dist = json_object_new_array();
		for (size_t j = 0; j < nd->n_distance; j++)
			json_object_array_add(dist, json_object_new_int(nd->distance[j]));
		qp_json_add(o, "distances", dist);
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *json_cpus(const struct qp_host *h)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < h->n_cpus; i++) {
		const struct qp_cpu *c = &h->cpus[i];
		json_object *o = json_object_new_object();
		qp_json_add(o, "cpu", json_object_new_int(c->id));
		qp_json_add(o, "online", json_object_new_boolean(c->online));
		qp_json_add(o, "node", json_object_new_int(c->node));
		qp_json_add(o, "package", json_object_new_int(c->package));
		qp_json_add(o, "core", json_object_new_int(c->core));
		qp_json_add(o, "siblings", qp_json_cpus(&c->siblings));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *json_host(const struct qp_host *h)
{
	json_object *o = json_object_new_object();
	qp_json_add(o, "cmdline", qp_json_str(h->cmdline));
	qp_json_add(o, "cpu_vendor", qp_json_str(h->cpu_vendor));
	qp_json_add(o, "virtualization",
		    qp_json_str(h->cpu_vmx ? "vmx" : h->cpu_svm ? "svm" : NULL));
	json_object *mods = json_object_new_object();
	for (int m = 0; m < QP_MOD_COUNT; m++)
		qp_json_add(mods, qp_module_name(m),
			    json_object_new_string(qp_module_state_name(h->modules[m])));
	qp_json_add(o, "modules", mods);
	qp_json_add(o, "dev_kvm", json_object_new_boolean(h->dev_kvm));
	qp_json_add(o, "dev_vfio", json_object_new_boolean(h->dev_vfio));
	json_object *vg = json_object_new_array();
	for (size_t i = 0; i < h->n_vfio_groups; i++)
		json_object_array_add(vg, json_object_new_int(h->vfio_groups[i]));
	qp_json_add(o, "vfio_groups", vg);
	return o;
}

struct json_object *qp_list_json(const struct qp_host *h, const struct qp_list_opts *o)
{
	struct view v;
	view_build(h, &v);
	json_object *root = json_object_new_object();
	qp_json_add(root, "version", json_object_new_int(QP_LIST_JSON_VERSION));
	qp_json_add(root, "sysroot", json_object_new_string(h->root));

	json_object *iommu = json_object_new_object();
	qp_json_add(iommu, "enabled", json_object_new_boolean(qp_host_iommu_on(h)));
	qp_json_add(iommu, "groups", json_object_new_int((int)h->n_iommu_groups));
	qp_autofree char *advice = qp_host_iommu_on(h) ? NULL : qp_advice_iommu_off(h);
	qp_json_add(iommu, "message", qp_json_str(advice));
	qp_json_add(root, "iommu", iommu);

	json_object *gpus = json_object_new_array();
	for (size_t i = 0; i < v.n_gpus; i++)
		json_object_array_add(gpus, json_gpu(&v.gpus[i]));
	qp_json_add(root, "gpus", gpus);

	json_object *devs = json_object_new_array();
	for (size_t i = 0; i < h->n_devs; i++)
		if (o->all || v.shown[i])
			json_object_array_add(devs, json_dev(h, &h->devs[i]));
	qp_json_add(root, "devices", devs);
	qp_json_add(root, "numa_nodes", json_nodes(h));
	qp_json_add(root, "cpus", json_cpus(h));
	qp_json_add(root, "host", json_host(h));
	json_object *warn = json_object_new_array();
	for (char **w = h->warnings; w && *w; w++)
		json_object_array_add(warn, json_object_new_string(*w));
	qp_json_add(root, "warnings", warn);
	view_free(&v);
	return root;
}
