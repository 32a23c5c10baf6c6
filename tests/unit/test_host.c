/* Unit tests of the edge that reads the host (launcher/probe): the host model read from
 * the fixture hosts (tests/fixtures/mkhost.py), whose trees the build writes into
 * $QP_FIXTURES, libpci beside it, and check's probe parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pci/pci.h>
#include <stdio.h>
#include <unistd.h>

#include "base/util.h"
#include "core/advice.h"
#include "probe/checkprobe.h"
#include "probe/hostload.h"
#include "probe/pciids.h"
#include "probe/pcilib.h"

static struct qp_host *load(const char *name)
{
	const char *dir = getenv("QP_FIXTURES");
	if (!dir)
		fail_msg("QP_FIXTURES is not set");
	qp_autofree char *path = qp_xasprintf("%s/%s", dir, name);
	struct qp_root root;
	struct qp_err *err = NULL;
	if (qp_root_open(path, &root, &err) < 0)
		fail_msg("%s", err->msg);
	struct qp_host *h = qp_xcalloc(1, sizeof(*h));
	if (qp_host_load(&root, h, &err) < 0)
		fail_msg("%s", err->msg);
	qp_root_close(&root);
	return h;
}

static void unload(struct qp_host *h)
{
	qp_host_free(h);
	free(h);
}

static const struct qp_pci_dev *dev(const struct qp_host *h, const char *addr)
{
	struct qp_pci_addr a;
	struct qp_err *err = NULL;
	if (qp_parse_pci_addr(addr, &a, &err) < 0)
		fail_msg("%s", err->msg);
	const struct qp_pci_dev *d = qp_host_dev(h, &a);
	if (!d)
		fail_msg("no device %s", addr);
	return d;
}

static void assert_cpus(const struct qp_cpulist *l, const char *want)
{
	char *s = qp_cpulist_fmt(l);
	if (strcmp(s, want))
		fail_msg("CPUs %s, expected %s", s, want);
	free(s);
}

static void seed_gpus(void **state)
{
	struct qp_host *h = load("seed");
	const char *slots[] = { "04", "05", "08", "09", "85", "86", "89", "8a" };
	for (size_t i = 0; i < QP_ARRAY_SIZE(slots); i++) {
		for (int f = 0; f < 4; f++) {
			char a[16];
			snprintf(a, sizeof(a), "0000:%s:00.%d", slots[i], f);
			const struct qp_pci_dev *d = dev(h, a);
			static const uint16_t ids[] = { 0x1e04, 0x10f7, 0x1ad6, 0x1ad7 };
			static const uint32_t cls[] = { 0x030000, 0x040300, 0x0c0330, 0x0c8000 };
			assert_int_equal(d->vendor, 0x10de);
			assert_int_equal(d->device, ids[f]);
			assert_int_equal(d->class, cls[f]);
			assert_int_equal(d->header_type, QP_HDR_ENDPOINT);
			assert_true(d->multifunction);
			assert_int_equal(d->numa_node, i < 4 ? 0 : 1);
			assert_cpus(&d->local_cpus, i < 4 ? "0-13,28-41" : "14-27,42-55");
			assert_true(d->has_parent);
		}
	}
	const struct qp_pci_dev *g = dev(h, "0000:04:00.0");
	assert_int_equal(g->iommu_group, 44);
	assert_string_equal(g->driver, "vfio-pci");
	assert_null(g->driver_override);
	assert_string_equal(g->name, "NVIDIA Corporation TU102 [GeForce RTX 2080 Ti]");
	assert_string_equal(g->vendor_name, "NVIDIA Corporation");
	assert_string_equal(g->class_name, "VGA compatible controller");
	assert_string_equal(g->sysfs_path, "sys/devices/pci0000:00/0000:00:02.0/0000:02:00.0/"
					   "0000:03:08.0/0000:04:00.0");
	char p[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(&g->parent, p);
	assert_string_equal(p, "0000:03:08.0");
	assert_false(g->boot_vga);
	assert_non_null(g->reset_methods);
	assert_string_equal(g->reset_methods[0], "bus");
	assert_null(g->reset_methods[1]);
	assert_string_equal(g->power_state, "D0");
	assert_string_equal(dev(h, "0000:08:00.0")->driver, "nouveau");
	assert_null(dev(h, "0000:8a:00.0")->driver);

	const struct qp_iommu_group *grp = qp_host_group(h, 44);
	assert_non_null(grp);
	assert_int_equal(grp->n_members, 4);
	assert_string_equal(grp->type, "DMA");
	assert_true(qp_host_iommu_on(h));

	/* The BMC's display: the boot VGA, behind a bridge, no reset_method file. */
	const struct qp_pci_dev *ast = dev(h, "0000:0b:00.0");
	assert_true(ast->boot_vga);
	assert_null(ast->reset_methods);
	/* A bridge, and a device pci.ids does not name. */
	const struct qp_pci_dev *plx = dev(h, "0000:02:00.0");
	assert_int_equal(plx->header_type, QP_HDR_BRIDGE);
	assert_null(plx->device_name);
	assert_string_equal(plx->name, "PLX Technology, Inc. Device 8796");
	/* An empty reset_method: no reset works. */
	assert_non_null(dev(h, "0000:00:14.0")->reset_methods);
	assert_null(dev(h, "0000:00:14.0")->reset_methods[0]);
	assert_null(h->warnings);
	unload(h);
}

