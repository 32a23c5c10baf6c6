#include "profiles/profile.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiles/jsonpos.h"
#include "base/util.h"

/* Reading one profile: where errors point to. */
struct ctx {
	const char *file;
	const char *text;
	struct qp_jsonpos pos;
	struct qp_err **err;
};

static char *join(const char *path, const char *key)
{
	return *path ? qp_xasprintf("%s.%s", path, key) : qp_xstrdup(key);
}

/* "FILE:LINE:COL: PATH: message"; returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const char *path,
						      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qp_autofree char *msg = qp_xvasprintf(fmt, ap);
	va_end(ap);
	unsigned line, col;
	qp_jsonpos_linecol(c->text, qp_jsonpos_find(&c->pos, path), &line, &col);
	if (*path)
		return qp_err_set(c->err, 0, "%s:%u:%u: %s: %s", c->file, line, col, path, msg);
	return qp_err_set(c->err, 0, "%s:%u:%u: %s", c->file, line, col, msg);
}

static const char *type_name(json_object *v)
{
	return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

/* Levenshtein distance, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return 99;
	size_t d[33][33];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
			d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	return d[la][lb];
}

static int check_keys(struct ctx *c, json_object *o, const char *path,
		      const char *const *known)
{
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		bool ok = false;
		const char *best = NULL;
		size_t best_d = 3;
		for (const char *const *k = known; *k; k++) {
			if (!strcmp(*k, key))
				ok = true;
			size_t dd = distance(*k, key);
			if (dd < best_d) {
				best_d = dd;
				best = *k;
			}
		}
		if (ok)
			continue;
		qp_autofree char *sub = join(path, key);
		struct qp_buf b = { 0 };
		for (const char *const *k = known; *k; k++)
			qp_buf_addf(&b, "%s%s", k == known ? "" : ", ", *k);
		qp_autofree char *list = qp_buf_steal(&b);
		fail(c, sub, "unknown key%s%s%s", best ? " (did you mean '" : "", best ? best : "",
		     best ? "'?)" : "");
		return qp_err_hint(c->err, "the keys %s%s are: %s (docs/profile.md)",
				   *path ? "of " : "at the top level", path, list);
	}
	return 0;
}

/* The member `key` of o: *v NULL when absent. A JSON null counts as present. */
static bool member(json_object *o, const char *key, json_object **v)
{
	return json_object_object_get_ex(o, key, v);
}

