/* The profile parser: every key of the format, its defaults, and errors that name
 * FILE:LINE:COLUMN and the key's path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"
#include "profiles/profile.h"

static struct qp_profile parse_ok(const char *text)
{
	struct qp_profile p;
	struct qp_err *err = NULL;
	if (qp_profile_parse(text, "t.json", &p, &err) < 0)
		fail_msg("unexpected error: %s", err->msg);
	return p;
}

/* Expects an error whose message starts with `prefix` and holds `needle`. */
static void parse_bad(const char *text, const char *prefix, const char *needle)
{
	struct qp_profile p;
	struct qp_err *err = NULL;
	if (qp_profile_parse(text, "t.json", &p, &err) == 0)
		fail_msg("accepted: %s", text);
	if (strncmp(err->msg, prefix, strlen(prefix)) || !strstr(err->msg, needle))
		fail_msg("message '%s' lacks '%s' ... '%s'", err->msg, prefix, needle);
	qp_err_free(err);
}

static void minimal_profile_defaults(void **state)
{
	struct qp_profile p = parse_ok("{\"name\": \"vm1\", \"memory\": \"512M\", \"vcpus\": 2}");
	assert_string_equal(p.name, "vm1");
	assert_true(p.memory_mib == 512);
	assert_int_equal(p.vcpus, 2);
	assert_int_equal(p.n_pt, 0);
	assert_int_equal(p.numa, -1);
	assert_int_equal(p.machine, QP_MACHINE_Q35);
	assert_int_equal(p.firmware, QP_FW_BIOS);
	assert_string_equal(p.cpu_model, "host");
	assert_false(p.hide_hypervisor);
	assert_int_equal(p.sockets, 1);
	assert_int_equal(p.cores, 2);
	assert_int_equal(p.threads, 1);
	assert_false(p.clock_localtime);
	assert_int_equal(p.on_poweroff, QP_ACT_DESTROY);
	assert_int_equal(p.on_reboot, QP_ACT_RESTART);
	assert_int_equal(p.on_crash, QP_ACT_DESTROY);
	assert_int_equal(p.display, QP_DISPLAY_NONE);
	assert_int_equal(p.video, QP_VIDEO_STD);
	assert_int_equal(p.usb, QP_USB_XHCI);
	assert_false(p.usb_tablet);
	assert_int_equal(p.serial, QP_SERIAL_NONE);
	assert_true(p.memballoon);
	assert_true(p.hugepage_kb == 0);
	assert_int_equal(p.accel, QP_ACCEL_KVM);
	assert_string_equal(p.qemu, "qemu-system-x86_64");
	assert_int_equal(p.shutdown_timeout, 120);
	qp_profile_free(&p);
}

