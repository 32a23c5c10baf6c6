#include "core/plan.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/advice.h"
#include "core/argv.h"
#include "core/slots.h"

static const char *pci_name(const struct qp_pci_addr *a, char buf[QP_PCI_ADDR_LEN])
{
	qp_pci_addr_fmt(a, buf);
	return buf;
}

static void warn(struct qp_plan *plan, char *msg)
{
	qp_strv_push(&plan->warnings, msg);
}

static bool is_vfio_ready(const struct qp_pci_dev *d)
{
	return !d->driver || !strcmp(d->driver, "vfio-pci") || !strcmp(d->driver, "pci-stub");
}

/* --- which host functions ------------------------------------------------------- */

static bool have_dev(const struct qp_plan *plan, const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < plan->n_devs; i++)
		if (!qp_pci_addr_cmp(&plan->devs[i].host, a))
			return true;
	return false;
}

static int add_dev(const struct qp_profile *p, const struct qp_passthrough *t,
		   const struct qp_pci_dev *d, struct qp_plan *plan, struct qp_err **err)
{
	char a[QP_PCI_ADDR_LEN];
	if (d->header_type == QP_HDR_BRIDGE)
		return qp_err_set(err, 0, "%s: %s (%s) is a PCI bridge; bridges stay on the host "
				  "and cannot be passed through", p->file, t->key,
				  pci_name(&d->addr, a));
	if (have_dev(plan, &d->addr))
		return qp_err_set(err, 0, "%s: %s: %s is already in the passthrough list", p->file,
				  t->key, pci_name(&d->addr, a));
	plan->devs = qp_xrealloc(plan->devs, (plan->n_devs + 1) * sizeof(*plan->devs));
	struct qp_plan_dev *pd = &plan->devs[plan->n_devs++];
	memset(pd, 0, sizeof(*pd));
	pd->host = d->addr;
	pd->iommu_group = d->iommu_group;
	pd->numa_node = d->numa_node;
	pd->driver = d->driver;
	pd->name = d->name;
	pd->rombar = t->rombar;
	pd->romfile = t->romfile;
	pd->port_slot = -1;
	pd->slot = -1;
	return 0;
}

static int expand_devices(const struct qp_profile *p, const struct qp_host *h,
			  struct qp_plan *plan, struct qp_err **err)
{
	for (size_t i = 0; i < p->n_pt; i++) {
		const struct qp_passthrough *t = &p->pt[i];
		char a[QP_PCI_ADDR_LEN], s[QP_PCI_SLOT_LEN];
		bool found = false;
		struct qp_pci_addr first = t->addr;
		if (t->all_functions)
			first.func = 0;
		for (size_t j = qp_host_lower(h, &first); j < h->n_devs; j++) {
			const struct qp_pci_dev *d = &h->devs[j];
			bool match = t->all_functions ? qp_pci_same_slot(&d->addr, &t->addr)
						      : !qp_pci_addr_cmp(&d->addr, &t->addr);
			if (!match)
				break;
			found = true;
			if (add_dev(p, t, d, plan, err) < 0)
				return -1;
		}
		if (!found) {
			if (t->all_functions)
				qp_pci_slot_fmt(&t->addr, s);
			qp_err_set(err, 0, "%s: %s: there is no device %s on this host", p->file,
				   t->key, t->all_functions ? s : pci_name(&t->addr, a));
			return qp_err_hint(err, "`qpass list --all` shows the host's devices");
		}
	}
	return 0;
}

/* --- IOMMU groups and the boot VGA ------------------------------------------------ */

