/* Unit tests of the foundation (launcher/base): the pure parsers of sysfs values, PCI
 * addresses, CPU lists, link paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/cpulist.h"
#include "base/pciaddr.h"
#include "base/root.h"
#include "base/sysparse.h"
#include "base/util.h"

/* Expects a parse to fail and its message to hold `needle`. */
#define EXPECT_ERR(call, needle)                                                        \
	do {                                                                            \
		struct qp_err *e_ = NULL;                                               \
		struct qp_err **err = &e_;                                              \
		assert_int_equal((call), -1);                                           \
		assert_non_null(e_);                                                    \
		if (!strstr(e_->msg, (needle)))                                         \
			fail_msg("message '%s' lacks '%s'", e_->msg, (needle));         \
		qp_err_free(e_);                                                        \
	} while (0)

#define EXPECT_OK(call)                                                                 \
	do {                                                                            \
		struct qp_err *e_ = NULL;                                               \
		struct qp_err **err = &e_;                                              \
		int rc_ = (call);                                                       \
		if (rc_ != 0)                                                           \
			fail_msg("unexpected error: %s", e_ ? e_->msg : "?");           \
		assert_null(e_);                                                        \
	} while (0)

static void cpulist_parses_kernel_lists(void **state)
{
	struct qp_cpulist l;
	EXPECT_OK(qp_cpulist_parse("0-13,28-41\n", &l, err));
	assert_int_equal(l.n, 28);
	assert_int_equal(l.cpu[0], 0);
	assert_int_equal(l.cpu[13], 13);
	assert_int_equal(l.cpu[14], 28);
	assert_int_equal(l.cpu[27], 41);
	assert_true(qp_cpulist_has(&l, 30));
	assert_false(qp_cpulist_has(&l, 14));
	char *s = qp_cpulist_fmt(&l);
	assert_string_equal(s, "0-13,28-41");
	free(s);
	qp_cpulist_free(&l);

	EXPECT_OK(qp_cpulist_parse("5", &l, err));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.cpu[0], 5);
	qp_cpulist_free(&l);

	/* A node without CPUs shows an empty line. */
	EXPECT_OK(qp_cpulist_parse("\n", &l, err));
	assert_int_equal(l.n, 0);
	s = qp_cpulist_fmt(&l);
	assert_string_equal(s, "");
	free(s);
	qp_cpulist_free(&l);

	/* Out of order and overlapping input is sorted and merged. */
	EXPECT_OK(qp_cpulist_parse("8,2-4,3,0", &l, err));
	s = qp_cpulist_fmt(&l);
	assert_string_equal(s, "0,2-4,8");
	free(s);
	qp_cpulist_free(&l);
}

static void cpulist_rejects_malformed(void **state)
{
	struct qp_cpulist l;
	const char *bad[] = { "a", "1-", "-1", "3-1", "1,,2", "1,", ",1", "1 2", "1-2-3",
			      "0x1", "8192", "1-99999", "1\n\n", " 1" };
	for (size_t i = 0; i < QP_ARRAY_SIZE(bad); i++)
		EXPECT_ERR(qp_cpulist_parse(bad[i], &l, err), "not a CPU list");
}

static void cpulist_add_keeps_order(void **state)
{
	struct qp_cpulist l = { 0 };
	qp_cpulist_add(&l, 5);
	qp_cpulist_add(&l, 1);
	qp_cpulist_add(&l, 3);
	qp_cpulist_add(&l, 3);
	char *s = qp_cpulist_fmt(&l);
	assert_string_equal(s, "1,3,5");
	free(s);
	struct qp_cpulist c;
	qp_cpulist_copy(&c, &l);
	assert_true(qp_cpulist_equal(&c, &l));
	qp_cpulist_free(&c);
	qp_cpulist_free(&l);
}

