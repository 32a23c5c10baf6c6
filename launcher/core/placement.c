#include "core/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsonout.h"
#include "base/sysparse.h"
#include "base/util.h"

/* --- what /proc says ---------------------------------------------------------------- */

enum qp_thread_role qp_thread_role_of(const char *comm, bool main_thread)
{
	if (main_thread)
		return QP_ROLE_MAIN;
	if (!strncmp(comm, "CPU ", 4))
		return QP_ROLE_VCPU;
	if (!strncmp(comm, "IO ", 3))
		return QP_ROLE_IOTHREAD;
	if (!strcmp(comm, "worker"))
		return QP_ROLE_WORKER;
	if (!strcmp(comm, "call_rcu"))
		return QP_ROLE_RCU;
	return QP_ROLE_OTHER;
}

const char *qp_thread_role_name(enum qp_thread_role r)
{
	static const char *const names[] = { "vcpu", "main", "iothread", "worker", "rcu",
					     "other" };
	return names[r];
}

int qp_parse_stat_cpu(const char *stat)
{
	unsigned long long cpu;
	return qp_parse_stat_field(stat, 39, &cpu) < 0 || cpu > QP_MAX_CPU ? -1 : (int)cpu;
}

int qp_parse_status_allowed(const char *status, struct qp_cpulist *out, struct qp_err **err)
{
	const char *line = strstr(status, "\nCpus_allowed_list:");
	if (!line)
		return qp_err_set(err, 0, "no Cpus_allowed_list");
	line = strchr(line, ':') + 1;
	line += strspn(line, " \t");
	qp_autofree char *v = qp_xstrndup(line, strcspn(line, "\n"));
	return qp_cpulist_parse(v, out, err);
}

/* The node of a "bind:N" (or "bind=static:N") policy word; -1 for any other. */
static int bind_node(const char *w)
{
	if (strncmp(w, "bind", 4) || !strchr(w, ':'))
		return -1;
	char *end;
	long n = strtol(strchr(w, ':') + 1, &end, 10);
	return *end || n < 0 || n > 65535 ? -1 : (int)n;
}

int qp_parse_numa_maps(const char *text, uint64_t start, uint64_t **pages, size_t *n,
		       uint64_t *page_kb, int *bind)
{
	*pages = NULL;
	*n = 0;
	*page_kb = 4;
	if (bind)
		*bind = -1;
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char *end;
		if (strtoull(l, &end, 16) != start || *end != ' ')
			continue;
		const char *eol = strchr(l, '\n');
		qp_autofree char *line = qp_xstrndup(l, eol ? (size_t)(eol - l) : strlen(l));
		for (char *save = NULL, *w = strtok_r(line, " ", &save); w;
		     w = strtok_r(NULL, " ", &save)) {
			unsigned long node;
			unsigned long long count;
			if (sscanf(w, "N%lu=%llu", &node, &count) == 2 && node < 4096) {
				if (node >= *n) {
					*pages = qp_xrealloc(*pages, (node + 1) * sizeof(**pages));
					memset(*pages + *n, 0, (node + 1 - *n) * sizeof(**pages));
					*n = node + 1;
				}
				(*pages)[node] = count;
			} else if (sscanf(w, "kernelpagesize_kB=%llu", &count) == 1) {
				*page_kb = count;
			} else if (bind && !strncmp(w, "bind", 4)) {
				*bind = bind_node(w);
			}
		}
		return 0;
	}
	return -1;
}

static bool wanted_dev(const struct qp_pci_addr *a, const struct qp_pci_addr *devs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!qp_pci_addr_cmp(a, &devs[i]))
			return true;
	return false;
}

void qp_parse_vfio_irqs(const char *interrupts, const struct qp_pci_addr *devs, size_t n_devs,
			struct qp_irq **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	for (const char *l = interrupts; l && *l;) {
		const char *eol = strchr(l, '\n');
		qp_autofree char *line = qp_xstrndup(l, eol ? (size_t)(eol - l) : strlen(l));
		l = eol ? eol + 1 : NULL;
		char *end;
		long irq = strtol(line, &end, 10);
		if (end == line || *end != ':')
			continue;
		/* The name is the last word: "vfio-msix[0](0000:04:00.0)". */
		char *name = strrchr(line, ' ');
		name = name ? name + 1 : line;
		char *open = strrchr(name, '('), *close = strrchr(name, ')');
		if (strncmp(name, "vfio-", 5) || !open || !close || close < open)
			continue;
		*close = '\0';
		struct qp_pci_addr a;
		struct qp_err *err = NULL;
		if (qp_parse_pci_addr(open + 1, &a, &err) < 0) {
			qp_err_free(err);
			continue;
		}
		*close = ')';
		if (!wanted_dev(&a, devs, n_devs))
			continue;
		*out = qp_xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = (struct qp_irq){ .irq = (int)irq, .name = qp_xstrdup(name),
						  .dev = a };
	}
}

