#include "core/ledger.h"

#include <stdlib.h>
#include <string.h>

#include "base/jsonout.h"
#include "base/util.h"

const struct qp_lease *qp_ledger_dev_holder(const struct qp_ledger *l,
					    const struct qp_pci_addr *a)
{
	for (size_t i = 0; l && i < l->n; i++)
		for (size_t j = 0; j < l->leases[i].n_devs; j++)
			if (!qp_pci_addr_cmp(&l->leases[i].devs[j], a))
				return &l->leases[i];
	return NULL;
}

const struct qp_lease *qp_ledger_cpu_holder(const struct qp_ledger *l, int cpu)
{
	for (size_t i = 0; l && i < l->n; i++) {
		const struct qp_lease *e = &l->leases[i];
		if (qp_cpulist_has(&e->vcpu_cpus, cpu) || qp_cpulist_has(&e->emulator_cpus, cpu))
			return e;
	}
	return NULL;
}

/* How many shares of e's memory are on node: 1 of 1 on its node, or 1 of n across n. */
static uint64_t shares_on(const struct qp_lease *e, int node, uint64_t *of)
{
	*of = e->nodes.n ? e->nodes.n : 1;
	return e->nodes.n ? qp_cpulist_has(&e->nodes, node) : e->node == node;
}

uint64_t qp_ledger_untouched_mib(const struct qp_ledger *l, int node)
{
	uint64_t sum = 0, of;
	for (size_t i = 0; l && i < l->n; i++) {
		const struct qp_lease *e = &l->leases[i];
		if (shares_on(e, node, &of) && !e->hugepages && e->memory_mib > e->resident_mib)
			sum += (e->memory_mib - e->resident_mib) / of;
	}
	return sum;
}

uint64_t qp_ledger_untouched_hugepages(const struct qp_ledger *l, int node, uint64_t size_kb)
{
	/* QEMU allocates its hugepages before it answers QMP (prealloc): a running VM has
	 * taken them all, and the node's free count says so. */
	uint64_t sum = 0;
	for (size_t i = 0; l && i < l->n; i++) {
		const struct qp_lease *e = &l->leases[i];
		uint64_t of;
		if (shares_on(e, node, &of) && e->hugepage_kb == size_kb && !e->running)
			sum += e->hugepages / of;
	}
	return sum;
}

/* --- as JSON ------------------------------------------------------------------------ */

static json_object *holder_json(const struct qp_holder *h)
{
	if (!h->pid)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "pid", json_object_new_int(h->pid));
	json_object_object_add(o, "start", json_object_new_int64((int64_t)h->start));
	return o;
}

json_object *qp_lease_json(const struct qp_lease *e)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "qpass", holder_json(&e->qpass));
	json_object_object_add(o, "qemu", holder_json(&e->qemu));
	json_object_object_add(o, "running", json_object_new_boolean(e->running));
	json_object_object_add(o, "devices", qp_json_pci_addrs(e->devs, e->n_devs));
	json_object_object_add(o, "vcpu_cpus", qp_json_cpus(&e->vcpu_cpus));
	json_object_object_add(o, "emulator_cpus", qp_json_cpus(&e->emulator_cpus));
	json_object_object_add(o, "share_cpus", json_object_new_boolean(e->share_cpus));
	json_object_object_add(o, "node", json_object_new_int(e->node));
	json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)e->memory_mib));
	if (e->nodes.n)
		json_object_object_add(o, "memory_nodes", qp_json_cpus(&e->nodes));
	if (e->hugepages) {
		json_object *hp = json_object_new_object();
		json_object_object_add(hp, "size_kb", json_object_new_int64((int64_t)e->hugepage_kb));
		json_object_object_add(hp, "count", json_object_new_int64((int64_t)e->hugepages));
		json_object_object_add(o, "hugepages", hp);
	}
	return o;
}

/* Reading one back: each member checked, the first wrong one named. */
struct reader {
	json_object *o;
	const char *file;
	struct qp_err **err;
};

static int bad(const struct reader *r, const char *key, const char *what)
{
	qp_err_set(r->err, 0, "%s: \"%s\" %s", r->file, key, what);
	return qp_err_hint(r->err, "the lease is qpass's own record; `qpass restore NAME` "
			   "clears a dead VM's");
}

static int get_int(const struct reader *r, json_object *o, const char *key, int64_t min,
		   int64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < min)
		return bad(r, key, "is missing or not a number");
	*out = json_object_get_int64(v);
	return 0;
}

