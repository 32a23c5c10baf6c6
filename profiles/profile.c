/* VM profiles: the whole profile (the JSON read, every key checked, the defaults
 * filled in) and the sections that say what the VM is: memory, CPUs, NUMA node, clock,
 * lifecycle, hugepages, pinning. The devices are in profile_devices.c; reading each key
 * by type, with errors at FILE:LINE:COLUMN, is keys.c. */
#include "profiles/profile.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "profiles/jsonpos.h"
#include "profiles/keys.h"
#include "profiles/profile-int.h"

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
	"name", "memory", "vcpus", "passthrough", "gpus", "numa", "machine", "firmware", "ovmf",
	"uuid", "cpu", "clock", "lifecycle", "disks", "network", "display", "video", "usb",
	"serial", "memballoon", "hugepages", "vcpu_pins", "emulator_cpus", "share_cpus",
	"irq_cpus", "prealloc", "prealloc_threads", "run_as", "accel", "allow_boot_vga",
	"extra_args", "qemu", "shutdown_timeout", NULL,
};

static int read_memory(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	json_object *v;
	if (!qp_key_member(root, "memory", &v))
		return qp_key_fail(c, "",
				   "the key 'memory' is required (e.g. \"memory\": \"16G\")");
	if (json_object_is_type(v, json_type_int)) {
		int mib;
		if (qp_key_int_value(c, v, "memory", 1, 1 << 30, &mib) < 0)
			return -1;
		p->memory_mib = (uint64_t)mib;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return qp_key_fail(c, "memory",
				   "expected a size like \"64G\" or a number of MiB, got %s",
				   qp_key_type_name(v));
	struct qp_err *e = NULL;
	if (qp_parse_size_mib(json_object_get_string(v), &p->memory_mib, &e) < 0) {
		qp_key_fail(c, "memory", "%s", e->msg);
		qp_err_free(e);
		return -1;
	}
	return 0;
}

static int read_numa(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	json_object *v;
	p->numa = -1;
	if (!qp_key_member(root, "numa", &v))
		return 0;
	if (json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), "auto"))
		return 0;
	if (json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), "span")) {
		p->numa = QP_NUMA_SPAN;
		return 0;
	}
	if (json_object_is_type(v, json_type_int))
		return qp_key_int_value(c, v, "numa", 0, 65535, &p->numa);
	return qp_key_fail(c, "numa", "expected \"auto\", \"span\" or a node number, got %s",
			   qp_key_type_name(v));
}

