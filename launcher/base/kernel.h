/* The test seams: the few calls into the kernel that a test may replace, all here.
 *
 * Each is NULL in qpass, which then makes the real call. A test binary (tests/fakekernel)
 * points them at a fake kernel that does to a fixture tree what Linux would do to sysfs.
 * They replace the kernel, never qpass's own code: the journal, the deadlines and the
 * read-backs around each call run as they do on a real host. */
#ifndef QP_KERNEL_H
#define QP_KERNEL_H

#include <stdint.h>

struct qp_cpulist;
struct qp_root;

/* One sysfs write (vfio/sysfs.c), made in a child process under a deadline: 0 or an
 * errno. NULL: write(2) to ROOT/rel. */
extern int (*qp_kernel_write)(const struct qp_root *root, const char *rel, const char *data);

/* How many sysfs writes this process has made; the fake kernel counts steps with it. */
extern unsigned qp_sysfs_writes;

/* Loads a module whose driver is missing (vfio/bind.c): 0, or -1. NULL: modprobe. */
extern int (*qp_kernel_modprobe)(const struct qp_root *root, const char *module);

/* Whether VFIO group N is usable (vfio/group.c): 0, or an errno. NULL: the ioctls
 * VFIO_GROUP_GET_STATUS and VFIO_CHECK_EXTENSION, as QEMU will ask. */
extern int (*qp_kernel_vfio_check)(const struct qp_root *root, int group);

/* Raising RLIMIT_MEMLOCK (run/sysfx.c), for a sandbox without CAP_SYS_RESOURCE: 0 or an
 * errno. NULL: setrlimit. */
extern int (*qp_kernel_memlock)(uint64_t bytes);

/* Pinning thread tid to cpus (run/sysfx.c), and reading back where thread tid of
 * process pid may run (run/launch.c), for a fixture host whose CPUs this machine does
 * not have: 0 or an errno. NULL: sched_setaffinity, and Cpus_allowed_list of
 * /proc/PID/task/TID/status. */
extern int (*qp_kernel_setaffinity)(int tid, const struct qp_cpulist *cpus);
/* Binding the calling process's memory to NUMA node `node` (run/sysfx.c, in QEMU's
 * child before exec), for a fixture node: 0 or an errno. NULL: libnuma, read back. */
extern int (*qp_kernel_membind)(int node);
extern int (*qp_kernel_getaffinity)(int pid, int tid, struct qp_cpulist *out);

#endif