static int check_groups(const struct qp_profile *p, const struct qp_host *h,
			struct qp_plan *plan, struct qp_err **err)
{
	if (!plan->n_devs)
		return 0;
	if (!qp_host_iommu_on(h)) {
		qp_err_set(err, 0, "the IOMMU is off on this host, so nothing can be passed "
			   "through");
		qp_autofree char *advice = qp_advice_iommu_off(h);
		return qp_err_hint(err, "%s", advice);
	}
	for (size_t i = 0; i < plan->n_devs; i++) {
		const struct qp_plan_dev *d = &plan->devs[i];
		char a[QP_PCI_ADDR_LEN];
		if (d->iommu_group < 0)
			return qp_err_set(err, 0, "%s is in no IOMMU group, so it cannot be passed "
					  "through", pci_name(&d->host, a));
		bool known = false;
		for (size_t g = 0; g < plan->n_groups; g++)
			known = known || plan->groups[g] == d->iommu_group;
		if (known)
			continue;
		plan->groups = qp_xrealloc(plan->groups, (plan->n_groups + 1) * sizeof(int));
		size_t g = plan->n_groups++;
		for (; g && plan->groups[g - 1] > d->iommu_group; g--)
			plan->groups[g] = plan->groups[g - 1];
		plan->groups[g] = d->iommu_group;
	}
	struct qp_pci_addr *vm = qp_xcalloc(plan->n_devs, sizeof(*vm));
	for (size_t i = 0; i < plan->n_devs; i++)
		vm[i] = plan->devs[i].host;
	int rc = qp_plan_check_groups(p->file, h, plan->groups, plan->n_groups, vm,
				      plan->n_devs, err);
	free(vm);
	return rc;
}

static bool in_set(const struct qp_pci_addr *set, size_t n, const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (!qp_pci_addr_cmp(&set[i], a))
			return true;
	return false;
}

int qp_plan_check_groups(const char *file, const struct qp_host *h, const int *groups,
			 size_t n_groups, const struct qp_pci_addr *vm, size_t n_vm,
			 struct qp_err **err)
{
	/* VFIO hands out whole groups: every member that is not a bridge must come along or
	 * already be free of host drivers. */
	struct qp_buf bad = { 0 }, fix = { 0 };
	size_t n_bad = 0;
	for (size_t g = 0; g < n_groups; g++) {
		const struct qp_iommu_group *grp = qp_host_group(h, groups[g]);
		for (size_t m = 0; grp && m < grp->n_members; m++) {
			const struct qp_pci_dev *d = qp_host_dev(h, &grp->members[m]);
			if (!d || in_set(vm, n_vm, &d->addr) || d->header_type == QP_HDR_BRIDGE ||
			    is_vfio_ready(d))
				continue;
			char a[QP_PCI_ADDR_LEN];
			pci_name(&d->addr, a);
			char ids[16];
			snprintf(ids, sizeof(ids), "[%04x:%04x]", d->vendor, d->device);
			qp_buf_addf(&bad, "\n  group %d: %s  %s  (driver %s)", grp->id, a,
				    d->device_name ? d->device_name : d->name ? d->name : ids,
				    d->driver);
			qp_buf_addf(&fix, "%s\"%s\"", n_bad ? ", " : "", a + 5);
			n_bad++;
		}
	}
	if (n_bad) {
		qp_autofree char *list = qp_buf_steal(&bad);
		qp_autofree char *adds = qp_buf_steal(&fix);
		qp_err_set(err, 0, "%s: VFIO takes whole IOMMU groups, and %s of the devices "
			   "in them stay%s on host drivers:%s", file, n_bad == 1 ? "one" : "some",
			   n_bad == 1 ? "s" : "", list);
		return qp_err_hint(err, "pass %s through too (add %s to \"passthrough\"), or "
				   "unbind %s from %s driver%s first; or move the GPU to a slot "
				   "with a group of its own (`qpass list` shows the groups). Bridges "
				   "in a group are fine.", n_bad == 1 ? "it" : "them", adds,
				   n_bad == 1 ? "it" : "them", n_bad == 1 ? "its" : "their",
				   n_bad == 1 ? "" : "s");
	}
	qp_buf_free(&bad);
	qp_buf_free(&fix);
	return 0;
}

