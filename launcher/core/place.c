/* The placement of a plan: its NUMA node, the CPUs of its vCPUs and of QEMU's other
 * threads, its memory; beside the VMs that run (core/ledger.h). Pure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/plan-int.h"
#include "core/pool.h"

/* --- NUMA: node, CPUs, memory --------------------------------------------------- */

/* "numa": "span": a guest node per host node of the devices (in host order), each
 * device on the guest node of its own; the first is the VM's node (QEMU's threads). */
static int span_nodes(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *plan,
		      struct qp_err **err)
{
	if (!h->n_nodes)
		return qp_err_set(err, 0, "%s: numa: \"span\" needs a host with NUMA nodes",
				  p->file);
	bool *used = qp_xcalloc(h->n_nodes, sizeof(bool));
	for (size_t i = 0; i < plan->n_devs; i++) {
		int n = plan->devs[i].numa_node;
		for (size_t k = 0; k < h->n_nodes; k++)
			used[k] = used[k] || h->nodes[k].id == n || (n < 0 && k == 0);
	}
	plan->memory_nodes = qp_xcalloc(h->n_nodes, sizeof(int));
	for (size_t k = 0; k < h->n_nodes; k++)
		if (used[k] || (!plan->n_devs && k == 0))
			plan->memory_nodes[plan->n_memory_nodes++] = h->nodes[k].id;
	free(used);
	size_t k = plan->n_memory_nodes;
	plan->numa_node = plan->memory_nodes[0];
	if (k == 1) {
		note(plan, qp_xasprintf("numa: span: the devices are all on node %d, so the guest "
					"has one node", plan->numa_node));
		return 0;
	}
	if (p->vcpus % (int)k || p->memory_mib % k ||
	    (p->hugepage_kb && (p->memory_mib / k * 1024) % p->hugepage_kb)) {
		qp_err_set(err, 0, "%s: numa: span: the devices are on %zu nodes, and %d vCPUs and "
			   "%llu MiB do not split into %zu equal guest nodes%s", p->file, k,
			   p->vcpus, (unsigned long long)p->memory_mib, k,
			   p->hugepage_kb ? " of whole hugepages" : "");
		return qp_err_hint(err, "make \"vcpus\" and \"memory\" multiples of %zu", k);
	}
	plan->span = true;
	for (size_t i = 0; i < plan->n_devs; i++)
		for (size_t g = 0; g < k; g++)
			if (plan->memory_nodes[g] == plan->devs[i].numa_node ||
			    (plan->devs[i].numa_node < 0 && g == 0))
				plan->devs[i].guest_node = (int)g;
	return 0;
}