static void full_profile(void **state)
{
	struct qp_profile p = parse_ok(
		"// a comment\n"
		"{\n"
		"  \"name\": \"win10-gpu-01\", /* another */\n"
		"  \"memory\": 65536, \"vcpus\": 14, \"machine\": \"pc\", \"firmware\": \"ovmf\",\n"
		"  \"uuid\": \"774f2036-4c5f-4848-b4ad-b8ada41569c1\",\n"
		"  \"passthrough\": [\"0000:04:00\", \"05:00.1\",\n"
		"     {\"address\": \"85:00\", \"guest_slot\": 9, \"rombar\": false,\n"
		"      \"romfile\": \"/r.rom\"}],\n"
		"  \"numa\": 1,\n"
		"  \"cpu\": {\"model\": \"host\", \"flags\": [\"-arch-capabilities\"],\n"
		"          \"hide_hypervisor\": true, \"hv_vendor_id\": \"whatever\",\n"
		"          \"hyperv\": {\"relaxed\": true, \"vapic\": false, \"spinlocks\": 8191},\n"
		"          \"sockets\": 1, \"cores\": 7, \"threads\": 2},\n"
		"  \"clock\": {\"base\": \"localtime\", \"hypervclock\": true},\n"
		"  \"lifecycle\": {\"on_poweroff\": \"preserve\", \"on_crash\": \"restart\"},\n"
		"  \"disks\": [{\"file\": \"/a.qcow2\", \"format\": \"qcow2\", \"cache\": \"none\",\n"
		"              \"aio\": \"native\"}, {\"file\": \"/b\", \"format\": \"raw\",\n"
		"              \"bus\": \"sata\", \"readonly\": false}],\n"
		"  \"network\": [{\"type\": \"bridge\", \"bridge\": \"br0\",\n"
		"                \"mac\": \"52:54:00:8c:04:9f\"}, {\"type\": \"user\",\n"
		"                \"model\": \"e1000e\"}],\n"
		"  \"display\": {\"type\": \"vnc\", \"listen\": \"0.0.0.0\", \"port\": 5913,\n"
		"              \"password_file\": \"/etc/pw\"},\n"
		"  \"video\": \"cirrus\", \"usb\": {\"controller\": \"ehci\"}, \"serial\": \"pty\",\n"
		"  \"memballoon\": false, \"hugepages\": \"1G\",\n"
		"  \"vcpu_pins\": [0,1,2,3,4,5,6,7,8,9,10,11,12,13], \"emulator_cpus\": \"28-41\",\n"
		"  \"run_as\": \"qemu\", \"accel\": \"auto\", \"allow_boot_vga\": true,\n"
		"  \"extra_args\": [\"-device\", \"intel-hda\"], \"qemu\": \"/usr/bin/qemu\",\n"
		"  \"shutdown_timeout\": 30\n"
		"}\n");
	assert_true(p.memory_mib == 65536);
	assert_int_equal(p.machine, QP_MACHINE_PC);
	assert_int_equal(p.firmware, QP_FW_OVMF);
	assert_string_equal(p.ovmf_code, "/usr/share/OVMF/OVMF_CODE_4M.fd");
	assert_int_equal(p.n_pt, 3);
	assert_true(p.pt[0].all_functions);
	assert_int_equal(p.pt[0].addr.bus, 4);
	assert_false(p.pt[1].all_functions);
	assert_int_equal(p.pt[1].addr.func, 1);
	assert_int_equal(p.pt[2].guest_slot, 9);
	assert_int_equal(p.pt[2].rombar, 0);
	assert_string_equal(p.pt[2].romfile, "/r.rom");
	assert_int_equal(p.numa, 1);
	assert_string_equal(p.cpu_flags[0], "-arch-capabilities");
	assert_true(p.hide_hypervisor);
	assert_string_equal(p.hv_vendor_id, "whatever");
	assert_int_equal(p.n_hv, 2);
	assert_string_equal(p.hv[0].name, "relaxed");
	assert_null(p.hv[0].value);
	assert_string_equal(p.hv[1].name, "spinlocks");
	assert_string_equal(p.hv[1].value, "0x1fff");
	assert_int_equal(p.cores, 7);
	assert_int_equal(p.threads, 2);
	assert_true(p.clock_localtime);
	assert_true(p.hypervclock);
	assert_int_equal(p.on_poweroff, QP_ACT_PRESERVE);
	assert_int_equal(p.on_reboot, QP_ACT_RESTART);
	assert_int_equal(p.on_crash, QP_ACT_RESTART);
	assert_int_equal(p.n_disks, 2);
	assert_true(p.disks[0].qcow2);
	assert_int_equal(p.disks[0].aio, QP_AIO_NATIVE);
	assert_int_equal(p.disks[1].bus, QP_DISK_SATA);
	assert_false(p.disks[1].readonly);
	assert_int_equal(p.n_nets, 2);
	assert_string_equal(p.nets[0].bridge, "br0");
	assert_string_equal(p.nets[1].model, "e1000e");
	assert_int_equal(p.display, QP_DISPLAY_VNC);
	assert_int_equal(p.vnc_port, 5913);
	assert_int_equal(p.video, QP_VIDEO_CIRRUS);
	assert_int_equal(p.usb, QP_USB_EHCI);
	assert_true(p.usb_tablet);
	assert_int_equal(p.serial, QP_SERIAL_PTY);
	assert_false(p.memballoon);
	assert_true(p.hugepage_kb == 1048576);
	assert_string_equal(p.hugepage_path, "/dev/hugepages1G");
	assert_int_equal(p.n_vcpu_pins, 14);
	assert_true(p.has_emulator_cpus);
	assert_int_equal(p.emulator_cpus.n, 14);
	assert_string_equal(p.run_as, "qemu");
	assert_int_equal(p.accel, QP_ACCEL_AUTO);
	assert_true(p.allow_boot_vga);
	assert_string_equal(p.extra_args[1], "intel-hda");
	assert_int_equal(p.shutdown_timeout, 30);
	qp_profile_free(&p);
}

