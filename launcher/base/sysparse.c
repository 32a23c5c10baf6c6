#include "base/sysparse.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int qp_parse_line(const char *content, size_t len, char **out, struct qp_err **err)
{
	size_t n = len;
	if (n && content[n - 1] == '\n')
		n--;
	for (size_t i = 0; i < n; i++) {
		if (content[i] == '\n' || content[i] == '\0') {
			qp_autofree char *s = qp_quote(content);
			return qp_err_set(err, 0, "expected one line, got %s", s);
		}
	}
	*out = qp_xstrndup(content, n);
	return 0;
}

/* The value part of a one-line sysfs file: its text without the final newline. */
static int value_text(const char *content, char **out, struct qp_err **err)
{
	if (qp_parse_line(content, strlen(content), out, err) < 0)
		return -1;
	if (!**out) {
		qp_freep(out);
		return qp_err_set(err, 0, "empty value");
	}
	return 0;
}

int qp_parse_sysfs_hex(const char *content, unsigned bits, uint32_t *out, struct qp_err **err)
{
	qp_autofree char *v = NULL;
	if (value_text(content, &v, err) < 0)
		return -1;
	size_t n = strlen(v);
	unsigned digits = (bits + 3) / 4;
	uint32_t x = 0;
	bool ok = n > 2 && n - 2 <= digits && v[0] == '0' && v[1] == 'x';
	for (size_t i = 2; ok && i < n; i++) {
		int h = qp_hexval(v[i]);
		ok = h >= 0 && !(v[i] >= 'A' && v[i] <= 'F');
		x = x << 4 | (uint32_t)(h < 0 ? 0 : h);
	}
	if (ok && bits < 32 && x >> bits)
		ok = false;
	if (!ok) {
		qp_autofree char *s = qp_quote(content);
		return qp_err_set(err, 0, "expected a %u-bit hex value like 0x%0*x, got %s", bits,
				  (int)digits, 0, s);
	}
	*out = x;
	return 0;
}

int qp_parse_sysfs_int(const char *content, long min, long max, long *out, struct qp_err **err)
{
	qp_autofree char *v = NULL;
	if (value_text(content, &v, err) < 0)
		return -1;
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	/* strtol accepts leading blanks and '+'; the kernel never writes them. */
	if (errno || *end || isspace((unsigned char)v[0]) || v[0] == '+' || x < min || x > max) {
		qp_autofree char *s = qp_quote(content);
		return qp_err_set(err, 0, "expected an integer from %ld to %ld, got %s", min, max, s);
	}
	*out = x;
	return 0;
}

static bool parse_u64_word(const char *s, uint64_t *out)
{
	if (!isdigit((unsigned char)s[0]))
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

int qp_parse_sysfs_u64(const char *content, uint64_t *out, struct qp_err **err)
{
	qp_autofree char *v = NULL;
	if (value_text(content, &v, err) < 0)
		return -1;
	if (!parse_u64_word(v, out)) {
		qp_autofree char *s = qp_quote(content);
		return qp_err_set(err, 0, "expected a non-negative integer, got %s", s);
	}
	return 0;
}

int qp_parse_link_name(const char *target, const char *dir, char **name, struct qp_err **err)
{
	const char *slash = strrchr(target, '/');
	const char *base = slash ? slash + 1 : target;
	size_t dl = strlen(dir);
	bool ok = slash && *base && (size_t)(slash - target) >= dl &&
		  strncmp(slash - dl, dir, dl) == 0 &&
		  (slash - dl == target || slash[-(ptrdiff_t)dl - 1] == '/');
	if (!ok) {
		qp_autofree char *s = qp_quote(target);
		return qp_err_set(err, 0, "expected a link to .../%s/NAME, got %s", dir, s);
	}
	*name = qp_xstrdup(base);
	return 0;
}

/* Returns a copy of the line at *p, without its newline, and moves *p past it. */
static char *next_line(const char **p)
{
	const char *nl = strchr(*p, '\n');
	size_t len = nl ? (size_t)(nl - *p) : strlen(*p);
	char *l = qp_xstrndup(*p, len);
	*p += len + (nl ? 1 : 0);
	return l;
}

int qp_parse_node_meminfo(const char *content, int node, uint64_t *total_kb, uint64_t *free_kb,
			  uint64_t *reclaim_kb, struct qp_err **err)
{
	bool have_total = false, have_free = false;
	*reclaim_kb = 0;
	const char *line = content;
	for (unsigned lineno = 1; *line; lineno++) {
		qp_autofree char *l = next_line(&line);
		int n, off = 0;
		char key[64];
		if (sscanf(l, "Node %d %63[^:]:%n", &n, key, &off) != 2 || !off || n != node) {
			qp_autofree char *s = qp_quote(l);
			return qp_err_set(err, 0, "line %u: expected 'Node %d KEY: VALUE', got %s",
					  lineno, node, s);
		}
		const char *v = l + off;
		while (*v == ' ')
			v++;
		char num[32];
		size_t dn = strspn(v, "0123456789");
		const char *unit = v + dn;
		uint64_t x;
		if (dn == 0 || dn >= sizeof(num) || (strcmp(unit, " kB") && strcmp(unit, ""))) {
			qp_autofree char *s = qp_quote(l);
			return qp_err_set(err, 0, "line %u: malformed value in %s", lineno, s);
		}
		memcpy(num, v, dn);
		num[dn] = '\0';
		if (!parse_u64_word(num, &x))
			return qp_err_set(err, 0, "line %u: value out of range", lineno);
		if (!strcmp(key, "MemTotal")) {
			*total_kb = x;
			have_total = true;
		} else if (!strcmp(key, "MemFree")) {
			*free_kb = x;
			have_free = true;
		} else if (!strcmp(key, "Active(file)") || !strcmp(key, "Inactive(file)") ||
			   !strcmp(key, "SReclaimable")) {
			*reclaim_kb += x;
		}
	}
	if (!have_total || !have_free)
		return qp_err_set(err, 0, "no %s line", have_total ? "MemFree" : "MemTotal");
	return 0;
}

int qp_parse_proc_modules(const char *content, char ***names, struct qp_err **err)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	const char *line = content;
	for (unsigned lineno = 1; *line; lineno++) {
		qp_autofree char *l = next_line(&line);
		char name[64], size[32];
		int end = 0;
		uint64_t sz;
		if (sscanf(l, "%63s %31s %n", name, size, &end) != 2 || !end ||
		    !parse_u64_word(size, &sz)) {
			qp_autofree char *s = qp_quote(l);
			qp_strv_free(v);
			return qp_err_set(err, 0, "line %u: expected 'NAME SIZE REFS DEPS STATE ADDR', "
					  "got %s", lineno, s);
		}
		v = qp_xgrow(v, &cap, n + 2, sizeof(*v));
		v[n++] = qp_xstrdup(name);
		v[n] = NULL;
	}
	if (!v)
		v = qp_xcalloc(1, sizeof(*v));
	*names = v;
	return 0;
}