int qp_plan_choose_node(const struct qp_profile *p, const struct qp_host *h,
		       struct qp_plan *plan, struct qp_err **err)
{
	plan->numa_node = -1;
	if (p->numa == QP_NUMA_SPAN)
		return span_nodes(p, h, plan, err);
	if (!h->n_nodes) {
		if (p->numa >= 0)
			return qp_err_set(err, 0, "%s: numa: node %d was asked for, but this host "
					  "has no NUMA nodes", p->file, p->numa);
		return 0;
	}
	if (p->numa >= 0) {
		if (!qp_host_node(h, p->numa)) {
			struct qp_buf b = { 0 };
			for (size_t i = 0; i < h->n_nodes; i++)
				qp_buf_addf(&b, "%s%d", i ? ", " : "", h->nodes[i].id);
			qp_autofree char *nodes = qp_buf_steal(&b);
			return qp_err_set(err, 0, "%s: numa: this host has no node %d (its nodes: %s)",
					  p->file, p->numa, nodes);
		}
		plan->numa_node = p->numa;
		for (size_t i = 0; i < plan->n_devs; i++) {
			int n = plan->devs[i].numa_node;
			char a[QP_PCI_ADDR_LEN];
			if (n >= 0 && n != p->numa)
				warn(plan, qp_xasprintf("%s is on NUMA node %d, the VM on node %d: its "
							"DMA crosses nodes", pci_name(&plan->devs[i].host, a),
							n, p->numa));
		}
		return 0;
	}
	/* auto: the node of the passthrough devices. */
	int node = -1;
	bool unknown = false;
	for (size_t i = 0; i < plan->n_devs; i++) {
		int n = plan->devs[i].numa_node;
		if (n < 0) {
			unknown = true;
			continue;
		}
		if (node >= 0 && n != node) {
			struct qp_buf b = { 0 };
			for (size_t j = 0; j < plan->n_devs; j++) {
				char a[QP_PCI_ADDR_LEN];
				qp_buf_addf(&b, "\n  %s  node %d", pci_name(&plan->devs[j].host, a),
					    plan->devs[j].numa_node);
			}
			qp_autofree char *list = qp_buf_steal(&b);
			qp_err_set(err, 0, "%s: the passthrough devices are on NUMA nodes %d and %d, "
				   "so no node is local to all of them:%s", p->file, node, n, list);
			return qp_err_hint(err, "pass devices of one node per VM (as the seed does), "
					   "choose the node with \"numa\": %d or \"numa\": %d, or "
					   "let the VM span them with \"numa\": \"span\"", node, n);
		}
		node = n;
	}
	if (node < 0) {
		node = h->nodes[0].id;
		if (unknown)
			warn(plan, qp_xasprintf("the firmware gives no NUMA node for the passthrough "
						"devices; the VM goes on node %d%s", node,
						h->n_nodes == 1 ? ", the host's only node" : ""));
	}
	plan->numa_node = node;
	return 0;
}

/* The CPUs the VM may use: the node's online CPUs, or every online CPU without NUMA. */
static void node_cpus(const struct qp_host *h, int node, struct qp_cpulist *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < h->n_cpus; i++)
		if (h->cpus[i].online && (node < 0 || h->cpus[i].node == node))
			qp_cpulist_add(out, h->cpus[i].id);
}

static char *where(int node)
{
	return node < 0 ? qp_xstrdup("this host") : qp_xasprintf("NUMA node %d", node);
}

/* vCPUs first..first+count-1 on the cores of cpus (node's, or -1). */
static int auto_pins(const struct qp_profile *p, const struct qp_host *h, struct qp_plan *plan,
		     int node, const struct qp_cpulist *cpus, bool others, size_t first,
		     size_t count, struct qp_err **err)
{
	/* Cores in the order of their first thread; a core's threads within the set. */
	struct qp_cpulist *cores = qp_xcalloc(cpus->n ? cpus->n : 1, sizeof(*cores));
	size_t n_cores = 0, max_threads = 0;
	for (size_t i = 0; i < cpus->n; i++) {
		const struct qp_cpu *c = qp_host_cpu(h, cpus->cpu[i]);
		bool seen = false;
		for (size_t k = 0; k < n_cores && !seen; k++)
			seen = qp_cpulist_has(&cores[k], c->id);
		if (seen)
			continue;
		for (size_t s = 0; s < c->siblings.n; s++)
			if (qp_cpulist_has(cpus, c->siblings.cpu[s]))
				qp_cpulist_add(&cores[n_cores], c->siblings.cpu[s]);
		if (cores[n_cores].n > max_threads)
			max_threads = cores[n_cores].n;
		n_cores++;
	}
	size_t t = (size_t)p->threads, need = count / t, usable = 0;
	for (size_t k = 0; k < n_cores; k++)
		usable += cores[k].n >= t;
	int rc = 0;
	if (usable < need) {
		qp_autofree char *w = where(node);
		qp_autofree char *list = qp_cpulist_fmt(cpus);
		rc = qp_err_set(err, 0, "%s: %zu vCPUs at %zu thread%s per core need %zu cores, "
				"but %s has %zu %score%s with %zu thread%s each at most (CPUs %s)%s",
				p->file, count, t, t == 1 ? "" : "s", need, w, n_cores,
				others ? "free " : "", n_cores == 1 ? "" : "s", max_threads,
				max_threads == 1 ? "" : "s", list,
				others ? "; the VMs that run hold the others (`qpass status`)" : "");
		qp_err_hint(err, "lower \"vcpus\"%s, or give \"vcpu_pins\" (one host CPU per "
			    "vCPU)", t == 1 && max_threads > 1 ?
			    ", set \"cpu\": {\"threads\": 2} to use both threads of each core" : "");
	} else {
		size_t v = 0;
		for (size_t k = 0; k < n_cores && v < count; k++) {
			if (cores[k].n < t)
				continue;
			for (size_t j = 0; j < t; j++)
				plan->vcpu_pins[first + v++] = cores[k].cpu[j];
		}
	}
	for (size_t k = 0; k < n_cores; k++)
		qp_cpulist_free(&cores[k]);
	free(cores);
	return rc;
}

