#include "probe/sysread.h"

#include <string.h>

#include "base/sysparse.h"
#include "base/util.h"

/* A struct qp_rootdir whose rel is NULL reads paths relative to the root itself. */
static struct qp_rootdir at_root(const struct qp_root *r)
{
	struct qp_rootdir d;
	qp_rootdir_init(&d, r, NULL);
	return d;
}

int qp_sysdir_name_file(const struct qp_rootdir *d, const char *name, struct qp_err **err)
{
	qp_autofree char *rel = d->rel ? qp_xasprintf("%s/%s", d->rel, name) : NULL;
	qp_autofree char *where = qp_root_display(d->root, rel ? rel : name);
	return qp_err_prefix(err, "%s", where);
}

/* Reads the value; *content NULL when optional and absent. */
static int get(struct qp_rootdir *d, const char *name, bool optional, char **content,
	       size_t *len, struct qp_err **err)
{
	if (d->rel)
		return qp_rootdir_read(d, name, optional, content, len, err);
	if (optional)
		return qp_root_read_opt(d->root, name, content, len, err);
	return qp_root_read(d->root, name, content, len, err);
}

int qp_sysdir_hex(struct qp_rootdir *d, const char *name, unsigned bits, uint32_t *out,
		  struct qp_err **err)
{
	qp_autofree char *c = NULL;
	if (get(d, name, false, &c, NULL, err) < 0)
		return -1;
	if (qp_parse_sysfs_hex(c, bits, out, err) < 0)
		return qp_sysdir_name_file(d, name, err);
	return 0;
}

int qp_sysdir_int(struct qp_rootdir *d, const char *name, bool optional, long min, long max,
		  long dflt, long *out, struct qp_err **err)
{
	qp_autofree char *c = NULL;
	if (get(d, name, optional, &c, NULL, err) < 0)
		return -1;
	if (!c) {
		*out = dflt;
		return 0;
	}
	if (qp_parse_sysfs_int(c, min, max, out, err) < 0)
		return qp_sysdir_name_file(d, name, err);
	return 0;
}

int qp_sysdir_u64(struct qp_rootdir *d, const char *name, uint64_t *out, struct qp_err **err)
{
	qp_autofree char *c = NULL;
	if (get(d, name, false, &c, NULL, err) < 0)
		return -1;
	if (qp_parse_sysfs_u64(c, out, err) < 0)
		return qp_sysdir_name_file(d, name, err);
	return 0;
}

int qp_sysdir_line(struct qp_rootdir *d, const char *name, bool optional, char **out,
		   struct qp_err **err)
{
	*out = NULL;
	qp_autofree char *c = NULL;
	size_t len;
	if (get(d, name, optional, &c, &len, err) < 0)
		return -1;
	if (!c)
		return 0;
	if (qp_parse_line(c, len, out, err) < 0)
		return qp_sysdir_name_file(d, name, err);
	return 0;
}

int qp_sysdir_cpulist(struct qp_rootdir *d, const char *name, struct qp_cpulist *out,
		      struct qp_err **err)
{
	qp_autofree char *c = NULL;
	size_t len;
	if (get(d, name, false, &c, &len, err) < 0)
		return -1;
	if (strlen(c) != len || qp_cpulist_parse(c, out, err) < 0) {
		qp_err_set(err, 0, "not a CPU list");
		return qp_sysdir_name_file(d, name, err);
	}
	return 0;
}

int qp_sysdir_link_name(struct qp_rootdir *d, const char *name, const char *dir, char **out,
			struct qp_err **err)
{
	*out = NULL;
	qp_autofree char *target = NULL;
	int rc = d->rel ? qp_rootdir_readlink(d, name, true, &target, err)
			: qp_root_readlink(d->root, name, true, &target, err);
	if (rc < 0)
		return -1;
	if (!target)
		return 0;
	if (qp_parse_link_name(target, dir, out, err) < 0)
		return qp_sysdir_name_file(d, name, err);
	return 0;
}

/* --- paths relative to the root ---------------------------------------------------- */

int qp_sysread_name_file(const struct qp_root *r, const char *rel, struct qp_err **err)
{
	struct qp_rootdir d = at_root(r);
	return qp_sysdir_name_file(&d, rel, err);
}

int qp_sysread_hex(const struct qp_root *r, const char *dir, const char *file, unsigned bits,
		   uint32_t *out, struct qp_err **err)
{
	struct qp_rootdir d;
	qp_rootdir_init(&d, r, dir);
	int rc = qp_sysdir_hex(&d, file, bits, out, err);
	qp_rootdir_close(&d);
	return rc;
}

int qp_sysread_int(const struct qp_root *r, const char *rel, bool optional, long min, long max,
		   long dflt, long *out, struct qp_err **err)
{
	struct qp_rootdir d = at_root(r);
	return qp_sysdir_int(&d, rel, optional, min, max, dflt, out, err);
}

int qp_sysread_u64(const struct qp_root *r, const char *rel, uint64_t *out, struct qp_err **err)
{
	struct qp_rootdir d = at_root(r);
	return qp_sysdir_u64(&d, rel, out, err);
}

int qp_sysread_line(const struct qp_root *r, const char *rel, bool optional, char **out,
		    struct qp_err **err)
{
	struct qp_rootdir d = at_root(r);
	return qp_sysdir_line(&d, rel, optional, out, err);
}

int qp_sysread_cpulist(const struct qp_root *r, const char *rel, struct qp_cpulist *out,
		       struct qp_err **err)
{
	struct qp_rootdir d = at_root(r);
	return qp_sysdir_cpulist(&d, rel, out, err);
}

int qp_sysread_link_name(const struct qp_root *r, const char *rel, const char *dir, char **out,
			 struct qp_err **err)
{
	struct qp_rootdir d = at_root(r);
	return qp_sysdir_link_name(&d, rel, dir, out, err);
}
