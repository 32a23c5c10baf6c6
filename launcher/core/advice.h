/* What to tell a user about the state of the host, and how to fix it. Pure: the text
 * is made from the host model, so `list` and `check` say the same thing. */
#ifndef QP_ADVICE_H
#define QP_ADVICE_H

#include "core/host.h"

/* The kernel parameter that turns the IOMMU on for this host's CPU:
 * "intel_iommu=on", "amd_iommu=on", or both when the vendor is unknown. */
const char *qp_advice_iommu_param(const struct qp_host *h);

/* Paragraphs, one a line, saying the IOMMU is off and how to turn it on, fitted to this host
 * (CPU vendor, what the kernel command line already has). Caller frees. */
char *qp_advice_iommu_off(const struct qp_host *h);

#endif
