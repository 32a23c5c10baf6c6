#include "core/slots.h"

#include <stdlib.h>

#include "base/util.h"

struct slots {
	bool used[32];
	const char *file;  /* the profile's, for messages */
};

static int take_slot(struct slots *s, int *out, struct qp_err **err)
{
	for (int i = 1; i < 32; i++) {
		if (!s->used[i]) {
			s->used[i] = true;
			*out = i;
			return 0;
		}
	}
	qp_err_set(err, 0, "%s: the guest's root bus has no free slot left (31 at most, with "
		   "the chipset's and the video's)", s->file);
	return qp_err_hint(err, "pass fewer devices (\"passthrough\", \"gpus\"), disks or "
			   "networks: each takes a slot (on q35, its root port does)");
}

/* The chipset's slots and the video device's. */
static void reserve_chipset(const struct qp_profile *p, struct qp_plan *plan, struct slots *s)
{
	bool pc = p->machine == QP_MACHINE_PC;
	s->used[0] = true;   /* the host bridge */
	if (pc)
		s->used[1] = true;   /* PIIX3: ISA, IDE, USB, ACPI */
	else
		s->used[0x1f] = true;  /* ICH9: LPC, SATA, SMBus */
	plan->video_slot = plan->usb_slot = plan->sata_slot = plan->balloon_slot = -1;
	if (p->video != QP_VIDEO_NONE) {
		plan->video_slot = pc ? 2 : 1;
		s->used[plan->video_slot] = true;
	}
}

/* Slots the profile fixed come first. */
static int reserve_fixed(const struct qp_profile *p, const struct qp_plan *plan,
			 struct slots *s, struct qp_err **err)
{
	for (size_t i = 0; i < p->n_pt; i++) {
		int want = p->pt[i].guest_slot;
		if (want < 0)
			continue;
		if (s->used[want])
			return qp_err_set(err, 0, "%s: %s.guest_slot: slot %d is taken (by %s)",
					  p->file, p->pt[i].key, want,
					  want == plan->video_slot ? "the video device" :
					  want <= 1 || want == 0x1f ? "the chipset" :
					  "another passthrough device");
		s->used[want] = true;
	}
	return 0;
}

/* The NICs, the virtio disks (or the one SATA controller on pc), the USB controller. */
static int place_others(const struct qp_profile *p, struct qp_plan *plan, struct slots *s,
			struct qp_err **err)
{
	bool pc = p->machine == QP_MACHINE_PC;
	plan->net_slots = qp_xcalloc(p->n_nets ? p->n_nets : 1, sizeof(int));
	for (size_t i = 0; i < p->n_nets; i++)
		if (take_slot(s, &plan->net_slots[i], err) < 0)
			return -1;
	plan->disk_slots = qp_xcalloc(p->n_disks ? p->n_disks : 1, sizeof(int));
	for (size_t i = 0; i < p->n_disks; i++) {
		plan->disk_slots[i] = -1;
		if (p->disks[i].bus == QP_DISK_VIRTIO) {
			if (take_slot(s, &plan->disk_slots[i], err) < 0)
				return -1;
		} else if (pc && plan->sata_slot < 0 && take_slot(s, &plan->sata_slot, err) < 0) {
			return -1;
		}
	}
	if (p->usb != QP_USB_NONE && take_slot(s, &plan->usb_slot, err) < 0)
		return -1;
	return 0;
}

/* Gives every function of the host slot of plan->devs[i] (it and those after it) guest
 * function numbers on bus, at slot (pc) or behind a root port at slot (q35). */
static void set_functions(bool pc, struct qp_plan *plan, size_t i, const char *bus, int slot,
			  bool *has_f0)
{
	const struct qp_plan_dev *d = &plan->devs[i];
	size_t n_same = 0;
	*has_f0 = false;
	for (size_t j = i; j < plan->n_devs; j++) {
		if (!qp_pci_same_slot(&plan->devs[j].host, &d->host))
			continue;
		n_same++;
		*has_f0 = *has_f0 || plan->devs[j].host.func == 0;
	}
	int next_func = 0;
	for (size_t j = i; j < plan->n_devs; j++) {
		struct qp_plan_dev *f = &plan->devs[j];
		if (!qp_pci_same_slot(&f->host, &d->host))
			continue;
		/* A guest slot must have a function 0: without the host's, the functions
		 * are numbered from 0 in their order. */
		f->func = *has_f0 ? f->host.func : next_func++;
		f->multifunction = n_same > 1 && f->func == 0;
		f->bus = qp_xstrdup(bus);
		if (pc) {
			f->slot = slot;
		} else {
			f->port_slot = slot;
			f->slot = 0;
		}
	}
}

