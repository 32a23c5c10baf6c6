#include "vfio/holders.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static bool held(char **targets, bool nvidia, const char *path)
{
	if (nvidia && !strncmp(path, "/dev/nvidia", 11))
		return true;
	return qp_strv_contains(targets, path);
}

char *qp_vfio_holders(const struct qp_root *root, const char *addr)
{
	struct qp_err *err = NULL;
	/* The device's DRM nodes: by-path links to ../cardN and ../renderDN. */
	char **targets = qp_xcalloc(1, sizeof(char *));
	char **names = NULL;
	qp_autofree char *prefix = qp_xasprintf("pci-%s-", addr);
	if (qp_root_list(root, "dev/dri/by-path", true, &names, &err) == 0) {
		for (char **n = names; *n; n++) {
			if (strncmp(*n, prefix, strlen(prefix)))
				continue;
			qp_autofree char *rel = qp_xasprintf("dev/dri/by-path/%s", *n);
			qp_autofree char *target = NULL;
			qp_autofree char *joined = NULL;
			if (qp_root_readlink(root, rel, true, &target, &err) == 0 && target &&
			    qp_path_join_link("dev/dri/by-path", target, &joined, &err) == 0)
				qp_strv_push(&targets, qp_xasprintf("/%s", joined));
			qp_err_free(err);
			err = NULL;
		}
	}
	qp_strv_free(names);
	qp_err_free(err);
	err = NULL;
	qp_autofree char *vrel = qp_xasprintf("sys/bus/pci/devices/%s/vendor", addr);
	qp_autofree char *vendor = NULL;
	bool nvidia = qp_root_read(root, vrel, &vendor, NULL, &err) == 0 &&
		      !strncmp(vendor, "0x10de", 6);
	qp_err_free(err);
	err = NULL;

	struct qp_buf out = { 0 };
	char **pids = NULL;
	if (qp_root_list(root, "proc", true, &pids, &err) == 0) {
		for (char **p = pids; *p; p++) {
			if (strspn(*p, "0123456789") != strlen(*p))
				continue;
			qp_autofree char *fddir = qp_xasprintf("proc/%s/fd", *p);
			char **fds = NULL;
			if (qp_root_list(root, fddir, true, &fds, &err) < 0) {
				qp_err_free(err);
				err = NULL;
				continue;
			}
			bool hit = false;
			for (char **f = fds; *f && !hit; f++) {
				qp_autofree char *rel = qp_xasprintf("%s/%s", fddir, *f);
				qp_autofree char *target = NULL;
				if (qp_root_readlink(root, rel, true, &target, &err) == 0 && target)
					hit = held(targets, nvidia, target);
				qp_err_free(err);
				err = NULL;
			}
			qp_strv_free(fds);
			if (!hit)
				continue;
			qp_autofree char *crel = qp_xasprintf("proc/%s/comm", *p);
			qp_autofree char *comm = NULL;
			if (qp_root_read(root, crel, &comm, NULL, &err) < 0)
				comm = qp_xstrdup("?");
			qp_err_free(err);
			err = NULL;
			comm[strcspn(comm, "\n")] = '\0';
			qp_buf_addf(&out, "%s%s (%s)", out.len ? ", " : "", *p, comm);
		}
	}
	qp_strv_free(pids);
	qp_err_free(err);
	qp_strv_free(targets);
	return out.len ? qp_buf_steal(&out) : (qp_buf_free(&out), NULL);
}
