/* `qpass check`, the pure part: the target (which functions, which node), the shared
 * pieces of the rules, and the evaluation that runs them in order. The rules are in
 * check_host.c and check_vm.c; nothing here reads the host (the probe is
 * probe/checkprobe.c), and the renderings are cli/check_show.c. */
#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sysparse.h"
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
			    struct qp_check_target *t)
{
	memset(t, 0, sizeof(*t));
	t->what = p->file;
	t->profile = p;
	for (size_t i = 0; i < p->n_pt; i++)
		add_selected(t, h, &p->pt[i].addr, p->pt[i].all_functions);
	t->planned = qp_plan_make(p, h, &t->plan, &t->plan_err) == 0;
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

/* --- /proc/iomem ---------------------------------------------------------------- */

static const char *const boot_fbs[] = { "efifb", "simpledrm", "simple-framebuffer",
					"vesafb", "BOOTFB", NULL };

const char *qp_check_iomem_fb(const char *iomem, uint64_t start, uint64_t end,
			      uint64_t *fb_start, uint64_t *fb_end)
{
	for (const char *line = iomem; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		qp_autofree char *l = qp_xstrndup(line, len);
		line = nl ? nl + 1 : NULL;
		unsigned long long s, e;
		int name_at = 0;
		if (sscanf(l, " %llx-%llx : %n", &s, &e, &name_at) != 2 || !name_at)
			continue;
		const char *name = l + name_at;
		for (const char *const *fb = boot_fbs; *fb; fb++) {
			if (strcmp(name, *fb))
				continue;
			/* Without root, the kernel shows every range as 0-0. */
			if ((s || e) && s <= end && e >= start) {
				*fb_start = s;
				*fb_end = e;
				return *fb;
			}
		}
	}
	return NULL;
}

/* --- what the rules share ------------------------------------------------------- */

static bool os_is(const struct qp_check_facts *f, const char *const *ids)
{
	if (!f->os_ids)
		return false;
	for (; *ids; ids++) {
		size_t n = strlen(*ids);
		for (const char *p = f->os_ids; (p = strstr(p, *ids)); p += n)
			if ((p == f->os_ids || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
				return true;
	}
	return false;
}

static const char *const debian_like[] = { "debian", "ubuntu", NULL };
static const char *const rhel_like[] = { "rhel", "centos", "fedora", NULL };

static const char *grub_update(const struct qp_check_facts *f)
{
	if (os_is(f, debian_like))
		return "update-grub";
	if (os_is(f, rhel_like))
		return "grub2-mkconfig -o /boot/grub2/grub.cfg";
	return "update-grub (Debian, Ubuntu) or grub2-mkconfig -o /boot/grub2/grub.cfg "
	       "(CentOS, RHEL, Fedora)";
}

/* The GRUB_CMDLINE_LINUX line with add appended and every word starting with drop
 * removed. */
static char *grub_edit(const char *line, const char *add, const char *const *drop)
{
	const char *eq = strchr(line, '=');
	if (!eq)
		return qp_xasprintf("GRUB_CMDLINE_LINUX=\"%s\"", add ? add : "");
	char quote = (eq[1] == '"' || eq[1] == '\'') ? eq[1] : 0;
	const char *v = eq + 1 + (quote != 0);
	size_t vlen = strlen(v);
	if (quote && vlen && v[vlen - 1] == quote)
		vlen--;
	qp_autofree char *value = qp_xstrndup(v, vlen);
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "GRUB_CMDLINE_LINUX=\"");
	bool first = true;
	for (char *save = NULL, *w = strtok_r(value, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		bool dropped = false;
		for (const char *const *d = drop; d && *d; d++)
			dropped = dropped || !strncmp(w, *d, strlen(*d));
		if (dropped)
			continue;
		qp_buf_addf(&b, "%s%s", first ? "" : " ", w);
		first = false;
	}
	if (add)
		qp_buf_addf(&b, "%s%s", first ? "" : " ", add);
	qp_buf_addc(&b, '"');
	return qp_buf_steal(&b);
}

/* The first word of the command line that starts with prefix, or NULL. */
static char *cmdline_word(const char *cmdline, const char *prefix)
{
	qp_autofree char *copy = qp_xstrdup(cmdline ? cmdline : "");
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
		if (!strncmp(w, prefix, strlen(prefix)))
			return qp_xstrdup(w);
	return NULL;
}

char *qp_check_cmdline_fix(const struct qp_host *h, const struct qp_check_facts *f,
			   const char *add, const char *const *drop)
{
	if (!f->grub_file) {
		struct qp_buf b = { 0 };
		if (add)
			qp_buf_addf(&b, "add %s to ", add);
		struct qp_buf rm = { 0 };
		for (const char *const *d = drop; d && *d; d++) {
			qp_autofree char *w = cmdline_word(h->cmdline, *d);
			if (w)
				qp_buf_addf(&rm, "%s%s", rm.len ? " and " : "", w);
		}
		if (rm.len)
			qp_buf_addf(&b, "%sremove %s from ", add ? "and " : "", rm.s);
		qp_buf_free(&rm);
		qp_buf_add(&b, "the kernel command line in your boot loader's configuration "
			       "(this host has no /etc/default/grub); then reboot");
		return qp_buf_steal(&b);
	}
	const char *base = f->grub_line ? f->grub_line : "GRUB_CMDLINE_LINUX=\"\"";
	qp_autofree char *edited = grub_edit(base, add, drop);
	if (f->grub_line)
		return qp_xasprintf("in /etc/default/grub, line %d, make it:\n    %s\nthen run "
				    "%s, and reboot", f->grub_lineno, edited, grub_update(f));
	return qp_xasprintf("add this line to /etc/default/grub:\n    %s\nthen run %s, and "
			    "reboot", edited, grub_update(f));
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
