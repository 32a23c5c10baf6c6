/* The guest's 64-bit MMIO window, sized from the passed functions' BARs: what the
 * firmware must leave room for (OVMF's default aperture is 32 GiB, and a 24-80 GB GPU
 * has a 32-128 GiB BAR), and whether the guest's physical address bits reach it. Pure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/plan-int.h"

#define GIB (1ULL << 30)

static uint64_t pow2_at_least(uint64_t x)
{
	uint64_t p = 1;
	while (p < x && p < (1ULL << 62))
		p <<= 1;
	return p;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Only 64-bit prefetchable BARs go in the 64-bit window (a bridge's other windows are
 * 32-bit). Sizes, each a power of two, packed with each one aligned to itself: largest first
 * leaves no gaps, so the end is their sum; rounded up to the largest, as a bridge's
 * window is. */
static uint64_t packed(uint64_t *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_desc);
	uint64_t end = 0;
	for (size_t i = 0; i < n; i++)
		end += v[i];
	return (end + v[0] - 1) / v[0] * v[0];
}

/* Whether plan->devs[i] sits at the guest slot of plan->devs[j] (one window). */
static bool same_slot(const struct qp_plan_dev *a, const struct qp_plan_dev *b)
{
	return !strcmp(a->bus, b->bus) && a->slot == b->slot;
}

static uint64_t windows_need(const struct qp_host *h, const struct qp_plan *plan,
			     uint64_t *largest)
{
	uint64_t *slots = qp_xcalloc(plan->n_devs + 1, sizeof(*slots));
	size_t n_slots = 0;
	*largest = 0;
	for (size_t i = 0; i < plan->n_devs; i++) {
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = !same_slot(&plan->devs[i], &plan->devs[j]);
		if (!first)
			continue;
		uint64_t bars[6 * 8];
		size_t n = 0;
		for (size_t j = i; j < plan->n_devs; j++) {
			const struct qp_pci_dev *d = qp_host_dev(h, &plan->devs[j].host);
			for (unsigned b = 0; d && same_slot(&plan->devs[i], &plan->devs[j]) &&
					     b < d->n_bars && n < QP_ARRAY_SIZE(bars); b++) {
				if (d->bars[b].io || !d->bars[b].mem64 || !d->bars[b].prefetch)
					continue;
				bars[n++] = pow2_at_least(d->bars[b].size);
				if (bars[n - 1] > *largest)
					*largest = bars[n - 1];
			}
		}
		slots[n_slots] = packed(bars, n);
		n_slots += slots[n_slots] != 0;
	}
	uint64_t need = packed(slots, n_slots);
	free(slots);
	return need;
}

static unsigned bits_for(uint64_t top)
{
	unsigned b = 0;
	while (b < 64 && (b == 63 || (1ULL << b) < top))
		b++;
	return b;
}

int qp_plan_mmio(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *plan,
		 struct qp_err **err)
{
	uint64_t largest, need = windows_need(h, plan, &largest);
	plan->mmio64_need = need;
	if (!need)
		return 0;
	/* Room for the emulated devices' 64-bit BARs (virtio's are) beside the GPUs'. */
	plan->mmio64_window = pow2_at_least(need + GIB);
	/* The firmware puts the window above RAM, aligned to its size. */
	uint64_t ram_top = 4 * GIB + (p->memory_mib << 20);
	uint64_t base = (ram_top + plan->mmio64_window - 1) / plan->mmio64_window *
			plan->mmio64_window;
	plan->mmio64_bits = bits_for(base + plan->mmio64_window);
	if (h->phys_bits && plan->mmio64_bits > h->phys_bits) {
		qp_err_set(err, 0, "%s: the passed functions' 64-bit BARs need a %llu GiB MMIO "
			   "window, which above %llu MiB of RAM ends at %u physical address bits; "
			   "this host's CPU has %u", p->file,
			   (unsigned long long)(plan->mmio64_window / GIB),
			   (unsigned long long)p->memory_mib, plan->mmio64_bits, h->phys_bits);
		return qp_err_hint(err, "pass fewer or smaller devices, or lower \"memory\"");
	}
	const char *how = p->firmware == QP_FW_OVMF ? "opt/ovmf/X-PciMmio64Mb"
			  : p->machine == QP_MACHINE_PC ? "i440FX-pcihost.pci-hole64-size"
							: "q35-pcihost.pci-hole64-size";
	bool fits = qp_plan_mmio_default(p) >= plan->mmio64_window;
	note(plan, qp_xasprintf("64-bit MMIO: the passed functions' 64-bit BARs need %llu MiB "
				"(the largest %llu MiB, each aligned to its size): a %llu GiB "
				"window, %s %s%s; it ends at %u address bits",
				(unsigned long long)(need >> 20), (unsigned long long)(largest >> 20),
				(unsigned long long)(plan->mmio64_window / GIB),
				fits ? "which the default of" : "set with", how, fits ? " holds" : "",
				plan->mmio64_bits));
	return 0;
}

uint64_t qp_plan_mmio_default(const struct qp_profile *p)
{
	/* OVMF's PcdPciMmio64Size; QEMU's pci-hole64-size of q35 (32 GiB) and i440FX (2). */
	if (p->firmware == QP_FW_OVMF || p->machine != QP_MACHINE_PC)
		return 32 * GIB;
	return 2 * GIB;
}