static int check_cpus_exist(const struct qp_profile *p, const struct qp_host *h,
			    const int *cpus, size_t n, const char *key, struct qp_err **err)
{
	for (size_t i = 0; i < n; i++) {
		const struct qp_cpu *c = qp_host_cpu(h, cpus[i]);
		if (!c || !c->online)
			return qp_err_set(err, 0, "%s: %s: CPU %d is not an online CPU of this host",
					  p->file, key, cpus[i]);
	}
	return 0;
}

/* Explicit CPUs on a core that another VM holds: refused, unless both share. */
static int check_cpus_free(const struct qp_profile *p, const struct qp_host *h,
			   const struct qp_ledger *l, const int *cpus, size_t n, const char *key,
			   struct qp_err **err)
{
	for (size_t i = 0; i < n; i++) {
		const struct qp_lease *e = qp_pool_core_holder(h, l, cpus[i]);
		if (!e || (p->share_cpus && e->share_cpus))
			continue;
		qp_autofree char *v = qp_cpulist_fmt(&e->vcpu_cpus);
		qp_autofree char *m = qp_cpulist_fmt(&e->emulator_cpus);
		qp_err_set(err, 0, "%s: %s: CPU %d is on a core of the VM %s (its vCPUs on CPUs %s, "
			   "its emulator on %s): a core's threads never go to two VMs", p->file, key,
			   cpus[i], e->name, v, m);
		return qp_err_hint(err, "choose CPUs no VM has (`qpass status` shows them), leave "
				   "%s out, or set \"share_cpus\": true in both profiles", key);
	}
	return 0;
}

/* cpus, without the threads of cores another VM holds. */
static void drop_held(const struct qp_host *h, const struct qp_ledger *l,
		      struct qp_cpulist *cpus)
{
	struct qp_cpulist keep = { 0 };
	for (size_t i = 0; i < cpus->n; i++)
		if (!qp_pool_core_holder(h, l, cpus->cpu[i]))
			qp_cpulist_add(&keep, cpus->cpu[i]);
	qp_cpulist_free(cpus);
	*cpus = keep;
}

static bool is_pin(const struct qp_plan *plan, int cpu)
{
	for (size_t v = 0; v < plan->n_vcpus; v++)
		if (plan->vcpu_pins[v] == cpu)
			return true;
	return false;
}

/* QEMU's other threads: one free core of the node (all its threads in free); else the
 * threads of the vCPUs' own cores that no vCPU has; else the vCPUs' CPUs themselves. */
