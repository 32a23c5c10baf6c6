/* `qpass check`: how to change the kernel command line on this host, for the rules
 * whose fix is a boot parameter (the IOMMU, interrupt remapping, a boot framebuffer):
 * the GRUB_CMDLINE_LINUX line of /etc/default/grub as it should read, the command that
 * makes the boot loader's configuration on this distribution, the reboot. Pure. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/check-int.h"

static bool os_is(const struct qp_check_facts *f, const char *const *ids)
{
	if (!f->os_ids)
		return false;
	for (; *ids; ids++) {
		size_t n = strlen(*ids);
		for (const char *p = f->os_ids; (p = strstr(p, *ids)); p += n)
			if ((p == f->os_ids || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
				return true;
	}
	return false;
}

static const char *const debian_like[] = { "debian", "ubuntu", NULL };
static const char *const rhel_like[] = { "rhel", "centos", "fedora", NULL };

static const char *grub_update(const struct qp_check_facts *f)
{
	if (os_is(f, debian_like))
		return "update-grub";
	if (os_is(f, rhel_like))
		return "grub2-mkconfig -o /boot/grub2/grub.cfg";
	return "update-grub (Debian, Ubuntu) or grub2-mkconfig -o /boot/grub2/grub.cfg "
	       "(CentOS, RHEL, Fedora)";
}

/* The GRUB_CMDLINE_LINUX line with add appended and every word starting with drop
 * removed. */
static char *grub_edit(const char *line, const char *add, const char *const *drop)
{
	const char *eq = strchr(line, '=');
	if (!eq)
		return qp_xasprintf("GRUB_CMDLINE_LINUX=\"%s\"", add ? add : "");
	char quote = (eq[1] == '"' || eq[1] == '\'') ? eq[1] : 0;
	const char *v = eq + 1 + (quote != 0);
	size_t vlen = strlen(v);
	if (quote && vlen && v[vlen - 1] == quote)
		vlen--;
	qp_autofree char *value = qp_xstrndup(v, vlen);
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "GRUB_CMDLINE_LINUX=\"");
	bool first = true;
	for (char *save = NULL, *w = strtok_r(value, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		bool dropped = false;
		for (const char *const *d = drop; d && *d; d++)
			dropped = dropped || !strncmp(w, *d, strlen(*d));
		if (dropped)
			continue;
		qp_buf_addf(&b, "%s%s", first ? "" : " ", w);
		first = false;
	}
	if (add)
		qp_buf_addf(&b, "%s%s", first ? "" : " ", add);
	qp_buf_addc(&b, '"');
	return qp_buf_steal(&b);
}

/* The first word of the command line that starts with prefix, or NULL. */
static char *cmdline_word(const char *cmdline, const char *prefix)
{
	qp_autofree char *copy = qp_xstrdup(cmdline ? cmdline : "");
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
		if (!strncmp(w, prefix, strlen(prefix)))
			return qp_xstrdup(w);
	return NULL;
}

char *qp_check_cmdline_fix(const struct qp_host *h, const struct qp_check_facts *f,
			   const char *add, const char *const *drop)
{
	if (!f->grub_file) {
		struct qp_buf b = { 0 };
		if (add)
			qp_buf_addf(&b, "add %s to ", add);
		struct qp_buf rm = { 0 };
		for (const char *const *d = drop; d && *d; d++) {
			qp_autofree char *w = cmdline_word(h->cmdline, *d);
			if (w)
				qp_buf_addf(&rm, "%s%s", rm.len ? " and " : "", w);
		}
		if (rm.len)
			qp_buf_addf(&b, "%sremove %s from ", add ? "and " : "", rm.s);
		qp_buf_free(&rm);
		qp_buf_add(&b, "the kernel command line in your boot loader's configuration "
			       "(this host has no /etc/default/grub); then reboot");
		return qp_buf_steal(&b);
	}
	const char *base = f->grub_line ? f->grub_line : "GRUB_CMDLINE_LINUX=\"\"";
	qp_autofree char *edited = grub_edit(base, add, drop);
	if (f->grub_line)
		return qp_xasprintf("in /etc/default/grub, line %d, make it:\n    %s\nthen run "
				    "%s, and reboot", f->grub_lineno, edited, grub_update(f));
	return qp_xasprintf("add this line to /etc/default/grub:\n    %s\nthen run %s, and "
			    "reboot", edited, grub_update(f));
}
