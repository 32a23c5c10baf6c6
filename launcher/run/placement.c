/* `qpass up`, the placement of the running QEMU: every thread pinned and read back
 * before the guest runs; one vCPU or the emulator threads moved while it runs (`qpass
 * pin`); the passed devices' vfio interrupts sent to the VM's CPUs; and what the kernel
 * says of all of it, for `qpass status` (core/placement.h compares). Threads are read
 * from the real /proc (QEMU runs here whatever the sysroot), interrupts under the
 * system root (the host's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/kernel.h"
#include "base/util.h"
#include "core/pool.h"
#include "run/sysfx.h"
#include "run/up-int.h"

/* The CPUs thread tid of QEMU may run on, as the kernel says. */
static int read_allowed(struct vm *vm, pid_t tid, struct qp_cpulist *out, struct qp_err **err)
{
	if (qp_kernel_getaffinity) {
		int e = qp_kernel_getaffinity(vm->qemu, tid, out);
		return e ? qp_err_set(err, e, "cannot read where thread %d may run", (int)tid) : 0;
	}
	qp_autofree char *rel = qp_xasprintf("proc/%d/task/%d/status", (int)vm->qemu, (int)tid);
	qp_autofree char *text = NULL;
	if (qp_root_read(&vm->proc, rel, &text, NULL, err) < 0)
		return -1;
	if (qp_parse_status_allowed(text, out, err) < 0)
		return qp_err_set(err, 0, "/%s: no Cpus_allowed_list", rel);
	return 0;
}

/* The vCPU whose thread tid is, or -1. */
static int vcpu_of(const struct vm *vm, pid_t tid)
{
	for (size_t v = 0; vm->vcpu_tids && v < vm->plan->n_vcpus; v++)
		if (vm->vcpu_tids[v] == tid)
			return (int)v;
	return -1;
}

static int query_vcpus(struct vm *vm, struct qp_err **err)
{
	struct qp_qmp_msg r;
	if (qp_qmp_execute(vm->qmp, "query-cpus-fast", NULL, QMP_TIMEOUT_MS, &r, err) < 0)
		return -1;
	if (r.kind != QP_QMP_RETURN || !json_object_is_type(r.data, json_type_array)) {
		qp_qmp_msg_free(&r);
		return qp_err_set(err, 0, "QMP query-cpus-fast: no list of vCPUs");
	}
	size_t n_vcpus = vm->plan->n_vcpus;
	free(vm->vcpu_tids);
	vm->vcpu_tids = qp_xcalloc(n_vcpus ? n_vcpus : 1, sizeof(pid_t));
	for (size_t i = 0; i < json_object_array_length(r.data); i++) {
		json_object *c = json_object_array_get_idx(r.data, i);
		int idx = json_object_get_int(json_object_object_get(c, "cpu-index"));
		int tid = json_object_get_int(json_object_object_get(c, "thread-id"));
		if (idx >= 0 && (size_t)idx < n_vcpus)
			vm->vcpu_tids[idx] = tid;
	}
	qp_qmp_msg_free(&r);
	for (size_t v = 0; v < n_vcpus; v++) {
		if (!vm->vcpu_tids[v])
			return qp_err_set(err, 0, "QEMU did not report the thread of vCPU %zu", v);
		/* Pinned is only what is pinned: a thread that is not QEMU's is refused. */
		qp_autofree char *rel = qp_xasprintf("proc/%d/task/%d", (int)vm->qemu,
						     (int)vm->vcpu_tids[v]);
		for (size_t w = 0; w < v; w++)
			if (vm->vcpu_tids[w] == vm->vcpu_tids[v])
				return qp_err_set(err, 0, "QMP gave vCPUs %zu and %zu one thread, %d",
						  w, v, (int)vm->vcpu_tids[v]);
		if (vm->vcpu_tids[v] < 0 || !qp_root_exists(&vm->proc, rel))
			return qp_err_set(err, 0, "QMP says vCPU %zu runs in thread %d, which is "
					  "not a thread of QEMU (pid %d): not pinning what it "
					  "cannot check", v, (int)vm->vcpu_tids[v], (int)vm->qemu);
	}
	return 0;
}

