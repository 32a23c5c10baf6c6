/* `qpass check`: the rules about the VM's devices and node (IOMMU groups, boot
 * framebuffers, holders, resets, power, the NUMA node, the plan). Pure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/check-int.h"

static const char *const boot_fbs[] = { "efifb", "simpledrm", "simple-framebuffer",
					"vesafb", "BOOTFB", NULL };

const char *qp_check_iomem_fb(const char *iomem, uint64_t start, uint64_t end,
			      uint64_t *fb_start, uint64_t *fb_end)
{
	for (const char *line = iomem; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		qp_autofree char *l = qp_xstrndup(line, len);
		line = nl ? nl + 1 : NULL;
		unsigned long long s, e;
		int name_at = 0;
		if (sscanf(l, " %llx-%llx : %n", &s, &e, &name_at) != 2 || !name_at)
			continue;
		const char *name = l + name_at;
		for (const char *const *fb = boot_fbs; *fb; fb++) {
			if (strcmp(name, *fb))
				continue;
			/* Without root, the kernel shows every range as 0-0. */
			if ((s || e) && s <= end && e >= start) {
				*fb_start = s;
				*fb_end = e;
				return *fb;
			}
		}
	}
	return NULL;
}

static const char *const no_drop[] = { NULL };

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

void qp_check_groups(const struct qp_host *h, const struct qp_check_target *t,
		     struct qp_check_report *r)
{
	if (!qp_host_iommu_on(h)) {
		row(r, "group", "groups", QP_CHECK_SKIP, "IOMMU groups",
		    qp_xstrdup("no groups while the IOMMU is off"), NULL);
		return;
	}
	int *groups = qp_xcalloc(t->n_fns ? t->n_fns : 1, sizeof(int));
	size_t n = 0;
	for (size_t i = 0; i < t->n_fns; i++) {
		const struct qp_pci_dev *d = qp_host_dev(h, &t->fns[i]);
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&t->fns[i], a);
		if (d->iommu_group < 0) {
			row(r, "group", a, QP_CHECK_FAIL, "IOMMU group",
			    qp_xstrdup("in no IOMMU group: it cannot be passed through"),
			    qp_xstrdup("the firmware's IOMMU tables leave it out; pass another "
				       "device"));
			continue;
		}
		bool seen = false;
		for (size_t g = 0; g < n; g++)
			seen = seen || groups[g] == d->iommu_group;
		if (!seen)
			groups[n++] = d->iommu_group;
	}
	qsort(groups, n, sizeof(int), cmp_int);
	for (size_t g = 0; g < n; g++) {
		qp_autofree char *subject = qp_xasprintf("group %d", groups[g]);
		struct qp_err *err = NULL;
		if (qp_plan_check_groups(t->what, h, &groups[g], 1, t->fns, t->n_fns, &err) < 0) {
			/* The planner's message, without its "FILE: " */
			const char *m = err->msg;
			size_t wl = strlen(t->what);
			if (!strncmp(m, t->what, wl) && !strncmp(m + wl, ": ", 2))
				m += wl + 2;
			row(r, "group", subject, QP_CHECK_FAIL, "IOMMU group", qp_xstrdup(m),
			    err->hint ? qp_xstrdup(err->hint) : NULL);
			qp_err_free(err);
			continue;
		}
		const struct qp_iommu_group *grp = qp_host_group(h, groups[g]);
		struct qp_buf d = { 0 };
		qp_buf_add(&d, "viable:");
		for (size_t m = 0; grp && m < grp->n_members; m++) {
			char a[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&grp->members[m], a);
			const struct qp_pci_dev *dev = qp_host_dev(h, &grp->members[m]);
			bool in = false;
			for (size_t i = 0; i < t->n_fns; i++)
				in = in || !qp_pci_addr_cmp(&t->fns[i], &grp->members[m]);
			qp_buf_addf(&d, " %s %s%s", a,
				    in ? "(VM)" : dev && dev->header_type == QP_HDR_BRIDGE ? "(bridge)"
				    : "(no host driver)", m + 1 < grp->n_members ? "," : "");
		}
		row(r, "group", subject, QP_CHECK_OK, "IOMMU group", qp_buf_steal(&d), NULL);
	}
	free(groups);
}

static const struct qp_check_dev *probe_dev(const struct qp_check_facts *f,
					    const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < f->n_devs; i++)
		if (!qp_pci_addr_cmp(&f->devs[i].addr, a))
			return &f->devs[i];
	return NULL;
}