static void auto_emulator(const struct qp_host *h, struct qp_plan *plan,
			  const struct qp_cpulist *free)
{
	for (size_t i = 0; i < free->n && !plan->emulator_cpus.n; i++) {
		const struct qp_cpu *c = qp_host_cpu(h, free->cpu[i]);
		bool whole = true;
		for (size_t s = 0; s < c->siblings.n && whole; s++)
			whole = !is_pin(plan, c->siblings.cpu[s]);
		for (size_t s = 0; whole && s < c->siblings.n; s++)
			if (qp_cpulist_has(free, c->siblings.cpu[s]))
				qp_cpulist_add(&plan->emulator_cpus, c->siblings.cpu[s]);
	}
	if (plan->emulator_cpus.n)
		return;
	for (size_t v = 0; v < plan->n_vcpus; v++) {
		const struct qp_cpu *c = qp_host_cpu(h, plan->vcpu_pins[v]);
		if (c && plan->span && c->node != plan->numa_node)
			continue;  /* across nodes: on the VM's (first) node */
		for (size_t s = 0; c && s < c->siblings.n; s++) {
			const struct qp_cpu *t = qp_host_cpu(h, c->siblings.cpu[s]);
			if (t && t->online && !is_pin(plan, t->id))
				qp_cpulist_add(&plan->emulator_cpus, t->id);
		}
	}
	qp_autofree char *w = where(plan->numa_node);
	if (plan->emulator_cpus.n) {
		qp_autofree char *e = qp_cpulist_fmt(&plan->emulator_cpus);
		note(plan, qp_xasprintf("no free core is left on %s for QEMU's other threads: they "
					"run on the vCPUs' sibling threads, CPUs %s", w, e));
		return;
	}
	for (size_t v = 0; v < plan->n_vcpus; v++) {
		const struct qp_cpu *c = qp_host_cpu(h, plan->vcpu_pins[v]);
		if (!plan->span || !c || c->node == plan->numa_node)
			qp_cpulist_add(&plan->emulator_cpus, plan->vcpu_pins[v]);
	}
	warn(plan, qp_xasprintf("the vCPUs take every free CPU of %s: QEMU's other threads share "
				"them (set \"emulator_cpus\" to choose)", w));
}

static int explicit_pins(const struct qp_profile *p, const struct qp_host *h,
			 const struct qp_ledger *l, struct qp_plan *plan,
			 const struct qp_cpulist *cpus, struct qp_err **err)
{
	int rc = check_cpus_exist(p, h, p->vcpu_pins, p->n_vcpu_pins, "vcpu_pins", err);
	if (rc == 0)
		rc = check_cpus_free(p, h, l, p->vcpu_pins, p->n_vcpu_pins, "vcpu_pins", err);
	for (size_t i = 0; rc == 0 && i < p->n_vcpu_pins; i++) {
		for (size_t j = 0; j < i; j++)
			if (p->vcpu_pins[j] == p->vcpu_pins[i])
				rc = qp_err_set(err, 0, "%s: vcpu_pins: CPU %d is given to vCPU %zu and "
						"vCPU %zu; pinning is one to one", p->file,
						p->vcpu_pins[i], j, i);
		plan->vcpu_pins[i] = p->vcpu_pins[i];
		if (rc == 0 && !qp_cpulist_has(cpus, p->vcpu_pins[i]))
			warn(plan, qp_xasprintf("vcpu_pins: CPU %d is not on the VM's NUMA node %d",
						p->vcpu_pins[i], plan->numa_node));
	}
	return rc;
}

int qp_plan_place_cpus(const struct qp_profile *p, const struct qp_host *h,
		      const struct qp_ledger *l, struct qp_plan *plan, struct qp_err **err)
{
	plan->n_vcpus = (size_t)p->vcpus;
	plan->vcpu_pins = qp_xcalloc(plan->n_vcpus, sizeof(int));
	size_t k = plan->span ? plan->n_memory_nodes : 1;
	plan->sockets = p->sockets;
	plan->cores = p->cores;
	if (plan->span && p->sockets == 1 && p->cores % (int)k == 0) {
		/* A guest socket per guest node: no socket across two. */
		plan->sockets = (int)k;
		plan->cores = p->cores / (int)k;
	}
	struct qp_cpulist cpus = { 0 }, free = { 0 };
	int rc = 0;
	for (size_t g = 0; g < k && rc == 0; g++) {
		int node = plan->span ? plan->memory_nodes[g] : plan->numa_node;
		struct qp_cpulist c;
		node_cpus(h, node, &c);
		struct qp_cpulist f = { 0 };
		qp_cpulist_copy(&f, &c);
		drop_held(h, l, &f);
		if (!p->vcpu_pins)
			rc = auto_pins(p, h, plan, node, &f, l && l->n && f.n < c.n,
				       g * plan->n_vcpus / k, plan->n_vcpus / k, err);
		for (size_t i = 0; i < c.n; i++)
			qp_cpulist_add(&cpus, c.cpu[i]);
		/* QEMU's other threads: on the VM's (first) node. */
		if (g == 0)
			qp_cpulist_copy(&free, &f);
		qp_cpulist_free(&c);
		qp_cpulist_free(&f);
	}
	if (rc == 0 && p->vcpu_pins)
		rc = explicit_pins(p, h, l, plan, &cpus, err);
	if (rc == 0 && p->has_emulator_cpus) {
		rc = check_cpus_exist(p, h, p->emulator_cpus.cpu, p->emulator_cpus.n,
				      "emulator_cpus", err);
		if (rc == 0)
			rc = check_cpus_free(p, h, l, p->emulator_cpus.cpu, p->emulator_cpus.n,
					     "emulator_cpus", err);
		qp_cpulist_copy(&plan->emulator_cpus, &p->emulator_cpus);
	} else if (rc == 0) {
		auto_emulator(h, plan, &free);
	}
	qp_cpulist_free(&cpus);
	qp_cpulist_free(&free);
	return rc;
}

