#include "core/plan.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/advice.h"
#include "core/argv.h"
#include "core/plan-int.h"
#include "core/pool.h"
#include "core/slots.h"

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
	pd->guest_node = -1;
	pd->slot = -1;
	return 0;
}

/* "gpus": every function of each GPU picked from the free ones. */
static int pick_gpus(const struct qp_profile *p, const struct qp_host *h,
		     const struct qp_ledger *ledger, struct qp_plan *plan, struct qp_err **err)
{
	static char key[] = "gpus";
	static const struct qp_passthrough picked = { .guest_slot = -1, .rombar = -1,
						      .key = key };
	struct qp_pool_pick pick;
	if (qp_pool_pick_gpus(p, h, ledger, &pick, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < pick.n && rc == 0; i++) {
		for (size_t j = qp_host_lower(h, &pick.slots[i]);
		     rc == 0 && j < h->n_devs && qp_pci_same_slot(&h->devs[j].addr, &pick.slots[i]);
		     j++) {
			rc = add_dev(p, &picked, &h->devs[j], plan, err);
			if (rc == 0)
				plan->devs[plan->n_devs - 1].picked = true;
		}
	}
	plan->picked = true;
	char node[40] = "";
	if (pick.node >= 0)
		snprintf(node, sizeof(node), " of NUMA node %d", pick.node);
	note(plan, qp_xasprintf("gpus: %zu GPU%s picked from the free ones%s; `qpass up` picks "
				"again when it starts, from what is free then", pick.n,
				pick.n == 1 ? "" : "s", node));
	qp_pool_pick_free(&pick);
	return rc;
}

/* A function that a VM that runs has: refused here, naming it, before anything else. */
static int check_free(const struct qp_profile *p, const struct qp_ledger *l,
		      const struct qp_plan *plan, struct qp_err **err)
{
	for (size_t i = 0; i < plan->n_devs; i++) {
		const struct qp_lease *e = qp_ledger_dev_holder(l, &plan->devs[i].host);
		if (!e)
			continue;
		char a[QP_PCI_ADDR_LEN];
		qp_err_set(err, 0, "%s: %s is taken by the VM %s%s", p->file,
			   pci_name(&plan->devs[i].host, a), e->name,
			   e->orphan ? " (its qpass is gone; its QEMU runs on)" : "");
		return qp_err_hint(err, "stop that VM first (`qpass down %s`), or pass another "
				   "device", e->name);
	}
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

/* --- the whole plan ------------------------------------------------------------- */

void qp_plan_warn(struct qp_plan *plan, char *msg)
{
	qp_strv_push(&plan->warnings, msg);
}

void qp_plan_note(struct qp_plan *plan, char *msg)
{
	qp_strv_push(&plan->notes, msg);
}

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
	return qp_plan_make_with(p, h, NULL, out, err);
}

int qp_plan_make_with(const struct qp_profile *p, const struct qp_host *h,
		      const struct qp_ledger *l, struct qp_plan *out, struct qp_err **err)
{
	struct qp_plan plan = { .profile = p };
	if (expand_devices(p, h, &plan, err) < 0 || check_free(p, l, &plan, err) < 0 ||
	    (p->gpus.count && pick_gpus(p, h, l, &plan, err) < 0) ||
	    check_groups(p, h, &plan, err) < 0 || check_boot_vga(p, h, &plan, err) < 0 ||
	    qp_plan_choose_node(p, h, &plan, err) < 0 ||
	    qp_plan_place_cpus(p, h, l, &plan, err) < 0 ||
	    qp_plan_place_memory(p, h, l, &plan, err) < 0 || qp_plan_address(p, &plan, err) < 0 ||
	    qp_plan_mmio(p, h, &plan, err) < 0) {
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

void qp_plan_lease(const struct qp_plan *plan, struct qp_lease *out)
{
	const struct qp_profile *p = plan->profile;
	*out = (struct qp_lease){ .name = qp_xstrdup(p->name), .share_cpus = p->share_cpus,
				  .node = plan->numa_node, .memory_mib = p->memory_mib };
	out->devs = qp_xcalloc(plan->n_devs ? plan->n_devs : 1, sizeof(*out->devs));
	for (size_t i = 0; i < plan->n_devs; i++)
		out->devs[i] = plan->devs[i].host;
	out->n_devs = plan->n_devs;
	for (size_t v = 0; v < plan->n_vcpus; v++)
		qp_cpulist_add(&out->vcpu_cpus, plan->vcpu_pins[v]);
	qp_cpulist_copy(&out->emulator_cpus, &plan->emulator_cpus);
	for (size_t g = 0; plan->span && g < plan->n_memory_nodes; g++)
		qp_cpulist_add(&out->nodes, plan->memory_nodes[g]);
	if (p->hugepage_kb) {
		out->hugepage_kb = p->hugepage_kb;
		out->hugepages = p->memory_mib * 1024 / p->hugepage_kb;
	}
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
	qp_cpulist_free(&plan->prealloc_cpus);
	free(plan->memory_nodes);
	free(plan->pxb_slots);
	free(plan->taps);
	free(plan->ovmf_vars);
	free(plan->net_slots);
	free(plan->disk_slots);
	qp_strv_free(plan->argv);
	qp_strv_free(plan->warnings);
	qp_strv_free(plan->notes);
	memset(plan, 0, sizeof(*plan));
}
