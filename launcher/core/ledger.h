/* The ledger: what the VMs running on this host hold, so that the planner gives none of
 * it to another VM. One lease per VM (run/ledger.c keeps them in RUNDIR/leases/NAME.json
 * under a host-wide lock): its PCI functions, the CPUs of its vCPUs and of its emulator
 * threads, its memory and hugepages on its node, and who holds it (qpass and QEMU, each
 * by pid and start time, so that a lease outlives neither). Pure: the types, the
 * questions the planner asks, and the lease as JSON. */
#ifndef QP_LEDGER_H
#define QP_LEDGER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "base/pciaddr.h"

/* A process, as a lease names it: the pid and its start time (field 22 of
 * /proc/PID/stat, in clock ticks since boot), so that a reused pid is not taken for it. */
struct qp_holder {
	int pid;              /* 0: none */
	uint64_t start;
};

struct qp_lease {
	char *name;
	struct qp_holder qpass, qemu;
	bool running;              /* QEMU runs the guest: its hugepages are all taken */
	struct qp_pci_addr *devs;  /* every function the VM has, sorted */
	size_t n_devs;
	struct qp_cpulist vcpu_cpus, emulator_cpus;
	bool share_cpus;           /* the profile lets other VMs use these CPUs too */
	int node;                  /* where its memory is; -1: no NUMA */
	struct qp_cpulist nodes;   /* across nodes: each node, the memory split evenly
				    * (a list of node numbers); else empty */
	uint64_t memory_mib;
	uint64_t hugepage_kb, hugepages;  /* size and count on the node; 0: none */
	/* Not in the file, read with the lease: what its QEMU has resident now, so that
	 * only what it reserved and has not touched yet counts against the node; and
	 * whether its qpass is gone while its QEMU runs on. */
	uint64_t resident_mib;
	bool orphan;
};

struct qp_ledger {
	struct qp_lease *leases;   /* sorted by name */
	size_t n;
};

/* The lease that holds function a, or NULL. */
const struct qp_lease *qp_ledger_dev_holder(const struct qp_ledger *l,
					    const struct qp_pci_addr *a);

/* The lease whose vCPUs or emulator threads have CPU cpu, or NULL. */
const struct qp_lease *qp_ledger_cpu_holder(const struct qp_ledger *l, int cpu);

/* The memory (MiB) and hugepages the other leases on node reserved and have not
 * touched yet. */
uint64_t qp_ledger_untouched_mib(const struct qp_ledger *l, int node);
uint64_t qp_ledger_untouched_hugepages(const struct qp_ledger *l, int node, uint64_t size_kb);

/* The lease as JSON (taken by the caller), and back: `file` names it in errors. */
json_object *qp_lease_json(const struct qp_lease *lease);
int qp_lease_parse(json_object *o, const char *file, struct qp_lease *out,
		   struct qp_err **err);

void qp_lease_free(struct qp_lease *lease);
void qp_ledger_free(struct qp_ledger *l);

#endif
