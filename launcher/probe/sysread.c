#include "probe/sysread.h"

#include <string.h>

#include "base/sysparse.h"
#include "base/util.h"

int qp_sysread_name_file(const struct qp_root *r, const char *rel, struct qp_err **err)
{
	qp_autofree char *where = qp_root_display(r, rel);
	return qp_err_prefix(err, "%s", where);
}

/* Reads rel; *content NULL when optional and absent. */
static int read_file(const struct qp_root *r, const char *rel, bool optional, char **content,
		     size_t *len, struct qp_err **err)
{
	if (optional)
		return qp_root_read_opt(r, rel, content, len, err);
	return qp_root_read(r, rel, content, len, err);
}

int qp_sysread_hex(const struct qp_root *r, const char *dir, const char *file, unsigned bits,
		   uint32_t *out, struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("%s/%s", dir, file);
	qp_autofree char *c = NULL;
	if (qp_root_read(r, rel, &c, NULL, err) < 0)
		return -1;
	if (qp_parse_sysfs_hex(c, bits, out, err) < 0)
		return qp_sysread_name_file(r, rel, err);
	return 0;
}

int qp_sysread_int(const struct qp_root *r, const char *rel, bool optional, long min, long max,
		   long dflt, long *out, struct qp_err **err)
{
	qp_autofree char *c = NULL;
	if (read_file(r, rel, optional, &c, NULL, err) < 0)
		return -1;
	if (!c) {
		*out = dflt;
		return 0;
	}
	if (qp_parse_sysfs_int(c, min, max, out, err) < 0)
		return qp_sysread_name_file(r, rel, err);
	return 0;
}

int qp_sysread_u64(const struct qp_root *r, const char *rel, uint64_t *out, struct qp_err **err)
{
	qp_autofree char *c = NULL;
	if (qp_root_read(r, rel, &c, NULL, err) < 0)
		return -1;
	if (qp_parse_sysfs_u64(c, out, err) < 0)
		return qp_sysread_name_file(r, rel, err);
	return 0;
}

int qp_sysread_line(const struct qp_root *r, const char *rel, bool optional, char **out,
		    struct qp_err **err)
{
	*out = NULL;
	qp_autofree char *c = NULL;
	size_t len;
	if (read_file(r, rel, optional, &c, &len, err) < 0)
		return -1;
	if (!c)
		return 0;
	if (qp_parse_line(c, len, out, err) < 0)
		return qp_sysread_name_file(r, rel, err);
	return 0;
}

int qp_sysread_cpulist(const struct qp_root *r, const char *rel, struct qp_cpulist *out,
		       struct qp_err **err)
{
	qp_autofree char *c = NULL;
	size_t len;
	if (qp_root_read(r, rel, &c, &len, err) < 0)
		return -1;
	if (strlen(c) != len || qp_cpulist_parse(c, out, err) < 0) {
		qp_err_set(err, 0, "not a CPU list");
		return qp_sysread_name_file(r, rel, err);
	}
	return 0;
}

int qp_sysread_link_name(const struct qp_root *r, const char *rel, const char *dir, char **out,
			 struct qp_err **err)
{
	*out = NULL;
	qp_autofree char *target = NULL;
	if (qp_root_readlink(r, rel, true, &target, err) < 0)
		return -1;
	if (!target)
		return 0;
	if (qp_parse_link_name(target, dir, out, err) < 0)
		return qp_sysread_name_file(r, rel, err);
	return 0;
}
