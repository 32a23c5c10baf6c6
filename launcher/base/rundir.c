#include "base/rundir.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/util.h"

const char *qp_rundir(void)
{
	const char *d = secure_getenv("QPASS_RUNDIR");
	return d && *d ? d : "/run/qpass";
}

char *qp_rundir_vm(const char *name, const char *leaf)
{
	if (!leaf)
		return qp_xasprintf("%s/%s", qp_rundir(), name);
	return qp_xasprintf("%s/%s/%s", qp_rundir(), name, leaf);
}

char *qp_rundir_journal(const char *owner)
{
	if (!owner)
		return qp_xasprintf("%s/journal", qp_rundir());
	return qp_xasprintf("%s/journal/%s.json", qp_rundir(), owner);
}

char *qp_rundir_device_lock(const char *addr)
{
	if (!addr)
		return qp_xasprintf("%s/devices", qp_rundir());
	return qp_xasprintf("%s/devices/%s.lock", qp_rundir(), addr);
}

char *qp_rundir_lease(const char *name)
{
	if (!name)
		return qp_xasprintf("%s/leases", qp_rundir());
	return qp_xasprintf("%s/leases/%s.json", qp_rundir(), name);
}

char *qp_rundir_leases_lock(void)
{
	return qp_xasprintf("%s/leases/.lock", qp_rundir());
}

int qp_rundir_mkdir(const char *sub, struct qp_err **err)
{
	if (mkdir(qp_rundir(), 0755) < 0 && errno != EEXIST)
		return qp_err_set(err, errno, "cannot create %s", qp_rundir());
	qp_autofree char *dir = qp_xasprintf("%s/%s", qp_rundir(), sub);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return qp_err_set(err, errno, "cannot create %s", dir);
	return 0;
}