/* A boot framebuffer in one of the GPU's BARs. */
static bool fn_framebuffer(const struct qp_host *h, const struct qp_check_facts *f,
			   const struct qp_pci_dev *d, const struct qp_check_dev *pd,
			   const char *a, struct qp_check_report *r)
{
	for (int b = 0; pd && qp_pci_is_display(d) && b < 6; b++) {
		uint64_t s, e;
		const char *fb = pd->bar_end[b] && f->iomem
					 ? qp_check_iomem_fb(f->iomem, pd->bar_start[b],
							     pd->bar_end[b], &s, &e)
					 : NULL;
		if (!fb)
			continue;
		const char *param = !strcmp(fb, "efifb") ? "video=efifb:off"
				    : !strcmp(fb, "vesafb") ? "video=vesafb:off"
				    : "initcall_blacklist=sysfb_init";
		qp_autofree char *c = qp_check_cmdline_fix(h, f, param, no_drop);
		row(r, "framebuffer", a, QP_CHECK_WARN, "boot framebuffer",
		    qp_xasprintf("%s owns %" PRIx64 "-%" PRIx64 " in BAR %d (/proc/iomem): "
				 "QEMU cannot map that part of the GPU (\"BAR %d: can't "
				 "reserve\"), and the guest's driver fails on it", fb, s, e,
				 b, b),
		    qp_xasprintf("keep the host's firmware console off this GPU; %s", c));
		return true;
	}
	return false;
}

/* Processes that hold the device open: unbinding its driver would hang. */
static bool fn_holders(const struct qp_pci_dev *d, const struct qp_check_dev *pd,
		       const char *a, struct qp_check_report *r)
{
	if (!pd || !pd->holders || (d->driver && !strcmp(d->driver, "vfio-pci")))
		return false;
	row(r, "holders", a, QP_CHECK_FAIL, "in use",
	    qp_xasprintf("held open by %s: unbinding its %s driver would hang",
			 pd->holders, d->driver ? d->driver : "host"),
	    qp_xstrdup("stop them first (a display manager: systemctl stop "
		       "display-manager; nvidia-persistenced: systemctl stop "
		       "nvidia-persistenced)"));
	return true;
}

/* No reset method. A function without a reset of its own is reset with its slot when
 * another function of the slot can be (VFIO's hot reset takes them together): that one
 * is *slot_reset. */
static bool fn_reset(const struct qp_host *h, const struct qp_check_target *t,
		     const struct qp_pci_dev *d, bool kernel_shows_resets, const char *a,
		     const struct qp_pci_dev **slot_reset, struct qp_check_report *r)
{
	bool no_reset = d->reset_methods ? !d->reset_methods[0] : kernel_shows_resets;
	*slot_reset = NULL;
	for (size_t k = 0; no_reset && !*slot_reset && k < t->n_fns; k++) {
		const struct qp_pci_dev *o = qp_host_dev(h, &t->fns[k]);
		if (o != d && qp_pci_same_slot(&o->addr, &d->addr) && o->reset_methods &&
		    o->reset_methods[0])
			*slot_reset = o;
	}
	if (!no_reset || *slot_reset || d->header_type == QP_HDR_BRIDGE)
		return false;
	row(r, "reset", a, QP_CHECK_WARN, "reset",
	    qp_xasprintf("no reset method (%s): the device cannot be reset between "
			 "VM runs, and may come back broken to the next VM or to "
			 "the host (the reset bug)",
			 d->reset_methods ? "reset_method is empty"
					  : "the kernel gives it no reset_method"),
	    qp_xstrdup("nothing to set on the host side: if a guest fails on its "
		       "second start, power-cycle the host; for AMD GPUs the "
		       "vendor-reset module adds a reset"));
	return true;
}

static bool fn_power(const struct qp_pci_dev *d, const char *a, struct qp_check_report *r)
{
	if (!d->power_state || strcmp(d->power_state, "D3cold"))
		return false;
	row(r, "power", a, QP_CHECK_WARN, "power state",
	    qp_xstrdup("in D3cold (powered off): devices that do not come back "
		       "from D3cold fail to start in the guest"),
	    qp_xasprintf("keep it powered:\n    echo 0 > /sys/bus/pci/devices/%s/"
			 "d3cold_allowed", a));
	return true;
}

