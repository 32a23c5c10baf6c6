#include "base/root.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
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
		/* Still racing after 100 tries: on the host's own / nothing needs containing;
		 * under a --sysroot an uncontained open is refused, never made silently. */
		if (errno == EAGAIN)
			return strcmp(root->path, "/") ? -1 : openat(root->fd, rel, flags | O_CLOEXEC);
		/* ENOSYS: old kernel; EPERM: a seccomp filter that denies the syscall. */
		no_openat2 = true;
		if (strcmp(root->path, "/"))
			fprintf(stderr, "qpass: warning: openat2 is not there (Linux 5.6+, or a "
				"seccomp filter denies it): reads under %s are not contained, and "
				"an absolute link in it leads to the real host\n", root->path);
	}
	return openat(root->fd, rel, flags | O_CLOEXEC);
}

/* The error for ROOT/dir/name (dir NULL: ROOT/name): "WHAT ROOT/...", made only when
 * there is one. */
static int fail_in(const struct qp_root *root, const char *dir, const char *name, int errnum,
		   const char *what, struct qp_err **err)
{
	qp_autofree char *rel = dir ? qp_xasprintf("%s/%s", dir, name) : NULL;
	qp_autofree char *where = qp_root_display(root, rel ? rel : name);
	return qp_err_set(err, errnum, "%s %s", what, where);
}

static int fail_at(const struct qp_root *root, const char *rel, int errnum, const char *what,
		   struct qp_err **err)
{
	return fail_in(root, NULL, rel, errnum, what, err);
}

/* Reads the open fd to its end: a sysfs attribute (whole) comes in one read, so that a
 * shorter read than asked is its end (procfs, whose seq_files give a page at a time, is
 * read to the end). Errors name ROOT/dir/name. */
static int read_fd(const struct qp_root *root, const char *dir, const char *name, int fd,
		   bool whole, char **content, size_t *len, struct qp_err **err)
{
	size_t cap = 0, n = 0;
	qp_autofree char *buf = NULL;
	for (;;) {
		buf = qp_xgrow(buf, &cap, n + 4096 + 1, 1);
		size_t want = cap - n - 1;
		ssize_t r = read(fd, buf + n, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail_in(root, dir, name, errno, "cannot read", err);
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > QP_READ_MAX)
			return fail_in(root, dir, name, EFBIG, "cannot read", err);
		if (whole && (size_t)r < want)
			break;
	}
	buf[n] = '\0';
	*content = qp_steal(&buf);
	if (len)
		*len = n;
	return 0;
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
	if (fd < 0)
		return fail_at(root, rel, errno, "cannot open", err);
	return read_fd(root, NULL, rel, fd, !strncmp(rel, "sys/", 4), content, len, err);
}

int qp_root_read(const struct qp_root *root, const char *rel, char **content, size_t *len,
		 struct qp_err **err)
{
	return read_impl(root, rel, false, content, len, err);
}