static int get_str(struct ctx *c, json_object *o, const char *path, const char *key,
		   bool required, char **out)
{
	json_object *v;
	qp_autofree char *sub = join(path, key);
	if (!member(o, key, &v)) {
		if (required)
			return fail(c, path, "the key '%s' is required", key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return fail(c, sub, "expected a string, got %s", type_name(v));
	const char *s = json_object_get_string(v);
	if (!*s || strlen(s) != (size_t)json_object_get_string_len(v))
		return fail(c, sub, "expected a non-empty string without NUL bytes");
	free(*out);
	*out = qp_xstrdup(s);
	return 0;
}

static int int_value(struct ctx *c, json_object *v, const char *sub, long min, long max,
		     int *out)
{
	if (!json_object_is_type(v, json_type_int))
		return fail(c, sub, "expected an integer, got %s", type_name(v));
	errno = 0;
	int64_t x = json_object_get_int64(v);
	if (errno || x < min || x > max)
		return fail(c, sub, "expected an integer from %ld to %ld", min, max);
	*out = (int)x;
	return 0;
}

static int get_int(struct ctx *c, json_object *o, const char *path, const char *key, long min,
		   long max, int *out)
{
	json_object *v;
	if (!member(o, key, &v))
		return 0;
	qp_autofree char *sub = join(path, key);
	return int_value(c, v, sub, min, max, out);
}

static int get_bool(struct ctx *c, json_object *o, const char *path, const char *key,
		    bool *out)
{
	json_object *v;
	if (!member(o, key, &v))
		return 0;
	qp_autofree char *sub = join(path, key);
	if (!json_object_is_type(v, json_type_boolean))
		return fail(c, sub, "expected true or false, got %s", type_name(v));
	*out = json_object_get_boolean(v);
	return 0;
}

/* A string that must be one of names (NULL-terminated); *out is its index. */
static int get_enum(struct ctx *c, json_object *o, const char *path, const char *key,
		    const char *const *names, int *out)
{
	qp_autofree char *s = NULL;
	if (get_str(c, o, path, key, false, &s) < 0)
		return -1;
	if (!s)
		return 0;
	struct qp_buf b = { 0 };
	for (int i = 0; names[i]; i++) {
		if (!strcmp(names[i], s)) {
			qp_buf_free(&b);
			*out = i;
			return 0;
		}
		qp_buf_addf(&b, "%s%s", i ? ", " : "", names[i]);
	}
	qp_autofree char *list = qp_buf_steal(&b);
	qp_autofree char *sub = join(path, key);
	qp_autofree char *q = qp_quote(s);
	return fail(c, sub, "%s is not one of: %s", q, list);
}

static int get_object(struct ctx *c, json_object *o, const char *path, const char *key,
		      json_object **out)
{
	*out = NULL;
	json_object *v;
	if (!member(o, key, &v))
		return 0;
	qp_autofree char *sub = join(path, key);
	if (!json_object_is_type(v, json_type_object))
		return fail(c, sub, "expected an object, got %s", type_name(v));
	*out = v;
	return 0;
}

static int get_array(struct ctx *c, json_object *o, const char *path, const char *key,
		     json_object **out)
{
	*out = NULL;
	json_object *v;
	if (!member(o, key, &v))
		return 0;
	qp_autofree char *sub = join(path, key);
	if (!json_object_is_type(v, json_type_array))
		return fail(c, sub, "expected an array, got %s", type_name(v));
	*out = v;
	return 0;
}

/* An array of strings into a NULL-terminated vector. */
static int get_strv(struct ctx *c, json_object *o, const char *path, const char *key,
		    char ***out)
{
	json_object *a;
	if (get_array(c, o, path, key, &a) < 0)
		return -1;
	if (!a)
		return 0;
	size_t n = json_object_array_length(a);
	char **v = qp_xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		qp_autofree char *sub = qp_xasprintf("%s%s%s[%zu]", path, *path ? "." : "", key, i);
		if (!json_object_is_type(e, json_type_string)) {
			qp_strv_free(v);
			return fail(c, sub, "expected a string, got %s", type_name(e));
		}
		v[i] = qp_xstrdup(json_object_get_string(e));
	}
	*out = v;
	return 0;
}

/* --- values with a form of their own ------------------------------------------- */

int qp_parse_size_mib(const char *s, uint64_t *mib, struct qp_err **err)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)s[0]))
		goto bad;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	uint64_t mult;
	if (!strcmp(end, "M") || !strcmp(end, "MiB") || !strcmp(end, ""))
		mult = 1;
	else if (!strcmp(end, "G") || !strcmp(end, "GiB"))
		mult = 1024;
	else if (!strcmp(end, "T") || !strcmp(end, "TiB"))
		mult = 1024 * 1024;
	else
		goto bad;
	if (x == 0 || x > (1ULL << 40) / mult)
		goto bad;
	*mib = x * mult;
	return 0;
bad:;
	qp_autofree char *q = qp_quote(s);
	return qp_err_set(err, 0, "%s is not a size (write e.g. \"64G\", \"512M\", or a number "
			  "of MiB)", q);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

static bool valid_mac(const char *s)
{
	unsigned b[6];
	int end = 0;
	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 || end != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return !(b[0] & 1);  /* a unicast address */
}

static bool valid_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* A QEMU option word: what may stand between commas on -cpu. */
static bool valid_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.+-=", *s))
			return false;
	return true;
}

/* --- the sections --------------------------------------------------------------- */

static const char *const top_keys[] = {
	"name", "memory", "vcpus", "passthrough", "numa", "machine", "firmware", "ovmf", "uuid",
	"cpu", "clock", "lifecycle", "disks", "network", "display", "video", "usb", "serial",
	"memballoon", "hugepages", "vcpu_pins", "emulator_cpus", "run_as", "accel",
	"allow_boot_vga", "extra_args", "qemu", "shutdown_timeout", NULL,
};

