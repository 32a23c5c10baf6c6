#include "core/host.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static const char *const module_names[QP_MOD_COUNT] = {
	[QP_MOD_KVM] = "kvm",
	[QP_MOD_KVM_INTEL] = "kvm_intel",
	[QP_MOD_KVM_AMD] = "kvm_amd",
	[QP_MOD_VFIO] = "vfio",
	[QP_MOD_VFIO_PCI] = "vfio_pci",
	[QP_MOD_VFIO_IOMMU_TYPE1] = "vfio_iommu_type1",
};

const char *qp_module_name(enum qp_module m)
{
	return m < QP_MOD_COUNT ? module_names[m] : "?";
}

const char *qp_module_state_name(enum qp_module_state s)
{
	switch (s) {
	case QP_MOD_LOADED:
		return "loaded";
	case QP_MOD_BUILTIN:
		return "builtin";
	case QP_MOD_ABSENT:
		return "absent";
	default:
		return "?";
	}
}

const char *qp_header_type_name(enum qp_header_type t)
{
	switch (t) {
	case QP_HDR_ENDPOINT:
		return "endpoint";
	case QP_HDR_BRIDGE:
		return "bridge";
	case QP_HDR_CARDBUS:
		return "cardbus";
	default:
		return "?";
	}
}

static void free_pci_dev(struct qp_pci_dev *d)
{
	free(d->sysfs_path);
	free(d->name);
	free(d->vendor_name);
	free(d->device_name);
	free(d->class_name);
	free(d->driver);
	free(d->driver_override);
	qp_cpulist_free(&d->local_cpus);
	qp_strv_free(d->reset_methods);
	free(d->power_state);
	free(d->holders);
}

void qp_host_free(struct qp_host *h)
{
	free(h->root);
	free(h->qemu_version);
	for (size_t i = 0; i < h->n_devs; i++)
		free_pci_dev(&h->devs[i]);
	free(h->devs);
	for (size_t i = 0; i < h->n_groups; i++) {
		free(h->groups[i].type);
		free(h->groups[i].members);
	}
	free(h->groups);
	for (size_t i = 0; i < h->n_nodes; i++) {
		qp_cpulist_free(&h->nodes[i].cpus);
		free(h->nodes[i].hugepages);
		free(h->nodes[i].distance);
	}
	free(h->nodes);
	for (size_t i = 0; i < h->n_cpus; i++)
		qp_cpulist_free(&h->cpus[i].siblings);
	free(h->cpus);
	free(h->cmdline);
	free(h->cpu_vendor);
	free(h->vfio_groups);
	qp_strv_free(h->warnings);
	memset(h, 0, sizeof(*h));
}

static int dev_key(const void *key, const void *elem)
{
	return qp_pci_addr_cmp(key, &((const struct qp_pci_dev *)elem)->addr);
}

const struct qp_pci_dev *qp_host_dev(const struct qp_host *h, const struct qp_pci_addr *a)
{
	if (!h->n_devs)
		return NULL;
	return bsearch(a, h->devs, h->n_devs, sizeof(*h->devs), dev_key);
}

/* The element with that int id of an array sorted by it: groups, nodes and CPUs have
 * their id first. */
_Static_assert(offsetof(struct qp_iommu_group, id) == 0, "the group's id first");
_Static_assert(offsetof(struct qp_numa_node, id) == 0, "the node's id first");
_Static_assert(offsetof(struct qp_cpu, id) == 0, "the CPU's id first");

static const void *find_id(const void *base, size_t n, size_t size, int id)
{
	const char *lo = base;
	while (n) {
		const char *mid = lo + n / 2 * size;
		int x = *(const int *)mid;
		if (x == id)
			return mid;
		if (x < id) {
			lo = mid + size;
			n -= n / 2 + 1;
		} else {
			n /= 2;
		}
	}
	return NULL;
}

const struct qp_iommu_group *qp_host_group(const struct qp_host *h, int id)
{
	return find_id(h->groups, h->n_groups, sizeof(*h->groups), id);
}

const struct qp_numa_node *qp_host_node(const struct qp_host *h, int id)
{
	return find_id(h->nodes, h->n_nodes, sizeof(*h->nodes), id);
}

const struct qp_cpu *qp_host_cpu(const struct qp_host *h, int id)
{
	return find_id(h->cpus, h->n_cpus, sizeof(*h->cpus), id);
}

bool qp_host_iommu_on(const struct qp_host *h)
{
	return h->n_iommu_groups > 0;
}

size_t qp_host_lower(const struct qp_host *h, const struct qp_pci_addr *a)
{
	size_t lo = 0, hi = h->n_devs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (qp_pci_addr_cmp(&h->devs[mid].addr, a) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t qp_host_select(const struct qp_host *host, const struct qp_pci_addr *a,
		      bool all_functions, struct qp_pci_addr **out, size_t *n)
{
	/* A slot's functions are next to each other, from function 0 up. */
	struct qp_pci_addr first = *a;
	if (all_functions)
		first.func = 0;
	size_t found = 0;
	for (size_t i = qp_host_lower(host, &first); i < host->n_devs; i++) {
		const struct qp_pci_dev *d = &host->devs[i];
		bool match = all_functions ? qp_pci_same_slot(&d->addr, a)
					   : !qp_pci_addr_cmp(&d->addr, a);
		if (!match)
			break;
		if (d->header_type == QP_HDR_BRIDGE)
			continue;
		*out = qp_xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = d->addr;
		found++;
	}
	return found;
}

const struct qp_hugepages *qp_node_hugepages(const struct qp_numa_node *nd, uint64_t size_kb)
{
	for (size_t i = 0; i < nd->n_hugepages; i++)
		if (nd->hugepages[i].size_kb == size_kb)
			return &nd->hugepages[i];
	return NULL;
}
