/* What the rules of `qpass check` share: for core/check*.c only (check.h is the
 * interface). Each rule appends its rows to the report; none reads the host. */
#ifndef QP_CHECK_INT_H
#define QP_CHECK_INT_H

#include "base/util.h"
#include "core/check.h"

/* Appends a row to the report; takes detail and fix (NULL when OK). Inline, and named
 * short: the rules call it at almost every step, and only their files see it. */
static inline void row(struct qp_check_report *r, const char *id, const char *subject,
		       enum qp_check_status st, const char *title, char *detail, char *fix)
{
	r->rows = qp_xrealloc(r->rows, (r->n_rows + 1) * sizeof(*r->rows));
	r->rows[r->n_rows++] = (struct qp_check_row){
		.id = id, .subject = qp_xstrdup(subject), .status = st, .title = title,
		.detail = detail, .fix = fix,
	};
	r->n[st]++;
}

/* How to change the kernel command line on this host (check_fix.c): the file and line to edit (the
 * GRUB_CMDLINE_LINUX line with `add` appended and every word starting with one of
 * `drop` removed), the command that makes the boot loader's configuration, the reboot.
 * Caller frees. */
char *qp_check_cmdline_fix(const struct qp_host *h, const struct qp_check_facts *f,
			   const char *add, const char *const *drop);

/* The host's own rules (check_host.c). */
void qp_check_cpu(const struct qp_host *h, const struct qp_check_facts *f,
		  struct qp_check_report *r);
void qp_check_iommu(const struct qp_host *h, const struct qp_check_facts *f,
		    struct qp_check_report *r);
void qp_check_irq_remap(const struct qp_host *h, const struct qp_check_facts *f,
			struct qp_check_report *r);
void qp_check_modules(const struct qp_host *h, struct qp_check_report *r);
void qp_check_kvm(const struct qp_host *h, const struct qp_check_facts *f,
		  struct qp_check_report *r);
void qp_check_qemu(const struct qp_check_facts *f, struct qp_check_report *r);
void qp_check_ovmf(const struct qp_check_target *t, const struct qp_check_facts *f,
		   struct qp_check_report *r);
/* The files the profile names (disks, ROMs, the VNC password, a serial log). */
void qp_check_files(const struct qp_check_target *t, const struct qp_check_facts *f,
		    struct qp_check_report *r);

/* For the VM's node when its profile asks for hugepages, else what each node has. */
void qp_check_hugepages(const struct qp_host *h, const struct qp_check_target *t,
			const struct qp_check_facts *f, struct qp_check_report *r);
void qp_check_memlock(const struct qp_check_target *t, const struct qp_check_facts *f,
		      struct qp_check_report *r);

/* The VM's rules (check_vm.c). */
void qp_check_groups(const struct qp_host *h, const struct qp_check_target *t,
		     struct qp_check_report *r);
void qp_check_functions(const struct qp_host *h, const struct qp_check_target *t,
			const struct qp_check_facts *f, struct qp_check_report *r);
void qp_check_node(const struct qp_host *h, const struct qp_check_target *t,
		   struct qp_check_report *r);
/* The planner's verdict; a failure that rows after fails_before explain is not
 * said twice. */
void qp_check_plan(const struct qp_host *h, const struct qp_check_target *t,
		   size_t fails_before, struct qp_check_report *r);

#endif