static int read_memory(struct ctx *c, json_object *root, struct qp_profile *p)
{
	json_object *v;
	if (!member(root, "memory", &v))
		return fail(c, "", "the key 'memory' is required (e.g. \"memory\": \"16G\")");
	if (json_object_is_type(v, json_type_int)) {
		int mib;
		if (int_value(c, v, "memory", 1, 1 << 30, &mib) < 0)
			return -1;
		p->memory_mib = (uint64_t)mib;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return fail(c, "memory", "expected a size like \"64G\" or a number of MiB, got %s",
			    type_name(v));
	struct qp_err *e = NULL;
	if (qp_parse_size_mib(json_object_get_string(v), &p->memory_mib, &e) < 0) {
		fail(c, "memory", "%s", e->msg);
		qp_err_free(e);
		return -1;
	}
	return 0;
}

static int read_passthrough(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "address", "guest_slot", "rombar", "romfile", NULL };
	json_object *a;
	if (get_array(c, root, "", "passthrough", &a) < 0)
		return -1;
	size_t n = a ? json_object_array_length(a) : 0;
	p->pt = qp_xcalloc(n, sizeof(*p->pt));
	for (size_t i = 0; i < n; i++) {
		struct qp_passthrough *t = &p->pt[i];
		p->n_pt = i + 1;
		t->guest_slot = -1;
		t->rombar = -1;
		t->key = qp_xasprintf("passthrough[%zu]", i);
		json_object *e = json_object_array_get_idx(a, i);
		qp_autofree char *addr = NULL;
		if (json_object_is_type(e, json_type_string)) {
			addr = qp_xstrdup(json_object_get_string(e));
		} else if (json_object_is_type(e, json_type_object)) {
			bool rombar = true;
			json_object *rb;
			if (check_keys(c, e, t->key, keys) < 0 ||
			    get_str(c, e, t->key, "address", true, &addr) < 0 ||
			    get_int(c, e, t->key, "guest_slot", 1, 31, &t->guest_slot) < 0 ||
			    get_bool(c, e, t->key, "rombar", &rombar) < 0 ||
			    get_str(c, e, t->key, "romfile", false, &t->romfile) < 0)
				return -1;
			if (member(e, "rombar", &rb))
				t->rombar = rombar;
		} else {
			return fail(c, t->key, "expected a PCI address like \"04:00\" or an object, "
				    "got %s", type_name(e));
		}
		struct qp_err *pe = NULL;
		bool has_func;
		if (qp_parse_pci_selector(addr, &t->addr, &has_func, &pe) < 0) {
			fail(c, t->key, "%s", pe->msg);
			qp_err_free(pe);
			return -1;
		}
		t->all_functions = !has_func;
	}
	return 0;
}

static int read_numa(struct ctx *c, json_object *root, struct qp_profile *p)
{
	json_object *v;
	p->numa = -1;
	if (!member(root, "numa", &v))
		return 0;
	if (json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), "auto"))
		return 0;
	if (json_object_is_type(v, json_type_int))
		return int_value(c, v, "numa", 0, 65535, &p->numa);
	return fail(c, "numa", "expected \"auto\" or a node number, got %s", type_name(v));
}

static int read_cpu(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "model", "flags", "hide_hypervisor", "hv_vendor_id",
					    "hyperv", "sockets", "cores", "threads", NULL };
	static const char *const hv_names[] = {
		"relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset",
		"frequencies", "reenlightenment", "tlbflush", "ipi", "evmcs", "avic", NULL,
	};
	json_object *cpu, *hv;
	p->cpu_model = qp_xstrdup("host");
	if (get_object(c, root, "", "cpu", &cpu) < 0)
		return -1;
	if (!cpu)
		return 0;
	if (check_keys(c, cpu, "cpu", keys) < 0 ||
	    get_str(c, cpu, "cpu", "model", false, &p->cpu_model) < 0 ||
	    get_strv(c, cpu, "cpu", "flags", &p->cpu_flags) < 0 ||
	    get_bool(c, cpu, "cpu", "hide_hypervisor", &p->hide_hypervisor) < 0 ||
	    get_str(c, cpu, "cpu", "hv_vendor_id", false, &p->hv_vendor_id) < 0 ||
	    get_int(c, cpu, "cpu", "sockets", 1, 4096, &p->sockets) < 0 ||
	    get_int(c, cpu, "cpu", "cores", 1, 4096, &p->cores) < 0 ||
	    get_int(c, cpu, "cpu", "threads", 1, 8, &p->threads) < 0 ||
	    get_object(c, cpu, "cpu", "hyperv", &hv) < 0)
		return -1;
	if (!valid_word(p->cpu_model))
		return fail(c, "cpu.model", "a CPU model name has only letters, digits and _.+-");
	for (size_t i = 0; p->cpu_flags && p->cpu_flags[i]; i++) {
		if (!valid_word(p->cpu_flags[i])) {
			qp_autofree char *sub = qp_xasprintf("cpu.flags[%zu]", i);
			return fail(c, sub, "a flag is a word like \"-arch-capabilities\", "
				    "\"+pdpe1gb\" or \"pmu=off\"");
		}
	}
	/* QEMU takes at most 12 characters; it goes into a comma-separated option. */
	if (p->hv_vendor_id && (strlen(p->hv_vendor_id) > 12 || strchr(p->hv_vendor_id, ',')))
		return fail(c, "cpu.hv_vendor_id", "at most 12 characters, no comma");
	if (hv && check_keys(c, hv, "cpu.hyperv", hv_names) < 0)
		return -1;
	for (int i = 0; hv && hv_names[i]; i++) {
		json_object *v;
		if (!member(hv, hv_names[i], &v))
			continue;
		qp_autofree char *sub = qp_xasprintf("cpu.hyperv.%s", hv_names[i]);
		char *value = NULL;
		if (!strcmp(hv_names[i], "spinlocks") && json_object_is_type(v, json_type_int)) {
			int retries;
			if (int_value(c, v, sub, 4095, 0x7fffffff, &retries) < 0)
				return -1;
			value = qp_xasprintf("0x%x", retries);
		} else if (!json_object_is_type(v, json_type_boolean)) {
			return fail(c, sub, "expected true or false%s, got %s",
				    strcmp(hv_names[i], "spinlocks") ? "" : " or a number of retries",
				    type_name(v));
		} else if (!json_object_get_boolean(v)) {
			continue;
		} else if (!strcmp(hv_names[i], "spinlocks")) {
			value = qp_xstrdup("0x1fff");
		}
		p->hv = qp_xrealloc(p->hv, (p->n_hv + 1) * sizeof(*p->hv));
		p->hv[p->n_hv++] = (struct qp_hv){ qp_xstrdup(hv_names[i]), value };
	}
	return 0;
}