static int read_cpu(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "model", "flags", "hide_hypervisor", "hv_vendor_id",
					    "hyperv", "sockets", "cores", "threads", NULL };
	static const char *const hv_names[] = {
		"relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset",
		"frequencies", "reenlightenment", "tlbflush", "ipi", "evmcs", "avic", NULL,
	};
	json_object *cpu, *hv;
	p->cpu_model = qp_xstrdup("host");
	if (qp_key_object(c, root, "", "cpu", &cpu) < 0)
		return -1;
	if (!cpu)
		return 0;
	if (qp_keys_check(c, cpu, "cpu", keys) < 0 ||
	    qp_key_str(c, cpu, "cpu", "model", false, &p->cpu_model) < 0 ||
	    qp_key_strv(c, cpu, "cpu", "flags", &p->cpu_flags) < 0 ||
	    qp_key_bool(c, cpu, "cpu", "hide_hypervisor", &p->hide_hypervisor) < 0 ||
	    qp_key_str(c, cpu, "cpu", "hv_vendor_id", false, &p->hv_vendor_id) < 0 ||
	    qp_key_int(c, cpu, "cpu", "sockets", 1, 4096, &p->sockets) < 0 ||
	    qp_key_int(c, cpu, "cpu", "cores", 1, 4096, &p->cores) < 0 ||
	    qp_key_int(c, cpu, "cpu", "threads", 1, 8, &p->threads) < 0 ||
	    qp_key_object(c, cpu, "cpu", "hyperv", &hv) < 0)
		return -1;
	if (!valid_word(p->cpu_model))
		return qp_key_fail(c, "cpu.model",
				   "a CPU model name has only letters, digits and _.+-");
	for (size_t i = 0; p->cpu_flags && p->cpu_flags[i]; i++) {
		if (!valid_word(p->cpu_flags[i])) {
			qp_autofree char *sub = qp_xasprintf("cpu.flags[%zu]", i);
			return qp_key_fail(c, sub, "a flag is a word like \"-arch-capabilities\", "
					   "\"+pdpe1gb\" or \"pmu=off\"");
		}
	}
	/* QEMU takes at most 12 characters; it goes into a comma-separated option. */
	if (p->hv_vendor_id && (strlen(p->hv_vendor_id) > 12 || strchr(p->hv_vendor_id, ',')))
		return qp_key_fail(c, "cpu.hv_vendor_id", "at most 12 characters, no comma");
	if (hv && qp_keys_check(c, hv, "cpu.hyperv", hv_names) < 0)
		return -1;
	for (int i = 0; hv && hv_names[i]; i++) {
		json_object *v;
		if (!qp_key_member(hv, hv_names[i], &v))
			continue;
		qp_autofree char *sub = qp_xasprintf("cpu.hyperv.%s", hv_names[i]);
		char *value = NULL;
		if (!strcmp(hv_names[i], "spinlocks") && json_object_is_type(v, json_type_int)) {
			int retries;
			if (qp_key_int_value(c, v, sub, 4095, 0x7fffffff, &retries) < 0)
				return -1;
			value = qp_xasprintf("0x%x", retries);
		} else if (!json_object_is_type(v, json_type_boolean)) {
			bool spin = !strcmp(hv_names[i], "spinlocks");
			return qp_key_fail(c, sub, "expected true or false%s, got %s",
					   spin ? " or a number of retries" : "",
					   qp_key_type_name(v));
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

static int read_clock_lifecycle(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const clock_keys[] = { "base", "hypervclock", NULL };
	static const char *const bases[] = { "utc", "localtime", NULL };
	static const char *const life_keys[] = { "on_poweroff", "on_reboot", "on_crash", NULL };
	static const char *const actions[] = { "destroy", "restart", "preserve", NULL };
	json_object *clock, *life;
	int base = 0, off = QP_ACT_DESTROY, reb = QP_ACT_RESTART, crash = QP_ACT_DESTROY;
	if (qp_key_object(c, root, "", "clock", &clock) < 0 ||
	    (clock && (qp_keys_check(c, clock, "clock", clock_keys) < 0 ||
		       qp_key_enum(c, clock, "clock", "base", bases, &base) < 0 ||
		       qp_key_bool(c, clock, "clock", "hypervclock", &p->hypervclock) < 0)))
		return -1;
	p->clock_localtime = base == 1;
	if (qp_key_object(c, root, "", "lifecycle", &life) < 0 ||
	    (life && (qp_keys_check(c, life, "lifecycle", life_keys) < 0 ||
		      qp_key_enum(c, life, "lifecycle", "on_poweroff", actions, &off) < 0 ||
		      qp_key_enum(c, life, "lifecycle", "on_reboot", actions, &reb) < 0 ||
		      qp_key_enum(c, life, "lifecycle", "on_crash", actions, &crash) < 0)))
		return -1;
	p->on_poweroff = (enum qp_action)off;
	p->on_reboot = (enum qp_action)reb;
	p->on_crash = (enum qp_action)crash;
	return 0;
}

/* Preallocation: on with hugepages unless "prealloc": false; its threads. */
static int read_prealloc(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	p->prealloc = p->hugepage_kb != 0;
	if (qp_key_bool(c, root, "", "prealloc", &p->prealloc) < 0 ||
	    qp_key_int(c, root, "", "prealloc_threads", 1, 256, &p->prealloc_threads) < 0)
		return -1;
	if (p->hugepage_kb && !p->prealloc)
		return qp_key_fail(c, "prealloc", "hugepages are always preallocated (QEMU "
				   "cannot fault them in later without risk of SIGBUS): drop "
				   "\"prealloc\": false");
	if (p->prealloc_threads && !p->prealloc)
		return qp_key_fail(c, "prealloc_threads", "only with \"prealloc\": true (or "
				   "hugepages)");
	return 0;
}

static int read_hugepages(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "size", "path", NULL };
	json_object *v;
	if (!qp_key_member(root, "hugepages", &v) ||
	    (json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v)))
		return 0;
	qp_autofree char *size = NULL;
	if (json_object_is_type(v, json_type_string)) {
		size = qp_xstrdup(json_object_get_string(v));
	} else if (json_object_is_type(v, json_type_object)) {
		if (qp_keys_check(c, v, "hugepages", keys) < 0 ||
		    qp_key_str(c, v, "hugepages", "size", true, &size) < 0 ||
		    qp_key_str(c, v, "hugepages", "path", false, &p->hugepage_path) < 0)
			return -1;
	} else {
		return qp_key_fail(c, "hugepages",
				   "expected false, \"2M\", \"1G\" or {\"size\": \"1G\", "
				   "\"path\": \"/dev/hugepages1G\"}, got %s",
				   qp_key_type_name(v));
	}
	if (!strcmp(size, "2M")) {
		p->hugepage_kb = 2048;
	} else if (!strcmp(size, "1G")) {
		p->hugepage_kb = 1048576;
	} else {
		return qp_key_fail(c, json_object_is_type(v, json_type_string) ? "hugepages"
										 : "hugepages.size",
				   "expected \"2M\" or \"1G\"");
	}
	if (!p->hugepage_path)
		p->hugepage_path = qp_xstrdup(p->hugepage_kb == 2048 ? "/dev/hugepages"
								     : "/dev/hugepages1G");
	if (p->memory_mib * 1024 % p->hugepage_kb)
		return qp_key_fail(c, "hugepages", "the memory must be a whole number of %s pages",
				   size);
	return 0;
}