static void seed_numa_and_cpus(void **state)
{
	struct qp_host *h = load("seed");
	/* numactl --hardware in the seed. */
	assert_int_equal(h->n_nodes, 2);
	assert_cpus(&h->nodes[0].cpus, "0-13,28-41");
	assert_cpus(&h->nodes[1].cpus, "14-27,42-55");
	assert_true(h->nodes[0].mem_total_kb / 1024 == 130947);
	assert_true(h->nodes[0].mem_free_kb / 1024 == 1417);
	assert_true(h->nodes[1].mem_total_kb / 1024 == 131072);
	assert_true(h->nodes[1].mem_free_kb / 1024 == 68);
	assert_int_equal(h->nodes[0].n_distance, 2);
	assert_int_equal(h->nodes[0].distance[1], 21);
	assert_int_equal(h->nodes[0].n_hugepages, 2);
	assert_true(h->nodes[0].hugepages[0].size_kb == 2048);
	assert_true(h->nodes[0].hugepages[1].size_kb == 1048576);

	assert_int_equal(h->n_cpus, 56);
	const struct qp_cpu *c = qp_host_cpu(h, 3);
	assert_cpus(&c->siblings, "3,31");
	assert_int_equal(c->package, 0);
	assert_int_equal(c->node, 0);
	assert_true(c->online);
	c = qp_host_cpu(h, 42);
	assert_cpus(&c->siblings, "14,42");
	assert_int_equal(c->package, 1);
	assert_int_equal(c->node, 1);
	/* Broadwell's core ids skip 7. */
	assert_int_equal(qp_host_cpu(h, 7)->core, 8);

	assert_string_equal(h->cpu_vendor, "GenuineIntel");
	assert_true(h->cpu_vmx);
	assert_false(h->cpu_svm);
	assert_non_null(strstr(h->cmdline, "intel_iommu=on"));
	assert_int_equal(h->modules[QP_MOD_VFIO_PCI], QP_MOD_LOADED);
	assert_int_equal(h->modules[QP_MOD_KVM_INTEL], QP_MOD_LOADED);
	assert_int_equal(h->modules[QP_MOD_KVM_AMD], QP_MOD_ABSENT);
	assert_true(h->dev_kvm);
	assert_true(h->dev_vfio);
	assert_int_equal(h->n_vfio_groups, 2);
	assert_int_equal(h->vfio_groups[0], 44);
	unload(h);
}

