#include "run/sysfx.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/kernel.h"
#include "base/util.h"

bool qp_fx_membind_prepare(int node, struct qp_fx_membind *mb)
{
	*mb = (struct qp_fx_membind){ .node = node };
	if (numa_available() < 0)
		return false;
	mb->want = numa_allocate_nodemask();
	mb->got = numa_allocate_nodemask();
	numa_bitmask_setbit(mb->want, (unsigned)node);
	return true;
}

int qp_fx_membind_apply(const struct qp_fx_membind *mb, char *msg, size_t len)
{
	if (qp_kernel_membind && qp_kernel_membind(mb->node) != 0) {
		snprintf(msg, len, "cannot bind memory to NUMA node %d", mb->node);
		return -1;
	}
	if (qp_kernel_membind)
		return 0;
	numa_set_membind(mb->want);
	/* libnuma reports failures through numa_error() and errno; read the policy back,
	 * as numa_get_membind() does, into the mask made ready. */
	int mode = -1;
	if (get_mempolicy(&mode, mb->got->maskp, mb->got->size + 1, NULL, 0) < 0 ||
	    mode != MPOL_BIND || !numa_bitmask_equal(mb->want, mb->got)) {
		snprintf(msg, len, "cannot bind memory to NUMA node %d", mb->node);
		return -1;
	}
	return 0;
}

void qp_fx_membind_free(struct qp_fx_membind *mb)
{
	if (mb->want)
		numa_bitmask_free(mb->want);
	if (mb->got)
		numa_bitmask_free(mb->got);
	mb->want = mb->got = NULL;
}

int qp_fx_memlock(uint64_t bytes, char *msg, size_t len)
{
	if (qp_kernel_memlock) {
		int e = qp_kernel_memlock(bytes);
		if (e)
			snprintf(msg, len, "cannot raise RLIMIT_MEMLOCK to %llu bytes: %s",
				 (unsigned long long)bytes, strerror(e));
		return e ? -1 : 0;
	}
	struct rlimit r = { (rlim_t)bytes, (rlim_t)bytes };
	if (setrlimit(RLIMIT_MEMLOCK, &r) < 0) {
		snprintf(msg, len, "cannot raise RLIMIT_MEMLOCK to %llu bytes: %s",
			 (unsigned long long)bytes, strerror(errno));
		return -1;
	}
	struct rlimit back;
	if (getrlimit(RLIMIT_MEMLOCK, &back) < 0 || back.rlim_cur != r.rlim_cur) {
		snprintf(msg, len, "RLIMIT_MEMLOCK did not take");
		return -1;
	}
	return 0;
}

int qp_fx_drop_privileges(uid_t uid, gid_t gid, char *msg, size_t len)
{
	/* Groups first (it needs privilege), then gid, then uid last. */
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		snprintf(msg, len, "cannot drop privileges to uid %u gid %u: %s", (unsigned)uid,
			 (unsigned)gid, strerror(errno));
		return -1;
	}
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != uid ||
	    eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		snprintf(msg, len, "privileges were not dropped to uid %u gid %u", (unsigned)uid,
			 (unsigned)gid);
		return -1;
	}
	/* With uid != 0 there is no way back: check it. */
	if (uid != 0 && setresuid(0, 0, 0) == 0) {
		snprintf(msg, len, "could regain root after dropping privileges");
		return -1;
	}
	return 0;
}

int qp_fx_irq_affinity(const struct qp_root *root, int irq, const struct qp_cpulist *cpus,
		       struct qp_err **err)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "proc/irq/%d/smp_affinity_list", irq);
	qp_autofree char *want = qp_cpulist_fmt(cpus);
	qp_autofree char *line = qp_xasprintf("%s\n", want);
	qp_autoclose int fd = qp_root_openat(root, rel, O_WRONLY | O_TRUNC);
	ssize_t n = fd < 0 ? -1 : write(fd, line, strlen(line));
	if (n != (ssize_t)strlen(line))
		return qp_err_set(err, errno, "cannot send interrupt %d to CPUs %s (/%s)", irq, want,
				  rel);
	/* Read back: the kernel may keep another set (a managed interrupt). */
	qp_autofree char *text = NULL;
	struct qp_cpulist got = { 0 };
	int rc = qp_root_read(root, rel, &text, NULL, err);
	if (rc == 0)
		rc = qp_cpulist_parse(text, &got, err);
	if (rc == 0 && !qp_cpulist_equal(&got, cpus)) {
		qp_autofree char *g = qp_cpulist_fmt(&got);
		rc = qp_err_set(err, 0, "interrupt %d goes to CPUs %s, not %s as set", irq, g, want);
	}
	qp_cpulist_free(&got);
	return rc;
}

int qp_fx_pin(pid_t tid, const struct qp_cpulist *cpus, struct qp_err **err)
{
	if (qp_kernel_setaffinity) {
		int e = qp_kernel_setaffinity(tid, cpus);
		qp_autofree char *l = e ? qp_cpulist_fmt(cpus) : NULL;
		return e ? qp_err_set(err, e, "cannot pin thread %d to CPUs %s", (int)tid, l) : 0;
	}
	cpu_set_t *set = CPU_ALLOC(QP_MAX_CPU + 1);
	size_t size = CPU_ALLOC_SIZE(QP_MAX_CPU + 1);
	CPU_ZERO_S(size, set);
	for (size_t i = 0; i < cpus->n; i++)
		CPU_SET_S((size_t)cpus->cpu[i], size, set);
	int rc = sched_setaffinity(tid, size, set);
	int saved = errno;
	CPU_FREE(set);
	if (rc < 0) {
		qp_autofree char *l = qp_cpulist_fmt(cpus);
		return qp_err_set(err, saved, "cannot pin thread %d to CPUs %s", (int)tid, l);
	}
	return 0;
}
