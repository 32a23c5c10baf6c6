/* `qpass list`: the host's GPUs with every function of their slots, their IOMMU groups
 * and NUMA nodes, as text that fits 80 columns or as JSON (docs/list-json.md).
 * Pure: host model in, text or JSON out. */
#ifndef QP_LIST_H
#define QP_LIST_H

#include <json-c/json.h>
#include <stdbool.h>

#include "core/host.h"

struct qp_list_opts {
	bool all;  /* every device, not only GPUs and their groups */
};

/* The schema version of `list --json`; bumped only on incompatible changes. */
#define QP_LIST_JSON_VERSION 1

char *qp_list_text(const struct qp_host *h, const struct qp_list_opts *o);
struct json_object *qp_list_json(const struct qp_host *h, const struct qp_list_opts *o);

#endif
