#include "base/root.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"

#define QP_READ_MAX (4u << 20)

const char *qp_root_choose(const char *opt)
{
	if (opt && *opt)
		return opt;
	const char *env = secure_getenv("QPASS_SYSROOT");
	if (env && *env)
		return env;
	return "/";
}

int qp_root_open(const char *dir, struct qp_root *root, struct qp_err **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return qp_err_set(err, errno, "cannot open the system root %s", dir);
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	root->fd = fd;
	root->path = qp_xstrndup(dir, n);
	return 0;
}

void qp_root_close(struct qp_root *root)
{
	qp_closep(&root->fd);
	free(root->path);
	root->path = NULL;
}

char *qp_root_display(const struct qp_root *root, const char *rel)
{
	if (!strcmp(root->path, "/"))
		return qp_xasprintf("/%s", rel);
	return qp_xasprintf("%s/%s", root->path, rel);
}

/* Opens rel inside the root. RESOLVE_IN_ROOT keeps absolute links and ".." inside it;
 * kernels before 5.6 lack openat2 and get a plain openat (fixtures use relative links). */
int qp_root_openat(const struct qp_root *root, const char *rel, int flags)
{
	static bool no_openat2;
	if (!no_openat2) {
		struct open_how how = {
			.flags = (unsigned long long)(flags | O_CLOEXEC),
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};
		int fd;
		/* EAGAIN: a rename or mount anywhere on the system raced with the lookup;
		 * openat2(2) says to retry. It is rare, and a retry almost always passes. */
		for (int tries = 0; tries < 100; tries++) {
			fd = (int)syscall(SYS_openat2, root->fd, rel, &how, sizeof(how));
			if (fd >= 0 || errno != EAGAIN)
				break;
		}
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM && errno != EAGAIN))
			return fd;
		if (errno == EAGAIN)
			return openat(root->fd, rel, flags | O_CLOEXEC);
		/* ENOSYS: old kernel; EPERM: a seccomp filter that denies the syscall. */
		no_openat2 = true;
	}
	return openat(root->fd, rel, flags | O_CLOEXEC);
}

static int read_impl(const struct qp_root *root, const char *rel, bool optional, char **content,
		     size_t *len, struct qp_err **err)
{
	*content = NULL;
	if (len)
		*len = 0;
	qp_autoclose int fd = qp_root_openat(root, rel, O_RDONLY | O_NOCTTY);
	if (fd < 0 && optional && errno == ENOENT)
		return 0;
	qp_autofree char *where = qp_root_display(root, rel);
	if (fd < 0)
		return qp_err_set(err, errno, "cannot open %s", where);
	size_t cap = 0, n = 0;
	qp_autofree char *buf = NULL;
	for (;;) {
		buf = qp_xgrow(buf, &cap, n + 4096 + 1, 1);
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return qp_err_set(err, errno, "cannot read %s", where);
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > QP_READ_MAX)
			return qp_err_set(err, EFBIG, "cannot read %s", where);
	}
	buf[n] = '\0';
	*content = qp_steal(&buf);
	if (len)
		*len = n;
	return 0;
}

int qp_root_read(const struct qp_root *root, const char *rel, char **content, size_t *len,
		 struct qp_err **err)
{
	return read_impl(root, rel, false, content, len, err);
}

int qp_root_pread(const struct qp_root *root, const char *rel, size_t off, void *buf, size_t len,
		  struct qp_err **err)
{
	qp_autofree char *where = qp_root_display(root, rel);
	qp_autoclose int fd = qp_root_openat(root, rel, O_RDONLY | O_NOCTTY);
	if (fd < 0)
		return qp_err_set(err, errno, "cannot open %s", where);
	ssize_t n;
	do
		n = pread(fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return qp_err_set(err, errno, "cannot read %s", where);
	if ((size_t)n < len)
		return qp_err_set(err, 0, "%s: %zd bytes at offset 0x%zx, expected %zu (the file is "
				  "too short)", where, n, off, len);
	return 0;
}

int qp_root_read_opt(const struct qp_root *root, const char *rel, char **content, size_t *len,
		     struct qp_err **err)
{
	return read_impl(root, rel, true, content, len, err);
}

/* Splits rel into its parent (opened inside the root) and last component. */
static int open_parent(const struct qp_root *root, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/');
	if (!slash) {
		*base = rel;
		return dup(root->fd);
	}
	*base = slash + 1;
	qp_autofree char *dir = qp_xstrndup(rel, (size_t)(slash - rel));
	return qp_root_openat(root, dir, O_PATH | O_DIRECTORY);
}

int qp_root_readlink(const struct qp_root *root, const char *rel, bool optional, char **target,
		     struct qp_err **err)
{
	*target = NULL;
	const char *base;
	qp_autofree char *where = qp_root_display(root, rel);
	qp_autoclose int dfd = open_parent(root, rel, &base);
	if (dfd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		return qp_err_set(err, errno, "cannot read the link %s", where);
	}
	char buf[4096];
	ssize_t n = readlinkat(dfd, base, buf, sizeof(buf) - 1);
	if (n < 0) {
		if (optional && (errno == ENOENT || errno == EINVAL))
			return 0;
		if (errno == EINVAL)
			return qp_err_set(err, 0, "%s is not a symbolic link", where);
		return qp_err_set(err, errno, "cannot read the link %s", where);
	}
	buf[n] = '\0';
	*target = qp_xstrdup(buf);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int qp_root_list(const struct qp_root *root, const char *rel, bool optional, char ***names,
		 struct qp_err **err)
{
	*names = NULL;
	qp_autofree char *where = qp_root_display(root, rel);
	int fd = qp_root_openat(root, rel, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		if (optional && errno == ENOENT) {
			*names = qp_xcalloc(1, sizeof(char *));
			return 0;
		}
		return qp_err_set(err, errno, "cannot open the directory %s", where);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return qp_err_set(err, errno, "cannot open the directory %s", where);
	}
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		v = qp_xgrow(v, &cap, n + 2, sizeof(*v));
		v[n++] = qp_xstrdup(e->d_name);
		v[n] = NULL;
	}
	int saved = errno;
	closedir(d);
	if (saved) {
		qp_strv_free(v);
		return qp_err_set(err, saved, "cannot list %s", where);
	}
	if (!v)
		v = qp_xcalloc(1, sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	return 0;
}

bool qp_root_exists(const struct qp_root *root, const char *rel)
{
	qp_autoclose int fd = qp_root_openat(root, rel, O_PATH);
	return fd >= 0;
}

int qp_path_join_link(const char *dir, const char *target, char **out, struct qp_err **err)
{
	if (target[0] == '/')
	{
		qp_autofree char *q = qp_quote(target);
		return qp_err_set(err, 0, "link target %s is absolute; sysfs links are relative", q);
	}
	/* Components of dir, then of target, folded on a stack. */
	qp_autofree char *all = qp_xasprintf("%s/%s", dir, target);
	char **parts = NULL;
	size_t n = 0, cap = 0;
	char *save = NULL;
	for (char *tok = strtok_r(all, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			if (!n) {
				free(parts);
				qp_autofree char *q = qp_quote(target);
				return qp_err_set(err, 0, "link target %s leaves the system root", q);
			}
			n--;
			continue;
		}
		parts = qp_xgrow(parts, &cap, n + 1, sizeof(*parts));
		parts[n++] = tok;
	}
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "");
	for (size_t i = 0; i < n; i++) {
		if (i)
			qp_buf_addc(&b, '/');
		qp_buf_add(&b, parts[i]);
	}
	free(parts);
	*out = qp_buf_steal(&b);
	return 0;
}