static int read_clock_lifecycle(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const clock_keys[] = { "base", "hypervclock", NULL };
	static const char *const bases[] = { "utc", "localtime", NULL };
	static const char *const life_keys[] = { "on_poweroff", "on_reboot", "on_crash", NULL };
	static const char *const actions[] = { "destroy", "restart", "preserve", NULL };
	json_object *clock, *life;
	int base = 0, off = QP_ACT_DESTROY, reb = QP_ACT_RESTART, crash = QP_ACT_DESTROY;
	if (get_object(c, root, "", "clock", &clock) < 0 ||
	    (clock && (check_keys(c, clock, "clock", clock_keys) < 0 ||
		       get_enum(c, clock, "clock", "base", bases, &base) < 0 ||
		       get_bool(c, clock, "clock", "hypervclock", &p->hypervclock) < 0)))
		return -1;
	p->clock_localtime = base == 1;
	if (get_object(c, root, "", "lifecycle", &life) < 0 ||
	    (life && (check_keys(c, life, "lifecycle", life_keys) < 0 ||
		      get_enum(c, life, "lifecycle", "on_poweroff", actions, &off) < 0 ||
		      get_enum(c, life, "lifecycle", "on_reboot", actions, &reb) < 0 ||
		      get_enum(c, life, "lifecycle", "on_crash", actions, &crash) < 0)))
		return -1;
	p->on_poweroff = (enum qp_action)off;
	p->on_reboot = (enum qp_action)reb;
	p->on_crash = (enum qp_action)crash;
	return 0;
}

static int read_disks(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "file", "format", "bus", "cache", "aio", "readonly",
					    NULL };
	static const char *const formats[] = { "raw", "qcow2", NULL };
	static const char *const buses[] = { "virtio", "sata", NULL };
	static const char *const caches[] = { "none", "writeback", "writethrough", "directsync",
					      "unsafe", NULL };
	static const char *const aios[] = { "threads", "native", "io_uring", NULL };
	json_object *a;
	if (get_array(c, root, "", "disks", &a) < 0)
		return -1;
	size_t n = a ? json_object_array_length(a) : 0;
	p->disks = qp_xcalloc(n, sizeof(*p->disks));
	for (size_t i = 0; i < n; i++) {
		struct qp_disk *d = &p->disks[i];
		p->n_disks = i + 1;
		qp_autofree char *path = qp_xasprintf("disks[%zu]", i);
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_object))
			return fail(c, path, "expected an object like {\"file\": \"/path/disk.qcow2\", "
				    "\"format\": \"qcow2\"}, got %s", type_name(e));
		int fmt = -1, bus = 0, cache = 0, aio = 0;
		if (check_keys(c, e, path, keys) < 0 ||
		    get_str(c, e, path, "file", true, &d->file) < 0 ||
		    get_enum(c, e, path, "format", formats, &fmt) < 0 ||
		    get_enum(c, e, path, "bus", buses, &bus) < 0 ||
		    get_enum(c, e, path, "cache", caches, &cache) < 0 ||
		    get_enum(c, e, path, "aio", aios, &aio) < 0 ||
		    get_bool(c, e, path, "readonly", &d->readonly) < 0)
			return -1;
		/* Probing a format is a known hole (a raw guest disk posing as qcow2). */
		if (fmt < 0)
			return fail(c, path, "the key 'format' is required: \"qcow2\" or \"raw\"");
		d->qcow2 = fmt == 1;
		d->bus = (enum qp_disk_bus)bus;
		d->cache = (enum qp_cache)cache;
		d->aio = (enum qp_aio)aio;
		if (d->readonly && d->bus == QP_DISK_SATA) {
			qp_autofree char *sub = qp_xasprintf("%s.readonly", path);
			return fail(c, sub, "QEMU's SATA disks cannot be read-only; use \"bus\": "
				    "\"virtio\"");
		}
		if (d->aio == QP_AIO_NATIVE && d->cache != QP_CACHE_NONE &&
		    d->cache != QP_CACHE_DIRECTSYNC) {
			qp_autofree char *sub = qp_xasprintf("%s.aio", path);
			return fail(c, sub, "\"native\" needs \"cache\": \"none\" or \"directsync\" "
				    "(O_DIRECT)");
		}
	}
	return 0;
}

