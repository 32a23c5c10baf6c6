/* The guest's PCI layout: which device sits at which slot of the guest's root bus
 * (pci.0 on pc, pcie.0 on q35, where each passed device gets a root port). Every
 * function of one host slot shares one guest slot, function 0 first. Pure. */
#ifndef QP_SLOTS_H
#define QP_SLOTS_H

#include "base/err.h"
#include "core/plan.h"
#include "profiles/profile.h"

/* Fills the plan's slots (video, usb, sata, balloon, nets, disks) and each passed
 * function's bus, slot, function and id. */
int qp_plan_address(const struct qp_profile *p, struct qp_plan *plan, struct qp_err **err);

#endif