static void pci_addr_sysfs_form(void **state)
{
	struct qp_pci_addr a;
	EXPECT_OK(qp_parse_pci_addr("0000:04:00.0", &a, err));
	assert_int_equal(a.domain, 0);
	assert_int_equal(a.bus, 4);
	assert_int_equal(a.slot, 0);
	assert_int_equal(a.func, 0);
	EXPECT_OK(qp_parse_pci_addr("0000:8a:1f.7", &a, err));
	assert_int_equal(a.bus, 0x8a);
	assert_int_equal(a.slot, 0x1f);
	assert_int_equal(a.func, 7);
	char buf[QP_PCI_ADDR_LEN];
	qp_pci_addr_fmt(&a, buf);
	assert_string_equal(buf, "0000:8a:1f.7");
	char slot[QP_PCI_SLOT_LEN];
	qp_pci_slot_fmt(&a, slot);
	assert_string_equal(slot, "0000:8a:1f");

	/* Intel VMD's domains have five digits. */
	EXPECT_OK(qp_parse_pci_addr("10000:e1:00.0", &a, err));
	assert_int_equal(a.domain, 0x10000);
	assert_int_equal(a.bus, 0xe1);
	qp_pci_addr_fmt(&a, buf);
	assert_string_equal(buf, "10000:e1:00.0");

	const char *bad[] = { "04:00.0", "0000:04:00", "0000:04:20.0", "0000:04:00.8",
			      "000:04:00.0", "000000000:04:00.0", "01000:04:00.0",
			      "0000:8A:00.0", "0000:04:00.0 ", "0000-04:00.0", "" };
	for (size_t i = 0; i < QP_ARRAY_SIZE(bad); i++)
		EXPECT_ERR(qp_parse_pci_addr(bad[i], &a, err), "is not a PCI address");
}

static void pci_selector_user_forms(void **state)
{
	struct qp_pci_addr a;
	bool f;
	EXPECT_OK(qp_parse_pci_selector("0000:04:00", &a, &f, err));
	assert_false(f);
	assert_int_equal(a.bus, 4);
	EXPECT_OK(qp_parse_pci_selector("04:00", &a, &f, err));
	assert_false(f);
	EXPECT_OK(qp_parse_pci_selector("8A:00.1", &a, &f, err));
	assert_true(f);
	assert_int_equal(a.bus, 0x8a);
	assert_int_equal(a.func, 1);
	EXPECT_OK(qp_parse_pci_selector("0001:85:00.3", &a, &f, err));
	assert_int_equal(a.domain, 1);
	assert_int_equal(a.func, 3);
	EXPECT_ERR(qp_parse_pci_selector("04:20", &a, &f, err), "out of range");
	EXPECT_ERR(qp_parse_pci_selector("04:00.8", &a, &f, err), "function 8 is out of range");
	EXPECT_ERR(qp_parse_pci_selector("4:00", &a, &f, err), "is not a PCI address");
	EXPECT_ERR(qp_parse_pci_selector("04:00.", &a, &f, err), "is not a PCI address");
	EXPECT_ERR(qp_parse_pci_selector("zz:00", &a, &f, err), "is not a PCI address");
	EXPECT_ERR(qp_parse_pci_selector("", &a, &f, err), "is not a PCI address");
	struct qp_pci_addr x = { 0, 4, 0, 1 }, y = { 0, 4, 0, 3 }, z = { 0, 5, 0, 0 };
	assert_true(qp_pci_same_slot(&x, &y));
	assert_false(qp_pci_same_slot(&x, &z));
	assert_true(qp_pci_addr_cmp(&x, &y) < 0);
	assert_true(qp_pci_addr_cmp(&z, &y) > 0);
	assert_int_equal(qp_pci_addr_cmp(&x, &x), 0);
}

static void sysfs_hex_ids(void **state)
{
	uint32_t v;
	EXPECT_OK(qp_parse_sysfs_hex("0x10de\n", 16, &v, err));
	assert_int_equal(v, 0x10de);
	EXPECT_OK(qp_parse_sysfs_hex("0x030000\n", 24, &v, err));
	assert_int_equal(v, 0x030000);
	EXPECT_OK(qp_parse_sysfs_hex("0xa1", 8, &v, err));
	assert_int_equal(v, 0xa1);
	const char *bad16[] = { "10de\n", "0x\n", "0x10de0\n", "0x10DE\n", "0xzz\n", "",
				"0x10de\n\n", " 0x10de\n", "0x10de \n" };
	for (size_t i = 0; i < QP_ARRAY_SIZE(bad16); i++) {
		struct qp_err *e = NULL;
		assert_int_equal(qp_parse_sysfs_hex(bad16[i], 16, &v, &e), -1);
		assert_non_null(e);
		qp_err_free(e);
	}
	EXPECT_ERR(qp_parse_sysfs_hex("0x1ff\n", 8, &v, err), "8-bit hex value");
}