static void memory_sizes(void **state)
{
	uint64_t m;
	struct qp_err *e = NULL;
	assert_int_equal(qp_parse_size_mib("64G", &m, &e), 0);
	assert_true(m == 65536);
	assert_int_equal(qp_parse_size_mib("64GiB", &m, &e), 0);
	assert_int_equal(qp_parse_size_mib("512M", &m, &e), 0);
	assert_true(m == 512);
	assert_int_equal(qp_parse_size_mib("1T", &m, &e), 0);
	assert_true(m == 1048576);
	const char *bad[] = { "", "G", "64g", "1.5G", "-1G", "0", "64 G", "64K", "99999999T" };
	for (size_t i = 0; i < QP_ARRAY_SIZE(bad); i++) {
		assert_int_equal(qp_parse_size_mib(bad[i], &m, &e), -1);
		qp_err_free(e);
		e = NULL;
	}
}

static void errors_name_line_column_and_key(void **state)
{
	const char *base = "{\"name\": \"vm\", \"memory\": \"1G\", \"vcpus\": 1,\n";
	char buf[512];
#define BAD(tail, prefix, needle)                                              \
	do {                                                                   \
		snprintf(buf, sizeof(buf), "%s%s", base, tail);                \
		parse_bad(buf, prefix, needle);                                \
	} while (0)
	BAD(" \"cpu\": {\"hide_hypervisr\": true}}", "t.json:2:10: cpu.hide_hypervisr: ",
	    "unknown key (did you mean 'hide_hypervisor'?)");
	BAD(" \"bogus\": 1}", "t.json:2:2: bogus: ", "unknown key");
	BAD(" \"vcpus2\": 1}", "t.json:2:2: vcpus2: ", "did you mean 'vcpus'?");
	BAD(" \"machine\": 35}", "t.json:2:2: machine: ", "expected a string, got int");
	BAD(" \"machine\": \"i440fx\"}", "t.json:2:2: machine: ", "is not one of: q35, pc");
	BAD(" \"disks\": [{\"file\": \"/a\", \"format\": \"raw\"},\n  {\"file\": 3}]}",
	    "t.json:3:4: disks[1].file: ", "expected a string, got int");
	BAD(" \"disks\": [{\"file\": \"/a\"}]}", "t.json:2:12: disks[0]: ",
	    "'format' is required");
	BAD(" \"disks\": [{\"file\": \"/a\", \"format\": \"raw\", \"aio\": \"native\", "
	    "\"cache\": \"writeback\"}]}", "t.json:2:", "\"native\" needs");
	BAD(" \"disks\": [{\"file\": \"/a\", \"format\": \"raw\", \"bus\": \"sata\", "
	    "\"readonly\": true}]}", "t.json:2:", "cannot be read-only");
	BAD(" \"passthrough\": [\"04:00\", \"4:0\"]}", "t.json:2:27: passthrough[1]: ",
	    "is not a PCI address");
	BAD(" \"passthrough\": [7]}", "t.json:2:18: passthrough[0]: ", "got int");
	BAD(" \"numa\": \"node1\"}", "t.json:2:2: numa: ", "\"auto\", \"span\" or a node number");
	BAD(" \"network\": [{\"type\": \"bridge\"}]}", "t.json:2:14: network[0]: ",
	    "needs \"bridge\"");
	BAD(" \"network\": [{\"type\": \"user\", \"mac\": \"01:00:5e:00:00:01\"}]}",
	    "t.json:2:31: network[0].mac: ", "unicast MAC");
	BAD(" \"uuid\": \"xyz\"}", "t.json:2:2: uuid: ", "expected a UUID");
	BAD(" \"cpu\": {\"cores\": 2}}", "t.json:2:2: cpu: ", "not vcpus 1");
	BAD(" \"cpu\": {\"flags\": [\"a,b\"]}}", "t.json:2:20: cpu.flags[0]: ", "flag");
	BAD(" \"cpu\": {\"hv_vendor_id\": \"thirteenchars\"}}", "t.json:2:10: cpu.hv_vendor_id: ",
	    "at most 12");
	BAD(" \"cpu\": {\"hyperv\": {\"spinlocks\": 100}}}", "t.json:2:21: cpu.hyperv.spinlocks: ",
	    "from 4095");
	BAD(" \"display\": {\"type\": \"vnc\"}}", "t.json:2:2: display: ", "needs \"port\"");
	BAD(" \"vcpu_pins\": [0, 1]}", "t.json:2:2: vcpu_pins: ", "2 CPUs for 1 vCPUs");
	BAD(" \"emulator_cpus\": \"3-1\"}", "t.json:2:2: emulator_cpus: ", "not a CPU list");
	BAD(" \"hugepages\": \"4M\"}", "t.json:2:2: hugepages: ", "\"2M\" or \"1G\"");
	BAD(" \"usb\": {\"controller\": \"none\", \"tablet\": true}}", "t.json:2:2: usb: ",
	    "needs a USB controller");
	BAD(" \"serial\": \"file\"}", "t.json:2:2: serial: ", "object");
	BAD(" \"memory\": \"1G\"}", "t.json:2:2: 'memory' appears twice", "");
	/* Strict JSON (comments aside), and keys compared as json-c reads them. */
	BAD(" \"run\\u005fas\": \"root\", \"run_as\": \"x\"}", "t.json:2:25: 'run_as' appears twice",
	    "");
	BAD(" 'usb': {}}", "t.json:2:2: strings take double quotes", "");
	BAD(" \"video\": 'std'}", "t.json:2:11: strings take double quotes", "");
	BAD(" \"extra_args\": [\"-a\",]}", "t.json:2:21: a comma before ']'", "");
	BAD(" \"usb\": {\"tablet\": true,}}", "t.json:2:24: a comma before '}'", "");
	BAD(" \"shutdown_timeout\": NaN}", "t.json:2:22: NaN is not a JSON value", "");
	BAD(" \"extra_args\": [\"-a\\u0000b\"]}", "t.json:2:20: a NUL character", "");
#undef BAD
	parse_bad("{\"name\": \"a b\", \"memory\": 1, \"vcpus\": 1}", "t.json:1:2: name: ",
		  "letters, digits");
	parse_bad("{\"memory\": 1, \"vcpus\": 1}", "t.json:1:1: ", "'name' is required");
	parse_bad("{\"name\": \"a\", \"vcpus\": 1}", "t.json:1:1: ", "'memory' is required");
	parse_bad("{\"name\": \"a\", \"memory\": \"1X\", \"vcpus\": 1}", "t.json:1:15: memory: ",
		  "is not a size");
	parse_bad("{\"name\": \"a\", \"memory\": 1}", "t.json:1:1: ", "'vcpus' is required");
	parse_bad("{\"name\": \"a\", \"memory\": 1, \"vcpus\": 0}", "t.json:1:28: vcpus: ",
		  "from 1 to 1024");
	parse_bad("[1]", "t.json:1:1: ", "a profile is a JSON object");
}