/* Node nd as it is left beside others_kb that VMs still starting reserved: those come
 * off its free memory first, then off what the kernel can reclaim. */
static void left_after(const struct qp_numa_node *nd, uint64_t others_kb,
		       struct qp_numa_node *left)
{
	uint64_t avail = nd->mem_free_kb + nd->mem_reclaim_kb;
	avail = avail > others_kb ? avail - others_kb : 0;
	left->mem_free_kb = nd->mem_free_kb > others_kb ? nd->mem_free_kb - others_kb : 0;
	left->mem_reclaim_kb = avail > left->mem_free_kb ? avail - left->mem_free_kb : 0;
}

enum qp_mem_fit qp_plan_memory_fit(const struct qp_numa_node *nd, uint64_t mib,
				   uint64_t others_kb)
{
	struct qp_numa_node left = *nd;
	left_after(nd, others_kb, &left);
	if (left.mem_free_kb >= mib * 1024)
		return QP_MEM_FITS;
	return left.mem_free_kb + left.mem_reclaim_kb >= mib * 1024 ? QP_MEM_RECLAIM
								 : QP_MEM_SHORT;
}

/* Whether node nd holds mib more MiB for this VM, beside what the VMs still starting
 * reserved and have not touched yet: hugepages must be free; other memory free or
 * reclaimable (the page cache, reclaimable slab), with a warning when the kernel must
 * reclaim first. */
static int node_memory(const struct qp_profile *p, const struct qp_numa_node *nd, uint64_t mib,
		       const struct qp_ledger *l, struct qp_plan *plan, struct qp_err **err)
{
	if (p->hugepage_kb) {
		const struct qp_hugepages *hp = qp_node_hugepages(nd, p->hugepage_kb);
		uint64_t free_pages = hp ? hp->free : 0, need = mib * 1024 / p->hugepage_kb;
		uint64_t others = qp_ledger_untouched_hugepages(l, nd->id, p->hugepage_kb);
		free_pages = free_pages > others ? free_pages - others : 0;
		if (free_pages >= need)
			return 0;
		const char *size = p->hugepage_kb == 2048 ? "2M" : "1G";
		char starting[96] = "";
		if (others)
			snprintf(starting, sizeof(starting), " (%llu more are the starting VMs')",
				 (unsigned long long)others);
		qp_err_set(err, 0, "%s: NUMA node %d has %llu free %s hugepages%s; %llu MiB needs "
			   "%llu", p->file, nd->id, (unsigned long long)free_pages, size, starting,
			   (unsigned long long)mib, (unsigned long long)need);
		return qp_err_hint(err, "reserve them: echo %llu > /sys/devices/system/node/node%d/"
				   "hugepages/hugepages-%llukB/nr_hugepages",
				   (unsigned long long)need, nd->id,
				   (unsigned long long)p->hugepage_kb);
	}
	uint64_t others = qp_ledger_untouched_mib(l, nd->id) * 1024;
	struct qp_numa_node left = *nd;
	left_after(nd, others, &left);
	enum qp_mem_fit fit = qp_plan_memory_fit(nd, mib, others);
	if (fit != QP_MEM_FITS && others)
		note(plan, qp_xasprintf("the VMs that run have reserved %llu MiB of NUMA node %d "
					"that they have not touched yet",
					(unsigned long long)(others / 1024), nd->id));
	if (fit == QP_MEM_FITS)
		return 0;
	char *msg = qp_plan_memory_note(&left, mib);
	if (fit == QP_MEM_RECLAIM) {
		warn(plan, msg);
		return 0;
	}
	qp_err_set(err, 0, "%s: %s", p->file, msg);
	free(msg);
	return qp_err_hint(err, "lower \"memory\", stop what uses node %d (numastat -m shows "
			   "it), or put the VM on another node with \"numa\"", nd->id);
}

