/* The sections of a profile that say what the VM has: passthrough, disks, network,
 * display, and the other devices (video, USB, serial, balloon). */
#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "profiles/keys.h"
#include "profiles/profile-int.h"

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

int qp_profile_read_passthrough(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "address", "guest_slot", "rombar", "romfile", NULL };
	json_object *a;
	if (qp_key_array(c, root, "", "passthrough", &a) < 0)
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
			if (qp_keys_check(c, e, t->key, keys) < 0 ||
			    qp_key_str(c, e, t->key, "address", true, &addr) < 0 ||
			    qp_key_int(c, e, t->key, "guest_slot", 1, 31, &t->guest_slot) < 0 ||
			    qp_key_bool(c, e, t->key, "rombar", &rombar) < 0 ||
			    qp_key_str(c, e, t->key, "romfile", false, &t->romfile) < 0)
				return -1;
			if (qp_key_member(e, "rombar", &rb))
				t->rombar = rombar;
		} else {
			return qp_key_fail(c, t->key,
					   "expected a PCI address like \"04:00\" or an object, "
					   "got %s",
					   qp_key_type_name(e));
		}
		struct qp_err *pe = NULL;
		bool has_func;
		if (qp_parse_pci_selector(addr, &t->addr, &has_func, &pe) < 0) {
			qp_key_fail(c, t->key, "%s", pe->msg);
			qp_err_free(pe);
			return -1;
		}
		t->all_functions = !has_func;
	}
	return 0;
}

/* The vendors one may name; any other is given by its id ("10de"). */
static const struct {
	const char *name;
	int id;
} vendors[] = { { "nvidia", 0x10de }, { "amd", 0x1002 }, { "intel", 0x8086 } };

/* "10de" or "0x10de": four hex digits, else -1. */
static int hex_id(const char *s)
{
	if (!strncmp(s, "0x", 2))
		s += 2;
	if (strlen(s) != 4)
		return -1;
	for (int i = 0; i < 4; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -1;
	return (int)strtol(s, NULL, 16);
}

static int read_vendor(struct qp_keys *c, json_object *g, struct qp_gpu_request *r)
{
	qp_autofree char *v = NULL;
	if (qp_key_str(c, g, "gpus", "vendor", false, &v) < 0)
		return -1;
	r->vendor = -1;
	if (!v)
		return 0;
	for (size_t i = 0; i < QP_ARRAY_SIZE(vendors); i++)
		if (!strcasecmp(v, vendors[i].name))
			r->vendor = vendors[i].id;
	if (r->vendor < 0)
		r->vendor = hex_id(v);
	if (r->vendor < 0)
		return qp_key_fail(c, "gpus.vendor", "unknown vendor \"%s\": \"nvidia\", \"amd\", "
				   "\"intel\", or a PCI vendor id like \"10de\"", v);
	return 0;
}

int qp_profile_read_gpus(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "count", "vendor", "model", "node", NULL };
	struct qp_gpu_request *r = &p->gpus;
	*r = (struct qp_gpu_request){ .vendor = -1, .device = -1, .node = -1 };
	json_object *g, *node;
	if (qp_key_object(c, root, "", "gpus", &g) < 0)
		return -1;
	if (!g)
		return 0;
	if (!json_object_is_type(g, json_type_object))
		return qp_key_fail(c, "gpus", "expected an object like {\"count\": 2, \"vendor\": "
				   "\"nvidia\"}, got %s", qp_key_type_name(g));
	if (qp_keys_check(c, g, "gpus", keys) < 0 || read_vendor(c, g, r) < 0 ||
	    qp_key_str(c, g, "gpus", "model", false, &r->model) < 0)
		return -1;
	if (!qp_key_member(g, "count", NULL))
		return qp_key_fail(c, "gpus", "the key 'count' is required: how many GPUs the VM "
				   "gets (e.g. \"count\": 2)");
	if (qp_key_int(c, g, "gpus", "count", 1, 64, &r->count) < 0)
		return -1;
	if (r->model)
		r->device = hex_id(r->model);
	if (qp_key_member(g, "node", &node) && !(json_object_is_type(node, json_type_string) &&
						 !strcmp(json_object_get_string(node), "any"))) {
		if (!json_object_is_type(node, json_type_int))
			return qp_key_fail(c, "gpus.node", "expected \"any\" or a node number, got %s",
					   qp_key_type_name(node));
		if (qp_key_int_value(c, node, "gpus.node", 0, 65535, &r->node) < 0)
			return -1;
	}
	return 0;
}