/* --- the verdict -------------------------------------------------------------------- */

static const struct qp_cpulist *wanted(const struct qp_thread *t, const struct qp_promise *p,
				       struct qp_cpulist *one)
{
	if (t->role != QP_ROLE_VCPU || t->vcpu < 0 || (size_t)t->vcpu >= p->n_vcpus)
		return p->emulator_cpus;
	qp_cpulist_add(one, p->vcpu_pins[t->vcpu]);
	return one;
}

/* Where the measured interrupt i should go; NULL: anywhere. */
static const struct qp_cpulist *irq_want(const struct qp_promise *p, size_t i)
{
	return p->irq_want ? p->irq_want[i] : p->irq_cpus;
}

static void memory_drift(const struct qp_measured *m, const struct qp_promise *p, char ***out)
{
	if (m->has_memory && m->by_guest_node) {
		uint64_t all = 0;
		for (size_t i = 0; i < m->n_pages; i++)
			all += m->pages[i];
		if (all && m->off_node * 100 > all)
			qp_strv_push(out, qp_xasprintf("guest RAM: %llu of %llu resident pages off "
						       "the host node of their guest node",
						       (unsigned long long)m->off_node,
						       (unsigned long long)all));
		return;
	}
	if (!m->has_memory || p->node < 0)
		return;
	uint64_t all = 0, on = (size_t)p->node < m->n_pages ? m->pages[p->node] : 0;
	for (size_t i = 0; i < m->n_pages; i++)
		all += m->pages[i];
	if (!all || (all - on) * 100 <= all)
		return;
	struct qp_buf b = { 0 };
	for (size_t i = 0; i < m->n_pages; i++)
		if ((int)i != p->node && m->pages[i])
			qp_buf_addf(&b, ", %llu on node %zu", (unsigned long long)m->pages[i], i);
	qp_autofree char *where = qp_buf_steal(&b);
	qp_strv_push(out, qp_xasprintf("guest RAM: %llu of %llu resident pages off node %d%s",
				       (unsigned long long)(all - on), (unsigned long long)all,
				       p->node, where ? where : ""));
}

char **qp_placement_drift(const struct qp_measured *m, const struct qp_promise *p)
{
	char **out = NULL;
	for (size_t v = 0; v < p->n_vcpus; v++) {
		bool found = false;
		for (size_t i = 0; i < m->n_threads && !found; i++)
			found = m->threads[i].role == QP_ROLE_VCPU && m->threads[i].vcpu == (int)v;
		if (!found)
			qp_strv_push(&out, qp_xasprintf("vCPU %zu has no thread", v));
	}
	for (size_t i = 0; i < m->n_threads; i++) {
		const struct qp_thread *t = &m->threads[i];
		struct qp_cpulist one = { 0 };
		const struct qp_cpulist *w = wanted(t, p, &one);
		if (!qp_cpulist_equal(&t->allowed, w)) {
			qp_autofree char *got = qp_cpulist_fmt(&t->allowed);
			qp_autofree char *want = qp_cpulist_fmt(w);
			if (t->role == QP_ROLE_VCPU)
				qp_strv_push(&out, qp_xasprintf("vCPU %d (thread %d) may run on CPUs %s, "
								"not CPU %s as pinned", t->vcpu,
								t->tid, got, want));
			else
				qp_strv_push(&out, qp_xasprintf("thread %d (%s, %s) may run on CPUs %s, "
								"not the emulator CPUs %s", t->tid,
								t->name, qp_thread_role_name(t->role),
								got, want));
		}
		qp_cpulist_free(&one);
	}
	memory_drift(m, p, &out);
	for (size_t i = 0; i < m->n_irqs; i++) {
		const struct qp_irq *q = &m->irqs[i];
		const struct qp_cpulist *w = irq_want(p, i);
		if (!w || qp_cpulist_equal(&q->affinity, w))
			continue;
		qp_autofree char *got = qp_cpulist_fmt(&q->affinity);
		qp_autofree char *want = qp_cpulist_fmt(w);
		qp_strv_push(&out, qp_xasprintf("interrupt %d (%s) goes to CPUs %s, not %s", q->irq,
						q->name, got, want));
	}
	return out;
}