char *qp_cmdline_get(const char *cmdline, const char *key)
{
	char *found = NULL;
	size_t kl = strlen(key);
	const char *p = cmdline;
	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		/* One word: quotes group spaces, and are not part of the value. */
		struct qp_buf w = { 0 };
		bool quoted = false;
		for (; *p && (quoted || !isspace((unsigned char)*p)); p++) {
			if (*p == '"')
				quoted = !quoted;
			else
				qp_buf_addc(&w, *p);
		}
		char *word = qp_buf_steal(&w);
		/* "--" ends the kernel's own parameters; the rest goes to init. */
		if (!strcmp(word, "--")) {
			free(word);
			break;
		}
		if (!strncmp(word, key, kl) && (word[kl] == '=' || word[kl] == '\0')) {
			free(found);
			found = qp_xstrdup(word[kl] == '=' ? word + kl + 1 : "");
		}
		free(word);
	}
	return found;
}

int qp_parse_pci_header_type(uint8_t byte, uint8_t *type, bool *multifunction,
			     struct qp_err **err)
{
	if ((byte & 0x7f) > 2)
		return qp_err_set(err, 0, "unknown header type %u at offset 0x0e", byte & 0x7f);
	*type = byte & 0x7f;
	*multifunction = byte & 0x80;
	return 0;
}

int qp_parse_stat_field(const char *stat, int field, unsigned long long *out)
{
	const char *p = strrchr(stat, ')');
	if (!p || field < 3 || p[1] != ' ')
		return -1;
	/* sp: the space before field 3; each step finds the one before the next field. */
	const char *sp = p + 1;
	for (int f = 3; f < field && sp; f++)
		sp = strchr(sp + 1, ' ');
	if (!sp || !isdigit((unsigned char)sp[1]))
		return -1;
	*out = strtoull(sp + 1, NULL, 10);
	return 0;
}

char qp_parse_stat_state(const char *stat)
{
	const char *p = strrchr(stat, ')');
	return p && p[1] == ' ' && p[2] ? p[2] : '\0';
}

int qp_parse_pci_resource(const char *content, struct qp_bar bars[6], struct qp_err **err)
{
	int n = 0;
	const char *line = content;
	for (unsigned i = 0; *line; i++) {
		qp_autofree char *l = next_line(&line);
		unsigned long long start, end, flags;
		if (sscanf(l, "%llx %llx %llx", &start, &end, &flags) != 3) {
			qp_autofree char *q = qp_quote(l);
			return qp_err_set(err, 0, "line %u: expected 'START END FLAGS', got %s",
					  i + 1, q);
		}
		if (i > 5 || end <= start)
			continue;
		/* IORESOURCE_IO, _MEM_64 and _PREFETCH of include/linux/ioport.h. */
		bars[n++] = (struct qp_bar){ .index = i, .size = end - start + 1,
					     .io = flags & 0x100, .mem64 = flags & 0x100000,
					     .prefetch = flags & 0x2000 };
	}
	return n;
}

unsigned qp_parse_phys_bits(const char *cpuinfo)
{
	const char *p = strstr(cpuinfo, "address sizes");
	unsigned bits = 0;
	if (p && (p = strchr(p, ':')) && sscanf(p + 1, "%u bits physical", &bits) != 1)
		bits = 0;
	return bits;
}
