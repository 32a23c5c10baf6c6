/* `qpass check`: the pure part. The target (which functions, which node) and the
 * findings are computed from the host model and the probe's facts; nothing here reads
 * the host. The probe is check_probe.c. */
#include "core/check.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "core/advice.h"
#include "base/sysparse.h"
#include "base/util.h"

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

/* --- pure parsers ---------------------------------------------------------------- */

int qp_check_parse_interrupts(const char *text)
{
	/* Each line ends with the chip name, then the hwirq and trigger, then the handler:
	 * "  24:  0  0  IR-PCI-MSI 327680-edge  xhci_hcd". Remapped chips are named IR-*. */
	for (const char *p = text; (p = strstr(p, "IR-")); p += 3)
		if (p == text || p[-1] == ' ' || p[-1] == '\t')
			return 1;
	return 0;
}

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

char *qp_check_parse_qemu_version(const char *text)
{
	const char *p = strstr(text, "version ");
	if (!p)
		return NULL;
	p += strlen("version ");
	size_t n = strspn(p, "0123456789.");
	return n ? qp_xstrndup(p, n) : NULL;
}

/* --- the findings ---------------------------------------------------------------- */

static void row(struct qp_check_report *r, const char *id, const char *subject,
		enum qp_check_status st, const char *title, char *detail, char *fix)
{
	r->rows = qp_xrealloc(r->rows, (r->n_rows + 1) * sizeof(*r->rows));
	r->rows[r->n_rows++] = (struct qp_check_row){
		.id = id, .subject = qp_xstrdup(subject), .status = st, .title = title,
		.detail = detail, .fix = fix,
	};
	r->n[st]++;
}

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

/* How to change the kernel command line on this host: the file and line to edit, the
 * command that makes the boot loader's configuration, the reboot. */
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

