/* The planner's own steps, shared by its files (plan.c: the devices and the whole
 * plan; place.c: node, CPUs, memory); for launcher/core/ only. */
#ifndef QP_PLAN_INT_H
#define QP_PLAN_INT_H

#include "base/err.h"
#include "core/host.h"
#include "core/ledger.h"
#include "core/plan.h"
#include "profiles/profile.h"

/* A warning or a note for the plan (taken). */
void qp_plan_warn(struct qp_plan *plan, char *msg);
void qp_plan_note(struct qp_plan *plan, char *msg);

/* The short names the planner's files use. */
static inline void warn(struct qp_plan *plan, char *msg)
{
	qp_plan_warn(plan, msg);
}

static inline void note(struct qp_plan *plan, char *msg)
{
	qp_plan_note(plan, msg);
}

/* a, formatted into buf, for messages. */
static inline const char *pci_name(const struct qp_pci_addr *a, char buf[QP_PCI_ADDR_LEN])
{
	qp_pci_addr_fmt(a, buf);
	return buf;
}

/* The node: the profile's, else the passthrough devices', else the first. */
int qp_plan_choose_node(const struct qp_profile *p, const struct qp_host *h,
			struct qp_plan *plan, struct qp_err **err);

/* vCPU pins and emulator CPUs, on cores no VM of the ledger holds. */
int qp_plan_place_cpus(const struct qp_profile *p, const struct qp_host *h,
		       const struct qp_ledger *l, struct qp_plan *plan, struct qp_err **err);

/* The memory node, and whether its free memory or hugepages suffice. */
int qp_plan_place_memory(const struct qp_profile *p, const struct qp_host *h,
			 const struct qp_ledger *l, struct qp_plan *plan, struct qp_err **err);

/* The guest's 64-bit MMIO window from the passed functions' BARs (core/mmio.c): sized,
 * noted, refused when it ends beyond the host's physical address bits. */
int qp_plan_mmio(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *plan,
		 struct qp_err **err);
#endif
