#include "cli/list.h"

#include <stdio.h>
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

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return (x > y) - (x < y);
}

/* The other members of the GPU's groups, in host order. */
static void gpu_peers(const struct qp_host *h, struct gpu *gpu, struct view *v)
{
	size_t *idx = NULL, n = 0, cap = 0;
	for (size_t k = 0; k < gpu->n_groups; k++) {
		const struct qp_iommu_group *grp = qp_host_group(h, gpu->groups[k]);
		for (size_t m = 0; grp && m < grp->n_members; m++) {
			const struct qp_pci_dev *p = qp_host_dev(h, &grp->members[m]);
			if (!p || qp_pci_same_slot(&p->addr, &gpu->funcs[0]->addr))
				continue;
			idx = qp_xgrow(idx, &cap, n + 1, sizeof(*idx));
			idx[n++] = (size_t)(p - h->devs);
		}
	}
	if (n)
		qsort(idx, n, sizeof(*idx), cmp_size);
	for (size_t i = 0; i < n; i++) {
		if (i && idx[i] == idx[i - 1])
			continue;
		gpu->peers = qp_xrealloc(gpu->peers, (gpu->n_peers + 1) * sizeof(*gpu->peers));
		gpu->peers[gpu->n_peers++] = &h->devs[idx[i]];
		v->shown[idx[i]] = true;
	}
	free(idx);
}