static int read_network(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "type", "bridge", "mac", "model", NULL };
	static const char *const types[] = { "bridge", "user", NULL };
	static const char *const models[] = { "virtio", "e1000e", "e1000", "rtl8139", NULL };
	static const char *const devices[] = { "virtio-net-pci", "e1000e", "e1000", "rtl8139" };
	json_object *a;
	if (get_array(c, root, "", "network", &a) < 0)
		return -1;
	size_t n = a ? json_object_array_length(a) : 0;
	p->nets = qp_xcalloc(n, sizeof(*p->nets));
	for (size_t i = 0; i < n; i++) {
		struct qp_net *nt = &p->nets[i];
		p->n_nets = i + 1;
		qp_autofree char *path = qp_xasprintf("network[%zu]", i);
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_object))
			return fail(c, path, "expected an object like {\"type\": \"bridge\", "
				    "\"bridge\": \"br0\"}, got %s", type_name(e));
		int type = -1, model = 0;
		if (check_keys(c, e, path, keys) < 0 ||
		    get_enum(c, e, path, "type", types, &type) < 0 ||
		    get_str(c, e, path, "bridge", false, &nt->bridge) < 0 ||
		    get_str(c, e, path, "mac", false, &nt->mac) < 0 ||
		    get_enum(c, e, path, "model", models, &model) < 0)
			return -1;
		if (type < 0)
			return fail(c, path, "the key 'type' is required: \"bridge\" or \"user\"");
		nt->type = (enum qp_net_type)type;
		nt->model = qp_xstrdup(devices[model]);
		if (nt->type == QP_NET_BRIDGE && !nt->bridge)
			return fail(c, path, "a bridge network needs \"bridge\": the host bridge's "
				    "name, e.g. \"br0\"");
		if (nt->type == QP_NET_BRIDGE &&
		    (strlen(nt->bridge) > 15 || strpbrk(nt->bridge, "/ \t"))) {
			qp_autofree char *sub = qp_xasprintf("%s.bridge", path);
			return fail(c, sub, "not an interface name (at most 15 characters, no '/')");
		}
		if (nt->mac && !valid_mac(nt->mac)) {
			qp_autofree char *sub = qp_xasprintf("%s.mac", path);
			return fail(c, sub, "expected a unicast MAC address like 52:54:00:8c:04:9f");
		}
	}
	return 0;
}

static int read_display(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "type", "listen", "port", "password_file", NULL };
	static const char *const types[] = { "vnc", "none", NULL };
	static const char *const videos[] = { "std", "cirrus", "virtio", "qxl", "none", NULL };
	json_object *v = NULL;
	p->display = QP_DISPLAY_NONE;
	if (member(root, "display", &v) && json_object_is_type(v, json_type_string)) {
		if (strcmp(json_object_get_string(v), "none"))
			return fail(c, "display", "expected \"none\" or an object like {\"type\": "
				    "\"vnc\", \"port\": 5913}");
	} else if (v) {
		int type = -1;
		if (get_object(c, root, "", "display", &v) < 0 ||
		    check_keys(c, v, "display", keys) < 0 ||
		    get_enum(c, v, "display", "type", types, &type) < 0 ||
		    get_str(c, v, "display", "listen", false, &p->vnc_listen) < 0 ||
		    get_int(c, v, "display", "port", 5900, 5900 + 65535 - 5900, &p->vnc_port) < 0 ||
		    get_str(c, v, "display", "password_file", false, &p->vnc_password_file) < 0)
			return -1;
		if (type < 0)
			return fail(c, "display", "the key 'type' is required: \"vnc\" or \"none\"");
		p->display = (enum qp_display)type;
		if (p->display == QP_DISPLAY_VNC && !p->vnc_port)
			return fail(c, "display", "a VNC display needs \"port\" (5900 is display 0)");
		if (p->vnc_listen && strpbrk(p->vnc_listen, ", "))
			return fail(c, "display.listen", "expected an address like \"127.0.0.1\"");
	}
	int video = QP_VIDEO_STD;
	if (get_enum(c, root, "", "video", videos, &video) < 0)
		return -1;
	p->video = (enum qp_video)video;
	return 0;
}

