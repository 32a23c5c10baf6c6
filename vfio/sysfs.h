/* Writes to sysfs, the one way qpass changes the host's drivers.
 *
 * Each write runs in a child process under a deadline: unbinding a busy GPU driver can
 * block in the kernel for as long as a process holds the device, and qpass must be able
 * to give up, say who holds it, and put everything back.
 *
 * Tests replace the kernel, not this code: a test binary sets qp_kernel_write
 * (base/kernel.h) to a fake kernel that applies the write to a fixture tree as Linux
 * would (tests/fakekernel). */
#ifndef QP_SYSFS_H
#define QP_SYSFS_H

#include "base/err.h"
#include "base/root.h"

/* Writes data to ROOT/rel within timeout_ms. Errors name the file; ETIMEDOUT when the
 * write did not return in time (the writer is left behind, blocked in the kernel). */
int qp_sysfs_write(const struct qp_root *root, const char *rel, const char *data,
		   int timeout_ms, struct qp_err **err);

#endif