static char *cmdline_fix(const struct qp_host *h, const struct qp_check_facts *f,
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

static const char *const no_drop[] = { NULL };

static bool intel_cpu(const struct qp_host *h)
{
	return h->cpu_vendor && !strcmp(h->cpu_vendor, "GenuineIntel");
}

static void check_cpu(const struct qp_host *h, const struct qp_check_facts *f,
		      struct qp_check_report *r)
{
	if (h->cpu_vmx || h->cpu_svm) {
		row(r, "cpu", "host", QP_CHECK_OK, "CPU virtualization",
		    qp_xasprintf("%s in /proc/cpuinfo", h->cpu_vmx ? "vmx (Intel VT-x)"
								     : "svm (AMD-V)"), NULL);
		return;
	}
	if (f->kvm > 0) {
		row(r, "cpu", "host", QP_CHECK_WARN, "CPU virtualization",
		    qp_xstrdup("no vmx or svm flag in /proc/cpuinfo, yet /dev/kvm answers: this "
			       "is a paravirtual or nested KVM, where a real passthrough needs "
			       "the host's own VT-x/AMD-V and VT-d/AMD-Vi"),
		    qp_xstrdup("run qpass on the physical host, or a VM given the CPU's "
			       "virtualization extensions and an emulated IOMMU"));
		return;
	}
	row(r, "cpu", "host", QP_CHECK_FAIL, "CPU virtualization",
	    qp_xstrdup("no vmx or svm flag in /proc/cpuinfo: the CPU's virtualization "
		       "extensions are off or missing"),
	    qp_xasprintf("enable %s in the firmware (BIOS/UEFI) setup, then power-cycle",
			 intel_cpu(h) ? "Intel Virtualization Technology (VT-x)"
				      : h->cpu_vendor ? "SVM Mode (AMD-V)"
						      : "VT-x (Intel) or SVM (AMD)"));
}

static void check_iommu(const struct qp_host *h, const struct qp_check_facts *f,
			struct qp_check_report *r)
{
	const char *table = f->acpi_dmar ? "DMAR" : f->acpi_ivrs ? "IVRS" : NULL;
	if (qp_host_iommu_on(h)) {
		row(r, "iommu", "host", QP_CHECK_OK, "IOMMU",
		    qp_xasprintf("on: %zu IOMMU groups%s%s%s", h->n_groups,
				 table ? " (ACPI " : "", table ? table : "", table ? ")" : ""),
		    NULL);
		return;
	}
	const char *param = qp_advice_iommu_param(h);
	qp_autofree char *v_intel = qp_cmdline_get(h->cmdline ? h->cmdline : "", "intel_iommu");
	qp_autofree char *v_amd = qp_cmdline_get(h->cmdline ? h->cmdline : "", "amd_iommu");
	qp_autofree char *v_iommu = qp_cmdline_get(h->cmdline ? h->cmdline : "", "iommu");
	bool asked = (v_intel && !strncmp(v_intel, "on", 2)) || (v_amd && strcmp(v_amd, "off"));
	/* Words that turn it off outright. */
	bool turned_off = (v_intel && !strcmp(v_intel, "off")) ||
			  (v_amd && !strcmp(v_amd, "off")) || (v_iommu && !strcmp(v_iommu, "off"));
	static const char *const off_words[] = { "intel_iommu=off", "amd_iommu=off",
						 "iommu=off", NULL };
	struct qp_buf d = { 0 }, fix = { 0 };
	qp_buf_add(&d, "off: the kernel made no IOMMU groups (/sys/kernel/iommu_groups is "
		       "empty), so no device can be passed through");
	if (!table) {
		qp_buf_add(&d, "; the firmware offers no IOMMU (no ACPI DMAR or IVRS table)");
		qp_buf_addf(&fix, "enable %s in the firmware (BIOS/UEFI) setup",
			    intel_cpu(h) ? "VT-d (Intel Virtualization Technology for Directed "
					   "I/O)" : "the IOMMU (AMD-Vi)");
	} else {
		qp_buf_addf(&d, "; the firmware offers one (ACPI %s table)", table);
	}
	if (!asked || turned_off) {
		if (turned_off)
			qp_buf_add(&d, "; the kernel command line turns it off");
		else
			qp_buf_addf(&d, "; the kernel command line lacks %s", param);
		qp_autofree char *c = cmdline_fix(h, f, strchr(param, ' ') ? "intel_iommu=on" : param,
						  off_words);
		qp_buf_addf(&fix, "%s%s", fix.len ? ";\n" : "", c);
	} else if (table) {
		qp_buf_add(&d, ", and the command line asks for it, yet the kernel did not turn "
			       "it on");
		qp_buf_add(&fix, "see why: dmesg | grep -i -e DMAR -e IOMMU -e AMD-Vi");
	} else if (!fix.len) {
		qp_buf_add(&fix, "enable the IOMMU in the firmware setup");
	}
	if (!table && asked)
		qp_buf_add(&fix, ", then reboot");
	row(r, "iommu", "host", QP_CHECK_FAIL, "IOMMU", qp_buf_steal(&d), qp_buf_steal(&fix));
}

static void check_irq_remap(const struct qp_host *h, const struct qp_check_facts *f,
			    struct qp_check_report *r)
{
	const char *title = "interrupt remapping";
	if (!qp_host_iommu_on(h)) {
		row(r, "irq-remap", "host", QP_CHECK_SKIP, title,
		    qp_xstrdup("needs the IOMMU on first"), NULL);
		return;
	}
	if (f->unsafe_interrupts == 1) {
		row(r, "irq-remap", "host", QP_CHECK_WARN, title,
		    qp_xstrdup("SECURITY HOLE: vfio_iommu_type1.allow_unsafe_interrupts=Y is in "
			       "use: VFIO accepts devices without interrupt remapping, and a "
			       "guest can then forge MSIs (interrupts) that reach the host"),
		    qp_xasprintf("remove allow_unsafe_interrupts from /etc/modprobe.d/*.conf and "
				 "the kernel command line%s, and enable interrupt remapping in "
				 "the firmware (x2APIC / VT-d interrupt remapping); reboot",
				 f->irq_remap == 1 ? " (interrupt remapping is already on here)"
						   : ""));
		return;
	}
	if (f->irq_remap == 1) {
		row(r, "irq-remap", "host", QP_CHECK_OK, title,
		    qp_xstrdup("on (IR- interrupt chips in /proc/interrupts)"), NULL);
		return;
	}
	if (f->irq_remap < 0) {
		row(r, "irq-remap", "host", QP_CHECK_WARN, title,
		    qp_xstrdup("unknown: /proc/interrupts could not be read"),
		    qp_xstrdup("look for IR-PCI-MSI in /proc/interrupts"));
		return;
	}
	const char *cmd = h->cmdline ? h->cmdline : "";
	qp_autofree char *intremap = qp_cmdline_get(cmd, "intremap");
	qp_autofree char *nointremap = qp_cmdline_get(cmd, "nointremap");
	bool off_by_cmdline = (intremap && !strncmp(intremap, "off", 3)) || nointremap;
	static const char *const drop[] = { "intremap=", "nointremap", NULL };
	qp_autofree char *c = off_by_cmdline ? cmdline_fix(h, f, NULL, drop) : NULL;
	row(r, "irq-remap", "host", QP_CHECK_FAIL, title,
	    qp_xasprintf("off%s: vfio_iommu_type1 refuses devices then (QEMU: \"Failed to set "
			 "iommu for container: Operation not permitted\")",
			 off_by_cmdline ? " (the kernel command line turns it off)" : ""),
	    off_by_cmdline
		    ? qp_xasprintf("%s", c)
		    : qp_xstrdup("enable interrupt remapping in the firmware setup (with VT-d "
				 "or AMD-Vi; x2APIC mode); only as a last resort, knowing it "
				 "is a security hole:\n    echo 'options vfio_iommu_type1 "
				 "allow_unsafe_interrupts=1' > /etc/modprobe.d/vfio.conf"));
}

static void check_modules(const struct qp_host *h, struct qp_check_report *r)
{
	static const enum qp_module need[] = { QP_MOD_VFIO, QP_MOD_VFIO_IOMMU_TYPE1,
					       QP_MOD_VFIO_PCI };
	struct qp_buf have = { 0 }, missing = { 0 }, conf = { 0 };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		const char *name = qp_module_name(need[i]);
		enum qp_module_state s = h->modules[need[i]];
		struct qp_buf *b = s == QP_MOD_ABSENT ? &missing : &have;
		qp_buf_addf(b, "%s%s%s", b->len ? ", " : "", name,
			    s == QP_MOD_BUILTIN ? " (built in)" : "");
		qp_buf_addf(&conf, "%s\\n", name);
	}
	if (!missing.len) {
		row(r, "vfio", "host", QP_CHECK_OK, "VFIO modules",
		    qp_xasprintf("%s loaded", have.s), NULL);
		qp_buf_free(&have);
		qp_buf_free(&missing);
		qp_buf_free(&conf);
		return;
	}
	row(r, "vfio", "host", QP_CHECK_WARN, "VFIO modules",
	    qp_xasprintf("%s not loaded (qpass up and bind load vfio-pci when they need it)",
			 missing.s),
	    qp_xasprintf("load them now:\n    modprobe -a vfio vfio_iommu_type1 vfio_pci\nand "
			 "at every boot (as the seed does):\n    printf '%s' > "
			 "/etc/modules-load.d/vfio.conf", conf.s));
	qp_buf_free(&have);
	qp_buf_free(&missing);
	qp_buf_free(&conf);
}

