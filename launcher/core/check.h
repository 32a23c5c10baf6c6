/* `qpass check`: the host doctor. Each check gives OK, WARN or FAIL (or SKIP when it
 * cannot apply), and every finding that is not OK carries the fix for this host.
 *
 * Three steps, the middle one the only one with side effects:
 *   qp_check_target()  pure: the VM's functions and node, from a profile's plan or from
 *                      --device
 *   qp_check_probe()   (probe/checkprobe.h) reads what the host model does not hold
 *                      (ACPI tables, IRQ remapping, /etc/default/grub, /proc/iomem,
 *                      holders...) under the system root, asks QEMU what it is, and
 *                      this process's limits
 *   qp_check_eval()    pure: host model + target + facts -> the findings
 * The renderings, text and JSON, are cli/check_show.h. */
#ifndef QP_CHECK_H
#define QP_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "core/host.h"
#include "core/plan.h"
#include "profiles/profile.h"

enum qp_check_status {
	QP_CHECK_OK,
	QP_CHECK_SKIP,   /* does not apply here; says why */
	QP_CHECK_WARN,
	QP_CHECK_FAIL,
};

struct qp_check_row {
	const char *id;           /* stable, for scripts: "iommu", "group", ... */
	char *subject;            /* "host", "node 1", "group 44", "0000:04:00.0" */
	enum qp_check_status status;
	const char *title;        /* "IOMMU", "interrupt remapping", ... */
	char *detail;             /* what was found */
	char *fix;                /* what to do, NULL when OK */
};

struct qp_check_report {
	struct qp_check_row *rows;
	size_t n_rows;
	size_t n[QP_CHECK_FAIL + 1];  /* rows per status */
	char *vm_title;               /* "VM vm.json", "Devices --device 04:00"; NULL */
};

/* What the check is about, beyond the host. */
struct qp_check_target {
	const char *what;                 /* "vm.json" or "--device 0000:04:00"; NULL: host */
	char *what_buf;                   /* what, when it was made here */
	const struct qp_profile *profile; /* NULL with --device */
	struct qp_plan plan;              /* when planned */
	bool planned;
	struct qp_err *plan_err;          /* why the plan failed */
	struct qp_pci_addr *fns;          /* the functions the VM takes */
	size_t n_fns;
	int node;                         /* the VM's NUMA node, -1 when unknown */
};

/* One passed-through function, as the probe saw it. */
struct qp_check_dev {
	struct qp_pci_addr addr;
	uint64_t bar_start[6], bar_end[6];  /* memory BARs; end 0: unused */
	char *holders;                      /* "1234 (Xorg)", NULL when none */
};

struct qp_check_facts {
	bool acpi_dmar, acpi_ivrs;  /* the firmware's IOMMU tables */
	int irq_remap;              /* 1: IR- interrupt chips in /proc/interrupts; 0: none;
	                             * -1: unreadable */
	int unsafe_interrupts;      /* vfio_iommu_type1 allow_unsafe_interrupts: 1, 0, or -1
	                             * when the module is not loaded */
	char *os_ids;               /* ID and ID_LIKE of /etc/os-release: "centos rhel fedora" */
	bool grub_file;             /* /etc/default/grub exists */
	char *grub_line;            /* its GRUB_CMDLINE_LINUX="..." line, NULL when none */
	int grub_lineno;
	char *iomem;                /* /proc/iomem, NULL when unreadable */
	int kvm;                    /* > 0 the KVM API version of /dev/kvm; 0 not a device
	                             * node (a fixture tree); < 0 -errno of opening it */
	const char *qemu;           /* the binary asked for */
	char *qemu_path;            /* where it was found; NULL: not found */
	char *qemu_version;         /* "7.2.19" */
	int qemu_vfio;              /* vfio-pci among its devices: 1, 0, -1 unknown */
	char *qemu_error;           /* why it could not be asked */
	int ovmf_code, ovmf_vars;   /* 0, or the errno of opening them */
	char **file_problems;       /* the profile's other files (probe/files.h): what is
	                             * wrong with them, NULL-terminated; NULL: nothing */
	size_t n_files;             /* how many there are */
	int hugetlbfs;              /* the profile's hugepage mount: 1 mounted, 0 not */
	uint64_t memlock_max;       /* RLIMIT_MEMLOCK's hard limit; UINT64_MAX: unlimited */
	bool cap_sys_resource;      /* this process may raise it */
	struct qp_check_dev *devs;  /* one per target function */
	size_t n_devs;
	/* Since Linux 5.15 a device has a reset_method file exactly when the kernel can
	 * reset it: on such a kernel (some device has the file) a missing one says "none". */
	bool kernel_shows_resets;
};

/* The target of a profile (planned on h beside the ledger's VMs, NULL: none; the GPUs
 * its "gpus" would get now included) or of a device selector ("04:00", "04:00.1").
 * Fails only when the selector names no device. */
int qp_check_target_profile(const struct qp_profile *p, const struct qp_host *h,
			    const struct qp_ledger *ledger, struct qp_check_target *t);
int qp_check_target_device(const char *selector, const struct qp_host *h,
			   struct qp_check_target *t, struct qp_err **err);
void qp_check_target_free(struct qp_check_target *t);

void qp_check_eval(const struct qp_host *h, const struct qp_check_target *t,
		   const struct qp_check_facts *f, struct qp_check_report *out);
void qp_check_report_free(struct qp_check_report *r);

const char *qp_check_status_name(enum qp_check_status s);

/* The boot framebuffer (efifb, simpledrm, vesafb, BOOTFB) in /proc/iomem that overlaps
 * [start, end], or NULL; *fb_start, *fb_end get its range. */
const char *qp_check_iomem_fb(const char *iomem, uint64_t start, uint64_t end,
			      uint64_t *fb_start, uint64_t *fb_end);

#endif
