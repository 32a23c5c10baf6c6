#include "core/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* --- cores -------------------------------------------------------------------------- */

const struct qp_lease *qp_pool_core_holder(const struct qp_host *h, const struct qp_ledger *l,
					   int cpu)
{
	const struct qp_cpu *c = qp_host_cpu(h, cpu);
	if (!c || !c->siblings.n)
		return qp_ledger_cpu_holder(l, cpu);
	for (size_t s = 0; s < c->siblings.n; s++) {
		const struct qp_lease *e = qp_ledger_cpu_holder(l, c->siblings.cpu[s]);
		if (e)
			return e;
	}
	return NULL;
}

/* Whether c is the first online thread of its core on the node: cores are counted once. */
static bool first_of_core(const struct qp_host *h, const struct qp_cpu *c, int node)
{
	for (size_t s = 0; s < c->siblings.n && c->siblings.cpu[s] < c->id; s++) {
		const struct qp_cpu *t = qp_host_cpu(h, c->siblings.cpu[s]);
		if (t && t->online && (node < 0 || t->node == node))
			return false;
	}
	return true;
}

size_t qp_pool_free_cores(const struct qp_host *h, const struct qp_ledger *l, int node)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n_cpus; i++) {
		const struct qp_cpu *c = &h->cpus[i];
		if (c->online && (node < 0 || c->node == node) && first_of_core(h, c, node) &&
		    !qp_pool_core_holder(h, l, c->id))
			n++;
	}
	return n;
}

/* --- GPUs --------------------------------------------------------------------------- */

/* A GPU of the host that matches the request, and why it cannot be had (NULL: free). */
struct cand {
	const struct qp_pci_dev *gpu;  /* its display function */
	int node;
	char *why;
};

static bool matches(const struct qp_gpu_request *r, const struct qp_pci_dev *d)
{
	if (r->vendor >= 0 && d->vendor != r->vendor)
		return false;
	if (!r->model)
		return true;
	if (r->device >= 0)
		return d->device == r->device;
	return d->name && strcasestr(d->name, r->model);
}

static bool vfio_ready(const struct qp_pci_dev *d)
{
	return !d->driver || !strcmp(d->driver, "vfio-pci") || !strcmp(d->driver, "pci-stub");
}

/* Why the other members of d's IOMMU group keep the slot from a VM, or NULL. */
static char *why_group(const struct qp_host *h, const struct qp_ledger *l,
		       const struct qp_pci_dev *d)
{
	if (d->iommu_group < 0)
		return qp_xstrdup("in no IOMMU group");
	const struct qp_iommu_group *g = qp_host_group(h, d->iommu_group);
	for (size_t m = 0; g && m < g->n_members; m++) {
		const struct qp_pci_dev *o = qp_host_dev(h, &g->members[m]);
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&g->members[m], a);
		if (!o || qp_pci_same_slot(&o->addr, &d->addr) || o->header_type == QP_HDR_BRIDGE)
			continue;
		const struct qp_lease *e = qp_ledger_dev_holder(l, &o->addr);
		if (e)
			return qp_xasprintf("its IOMMU group %d is the VM %s's (%s)", g->id, e->name, a);
		if (!vfio_ready(o))
			return qp_xasprintf("its IOMMU group %d also holds %s (driver %s)", g->id, a,
					    o->driver);
	}
	return NULL;
}

/* Why the GPU at d's slot cannot be had, or NULL: the first reason of any function. */
static char *why_taken(const struct qp_host *h, const struct qp_ledger *l,
		       const struct qp_pci_dev *gpu)
{
	for (size_t j = qp_host_lower(h, &(struct qp_pci_addr){ gpu->addr.domain, gpu->addr.bus,
								gpu->addr.slot, 0 });
	     j < h->n_devs && qp_pci_same_slot(&h->devs[j].addr, &gpu->addr); j++) {
		const struct qp_pci_dev *d = &h->devs[j];
		const struct qp_lease *e = qp_ledger_dev_holder(l, &d->addr);
		if (e && e->orphan)
			return qp_xasprintf("the VM %s has it (its qpass is gone, its QEMU pid %d "
					    "runs on)", e->name, e->qemu.pid);
		if (e)
			return qp_xasprintf("the VM %s has it", e->name);
		if (d->boot_vga && !vfio_ready(d))
			return qp_xasprintf("the host's boot VGA, on %s", d->driver);
		if (d->holders)
			return qp_xasprintf("open by %s", d->holders);
		char *g = why_group(h, l, d);
		if (g)
			return g;
	}
	return NULL;
}