static void peg_group_holds_its_root_port(void **state)
{
	struct qp_host *h = load("desktop-peg");
	const struct qp_iommu_group *g = qp_host_group(h, 1);
	assert_non_null(g);
	assert_int_equal(g->n_members, 3);
	const struct qp_pci_dev *port = qp_host_dev(h, &g->members[0]);
	assert_int_equal(port->header_type, QP_HDR_BRIDGE);
	assert_int_equal(dev(h, "0000:01:00.0")->numa_node, -1);
	assert_true(dev(h, "0000:00:02.0")->boot_vga);
	assert_false(dev(h, "0000:01:00.0")->boot_vga);
	assert_int_equal(h->n_nodes, 1);
	assert_cpus(&qp_host_cpu(h, 0)->siblings, "0,6");
	assert_true(h->nodes[0].hugepages[0].total == 1024);
	assert_int_equal(h->modules[QP_MOD_VFIO_PCI], QP_MOD_ABSENT);
	unload(h);
}

static void chipset_group_is_shared(void **state)
{
	struct qp_host *h = load("desktop-chipset");
	const struct qp_pci_dev *gpu = dev(h, "0000:03:00.0");
	const struct qp_iommu_group *g = qp_host_group(h, gpu->iommu_group);
	assert_int_equal(g->n_members, 8);
	assert_string_equal(dev(h, "0000:04:00.0")->driver, "r8169");
	assert_int_equal(dev(h, "0000:04:00.0")->iommu_group, gpu->iommu_group);
	/* Zen numbers SMT siblings next to each other. */
	assert_cpus(&qp_host_cpu(h, 5)->siblings, "4-5");
	assert_string_equal(h->cpu_vendor, "AuthenticAMD");
	assert_true(h->cpu_svm);
	assert_string_equal(qp_advice_iommu_param(h), "amd_iommu=on");
	unload(h);
}

static void iommu_off_host(void **state)
{
	struct qp_host *h = load("iommu-off");
	assert_false(qp_host_iommu_on(h));
	assert_int_equal(h->n_groups, 0);
	assert_int_equal(dev(h, "0000:65:00.0")->iommu_group, -1);
	assert_false(h->dev_vfio);
	assert_int_equal(h->n_vfio_groups, 0);
	char *advice = qp_advice_iommu_off(h);
	assert_non_null(strstr(advice, "intel_iommu=on"));
	assert_non_null(strstr(advice, "GRUB_CMDLINE_LINUX"));
	assert_non_null(strstr(advice, "grub2-mkconfig"));
	assert_null(strstr(advice, "amd_iommu"));
	free(advice);
	/* When the command line already asks for it, the firmware is what is off. */
	free(h->cmdline);
	h->cmdline = qp_xstrdup("ro quiet intel_iommu=on");
	advice = qp_advice_iommu_off(h);
	assert_non_null(strstr(advice, "already has intel_iommu=on"));
	assert_non_null(strstr(advice, "VT-d"));
	free(advice);
	unload(h);
}

static void missing_root_is_named(void **state)
{
	struct qp_root root;
	struct qp_err *err = NULL;
	assert_int_equal(qp_root_open("/nonexistent/qpass-root", &root, &err), -1);
	assert_non_null(strstr(err->msg, "/nonexistent/qpass-root"));
	qp_err_free(err);
	err = NULL;
	/* A directory that is not a Linux root. */
	assert_int_equal(qp_root_open("/usr/share", &root, &err), 0);
	struct qp_host h;
	assert_int_equal(qp_host_load(&root, &h, &err), -1);
	assert_non_null(strstr(err->msg, "/usr/share/sys/bus/pci/devices"));
	assert_non_null(err->hint);
	qp_err_free(err);
	qp_root_close(&root);
}

