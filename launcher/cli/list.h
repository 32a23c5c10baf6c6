/* `qpass list`: the host's GPUs with every function of their slots, their IOMMU groups
 * and NUMA nodes, as text that fits 80 columns or as JSON (docs/list-json.md).
 * Pure: host model in, text or JSON out (the JSON written as it is made). */
#ifndef QP_LIST_H
#define QP_LIST_H

#include <stdbool.h>
#include <stdio.h>

#include "base/err.h"
#include "core/host.h"

struct qp_list_opts {
	bool all;  /* every device, not only GPUs and their groups */
};

/* The schema version of `list --json`; bumped only on incompatible changes. */
#define QP_LIST_JSON_VERSION 1

char *qp_list_text(const struct qp_host *h, const struct qp_list_opts *o);
/* Writes the JSON document to out as it is made (a host may have thousands of devices). */
int qp_list_json(FILE *out, const struct qp_host *h, const struct qp_list_opts *o,
		 struct qp_err **err);

#endif
