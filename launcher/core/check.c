/* `qpass check`, the pure part: the target (which functions, which node) and the
 * evaluation that runs the rules in order. The rules are in check_host.c and
 * check_vm.c, what they say of the kernel command line in check_fix.c; nothing here
 * reads the host (the probe is probe/checkprobe.c), and the renderings are
 * cli/check_show.c. */
#include "core/check.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/check-int.h"

const char *qp_check_status_name(enum qp_check_status s)
{
	static const char *const names[] = { "OK", "SKIP", "WARN", "FAIL" };
	return names[s];
}

/* --- the target ------------------------------------------------------------------ */

static void add_fn(struct qp_check_target *t, const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < t->n_fns; i++)
		if (!qp_pci_addr_cmp(&t->fns[i], a))
			return;
	t->fns = qp_xrealloc(t->fns, (t->n_fns + 1) * sizeof(*t->fns));
	t->fns[t->n_fns++] = *a;
}

/* The functions a selector names (qp_host_select), each once in the target. */
static size_t add_selected(struct qp_check_target *t, const struct qp_host *h,
			   const struct qp_pci_addr *a, bool all_functions)
{
	struct qp_pci_addr *sel = NULL;
	size_t n = 0;
	qp_host_select(h, a, all_functions, &sel, &n);
	for (size_t i = 0; i < n; i++)
		add_fn(t, &sel[i]);
	free(sel);
	return n;
}

/* The node of the functions when they agree on one, else -1. */
static int fns_node(const struct qp_host *h, const struct qp_check_target *t)
{
	int node = -1;
	for (size_t i = 0; i < t->n_fns; i++) {
		const struct qp_pci_dev *d = qp_host_dev(h, &t->fns[i]);
		if (!d || d->numa_node < 0)
			continue;
		if (node >= 0 && d->numa_node != node)
			return -1;
		node = d->numa_node;
	}
	if (node < 0 && h->n_nodes)
		node = h->nodes[0].id;
	return node;
}

int qp_check_target_profile(const struct qp_profile *p, const struct qp_host *h,
			    const struct qp_ledger *ledger, struct qp_check_target *t)
{
	memset(t, 0, sizeof(*t));
	t->what = p->file;
	t->profile = p;
	for (size_t i = 0; i < p->n_pt; i++)
		add_selected(t, h, &p->pt[i].addr, p->pt[i].all_functions);
	t->planned = qp_plan_make_with(p, h, ledger, &t->plan, &t->plan_err) == 0;
	/* The GPUs "gpus" would get now are checked as if named. */
	for (size_t i = 0; t->planned && i < t->plan.n_devs; i++)
		if (t->plan.devs[i].picked)
			add_selected(t, h, &t->plan.devs[i].host, false);
	if (t->planned)
		t->node = t->plan.numa_node;
	else if (p->numa >= 0 && qp_host_node(h, p->numa))
		t->node = p->numa;
	else
		t->node = fns_node(h, t);
	return 0;
}

int qp_check_target_device(const char *selector, const struct qp_host *h,
			   struct qp_check_target *t, struct qp_err **err)
{
	memset(t, 0, sizeof(*t));
	struct qp_pci_addr a;
	bool has_func;
	if (qp_parse_pci_selector(selector, &a, &has_func, err) < 0)
		return qp_err_prefix(err, "--device");
	if (!add_selected(t, h, &a, !has_func)) {
		qp_err_set(err, 0, "--device %s: there is no such device on this host (or only "
			   "a bridge, which is never passed through)", selector);
		return qp_err_hint(err, "`qpass list --all` shows the host's devices");
	}
	t->what = t->what_buf = qp_xasprintf("--device %s", selector);
	t->node = fns_node(h, t);
	return 0;
}

void qp_check_target_free(struct qp_check_target *t)
{
	if (t->planned)
		qp_plan_free(&t->plan);
	qp_err_free(t->plan_err);
	free(t->fns);
	free(t->what_buf);
	memset(t, 0, sizeof(*t));
}

/* --- the whole report ------------------------------------------------------------ */

void qp_check_eval(const struct qp_host *h, const struct qp_check_target *t,
		   const struct qp_check_facts *f, struct qp_check_report *out)
{
	memset(out, 0, sizeof(*out));
	qp_check_cpu(h, f, out);
	qp_check_iommu(h, f, out);
	qp_check_irq_remap(h, f, out);
	qp_check_modules(h, out);
	qp_check_kvm(h, f, out);
	qp_check_qemu(f, out);
	qp_check_ovmf(t, f, out);
	qp_check_files(t, f, out);
	qp_check_memlock(t, f, out);
	if (!t->profile || !t->profile->hugepage_kb)
		qp_check_hugepages(h, t, f, out);
	if (!t->what)
		return;
	out->vm_title = qp_xasprintf("%s %s", t->profile ? "VM" : "Devices", t->what);
	size_t fails_before = out->n[QP_CHECK_FAIL];
	if (t->n_fns) {
		qp_check_groups(h, t, out);
		qp_check_functions(h, t, f, out);
	}
	qp_check_node(h, t, out);
	if (t->profile && t->profile->hugepage_kb)
		qp_check_hugepages(h, t, f, out);
	qp_check_plan(h, t, fails_before, out);
}

void qp_check_report_free(struct qp_check_report *r)
{
	for (size_t i = 0; i < r->n_rows; i++) {
		free(r->rows[i].subject);
		free(r->rows[i].detail);
		free(r->rows[i].fix);
	}
	free(r->rows);
	free(r->vm_title);
	memset(r, 0, sizeof(*r));
}