int qp_profile_read_disks(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "file", "format", "bus", "cache", "aio", "readonly",
					    NULL };
	static const char *const formats[] = { "raw", "qcow2", NULL };
	static const char *const buses[] = { "virtio", "sata", NULL };
	static const char *const caches[] = { "none", "writeback", "writethrough", "directsync",
					      "unsafe", NULL };
	static const char *const aios[] = { "threads", "native", "io_uring", NULL };
	json_object *a;
	if (qp_key_array(c, root, "", "disks", &a) < 0)
		return -1;
	size_t n = a ? json_object_array_length(a) : 0;
	p->disks = qp_xcalloc(n, sizeof(*p->disks));
	for (size_t i = 0; i < n; i++) {
		struct qp_disk *d = &p->disks[i];
		p->n_disks = i + 1;
		qp_autofree char *path = qp_xasprintf("disks[%zu]", i);
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_object))
			return qp_key_fail(c, path, "expected an object like {\"file\": "
					   "\"/path/disk.qcow2\", \"format\": \"qcow2\"}, got %s",
					   qp_key_type_name(e));
		int fmt = -1, bus = 0, cache = 0, aio = 0;
		if (qp_keys_check(c, e, path, keys) < 0 ||
		    qp_key_str(c, e, path, "file", true, &d->file) < 0 ||
		    qp_key_enum(c, e, path, "format", formats, &fmt) < 0 ||
		    qp_key_enum(c, e, path, "bus", buses, &bus) < 0 ||
		    qp_key_enum(c, e, path, "cache", caches, &cache) < 0 ||
		    qp_key_enum(c, e, path, "aio", aios, &aio) < 0 ||
		    qp_key_bool(c, e, path, "readonly", &d->readonly) < 0)
			return -1;
		/* Probing a format is a known hole (a raw guest disk posing as qcow2). */
		if (fmt < 0)
			return qp_key_fail(c, path,
					   "the key 'format' is required: \"qcow2\" or \"raw\"");
		d->qcow2 = fmt == 1;
		d->bus = (enum qp_disk_bus)bus;
		d->cache = (enum qp_cache)cache;
		d->aio = (enum qp_aio)aio;
		if (d->readonly && d->bus == QP_DISK_SATA) {
			qp_autofree char *sub = qp_xasprintf("%s.readonly", path);
			return qp_key_fail(c, sub,
					   "QEMU's SATA disks cannot be read-only; use \"bus\": "
					   "\"virtio\"");
		}
		if (d->aio == QP_AIO_NATIVE && d->cache != QP_CACHE_NONE &&
		    d->cache != QP_CACHE_DIRECTSYNC) {
			qp_autofree char *sub = qp_xasprintf("%s.aio", path);
			return qp_key_fail(c, sub,
					   "\"native\" needs \"cache\": \"none\" or \"directsync\" "
					   "(O_DIRECT)");
		}
	}
	return 0;
}

int qp_profile_read_network(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "type", "bridge", "mac", "model", NULL };
	static const char *const types[] = { "bridge", "user", NULL };
	static const char *const models[] = { "virtio", "e1000e", "e1000", "rtl8139", NULL };
	static const char *const devices[] = { "virtio-net-pci", "e1000e", "e1000", "rtl8139" };
	json_object *a;
	if (qp_key_array(c, root, "", "network", &a) < 0)
		return -1;
	size_t n = a ? json_object_array_length(a) : 0;
	p->nets = qp_xcalloc(n, sizeof(*p->nets));
	for (size_t i = 0; i < n; i++) {
		struct qp_net *nt = &p->nets[i];
		p->n_nets = i + 1;
		qp_autofree char *path = qp_xasprintf("network[%zu]", i);
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_object))
			return qp_key_fail(c, path,
					   "expected an object like {\"type\": \"bridge\", "
					   "\"bridge\": \"br0\"}, got %s",
					   qp_key_type_name(e));
		int type = -1, model = 0;
		if (qp_keys_check(c, e, path, keys) < 0 ||
		    qp_key_enum(c, e, path, "type", types, &type) < 0 ||
		    qp_key_str(c, e, path, "bridge", false, &nt->bridge) < 0 ||
		    qp_key_str(c, e, path, "mac", false, &nt->mac) < 0 ||
		    qp_key_enum(c, e, path, "model", models, &model) < 0)
			return -1;
		if (type < 0)
			return qp_key_fail(c, path,
					   "the key 'type' is required: \"bridge\" or \"user\"");
		nt->type = (enum qp_net_type)type;
		nt->model = qp_xstrdup(devices[model]);
		if (nt->type == QP_NET_BRIDGE && !nt->bridge)
			return qp_key_fail(c, path,
					   "a bridge network needs \"bridge\": the host bridge's "
					   "name, e.g. \"br0\"");
		if (nt->type == QP_NET_BRIDGE &&
		    (strlen(nt->bridge) > 15 || strpbrk(nt->bridge, "/ \t"))) {
			qp_autofree char *sub = qp_xasprintf("%s.bridge", path);
			return qp_key_fail(c, sub,
					   "not an interface name (at most 15 characters, no '/')");
		}
		if (nt->mac && !valid_mac(nt->mac)) {
			qp_autofree char *sub = qp_xasprintf("%s.mac", path);
			return qp_key_fail(c, sub,
					   "expected a unicast MAC address like 52:54:00:8c:04:9f");
		}
	}
	return 0;
}