static int read_pinning(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	json_object *a, *v;
	if (qp_key_array(c, root, "", "vcpu_pins", &a) < 0)
		return -1;
	if (a) {
		size_t n = json_object_array_length(a);
		if (n != (size_t)p->vcpus)
			return qp_key_fail(c, "vcpu_pins",
					   "%zu CPUs for %d vCPUs: give one host CPU per "
					   "vCPU",
					   n, p->vcpus);
		p->vcpu_pins = qp_xcalloc(n, sizeof(int));
		p->n_vcpu_pins = n;
		for (size_t i = 0; i < n; i++) {
			qp_autofree char *sub = qp_xasprintf("vcpu_pins[%zu]", i);
			if (qp_key_int_value(c, json_object_array_get_idx(a, i), sub, 0, QP_MAX_CPU,
					     &p->vcpu_pins[i]) < 0)
				return -1;
		}
	}
	if (!qp_key_member(root, "emulator_cpus", &v))
		return 0;
	p->has_emulator_cpus = true;
	if (json_object_is_type(v, json_type_string)) {
		struct qp_err *e = NULL;
		if (qp_cpulist_parse(json_object_get_string(v), &p->emulator_cpus, &e) < 0) {
			qp_key_fail(c, "emulator_cpus", "%s", e->msg);
			qp_err_free(e);
			return -1;
		}
	} else if (json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			qp_autofree char *sub = qp_xasprintf("emulator_cpus[%zu]", i);
			int cpu;
			if (qp_key_int_value(c, json_object_array_get_idx(v, i), sub, 0, QP_MAX_CPU,
					     &cpu) < 0)
				return -1;
			qp_cpulist_add(&p->emulator_cpus, cpu);
		}
	} else {
		return qp_key_fail(c, "emulator_cpus",
				   "expected a CPU list like \"14-27\" or an array, "
				   "got %s",
				   qp_key_type_name(v));
	}
	if (!p->emulator_cpus.n)
		return qp_key_fail(c, "emulator_cpus", "the list is empty");
	return 0;
}

