/* Typed reads of single sysfs and procfs values under the system root, each error
 * prefixed with the file as the user knows it ("ROOT/sys/bus/pci/devices/.../class: ").
 * The parsing is base/sysparse's; this is its edge.
 *
 * Each value is read from a directory and a name: a struct qp_rootdir (base/root.h)
 * opened once for many values (a device's, a CPU's), or, with the qp_sysread_*
 * functions, a path relative to the root. */
#ifndef QP_SYSREAD_H
#define QP_SYSREAD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "base/root.h"

/* Prefixes "ROOT/dir/name: " to *err; returns -1. */
int qp_sysdir_name_file(const struct qp_rootdir *d, const char *name, struct qp_err **err);

/* A hex value of at most `bits` bits ("0x10de"). */
int qp_sysdir_hex(struct qp_rootdir *d, const char *name, unsigned bits, uint32_t *out,
		  struct qp_err **err);
/* An integer in [min, max]; `dflt` when optional and absent. */
int qp_sysdir_int(struct qp_rootdir *d, const char *name, bool optional, long min, long max,
		  long dflt, long *out, struct qp_err **err);
int qp_sysdir_u64(struct qp_rootdir *d, const char *name, uint64_t *out, struct qp_err **err);
/* One line of text, without its newline; NULL when optional and absent. */
int qp_sysdir_line(struct qp_rootdir *d, const char *name, bool optional, char **out,
		   struct qp_err **err);
/* A CPU list ("0-13,28-41"). */
int qp_sysdir_cpulist(struct qp_rootdir *d, const char *name, struct qp_cpulist *out,
		      struct qp_err **err);
/* The name a link points at: ".../<dir>/<name>"; NULL when the link is absent. */
int qp_sysdir_link_name(struct qp_rootdir *d, const char *name, const char *dir, char **out,
			struct qp_err **err);

/* The same, of a path relative to the root. */
int qp_sysread_name_file(const struct qp_root *r, const char *rel, struct qp_err **err);
int qp_sysread_hex(const struct qp_root *r, const char *dir, const char *file, unsigned bits,
		   uint32_t *out, struct qp_err **err);
int qp_sysread_int(const struct qp_root *r, const char *rel, bool optional, long min, long max,
		   long dflt, long *out, struct qp_err **err);
int qp_sysread_u64(const struct qp_root *r, const char *rel, uint64_t *out, struct qp_err **err);
int qp_sysread_line(const struct qp_root *r, const char *rel, bool optional, char **out,
		    struct qp_err **err);
int qp_sysread_cpulist(const struct qp_root *r, const char *rel, struct qp_cpulist *out,
		       struct qp_err **err);
int qp_sysread_link_name(const struct qp_root *r, const char *rel, const char *dir, char **out,
			 struct qp_err **err);

#endif