static int check_boot_vga(const struct qp_profile *p, const struct qp_host *h,
			  struct qp_plan *plan, struct qp_err **err)
{
	for (size_t i = 0; i < plan->n_devs; i++) {
		const struct qp_pci_dev *d = qp_host_dev(h, &plan->devs[i].host);
		if (!d->boot_vga || is_vfio_ready(d))
			continue;
		char a[QP_PCI_ADDR_LEN];
		pci_name(&d->addr, a);
		if (p->allow_boot_vga) {
			warn(plan, qp_xasprintf("%s is the boot VGA device: the host's console "
						"goes dark while the VM has it", a));
			continue;
		}
		qp_err_set(err, 0, "%s is the host's boot VGA device and its %s driver holds "
			   "it: the host's console and firmware framebuffer are on it, and "
			   "taking it away can hang the host's display or fail the GPU's reset", a,
			   d->driver);
		return qp_err_hint(err, "pass a GPU that is not the boot display, or set "
				   "\"allow_boot_vga\": true in %s (best with video=efifb:off on the "
				   "host's kernel command line)", p->file);
	}
	return 0;
}

/* --- NUMA: node, CPUs, memory --------------------------------------------------- */

static int choose_node(const struct qp_profile *p, const struct qp_host *h,
		       struct qp_plan *plan, struct qp_err **err)
{
	plan->numa_node = -1;
	if (!h->n_nodes) {
		if (p->numa >= 0)
			return qp_err_set(err, 0, "%s: numa: node %d was asked for, but this host "
					  "has no NUMA nodes", p->file, p->numa);
		return 0;
	}
	if (p->numa >= 0) {
		if (!qp_host_node(h, p->numa)) {
			struct qp_buf b = { 0 };
			for (size_t i = 0; i < h->n_nodes; i++)
				qp_buf_addf(&b, "%s%d", i ? ", " : "", h->nodes[i].id);
			qp_autofree char *nodes = qp_buf_steal(&b);
			return qp_err_set(err, 0, "%s: numa: this host has no node %d (its nodes: %s)",
					  p->file, p->numa, nodes);
		}
		plan->numa_node = p->numa;
		for (size_t i = 0; i < plan->n_devs; i++) {
			int n = plan->devs[i].numa_node;
			char a[QP_PCI_ADDR_LEN];
			if (n >= 0 && n != p->numa)
				warn(plan, qp_xasprintf("%s is on NUMA node %d, the VM on node %d: its "
							"DMA crosses nodes", pci_name(&plan->devs[i].host, a),
							n, p->numa));
		}
		return 0;
	}
	/* auto: the node of the passthrough devices. */
	int node = -1;
	bool unknown = false;
	for (size_t i = 0; i < plan->n_devs; i++) {
		int n = plan->devs[i].numa_node;
		if (n < 0) {
			unknown = true;
			continue;
		}
		if (node >= 0 && n != node) {
			struct qp_buf b = { 0 };
			for (size_t j = 0; j < plan->n_devs; j++) {
				char a[QP_PCI_ADDR_LEN];
				qp_buf_addf(&b, "\n  %s  node %d", pci_name(&plan->devs[j].host, a),
					    plan->devs[j].numa_node);
			}
			qp_autofree char *list = qp_buf_steal(&b);
			qp_err_set(err, 0, "%s: the passthrough devices are on NUMA nodes %d and %d, "
				   "so no node is local to all of them:%s", p->file, node, n, list);
			return qp_err_hint(err, "pass devices of one node per VM (as the seed does), "
					   "or choose the node with \"numa\": %d or \"numa\": %d",
					   node, n);
		}
		node = n;
	}
	if (node < 0) {
		node = h->nodes[0].id;
		if (unknown)
			warn(plan, qp_xasprintf("the firmware gives no NUMA node for the passthrough "
						"devices; the VM goes on node %d%s", node,
						h->n_nodes == 1 ? ", the host's only node" : ""));
	}
	plan->numa_node = node;
	return 0;
}