/* --- as JSON ------------------------------------------------------------------------ */

static json_object *thread_json(const struct qp_thread *t, const struct qp_promise *p)
{
	json_object *o = json_object_new_object();
	struct qp_cpulist one = { 0 };
	if (t->role == QP_ROLE_VCPU)
		qp_json_add(o, "vcpu", json_object_new_int(t->vcpu));
	qp_json_add(o, "tid", json_object_new_int(t->tid));
	qp_json_add(o, "name", json_object_new_string(t->name));
	qp_json_add(o, "role", json_object_new_string(qp_thread_role_name(t->role)));
	qp_json_add(o, "allowed", qp_json_cpus(&t->allowed));
	qp_json_add(o, "last_cpu", json_object_new_int(t->last_cpu));
	qp_json_add(o, "pinned", qp_json_cpus(wanted(t, p, &one)));
	qp_cpulist_free(&one);
	return o;
}

static json_object *memory_json(const struct qp_measured *m, const struct qp_promise *p)
{
	if (!m->has_memory)
		return NULL;
	json_object *o = json_object_new_object();
	json_object *pages = json_object_new_object();
	uint64_t all = 0, on = 0;
	for (size_t i = 0; i < m->n_pages; i++) {
		char k[24];
		snprintf(k, sizeof(k), "%zu", i);
		if (m->pages[i])
			qp_json_add(pages, k, json_object_new_int64((int64_t)m->pages[i]));
		all += m->pages[i];
		on += (int)i == p->node ? m->pages[i] : 0;
	}
	if (m->by_guest_node) {
		on = all - m->off_node;
		qp_json_add(o, "by_guest_node", json_object_new_boolean(true));
	}
	qp_json_add(o, "node", json_object_new_int(p->node));
	qp_json_add(o, "page_kb", json_object_new_int64((int64_t)m->page_kb));
	qp_json_add(o, "pages", pages);
	qp_json_add(o, "on_node", json_object_new_int64((int64_t)on));
	qp_json_add(o, "elsewhere", json_object_new_int64((int64_t)(all - on)));
	return o;
}

json_object *qp_placement_json(const struct qp_measured *m, const struct qp_promise *p)
{
	json_object *o = json_object_new_object();
	char **drift = qp_placement_drift(m, p);
	qp_json_add(o, "as_planned", json_object_new_boolean(!drift));
	json_object *d = json_object_new_array();
	for (char **x = drift; x && *x; x++)
		json_object_array_add(d, json_object_new_string(*x));
	qp_json_add(o, "drift", d);
	qp_strv_free(drift);
	json_object *vcpus = json_object_new_array(), *others = json_object_new_array();
	for (size_t i = 0; i < m->n_threads; i++)
		json_object_array_add(m->threads[i].role == QP_ROLE_VCPU ? vcpus : others,
				      thread_json(&m->threads[i], p));
	qp_json_add(o, "vcpus", vcpus);
	qp_json_add(o, "threads", others);
	qp_json_add(o, "memory", memory_json(m, p));
	json_object *irqs = json_object_new_array();
	for (size_t i = 0; i < m->n_irqs; i++) {
		json_object *x = json_object_new_object();
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&m->irqs[i].dev, a);
		qp_json_add(x, "irq", json_object_new_int(m->irqs[i].irq));
		qp_json_add(x, "name", json_object_new_string(m->irqs[i].name));
		qp_json_add(x, "device", json_object_new_string(a));
		qp_json_add(x, "affinity", qp_json_cpus(&m->irqs[i].affinity));
		qp_json_add(x, "wanted", irq_want(p, i) ? qp_json_cpus(irq_want(p, i)) : NULL);
		json_object_array_add(irqs, x);
	}
	qp_json_add(o, "interrupts", irqs);
	return o;
}

void qp_measured_free(struct qp_measured *m)
{
	for (size_t i = 0; i < m->n_threads; i++) {
		free(m->threads[i].name);
		qp_cpulist_free(&m->threads[i].allowed);
	}
	free(m->threads);
	free(m->pages);
	for (size_t i = 0; i < m->n_irqs; i++) {
		free(m->irqs[i].name);
		qp_cpulist_free(&m->irqs[i].affinity);
	}
	free(m->irqs);
	memset(m, 0, sizeof(*m));
}
