/* The directories and files qpass makes for itself on the host (RUNDIR and what is in
 * it, the per-VM state directory), outside the system root: reads of the host go
 * through base/root.h. */
#ifndef QP_FILES_H
#define QP_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/err.h"

/* Creates path and its missing parents (0755); path itself gets mode. An existing
 * directory is fine. */
int qp_mkdir_p(const char *path, mode_t mode, struct qp_err **err);

/* Replaces path with text (len bytes) at once: written to PATH.PID.tmp (mode, created
 * with O_EXCL: no two writers share one; one left by a dead process of the same pid is
 * removed first), then renamed over it, so that a reader sees the old file or the new
 * one, never part of either. With sync, the file and then its directory are fsync'd
 * first (it survives a power cut). On failure the temporary file is removed. */
int qp_write_atomic(const char *path, const char *text, size_t len, mode_t mode, bool sync,
		    struct qp_err **err);

/* Removes what qp_write_atomic left in dir when its process was killed mid-write:
 * NAME.PID.tmp files whose PID is no process now. */
void qp_remove_stale_tmp(const char *dir);

/* Locks the file at path (created 0600 if missing) with flock(op: LOCK_EX, | LOCK_NB):
 * the fd, or -1 with errno (EWOULDBLOCK: held). Safe beside holders that unlink the
 * file while they hold it (the release of a lock here): after taking the lock, the
 * path must still name the locked file, else the lock is on a file nobody else can
 * find, and it is taken again on the new one. */
int qp_lock_path(const char *path, int op);

#endif