int qp_profile_read_display(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const keys[] = { "type", "listen", "port", "password_file", NULL };
	static const char *const types[] = { "vnc", "none", NULL };
	static const char *const videos[] = { "std", "cirrus", "virtio", "qxl", "none", NULL };
	json_object *v = NULL;
	p->display = QP_DISPLAY_NONE;
	if (qp_key_member(root, "display", &v) && json_object_is_type(v, json_type_string)) {
		if (strcmp(json_object_get_string(v), "none"))
			return qp_key_fail(c, "display",
					   "expected \"none\" or an object like {\"type\": "
					   "\"vnc\", \"port\": 5913}");
	} else if (v) {
		int type = -1;
		if (qp_key_object(c, root, "", "display", &v) < 0 ||
		    qp_keys_check(c, v, "display", keys) < 0 ||
		    qp_key_enum(c, v, "display", "type", types, &type) < 0 ||
		    qp_key_str(c, v, "display", "listen", false, &p->vnc_listen) < 0 ||
		    qp_key_int(c, v, "display", "port", 5900, 5900 + 65535 - 5900, &p->vnc_port) <
			    0 ||
		    qp_key_str(c, v, "display", "password_file", false, &p->vnc_password_file) < 0)
			return -1;
		if (type < 0)
			return qp_key_fail(c, "display",
					   "the key 'type' is required: \"vnc\" or \"none\"");
		p->display = (enum qp_display)type;
		if (p->display == QP_DISPLAY_VNC && !p->vnc_port)
			return qp_key_fail(c, "display",
					   "a VNC display needs \"port\" (5900 is display 0)");
		if (p->vnc_listen && strpbrk(p->vnc_listen, ", "))
			return qp_key_fail(c, "display.listen",
					   "expected an address like \"127.0.0.1\"");
	}
	int video = QP_VIDEO_STD;
	if (qp_key_enum(c, root, "", "video", videos, &video) < 0)
		return -1;
	p->video = (enum qp_video)video;
	return 0;
}

int qp_profile_read_devices(struct qp_keys *c, json_object *root, struct qp_profile *p)
{
	static const char *const usb_keys[] = { "controller", "tablet", NULL };
	static const char *const usbs[] = { "xhci", "ehci", "none", NULL };
	static const char *const serial_keys[] = { "type", "path", NULL };
	static const char *const serials[] = { "none", "pty", "file", NULL };
	json_object *usb, *v = NULL;
	int ctl = -1, serial = QP_SERIAL_NONE;
	p->usb_tablet = p->display != QP_DISPLAY_NONE;
	if (qp_key_object(c, root, "", "usb", &usb) < 0 ||
	    (usb && (qp_keys_check(c, usb, "usb", usb_keys) < 0 ||
		     qp_key_enum(c, usb, "usb", "controller", usbs, &ctl) < 0 ||
		     qp_key_bool(c, usb, "usb", "tablet", &p->usb_tablet) < 0)))
		return -1;
	/* i440fx guests know EHCI best (the seed's); q35 guests get xHCI. */
	p->usb = ctl >= 0 ? (enum qp_usb)ctl : p->machine == QP_MACHINE_PC ? QP_USB_EHCI
									   : QP_USB_XHCI;
	if (p->usb == QP_USB_NONE && p->usb_tablet)
		return qp_key_fail(c, "usb", "a USB tablet needs a USB controller");

	if (qp_key_member(root, "serial", &v) && json_object_is_type(v, json_type_object)) {
		if (qp_keys_check(c, v, "serial", serial_keys) < 0 ||
		    qp_key_enum(c, v, "serial", "type", serials, &serial) < 0 ||
		    qp_key_str(c, v, "serial", "path", serial == QP_SERIAL_FILE, &p->serial_path) <
			    0)
			return -1;
	} else if (qp_key_enum(c, root, "", "serial", serials, &serial) < 0) {
		return -1;
	} else if (serial == QP_SERIAL_FILE) {
		return qp_key_fail(c, "serial", "a file serial is an object: {\"type\": \"file\", "
				   "\"path\": \"/var/log/vm.log\"}");
	}
	p->serial = (enum qp_serial)serial;
	p->memballoon = true;
	return qp_key_bool(c, root, "", "memballoon", &p->memballoon);
}