/* The CPUs the VM may use: the node's online CPUs, or every online CPU without NUMA. */
static void node_cpus(const struct qp_host *h, int node, struct qp_cpulist *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < h->n_cpus; i++)
		if (h->cpus[i].online && (node < 0 || h->cpus[i].node == node))
			qp_cpulist_add(out, h->cpus[i].id);
}

static char *where(int node)
{
	return node < 0 ? qp_xstrdup("this host") : qp_xasprintf("NUMA node %d", node);
}

static int auto_pins(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *plan,
		     const struct qp_cpulist *cpus, struct qp_err **err)
{
	/* Cores in the order of their first thread; a core's threads within the set. */
	struct qp_cpulist *cores = qp_xcalloc(cpus->n ? cpus->n : 1, sizeof(*cores));
	size_t n_cores = 0, max_threads = 0;
	for (size_t i = 0; i < cpus->n; i++) {
		const struct qp_cpu *c = qp_host_cpu(h, cpus->cpu[i]);
		bool seen = false;
		for (size_t k = 0; k < n_cores && !seen; k++)
			seen = qp_cpulist_has(&cores[k], c->id);
		if (seen)
			continue;
		for (size_t s = 0; s < c->siblings.n; s++)
			if (qp_cpulist_has(cpus, c->siblings.cpu[s]))
				qp_cpulist_add(&cores[n_cores], c->siblings.cpu[s]);
		if (cores[n_cores].n > max_threads)
			max_threads = cores[n_cores].n;
		n_cores++;
	}
	size_t t = (size_t)p->threads, need = (size_t)p->vcpus / t, usable = 0;
	for (size_t k = 0; k < n_cores; k++)
		usable += cores[k].n >= t;
	int rc = 0;
	if (usable < need) {
		qp_autofree char *w = where(plan->numa_node);
		qp_autofree char *list = qp_cpulist_fmt(cpus);
		rc = qp_err_set(err, 0, "%s: %d vCPUs at %zu thread%s per core need %zu cores, "
				"but %s has %zu core%s with %zu thread%s each at most (CPUs %s)",
				p->file, p->vcpus, t, t == 1 ? "" : "s", need, w, n_cores,
				n_cores == 1 ? "" : "s", max_threads, max_threads == 1 ? "" : "s",
				list);
		qp_err_hint(err, "lower \"vcpus\"%s, or give \"vcpu_pins\" (one host CPU per "
			    "vCPU)", t == 1 && max_threads > 1 ?
			    ", set \"cpu\": {\"threads\": 2} to use both threads of each core" : "");
	} else {
		size_t v = 0;
		for (size_t k = 0; k < n_cores && v < (size_t)p->vcpus; k++) {
			if (cores[k].n < t)
				continue;
			for (size_t j = 0; j < t; j++)
				plan->vcpu_pins[v++] = cores[k].cpu[j];
		}
	}
	for (size_t k = 0; k < n_cores; k++)
		qp_cpulist_free(&cores[k]);
	free(cores);
	return rc;
}

static int check_cpus_exist(const struct qp_profile *p, const struct qp_host *h,
			    const int *cpus, size_t n, const char *key, struct qp_err **err)
{
	for (size_t i = 0; i < n; i++) {
		const struct qp_cpu *c = qp_host_cpu(h, cpus[i]);
		if (!c || !c->online)
			return qp_err_set(err, 0, "%s: %s: CPU %d is not an online CPU of this host",
					  p->file, key, cpus[i]);
	}
	return 0;
}