static int read_devices(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const usb_keys[] = { "controller", "tablet", NULL };
	static const char *const usbs[] = { "xhci", "ehci", "none", NULL };
	static const char *const serial_keys[] = { "type", "path", NULL };
	static const char *const serials[] = { "none", "pty", "file", NULL };
	json_object *usb, *v = NULL;
	int ctl = -1, serial = QP_SERIAL_NONE;
	p->usb_tablet = p->display != QP_DISPLAY_NONE;
	if (get_object(c, root, "", "usb", &usb) < 0 ||
	    (usb && (check_keys(c, usb, "usb", usb_keys) < 0 ||
		     get_enum(c, usb, "usb", "controller", usbs, &ctl) < 0 ||
		     get_bool(c, usb, "usb", "tablet", &p->usb_tablet) < 0)))
		return -1;
	/* i440fx guests know EHCI best (the seed's); q35 guests get xHCI. */
	p->usb = ctl >= 0 ? (enum qp_usb)ctl : p->machine == QP_MACHINE_PC ? QP_USB_EHCI
									   : QP_USB_XHCI;
	if (p->usb == QP_USB_NONE && p->usb_tablet)
		return fail(c, "usb", "a USB tablet needs a USB controller");

	if (member(root, "serial", &v) && json_object_is_type(v, json_type_object)) {
		if (check_keys(c, v, "serial", serial_keys) < 0 ||
		    get_enum(c, v, "serial", "type", serials, &serial) < 0 ||
		    get_str(c, v, "serial", "path", serial == QP_SERIAL_FILE, &p->serial_path) < 0)
			return -1;
	} else if (get_enum(c, root, "", "serial", serials, &serial) < 0) {
		return -1;
	} else if (serial == QP_SERIAL_FILE) {
		return fail(c, "serial", "a file serial is an object: {\"type\": \"file\", "
			    "\"path\": \"/var/log/vm.log\"}");
	}
	p->serial = (enum qp_serial)serial;
	p->memballoon = true;
	return get_bool(c, root, "", "memballoon", &p->memballoon);
}

static int read_hugepages(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "size", "path", NULL };
	json_object *v;
	if (!member(root, "hugepages", &v) ||
	    (json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v)))
		return 0;
	qp_autofree char *size = NULL;
	if (json_object_is_type(v, json_type_string)) {
		size = qp_xstrdup(json_object_get_string(v));
	} else if (json_object_is_type(v, json_type_object)) {
		if (check_keys(c, v, "hugepages", keys) < 0 ||
		    get_str(c, v, "hugepages", "size", true, &size) < 0 ||
		    get_str(c, v, "hugepages", "path", false, &p->hugepage_path) < 0)
			return -1;
	} else {
		return fail(c, "hugepages", "expected false, \"2M\", \"1G\" or {\"size\": \"1G\", "
			    "\"path\": \"/dev/hugepages1G\"}, got %s", type_name(v));
	}
	if (!strcmp(size, "2M")) {
		p->hugepage_kb = 2048;
	} else if (!strcmp(size, "1G")) {
		p->hugepage_kb = 1048576;
	} else {
		return fail(c, json_object_is_type(v, json_type_string) ? "hugepages"
									  : "hugepages.size",
			    "expected \"2M\" or \"1G\"");
	}
	if (!p->hugepage_path)
		p->hugepage_path = qp_xstrdup(p->hugepage_kb == 2048 ? "/dev/hugepages"
								     : "/dev/hugepages1G");
	if (p->memory_mib * 1024 % p->hugepage_kb)
		return fail(c, "hugepages", "the memory must be a whole number of %s pages", size);
	return 0;
}

static int read_pinning(struct ctx *c, json_object *root, struct qp_profile *p)
{
	json_object *a, *v;
	if (get_array(c, root, "", "vcpu_pins", &a) < 0)
		return -1;
	if (a) {
		size_t n = json_object_array_length(a);
		if (n != (size_t)p->vcpus)
			return fail(c, "vcpu_pins", "%zu CPUs for %d vCPUs: give one host CPU per "
				    "vCPU", n, p->vcpus);
		p->vcpu_pins = qp_xcalloc(n, sizeof(int));
		p->n_vcpu_pins = n;
		for (size_t i = 0; i < n; i++) {
			qp_autofree char *sub = qp_xasprintf("vcpu_pins[%zu]", i);
			if (int_value(c, json_object_array_get_idx(a, i), sub, 0, QP_MAX_CPU,
				      &p->vcpu_pins[i]) < 0)
				return -1;
		}
	}
	if (!member(root, "emulator_cpus", &v))
		return 0;
	p->has_emulator_cpus = true;
	if (json_object_is_type(v, json_type_string)) {
		struct qp_err *e = NULL;
		if (qp_cpulist_parse(json_object_get_string(v), &p->emulator_cpus, &e) < 0) {
			fail(c, "emulator_cpus", "%s", e->msg);
			qp_err_free(e);
			return -1;
		}
	} else if (json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			qp_autofree char *sub = qp_xasprintf("emulator_cpus[%zu]", i);
			int cpu;
			if (int_value(c, json_object_array_get_idx(v, i), sub, 0, QP_MAX_CPU, &cpu) < 0)
				return -1;
			qp_cpulist_add(&p->emulator_cpus, cpu);
		}
	} else {
		return fail(c, "emulator_cpus", "expected a CPU list like \"14-27\" or an array, "
			    "got %s", type_name(v));
	}
	if (!p->emulator_cpus.n)
		return fail(c, "emulator_cpus", "the list is empty");
	return 0;
}