static void view_build(const struct qp_host *h, struct view *v)
{
	memset(v, 0, sizeof(*v));
	v->shown = qp_xcalloc(h->n_devs, sizeof(bool));
	for (size_t i = 0; i < h->n_devs; i++) {
		const struct qp_pci_dev *d = &h->devs[i];
		if (!qp_pci_is_display(d))
			continue;
		/* One entry per slot, however many display functions it has: in address
		 * order, a slot's are next to each other. */
		if (v->n_gpus && qp_pci_same_slot(&v->gpus[v->n_gpus - 1].funcs[0]->addr, &d->addr))
			continue;
		v->gpus = qp_xrealloc(v->gpus, (v->n_gpus + 1) * sizeof(*v->gpus));
		struct gpu *gpu = &v->gpus[v->n_gpus++];
		memset(gpu, 0, sizeof(*gpu));
		struct qp_pci_addr first = d->addr;
		first.func = 0;
		for (size_t j = qp_host_lower(h, &first); j < h->n_devs; j++) {
			const struct qp_pci_dev *f = &h->devs[j];
			if (!qp_pci_same_slot(&f->addr, &d->addr))
				break;
			gpu->funcs = qp_xrealloc(gpu->funcs, (gpu->n_funcs + 1) * sizeof(f));
			gpu->funcs[gpu->n_funcs++] = f;
			v->shown[j] = true;
			if (f->iommu_group >= 0 &&
			    !in_list(gpu->groups, gpu->n_groups, f->iommu_group)) {
				gpu->groups =
					qp_xrealloc(gpu->groups, (gpu->n_groups + 1) * sizeof(int));
				gpu->groups[gpu->n_groups++] = f->iommu_group;
			}
		}
		gpu_peers(h, gpu, v);
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

/* " 16M", " 32G": a BAR's size, after a blank. */
static void add_size(struct qp_buf *b, uint64_t bytes)
{
	static const char units[] = "KMGT";
	uint64_t v = bytes >> 10;
	int u = 0;
	while (v >= 1024 && !(v % 1024) && u < 3) {
		v /= 1024;
		u++;
	}
	qp_buf_addf(b, " %llu%c", (unsigned long long)v, units[u]);
}

/* A GPU function's memory BARs, under its row ("BARs 16M 32G 32M"): the big ones are
 * what the guest's 64-bit MMIO window must hold. */
static void add_bars_row(struct qp_buf *b, const struct qp_pci_dev *d)
{
	struct qp_buf row = { 0 };
	for (unsigned i = 0; i < d->n_bars; i++)
		if (!d->bars[i].io)
			add_size(&row, d->bars[i].size);
	for (unsigned i = 0; row.len && i < d->n_bars; i++) {
		uint64_t m = d->bars[i].resize_mask;
		if (!m)
			continue;
		/* Resizable: its smallest and largest size (bit n: 2^n MiB), "256M-32G". */
		qp_buf_addf(&row, "; BAR%u resizable:", d->bars[i].index);
		add_size(&row, (1ULL << __builtin_ctzll(m)) << 20);
		size_t dash = row.len;
		add_size(&row, (1ULL << (63 - __builtin_clzll(m))) << 20);
		row.s[dash] = '-';
	}
	if (row.len)
		qp_buf_addf(b, "                BARs%s\n", row.s);
	qp_buf_free(&row);
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

	for (size_t i = 0; i < g->n_funcs; i++) {
		add_dev_row(b, g->funcs[i], g->funcs[i]->class_name);
		add_bars_row(b, g->funcs[i]);
	}
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

/* --- JSON: written as it is made, a device at a time ------------------------------- */

static void jw_hex(struct qp_jsonw *w, const char *key, unsigned width, unsigned value)
{
	char s[16];
	snprintf(s, sizeof(s), "%0*x", (int)width, value);
	qp_jsonw_kstr(w, key, s);
}

static void jw_addr(struct qp_jsonw *w, const struct qp_pci_addr *a)
{
	char s[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(a, s);
	qp_jsonw_str(w, s);
}

static void json_dev(struct qp_jsonw *w, const struct qp_pci_dev *d)
{
	qp_jsonw_object(w);
	qp_jsonw_key(w, "address");
	jw_addr(w, &d->addr);
	jw_hex(w, "vendor", 4, d->vendor);
	jw_hex(w, "device", 4, d->device);
	jw_hex(w, "subsystem_vendor", 4, d->subvendor);
	jw_hex(w, "subsystem_device", 4, d->subdevice);
	jw_hex(w, "class", 4, d->class >> 8);
	jw_hex(w, "prog_if", 2, d->class & 0xff);
	jw_hex(w, "revision", 2, d->revision);
	qp_jsonw_kstr(w, "name", d->name);
	qp_jsonw_kstr(w, "vendor_name", d->vendor_name);
	qp_jsonw_kstr(w, "device_name", d->device_name);
	qp_jsonw_kstr(w, "class_name", d->class_name);
	qp_jsonw_kstr(w, "header_type", qp_header_type_name(d->header_type));
	qp_jsonw_kstr(w, "driver", d->driver);
	qp_jsonw_kstr(w, "driver_override", d->driver_override);
	qp_jsonw_key(w, "iommu_group");
	if (d->iommu_group < 0)
		qp_jsonw_null(w);
	else
		qp_jsonw_int(w, d->iommu_group);
	qp_jsonw_kint(w, "numa_node", d->numa_node);
	qp_jsonw_kcpus(w, "local_cpus", &d->local_cpus);
	qp_jsonw_kbool(w, "boot_vga", d->boot_vga);
	qp_jsonw_key(w, "reset_methods");
	if (d->reset_methods) {
		qp_jsonw_array(w);
		for (char **m = d->reset_methods; *m; m++)
			qp_jsonw_str(w, *m);
		qp_jsonw_end(w);
	} else {
		qp_jsonw_null(w);
	}
	qp_jsonw_kstr(w, "power_state", d->power_state);
	qp_jsonw_key(w, "bars");
	qp_jsonw_array(w);
	for (unsigned i = 0; i < d->n_bars; i++) {
		qp_jsonw_object(w);
		qp_jsonw_kint(w, "index", (int)d->bars[i].index);
		qp_jsonw_kuint(w, "size", d->bars[i].size);
		qp_jsonw_kstr(w, "type", d->bars[i].io ? "io" : "memory");
		qp_jsonw_kbool(w, "mem64", d->bars[i].mem64);
		qp_jsonw_kbool(w, "prefetch", d->bars[i].prefetch);
		qp_jsonw_key(w, "resizable");
		if (d->bars[i].resize_mask) {
			qp_jsonw_array(w);
			for (unsigned n = 0; n < 64 - 20; n++)
				if (d->bars[i].resize_mask >> n & 1)
					qp_jsonw_uint(w, (1ULL << n) << 20);
			qp_jsonw_end(w);
		} else {
			qp_jsonw_null(w);
		}
		qp_jsonw_end(w);
	}
	qp_jsonw_end(w);
	qp_jsonw_key(w, "parent");
	if (d->has_parent)
		jw_addr(w, &d->parent);
	else
		qp_jsonw_null(w);
	qp_jsonw_key(w, "sysfs_path");
	qp_autofree char *path = qp_xasprintf("/%s", d->sysfs_path);
	qp_jsonw_str(w, path);
	qp_jsonw_end(w);
}

static void json_gpu(struct qp_jsonw *w, const struct gpu *g)
{
	const struct qp_pci_dev *disp = g->funcs[0];
	for (size_t i = 0; i < g->n_funcs; i++)
		if (qp_pci_is_display(g->funcs[i])) {
			disp = g->funcs[i];
			break;
		}
	qp_jsonw_object(w);
	char slot[QP_PCI_SLOT_LEN];
	qp_pci_slot_fmt(&disp->addr, slot);
	qp_jsonw_kstr(w, "slot", slot);
	qp_jsonw_kstr(w, "name", disp->name);
	qp_jsonw_key(w, "iommu_groups");
	qp_jsonw_ints(w, g->groups, g->n_groups);
	qp_jsonw_kint(w, "numa_node", disp->numa_node);
	qp_jsonw_kcpus(w, "local_cpus", &disp->local_cpus);
	bool boot = false;
	for (size_t i = 0; i < g->n_funcs; i++)
		boot = boot || g->funcs[i]->boot_vga;
	qp_jsonw_kbool(w, "boot_vga", boot);
	qp_jsonw_key(w, "functions");
	qp_jsonw_array(w);
	for (size_t i = 0; i < g->n_funcs; i++)
		jw_addr(w, &g->funcs[i]->addr);
	qp_jsonw_end(w);
	qp_jsonw_key(w, "group_peers");
	qp_jsonw_array(w);
	for (size_t i = 0; i < g->n_peers; i++)
		jw_addr(w, &g->peers[i]->addr);
	qp_jsonw_end(w);
	qp_jsonw_end(w);
}

static void json_nodes(struct qp_jsonw *w, const struct qp_host *h)
{
	qp_jsonw_array(w);
	for (size_t i = 0; i < h->n_nodes; i++) {
		const struct qp_numa_node *nd = &h->nodes[i];
		qp_jsonw_object(w);
		qp_jsonw_kint(w, "node", nd->id);
		qp_jsonw_kcpus(w, "cpus", &nd->cpus);
		qp_jsonw_kuint(w, "memory_kib", nd->mem_total_kb);
		qp_jsonw_kuint(w, "free_kib", nd->mem_free_kb);
		qp_jsonw_key(w, "hugepages");
		qp_jsonw_array(w);
		for (size_t j = 0; j < nd->n_hugepages; j++) {
			qp_jsonw_object(w);
			qp_jsonw_kuint(w, "size_kib", nd->hugepages[j].size_kb);
			qp_jsonw_kuint(w, "total", nd->hugepages[j].total);
			qp_jsonw_kuint(w, "free", nd->hugepages[j].free);
			qp_jsonw_end(w);
		}
		qp_jsonw_end(w);
		qp_jsonw_key(w, "distances");
		qp_jsonw_ints(w, nd->distance, nd->n_distance);
		qp_jsonw_end(w);
	}
	qp_jsonw_end(w);
}

static void json_cpus(struct qp_jsonw *w, const struct qp_host *h)
{
	qp_jsonw_array(w);
	for (size_t i = 0; i < h->n_cpus; i++) {
		const struct qp_cpu *c = &h->cpus[i];
		qp_jsonw_object(w);
		qp_jsonw_kint(w, "cpu", c->id);
		qp_jsonw_kbool(w, "online", c->online);
		qp_jsonw_kint(w, "node", c->node);
		qp_jsonw_kint(w, "package", c->package);
		qp_jsonw_kint(w, "core", c->core);
		qp_jsonw_kcpus(w, "siblings", &c->siblings);
		qp_jsonw_end(w);
	}
	qp_jsonw_end(w);
}

static void json_host(struct qp_jsonw *w, const struct qp_host *h)
{
	qp_jsonw_object(w);
	qp_jsonw_kstr(w, "cmdline", h->cmdline);
	qp_jsonw_kstr(w, "cpu_vendor", h->cpu_vendor);
	qp_jsonw_kstr(w, "virtualization", h->cpu_vmx ? "vmx" : h->cpu_svm ? "svm" : NULL);
	qp_jsonw_key(w, "modules");
	qp_jsonw_object(w);
	for (int m = 0; m < QP_MOD_COUNT; m++) {
		qp_jsonw_key(w, qp_module_name(m));
		qp_jsonw_str(w, qp_module_state_name(h->modules[m]));
	}
	qp_jsonw_end(w);
	qp_jsonw_kbool(w, "dev_kvm", h->dev_kvm);
	qp_jsonw_kbool(w, "dev_vfio", h->dev_vfio);
	qp_jsonw_key(w, "vfio_groups");
	qp_jsonw_ints(w, h->vfio_groups, h->n_vfio_groups);
	qp_jsonw_end(w);
}

int qp_list_json(FILE *out, const struct qp_host *h, const struct qp_list_opts *o,
		 struct qp_err **err)
{
	struct view v;
	view_build(h, &v);
	struct qp_jsonw w;
	qp_jsonw_init(&w, out);
	qp_jsonw_object(&w);
	qp_jsonw_key(&w, "version");
	qp_jsonw_int(&w, QP_LIST_JSON_VERSION);
	qp_jsonw_key(&w, "sysroot");
	qp_jsonw_str(&w, h->root);

	qp_jsonw_key(&w, "iommu");
	qp_jsonw_object(&w);
	qp_jsonw_key(&w, "enabled");
	qp_jsonw_bool(&w, qp_host_iommu_on(h));
	qp_jsonw_key(&w, "groups");
	qp_jsonw_int(&w, (int64_t)h->n_iommu_groups);
	qp_autofree char *advice = qp_host_iommu_on(h) ? NULL : qp_advice_iommu_off(h);
	qp_jsonw_key(&w, "message");
	qp_jsonw_str(&w, advice);
	qp_jsonw_end(&w);

	qp_jsonw_key(&w, "gpus");
	qp_jsonw_array(&w);
	for (size_t i = 0; i < v.n_gpus; i++)
		json_gpu(&w, &v.gpus[i]);
	qp_jsonw_end(&w);

	qp_jsonw_key(&w, "devices");
	qp_jsonw_array(&w);
	for (size_t i = 0; i < h->n_devs; i++)
		if (o->all || v.shown[i])
			json_dev(&w, &h->devs[i]);
	qp_jsonw_end(&w);
	qp_jsonw_key(&w, "numa_nodes");
	json_nodes(&w, h);
	qp_jsonw_key(&w, "cpus");
	json_cpus(&w, h);
	qp_jsonw_key(&w, "host");
	json_host(&w, h);
	qp_jsonw_key(&w, "warnings");
	qp_jsonw_array(&w);
	for (char **x = h->warnings; x && *x; x++)
		qp_jsonw_str(&w, *x);
	qp_jsonw_end(&w);
	qp_jsonw_end(&w);
	view_free(&v);
	return qp_jsonw_finish(&w, err);
}