/* Pins the threads (every one when only < -1; the vCPU `only`; -1: every non-vCPU
 * thread), then reads each back: what the kernel says is what counts. */
static int pin_threads(struct vm *vm, int only, struct qp_err **err)
{
	qp_autofree char *taskdir = qp_xasprintf("proc/%d/task", (int)vm->qemu);
	char **tasks = NULL;
	if (qp_root_list(&vm->proc, taskdir, false, &tasks, err) < 0)
		return -1;
	int rc = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		for (size_t i = 0; tasks[i] && rc == 0; i++) {
			pid_t tid = (pid_t)atoi(tasks[i]);
			int v = vcpu_of(vm, tid);
			if ((only >= 0 && v != only) || (only == -1 && v >= 0))
				continue;
			struct qp_cpulist one = { 0 }, got = { 0 };
			const struct qp_cpulist *set = &vm->emulator;
			if (v >= 0) {
				qp_cpulist_add(&one, vm->pins[v]);
				set = &one;
			}
			if (pass == 0)
				rc = qp_fx_pin(tid, set, err);
			else
				rc = read_allowed(vm, tid, &got, err);
			if (rc == 0 && pass == 1 && !qp_cpulist_equal(&got, set)) {
				qp_autofree char *g = qp_cpulist_fmt(&got);
				qp_autofree char *w = qp_cpulist_fmt(set);
				rc = qp_err_set(err, 0, "thread %d of QEMU runs on CPUs %s, not %s as "
						"pinned (a cpuset cgroup may forbid them)", (int)tid, g, w);
			}
			qp_cpulist_free(&one);
			qp_cpulist_free(&got);
		}
	}
	qp_strv_free(tasks);
	return rc;
}

int qp_up_place(struct vm *vm, struct qp_err **err)
{
	/* Every thread QEMU has now: vCPUs to their CPU, the rest to the emulator CPUs.
	 * Threads made later inherit from their maker, the pinned main thread. */
	if (query_vcpus(vm, err) < 0)
		return -1;
	return pin_threads(vm, -2, err);
}

int qp_up_check_pin(const struct vm *vm, const struct qp_ledger *l, int vcpu,
		    const struct qp_cpulist *cpus, struct qp_err **err)
{
	if (!cpus->n || (vcpu >= 0 && cpus->n != 1))
		return qp_err_set(err, 0, vcpu >= 0 ? "a vCPU is pinned to one CPU"
					   : "give the emulator threads at least one CPU");
	for (size_t i = 0; i < cpus->n; i++) {
		const struct qp_cpu *c = qp_host_cpu(vm->host, cpus->cpu[i]);
		if (!c || !c->online)
			return qp_err_set(err, 0, "CPU %d is not an online CPU of this host",
					  cpus->cpu[i]);
		const struct qp_lease *e = qp_pool_core_holder(vm->host, l, cpus->cpu[i]);
		if (!e || !strcmp(e->name, vm->p->name) || (vm->p->share_cpus && e->share_cpus))
			continue;
		qp_autofree char *v = qp_cpulist_fmt(&e->vcpu_cpus);
		qp_autofree char *m = qp_cpulist_fmt(&e->emulator_cpus);
		qp_err_set(err, 0, "CPU %d is on a core of the VM %s (its vCPUs on CPUs %s, its "
			   "emulator on %s): a core's threads never go to two VMs", cpus->cpu[i],
			   e->name, v, m);
		return qp_err_hint(err, "choose CPUs no VM has (`qpass status` shows them), or set "
				   "\"share_cpus\": true in both profiles");
	}
	return 0;
}