static int read_profile(struct ctx *c, json_object *root, struct qp_profile *p)
{
	static const char *const machines[] = { "q35", "pc", NULL };
	static const char *const firmwares[] = { "bios", "ovmf", NULL };
	static const char *const accels[] = { "kvm", "tcg", "auto", NULL };
	static const char *const ovmf_keys[] = { "code", "vars", NULL };
	if (!json_object_is_type(root, json_type_object))
		return fail(c, "", "a profile is a JSON object ({...}), not %s", type_name(root));
	if (check_keys(c, root, "", top_keys) < 0 || get_str(c, root, "", "name", true, &p->name) < 0)
		return -1;
	if (!valid_name(p->name))
		return fail(c, "name", "a VM name has 1 to 64 letters, digits, '.', '_' or '-', "
			    "and starts with a letter or digit");
	json_object *v, *ovmf;
	if (read_memory(c, root, p) < 0)
		return -1;
	if (!member(root, "vcpus", &v))
		return fail(c, "", "the key 'vcpus' is required (e.g. \"vcpus\": 4)");
	int machine = 0, firmware = 0, accel = 0;
	p->shutdown_timeout = 120;
	if (int_value(c, v, "vcpus", 1, 1024, &p->vcpus) < 0 || read_passthrough(c, root, p) < 0 ||
	    read_numa(c, root, p) < 0 || get_enum(c, root, "", "machine", machines, &machine) < 0 ||
	    get_enum(c, root, "", "firmware", firmwares, &firmware) < 0 ||
	    get_object(c, root, "", "ovmf", &ovmf) < 0 ||
	    get_str(c, root, "", "uuid", false, &p->uuid) < 0)
		return -1;
	p->machine = (enum qp_machine)machine;
	p->firmware = (enum qp_firmware)firmware;
	if (ovmf && (check_keys(c, ovmf, "ovmf", ovmf_keys) < 0 ||
		     get_str(c, ovmf, "ovmf", "code", false, &p->ovmf_code) < 0 ||
		     get_str(c, ovmf, "ovmf", "vars", false, &p->ovmf_vars) < 0))
		return -1;
	if (p->firmware == QP_FW_OVMF) {
		/* Debian's ovmf package. */
		if (!p->ovmf_code)
			p->ovmf_code = qp_xstrdup("/usr/share/OVMF/OVMF_CODE_4M.fd");
		if (!p->ovmf_vars)
			p->ovmf_vars = qp_xstrdup("/usr/share/OVMF/OVMF_VARS_4M.fd");
	}
	if (p->uuid && !valid_uuid(p->uuid))
		return fail(c, "uuid", "expected a UUID like 774f2036-4c5f-4848-b4ad-b8ada41569c1");
	if (read_cpu(c, root, p) < 0 || read_clock_lifecycle(c, root, p) < 0 ||
	    read_disks(c, root, p) < 0 || read_network(c, root, p) < 0 ||
	    read_display(c, root, p) < 0 || read_devices(c, root, p) < 0 ||
	    read_hugepages(c, root, p) < 0 || read_pinning(c, root, p) < 0 ||
	    get_str(c, root, "", "run_as", false, &p->run_as) < 0 ||
	    get_enum(c, root, "", "accel", accels, &accel) < 0 ||
	    get_bool(c, root, "", "allow_boot_vga", &p->allow_boot_vga) < 0 ||
	    get_strv(c, root, "", "extra_args", &p->extra_args) < 0 ||
	    get_str(c, root, "", "qemu", false, &p->qemu) < 0 ||
	    get_int(c, root, "", "shutdown_timeout", 1, 86400, &p->shutdown_timeout) < 0)
		return -1;
	p->accel = (enum qp_accel)accel;
	if (!p->qemu)
		p->qemu = qp_xstrdup("qemu-system-x86_64");
	int given = (p->sockets > 0) + (p->cores > 0) + (p->threads > 0);
	int s = p->sockets ? p->sockets : 1, t = p->threads ? p->threads : 1;
	int cores = p->cores ? p->cores : p->vcpus / (s * t);
	if (given && (long)s * cores * t != p->vcpus)
		return fail(c, "cpu", "sockets %d x cores %d x threads %d is %ld, not vcpus %d", s,
			    cores, t, (long)s * cores * t, p->vcpus);
	p->sockets = s;
	p->cores = cores;
	p->threads = t;
	return 0;
}