static void check_kvm(const struct qp_host *h, const struct qp_check_facts *f,
		      struct qp_check_report *r)
{
	const char *title = "KVM";
	const char *vendor_mod = intel_cpu(h) ? "kvm_intel" : h->cpu_svm ? "kvm_amd"
					    : h->cpu_vendor ? "kvm_amd" : "kvm_intel (or kvm_amd)";
	if (f->kvm > 0) {
		row(r, "kvm", "host", QP_CHECK_OK, title,
		    qp_xasprintf("/dev/kvm answers, API version %d", f->kvm), NULL);
		return;
	}
	if (f->kvm == 0) {
		row(r, "kvm", "host", QP_CHECK_OK, title,
		    qp_xstrdup("/dev/kvm is present (not a device node: not asked)"), NULL);
		return;
	}
	if (f->kvm == -ENOENT) {
		bool loaded = h->modules[QP_MOD_KVM_INTEL] != QP_MOD_ABSENT ||
			      h->modules[QP_MOD_KVM_AMD] != QP_MOD_ABSENT;
		row(r, "kvm", "host", QP_CHECK_FAIL, title,
		    qp_xasprintf("no /dev/kvm%s", loaded ? "" : ": no kvm_intel or kvm_amd "
								"module is loaded"),
		    loaded ? qp_xstrdup("the module is loaded but made no /dev/kvm: see dmesg | "
					"grep -i kvm (virtualization disabled in the firmware?)")
			   : qp_xasprintf("modprobe %s; if it fails, enable the CPU's "
					  "virtualization in the firmware setup", vendor_mod));
		return;
	}
	if (f->kvm == -EACCES || f->kvm == -EPERM) {
		row(r, "kvm", "host", QP_CHECK_FAIL, title,
		    qp_xstrdup("/dev/kvm is there, but this user may not open it"),
		    qp_xstrdup("run qpass as root (it drops to the profile's run_as for QEMU), or "
			       "add the user to /dev/kvm's group: usermod -aG kvm USER"));
		return;
	}
	row(r, "kvm", "host", QP_CHECK_FAIL, title,
	    qp_xasprintf("/dev/kvm cannot be used: %s", strerror(-f->kvm)),
	    qp_xstrdup("see dmesg | grep -i kvm"));
}

static void check_qemu(const struct qp_check_facts *f, struct qp_check_report *r)
{
	const char *title = "QEMU";
	const char *install = "apt-get install qemu-system-x86 (Debian, Ubuntu), dnf install "
			      "qemu-kvm (RHEL, Fedora), yum install qemu-kvm-ev (CentOS 7, as "
			      "the seed)";
	if (!f->qemu_path) {
		row(r, "qemu", "host", QP_CHECK_FAIL, title,
		    qp_xasprintf("%s is not in PATH", f->qemu),
		    qp_xasprintf("install it: %s; or name the binary with \"qemu\" in the "
				 "profile", install));
		return;
	}
	if (f->qemu_error) {
		row(r, "qemu", "host", QP_CHECK_FAIL, title,
		    qp_xasprintf("%s: %s", f->qemu_path, f->qemu_error),
		    qp_xasprintf("run %s -version to see why; reinstall it: %s", f->qemu_path,
				 install));
		return;
	}
	if (f->qemu_vfio == 0) {
		row(r, "qemu", "host", QP_CHECK_FAIL, title,
		    qp_xasprintf("%s (version %s) has no vfio-pci device (its -device help does "
				 "not list it)", f->qemu_path,
				 f->qemu_version ? f->qemu_version : "unknown"),
		    qp_xasprintf("use a QEMU built with VFIO: %s", install));
		return;
	}
	row(r, "qemu", "host", QP_CHECK_OK, title,
	    qp_xasprintf("%s, version %s, has vfio-pci", f->qemu_path,
			 f->qemu_version ? f->qemu_version : "unknown"),
	    NULL);
}