int qp_up_repin(struct vm *vm, int vcpu, const struct qp_cpulist *cpus, struct qp_err **err)
{
	int was = vcpu >= 0 ? vm->pins[vcpu] : -1;
	struct qp_cpulist before = { 0 };
	qp_cpulist_copy(&before, &vm->emulator);
	if (vcpu >= 0) {
		vm->pins[vcpu] = cpus->cpu[0];
	} else {
		qp_cpulist_free(&vm->emulator);
		qp_cpulist_copy(&vm->emulator, cpus);
	}
	int rc = vm->qemu ? pin_threads(vm, vcpu, err) : 0;
	if (rc < 0) {
		/* Put back what was, in the record and on the threads. */
		if (vcpu >= 0)
			vm->pins[vcpu] = was;
		qp_cpulist_free(&vm->emulator);
		vm->emulator = before;
		struct qp_err *ignored = NULL;
		if (vm->qemu && pin_threads(vm, vcpu, &ignored) < 0)
			qp_err_free(ignored);
		return -1;
	}
	qp_cpulist_free(&before);
	return 0;
}

/* --- interrupts ------------------------------------------------------------------- */

/* The vfio interrupts of the VM's devices, with their affinity now. */
static void read_irqs(struct vm *vm, struct qp_irq **irqs, size_t *n)
{
	*irqs = NULL;
	*n = 0;
	qp_autofree char *text = NULL;
	struct qp_err *err = NULL;
	if (!vm->plan->n_devs || qp_root_read_opt(vm->root, "proc/interrupts", &text, NULL,
						   &err) < 0 || !text) {
		qp_err_free(err);
		return;
	}
	qp_autofree struct qp_pci_addr *devs = qp_xcalloc(vm->plan->n_devs, sizeof(*devs));
	for (size_t i = 0; i < vm->plan->n_devs; i++)
		devs[i] = vm->plan->devs[i].host;
	qp_parse_vfio_irqs(text, devs, vm->plan->n_devs, irqs, n);
	for (size_t i = 0; i < *n; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "proc/irq/%d/smp_affinity_list", (*irqs)[i].irq);
		qp_autofree char *aff = NULL;
		if (qp_root_read(vm->root, rel, &aff, NULL, &err) < 0 ||
		    qp_cpulist_parse(aff, &(*irqs)[i].affinity, &err) < 0)
			qp_err_free(err);
		err = NULL;
	}
}

const struct qp_cpulist *qp_up_irq_target(const struct vm *vm, const struct qp_pci_addr *dev)
{
	for (size_t i = 0; vm->irq_node_cpus && i < vm->plan->n_devs; i++)
		if (!qp_pci_addr_cmp(&vm->plan->devs[i].host, dev) &&
		    vm->plan->devs[i].guest_node >= 0)
			return &vm->irq_node_cpus[vm->plan->devs[i].guest_node];
	return vm->irq_cpus.n ? &vm->irq_cpus : NULL;
}

void qp_up_place_irqs(struct vm *vm)
{
	if (!vm->irq_cpus.n && !vm->irq_node_cpus)
		return;
	struct qp_irq *irqs;
	size_t n;
	read_irqs(vm, &irqs, &n);
	for (size_t i = 0; i < n; i++) {
		struct qp_err *err = NULL;
		const struct qp_cpulist *want = qp_up_irq_target(vm, &irqs[i].dev);
		if (want && !qp_cpulist_equal(&irqs[i].affinity, want) &&
		    qp_fx_irq_affinity(vm->root, irqs[i].irq, want, &err) < 0) {
			qp_say(vm->p->name, "%s (%s)", err->msg, irqs[i].name);
			qp_err_free(err);
		}
	}
	struct qp_measured m = { .irqs = irqs, .n_irqs = n };
	qp_measured_free(&m);
}

/* --- what the kernel says ---------------------------------------------------------- */