/* A function with nothing to say against it. */
static void fn_ok(const struct qp_pci_dev *d, const struct qp_pci_dev *slot_reset,
		  const char *a, struct qp_check_report *r)
{
	struct qp_buf ok = { 0 };
	qp_buf_addf(&ok, "%s, driver %s", d->power_state ? d->power_state : "powered",
		    d->driver ? d->driver : "none");
	if (d->reset_methods && d->reset_methods[0]) {
		qp_buf_add(&ok, ", reset by");
		for (char **m = d->reset_methods; *m; m++)
			qp_buf_addf(&ok, " %s", *m);
	} else if (slot_reset) {
		char o[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&slot_reset->addr, o);
		qp_buf_addf(&ok, ", reset with its slot (%s: %s)", o, slot_reset->reset_methods[0]);
	}
	qp_buf_add(&ok, ", not held, no boot framebuffer");
	for (unsigned i = 0; i < d->n_bars; i++) {
		uint64_t m = d->bars[i].resize_mask;
		if (m)  /* Resizable BAR: now, and what it may be (bit n: 2^n MiB) */
			qp_buf_addf(&ok, "; BAR%u is %llu MiB, resizable to %llu-%llu MiB",
				    d->bars[i].index,
				    (unsigned long long)(d->bars[i].size >> 20),
				    1ULL << __builtin_ctzll(m), 1ULL << (63 - __builtin_clzll(m)));
	}
	row(r, "function", a, QP_CHECK_OK, "function", qp_buf_steal(&ok), NULL);
}

void qp_check_functions(const struct qp_host *h, const struct qp_check_target *t,
			const struct qp_check_facts *f, struct qp_check_report *r)
{
	bool kernel_shows_resets = f->kernel_shows_resets;
	for (size_t i = 0; i < t->n_fns; i++) {
		const struct qp_pci_dev *d = qp_host_dev(h, &t->fns[i]);
		const struct qp_check_dev *pd = probe_dev(f, &t->fns[i]);
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&d->addr, a);
		const struct qp_pci_dev *slot_reset;
		/* Every row kind is looked at, in this order; any of them says "not OK". */
		bool found = fn_framebuffer(h, f, d, pd, a, r);
		found |= fn_holders(d, pd, a, r);
		found |= fn_reset(h, t, d, kernel_shows_resets, a, &slot_reset, r);
		found |= fn_power(d, a, r);
		if (!found)
			fn_ok(d, slot_reset, a, r);
	}
}

/* The row of node nd for a VM (or its share across nodes): vcpus and mib MiB on it. */
static void node_row(const struct qp_host *h, const struct qp_check_target *t,
		     const struct qp_numa_node *nd, int vcpus, uint64_t mib,
		     struct qp_check_report *r)
{
	qp_autofree char *subject = qp_xasprintf("node %d", nd->id);
	size_t online = 0;
	for (size_t i = 0; i < h->n_cpus; i++)
		online += h->cpus[i].online && h->cpus[i].node == nd->id;
	const struct qp_profile *p = t->profile;
	uint64_t free_mib = nd->mem_free_kb / 1024, total_mib = nd->mem_total_kb / 1024;
	if (!p) {
		row(r, "node", subject, QP_CHECK_OK, "NUMA node",
		    qp_xasprintf("the device's node: %zu online CPUs, %" PRIu64 " of %" PRIu64
				 " MiB free", online, free_mib, total_mib), NULL);
		return;
	}
	if ((size_t)vcpus > online && !p->vcpu_pins) {
		row(r, "node", subject, QP_CHECK_FAIL, "NUMA node",
		    qp_xasprintf("%zu online CPUs; the VM wants %d vCPUs pinned 1:1 on it", online,
				 vcpus),
		    qp_xasprintf("lower \"vcpus\" in %s to %zu at most, or pin by hand with "
				 "\"vcpu_pins\"", p->file, online));
	} else if (mib > total_mib && !p->hugepage_kb) {
		row(r, "node", subject, QP_CHECK_FAIL, "NUMA node",
		    qp_xasprintf("%" PRIu64 " MiB of memory in all; the VM asks for %" PRIu64
				 " MiB bound to this node", total_mib, mib),
		    qp_xasprintf("lower \"memory\" in %s", p->file));
	} else if (!p->hugepage_kb && qp_plan_memory_fit(nd, mib, 0) != QP_MEM_FITS) {
		uint64_t reclaim_mib = nd->mem_reclaim_kb / 1024;
		bool enough = qp_plan_memory_fit(nd, mib, 0) == QP_MEM_RECLAIM;
		row(r, "node", subject, enough ? QP_CHECK_WARN : QP_CHECK_FAIL, "NUMA node",
		    qp_xasprintf("%" PRIu64 " MiB free and %" PRIu64 " MiB the kernel can reclaim; "
				 "the VM asks for %" PRIu64 " MiB%s", free_mib, reclaim_mib,
				 mib, enough ? " (the kernel reclaims first)" : ""),
		    qp_xstrdup("free memory on the node (stop what uses it; echo 3 > "
			       "/proc/sys/vm/drop_caches drops the page cache), or lower "
			       "\"memory\""));
	} else {
		row(r, "node", subject, QP_CHECK_OK, "NUMA node",
		    qp_xasprintf("%zu online CPU%s for %d vCPU%s; %" PRIu64 " MiB free for %" PRIu64
				 " MiB", online, online == 1 ? "" : "s", vcpus,
				 vcpus == 1 ? "" : "s", free_mib, mib), NULL);
	}
}