int qp_profile_parse(const char *text, const char *file, struct qp_profile *out,
		     struct qp_err **err)
{
	memset(out, 0, sizeof(*out));
	struct ctx c = { .file = file, .text = text, .err = err };
	size_t len = strlen(text);
	json_tokener *tok = json_tokener_new();
	/* Comments are allowed: json-c takes them unless told to be strict. */
	json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success || !root) {
		unsigned line, col;
		qp_jsonpos_linecol(text, end, &line, &col);
		json_object_put(root);
		return qp_err_set(err, 0, "%s:%u:%u: not valid JSON: %s", file, line, col,
				  jerr == json_tokener_continue ? "the text ends too early"
								: json_tokener_error_desc(jerr));
	}
	/* Anything after the object but blanks and comments is a mistake. */
	for (size_t i = end; i < len; i++) {
		if (strchr(" \t\r\n", text[i]))
			continue;
		if (text[i] == '/' && (text[i + 1] == '/' || text[i + 1] == '*')) {
			const char *stop = text[i + 1] == '/' ? strchr(text + i, '\n')
							      : strstr(text + i + 2, "*/");
			i = stop ? (size_t)(stop - text) + (text[i + 1] == '*') : len;
			continue;
		}
		unsigned line, col;
		qp_jsonpos_linecol(text, i, &line, &col);
		json_object_put(root);
		return qp_err_set(err, 0, "%s:%u:%u: text after the end of the profile", file, line,
				  col);
	}
	struct qp_err *perr = NULL;
	if (qp_jsonpos_index(text, &c.pos, &perr) < 0) {
		json_object_put(root);
		qp_err_set(err, 0, "%s:%s", file, perr->msg);
		qp_err_free(perr);
		return -1;
	}
	out->file = qp_xstrdup(file);
	int rc = read_profile(&c, root, out);
	json_object_put(root);
	qp_jsonpos_free(&c.pos);
	if (rc < 0)
		qp_profile_free(out);
	return rc;
}

int qp_profile_load(const char *file, struct qp_profile *out, struct qp_err **err)
{
	memset(out, 0, sizeof(*out));
	qp_autofclose FILE *f = fopen(file, "re");
	if (!f)
		return qp_err_set(err, errno, "cannot open the profile %s", file);
	qp_autofree char *text = NULL;
	size_t len = 0, cap = 0, n;
	do {
		text = qp_xgrow(text, &cap, len + 4096 + 1, 1);
		n = fread(text + len, 1, 4096, f);
		len += n;
		if (len > (1u << 20))
			return qp_err_set(err, 0, "%s: larger than 1 MiB; not a profile", file);
	} while (n > 0);
	if (ferror(f))
		return qp_err_set(err, EIO, "cannot read the profile %s", file);
	text[len] = '\0';
	if (strlen(text) != len)
		return qp_err_set(err, 0, "%s: a profile is text; this file has NUL bytes", file);
	return qp_profile_parse(text, file, out, err);
}

void qp_profile_free(struct qp_profile *p)
{
	free(p->file);
	free(p->name);
	for (size_t i = 0; i < p->n_pt; i++) {
		free(p->pt[i].romfile);
		free(p->pt[i].key);
	}
	free(p->pt);
	free(p->ovmf_code);
	free(p->ovmf_vars);
	free(p->uuid);
	free(p->cpu_model);
	qp_strv_free(p->cpu_flags);
	free(p->hv_vendor_id);
	for (size_t i = 0; i < p->n_hv; i++) {
		free(p->hv[i].name);
		free(p->hv[i].value);
	}
	free(p->hv);
	for (size_t i = 0; i < p->n_disks; i++)
		free(p->disks[i].file);
	free(p->disks);
	for (size_t i = 0; i < p->n_nets; i++) {
		free(p->nets[i].bridge);
		free(p->nets[i].mac);
		free(p->nets[i].model);
	}
	free(p->nets);
	free(p->vnc_listen);
	free(p->vnc_password_file);
	free(p->serial_path);
	free(p->hugepage_path);
	free(p->vcpu_pins);
	qp_cpulist_free(&p->emulator_cpus);
	free(p->run_as);
	qp_strv_free(p->extra_args);
	free(p->qemu);
	memset(p, 0, sizeof(*p));
}

const char *qp_action_name(enum qp_action a)
{
	switch (a) {
	case QP_ACT_DESTROY:
		return "destroy";
	case QP_ACT_RESTART:
		return "restart";
	case QP_ACT_PRESERVE:
		return "preserve";
	default:
		return "?";
	}
}
