/* The QEMU command line of a plan. Options that take JSON (-device, -object,
 * -blockdev, -netdev) get JSON, as libvirt 9 writes them: no value ever needs comma
 * escaping there. The rest are key=value lists, where a comma in a value is doubled. */
#include "core/argv.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "base/util.h"

struct argv {
	char **v;
	size_t n, cap;
};

static void add(struct argv *a, const char *s)
{
	a->v = qp_xgrow(a->v, &a->cap, a->n + 2, sizeof(char *));
	a->v[a->n++] = qp_xstrdup(s);
	a->v[a->n] = NULL;
}

__attribute__((format(printf, 2, 3))) static void addf(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = qp_xvasprintf(fmt, ap);
	va_end(ap);
	add(a, s);
	free(s);
}

/* "-device" '{"driver":...}': takes the reference to o. */
static void add_json(struct argv *a, const char *opt, json_object *o)
{
	add(a, opt);
	add(a, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* A value inside a key=value option: commas doubled. Caller frees. */
static char *opt_escape(const char *s)
{
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "");
	for (; *s; s++) {
		qp_buf_addc(&b, *s);
		if (*s == ',')
			qp_buf_addc(&b, ',');
	}
	return qp_buf_steal(&b);
}

static void set_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void set_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void set_bool(json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

static json_object *device(const char *driver, const char *id)
{
	json_object *o = json_object_new_object();
	set_str(o, "driver", driver);
	if (id)
		set_str(o, "id", id);
	return o;
}

/* "bus":"pci.0", "multifunction":true, "addr":"0x6" or "0x6.0x1". */
static void at(json_object *o, const char *bus, int slot, int func, bool multifunction)
{
	set_str(o, "bus", bus);
	if (multifunction)
		set_bool(o, "multifunction", true);
	char addr[16];
	if (func)
		snprintf(addr, sizeof(addr), "0x%x.0x%x", slot, func);
	else
		snprintf(addr, sizeof(addr), "0x%x", slot);
	set_str(o, "addr", addr);
}

static const char *root_bus(const struct qp_profile *p)
{
	return p->machine == QP_MACHINE_PC ? "pci.0" : "pcie.0";
}

/* A MAC address that stays the same for the same VM: 52:54:00 and a hash of name/index. */
static char *derived_mac(const char *name, size_t index)
{
	uint32_t h = 2166136261u;
	qp_autofree char *key = qp_xasprintf("%s/%zu", name, index);
	for (const char *s = key; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return qp_xasprintf("52:54:00:%02x:%02x:%02x", h >> 16 & 0xff, h >> 8 & 0xff, h & 0xff);
}

static void add_cpu(struct argv *a, const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	struct qp_buf b = { 0 };
	qp_buf_add(&b, plan->tcg && !strcmp(p->cpu_model, "host") ? "max" : p->cpu_model);
	for (char **f = p->cpu_flags; f && *f; f++)
		qp_buf_addf(&b, ",%s", *f);
	/* Hide KVM's signature from guest drivers that refuse to run in a VM. */
	if (p->hide_hypervisor)
		qp_buf_add(&b, ",kvm=off");
	if (p->hypervclock)
		qp_buf_add(&b, ",hv-time=on");
	for (size_t i = 0; i < p->n_hv; i++) {
		if (p->hv[i].value)
			qp_buf_addf(&b, ",hv-%s=%s", p->hv[i].name, p->hv[i].value);
		else
			qp_buf_addf(&b, ",hv-%s=on", p->hv[i].name);
	}
	if (p->hv_vendor_id)
		qp_buf_addf(&b, ",hv-vendor-id=%s", p->hv_vendor_id);
	/* A 64-bit MMIO window beyond the 40 address bits QEMU gives a named model or TCG;
	 * "host" under KVM takes the host's own (host-phys-bits). */
	if (plan->mmio64_bits > 40 && (plan->tcg || strcmp(p->cpu_model, "host")))
		qp_buf_addf(&b, ",phys-bits=%u", plan->mmio64_bits);
	add(a, "-cpu");
	qp_autofree char *cpu = qp_buf_steal(&b);
	add(a, cpu);
}

/* The threads that preallocate, created in a context on cpus. Before QEMU's sandbox,
 * which forbids setting affinity later. */
static void add_thread_context(struct argv *a, const char *id, const struct qp_cpulist *cpus)
{
	json_object *tc = json_object_new_object();
	set_str(tc, "qom-type", "thread-context");
	set_str(tc, "id", id);
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < cpus->n; i++)
		json_object_array_add(list, json_object_new_int(cpus->cpu[i]));
	json_object_object_add(tc, "cpu-affinity", list);
	add_json(a, "-object", tc);
}

/* A memory backend of mib MiB, bound to plan->memory_nodes[g] (g -1: unbound), its
 * preallocation in thread-context tc (NULL: none). */
static void add_backend(struct argv *a, const struct qp_plan *plan, const char *id,
			uint64_t mib, int g, const char *tc)
{
	const struct qp_profile *p = plan->profile;
	json_object *o = json_object_new_object();
	set_str(o, "qom-type", p->hugepage_kb ? "memory-backend-file" : "memory-backend-ram");
	set_str(o, "id", id);
	if (p->hugepage_kb)
		set_str(o, "mem-path", p->hugepage_path);
	if (plan->prealloc) {
		set_bool(o, "prealloc", true);
		set_int(o, "prealloc-threads", plan->prealloc_threads);
		if (tc)
			set_str(o, "prealloc-context", tc);
	}
	set_int(o, "size", (int64_t)(mib << 20));
	if (g >= 0) {
		json_object *nodes = json_object_new_array();
		json_object_array_add(nodes, json_object_new_int(plan->memory_nodes[g]));
		json_object_object_add(o, "host-nodes", nodes);
		set_str(o, "policy", "bind");
	}
	add_json(a, "-object", o);
}

static void add_memory(struct argv *a, const struct qp_plan *plan, const struct qp_host *h)
{
	const struct qp_profile *p = plan->profile;
	addf(a, "-m");
	addf(a, "%llu", (unsigned long long)p->memory_mib);
	if (plan->thread_context && !plan->span)
		add_thread_context(a, "tc-prealloc", &plan->prealloc_cpus);
	if (!plan->span) {
		add_backend(a, plan, "pc.ram", p->memory_mib, plan->n_memory_nodes ? 0 : -1,
			    plan->thread_context ? "tc-prealloc" : NULL);
		return;
	}
	/* Across nodes: a guest node per host node, its share of RAM bound there, its
	 * vCPUs, and the host's distances between them. */
	size_t k = plan->n_memory_nodes;
	for (size_t g = 0; g < k; g++) {
		qp_autofree char *id = qp_xasprintf("ram-node%zu", g);
		qp_autofree char *tc = qp_xasprintf("tc-node%zu", g);
		size_t per = plan->n_vcpus / k;
		if (plan->thread_context) {
			/* Each node's share by threads on that node's CPUs of the VM. */
			struct qp_cpulist cpus = { 0 };
			for (size_t v = g * per; v < g * per + per; v++)
				qp_cpulist_add(&cpus, plan->vcpu_pins[v]);
			for (size_t i = 0; g == 0 && i < plan->emulator_cpus.n; i++)
				qp_cpulist_add(&cpus, plan->emulator_cpus.cpu[i]);
			add_thread_context(a, tc, &cpus);
			qp_cpulist_free(&cpus);
		}
		add_backend(a, plan, id, p->memory_mib / k, (int)g,
			    plan->thread_context ? tc : NULL);
		add(a, "-numa");
		if (per > 1)
			addf(a, "node,nodeid=%zu,cpus=%zu-%zu,memdev=%s", g, g * per,
			     g * per + per - 1, id);
		else
			addf(a, "node,nodeid=%zu,cpus=%zu,memdev=%s", g, g * per, id);
	}
	for (size_t i = 0; i < k; i++) {
		const struct qp_numa_node *src = qp_host_node(h, plan->memory_nodes[i]);
		for (size_t j = 0; j < k; j++) {
			size_t col = qp_host_node(h, plan->memory_nodes[j]) - h->nodes;
			if (i == j || !src || col >= src->n_distance)
				continue;
			add(a, "-numa");
			addf(a, "dist,src=%zu,dst=%zu,val=%d", i, j, src->distance[col]);
		}
	}
}

static void add_firmware(struct argv *a, const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	if (p->firmware != QP_FW_OVMF)
		return;
	qp_autofree char *code = opt_escape(p->ovmf_code);
	qp_autofree char *vars = opt_escape(plan->ovmf_vars);
	add(a, "-drive");
	addf(a, "if=pflash,format=raw,unit=0,readonly=on,file=%s", code);
	add(a, "-drive");
	addf(a, "if=pflash,format=raw,unit=1,file=%s", vars);
}

/* A 64-bit MMIO window larger than the firmware's default, for big BARs. */
static void add_mmio_window(struct argv *a, const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	if (plan->mmio64_window <= qp_plan_mmio_default(p))
		return;
	if (p->firmware == QP_FW_OVMF) {
		add(a, "-fw_cfg");
		addf(a, "name=opt/ovmf/X-PciMmio64Mb,string=%llu",
		     (unsigned long long)(plan->mmio64_window >> 20));
	} else {
		add(a, "-global");
		addf(a, "%s-pcihost.pci-hole64-size=%lluG",
		     p->machine == QP_MACHINE_PC ? "i440FX" : "q35",
		     (unsigned long long)(plan->mmio64_window >> 30));
	}
}

static void add_video_usb(struct argv *a, const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	static const char *const video[] = {
		[QP_VIDEO_STD] = "VGA", [QP_VIDEO_CIRRUS] = "cirrus-vga",
		[QP_VIDEO_VIRTIO] = "virtio-vga", [QP_VIDEO_QXL] = "qxl-vga",
	};
	if (p->video != QP_VIDEO_NONE) {
		json_object *o = device(video[p->video], "video0");
		at(o, root_bus(p), plan->video_slot, 0, false);
		add_json(a, "-device", o);
	}
	if (p->usb == QP_USB_EHCI) {
		/* An EHCI controller with its three UHCI companions, as libvirt lays it out. */
		json_object *o = device("ich9-usb-ehci1", "usb");
		at(o, root_bus(p), plan->usb_slot, 7, false);
		add_json(a, "-device", o);
		for (int i = 0; i < 3; i++) {
			char drv[16];
			snprintf(drv, sizeof(drv), "ich9-usb-uhci%d", i + 1);
			o = device(drv, NULL);
			set_str(o, "masterbus", "usb.0");
			set_int(o, "firstport", i * 2);
			at(o, root_bus(p), plan->usb_slot, i, i == 0);
			add_json(a, "-device", o);
		}
	} else if (p->usb == QP_USB_XHCI) {
		json_object *o = device("qemu-xhci", "usb");
		at(o, root_bus(p), plan->usb_slot, 0, false);
		add_json(a, "-device", o);
	}
}

static void add_disks(struct argv *a, const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	static const char *const aio[] = { "threads", "native", "io_uring" };
	if (plan->sata_slot >= 0) {
		json_object *o = device("ich9-ahci", "sata0");
		at(o, root_bus(p), plan->sata_slot, 0, false);
		add_json(a, "-device", o);
	}
	int sata_unit = 0;
	for (size_t i = 0; i < p->n_disks; i++) {
		const struct qp_disk *d = &p->disks[i];
		bool direct = d->cache == QP_CACHE_NONE || d->cache == QP_CACHE_DIRECTSYNC;
		bool write_cache = d->cache != QP_CACHE_WRITETHROUGH &&
				   d->cache != QP_CACHE_DIRECTSYNC;
		char file_node[32], fmt_node[32], id[32];
		snprintf(file_node, sizeof(file_node), "disk%zu-file", i);
		snprintf(fmt_node, sizeof(fmt_node), "disk%zu", i);
		json_object *cache = json_object_new_object();
		set_bool(cache, "direct", direct);
		set_bool(cache, "no-flush", d->cache == QP_CACHE_UNSAFE);
		json_object *f = json_object_new_object();
		set_str(f, "driver", "file");
		set_str(f, "filename", d->file);
		set_str(f, "aio", aio[d->aio]);
		set_str(f, "node-name", file_node);
		json_object_object_add(f, "cache", json_object_get(cache));
		set_bool(f, "auto-read-only", true);
		set_str(f, "discard", "unmap");
		add_json(a, "-blockdev", f);
		json_object *fmt = json_object_new_object();
		set_str(fmt, "node-name", fmt_node);
		set_bool(fmt, "read-only", d->readonly);
		json_object_object_add(fmt, "cache", cache);
		set_str(fmt, "driver", d->qcow2 ? "qcow2" : "raw");
		set_str(fmt, "file", file_node);
		add_json(a, "-blockdev", fmt);
		json_object *o;
		if (d->bus == QP_DISK_VIRTIO) {
			snprintf(id, sizeof(id), "virtio-disk%zu", i);
			o = device("virtio-blk-pci", NULL);
			at(o, root_bus(p), plan->disk_slots[i], 0, false);
		} else {
			snprintf(id, sizeof(id), "sata0-0-%d", sata_unit);
			o = device("ide-hd", NULL);
			char bus[32];
			/* q35's own AHCI controller has buses ide.0 to ide.5. */
			snprintf(bus, sizeof(bus), "%s.%d", plan->sata_slot >= 0 ? "sata0" : "ide",
				 sata_unit++);
			set_str(o, "bus", bus);
		}
		set_str(o, "drive", fmt_node);
		set_str(o, "id", id);
		if (i == 0)
			set_int(o, "bootindex", 1);
		set_str(o, "write-cache", write_cache ? "on" : "off");
		add_json(a, "-device", o);
	}
}

static void add_nets(struct argv *a, const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	size_t tap = 0;
	for (size_t i = 0; i < p->n_nets; i++) {
		const struct qp_net *nt = &p->nets[i];
		char netdev[32], id[32];
		snprintf(netdev, sizeof(netdev), "hostnet%zu", i);
		snprintf(id, sizeof(id), "net%zu", i);
		json_object *n = json_object_new_object();
		if (nt->type == QP_NET_BRIDGE) {
			/* qpass opens the tap and hands QEMU the fd: -sandbox spawn=deny forbids
			 * qemu-bridge-helper, and QEMU need not be privileged. */
			char fd[16];
			snprintf(fd, sizeof(fd), "%d", plan->taps[tap++].fd);
			set_str(n, "type", "tap");
			set_str(n, "fd", fd);
		} else {
			set_str(n, "type", "user");
		}
		set_str(n, "id", netdev);
		add_json(a, "-netdev", n);
		qp_autofree char *mac = nt->mac ? qp_xstrdup(nt->mac) : derived_mac(p->name, i);
		json_object *o = device(nt->model, NULL);
		set_str(o, "netdev", netdev);
		set_str(o, "id", id);
		set_str(o, "mac", mac);
		at(o, root_bus(p), plan->net_slots[i], 0, false);
		add_json(a, "-device", o);
	}
}

static void add_serial_input_display(struct argv *a, const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	if (p->serial != QP_SERIAL_NONE) {
		add(a, "-chardev");
		if (p->serial == QP_SERIAL_PTY) {
			add(a, "pty,id=charserial0");
		} else {
			qp_autofree char *path = opt_escape(p->serial_path);
			addf(a, "file,id=charserial0,path=%s", path);
		}
		json_object *o = device("isa-serial", "serial0");
		set_str(o, "chardev", "charserial0");
		set_int(o, "index", 0);
		add_json(a, "-device", o);
	}
	if (p->usb_tablet) {
		json_object *o = device("usb-tablet", "input0");
		set_str(o, "bus", "usb.0");
		set_str(o, "port", "1");
		add_json(a, "-device", o);
	}
	if (p->display == QP_DISPLAY_NONE) {
		add(a, "-display");
		add(a, "none");
		return;
	}
	const char *listen = p->vnc_listen ? p->vnc_listen : "127.0.0.1";
	bool v6 = strchr(listen, ':') != NULL;
	if (p->vnc_password_file) {
		json_object *o = json_object_new_object();
		set_str(o, "qom-type", "secret");
		set_str(o, "id", "vnc-secret");
		set_str(o, "file", p->vnc_password_file);
		add_json(a, "-object", o);
	}
	add(a, "-vnc");
	addf(a, "%s%s%s:%d%s", v6 ? "[" : "", listen, v6 ? "]" : "", p->vnc_port - 5900,
	     p->vnc_password_file ? ",password-secret=vnc-secret" : "");
}

/* Across nodes: each guest node's expander, its numa_node the guest node, with bus
 * numbers of its own (32 for each, so every root port under it has one). */
static void add_expanders(struct argv *a, const struct qp_plan *plan)
{
	bool pc = plan->profile->machine == QP_MACHINE_PC;
	for (size_t g = 0; plan->span && g < plan->n_memory_nodes; g++) {
		if (plan->pxb_slots[g] < 0)
			continue;
		qp_autofree char *id = qp_xasprintf("pxb.node%zu", g);
		json_object *o = device(pc ? "pxb" : "pxb-pcie", id);
		set_int(o, "bus_nr", (int64_t)(g + 1) * 32);
		set_int(o, "numa_node", (int64_t)g);
		at(o, pc ? "pci.0" : "pcie.0", plan->pxb_slots[g], 0, false);
		add_json(a, "-device", o);
	}
}

static void add_hostdevs(struct argv *a, const struct qp_plan *plan)
{
	add_expanders(a, plan);
	for (size_t i = 0; i < plan->n_devs; i++) {
		const struct qp_plan_dev *d = &plan->devs[i];
		/* q35: a root port per guest slot, made before its first function. */
		if (d->port_slot >= 0 && (i == 0 || strcmp(plan->devs[i - 1].bus, d->bus))) {
			int index = atoi(d->bus + 4);
			json_object *o = device("pcie-root-port", d->bus);
			set_int(o, "port", 0x10 + index - 1);
			set_int(o, "chassis", index);
			qp_autofree char *pxb = d->guest_node >= 0 ?
				qp_xasprintf("pxb.node%d", d->guest_node) : NULL;
			at(o, pxb ? pxb : "pcie.0", d->port_slot, 0, false);
			add_json(a, "-device", o);
		}
		char host[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&d->host, host);
		json_object *o = device("vfio-pci", NULL);
		set_str(o, "host", host);
		set_str(o, "id", d->id);
		at(o, d->bus, d->slot, d->func, d->multifunction);
		if (d->rombar >= 0)
			set_int(o, "rombar", d->rombar);
		if (d->romfile)
			set_str(o, "romfile", d->romfile);
		add_json(a, "-device", o);
	}
}

void qp_plan_build_argv(struct qp_plan *plan, const struct qp_host *h)
{
	const struct qp_profile *p = plan->profile;
	struct argv a = { 0 };
	add(&a, p->qemu);
	add(&a, "-name");
	qp_autofree char *name = opt_escape(p->name);
	addf(&a, "guest=%s,debug-threads=on", name);
	add(&a, "-S");
	add(&a, "-msg");
	add(&a, "timestamp=on");
	add(&a, "-no-user-config");
	add(&a, "-nodefaults");
	add(&a, "-sandbox");
	add(&a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	/* QMP on a socket qpass has already bound and listens on: no path can race. */
	add(&a, "-chardev");
	addf(&a, "socket,id=qmp,fd=%d,server=on,wait=off", QP_FD_QMP);
	add(&a, "-mon");
	add(&a, "chardev=qmp,mode=control");
	add(&a, "-machine");
	addf(&a, "%s,usb=off,dump-guest-core=off%s", p->machine == QP_MACHINE_PC ? "pc" : "q35",
	     plan->span ? "" : ",memory-backend=pc.ram");
	add(&a, "-accel");
	add(&a, plan->tcg ? "tcg" : "kvm");
	add_firmware(&a, plan);
	add_mmio_window(&a, plan);
	add_cpu(&a, plan);
	add_memory(&a, plan, h);
	add(&a, "-smp");
	addf(&a, "%d,sockets=%d,cores=%d,threads=%d", p->vcpus, plan->sockets, plan->cores,
	     p->threads);
	if (p->uuid) {
		add(&a, "-uuid");
		add(&a, p->uuid);
	}
	add(&a, "-rtc");
	add(&a, p->clock_localtime ? "base=localtime" : "base=utc");
	/* The supervisor applies on_poweroff itself, so QEMU must not exit on its own. */
	add(&a, "-no-shutdown");
	add(&a, "-boot");
	add(&a, "strict=on");
	add_video_usb(&a, plan);
	add_disks(&a, plan);
	add_nets(&a, plan);
	add_serial_input_display(&a, plan);
	add_hostdevs(&a, plan);
	if (plan->balloon_slot >= 0) {
		json_object *o = device("virtio-balloon-pci", "balloon0");
		at(o, root_bus(p), plan->balloon_slot, 0, false);
		add_json(&a, "-device", o);
	}
	/* Lets the guest report a panic (GUEST_PANICKED), for on_crash. */
	add(&a, "-device");
	add(&a, "{\"driver\":\"pvpanic\",\"id\":\"panic0\"}");
	for (char **x = p->extra_args; x && *x; x++)
		add(&a, *x);
	plan->argv = a.v;
	plan->argc = a.n;
	(void)h;
}

char *qp_shell_quote(const char *s)
{
	bool plain = *s != '\0';
	for (const char *c = s; *c && plain; c++)
		plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			       "_-./=:,+@%", *c) != NULL;
	if (plain)
		return qp_xstrdup(s);
	struct qp_buf b = { 0 };
	qp_buf_addc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			qp_buf_add(&b, "'\\''");
		else
			qp_buf_addc(&b, *s);
	}
	qp_buf_addc(&b, '\'');
	return qp_buf_steal(&b);
}