static void check_ovmf(const struct qp_check_target *t, const struct qp_check_facts *f,
		       struct qp_check_report *r)
{
	const struct qp_profile *p = t->profile;
	if (!p || p->firmware != QP_FW_OVMF)
		return;
	if (!f->ovmf_code && !f->ovmf_vars) {
		row(r, "ovmf", "host", QP_CHECK_OK, "OVMF",
		    qp_xasprintf("%s and %s", p->ovmf_code, p->ovmf_vars), NULL);
		return;
	}
	struct qp_buf d = { 0 };
	if (f->ovmf_code)
		qp_buf_addf(&d, "%s: %s", p->ovmf_code, strerror(f->ovmf_code));
	if (f->ovmf_vars)
		qp_buf_addf(&d, "%s%s: %s", d.len ? "; " : "", p->ovmf_vars,
			    strerror(f->ovmf_vars));
	row(r, "ovmf", "host", QP_CHECK_FAIL, "OVMF", qp_buf_steal(&d),
	    qp_xstrdup("install the UEFI firmware: apt-get install ovmf (Debian, Ubuntu), dnf "
		       "install edk2-ovmf (RHEL, Fedora); or set \"ovmf\": {\"code\": ..., "
		       "\"vars\": ...} in the profile"));
}

static const char *page_size(uint64_t kb)
{
	return kb == 2048 ? "2M" : kb == 1048576 ? "1G" : "?";
}

static void check_hugepages(const struct qp_host *h, const struct qp_check_target *t,
			    const struct qp_check_facts *f, struct qp_check_report *r)
{
	const struct qp_profile *p = t->profile;
	if (p && p->hugepage_kb && t->node >= 0) {
		const struct qp_numa_node *nd = qp_host_node(h, t->node);
		const struct qp_hugepages *hp = nd ? qp_node_hugepages(nd, p->hugepage_kb) : NULL;
		uint64_t free_pages = hp ? hp->free : 0, total = hp ? hp->total : 0;
		uint64_t need = p->memory_mib * 1024 / p->hugepage_kb;
		qp_autofree char *subject = qp_xasprintf("node %d", t->node);
		const char *sz = page_size(p->hugepage_kb);
		if (free_pages < need) {
			row(r, "hugepages", subject, QP_CHECK_FAIL, "hugepages",
			    qp_xasprintf("%" PRIu64 " of %" PRIu64 " %s hugepages free; the VM's "
					 "%" PRIu64 " MiB needs %" PRIu64, free_pages, total, sz,
					 p->memory_mib, need),
			    qp_xasprintf("reserve them now:\n    echo %" PRIu64 " > /sys/devices/system/"
					 "node/node%d/hugepages/hugepages-%" PRIu64 "kB/"
					 "nr_hugepages\n(at boot: hugepagesz=%s hugepages=N on the "
					 "kernel command line)",
					 total + need - free_pages, t->node, p->hugepage_kb, sz));
		} else {
			row(r, "hugepages", subject, QP_CHECK_OK, "hugepages",
			    qp_xasprintf("%" PRIu64 " of %" PRIu64 " %s hugepages free; the VM "
					 "needs %" PRIu64, free_pages, total, sz, need), NULL);
		}
		if (!f->hugetlbfs)
			row(r, "hugepages-mount", p->hugepage_path, QP_CHECK_FAIL, "hugetlbfs",
			    qp_xasprintf("%s is not a hugetlbfs mount", p->hugepage_path),
			    qp_xasprintf("mount it (and add it to /etc/fstab for every boot):\n"
					 "    mkdir -p %s && mount -t hugetlbfs -o pagesize=%s none %s",
					 p->hugepage_path, sz, p->hugepage_path));
		return;
	}
	/* No VM asks: say what each node has. */
	struct qp_buf d = { 0 };
	for (size_t i = 0; i < h->n_nodes; i++) {
		const struct qp_numa_node *nd = &h->nodes[i];
		qp_buf_addf(&d, "%snode %d:", i ? "; " : "", nd->id);
		for (size_t j = 0; j < nd->n_hugepages; j++)
			qp_buf_addf(&d, "%s %s %" PRIu64 " free of %" PRIu64, j ? "," : "",
				    page_size(nd->hugepages[j].size_kb), nd->hugepages[j].free,
				    nd->hugepages[j].total);
		if (!nd->n_hugepages)
			qp_buf_add(&d, " none");
	}
	if (!d.len)
		qp_buf_add(&d, "no NUMA nodes");
	row(r, "hugepages", "host", QP_CHECK_OK, "hugepages", qp_buf_steal(&d), NULL);
}

static char *mib(uint64_t bytes)
{
	if (bytes == UINT64_MAX)
		return qp_xstrdup("unlimited");
	if (bytes >= (1ull << 30) && !(bytes % (1ull << 30)))
		return qp_xasprintf("%" PRIu64 " GiB", bytes >> 30);
	return qp_xasprintf("%" PRIu64 " MiB", bytes >> 20);
}