/* Across nodes: the slot goes on its guest node's expander (pxb on pc, pxb-pcie with a
 * root port on q35), at the expander's next free slot. */
static int place_on_pxb(const struct qp_profile *p, struct qp_plan *plan, size_t i,
			size_t *ports, int *pxb_next, struct qp_err **err)
{
	bool pc = p->machine == QP_MACHINE_PC, has_f0;
	int g = plan->devs[i].guest_node;
	if (pxb_next[g] > 31)
		return qp_err_set(err, 0, "%s: more than 32 devices on guest NUMA node %d", p->file,
				  g);
	qp_autofree char *bus = pc ? qp_xasprintf("pxb.node%d", g)
				   : qp_xasprintf("pci.%zu", ++*ports);
	set_functions(pc, plan, i, bus, pxb_next[g]++, &has_f0);
	return 0;
}

/* The functions of the host slot of plan->devs[i] (it and those after it) at one
 * guest slot. */
static int place_host_slot(const struct qp_profile *p, struct qp_plan *plan, size_t i,
			   size_t *ports, struct slots *s, int *pxb_next, struct qp_err **err)
{
	bool pc = p->machine == QP_MACHINE_PC;
	const struct qp_plan_dev *d = &plan->devs[i];
	if (d->guest_node >= 0)
		return place_on_pxb(p, plan, i, ports, pxb_next, err);
	/* The profile entry it came from, for a fixed slot. */
	int fixed = -1;
	for (size_t k = 0; k < p->n_pt; k++)
		if (qp_pci_same_slot(&p->pt[k].addr, &d->host) && p->pt[k].guest_slot >= 0)
			fixed = p->pt[k].guest_slot;
	int slot = fixed;
	if (slot < 0 && take_slot(s, &slot, err) < 0)
		return -1;
	char *bus = pc ? qp_xstrdup("pci.0") : qp_xasprintf("pci.%zu", ++*ports);
	bool has_f0;
	set_functions(pc, plan, i, bus, slot, &has_f0);
	free(bus);
	if (!has_f0) {
		char a[QP_PCI_SLOT_LEN];
		qp_pci_slot_fmt(&d->host, a);
		qp_strv_push(&plan->warnings, qp_xasprintf("%s: function 0 is not passed, so the "
							   "guest sees its functions renumbered "
							   "from 0", a));
	}
	return 0;
}

int qp_plan_address(const struct qp_profile *p, struct qp_plan *plan, struct qp_err **err)
{
	struct slots s = { .file = p->file };
	reserve_chipset(p, plan, &s);
	if (reserve_fixed(p, plan, &s, err) < 0 || place_others(p, plan, &s, err) < 0)
		return -1;
	/* Every function of one host slot shares one guest slot. */
	size_t ports = 0;
	int *pxb_next = qp_xcalloc(plan->n_memory_nodes + 1, sizeof(int));
	if (plan->span) {
		/* An expander per guest node that has devices, on the root bus. */
		plan->pxb_slots = qp_xcalloc(plan->n_memory_nodes, sizeof(int));
		for (size_t g = 0; g < plan->n_memory_nodes; g++) {
			plan->pxb_slots[g] = -1;
			for (size_t i = 0; i < plan->n_devs && plan->pxb_slots[g] < 0; i++)
				if (plan->devs[i].guest_node == (int)g &&
				    take_slot(&s, &plan->pxb_slots[g], err) < 0) {
					free(pxb_next);
					return -1;
				}
		}
	}
	int rc = 0;
	for (size_t i = 0; i < plan->n_devs && rc == 0; i++)
		if (plan->devs[i].slot < 0)
			rc = place_host_slot(p, plan, i, &ports, &s, pxb_next, err);
	free(pxb_next);
	if (rc < 0)
		return -1;
	if (p->memballoon && take_slot(&s, &plan->balloon_slot, err) < 0)
		return -1;
	/* Device ids in host order, as libvirt numbers its hostdevs. */
	for (size_t i = 0; i < plan->n_devs; i++)
		plan->devs[i].id = qp_xasprintf("hostdev%zu", i);
	return 0;
}
