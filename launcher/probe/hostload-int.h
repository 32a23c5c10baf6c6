/* The parts of reading the host, for probe/hostload.c and hostsys.c only. Each fills its
 * part of the model, or fails naming the file. */
#ifndef QP_HOSTLOAD_INT_H
#define QP_HOSTLOAD_INT_H

#include "base/err.h"
#include "base/root.h"
#include "core/host.h"

/* A number as the kernel writes it in a name ("44", never "044" or "+4"), 0 to max. */
int qp_hostload_number(const char *s, long max, long *out);

int qp_hostload_nodes(const struct qp_root *r, struct qp_host *h, struct qp_err **err);
/* After the nodes: each CPU's node comes from the nodes' lists. */
int qp_hostload_cpus(const struct qp_root *r, struct qp_host *h, struct qp_err **err);
int qp_hostload_kernel(const struct qp_root *r, struct qp_host *h, struct qp_err **err);
int qp_hostload_dev(const struct qp_root *r, struct qp_host *h, struct qp_err **err);

#endif