static int place_cpus(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *plan,
		      struct qp_err **err)
{
	plan->n_vcpus = (size_t)p->vcpus;
	plan->vcpu_pins = qp_xcalloc(plan->n_vcpus, sizeof(int));
	struct qp_cpulist cpus;
	node_cpus(h, plan->numa_node, &cpus);
	int rc = 0;
	if (p->vcpu_pins) {
		rc = check_cpus_exist(p, h, p->vcpu_pins, p->n_vcpu_pins, "vcpu_pins", err);
		for (size_t i = 0; rc == 0 && i < p->n_vcpu_pins; i++) {
			for (size_t j = 0; j < i; j++)
				if (p->vcpu_pins[j] == p->vcpu_pins[i])
					rc = qp_err_set(err, 0, "%s: vcpu_pins: CPU %d is given to vCPU "
							"%zu and vCPU %zu; pinning is one to one",
							p->file, p->vcpu_pins[i], j, i);
			plan->vcpu_pins[i] = p->vcpu_pins[i];
			if (rc == 0 && !qp_cpulist_has(&cpus, p->vcpu_pins[i]))
				warn(plan, qp_xasprintf("vcpu_pins: CPU %d is not on the VM's NUMA "
							"node %d", p->vcpu_pins[i], plan->numa_node));
		}
	} else {
		rc = auto_pins(p, h, plan, &cpus, err);
	}
	if (rc == 0 && p->has_emulator_cpus) {
		rc = check_cpus_exist(p, h, p->emulator_cpus.cpu, p->emulator_cpus.n,
				      "emulator_cpus", err);
		qp_cpulist_copy(&plan->emulator_cpus, &p->emulator_cpus);
	} else if (rc == 0) {
		/* The node's CPUs that no vCPU has; all of them when none is left. */
		for (size_t i = 0; i < cpus.n; i++) {
			bool used = false;
			for (size_t v = 0; v < plan->n_vcpus; v++)
				used = used || plan->vcpu_pins[v] == cpus.cpu[i];
			if (!used)
				qp_cpulist_add(&plan->emulator_cpus, cpus.cpu[i]);
		}
		if (!plan->emulator_cpus.n) {
			qp_cpulist_copy(&plan->emulator_cpus, &cpus);
			warn(plan, qp_xstrdup("the vCPUs take every CPU of the node: QEMU's other "
					      "threads share them (set \"emulator_cpus\" to choose)"));
		}
	}
	qp_cpulist_free(&cpus);
	return rc;
}

static int place_memory(const struct qp_profile *p, const struct qp_host *h,
			struct qp_plan *plan, struct qp_err **err)
{
	plan->memlock_bytes = (p->memory_mib << 20) + ((uint64_t)plan->n_devs << 30);
	if (plan->numa_node < 0)
		return 0;
	plan->memory_nodes = qp_xcalloc(1, sizeof(int));
	plan->memory_nodes[0] = plan->numa_node;
	plan->n_memory_nodes = 1;
	const struct qp_numa_node *nd = qp_host_node(h, plan->numa_node);
	if (p->hugepage_kb) {
		uint64_t want_kb = p->memory_mib * 1024;
		const struct qp_hugepages *hp = qp_node_hugepages(nd, p->hugepage_kb);
		uint64_t free_pages = hp ? hp->free : 0;
		uint64_t need = want_kb / p->hugepage_kb;
		if (free_pages < need) {
			const char *size = p->hugepage_kb == 2048 ? "2M" : "1G";
			qp_err_set(err, 0, "%s: NUMA node %d has %llu free %s hugepages; %llu MiB "
				   "needs %llu", p->file, nd->id, (unsigned long long)free_pages,
				   size, (unsigned long long)p->memory_mib,
				   (unsigned long long)need);
			return qp_err_hint(err, "reserve them: echo %llu > /sys/devices/system/node/"
					   "node%d/hugepages/hugepages-%llukB/nr_hugepages",
					   (unsigned long long)need, nd->id,
					   (unsigned long long)p->hugepage_kb);
		}
	} else {
		char *note = qp_plan_memory_note(nd, p->memory_mib);
		if (note)
			warn(plan, note);
	}
	return 0;
}

char *qp_plan_memory_note(const struct qp_numa_node *nd, uint64_t memory_mib)
{
	if (nd->mem_free_kb >= memory_mib * 1024)
		return NULL;
	return qp_xasprintf("NUMA node %d has %llu MiB free; the VM asks for %llu MiB (the "
			    "kernel may reclaim caches, or the VM may fail to start)", nd->id,
			    (unsigned long long)(nd->mem_free_kb / 1024),
			    (unsigned long long)memory_mib);
}