static void check_memlock(const struct qp_check_target *t, const struct qp_check_facts *f,
			  struct qp_check_report *r)
{
	const char *title = "memlock limit";
	qp_autofree char *have = mib(f->memlock_max);
	uint64_t need = 0;
	if (t->planned)
		need = t->plan.memlock_bytes;
	else if (t->profile)
		need = (t->profile->memory_mib << 20) + ((uint64_t)t->n_fns << 30);
	if (t->n_fns && need && f->memlock_max < need && !f->cap_sys_resource) {
		qp_autofree char *want = mib(need);
		row(r, "memlock", "host", QP_CHECK_FAIL, title,
		    qp_xasprintf("the hard limit is %s; VFIO pins the VM's memory, %s, and this "
				 "process may not raise it (no CAP_SYS_RESOURCE)", have, want),
		    qp_xasprintf("run qpass up as root with CAP_SYS_RESOURCE (a container may "
				 "drop it), or raise the hard limit: LimitMEMLOCK=infinity in a "
				 "systemd unit, or '* hard memlock unlimited' in "
				 "/etc/security/limits.conf"));
		return;
	}
	if (f->memlock_max == UINT64_MAX || f->cap_sys_resource) {
		row(r, "memlock", "host", QP_CHECK_OK, title,
		    qp_xasprintf("hard limit %s%s", have,
				 f->memlock_max == UINT64_MAX ? ""
				 : "; qpass up raises it for VFIO (CAP_SYS_RESOURCE)"), NULL);
		return;
	}
	if (t->n_fns && need) {
		qp_autofree char *want = mib(need);
		row(r, "memlock", "host", QP_CHECK_OK, title,
		    qp_xasprintf("hard limit %s, enough for the %s VFIO pins", have, want), NULL);
		return;
	}
	row(r, "memlock", "host", QP_CHECK_WARN, title,
	    qp_xasprintf("hard limit %s, and this process may not raise it (no "
			 "CAP_SYS_RESOURCE): VFIO pins all of a VM's memory", have),
	    qp_xstrdup("run qpass up as root with CAP_SYS_RESOURCE, or raise the hard limit: "
		       "LimitMEMLOCK=infinity in a systemd unit, or '* hard memlock unlimited' in "
		       "/etc/security/limits.conf"));
}

/* --- per VM ---------------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static void check_groups(const struct qp_host *h, const struct qp_check_target *t,
			 struct qp_check_report *r)
{
	if (!qp_host_iommu_on(h)) {
		row(r, "group", "groups", QP_CHECK_SKIP, "IOMMU groups",
		    qp_xstrdup("no groups while the IOMMU is off"), NULL);
		return;
	}
	int *groups = qp_xcalloc(t->n_fns ? t->n_fns : 1, sizeof(int));
	size_t n = 0;
	for (size_t i = 0; i < t->n_fns; i++) {
		const struct qp_pci_dev *d = qp_host_dev(h, &t->fns[i]);
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&t->fns[i], a);
		if (d->iommu_group < 0) {
			row(r, "group", a, QP_CHECK_FAIL, "IOMMU group",
			    qp_xstrdup("in no IOMMU group: it cannot be passed through"),
			    qp_xstrdup("the firmware's IOMMU tables leave it out; pass another "
				       "device"));
			continue;
		}
		bool seen = false;
		for (size_t g = 0; g < n; g++)
			seen = seen || groups[g] == d->iommu_group;
		if (!seen)
			groups[n++] = d->iommu_group;
	}
	qsort(groups, n, sizeof(int), cmp_int);
	for (size_t g = 0; g < n; g++) {
		qp_autofree char *subject = qp_xasprintf("group %d", groups[g]);
		struct qp_err *err = NULL;
		if (qp_plan_check_groups(t->what, h, &groups[g], 1, t->fns, t->n_fns, &err) < 0) {
			/* The planner's message, without its "FILE: " */
			const char *m = err->msg;
			size_t wl = strlen(t->what);
			if (!strncmp(m, t->what, wl) && !strncmp(m + wl, ": ", 2))
				m += wl + 2;
			row(r, "group", subject, QP_CHECK_FAIL, "IOMMU group", qp_xstrdup(m),
			    err->hint ? qp_xstrdup(err->hint) : NULL);
			qp_err_free(err);
			continue;
		}
		const struct qp_iommu_group *grp = qp_host_group(h, groups[g]);
		struct qp_buf d = { 0 };
		qp_buf_add(&d, "viable:");
		for (size_t m = 0; grp && m < grp->n_members; m++) {
			char a[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&grp->members[m], a);
			const struct qp_pci_dev *dev = qp_host_dev(h, &grp->members[m]);
			bool in = false;
			for (size_t i = 0; i < t->n_fns; i++)
				in = in || !qp_pci_addr_cmp(&t->fns[i], &grp->members[m]);
			qp_buf_addf(&d, " %s %s%s", a,
				    in ? "(VM)" : dev && dev->header_type == QP_HDR_BRIDGE ? "(bridge)"
				    : "(no host driver)", m + 1 < grp->n_members ? "," : "");
		}
		row(r, "group", subject, QP_CHECK_OK, "IOMMU group", qp_buf_steal(&d), NULL);
	}
	free(groups);
}

