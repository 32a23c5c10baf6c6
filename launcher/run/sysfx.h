/* The side effects of starting QEMU, each a short step checked after it runs, each
 * library included by one file only: NUMA memory binding (libnuma), the memlock limit,
 * dropping privileges, CPU affinity. The child's steps run between fork and exec, so
 * they report errors as plain text into a buffer (no allocation). */
#ifndef QP_SYSFX_H
#define QP_SYSFX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/cpulist.h"
#include "base/err.h"

/* Binds this process's future memory allocations to NUMA node `node` (MPOL_BIND),
 * then checks the policy took. Returns 0, or -1 with msg filled. */
int qp_fx_bind_memory(int node, char *msg, size_t len);

/* Sets RLIMIT_MEMLOCK (soft and hard) to bytes, then reads it back. */
int qp_fx_memlock(uint64_t bytes, char *msg, size_t len);

/* Drops to uid/gid (and only gid as group), in crun's order, then checks with
 * getresuid/getresgid that no id can come back. */
int qp_fx_drop_privileges(uid_t uid, gid_t gid, char *msg, size_t len);

/* Pins thread tid to cpus. */
int qp_fx_pin(pid_t tid, const struct qp_cpulist *cpus, struct qp_err **err);

/* Whether the kernel has NUMA (libnuma's numa_available). */
bool qp_fx_numa_available(void);

#endif