static void sysfs_ints(void **state)
{
	long v;
	EXPECT_OK(qp_parse_sysfs_int("-1\n", -1, 100, &v, err));
	assert_int_equal(v, -1);
	EXPECT_OK(qp_parse_sysfs_int("1", 0, 1, &v, err));
	assert_int_equal(v, 1);
	EXPECT_ERR(qp_parse_sysfs_int("-2\n", -1, 100, &v, err), "from -1 to 100");
	EXPECT_ERR(qp_parse_sysfs_int("1a\n", 0, 100, &v, err), "got '1a\\n'");
	EXPECT_ERR(qp_parse_sysfs_int("+1\n", 0, 100, &v, err), "integer");
	EXPECT_ERR(qp_parse_sysfs_int(" 1\n", 0, 100, &v, err), "integer");
	EXPECT_ERR(qp_parse_sysfs_int("\n", 0, 100, &v, err), "empty value");
	EXPECT_ERR(qp_parse_sysfs_int("99999999999999999999\n", 0, 100, &v, err), "integer");
	uint64_t u;
	EXPECT_OK(qp_parse_sysfs_u64("18446744073709551615\n", &u, err));
	assert_true(u == UINT64_MAX);
	EXPECT_ERR(qp_parse_sysfs_u64("-1\n", &u, err), "non-negative");
	EXPECT_ERR(qp_parse_sysfs_u64("18446744073709551616\n", &u, err), "non-negative");
}

static void one_line_values(void **state)
{
	char *s;
	EXPECT_OK(qp_parse_line("vfio-pci\n", 9, &s, err));
	assert_string_equal(s, "vfio-pci");
	free(s);
	EXPECT_OK(qp_parse_line("", 0, &s, err));
	assert_string_equal(s, "");
	free(s);
	EXPECT_ERR(qp_parse_line("a\nb\n", 4, &s, err), "one line");
	EXPECT_ERR(qp_parse_line("a\0b", 3, &s, err), "one line");
}

static void driver_and_group_links(void **state)
{
	char *name;
	EXPECT_OK(qp_parse_link_name("../../../../bus/pci/drivers/vfio-pci", "drivers", &name,
				     err));
	assert_string_equal(name, "vfio-pci");
	free(name);
	EXPECT_OK(qp_parse_link_name("../../../../kernel/iommu_groups/44", "iommu_groups", &name,
				     err));
	assert_string_equal(name, "44");
	free(name);
	EXPECT_ERR(qp_parse_link_name("../../../../bus/pci/drivers/", "drivers", &name, err),
		   "expected a link to .../drivers/NAME");
	EXPECT_ERR(qp_parse_link_name("../../../garbage", "drivers", &name, err), "drivers/NAME");
	EXPECT_ERR(qp_parse_link_name("vfio-pci", "drivers", &name, err), "drivers/NAME");
	EXPECT_ERR(qp_parse_link_name("../x_drivers/vfio-pci", "drivers", &name, err),
		   "drivers/NAME");
}

static void link_paths_fold(void **state)
{
	char *p;
	EXPECT_OK(qp_path_join_link("sys/bus/pci/devices",
				    "../../../devices/pci0000:00/0000:00:02.0/./0000:04:00.0", &p,
				    err));
	assert_string_equal(p, "sys/devices/pci0000:00/0000:00:02.0/0000:04:00.0");
	free(p);
	EXPECT_ERR(qp_path_join_link("sys/bus", "../../../../etc", &p, err), "leaves the");
	EXPECT_ERR(qp_path_join_link("sys/bus", "/etc/passwd", &p, err), "absolute");
}