static const struct qp_check_dev *probe_dev(const struct qp_check_facts *f,
					    const struct qp_pci_addr *a)
{
	for (size_t i = 0; i < f->n_devs; i++)
		if (!qp_pci_addr_cmp(&f->devs[i].addr, a))
			return &f->devs[i];
	return NULL;
}

static void check_functions(const struct qp_host *h, const struct qp_check_target *t,
			    const struct qp_check_facts *f, struct qp_check_report *r)
{
	/* Since Linux 5.15 a device has a reset_method file exactly when the kernel can
	 * reset it: on such a kernel (some device has the file) a missing one says "none". */
	bool kernel_shows_resets = false;
	for (size_t i = 0; i < h->n_devs; i++)
		kernel_shows_resets = kernel_shows_resets || h->devs[i].reset_methods;
	for (size_t i = 0; i < t->n_fns; i++) {
		const struct qp_pci_dev *d = qp_host_dev(h, &t->fns[i]);
		const struct qp_check_dev *pd = probe_dev(f, &t->fns[i]);
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&d->addr, a);
		bool fn_ok = true;

		/* A boot framebuffer in one of its BARs. */
		for (int b = 0; pd && qp_pci_is_display(d) && b < 6; b++) {
			uint64_t s, e;
			const char *fb = pd->bar_end[b] && f->iomem
						 ? qp_check_iomem_fb(f->iomem, pd->bar_start[b],
								     pd->bar_end[b], &s, &e)
						 : NULL;
			if (!fb)
				continue;
			const char *param = !strcmp(fb, "efifb") ? "video=efifb:off"
					    : !strcmp(fb, "vesafb") ? "video=vesafb:off"
					    : "initcall_blacklist=sysfb_init";
			qp_autofree char *c = cmdline_fix(h, f, param, no_drop);
			row(r, "framebuffer", a, QP_CHECK_WARN, "boot framebuffer",
			    qp_xasprintf("%s owns %" PRIx64 "-%" PRIx64 " in BAR %d (/proc/iomem): "
					 "QEMU cannot map that part of the GPU (\"BAR %d: can't "
					 "reserve\"), and the guest's driver fails on it", fb, s, e,
					 b, b),
			    qp_xasprintf("keep the host's firmware console off this GPU; %s", c));
			fn_ok = false;
			break;
		}
		if (pd && pd->holders && (!d->driver || strcmp(d->driver, "vfio-pci"))) {
			row(r, "holders", a, QP_CHECK_FAIL, "in use",
			    qp_xasprintf("held open by %s: unbinding its %s driver would hang",
					 pd->holders, d->driver ? d->driver : "host"),
			    qp_xstrdup("stop them first (a display manager: systemctl stop "
				       "display-manager; nvidia-persistenced: systemctl stop "
				       "nvidia-persistenced)"));
			fn_ok = false;
		}
		bool no_reset = d->reset_methods ? !d->reset_methods[0] : kernel_shows_resets;
		/* A function without a reset of its own is reset with its slot when another
		 * function of the slot can be (VFIO's hot reset takes them together). */
		const struct qp_pci_dev *slot_reset = NULL;
		for (size_t k = 0; no_reset && !slot_reset && k < t->n_fns; k++) {
			const struct qp_pci_dev *o = qp_host_dev(h, &t->fns[k]);
			if (o != d && qp_pci_same_slot(&o->addr, &d->addr) && o->reset_methods &&
			    o->reset_methods[0])
				slot_reset = o;
		}
		if (no_reset && !slot_reset && d->header_type != QP_HDR_BRIDGE) {
			row(r, "reset", a, QP_CHECK_WARN, "reset",
			    qp_xasprintf("no reset method (%s): the device cannot be reset between "
					 "VM runs, and may come back broken to the next VM or to "
					 "the host (the reset bug)",
					 d->reset_methods ? "reset_method is empty"
							  : "the kernel gives it no reset_method"),
			    qp_xstrdup("nothing to set on the host side: if a guest fails on its "
				       "second start, power-cycle the host; for AMD GPUs the "
				       "vendor-reset module adds a reset"));
			fn_ok = false;
		}
		if (d->power_state && !strcmp(d->power_state, "D3cold")) {
			row(r, "power", a, QP_CHECK_WARN, "power state",
			    qp_xstrdup("in D3cold (powered off): devices that do not come back "
				       "from D3cold fail to start in the guest"),
			    qp_xasprintf("keep it powered:\n    echo 0 > /sys/bus/pci/devices/%s/"
					 "d3cold_allowed", a));
			fn_ok = false;
		}
		if (fn_ok) {
			struct qp_buf ok = { 0 };
			qp_buf_addf(&ok, "%s, driver %s", d->power_state ? d->power_state : "powered",
				    d->driver ? d->driver : "none");
			if (d->reset_methods && d->reset_methods[0]) {
				qp_buf_add(&ok, ", reset by");
				for (char **m = d->reset_methods; *m; m++)
					qp_buf_addf(&ok, " %s", *m);
			} else if (slot_reset) {
				char o[QP_PCI_ADDR_LEN];
				qp_pci_addr_fmt(&slot_reset->addr, o);
				qp_buf_addf(&ok, ", reset with its slot (%s: %s)", o,
					    slot_reset->reset_methods[0]);
			}
			qp_buf_add(&ok, ", not held, no boot framebuffer");
			row(r, "function", a, QP_CHECK_OK, "function", qp_buf_steal(&ok), NULL);
		}
	}
}

