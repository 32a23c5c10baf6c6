/* `qpass check`: the rules about the host itself (CPU, IOMMU, interrupt remapping,
 * modules, KVM, QEMU, OVMF, hugepages, memlock). Pure: host model + facts -> rows. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "base/sysparse.h"
#include "base/util.h"
#include "core/advice.h"
#include "core/check-int.h"

static bool intel_cpu(const struct qp_host *h)
{
	return h->cpu_vendor && !strcmp(h->cpu_vendor, "GenuineIntel");
}

void qp_check_cpu(const struct qp_host *h, const struct qp_check_facts *f,
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

void qp_check_iommu(const struct qp_host *h, const struct qp_check_facts *f,
		    struct qp_check_report *r)
{
	const char *table = f->acpi_dmar ? "DMAR" : f->acpi_ivrs ? "IVRS" : NULL;
	if (qp_host_iommu_on(h)) {
		row(r, "iommu", "host", QP_CHECK_OK, "IOMMU",
		    qp_xasprintf("on: %zu IOMMU groups%s%s%s", h->n_iommu_groups,
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
		const char *add = strchr(param, ' ') ? "intel_iommu=on" : param;
		qp_autofree char *c = qp_check_cmdline_fix(h, f, add, off_words);
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

void qp_check_irq_remap(const struct qp_host *h, const struct qp_check_facts *f,
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
	qp_autofree char *c = off_by_cmdline ? qp_check_cmdline_fix(h, f, NULL, drop) : NULL;
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

void qp_check_modules(const struct qp_host *h, struct qp_check_report *r)
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

void qp_check_kvm(const struct qp_host *h, const struct qp_check_facts *f,
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

void qp_check_qemu(const struct qp_check_facts *f, struct qp_check_report *r)
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

void qp_check_ovmf(const struct qp_check_target *t, const struct qp_check_facts *f,
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

void qp_check_files(const struct qp_check_target *t, const struct qp_check_facts *f,
		    struct qp_check_report *r)
{
	const struct qp_profile *p = t->profile;
	if (!p || !f->n_files)
		return;
	const char *who = p->run_as ? p->run_as : "root";
	if (!f->file_problems) {
		row(r, "files", "VM", QP_CHECK_OK, "files",
		    qp_xasprintf("the %zu file%s the profile names %s there and usable by %s",
				 f->n_files, f->n_files == 1 ? "" : "s",
				 f->n_files == 1 ? "is" : "are", who), NULL);
		return;
	}
	struct qp_buf d = { 0 };
	for (char **x = f->file_problems; *x; x++)
		qp_buf_addf(&d, "%s%s", d.len ? "; " : "", *x);
	row(r, "files", "VM", QP_CHECK_FAIL, "files", qp_buf_steal(&d),
	    qp_xasprintf("create them (qemu-img create -f qcow2 FILE SIZE makes a disk), fix "
			 "their paths in %s, or give %s access; `qpass up` refuses to start "
			 "until then", p->file, who));
}

static const char *page_size(uint64_t kb)
{
	return kb == 2048 ? "2M" : kb == 1048576 ? "1G" : "?";
}

void qp_check_hugepages(const struct qp_host *h, const struct qp_check_target *t,
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

void qp_check_memlock(const struct qp_check_target *t, const struct qp_check_facts *f,
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
