#include "probe/files.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

/* Who QEMU runs as: uid 0 for root (every permission), else the user and its groups. */
struct who {
	const char *name;
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int n_groups;
};

/* Whether who may read (R_OK) and write (W_OK) a file of st's owner and mode. */
static bool may(const struct who *w, const struct stat *st, int want)
{
	if (w->uid == 0)
		return true;
	mode_t bits = st->st_mode;
	int shift = 0;
	if (st->st_uid == w->uid) {
		shift = 6;
	} else {
		bool member = st->st_gid == w->gid;
		for (int i = 0; i < w->n_groups && !member; i++)
			member = w->groups[i] == st->st_gid;
		shift = member ? 3 : 0;
	}
	int have = (int)(bits >> shift) & 7;
	return (!(want & R_OK) || (have & 4)) && (!(want & W_OK) || (have & 2));
}

/* One file: there (fstat through the root), a regular file or (block) a block device,
 * and usable for want. A problem goes into *out. */
static void look(const struct qp_root *root, const struct who *w, const char *key,
		 const char *path, int want, bool dir, char ***out, size_t *n)
{
	if (!path || !*path)
		return;
	(*n)++;
	const char *rel = path[0] == '/' ? path + 1 : path;
	int fd = qp_root_openat(root, *rel ? rel : ".", O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		qp_strv_push(out, qp_xasprintf("%s %s: %s", key, path,
					       e == ENOENT ? "does not exist" : strerror(e)));
		return;
	}
	close(fd);
	bool kind = dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
	if (!kind) {
		qp_strv_push(out, qp_xasprintf("%s %s: not a %s", key, path,
					       dir ? "directory" : "file or block device"));
		return;
	}
	if (!may(w, &st, want))
		qp_strv_push(out, qp_xasprintf("%s %s: the user %s may not %s it (mode %04o, "
					       "owner %u:%u)", key, path, w->name,
					       want & W_OK ? "write" : "read",
					       (unsigned)(st.st_mode & 07777),
					       (unsigned)st.st_uid, (unsigned)st.st_gid));
}

/* The directory of path ("/var/log/vm.log" -> "/var/log"). Caller frees. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return qp_xstrdup(".");
	return slash == path ? qp_xstrdup("/") : qp_xstrndup(path, (size_t)(slash - path));
}

char **qp_probe_profile_files(const struct qp_root *root, const struct qp_profile *p,
			      bool ovmf, size_t *n_files)
{
	struct who w = { .name = "root" };
	if (p->run_as) {
		const struct passwd *pw = getpwnam(p->run_as);
		if (pw) {
			w = (struct who){ .name = p->run_as, .uid = pw->pw_uid, .gid = pw->pw_gid,
					  .n_groups = 64 };
			if (getgrouplist(p->run_as, pw->pw_gid, w.groups, &w.n_groups) < 0)
				w.n_groups = 0;
		}
	}
	char **out = NULL;
	*n_files = 0;
	for (size_t i = 0; i < p->n_disks; i++) {
		qp_autofree char *key = qp_xasprintf("disks[%zu].file", i);
		look(root, &w, key, p->disks[i].file, p->disks[i].readonly ? R_OK : R_OK | W_OK,
		     false, &out, n_files);
	}
	if (ovmf && p->firmware == QP_FW_OVMF) {
		look(root, &w, "ovmf.code", p->ovmf_code, R_OK, false, &out, n_files);
		/* The template: qpass (root) copies it for the VM. */
		struct who self = { .name = "root" };
		look(root, &self, "ovmf.vars", p->ovmf_vars, R_OK, false, &out, n_files);
	}
	for (size_t i = 0; i < p->n_pt; i++) {
		qp_autofree char *key = qp_xasprintf("%s.romfile", p->pt[i].key);
		look(root, &w, key, p->pt[i].romfile, R_OK, false, &out, n_files);
	}
	look(root, &w, "display.password_file", p->vnc_password_file, R_OK, false, &out, n_files);
	if (p->serial == QP_SERIAL_FILE && p->serial_path) {
		qp_autofree char *dir = dir_of(p->serial_path);
		look(root, &w, "serial.path's directory", dir, W_OK, true, &out, n_files);
	}
	return out;
}
