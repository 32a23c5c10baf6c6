/* Unit tests of the pure core (launcher/core) that need no host: check's reading of
 * /proc/iomem; placement's reading of /proc and its verdict. This binary links the
 * core whole and nothing above it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/sysparse.h"
#include "base/util.h"
#include "core/check.h"
#include "core/placement.h"

/* /proc/iomem: a boot framebuffer nested under a BAR; zeros (not root) say nothing. */
static void check_iomem(void **state)
{
	(void)state;
	const char *iomem = "00000000-00000fff : Reserved\n"
			    "c0000000-cfffffff : PCI Bus 0000:01\n"
			    "  c0000000-cfffffff : 0000:01:00.0\n"
			    "    c0000000-c07fffff : efifb\n"
			    "  d0000000-d0ffffff : 0000:01:00.0\n";
	uint64_t s = 0, e = 0;
	assert_string_equal(qp_check_iomem_fb(iomem, 0xc0000000, 0xcfffffff, &s, &e), "efifb");
	assert_true(s == 0xc0000000 && e == 0xc07fffff);
	assert_null(qp_check_iomem_fb(iomem, 0xd0000000, 0xd0ffffff, &s, &e));
	assert_null(qp_check_iomem_fb("00000000-00000000 : efifb\n", 0, 0xffffffff, &s, &e));
	assert_null(qp_check_iomem_fb("garbage\n : efifb\n-\n", 0, 0xffffffff, &s, &e));
	assert_string_equal(qp_check_iomem_fb("    e0000000-e02fffff : simpledrm", 0xe0000000,
					      0xefffffff, &s, &e), "simpledrm");
}