static int read_profile(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const machines[] = { "q35", "pc", NULL };
	static const char *const firmwares[] = { "bios", "ovmf", NULL };
	static const char *const accels[] = { "kvm", "tcg", "auto", NULL };
	static const char *const ovmf_keys[] = { "code", "vars", NULL };
	if (!json_object_is_type(root, json_type_object))
		return qp_key_fail(c, "", "a profile is a JSON object ({...}), not %s",
				   qp_key_type_name(root));
	if (qp_keys_check(c, root, "", top_keys) < 0 ||
	    qp_key_str(c, root, "", "name", true, &p->name) < 0)
		return -1;
	if (!qp_vm_name_ok(p->name))
		return qp_key_fail(c, "name",
				   "a VM name has 1 to 64 letters, digits, '.', '_' or '-', "
				   "and starts with a letter or digit");
	json_object *v, *ovmf;
	if (read_memory(c, root, p) < 0)
		return -1;
	if (!qp_key_member(root, "vcpus", &v))
		return qp_key_fail(c, "", "the key 'vcpus' is required (e.g. \"vcpus\": 4)");
	static const char *const irq_places[] = { "emulator", "vcpus", "leave", NULL };
	int machine = 0, firmware = 0, accel = 0, irq = 0;
	p->shutdown_timeout = 120;
	if (qp_key_int_value(c, v, "vcpus", 1, 1024, &p->vcpus) < 0 ||
	    qp_profile_read_passthrough(c, root, p) < 0 || qp_profile_read_gpus(c, root, p) < 0 ||
	    read_numa(c, root, p) < 0 ||
	    qp_key_enum(c, root, "", "machine", machines, &machine) < 0 ||
	    qp_key_enum(c, root, "", "firmware", firmwares, &firmware) < 0 ||
	    qp_key_object(c, root, "", "ovmf", &ovmf) < 0 ||
	    qp_key_str(c, root, "", "uuid", false, &p->uuid) < 0)
		return -1;
	p->machine = (enum qp_machine)machine;
	p->firmware = (enum qp_firmware)firmware;
	if (ovmf && (qp_keys_check(c, ovmf, "ovmf", ovmf_keys) < 0 ||
		     qp_key_str(c, ovmf, "ovmf", "code", false, &p->ovmf_code) < 0 ||
		     qp_key_str(c, ovmf, "ovmf", "vars", false, &p->ovmf_vars) < 0))
		return -1;
	if (p->firmware == QP_FW_OVMF) {
		/* Debian's ovmf package. */
		if (!p->ovmf_code)
			p->ovmf_code = qp_xstrdup("/usr/share/OVMF/OVMF_CODE_4M.fd");
		if (!p->ovmf_vars)
			p->ovmf_vars = qp_xstrdup("/usr/share/OVMF/OVMF_VARS_4M.fd");
	}
	if (p->uuid && !valid_uuid(p->uuid))
		return qp_key_fail(c, "uuid",
				   "expected a UUID like 774f2036-4c5f-4848-b4ad-b8ada41569c1");
	if (read_cpu(c, root, p) < 0 || read_clock_lifecycle(c, root, p) < 0 ||
	    qp_profile_read_disks(c, root, p) < 0 || qp_profile_read_network(c, root, p) < 0 ||
	    qp_profile_read_display(c, root, p) < 0 || qp_profile_read_devices(c, root, p) < 0 ||
	    read_hugepages(c, root, p) < 0 || read_prealloc(c, root, p) < 0 ||
	    read_pinning(c, root, p) < 0 ||
	    qp_key_bool(c, root, "", "share_cpus", &p->share_cpus) < 0 ||
	    qp_key_enum(c, root, "", "irq_cpus", irq_places, &irq) < 0 ||
	    qp_key_str(c, root, "", "run_as", false, &p->run_as) < 0 ||
	    qp_key_enum(c, root, "", "accel", accels, &accel) < 0 ||
	    qp_key_bool(c, root, "", "allow_boot_vga", &p->allow_boot_vga) < 0 ||
	    qp_key_strv(c, root, "", "extra_args", &p->extra_args) < 0 ||
	    qp_key_str(c, root, "", "qemu", false, &p->qemu) < 0 ||
	    qp_key_int(c, root, "", "shutdown_timeout", 1, 86400, &p->shutdown_timeout) < 0)
		return -1;
	p->accel = (enum qp_accel)accel;
	p->irq_cpus = (enum qp_irq_cpus)irq;
	if (!p->qemu)
		p->qemu = qp_xstrdup("qemu-system-x86_64");
	int given = (p->sockets > 0) + (p->cores > 0) + (p->threads > 0);
	int s = p->sockets ? p->sockets : 1, t = p->threads ? p->threads : 1;
	int cores = p->cores ? p->cores : p->vcpus / (s * t);
	if (given && (long)s * cores * t != p->vcpus)
		return qp_key_fail(c, "cpu",
				   "sockets %d x cores %d x threads %d is %ld, not vcpus %d", s,
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
	struct qp_keys c = { .file = file, .text = text, .err = err };
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
	free(p->gpus.model);
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