int qp_root_pread(const struct qp_root *root, const char *rel, size_t off, void *buf, size_t len,
		  struct qp_err **err)
{
	qp_autoclose int fd = qp_root_openat(root, rel, O_RDONLY | O_NOCTTY);
	if (fd < 0)
		return fail_at(root, rel, errno, "cannot open", err);
	ssize_t n;
	do
		n = pread(fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail_at(root, rel, errno, "cannot read", err);
	if ((size_t)n < len) {
		qp_autofree char *where = qp_root_display(root, rel);
		return qp_err_set(err, 0, "%s: %zd bytes at offset 0x%zx, expected %zu (the file is "
				  "too short)", where, n, off, len);
	}
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
	qp_autoclose int dfd = open_parent(root, rel, &base);
	if (dfd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		return fail_at(root, rel, errno, "cannot read the link", err);
	}
	char buf[4096];
	ssize_t n = readlinkat(dfd, base, buf, sizeof(buf) - 1);
	if (n < 0) {
		if (optional && (errno == ENOENT || errno == EINVAL))
			return 0;
		if (errno == EINVAL) {
			qp_autofree char *where = qp_root_display(root, rel);
			return qp_err_set(err, 0, "%s is not a symbolic link", where);
		}
		return fail_at(root, rel, errno, "cannot read the link", err);
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
	int fd = qp_root_openat(root, rel, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		if (optional && errno == ENOENT) {
			*names = qp_xcalloc(1, sizeof(char *));
			return 0;
		}
		return fail_at(root, rel, errno, "cannot open the directory", err);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return fail_at(root, rel, e, "cannot open the directory", err);
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
		return fail_at(root, rel, saved, "cannot list", err);
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

/* --- a directory, read by its entries' names -------------------------------------- */

void qp_rootdir_init(struct qp_rootdir *d, const struct qp_root *root, const char *rel)
{
	*d = (struct qp_rootdir){ .root = root, .rel = rel, .fd = -1 };
}

void qp_rootdir_close(struct qp_rootdir *d)
{
	qp_closep(&d->fd);
}

/* The directory's fd, opened at the first use; -1 with errno when it cannot be. */
static int dir_fd(struct qp_rootdir *d)
{
	if (d->fd < 0 && !d->open_errno) {
		d->fd = qp_root_openat(d->root, d->rel, O_PATH | O_DIRECTORY);
		if (d->fd < 0)
			d->open_errno = errno;
	}
	if (d->fd < 0)
		errno = d->open_errno;
	return d->fd;
}

/* Opens entry name: no link is followed (the name is one component). */
static int entry_open(struct qp_rootdir *d, const char *name, int flags)
{
	int dfd = dir_fd(d);
	return dfd < 0 ? -1 : openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
}

int qp_rootdir_read(struct qp_rootdir *d, const char *name, bool optional, char **content,
		    size_t *len, struct qp_err **err)
{
	*content = NULL;
	if (len)
		*len = 0;
	qp_autoclose int fd = entry_open(d, name, O_RDONLY);
	if (fd < 0 && optional && errno == ENOENT)
		return 0;
	if (fd < 0)
		return fail_in(d->root, d->rel, name, errno, "cannot open", err);
	return read_fd(d->root, d->rel, name, fd, true, content, len, err);
}

int qp_rootdir_pread(struct qp_rootdir *d, const char *name, size_t off, void *buf, size_t len,
		     struct qp_err **err)
{
	qp_autoclose int fd = entry_open(d, name, O_RDONLY);
	if (fd < 0)
		return fail_in(d->root, d->rel, name, errno, "cannot open", err);
	ssize_t n;
	do
		n = pread(fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail_in(d->root, d->rel, name, errno, "cannot read", err);
	if ((size_t)n < len) {
		qp_autofree char *rel = qp_xasprintf("%s/%s", d->rel, name);
		qp_autofree char *where = qp_root_display(d->root, rel);
		return qp_err_set(err, 0, "%s: %zd bytes at offset 0x%zx, expected %zu (the file is "
				  "too short)", where, n, off, len);
	}
	return 0;
}

int qp_rootdir_readlink(struct qp_rootdir *d, const char *name, bool optional, char **target,
			struct qp_err **err)
{
	*target = NULL;
	int dfd = dir_fd(d);
	char buf[4096];
	ssize_t n = dfd < 0 ? -1 : readlinkat(dfd, name, buf, sizeof(buf) - 1);
	if (n < 0) {
		if (optional && (errno == ENOENT || errno == EINVAL))
			return 0;
		if (errno == EINVAL) {
			qp_autofree char *rel = qp_xasprintf("%s/%s", d->rel, name);
			qp_autofree char *where = qp_root_display(d->root, rel);
			return qp_err_set(err, 0, "%s is not a symbolic link", where);
		}
		return fail_in(d->root, d->rel, name, errno, "cannot read the link", err);
	}
	buf[n] = '\0';
	*target = qp_xstrdup(buf);
	return 0;
}