/* This machine's pci.ids, where libpci reads it. */
static char *ids_file(void)
{
	struct pci_access *a = pci_alloc();
	char *path = qp_xstrdup(a->id_file_name);
	pci_cleanup(a);
	size_t n = strlen(path);
	if (n > 3 && !strcmp(path + n - 3, ".gz") && access(path, F_OK) < 0)
		path[n - 3] = '\0';
	return path;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s", path);
	struct qp_buf b = { 0 };
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		qp_buf_addn(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return qp_buf_steal(&b);
}

static void same_name(const char *what, char *ours, const char *libpci)
{
	if (!ours != !libpci || (ours && strcmp(ours, libpci)))
		fail_msg("%s: qpass %s, libpci %s", what, ours ? ours : "(none)",
			 libpci ? libpci : "(none)");
	free(ours);
}

static void quiet(char *fmt, ...)
{
	(void)fmt;
}

__attribute__((noreturn)) static void libpci_failed(char *fmt, ...)
{
	fail_msg("libpci failed: %s", fmt);
	abort();
}

/* qpass reads pci.ids by need (probe/pciids.c); libpci parses all of it. For every
 * vendor and device of this machine's pci.ids, devices it lacks, and every class, both
 * must give the same names. */
static void pciids_names_are_libpci_names(void **state)
{
	(void)state;
	qp_autofree char *path = ids_file();
	size_t len;
	char *text = read_all(path, &len);
	/* The loop below cuts text into lines: the reader gets its own copy. */
	char *copy = qp_xstrndup(text, len);
	struct qp_pciids *ids = qp_pciids_new(copy, len);
	struct pci_access *a = pci_alloc();
	a->warning = a->debug = quiet;
	a->error = libpci_failed;
	char hwdb[] = "hwdb.disable", one[] = "1";
	pci_set_param(a, hwdb, one);
	a->method = PCI_ACCESS_SYS_BUS_PCI;
	pci_init(a);
	char buf[256];
	size_t vendors = 0, devices = 0;
	int vendor = -1;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		unsigned v, d;
		int n = 0;
		if (sscanf(line, "%4x%n", &v, &n) == 1 && n == 4 && (line[4] == ' ' ||
								    line[4] == '\t')) {
			vendor = (int)v;
			vendors++;
			char what[32];
			snprintf(what, sizeof(what), "vendor %04x", v);
			same_name(what, qp_pciids_vendor_name(ids, (uint16_t)v),
				  pci_lookup_name(a, buf, sizeof(buf),
						  PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, v, 0));
			/* A device pci.ids lacks: "NVIDIA Corporation Device ffff". */
			d = 0xffff;
		} else if (vendor >= 0 && line[0] == '\t' && line[1] != '\t' &&
			   sscanf(line + 1, "%4x%n", &d, &n) == 1 && n == 4) {
			devices++;
		} else {
			if (line[0] == 'C' && line[1] == ' ')
				vendor = -1;
			continue;
		}
		char what[32];
		snprintf(what, sizeof(what), "device %04x:%04x", (unsigned)vendor, d);
		same_name(what, qp_pciids_name(ids, (uint16_t)vendor, (uint16_t)d),
			  pci_lookup_name(a, buf, sizeof(buf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE,
					  vendor, d));
		same_name(what, qp_pciids_device_name(ids, (uint16_t)vendor, (uint16_t)d),
			  pci_lookup_name(a, buf, sizeof(buf),
					  PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, vendor, d));
	}
	/* A vendor pci.ids lacks. */
	same_name("vendor 0001:1234", qp_pciids_name(ids, 0x0001, 0x1234),
		  pci_lookup_name(a, buf, sizeof(buf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE,
				  0x0001, 0x1234));
	for (unsigned cls = 0; cls <= 0xffff; cls++) {
		char what[32];
		snprintf(what, sizeof(what), "class %04x", cls);
		same_name(what, qp_pciids_class_name(ids, (uint16_t)cls),
			  pci_lookup_name(a, buf, sizeof(buf), PCI_LOOKUP_CLASS, cls, 0));
	}
	print_message("%zu vendors, %zu devices, 65536 classes: the same names\n", vendors,
		      devices);
	assert_true(vendors > 1000 && devices > 10000);
	pci_cleanup(a);
	qp_pciids_free(ids);
	free(copy);
	free(text);
}

/* Where pci.ids is compressed, libpci answers; the names are the same. */
static void compressed_pciids_gives_the_same_names(void **state)
{
	(void)state;
	qp_autofree char *path = ids_file();
	char dir[] = "/tmp/qpass-pciids-XXXXXX";
	assert_non_null(mkdtemp(dir));
	qp_autofree char *gz = qp_xasprintf("%s/pci.ids.gz", dir);
	qp_autofree char *cmd = qp_xasprintf("gzip -c %s > %s", path, gz);
	assert_int_equal(system(cmd), 0);
	struct qp_host *h = load("seed");
	size_t n = h->n_devs;
	char **names = qp_xcalloc(n * 4 + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		names[4 * i] = h->devs[i].name;
		names[4 * i + 1] = h->devs[i].vendor_name;
		names[4 * i + 2] = h->devs[i].device_name;
		names[4 * i + 3] = h->devs[i].class_name;
		h->devs[i].name = h->devs[i].vendor_name = h->devs[i].device_name = NULL;
		h->devs[i].class_name = NULL;
	}
	struct qp_err *err = NULL;
	if (qp_pcilib_names(gz, h, &err) < 0)
		fail_msg("%s", err->msg);
	for (size_t i = 0; i < n; i++) {
		const struct qp_pci_dev *d = &h->devs[i];
		const char *got[] = { d->name, d->vendor_name, d->device_name, d->class_name };
		for (int k = 0; k < 4; k++)
			if (!got[k] != !names[4 * i + k] ||
			    (got[k] && strcmp(got[k], names[4 * i + k])))
				fail_msg("name %d of device %zu: %s, %s", k, i, got[k],
					 names[4 * i + k]);
	}
	for (size_t i = 0; i < 4 * n; i++)
		free(names[i]);
	free(names);
	unload(h);
	unlink(gz);
	rmdir(dir);
}

/* /proc/interrupts: chips behind interrupt remapping are named IR-*. */
static void check_interrupts(void **state)
{
	(void)state;
	assert_int_equal(qp_check_parse_interrupts(
				 "           CPU0       CPU1\n"
				 "  0:         22          0   IR-IO-APIC    2-edge      timer\n"
				 " 24:          0          0   IR-PCI-MSI 327680-edge  PCIe PME\n"), 1);
	assert_int_equal(qp_check_parse_interrupts(
				 "  0:         22          0   IO-APIC    2-edge      timer\n"
				 " 25:          0          0   PCI-MSI 327680-edge  DIR-handler\n"), 0);
	assert_int_equal(qp_check_parse_interrupts(""), 0);
}

static void check_qemu_version(void **state)
{
	(void)state;
	char *v = qp_check_parse_qemu_version(
		"QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\nCopyright...\n");
	assert_string_equal(v, "7.2.19");
	free(v);
	assert_null(qp_check_parse_qemu_version("qemu: unknown option\n"));
	assert_null(qp_check_parse_qemu_version("version x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seed_gpus),
		cmocka_unit_test(seed_numa_and_cpus),
		cmocka_unit_test(peg_group_holds_its_root_port),
		cmocka_unit_test(chipset_group_is_shared),
		cmocka_unit_test(iommu_off_host),
		cmocka_unit_test(missing_root_is_named),
		cmocka_unit_test(pciids_names_are_libpci_names),
		cmocka_unit_test(compressed_pciids_gives_the_same_names),
		cmocka_unit_test(check_interrupts),
		cmocka_unit_test(check_qemu_version),
	};
	return cmocka_run_group_tests_name("host", tests, NULL, NULL);
}
