/* The side effects of starting QEMU, each a short step checked after it runs, each
 * library included by one file only: NUMA memory binding (libnuma), the memlock limit,
 * dropping privileges, CPU affinity. The child's steps run between vfork and exec, in
 * qpass's memory, so they allocate nothing and report errors as plain text into a
 * buffer. */
#ifndef QP_SYSFX_H
#define QP_SYSFX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "base/root.h"

struct bitmask;

/* A binding of memory to one NUMA node (MPOL_BIND), made ready before vfork (libnuma
 * allocates its masks) and applied in the child, which may not allocate. */
struct qp_fx_membind {
	int node;
	struct bitmask *want, *got;
};

/* False, with nothing allocated, when the kernel has no NUMA. */
bool qp_fx_membind_prepare(int node, struct qp_fx_membind *mb);

/* Binds the calling process's future memory allocations to the node, then reads the
 * policy back. No allocation. Returns 0, or -1 with msg filled. */
int qp_fx_membind_apply(const struct qp_fx_membind *mb, char *msg, size_t len);

void qp_fx_membind_free(struct qp_fx_membind *mb);

/* Sets RLIMIT_MEMLOCK (soft and hard) to bytes, then reads it back. */
int qp_fx_memlock(uint64_t bytes, char *msg, size_t len);

/* Drops to uid/gid (and only gid as group), in crun's order, then checks with
 * getresuid/getresgid that no id can come back. */
int qp_fx_drop_privileges(uid_t uid, gid_t gid, char *msg, size_t len);

/* Sends host interrupt irq to cpus (ROOT/proc/irq/IRQ/smp_affinity_list), then reads
 * it back. */
int qp_fx_irq_affinity(const struct qp_root *root, int irq, const struct qp_cpulist *cpus,
		       struct qp_err **err);

/* Pins thread tid to cpus. */
int qp_fx_pin(pid_t tid, const struct qp_cpulist *cpus, struct qp_err **err);

#endif