static void check_node(const struct qp_host *h, const struct qp_check_target *t,
		       struct qp_check_report *r)
{
	if (t->node < 0 || !qp_host_node(h, t->node)) {
		if (h->n_nodes && t->n_fns)
			row(r, "node", "node", QP_CHECK_FAIL, "NUMA node",
			    qp_xstrdup("the functions are on different NUMA nodes: no node is "
				       "local to all of them"),
			    qp_xstrdup("pass devices of one node per VM, or choose the node with "
				       "\"numa\" in the profile"));
		return;
	}
	const struct qp_numa_node *nd = qp_host_node(h, t->node);
	qp_autofree char *subject = qp_xasprintf("node %d", nd->id);
	size_t online = 0;
	for (size_t i = 0; i < h->n_cpus; i++)
		online += h->cpus[i].online && h->cpus[i].node == nd->id;
	const struct qp_profile *p = t->profile;
	uint64_t free_mib = nd->mem_free_kb / 1024, total_mib = nd->mem_total_kb / 1024;
	if (!p) {
		row(r, "node", subject, QP_CHECK_OK, "NUMA node",
		    qp_xasprintf("the device's node: %zu online CPUs, %" PRIu64 " of %" PRIu64
				 " MiB free", online, free_mib, total_mib), NULL);
		return;
	}
	if ((size_t)p->vcpus > online && !p->vcpu_pins) {
		row(r, "node", subject, QP_CHECK_FAIL, "NUMA node",
		    qp_xasprintf("%zu online CPUs; the VM wants %d vCPUs pinned 1:1 on it", online,
				 p->vcpus),
		    qp_xasprintf("lower \"vcpus\" in %s to %zu at most, or pin by hand with "
				 "\"vcpu_pins\"", p->file, online));
	} else if (p->memory_mib > total_mib && !p->hugepage_kb) {
		row(r, "node", subject, QP_CHECK_FAIL, "NUMA node",
		    qp_xasprintf("%" PRIu64 " MiB of memory in all; the VM asks for %" PRIu64
				 " MiB bound to this node", total_mib, p->memory_mib),
		    qp_xasprintf("lower \"memory\" in %s", p->file));
	} else if (p->memory_mib > free_mib && !p->hugepage_kb) {
		row(r, "node", subject, QP_CHECK_WARN, "NUMA node",
		    qp_xasprintf("%" PRIu64 " MiB free; the VM asks for %" PRIu64 " MiB (the "
				 "kernel may reclaim caches, or the VM may fail to start)",
				 free_mib, p->memory_mib),
		    qp_xstrdup("free memory on the node (stop what uses it; echo 3 > "
			       "/proc/sys/vm/drop_caches drops the page cache), or lower "
			       "\"memory\""));
	} else {
		row(r, "node", subject, QP_CHECK_OK, "NUMA node",
		    qp_xasprintf("%zu online CPU%s for %d vCPU%s; %" PRIu64 " MiB free for %" PRIu64
				 " MiB", online, online == 1 ? "" : "s", p->vcpus,
				 p->vcpus == 1 ? "" : "s", free_mib, p->memory_mib), NULL);
	}
}

static void check_plan(const struct qp_host *h, const struct qp_check_target *t,
		       size_t fails_before, struct qp_check_report *r)
{
	const struct qp_profile *p = t->profile;
	if (!p)
		return;
	if (!t->planned) {
		/* A failure the rows above already explain is not said twice. */
		if (r->n[QP_CHECK_FAIL] == fails_before)
			row(r, "plan", "plan", QP_CHECK_FAIL, "plan",
			    qp_xstrdup(t->plan_err->msg),
			    t->plan_err->hint ? qp_xstrdup(t->plan_err->hint) : NULL);
		return;
	}
	const struct qp_numa_node *nd = t->node >= 0 ? qp_host_node(h, t->node) : NULL;
	qp_autofree char *memory_note = nd ? qp_plan_memory_note(nd, p->memory_mib) : NULL;
	for (char **w = t->plan.warnings; w && *w; w++)
		if (!memory_note || strcmp(*w, memory_note))
			row(r, "plan", "plan", QP_CHECK_WARN, "plan", qp_xstrdup(*w), NULL);
	row(r, "plan", "plan", QP_CHECK_OK, "plan",
	    qp_xasprintf("valid: %zu function%s, %zu vCPU%s, NUMA node %d (qpass plan %s shows "
			 "it)", t->plan.n_devs, t->plan.n_devs == 1 ? "" : "s", t->plan.n_vcpus,
			 t->plan.n_vcpus == 1 ? "" : "s", t->plan.numa_node, p->file), NULL);
}