/* Preallocation: every page before the guest runs, by threads on the VM's own CPUs
 * (idle until then), created in a thread-context where QEMU has it (7.2). */
static void plan_prealloc(const struct qp_profile *p, const struct qp_host *h,
			  struct qp_plan *plan)
{
	if (!p->prealloc)
		return;
	plan->prealloc = true;
	for (size_t v = 0; v < plan->n_vcpus; v++)
		qp_cpulist_add(&plan->prealloc_cpus, plan->vcpu_pins[v]);
	for (size_t i = 0; i < plan->emulator_cpus.n; i++)
		qp_cpulist_add(&plan->prealloc_cpus, plan->emulator_cpus.cpu[i]);
	size_t n = plan->prealloc_cpus.n;
	plan->prealloc_threads = p->prealloc_threads ? p->prealloc_threads
						      : (int)(n > 16 ? 16 : n ? n : 1);
	int major = 0, minor = 0;
	if (h->qemu_version && sscanf(h->qemu_version, "%d.%d", &major, &minor) == 2)
		plan->thread_context = major > 7 || (major == 7 && minor >= 2);
	qp_autofree char *cpus = qp_cpulist_fmt(&plan->prealloc_cpus);
	if (plan->thread_context)
		note(plan, qp_xasprintf("guest RAM preallocated by %d threads on CPUs %s (the "
					"VM's own, idle until it runs)", plan->prealloc_threads,
					cpus));
	else
		note(plan, qp_xasprintf("guest RAM preallocated by %d threads; QEMU %s has no "
					"thread-context (7.2+), so they run where QEMU starts",
					plan->prealloc_threads,
					h->qemu_version ? h->qemu_version : "of unknown version"));
}

int qp_plan_place_memory(const struct qp_profile *p, const struct qp_host *h,
			const struct qp_ledger *l, struct qp_plan *plan, struct qp_err **err)
{
	plan->memlock_bytes = (p->memory_mib << 20) + ((uint64_t)plan->n_devs << 30);
	plan_prealloc(p, h, plan);
	if (plan->numa_node < 0)
		return 0;
	if (!plan->n_memory_nodes) {
		plan->memory_nodes = qp_xcalloc(1, sizeof(int));
		plan->memory_nodes[0] = plan->numa_node;
		plan->n_memory_nodes = 1;
	}
	/* Across nodes: an equal share on each (span_nodes checked that it splits). */
	uint64_t share = p->memory_mib / plan->n_memory_nodes;
	for (size_t g = 0; g < plan->n_memory_nodes; g++)
		if (node_memory(p, qp_host_node(h, plan->memory_nodes[g]), share, l, plan, err) < 0)
			return -1;
	return 0;
}

char *qp_plan_memory_note(const struct qp_numa_node *nd, uint64_t memory_mib)
{
	if (nd->mem_free_kb >= memory_mib * 1024)
		return NULL;
	return qp_xasprintf("NUMA node %d has %llu MiB free and %llu MiB the kernel can "
			    "reclaim (page cache, slab); the VM asks for %llu MiB", nd->id,
			    (unsigned long long)(nd->mem_free_kb / 1024),
			    (unsigned long long)(nd->mem_reclaim_kb / 1024),
			    (unsigned long long)memory_mib);
}
