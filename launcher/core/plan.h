/* The planner: profile + host -> plan (which host functions at which guest slots,
 * which CPUs, which memory node) -> the exact QEMU argv. Pure: no syscalls; the same
 * inputs always give the same plan. */
#ifndef QP_PLAN_H
#define QP_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "core/host.h"
#include "core/ledger.h"
#include "profiles/profile.h"

/* File descriptors the launcher hands to QEMU, as the argv names them. */
#define QP_FD_QMP 3
#define QP_FD_TAP0 4

/* Where per-VM state lives (the OVMF variables copy). */
#define QP_STATE_DIR "/var/lib/qpass"

struct qp_plan_dev {
	struct qp_pci_addr host;
	char *id;            /* "hostdev0" */
	char *bus;           /* "pci.0"; on q35 the root port's id, "pci.1" */
	int port_slot;       /* q35: the root port's slot on pcie.0; else -1 */
	int slot, func;      /* on bus */
	bool multifunction;  /* function 0 of a guest slot that holds several */
	int iommu_group;
	int numa_node;
	const char *driver;  /* the host driver now (borrowed from the host) */
	const char *name;    /* borrowed from the host */
	int rombar;          /* -1: QEMU's default */
	const char *romfile; /* borrowed from the profile */
	bool picked;         /* picked from the host's free GPUs for "gpus" */
	int guest_node;      /* a VM across nodes: the guest node of its pxb; else -1 */
};

struct qp_plan_tap {
	int fd;
	const char *bridge;  /* borrowed from the profile */
};

struct qp_plan {
	const struct qp_profile *profile;  /* borrowed */
	struct qp_plan_dev *devs;
	size_t n_devs;
	int *groups;         /* the IOMMU groups the VM takes, sorted */
	size_t n_groups;
	int numa_node;       /* -1: the host has no NUMA nodes */
	int *vcpu_pins;      /* index: vCPU, value: host CPU */
	size_t n_vcpus;
	struct qp_cpulist emulator_cpus;
	int *memory_nodes;   /* index: guest node; value: the host node it is bound to */
	size_t n_memory_nodes;
	bool span;           /* across nodes: a guest node per memory node, GPUs on pxbs */
	int *pxb_slots;      /* span: index guest node; its expander's slot, -1: none */
	int sockets, cores;  /* the guest's CPU topology (threads: the profile's) */
	uint64_t mmio64_need;    /* bytes the passed functions' 64-bit BARs take, aligned */
	uint64_t mmio64_window;  /* the 64-bit MMIO window for them; 0: none needed */
	unsigned mmio64_bits;    /* the physical address bits its end needs */
	uint64_t memlock_bytes;  /* RAM + 1 GiB per VFIO device (libvirt's rule) */
	bool prealloc;           /* every page allocated before the guest runs */
	int prealloc_threads;
	struct qp_cpulist prealloc_cpus;  /* where they run: the VM's CPUs */
	bool thread_context;     /* QEMU has thread-context: they are created there */
	bool tcg;                /* the accelerator chosen */
	struct qp_plan_tap *taps;
	size_t n_taps;
	char *ovmf_vars;         /* the per-VM copy of the OVMF variables, or NULL */
	/* Slots on the guest's root bus (pci.0 or pcie.0) of the other devices; -1: none. */
	int video_slot, usb_slot, sata_slot, balloon_slot;
	int *net_slots, *disk_slots;
	char **argv;             /* NULL-terminated; argv[0] is the QEMU binary */
	size_t argc;
	char **warnings;         /* NULL-terminated, may be NULL */
	char **notes;            /* what the plan chose and why, NULL-terminated or NULL */
	bool picked;             /* GPUs were picked: `up` picks again when it starts */
};

/* Makes the plan. On failure *out is empty and *err says what is wrong and how to fix
 * it. The plan borrows from the profile and the host: free it first. */
int qp_plan_make(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *out,
		 struct qp_err **err);

/* The same beside the VMs that run (ledger, NULL: none): the GPUs of "gpus" picked from
 * the free ones, vCPUs and emulator threads only on cores no VM holds, explicit pins
 * that collide with a VM refused (unless both share their CPUs), memory and hugepages
 * checked against what the others reserved and have not touched yet. */
int qp_plan_make_with(const struct qp_profile *p, const struct qp_host *h,
		      const struct qp_ledger *ledger, struct qp_plan *out, struct qp_err **err);
void qp_plan_free(struct qp_plan *plan);

/* The lease of the plan's VM: its functions, CPUs, node, memory and hugepages; the
 * holders are left for the caller. Free it with qp_lease_free(). */
void qp_plan_lease(const struct qp_plan *plan, struct qp_lease *out);

/* What the planner reads of the host's PCI devices: the profile's passthrough entries,
 * as selectors for probe/hostload.h (with the members of their IOMMU groups). Caller
 * frees; *n may be 0. A profile with "gpus" needs the host's display devices too
 * (probe's QP_HOST_GPUS). */
struct qp_pci_sel *qp_plan_needs(const struct qp_profile *p, size_t *n);

/* VFIO hands out whole IOMMU groups: 0 when every member of the groups is in the VM
 * (vm), a bridge, or free of host drivers; else -1 with *err naming the others and how
 * to fix it ("FILE: VFIO takes whole IOMMU groups..."). The planner's rule, shared
 * with `qpass check`. */
int qp_plan_check_groups(const char *file, const struct qp_host *h, const int *groups,
			 size_t n_groups, const struct qp_pci_addr *vm, size_t n_vm,
			 struct qp_err **err);

/* Whether node nd holds mib MiB more, beside others_kb that VMs still starting have
 * reserved: in free memory; only once the kernel reclaims its caches (page cache,
 * reclaimable slab); or not at all. The one verdict of plan (which refuses the last)
 * and check (which fails it). */
enum qp_mem_fit { QP_MEM_FITS, QP_MEM_RECLAIM, QP_MEM_SHORT };
enum qp_mem_fit qp_plan_memory_fit(const struct qp_numa_node *nd, uint64_t mib,
				   uint64_t others_kb);

/* The warning when node nd has less free memory than the VM asks for (saying how much
 * the kernel can reclaim), or NULL. */
char *qp_plan_memory_note(const struct qp_numa_node *nd, uint64_t memory_mib);

/* The 64-bit MMIO window the firmware (OVMF) or QEMU's host bridge (SeaBIOS) gives
 * when not told: plans with a larger one say so in the argv. */
uint64_t qp_plan_mmio_default(const struct qp_profile *p);

/* "pci.0:06.0": where a device sits in the guest. Caller frees. */
char *qp_plan_guest_addr(const struct qp_plan_dev *d);

#endif