/* --- the whole plan ------------------------------------------------------------- */

char *qp_plan_guest_addr(const struct qp_plan_dev *d)
{
	return qp_xasprintf("%s:%02x.%d", d->bus, d->slot, d->func);
}

static void choose_accel(const struct qp_profile *p, const struct qp_host *h,
			 struct qp_plan *plan)
{
	if (p->accel == QP_ACCEL_TCG) {
		plan->tcg = true;
	} else if (p->accel == QP_ACCEL_AUTO) {
		plan->tcg = !h->dev_kvm;
		if (plan->tcg)
			warn(plan, qp_xstrdup("no /dev/kvm on this host: the VM runs under TCG "
					      "(emulation), far slower"));
	} else if (!h->dev_kvm) {
		warn(plan, qp_xstrdup("no /dev/kvm on this host: QEMU will fail to start with "
				      "accel kvm (load kvm_intel or kvm_amd, or set \"accel\": "
				      "\"auto\")"));
	}
	if (plan->tcg && !strcmp(p->cpu_model, "host"))
		warn(plan, qp_xstrdup("cpu model \"host\" needs KVM; under TCG the VM gets "
				      "\"max\""));
	if (plan->tcg && plan->n_devs)
		warn(plan, qp_xstrdup("passthrough under TCG works, but slowly"));
}

int qp_plan_make(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *out,
		 struct qp_err **err)
{
	struct qp_plan plan = { .profile = p };
	if (expand_devices(p, h, &plan, err) < 0 || check_groups(p, h, &plan, err) < 0 ||
	    check_boot_vga(p, h, &plan, err) < 0 || choose_node(p, h, &plan, err) < 0 ||
	    place_cpus(p, h, &plan, err) < 0 || place_memory(p, h, &plan, err) < 0 ||
	    qp_plan_address(p, &plan, err) < 0) {
		qp_plan_free(&plan);
		return -1;
	}
	choose_accel(p, h, &plan);
	plan.taps = qp_xcalloc(p->n_nets ? p->n_nets : 1, sizeof(*plan.taps));
	for (size_t i = 0; i < p->n_nets; i++) {
		if (p->nets[i].type != QP_NET_BRIDGE)
			continue;
		plan.taps[plan.n_taps].fd = QP_FD_TAP0 + (int)plan.n_taps;
		plan.taps[plan.n_taps].bridge = p->nets[i].bridge;
		plan.n_taps++;
	}
	if (p->firmware == QP_FW_OVMF)
		plan.ovmf_vars = qp_xasprintf("%s/%s/OVMF_VARS.fd",
					      p->state_dir ? p->state_dir : QP_STATE_DIR, p->name);
	qp_plan_build_argv(&plan, h);
	*out = plan;
	return 0;
}

struct qp_pci_sel *qp_plan_needs(const struct qp_profile *p, size_t *n)
{
	struct qp_pci_sel *sel = qp_xcalloc(p->n_pt ? p->n_pt : 1, sizeof(*sel));
	for (size_t i = 0; i < p->n_pt; i++)
		sel[i] = (struct qp_pci_sel){ p->pt[i].addr, p->pt[i].all_functions };
	*n = p->n_pt;
	return sel;
}

void qp_plan_free(struct qp_plan *plan)
{
	for (size_t i = 0; i < plan->n_devs; i++) {
		free(plan->devs[i].id);
		free(plan->devs[i].bus);
	}
	free(plan->devs);
	free(plan->groups);
	free(plan->vcpu_pins);
	qp_cpulist_free(&plan->emulator_cpus);
	free(plan->memory_nodes);
	free(plan->taps);
	free(plan->ovmf_vars);
	free(plan->net_slots);
	free(plan->disk_slots);
	qp_strv_free(plan->argv);
	qp_strv_free(plan->warnings);
	memset(plan, 0, sizeof(*plan));
}
