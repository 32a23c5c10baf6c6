#include "core/advice.h"

#include <string.h>

#include "base/sysparse.h"
#include "base/util.h"

const char *qp_advice_iommu_param(const struct qp_host *h)
{
	if (h->cpu_vendor && !strcmp(h->cpu_vendor, "GenuineIntel"))
		return "intel_iommu=on";
	if (h->cpu_vendor && (!strcmp(h->cpu_vendor, "AuthenticAMD") ||
			      !strcmp(h->cpu_vendor, "HygonGenuine")))
		return "amd_iommu=on";
	return "intel_iommu=on (Intel) or amd_iommu=on (AMD)";
}

static bool cmdline_has_on(const struct qp_host *h, const char *key)
{
	qp_autofree char *v = qp_cmdline_get(h->cmdline ? h->cmdline : "", key);
	return v && (!strcmp(v, "on") || !strcmp(v, "1") || !strncmp(v, "on,", 3));
}

char *qp_advice_iommu_off(const struct qp_host *h)
{
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "The IOMMU is off: the kernel made no IOMMU groups "
		       "(/sys/kernel/iommu_groups is empty), so no device can be passed "
		       "through.\n");
	bool intel = cmdline_has_on(h, "intel_iommu"), amd = cmdline_has_on(h, "amd_iommu");
	if (intel || amd) {
		qp_buf_addf(&b, "The kernel command line already has %s, so the firmware has "
			    "it off: enable %s in the firmware (BIOS/UEFI) setup and reboot.\n",
			    intel ? "intel_iommu=on" : "amd_iommu=on",
			    intel ? "VT-d" : "AMD-Vi (IOMMU)");
		return qp_buf_steal(&b);
	}
	qp_buf_addf(&b,
		    "To turn it on: enable VT-d (Intel) or AMD-Vi (AMD) in the firmware setup; "
		    "add %s to GRUB_CMDLINE_LINUX in /etc/default/grub; "
		    "run update-grub (Debian, Ubuntu) or grub2-mkconfig -o /boot/grub2/grub.cfg "
		    "(CentOS, RHEL, Fedora); then reboot.\n",
		    qp_advice_iommu_param(h));
	return qp_buf_steal(&b);
}