/* What /proc says of QEMU's threads, pages and interrupts, as the kernel writes it. */
static void placement_parsers(void **state)
{
	(void)state;
	/* A comm with a space and a parenthesis; field 22 the start time, 39 the CPU. */
	const char *stat = "4242 (CPU 0/KVM) S 1 4242 4242 0 -1 4194624 0 0 0 0 5 6 0 0 20 0 "
			   "9 0 777123 123456789 100 18446744073709551615 1 1 0 0 0 0 0 4096 "
			   "17664 0 0 0 -1 3 0 0 0 0 0";
	unsigned long long v;
	assert_int_equal(qp_parse_stat_field(stat, 22, &v), 0);
	assert_true(v == 777123);
	assert_int_equal(qp_parse_stat_cpu(stat), 3);
	assert_int_equal(qp_parse_stat_state(stat), 'S');
	assert_int_equal(qp_parse_stat_field("1 (x) Z 1", 22, &v), -1);
	assert_int_equal(qp_thread_role_of("IO mon_iothread", false), QP_ROLE_IOTHREAD);
	assert_int_equal(qp_thread_role_of("qemu-system-x86", true), QP_ROLE_MAIN);
	assert_int_equal(qp_thread_role_of("worker", false), QP_ROLE_WORKER);

	const char *numa = "55f000000000 default file=/usr/bin/qemu mapped=100 N0=100\n"
			   "7f0000000000 bind:1 anon=32768 dirty=32768 N0=10 N1=32758 "
			   "kernelpagesize_kB=4\n";
	uint64_t *pages, kb;
	size_t n;
	int bind;
	assert_int_equal(qp_parse_numa_maps(numa, 0x7f0000000000ULL, &pages, &n, &kb, &bind), 0);
	assert_true(n == 2 && pages[0] == 10 && pages[1] == 32758 && kb == 4 && bind == 1);
	struct qp_measured m = { .has_memory = true, .pages = pages, .n_pages = n, .page_kb = kb };
	struct qp_cpulist emu = { 0 };
	qp_cpulist_add(&emu, 2);
	struct qp_promise p = { NULL, 0, &emu, 1, &emu, NULL };
	/* 10 of 32768 pages off the node: under 1 %, as planned. */
	char **drift = qp_placement_drift(&m, &p);
	assert_null(drift);
	m.pages[0] = 1000;
	drift = qp_placement_drift(&m, &p);
	assert_non_null(drift);
	assert_string_equal(drift[0], "guest RAM: 1000 of 33758 resident pages off node 1, 1000 "
			    "on node 0");
	qp_strv_free(drift);
	/* A VM across nodes: the pages off their own mapping's node count. */
	m.by_guest_node = true;
	m.off_node = 10;
	assert_null(qp_placement_drift(&m, &p));
	m.off_node = 1000;
	drift = qp_placement_drift(&m, &p);
	assert_string_equal(drift[0], "guest RAM: 1000 of 33758 resident pages off the host node "
			    "of their guest node");
	qp_strv_free(drift);
	m.by_guest_node = false;
	m.off_node = 0;
	assert_int_equal(qp_parse_numa_maps(numa, 0x1000, &pages, &n, &kb, NULL), -1);
	assert_int_equal(qp_parse_numa_maps("7f00 bind=static:3 N3=1\n7f10 bind:0-1 N0=1\n",
					    0x7f00, &pages, &n, &kb, &bind), 0);
	assert_int_equal(bind, 3);
	free(pages);
	assert_int_equal(qp_parse_numa_maps("7f00 bind=static:3 N3=1\n7f10 bind:0-1 N0=1\n",
					    0x7f10, &pages, &n, &kb, &bind), 0);
	assert_int_equal(bind, -1);
	free(pages);

	const char *irqs = "           CPU0       CPU1\n"
			   "  45:          0         12  IR-PCI-MSIX-0000:04:00.0    0-edge      "
			   "vfio-msix[0](0000:04:00.0)\n"
			   "  46:          0          0  IR-PCI-MSI 1-edge      vfio-msi[0](0000:05:00.0)\n"
			   " NMI:          0          0   Non-maskable interrupts\n"
			   "  47:          0          0  IO-APIC 16-fasteoi   vfio-intx(0000:04:00.1)\n";
	struct qp_pci_addr devs[2];
	struct qp_err *err = NULL;
	assert_int_equal(qp_parse_pci_addr("0000:04:00.0", &devs[0], &err), 0);
	assert_int_equal(qp_parse_pci_addr("0000:04:00.1", &devs[1], &err), 0);
	qp_parse_vfio_irqs(irqs, devs, 2, &m.irqs, &m.n_irqs);
	assert_int_equal(m.n_irqs, 2);
	assert_int_equal(m.irqs[0].irq, 45);
	assert_string_equal(m.irqs[1].name, "vfio-intx(0000:04:00.1)");
	qp_cpulist_add(&m.irqs[0].affinity, 2);
	qp_cpulist_add(&m.irqs[1].affinity, 0);
	m.pages[0] = 0;
	drift = qp_placement_drift(&m, &p);
	assert_non_null(drift);
	assert_string_equal(drift[0], "interrupt 47 (vfio-intx(0000:04:00.1)) goes to CPUs 0, "
			    "not 2");
	assert_null(drift[1]);
	qp_strv_free(drift);
	/* Each its own (a VM across nodes): the first to CPU 2, the second to CPU 0. */
	struct qp_cpulist node1 = { 0 };
	qp_cpulist_add(&node1, 0);
	const struct qp_cpulist *want[] = { &emu, &node1 };
	p.irq_want = want;
	assert_null(qp_placement_drift(&m, &p));
	want[0] = &node1;
	drift = qp_placement_drift(&m, &p);
	assert_string_equal(drift[0], "interrupt 45 (vfio-msix[0](0000:04:00.0)) goes to CPUs 2, "
			    "not 0");
	qp_strv_free(drift);
	qp_cpulist_free(&node1);
	qp_cpulist_free(&emu);
	qp_measured_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_iomem),
		cmocka_unit_test(placement_parsers),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