static void measure_thread(struct vm *vm, const char *task, struct qp_thread *t)
{
	t->tid = atoi(task);
	t->vcpu = vcpu_of(vm, t->tid);
	qp_autofree char *dir = qp_xasprintf("proc/%d/task/%s", (int)vm->qemu, task);
	qp_autofree char *comm_rel = qp_xasprintf("%s/comm", dir);
	qp_autofree char *stat_rel = qp_xasprintf("%s/stat", dir);
	qp_autofree char *comm = NULL, *stat = NULL;
	struct qp_err *err = NULL;
	if (qp_root_read(&vm->proc, comm_rel, &comm, NULL, &err) < 0)
		comm = qp_xstrdup("?");
	comm[strcspn(comm, "\n")] = '\0';
	t->name = qp_xstrdup(comm);
	t->role = t->vcpu >= 0 ? QP_ROLE_VCPU : qp_thread_role_of(comm, t->tid == vm->qemu);
	if (t->role == QP_ROLE_VCPU && t->vcpu < 0)
		t->role = QP_ROLE_OTHER;
	t->last_cpu = qp_root_read(&vm->proc, stat_rel, &stat, NULL, &err) == 0
			      ? qp_parse_stat_cpu(stat) : -1;
	if (read_allowed(vm, t->tid, &t->allowed, &err) < 0)
		qp_cpulist_free(&t->allowed);
	qp_err_free(err);
}

/* Adds the pages of the mapping at lo to m's; across nodes, counts those off its node. */
static void add_mapping(struct vm *vm, const char *numa, uint64_t lo, struct qp_measured *m)
{
	uint64_t *pages, kb;
	size_t n;
	int bind;
	if (qp_parse_numa_maps(numa, lo, &pages, &n, &kb, &bind) < 0)
		return;
	if (n > m->n_pages) {
		m->pages = qp_xrealloc(m->pages, n * sizeof(*m->pages));
		memset(m->pages + m->n_pages, 0, (n - m->n_pages) * sizeof(*m->pages));
		m->n_pages = n;
	}
	for (size_t i = 0; i < n; i++) {
		m->pages[i] += pages[i];
		if (vm->plan->span && (int)i != bind)
			m->off_node += pages[i];
	}
	m->page_kb = kb;
	m->has_memory = true;
	free(pages);
}

/* The guest RAM: the one mapping of the memory backend's size, its pages per node; across
 * nodes, the mappings of one guest node's share, each against the node it is bound to. */
void qp_up_measure_memory(struct vm *vm, struct qp_measured *m)
{
	size_t k = vm->plan->span ? vm->plan->n_memory_nodes : 1;
	uint64_t size = (vm->p->memory_mib << 20) / k;
	qp_autofree char *maps_rel = qp_xasprintf("proc/%d/maps", (int)vm->qemu);
	qp_autofree char *numa_rel = qp_xasprintf("proc/%d/numa_maps", (int)vm->qemu);
	qp_autofree char *maps = NULL, *numa = NULL;
	struct qp_err *err = NULL;
	if (qp_root_read(&vm->proc, maps_rel, &maps, NULL, &err) < 0 ||
	    qp_root_read(&vm->proc, numa_rel, &numa, NULL, &err) < 0) {
		qp_err_free(err);
		return;
	}
	m->by_guest_node = vm->plan->span;
	size_t found = 0;
	for (const char *l = maps; l && *l && found < k;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		unsigned long long lo, hi;
		if (sscanf(l, "%llx-%llx", &lo, &hi) == 2 && hi - lo == size) {
			add_mapping(vm, numa, lo, m);
			found++;
		}
	}
}

void qp_up_measure(struct vm *vm, struct qp_measured *m)
{
	memset(m, 0, sizeof(*m));
	if (!vm->qemu)
		return;
	qp_autofree char *taskdir = qp_xasprintf("proc/%d/task", (int)vm->qemu);
	char **tasks = NULL;
	struct qp_err *err = NULL;
	if (qp_root_list(&vm->proc, taskdir, false, &tasks, &err) == 0) {
		size_t n = 0;
		while (tasks[n])
			n++;
		m->threads = qp_xcalloc(n ? n : 1, sizeof(*m->threads));
		for (size_t i = 0; i < n; i++)
			measure_thread(vm, tasks[i], &m->threads[m->n_threads++]);
	}
	qp_err_free(err);
	qp_strv_free(tasks);
	qp_up_measure_memory(vm, m);
	read_irqs(vm, &m->irqs, &m->n_irqs);
}
