/* The host model: what qpass knows of the machine, read once per command from sysfs,
 * procfs and /dev under the system root, then used as pure data.
 *
 * probe/hostload.h's qp_host_load() is the only function that fills it; everything after
 * it (list, plan, check) works on this snapshot and can be tested on fixture trees.
 * The lookups here are pure. */
#ifndef QP_HOST_H
#define QP_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "base/pciaddr.h"
#include "base/sysparse.h"

enum qp_header_type {
	QP_HDR_ENDPOINT = 0,
	QP_HDR_BRIDGE = 1,
	QP_HDR_CARDBUS = 2,
};

struct qp_pci_dev {
	struct qp_pci_addr addr;
	char *sysfs_path;        /* resolved, relative to the root: "sys/devices/pci0000:00/..." */
	bool has_parent;         /* the upstream bridge, when the device sits behind one */
	struct qp_pci_addr parent;
	uint16_t vendor, device;
	uint16_t subvendor, subdevice;
	uint32_t class;          /* base << 16 | sub << 8 | prog-if */
	uint8_t revision;
	enum qp_header_type header_type;
	bool multifunction;      /* the header's multi-function bit */
	char *name;              /* "NVIDIA Corporation TU102 [GeForce RTX 2080 Ti]", as lspci */
	char *vendor_name;       /* NULL when pci.ids does not know it */
	char *device_name;       /* NULL when pci.ids does not know it */
	char *class_name;        /* "VGA compatible controller", or "Class 0c80" */
	char *driver;            /* bound driver, NULL when none */
	char *driver_override;   /* NULL when unset ("(null)") or unsupported */
	int iommu_group;         /* -1 when none (IOMMU off) */
	int numa_node;           /* -1 when unknown */
	struct qp_cpulist local_cpus;
	bool boot_vga;
	char **reset_methods;    /* NULL when the kernel has no reset_method file; else a
	                          * NULL-terminated list, empty when no reset works */
	char *power_state;       /* "D0", "D3cold"... NULL when the kernel does not say */
	char *holders;           /* host processes that have it open, "1234 (Xorg)"; read
	                          * for display devices when GPUs are picked, else NULL */
	struct qp_bar bars[6];   /* its BARs with a size, from sysfs `resource` */
	unsigned n_bars;
};

struct qp_iommu_group {
	int id;
	char *type;                  /* "DMA", "DMA-FQ", "identity"...; NULL when unknown */
	struct qp_pci_addr *members; /* sorted */
	size_t n_members;
};

struct qp_hugepages {
	uint64_t size_kb;
	uint64_t total, free;
};

struct qp_numa_node {
	int id;
	struct qp_cpulist cpus;
	uint64_t mem_total_kb, mem_free_kb;
	uint64_t mem_reclaim_kb;         /* page cache and reclaimable slab */
	struct qp_hugepages *hugepages;  /* sorted by size */
	size_t n_hugepages;
	int *distance;                   /* to every node of the host, in host order */
	size_t n_distance;
};

struct qp_cpu {
	int id;
	bool online;
	int package;    /* physical_package_id; -1 unless the host is complete */
	int core;       /* core_id, unique only within its package; -1 likewise */
	int node;       /* -1 when the host has no NUMA information */
	struct qp_cpulist siblings;  /* SMT threads of this core, itself included */
};

enum qp_module_state {
	QP_MOD_ABSENT = 0,
	QP_MOD_LOADED,   /* a loaded module */
	QP_MOD_BUILTIN,  /* built into the kernel */
};

/* The kernel modules qpass cares about, in this order. */
enum qp_module {
	QP_MOD_KVM,
	QP_MOD_KVM_INTEL,
	QP_MOD_KVM_AMD,
	QP_MOD_VFIO,
	QP_MOD_VFIO_PCI,
	QP_MOD_VFIO_IOMMU_TYPE1,
	QP_MOD_COUNT,
};

/* What the model holds of the PCI devices: all of them (`list`), or only those a command
 * asked for and every member of their IOMMU groups (plan, up, check, bind): then devs
 * and groups hold those, and the rest of the host is not read. */
struct qp_host {
	char *root;              /* the system root it was read from */
	bool complete;           /* every PCI device and IOMMU group was read */
	struct qp_pci_dev *devs; /* sorted by address */
	size_t n_devs;
	struct qp_iommu_group *groups;  /* sorted by id: the groups of devs */
	size_t n_groups;
	size_t n_iommu_groups;          /* how many the kernel made: all of them */
	struct qp_numa_node *nodes;     /* sorted by id; empty without NUMA support */
	size_t n_nodes;
	struct qp_cpu *cpus;            /* sorted by id, the present CPUs */
	size_t n_cpus;
	char *cmdline;                  /* /proc/cmdline without its newline */
	char *cpu_vendor;               /* "GenuineIntel", "AuthenticAMD"; NULL if unknown */
	bool cpu_vmx, cpu_svm;          /* hardware virtualization flags in /proc/cpuinfo */
	unsigned phys_bits;             /* its "address sizes ... bits physical"; 0 unknown */
	enum qp_module_state modules[QP_MOD_COUNT];
	bool dev_kvm;                   /* /dev/kvm exists */
	bool dev_vfio;                  /* /dev/vfio/vfio exists */
	int *vfio_groups;               /* the /dev/vfio/N nodes, sorted */
	size_t n_vfio_groups;
	char **warnings;                /* things worth saying that are not errors */
	char *qemu_version;             /* the profile's QEMU ("7.2.22") where the plan
					 * needs it (prealloc), else NULL: unknown */
};

void qp_host_free(struct qp_host *host);

const struct qp_pci_dev *qp_host_dev(const struct qp_host *host, const struct qp_pci_addr *a);
const struct qp_iommu_group *qp_host_group(const struct qp_host *host, int id);
const struct qp_numa_node *qp_host_node(const struct qp_host *host, int id);
const struct qp_cpu *qp_host_cpu(const struct qp_host *host, int id);

/* A selector: one function ("04:00.1"), or every function of a slot ("04:00"). */
struct qp_pci_sel {
	struct qp_pci_addr addr;
	bool slot;
};

/* The index of the first device at or after address a (n_devs when none is). */
size_t qp_host_lower(const struct qp_host *host, const struct qp_pci_addr *a);

/* The functions a selector names: every function of the device at a ("04:00"), or
 * the function a ("04:00.1"); never a bridge, which is never passed through. Appends
 * them to *out (*n of them); returns how many it found. */
size_t qp_host_select(const struct qp_host *host, const struct qp_pci_addr *a,
		      bool all_functions, struct qp_pci_addr **out, size_t *n);

/* Node nd's hugepages of size_kb, or NULL when it has none of that size. */
const struct qp_hugepages *qp_node_hugepages(const struct qp_numa_node *nd, uint64_t size_kb);

/* Whether the IOMMU is on: the kernel made IOMMU groups. The lookups by address or id
 * are binary searches. */
bool qp_host_iommu_on(const struct qp_host *host);

const char *qp_module_name(enum qp_module m);
const char *qp_module_state_name(enum qp_module_state s);
const char *qp_header_type_name(enum qp_header_type t);

/* Display controllers: PCI base class 0x03. */
static inline bool qp_pci_is_display(const struct qp_pci_dev *d)
{
	return (d->class >> 16) == 0x03;
}

#endif