static void syntax_errors_have_positions(void **state)
{
	parse_bad("{\n  \"name\": \"a\",\n  \"memory\" 1\n}", "t.json:3:12: not valid JSON: ",
		  "");
	parse_bad("{\"name\": \"a\"", "t.json:1:13: not valid JSON: ", "ends too early");
	parse_bad("{\"name\": \"a\", \"memory\": 1, \"vcpus\": 1} x", "t.json:1:",
		  "text after the end");
	/* Comments after the object are fine. */
	struct qp_profile p = parse_ok("{\"name\": \"a\", \"memory\": 1, \"vcpus\": 1} // ok\n"
				       "/* also */\n");
	qp_profile_free(&p);
}

static void load_names_the_file(void **state)
{
	struct qp_profile p;
	struct qp_err *err = NULL;
	assert_int_equal(qp_profile_load("/nonexistent/vm.json", &p, &err), -1);
	assert_non_null(strstr(err->msg, "/nonexistent/vm.json"));
	qp_err_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_profile_defaults),
		cmocka_unit_test(full_profile),
		cmocka_unit_test(memory_sizes),
		cmocka_unit_test(errors_name_line_column_and_key),
		cmocka_unit_test(syntax_errors_have_positions),
		cmocka_unit_test(load_names_the_file),
	};
	return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
