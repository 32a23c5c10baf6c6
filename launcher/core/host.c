#include "core/host.h"

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
}

void qp_host_free(struct qp_host *h)
{
	free(h->root);
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

const struct qp_pci_dev *qp_host_dev(const struct qp_host *h, const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < h->n_devs; i++)
		if (!qp_pci_addr_cmp(&h->devs[i].addr, a))
			return &h->devs[i];
	return NULL;
}

const struct qp_iommu_group *qp_host_group(const struct qp_host *h, int id)
{
	for (size_t i = 0; i < h->n_groups; i++)
		if (h->groups[i].id == id)
			return &h->groups[i];
	return NULL;
}

const struct qp_numa_node *qp_host_node(const struct qp_host *h, int id)
{
	for (size_t i = 0; i < h->n_nodes; i++)
		if (h->nodes[i].id == id)
			return &h->nodes[i];
	return NULL;
}

const struct qp_cpu *qp_host_cpu(const struct qp_host *h, int id)
{
	for (size_t i = 0; i < h->n_cpus; i++)
		if (h->cpus[i].id == id)
			return &h->cpus[i];
	return NULL;
}

bool qp_host_iommu_on(const struct qp_host *h)
{
	return h->n_groups > 0;
}

size_t qp_host_select(const struct qp_host *host, const struct qp_pci_addr *a,
		      bool all_functions, struct qp_pci_addr **out, size_t *n)
{
	size_t found = 0;
	for (size_t i = 0; i < host->n_devs; i++) {
		const struct qp_pci_dev *d = &host->devs[i];
		bool match = all_functions ? qp_pci_same_slot(&d->addr, a)
					   : !qp_pci_addr_cmp(&d->addr, a);
		if (!match || d->header_type == QP_HDR_BRIDGE)
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