static int get_bool(const struct reader *r, const char *key, bool *out)
{
	json_object *v;
	if (!json_object_object_get_ex(r->o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return bad(r, key, "is missing or not true/false");
	*out = json_object_get_boolean(v);
	return 0;
}

static int get_holder(const struct reader *r, const char *key, struct qp_holder *h)
{
	json_object *v;
	*h = (struct qp_holder){ 0 };
	if (!json_object_object_get_ex(r->o, key, &v))
		return bad(r, key, "is missing");
	if (!v)
		return 0;
	int64_t pid, start;
	if (!json_object_is_type(v, json_type_object) || get_int(r, v, "pid", 1, &pid) < 0 ||
	    get_int(r, v, "start", 0, &start) < 0 || pid > INT32_MAX)
		return bad(r, key, "is not {\"pid\": N, \"start\": TICKS}");
	*h = (struct qp_holder){ (int)pid, (uint64_t)start };
	return 0;
}

static int get_cpus(const struct reader *r, const char *key, struct qp_cpulist *out)
{
	json_object *a;
	if (!json_object_object_get_ex(r->o, key, &a) || !json_object_is_type(a, json_type_array))
		return bad(r, key, "is missing or not a list of CPUs");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *c = json_object_array_get_idx(a, i);
		if (!json_object_is_type(c, json_type_int) || json_object_get_int(c) < 0 ||
		    json_object_get_int(c) > QP_MAX_CPU)
			return bad(r, key, "holds something that is not a CPU number");
		qp_cpulist_add(out, json_object_get_int(c));
	}
	return 0;
}

static int get_devs(const struct reader *r, struct qp_lease *e)
{
	json_object *a;
	if (!json_object_object_get_ex(r->o, "devices", &a) ||
	    !json_object_is_type(a, json_type_array))
		return bad(r, "devices", "is missing or not a list");
	size_t n = json_object_array_length(a);
	e->devs = qp_xcalloc(n ? n : 1, sizeof(*e->devs));
	for (size_t i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, i));
		struct qp_err *pe = NULL;
		if (!s || qp_parse_pci_addr(s, &e->devs[i], &pe) < 0) {
			qp_err_free(pe);
			return bad(r, "devices", "holds something that is not a PCI address");
		}
		e->n_devs = i + 1;
	}
	return 0;
}

static int get_hugepages(const struct reader *r, struct qp_lease *e)
{
	json_object *hp;
	if (!json_object_object_get_ex(r->o, "hugepages", &hp))
		return 0;
	int64_t size, count;
	if (!json_object_is_type(hp, json_type_object) ||
	    get_int(r, hp, "size_kb", 1, &size) < 0 || get_int(r, hp, "count", 1, &count) < 0)
		return bad(r, "hugepages", "is not {\"size_kb\": N, \"count\": N}");
	e->hugepage_kb = (uint64_t)size;
	e->hugepages = (uint64_t)count;
	return 0;
}

int qp_lease_parse(json_object *o, const char *file, struct qp_lease *out, struct qp_err **err)
{
	struct reader r = { o, file, err };
	json_object *name;
	if (!json_object_is_type(o, json_type_object)) {
		qp_err_set(err, 0, "%s: a lease is a JSON object", file);
		return -1;
	}
	if (!json_object_object_get_ex(o, "name", &name) ||
	    !json_object_is_type(name, json_type_string))
		return bad(&r, "name", "is missing or not a string");
	struct qp_lease e = { .name = qp_xstrdup(json_object_get_string(name)) };
	int64_t node, mib;
	if (get_holder(&r, "qpass", &e.qpass) < 0 || get_holder(&r, "qemu", &e.qemu) < 0 ||
	    get_bool(&r, "running", &e.running) < 0 || get_devs(&r, &e) < 0 ||
	    get_cpus(&r, "vcpu_cpus", &e.vcpu_cpus) < 0 ||
	    get_cpus(&r, "emulator_cpus", &e.emulator_cpus) < 0 ||
	    get_bool(&r, "share_cpus", &e.share_cpus) < 0 ||
	    get_int(&r, o, "node", -1, &node) < 0 || get_int(&r, o, "memory_mib", 0, &mib) < 0 ||
	    get_hugepages(&r, &e) < 0 ||
	    (json_object_object_get_ex(o, "memory_nodes", NULL) &&
	     get_cpus(&r, "memory_nodes", &e.nodes) < 0)) {
		qp_lease_free(&e);
		return -1;
	}
	e.node = (int)node;
	e.memory_mib = (uint64_t)mib;
	*out = e;
	return 0;
}

void qp_lease_free(struct qp_lease *e)
{
	free(e->name);
	free(e->devs);
	qp_cpulist_free(&e->vcpu_cpus);
	qp_cpulist_free(&e->emulator_cpus);
	qp_cpulist_free(&e->nodes);
	memset(e, 0, sizeof(*e));
}

void qp_ledger_free(struct qp_ledger *l)
{
	for (size_t i = 0; i < l->n; i++)
		qp_lease_free(&l->leases[i]);
	free(l->leases);
	memset(l, 0, sizeof(*l));
}
