/* The one door to the host: every read of sysfs, procfs and /dev goes through a root
 * directory (default "/"; --sysroot DIR or QPASS_SYSROOT point it at a fixture host).
 *
 * The root is opened once as a directory fd; paths are relative to it ("sys/bus/pci")
 * and resolved inside it (openat2 RESOLVE_IN_ROOT where the kernel has it), so a
 * fixture's links can never lead a read out to the real host. Errors name the path as
 * the user knows it: the root joined with the relative path. */
#ifndef QP_ROOT_H
#define QP_ROOT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

struct qp_root {
	int fd;
	char *path;  /* as given, without a trailing slash (but "/" stays "/") */
};

/* Opens DIR as the root. On failure nothing is left open. */
int qp_root_open(const char *dir, struct qp_root *root, struct qp_err **err);
void qp_root_close(struct qp_root *root);

/* The root chosen by the user: `opt` (from --sysroot) if set, else QPASS_SYSROOT, else "/". */
const char *qp_root_choose(const char *opt);

/* Opens rel inside the root (RESOLVE_IN_ROOT where the kernel has it). */
int qp_root_openat(const struct qp_root *root, const char *rel, int flags);

/* "ROOT/rel" for messages (caller frees). */
char *qp_root_display(const struct qp_root *root, const char *rel);

/* Reads a whole file (at most 4 MiB), NUL-terminated; *len excludes the NUL.
 * Errors name the file; (*err)->errnum is ENOENT when it does not exist. */
int qp_root_read(const struct qp_root *root, const char *rel, char **content, size_t *len,
		 struct qp_err **err);

/* Reads `len` bytes at offset `off` of a file; a shorter file is an error. For PCI
 * config space, where every dword read is a device access (slow under a hypervisor). */
int qp_root_pread(const struct qp_root *root, const char *rel, size_t off, void *buf, size_t len,
		  struct qp_err **err);

/* Like qp_root_read, but a missing file is not an error: *content is NULL. */
int qp_root_read_opt(const struct qp_root *root, const char *rel, char **content, size_t *len,
		     struct qp_err **err);

/* Reads a symlink's target. A missing link (or a non-link) gives *target NULL when
 * `optional`, else an error. */
int qp_root_readlink(const struct qp_root *root, const char *rel, bool optional, char **target,
		     struct qp_err **err);

/* Lists a directory's entries, sorted, without "." and "..". A missing directory gives
 * an empty list when `optional`. The array is NULL-terminated (free with qp_strv_free). */
int qp_root_list(const struct qp_root *root, const char *rel, bool optional, char ***names,
		 struct qp_err **err);

/* Whether rel exists (following links inside the root). */
bool qp_root_exists(const struct qp_root *root, const char *rel);

/* A directory under the root whose entries are read by name: it is resolved once (at
 * the first read), and each entry is then opened without following a link (sysfs
 * attributes are files; links are read with qp_rootdir_readlink). A device's dozen
 * attributes cost one path resolution, not twelve. Each call behaves, and fails with the
 * same message, as the qp_root_* call on "rel/name" would. */
struct qp_rootdir {
	const struct qp_root *root;
	const char *rel;   /* the directory, relative to the root; borrowed */
	int fd;            /* -1 until the first read */
	int open_errno;    /* why it could not be opened, once it could not */
};

void qp_rootdir_init(struct qp_rootdir *d, const struct qp_root *root, const char *rel);
void qp_rootdir_close(struct qp_rootdir *d);
/* A sysfs attribute: read whole (one read), NUL-terminated. */
int qp_rootdir_read(struct qp_rootdir *d, const char *name, bool optional, char **content,
		    size_t *len, struct qp_err **err);
int qp_rootdir_pread(struct qp_rootdir *d, const char *name, size_t off, void *buf, size_t len,
		     struct qp_err **err);
int qp_rootdir_readlink(struct qp_rootdir *d, const char *name, bool optional, char **target,
			struct qp_err **err);

/* Joins a link's directory and its relative target, and folds "." and ".." textually:
 * ("sys/bus/pci/devices", "../../../devices/pci0000:00/0000:00:02.0") ->
 * "sys/devices/pci0000:00/0000:00:02.0". Fails on an absolute target or one that
 * climbs above the root. Pure. */
int qp_path_join_link(const char *dir, const char *target, char **out, struct qp_err **err);

#endif