static int node_of(const struct qp_host *h, const struct qp_pci_dev *d)
{
	/* A GPU the firmware gives no node goes where the planner would put it. */
	if (d->numa_node >= 0 || !h->n_nodes)
		return d->numa_node >= 0 ? d->numa_node : -1;
	return h->nodes[0].id;
}

/* Every matching GPU, one a slot, in address order. */
static struct cand *candidates(const struct qp_profile *p, const struct qp_host *h,
			       const struct qp_ledger *l, size_t *n)
{
	struct cand *c = qp_xcalloc(h->n_devs ? h->n_devs : 1, sizeof(*c));
	*n = 0;
	for (size_t i = 0; i < h->n_devs; i++) {
		const struct qp_pci_dev *d = &h->devs[i];
		if (!qp_pci_is_display(d) || !matches(&p->gpus, d) ||
		    (*n && qp_pci_same_slot(&c[*n - 1].gpu->addr, &d->addr)))
			continue;
		c[*n] = (struct cand){ d, node_of(h, d), why_taken(h, l, d) };
		(*n)++;
	}
	return c;
}

static void free_candidates(struct cand *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].why);
	free(c);
}

/* "0000:04:00.0  node 0  GeForce RTX 2080 Ti: free", a line each. */
static char *listing(const struct cand *c, size_t n)
{
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "");
	for (size_t i = 0; i < n; i++) {
		char a[QP_PCI_SLOT_LEN], ids[16];
		qp_pci_slot_fmt(&c[i].gpu->addr, a);
		snprintf(ids, sizeof(ids), "[%04x:%04x]", c[i].gpu->vendor, c[i].gpu->device);
		const char *name = c[i].gpu->device_name ? c[i].gpu->device_name : ids;
		if (c[i].node >= 0)
			qp_buf_addf(&b, "\n  %s  node %d  %s: %s", a, c[i].node, name,
				    c[i].why ? c[i].why : "free");
		else
			qp_buf_addf(&b, "\n  %s  %s: %s", a, name, c[i].why ? c[i].why : "free");
	}
	return qp_buf_steal(&b);
}

static char *what(const struct qp_gpu_request *r)
{
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "");
	if (r->vendor >= 0)
		qp_buf_addf(&b, " of vendor %04x", (unsigned)r->vendor);
	if (r->model)
		qp_buf_addf(&b, "%s model \"%s\"", r->vendor >= 0 ? " and" : " of", r->model);
	return qp_buf_steal(&b);
}

static size_t free_on(const struct cand *c, size_t n, int node)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += !c[i].why && c[i].node == node;
	return k;
}

/* The node with the most free cores of those with enough free GPUs (ties: the first,
 * the lowest); -2 when none will do. */
static int choose(const struct qp_host *h, const struct qp_ledger *l, const struct cand *c,
		  size_t n, int want)
{
	int best = -2;
	size_t best_cores = 0;
	size_t count = (size_t)want;
	for (size_t i = 0; i < (h->n_nodes ? h->n_nodes : 1); i++) {
		int node = h->n_nodes ? h->nodes[i].id : -1;
		if (free_on(c, n, node) < count)
			continue;
		size_t cores = qp_pool_free_cores(h, l, node);
		if (best == -2 || cores > best_cores) {
			best = node;
			best_cores = cores;
		}
	}
	return best;
}

static int cmp_slot(const void *a, const void *b)
{
	return qp_pci_addr_cmp(a, b);
}

/* "numa": "span" and no node has enough: the free GPUs of the nodes with the most
 * (ties: the lowest), as few nodes as will do; -1 when all of them are too few. */
