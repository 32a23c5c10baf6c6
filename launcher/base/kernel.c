#include "base/kernel.h"

int (*qp_kernel_write)(const struct qp_root *root, const char *rel, const char *data);
unsigned qp_sysfs_writes;
int (*qp_kernel_modprobe)(const struct qp_root *root, const char *module);
int (*qp_kernel_vfio_check)(const struct qp_root *root, int group);
int (*qp_kernel_memlock)(uint64_t bytes);
int (*qp_kernel_setaffinity)(int tid, const struct qp_cpulist *cpus);
int (*qp_kernel_getaffinity)(int pid, int tid, struct qp_cpulist *out);
int (*qp_kernel_membind)(int node);
