/* Placement as the kernel reports it, beside what the plan promised: every QEMU thread
 * with the CPUs it may run on and the CPU it last ran on, the guest RAM's pages per NUMA
 * node, the host interrupts of the passed devices with their affinity; and the verdict.
 * Pure: the parsers of what /proc says, and the comparison. run/placement.c reads. */
#ifndef QP_PLACEMENT_H
#define QP_PLACEMENT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "base/pciaddr.h"

enum qp_thread_role {
	QP_ROLE_VCPU,
	QP_ROLE_MAIN,      /* the main loop: QEMU's first thread */
	QP_ROLE_IOTHREAD,  /* "IO ..." */
	QP_ROLE_WORKER,    /* "worker": the thread pool */
	QP_ROLE_RCU,       /* "call_rcu" */
	QP_ROLE_OTHER,
};

struct qp_thread {
	int tid;
	char *name;                 /* its comm: "CPU 0/KVM", "IO mon_iothread" */
	enum qp_thread_role role;
	int vcpu;                   /* its vCPU; -1 for the others */
	struct qp_cpulist allowed;  /* Cpus_allowed_list */
	int last_cpu;               /* field 39 of its stat; -1 unknown */
};

struct qp_irq {
	int irq;
	char *name;                 /* "vfio-msix[0](0000:04:00.0)" */
	struct qp_pci_addr dev;
	struct qp_cpulist affinity; /* smp_affinity_list */
};

/* What was read of the running VM. */
struct qp_measured {
	struct qp_thread *threads;  /* by tid */
	size_t n_threads;
	bool has_memory;            /* the guest RAM's mapping was found */
	uint64_t page_kb;
	uint64_t *pages;            /* index: node; resident pages there */
	size_t n_pages;
	bool by_guest_node;         /* a VM across nodes: a mapping per guest node, each
				     * bound to its host node */
	uint64_t off_node;          /* then: the pages not on their mapping's node */
	struct qp_irq *irqs;
	size_t n_irqs;
};

/* What the VM should have now: the plan's placement, with what `qpass pin` changed. */
struct qp_promise {
	const int *vcpu_pins;       /* index: vCPU */
	size_t n_vcpus;
	const struct qp_cpulist *emulator_cpus;
	int node;                   /* -1: no binding */
	const struct qp_cpulist *irq_cpus;  /* NULL: interrupts left alone */
	/* Or, when not NULL, each measured interrupt's own (index: the measured's irqs;
	 * NULL: left alone): a VM across nodes sends each device's to its node. */
	const struct qp_cpulist *const *irq_want;
};

/* The thread's role from its comm and whether it is QEMU's first thread. */
enum qp_thread_role qp_thread_role_of(const char *comm, bool main_thread);
const char *qp_thread_role_name(enum qp_thread_role r);

/* The CPU a thread last ran on: field 39 of /proc/PID/task/TID/stat; -1 when unreadable. */
int qp_parse_stat_cpu(const char *stat);

/* Cpus_allowed_list of a /proc/.../status text. */
int qp_parse_status_allowed(const char *status, struct qp_cpulist *out, struct qp_err **err);

/* The resident pages per node of the mapping at `start` in a numa_maps text, its page
 * size (kernelpagesize_kB), and (bind, may be NULL) the node of its "bind:N" policy, or
 * -1. Returns 0, or -1 when no such mapping is there. */
int qp_parse_numa_maps(const char *text, uint64_t start, uint64_t **pages, size_t *n,
		       uint64_t *page_kb, int *bind);

/* The vfio interrupts of /proc/interrupts whose device is one of devs: "45: ... vfio-
 * msix[0](0000:04:00.0)"; their affinity left empty. */
void qp_parse_vfio_irqs(const char *interrupts, const struct qp_pci_addr *devs, size_t n_devs,
			struct qp_irq **out, size_t *n);

/* The verdict: one line per thing that differs from the promise (none: placed as
 * planned). Caller frees (qp_strv_free). Memory differs when more than 1 % of the
 * resident pages are off the node. */
char **qp_placement_drift(const struct qp_measured *m, const struct qp_promise *p);

/* The measurement, the promise and the verdict as JSON (docs/status-json.md). */
json_object *qp_placement_json(const struct qp_measured *m, const struct qp_promise *p);

void qp_measured_free(struct qp_measured *m);

#endif