void qp_check_eval(const struct qp_host *h, const struct qp_check_target *t,
		   const struct qp_check_facts *f, struct qp_check_report *out)
{
	memset(out, 0, sizeof(*out));
	check_cpu(h, f, out);
	check_iommu(h, f, out);
	check_irq_remap(h, f, out);
	check_modules(h, out);
	check_kvm(h, f, out);
	check_qemu(f, out);
	check_ovmf(t, f, out);
	check_memlock(t, f, out);
	if (!t->profile || !t->profile->hugepage_kb)
		check_hugepages(h, t, f, out);
	if (!t->what)
		return;
	out->vm_title = qp_xasprintf("%s %s", t->profile ? "VM" : "Devices", t->what);
	size_t fails_before = out->n[QP_CHECK_FAIL];
	if (t->n_fns) {
		check_groups(h, t, out);
		check_functions(h, t, f, out);
	}
	check_node(h, t, out);
	if (t->profile && t->profile->hugepage_kb)
		check_hugepages(h, t, f, out);
	check_plan(h, t, fails_before, out);
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

/* --- rendering ------------------------------------------------------------------- */

#define WIDTH 80

char *qp_check_text(const struct qp_check_report *r)
{
	struct qp_buf b = { 0 };
	const char *section = NULL;
	for (size_t i = 0; i < r->n_rows; i++) {
		const struct qp_check_row *w = &r->rows[i];
		bool host = !strcmp(w->subject, "host");
		const char *sec = host ? "Host" : r->vm_title ? r->vm_title : "VM";
		if (!section || strcmp(section, sec)) {
			section = sec;
			qp_buf_addf(&b, "%s%s\n", i ? "\n" : "", sec);
		}
		/* "  FAIL  IOMMU                off: ..." ; a VM's rows name their subject. */
		qp_autofree char *label = host ? qp_xstrdup(w->title) : qp_xstrdup(w->subject);
		qp_autofree char *prefix = qp_xasprintf("  %-4s  %-19s ", qp_check_status_name(w->status),
							label);
		if (strlen(prefix) > 28) {
			qp_buf_addf(&b, "  %-4s  %s\n", qp_check_status_name(w->status), label);
			free(prefix);
			prefix = qp_xasprintf("%28s", "");
		}
		qp_autofree char *text = host ? qp_xstrdup(w->detail)
					       : qp_xasprintf("%s: %s", w->title, w->detail);
		/* The detail may hold lines of its own (a group's members). */
		char *save = NULL;
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			qp_buf_add_wrapped(&b, WIDTH, prefix, l);
			free(prefix);
			prefix = qp_xasprintf("%28s", "");
		}
		if (!w->fix)
			continue;
		qp_autofree char *fix = qp_xstrdup(w->fix);
		const char *fp = "        fix: ";
		save = NULL;
		for (char *l = strtok_r(fix, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			/* Indented lines are commands and file lines: never broken. */
			if (!strncmp(l, "    ", 4))
				qp_buf_addf(&b, "%s%s\n", fp, l + 2);
			else
				qp_buf_add_wrapped(&b, WIDTH, fp, l);
			fp = "             ";
		}
	}
	qp_buf_addf(&b, "\n%zu OK, %zu WARN, %zu FAIL%s%s\n", r->n[QP_CHECK_OK],
		    r->n[QP_CHECK_WARN], r->n[QP_CHECK_FAIL], r->n[QP_CHECK_SKIP] ? ", " : "",
		    r->n[QP_CHECK_SKIP] ? "some skipped" : "");
	return qp_buf_steal(&b);
}

struct json_object *qp_check_json(const struct qp_check_report *r)
{
	json_object *doc = json_object_new_object(), *rows = json_object_new_array();
	for (size_t i = 0; i < r->n_rows; i++) {
		const struct qp_check_row *w = &r->rows[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(w->id));
		json_object_object_add(o, "subject", json_object_new_string(w->subject));
		json_object_object_add(o, "status",
				       json_object_new_string(qp_check_status_name(w->status)));
		json_object_object_add(o, "title", json_object_new_string(w->title));
		json_object_object_add(o, "detail", json_object_new_string(w->detail));
		json_object_object_add(o, "fix", w->fix ? json_object_new_string(w->fix) : NULL);
		json_object_array_add(rows, o);
	}
	json_object_object_add(doc, "checks", rows);
	json_object *counts = json_object_new_object();
	static const char *const keys[] = { "ok", "skip", "warn", "fail" };
	for (int s = QP_CHECK_OK; s <= QP_CHECK_FAIL; s++)
		json_object_object_add(counts, keys[s], json_object_new_int64((int64_t)r->n[s]));
	json_object_object_add(doc, "counts", counts);
	json_object_object_add(doc, "ok", json_object_new_boolean(!r->n[QP_CHECK_FAIL]));
	return doc;
}