static int span_pick(const struct qp_profile *p, const struct qp_host *h, const struct cand *c,
		     size_t n, struct qp_pool_pick *out)
{
	size_t want = (size_t)p->gpus.count, have = 0;
	bool *used = qp_xcalloc(h->n_nodes, sizeof(bool));
	out->slots = qp_xcalloc(want, sizeof(*out->slots));
	out->node = -1;
	while (have < want) {
		size_t best = h->n_nodes, best_free = 0;
		for (size_t i = 0; i < h->n_nodes; i++) {
			size_t k = free_on(c, n, h->nodes[i].id);
			if (!used[i] && k > best_free) {
				best = i;
				best_free = k;
			}
		}
		if (best == h->n_nodes)
			break;
		used[best] = true;
		for (size_t i = 0; i < n && have < want; i++) {
			if (c[i].why || c[i].node != h->nodes[best].id)
				continue;
			out->slots[have] = c[i].gpu->addr;
			out->slots[have++].func = 0;
		}
	}
	free(used);
	out->n = have;
	qsort(out->slots, out->n, sizeof(*out->slots), cmp_slot);
	if (have < want) {
		qp_pool_pick_free(out);
		return -1;
	}
	return 0;
}

static int fail(const struct qp_profile *p, const struct cand *c, size_t n, size_t total,
		struct qp_err **err)
{
	qp_autofree char *w = what(&p->gpus);
	qp_autofree char *list = listing(c, n);
	int count = p->gpus.count;
	if (!total) {
		qp_err_set(err, 0, "%s: gpus: no GPU%s on this host", p->file, w);
		return qp_err_hint(err, "`qpass list` shows the host's GPUs; change \"vendor\" or "
				   "\"model\", or leave them out");
	}
	if ((size_t)count > total) {
		qp_err_set(err, 0, "%s: gpus: %d GPUs%s are asked for, and this host has %zu:%s",
			   p->file, count, w, total, list);
		return qp_err_hint(err, "ask for %zu at most", total);
	}
	if (p->gpus.node >= 0)
		qp_err_set(err, 0, "%s: gpus: node %d has %zu free GPU%s%s, and %d %s asked for; "
			   "now:%s", p->file, p->gpus.node, free_on(c, n, p->gpus.node),
			   free_on(c, n, p->gpus.node) == 1 ? "" : "s", w, count,
			   count == 1 ? "is" : "are", list);
	else
		qp_err_set(err, 0, "%s: gpus: no NUMA node has %d free GPU%s%s; now:%s", p->file,
			   count, count == 1 ? "" : "s", w, list);
	return qp_err_hint(err, "stop a VM that has some (`qpass status` lists them), free "
			   "the others, or ask for fewer");
}

int qp_pool_pick_gpus(const struct qp_profile *p, const struct qp_host *h,
		      const struct qp_ledger *l, struct qp_pool_pick *out, struct qp_err **err)
{
	memset(out, 0, sizeof(*out));
	if (p->gpus.node >= 0 && !qp_host_node(h, p->gpus.node)) {
		struct qp_buf b = { 0 };
		for (size_t i = 0; i < h->n_nodes; i++)
			qp_buf_addf(&b, "%s%d", i ? ", " : "", h->nodes[i].id);
		qp_autofree char *nodes = qp_buf_steal(&b);
		return qp_err_set(err, 0, "%s: gpus.node: this host has no node %d (its nodes: %s)",
				  p->file, p->gpus.node, nodes ? nodes : "none");
	}
	size_t n;
	struct cand *c = candidates(p, h, l, &n);
	int node = p->gpus.node >= 0 ? p->gpus.node : choose(h, l, c, n, p->gpus.count);
	int rc = 0;
	if (node == -2 && p->numa == QP_NUMA_SPAN && h->n_nodes) {
		rc = span_pick(p, h, c, n, out);
		if (rc < 0)
			rc = fail(p, c, n, n, err);
	} else if (node == -2 || free_on(c, n, node) < (size_t)p->gpus.count) {
		rc = fail(p, c, n, n, err);
	} else {
		out->slots = qp_xcalloc((size_t)p->gpus.count, sizeof(*out->slots));
		out->node = node;
		for (size_t i = 0; i < n && out->n < (size_t)p->gpus.count; i++) {
			if (c[i].why || c[i].node != node)
				continue;
			out->slots[out->n] = c[i].gpu->addr;
			out->slots[out->n++].func = 0;
		}
	}
	free_candidates(c, n);
	return rc;
}

void qp_pool_pick_free(struct qp_pool_pick *pick)
{
	free(pick->slots);
	memset(pick, 0, sizeof(*pick));
}

bool qp_pool_needs_names(const struct qp_profile *p)
{
	return p->gpus.count && p->gpus.model && p->gpus.device < 0;
}