void qp_check_node(const struct qp_host *h, const struct qp_check_target *t,
		   struct qp_check_report *r)
{
	const struct qp_profile *p = t->profile;
	if (p && p->numa == QP_NUMA_SPAN) {
		/* Across nodes: each node of the functions, for its share. */
		size_t k = 0;
		bool *used = qp_xcalloc(h->n_nodes + 1, sizeof(bool));
		for (size_t n = 0; n < h->n_nodes; n++)
			for (size_t i = 0; i < t->n_fns && !used[n]; i++) {
				const struct qp_pci_dev *d = qp_host_dev(h, &t->fns[i]);
				used[n] = d && d->numa_node == h->nodes[n].id;
			}
		for (size_t n = 0; n < h->n_nodes; n++)
			k += used[n];
		for (size_t n = 0; k > 1 && n < h->n_nodes; n++)
			if (used[n])
				node_row(h, t, &h->nodes[n], p->vcpus / (int)k, p->memory_mib / k, r);
		free(used);
		if (k > 1)
			return;
	}
	if (t->node < 0 || !qp_host_node(h, t->node)) {
		if (h->n_nodes && t->n_fns)
			row(r, "node", "node", QP_CHECK_FAIL, "NUMA node",
			    qp_xstrdup("the functions are on different NUMA nodes: no node is "
				       "local to all of them"),
			    qp_xstrdup("pass devices of one node per VM, choose the node with "
				       "\"numa\" in the profile, or span them with \"numa\": "
				       "\"span\""));
		return;
	}
	node_row(h, t, qp_host_node(h, t->node), p ? p->vcpus : 0, p ? p->memory_mib : 0, r);
}

void qp_check_plan(const struct qp_host *h, const struct qp_check_target *t,
		   size_t fails_before, struct qp_check_report *r)
{
	const struct qp_profile *p = t->profile;
	if (!p)
		return;
	if (!t->planned) {
		/* A failure the rows above already explain is not said twice. */
		if (r->n[QP_CHECK_FAIL] == fails_before)
			row(r, "plan", "plan", QP_CHECK_FAIL, "plan",
			    qp_xstrdup(t->plan_err->msg),
			    t->plan_err->hint ? qp_xstrdup(t->plan_err->hint) : NULL);
		return;
	}
	/* The nodes' memory warnings are their rows' already. */
	char **notes = NULL;
	size_t k = t->plan.n_memory_nodes;
	for (size_t g = 0; g < k; g++) {
		const struct qp_numa_node *nd = qp_host_node(h, t->plan.memory_nodes[g]);
		char *n = nd ? qp_plan_memory_note(nd, p->memory_mib / k) : NULL;
		if (n)
			qp_strv_push(&notes, n);
	}
	for (char **w = t->plan.warnings; w && *w; w++)
		if (!qp_strv_contains(notes, *w))
			row(r, "plan", "plan", QP_CHECK_WARN, "plan", qp_xstrdup(*w), NULL);
	qp_strv_free(notes);
	row(r, "plan", "plan", QP_CHECK_OK, "plan",
	    qp_xasprintf("valid: %zu function%s, %zu vCPU%s, NUMA node %d (qpass plan %s shows "
			 "it)", t->plan.n_devs, t->plan.n_devs == 1 ? "" : "s", t->plan.n_vcpus,
			 t->plan.n_vcpus == 1 ? "" : "s", t->plan.numa_node, p->file), NULL);
}
