#include "base/files.h"

#include <errno.h>
#include <sys/stat.h>

#include "base/util.h"

int qp_mkdir_p(const char *path, mode_t mode, struct qp_err **err)
{
	qp_autofree char *p = qp_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return qp_err_set(err, errno, "cannot create %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return qp_err_set(err, errno, "cannot create %s", p);
	return 0;
}