static void node_meminfo(void **state)
{
	const char *mi = "Node 1 MemTotal:       134217728 kB\n"
			 "Node 1 MemFree:            69632 kB\n"
			 "Node 1 Active(file):       1000 kB\n"
			 "Node 1 Inactive(file):      200 kB\n"
			 "Node 1 SReclaimable:         30 kB\n"
			 "Node 1 HugePages_Total:     0\n";
	uint64_t t, f, rk;
	EXPECT_OK(qp_parse_node_meminfo(mi, 1, &t, &f, &rk, err));
	assert_true(t == 134217728);
	assert_true(f == 69632);
	assert_true(rk == 1230);
	EXPECT_ERR(qp_parse_node_meminfo(mi, 0, &t, &f, &rk, err), "line 1");
	EXPECT_ERR(qp_parse_node_meminfo("Node 0 MemTotal: 10 kB\n", 0, &t, &f, &rk, err),
		   "no MemFree");
	EXPECT_ERR(qp_parse_node_meminfo("Node 0 MemTotal: x kB\nNode 0 MemFree: 1 kB\n", 0, &t,
					 &f, &rk, err), "malformed value");
	EXPECT_ERR(qp_parse_node_meminfo("garbage\n", 0, &t, &f, &rk, err), "expected 'Node 0");
}

static void proc_modules(void **state)
{
	char **m;
	EXPECT_OK(qp_parse_proc_modules("vfio_pci 16384 0 - Live 0x0000000000000000\n"
					"kvm_intel 372736 0 - Live 0x0000000000000000\n",
					&m, err));
	assert_string_equal(m[0], "vfio_pci");
	assert_string_equal(m[1], "kvm_intel");
	assert_null(m[2]);
	assert_true(qp_strv_contains(m, "kvm_intel"));
	assert_false(qp_strv_contains(m, "kvm"));
	qp_strv_free(m);
	EXPECT_OK(qp_parse_proc_modules("", &m, err));
	assert_null(m[0]);
	qp_strv_free(m);
	EXPECT_ERR(qp_parse_proc_modules("vfio_pci big 0 - Live 0x0\n", &m, err), "line 1");
	EXPECT_ERR(qp_parse_proc_modules("a 1 0 - Live 0x0\n\n", &m, err), "line 2");
}

static void kernel_cmdline(void **state)
{
	const char *c = "BOOT_IMAGE=/vmlinuz ro quiet intel_iommu=off "
			"foo=\"a b\" intel_iommu=on iommu=pt nomodeset -- intel_iommu=x";
	char *v = qp_cmdline_get(c, "intel_iommu");
	assert_string_equal(v, "on");
	free(v);
	v = qp_cmdline_get(c, "foo");
	assert_string_equal(v, "a b");
	free(v);
	v = qp_cmdline_get(c, "nomodeset");
	assert_string_equal(v, "");
	free(v);
	assert_null(qp_cmdline_get(c, "amd_iommu"));
	assert_null(qp_cmdline_get(c, "iommu=p"));
	assert_null(qp_cmdline_get("", "x"));
}

static void config_header_type(void **state)
{
	uint8_t type;
	bool mf;
	EXPECT_OK(qp_parse_pci_header_type(0x80, &type, &mf, err));
	assert_int_equal(type, 0);
	assert_true(mf);
	EXPECT_OK(qp_parse_pci_header_type(0x01, &type, &mf, err));
	assert_int_equal(type, 1);
	assert_false(mf);
	EXPECT_ERR(qp_parse_pci_header_type(0x05, &type, &mf, err), "unknown header type 5");
	EXPECT_ERR(qp_parse_pci_header_type('d', &type, &mf, err), "unknown header type 100");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpulist_parses_kernel_lists),
		cmocka_unit_test(cpulist_rejects_malformed),
		cmocka_unit_test(cpulist_add_keeps_order),
		cmocka_unit_test(pci_addr_sysfs_form),
		cmocka_unit_test(pci_selector_user_forms),
		cmocka_unit_test(sysfs_hex_ids),
		cmocka_unit_test(sysfs_ints),
		cmocka_unit_test(one_line_values),
		cmocka_unit_test(driver_and_group_links),
		cmocka_unit_test(link_paths_fold),
		cmocka_unit_test(node_meminfo),
		cmocka_unit_test(proc_modules),
		cmocka_unit_test(kernel_cmdline),
		cmocka_unit_test(config_header_type),
	};
	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
