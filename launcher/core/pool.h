/* The host's GPUs and cores as a pool that several VMs draw from: which GPUs a profile
 * that asks for "gpus" gets, and which cores are free, given what the running VMs hold
 * (core/ledger.h). Pure: the same host and ledger always give the same choice. */
#ifndef QP_POOL_H
#define QP_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "core/host.h"
#include "core/ledger.h"
#include "profiles/profile.h"

/* The GPUs picked for a profile's "gpus": whole devices (every function of each slot),
 * all on one node. */
struct qp_pool_pick {
	struct qp_pci_addr *slots;  /* function 0 of each, sorted */
	size_t n;
	int node;                   /* -1: the host has no NUMA nodes */
};

/* Picks p->gpus.count GPUs that match its vendor and model, from the ones that are
 * free: in no other VM's lease, in a viable IOMMU group (every other member a bridge or
 * free of host drivers), not the boot VGA on its driver, not open by a host process.
 * All on gpus.node, else on the node with the most free cores among those with enough
 * free GPUs (ties: the lowest). On failure *err says what is free now and who holds the
 * rest. */
int qp_pool_pick_gpus(const struct qp_profile *p, const struct qp_host *h,
		      const struct qp_ledger *l, struct qp_pool_pick *out, struct qp_err **err);
void qp_pool_pick_free(struct qp_pool_pick *pick);

/* Whether matching p's model needs the devices' names (a model that is not an id). */
bool qp_pool_needs_names(const struct qp_profile *p);

/* The lease that holds a thread of cpu's core (its vCPUs' or emulator's), or NULL:
 * a core's threads never go to two VMs. */
const struct qp_lease *qp_pool_core_holder(const struct qp_host *h, const struct qp_ledger *l,
					   int cpu);

/* The node's online cores of which no thread is held (node -1: the whole host). */
size_t qp_pool_free_cores(const struct qp_host *h, const struct qp_ledger *l, int node);

#endif
