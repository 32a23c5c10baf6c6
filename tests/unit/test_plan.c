/* Every planner rule, and every failure, on the fixture hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"
#include "core/plan.h"
#include "probe/hostload.h"

struct world {
	struct qp_host host;
	struct qp_profile profile;
	struct qp_plan plan;
	struct qp_err *err;
};

static void load_host(const char *name, struct qp_host *h)
{
	qp_autofree char *path = qp_xasprintf("%s/%s", getenv("QP_FIXTURES"), name);
	struct qp_root root;
	struct qp_err *err = NULL;
	if (qp_root_open(path, &root, &err) < 0 || qp_host_load(&root, h, &err) < 0)
		fail_msg("%s", err->msg);
	qp_root_close(&root);
}

/* A profile: the required keys plus `extra` (JSON members, may be ""). */
static void load_profile(const char *extra, int vcpus, struct qp_profile *p)
{
	qp_autofree char *text = qp_xasprintf("{\"name\": \"t\", \"memory\": \"1G\", "
					      "\"vcpus\": %d%s%s}", vcpus, *extra ? ", " : "",
					      extra);
	struct qp_err *err = NULL;
	if (qp_profile_parse(text, "t.json", p, &err) < 0)
		fail_msg("%s", err->msg);
}

static int plan(struct world *w, const char *host, const char *extra, int vcpus)
{
	memset(w, 0, sizeof(*w));
	load_host(host, &w->host);
	load_profile(extra, vcpus, &w->profile);
	return qp_plan_make(&w->profile, &w->host, &w->plan, &w->err);
}

static void done(struct world *w)
{
	qp_plan_free(&w->plan);
	qp_profile_free(&w->profile);
	qp_host_free(&w->host);
	qp_err_free(w->err);
}

static void plan_ok(struct world *w, const char *host, const char *extra, int vcpus)
{
	if (plan(w, host, extra, vcpus) < 0)
		fail_msg("no plan: %s", w->err->msg);
}

/* Expects no plan, and an error (message or fix) holding each needle. */
static void plan_fails(const char *host, const char *extra, int vcpus, const char *needles[])
{
	struct world w;
	if (plan(&w, host, extra, vcpus) == 0)
		fail_msg("a plan was made for %s", extra);
	qp_autofree char *all = qp_xasprintf("%s\n%s", w.err->msg, w.err->hint ? w.err->hint : "");
	for (const char **n = needles; *n; n++)
		if (!strstr(all, *n))
			fail_msg("'%s' lacks '%s'", all, *n);
	done(&w);
}

static char *guest(const struct qp_plan *p, size_t i)
{
	return qp_plan_guest_addr(&p->devs[i]);
}

static bool has_warning(const struct qp_plan *p, const char *needle)
{
	for (char **w = p->warnings; w && *w; w++)
		if (strstr(*w, needle))
			return true;
	return false;
}

static bool argv_has(const struct qp_plan *p, const char *needle)
{
	for (size_t i = 0; i < p->argc; i++)
		if (strstr(p->argv[i], needle))
			return true;
	return false;
}

static void seed_two_gpus_on_node_0(void **state)
{
	struct world w;
	plan_ok(&w, "seed", "\"machine\": \"pc\", \"passthrough\": [\"04:00\", \"05:00\"], "
		"\"cpu\": {\"sockets\": 1, \"cores\": 14, \"threads\": 1}", 14);
	assert_int_equal(w.plan.n_devs, 8);
	/* Slot 2 is the video, 3 the USB controller; the GPUs come next. */
	const char *want[] = { "pci.0:04.0", "pci.0:04.1", "pci.0:04.2", "pci.0:04.3",
			       "pci.0:05.0", "pci.0:05.1", "pci.0:05.2", "pci.0:05.3" };
	for (size_t i = 0; i < 8; i++) {
		char *g = guest(&w.plan, i);
		assert_string_equal(g, want[i]);
		free(g);
		assert_int_equal(w.plan.devs[i].multifunction, i % 4 == 0);
	}
	assert_int_equal(w.plan.n_groups, 2);
	assert_int_equal(w.plan.groups[0], 44);
	assert_int_equal(w.plan.numa_node, 0);
	/* One thread of each of node 0's cores: CPUs 0-13, as the seed pins them. */
	for (int v = 0; v < 14; v++)
		assert_int_equal(w.plan.vcpu_pins[v], v);
	char *emu = qp_cpulist_fmt(&w.plan.emulator_cpus);
	assert_string_equal(emu, "28-41");
	free(emu);
	assert_int_equal(w.plan.n_memory_nodes, 1);
	assert_int_equal(w.plan.memory_nodes[0], 0);
	assert_true(w.plan.memlock_bytes == (1ULL << 30) + 8 * (1ULL << 30));
	assert_true(argv_has(&w.plan, "\"host-nodes\":[0],\"policy\":\"bind\""));
	done(&w);
}

static void seed_node_1_gpus(void **state)
{
	struct world w;
	plan_ok(&w, "seed", "\"passthrough\": [\"85:00\", \"86:00\", \"89:00\", \"8a:00\"]", 14);
	assert_int_equal(w.plan.numa_node, 1);
	for (int v = 0; v < 14; v++)
		assert_int_equal(w.plan.vcpu_pins[v], 14 + v);
	assert_int_equal(w.plan.memory_nodes[0], 1);
	/* q35: one root port per GPU, the GPU's functions behind it. */
	char *g = guest(&w.plan, 4);
	assert_string_equal(g, "pci.2:00.0");
	free(g);
	assert_true(w.plan.devs[4].multifunction);
	assert_true(argv_has(&w.plan, "\"driver\":\"pcie-root-port\",\"id\":\"pci.4\""));
	done(&w);
}

static void smt_threads_2_takes_sibling_pairs(void **state)
{
	struct world w;
	plan_ok(&w, "seed", "\"passthrough\": [\"04:00\"], \"cpu\": {\"threads\": 2, "
		"\"cores\": 14}", 28);
	for (int k = 0; k < 14; k++) {
		assert_int_equal(w.plan.vcpu_pins[2 * k], k);
		assert_int_equal(w.plan.vcpu_pins[2 * k + 1], k + 28);
	}
	/* Nothing is left on the node: the emulator shares it, with a warning. */
	assert_int_equal(w.plan.emulator_cpus.n, 28);
	assert_true(has_warning(&w.plan, "every free CPU of NUMA node 0"));
	done(&w);
	/* Zen numbers siblings next to each other. */
	plan_ok(&w, "desktop-chipset", "\"cpu\": {\"threads\": 2, \"cores\": 2}", 4);
	assert_int_equal(w.plan.vcpu_pins[0], 0);
	assert_int_equal(w.plan.vcpu_pins[1], 1);
	assert_int_equal(w.plan.vcpu_pins[2], 2);
	done(&w);
}

static void too_few_cpus(void **state)
{
	plan_fails("seed", "\"passthrough\": [\"04:00\"]", 15,
		   (const char *[]){ "15 vCPUs at 1 thread per core need 15 cores",
				     "NUMA node 0 has 14 cores with 2 threads each",
				     "0-13,28-41", "\"threads\": 2", NULL });
	plan_fails("seed", "\"passthrough\": [\"04:00\"], \"cpu\": {\"threads\": 2, "
		   "\"cores\": 15}", 30,
		   (const char *[]){ "need 15 cores", NULL });
}

static void explicit_pins(void **state)
{
	struct world w;
	plan_ok(&w, "seed", "\"vcpu_pins\": [3, 31], \"emulator_cpus\": \"5\"", 2);
	assert_int_equal(w.plan.vcpu_pins[0], 3);
	assert_int_equal(w.plan.vcpu_pins[1], 31);
	assert_int_equal(w.plan.emulator_cpus.n, 1);
	assert_int_equal(w.plan.emulator_cpus.cpu[0], 5);
	done(&w);
	plan_ok(&w, "seed", "\"vcpu_pins\": [20]", 1);
	assert_true(has_warning(&w.plan, "CPU 20 is not on the VM's NUMA node 0"));
	done(&w);
	plan_fails("seed", "\"vcpu_pins\": [3, 3]", 2,
		   (const char *[]){ "CPU 3 is given to vCPU 0 and vCPU 1", NULL });
	plan_fails("seed", "\"vcpu_pins\": [99]", 1,
		   (const char *[]){ "vcpu_pins: CPU 99 is not an online CPU", NULL });
	plan_fails("seed", "\"emulator_cpus\": [77]", 1,
		   (const char *[]){ "emulator_cpus: CPU 77", NULL });
}

static void devices_on_two_nodes(void **state)
{
	plan_fails("seed", "\"passthrough\": [\"04:00\", \"85:00\"]", 2,
		   (const char *[]){ "NUMA nodes 0 and 1", "0000:85:00.0  node 1",
				     "\"numa\": 0 or \"numa\": 1", NULL });
	struct world w;
	plan_ok(&w, "seed", "\"passthrough\": [\"04:00\", \"85:00\"], \"numa\": 1", 2);
	assert_int_equal(w.plan.numa_node, 1);
	assert_true(has_warning(&w.plan, "0000:04:00.0 is on NUMA node 0, the VM on node 1"));
	done(&w);
	plan_fails("seed", "\"numa\": 7", 1, (const char *[]){ "no node 7 (its nodes: 0, 1)",
							       NULL });
}

static void unknown_node_means_node_0(void **state)
{
	struct world w;
	/* desktop-peg's devices have numa_node -1: node 0, with a warning. */
	plan_ok(&w, "desktop-peg", "\"passthrough\": [\"01:00\"]", 2);
	assert_int_equal(w.plan.numa_node, 0);
	assert_true(has_warning(&w.plan, "no NUMA node for the passthrough devices; the VM goes "
				"on node 0, the host's only node"));
	done(&w);
}

static void group_must_be_viable(void **state)
{
	/* The RX 580 shares the chipset's group: USB, SATA, NIC stay on host drivers. */
	plan_fails("desktop-chipset", "\"passthrough\": [\"03:00\"]", 2,
		   (const char *[]){ "VFIO takes whole IOMMU groups",
				     "group 14: 0000:01:00.0", "(driver xhci_hcd)",
				     "0000:01:00.1", "(driver ahci)", "0000:04:00.0",
				     "(driver r8169)", "\"01:00.0\", \"01:00.1\", \"04:00.0\"",
				     NULL });
	struct world w;
	if (plan(&w, "desktop-chipset", "\"passthrough\": [\"03:00\"]", 2) == 0)
		fail_msg("planned");
	/* Bridges in the group are tolerated, never named. */
	assert_null(strstr(w.err->msg, "01:00.2"));
	assert_null(strstr(w.err->msg, "02:00.0"));
	done(&w);
	/* Passing the whole group works; the bridges stay. */
	plan_ok(&w, "desktop-chipset", "\"passthrough\": [\"03:00\", \"01:00.0\", \"01:00.1\", "
		"\"04:00\"]", 2);
	assert_int_equal(w.plan.n_devs, 5);
	done(&w);
	/* A group with only a bridge besides the GPU is fine. */
	plan_ok(&w, "desktop-peg", "\"passthrough\": [\"01:00\"]", 2);
	assert_int_equal(w.plan.n_devs, 2);
	done(&w);
	/* Members already on vfio-pci or on no driver are fine: the seed's 8a:00.0 has none. */
	plan_ok(&w, "seed", "\"passthrough\": [\"8a:00.1\"]", 1);
	assert_int_equal(w.plan.n_devs, 1);
	done(&w);
}

static void function_selection(void **state)
{
	struct world w;
	plan_ok(&w, "seed", "\"machine\": \"pc\", \"passthrough\": [\"04:00.0\", \"04:00.1\"]", 1);
	assert_int_equal(w.plan.n_devs, 2);
	char *g = guest(&w.plan, 1);
	assert_string_equal(g, "pci.0:04.1");
	free(g);
	assert_true(w.plan.devs[0].multifunction);
	done(&w);
	/* Without function 0 the guest slot still needs one: renumbered, with a warning. */
	plan_ok(&w, "seed", "\"machine\": \"pc\", \"passthrough\": [\"8a:00.1\"]", 1);
	g = guest(&w.plan, 0);
	assert_string_equal(g, "pci.0:04.0");
	free(g);
	assert_false(w.plan.devs[0].multifunction);
	assert_true(has_warning(&w.plan, "renumbered"));
	done(&w);
}

static void bad_passthrough_entries(void **state)
{
	plan_fails("seed", "\"passthrough\": [\"04:00\", \"04:00.1\"]", 1,
		   (const char *[]){ "t.json: passthrough[1]: 0000:04:00.1 is already", NULL });
	plan_fails("seed", "\"passthrough\": [\"00:02.0\"]", 1,
		   (const char *[]){ "passthrough[0] (0000:00:02.0) is a PCI bridge", NULL });
	plan_fails("seed", "\"passthrough\": [\"42:00\"]", 1,
		   (const char *[]){ "there is no device 0000:42:00", "qpass list --all", NULL });
	plan_fails("iommu-off", "\"passthrough\": [\"65:00\"]", 1,
		   (const char *[]){ "the IOMMU is off", "intel_iommu=on", NULL });
}

static void boot_vga(void **state)
{
	plan_fails("desktop-chipset", "\"passthrough\": [\"07:00\"]", 2,
		   (const char *[]){ "0000:07:00.0 is the host's boot VGA device",
				     "nvidia driver holds it", "\"allow_boot_vga\": true", NULL });
	struct world w;
	plan_ok(&w, "desktop-chipset", "\"passthrough\": [\"07:00\"], \"allow_boot_vga\": true",
		2);
	assert_true(has_warning(&w.plan, "boot VGA"));
	done(&w);
}

static void guest_slots(void **state)
{
	struct world w;
	/* pc as in the seed: video 2, net 3, disk 4, USB 5, GPUs 6 and 7, balloon after. */
	plan_ok(&w, "seed", "\"machine\": \"pc\", \"video\": \"cirrus\", "
		"\"usb\": {\"controller\": \"ehci\"}, \"passthrough\": [\"04:00\", \"05:00\"], "
		"\"disks\": [{\"file\": \"/d\", \"format\": \"qcow2\"}], "
		"\"network\": [{\"type\": \"bridge\", \"bridge\": \"br0\"}]", 1);
	assert_int_equal(w.plan.video_slot, 2);
	assert_int_equal(w.plan.net_slots[0], 3);
	assert_int_equal(w.plan.disk_slots[0], 4);
	assert_int_equal(w.plan.usb_slot, 5);
	assert_int_equal(w.plan.devs[0].slot, 6);
	assert_int_equal(w.plan.devs[4].slot, 7);
	assert_int_equal(w.plan.balloon_slot, 8);
	assert_int_equal(w.plan.n_taps, 1);
	assert_int_equal(w.plan.taps[0].fd, QP_FD_TAP0);
	assert_true(argv_has(&w.plan, "{\"type\":\"tap\",\"fd\":\"4\",\"id\":\"hostnet0\"}"));
	done(&w);
	/* A slot fixed in the profile, and a collision. */
	plan_ok(&w, "seed", "\"machine\": \"pc\", \"passthrough\": [{\"address\": \"05:00\", "
		"\"guest_slot\": 16}, \"04:00\"]", 1);
	assert_int_equal(w.plan.devs[0].slot, 16);
	assert_int_equal(w.plan.devs[4].slot, 4);
	done(&w);
	plan_fails("seed", "\"machine\": \"pc\", \"passthrough\": [{\"address\": \"05:00\", "
		   "\"guest_slot\": 2}]", 1,
		   (const char *[]){ "passthrough[0].guest_slot: slot 2 is taken (by the video",
				     NULL });
}

static void memory_and_hugepages(void **state)
{
	struct world w;
	plan_ok(&w, "desktop-peg", "\"hugepages\": \"2M\"", 1);
	assert_true(argv_has(&w.plan, "\"qom-type\":\"memory-backend-file\",\"id\":\"pc.ram\","
				      "\"mem-path\":\"/dev/hugepages\",\"prealloc\":true"));
	done(&w);
	/* 1 GiB is 512 pages of 2M; desktop-peg has 1024 free. 4 GiB is not there. */
	memset(&w, 0, sizeof(w));
	load_host("desktop-peg", &w.host);
	struct qp_err *err = NULL;
	if (qp_profile_parse("{\"name\": \"t\", \"memory\": \"4G\", \"vcpus\": 1, "
			     "\"hugepages\": \"2M\"}", "t.json", &w.profile, &err) < 0)
		fail_msg("%s", err->msg);
	assert_int_equal(qp_plan_make(&w.profile, &w.host, &w.plan, &w.err), -1);
	assert_non_null(strstr(w.err->msg, "NUMA node 0 has 1024 free 2M hugepages"));
	assert_non_null(strstr(w.err->hint, "echo 2048 > /sys/devices/system/node/node0/"
					    "hugepages/hugepages-2048kB/nr_hugepages"));
	done(&w);
}

/* --- beside the VMs that run (core/ledger.h, core/pool.h) ------------------------- */

/* A lease of the seed's host: its functions (whole slots "04:00"...), vCPU CPUs and
 * emulator CPUs ("0-3", "28-31"). */
static void lease(struct qp_ledger *l, const char *name, const char *slots[], const char *vcpus,
		  const char *emu, int node)
{
	l->leases = qp_xrealloc(l->leases, (l->n + 1) * sizeof(*l->leases));
	struct qp_lease *e = &l->leases[l->n++];
	*e = (struct qp_lease){ .name = qp_xstrdup(name), .node = node, .memory_mib = 1024,
				.qpass = { 1, 1 } };
	size_t n = 0;
	while (slots && slots[n])
		n++;
	e->devs = qp_xcalloc(4 * n + 1, sizeof(*e->devs));
	struct qp_err *err = NULL;
	for (size_t i = 0; i < n; i++) {
		bool has_func;
		struct qp_pci_addr a;
		if (qp_parse_pci_selector(slots[i], &a, &has_func, &err) < 0)
			fail_msg("%s", err->msg);
		for (a.func = 0; a.func < 4; a.func++)
			e->devs[e->n_devs++] = a;
	}
	if (qp_cpulist_parse(vcpus, &e->vcpu_cpus, &err) < 0 ||
	    qp_cpulist_parse(emu, &e->emulator_cpus, &err) < 0)
		fail_msg("%s", err->msg);
}

static int plan_beside(struct world *w, const struct qp_ledger *l, const char *extra, int vcpus)
{
	memset(w, 0, sizeof(*w));
	load_host("seed", &w->host);
	load_profile(extra, vcpus, &w->profile);
	return qp_plan_make_with(&w->profile, &w->host, l, &w->plan, &w->err);
}

static const char *host_of(const struct qp_plan *plan, size_t i, char buf[QP_PCI_ADDR_LEN])
{
	qp_pci_addr_fmt(&plan->devs[i].host, buf);
	return buf;
}

static void pool_picks_the_node_with_more_free_cores(void **state)
{
	struct world w;
	char a[QP_PCI_ADDR_LEN];
	/* Alone: the nodes tie (14 free cores each); the lowest wins. */
	assert_int_equal(plan_beside(&w, NULL, "\"gpus\": {\"count\": 2, \"model\": \"1e04\"}",
				     2), 0);
	assert_string_equal(host_of(&w.plan, 0, a), "0000:04:00.0");
	assert_int_equal(w.plan.n_devs, 8);
	assert_true(w.plan.picked && w.plan.devs[7].picked);
	done(&w);
	/* A VM holds six cores of node 0 and nothing else: node 1 has more free cores. */
	struct qp_ledger l = { 0 };
	lease(&l, "x", NULL, "0-5", "28-33", 0);
	assert_int_equal(plan_beside(&w, &l, "\"gpus\": {\"count\": 2}", 2), 0);
	assert_string_equal(host_of(&w.plan, 0, a), "0000:85:00.0");
	assert_string_equal(host_of(&w.plan, 4, a), "0000:86:00.0");
	assert_int_equal(w.plan.numa_node, 1);
	done(&w);
	qp_ledger_free(&l);
}

static void pool_skips_what_others_hold(void **state)
{
	struct world w;
	char a[QP_PCI_ADDR_LEN];
	struct qp_ledger l = { 0 };
	lease(&l, "x", (const char *[]){ "04:00", NULL }, "0-3", "28-31", 0);
	assert_int_equal(plan_beside(&w, &l, "\"gpus\": {\"count\": 1, \"node\": 0}", 4), 0);
	assert_string_equal(host_of(&w.plan, 0, a), "0000:05:00.0");
	/* The cores after x's; QEMU's other threads on the next free one. */
	for (int v = 0; v < 4; v++)
		assert_int_equal(w.plan.vcpu_pins[v], 4 + v);
	qp_autofree char *emu = qp_cpulist_fmt(&w.plan.emulator_cpus);
	assert_string_equal(emu, "8,36");
	done(&w);
	/* Named: refused, naming the holder. */
	assert_int_equal(plan_beside(&w, &l, "\"passthrough\": [\"04:00\"]", 1), -1);
	assert_non_null(strstr(w.err->msg, "0000:04:00.0 is taken by the VM x"));
	done(&w);
	/* Not enough left on node 0: every GPU listed with why. */
	assert_int_equal(plan_beside(&w, &l, "\"gpus\": {\"count\": 4, \"node\": 0}", 1), -1);
	assert_non_null(strstr(w.err->msg, "node 0 has 3 free GPUs, and 4 are asked for"));
	assert_non_null(strstr(w.err->msg, "0000:04:00  node 0  TU102 [GeForce RTX 2080 Ti]: the "
				"VM x has it"));
	assert_non_null(strstr(w.err->msg, "0000:0b:00  node 0  ASPEED Graphics Family: the "
				"host's boot VGA, on ast"));
	done(&w);
	qp_ledger_free(&l);
}

static void explicit_cpus_beside_others(void **state)
{
	struct world w;
	struct qp_ledger l = { 0 };
	lease(&l, "x", NULL, "0-3", "28-31", 0);
	/* CPU 29 is a thread of x's core 1. */
	assert_int_equal(plan_beside(&w, &l, "\"vcpu_pins\": [29]", 1), -1);
	assert_non_null(strstr(w.err->msg, "vcpu_pins: CPU 29 is on a core of the VM x (its vCPUs "
				"on CPUs 0-3, its emulator on 28-31)"));
	done(&w);
	assert_int_equal(plan_beside(&w, &l, "\"emulator_cpus\": \"0\"", 1), -1);
	assert_non_null(strstr(w.err->msg, "emulator_cpus: CPU 0 is on a core of the VM x"));
	done(&w);
	/* Both share: allowed. One alone: not. */
	l.leases[0].share_cpus = true;
	assert_int_equal(plan_beside(&w, &l, "\"vcpu_pins\": [29], \"share_cpus\": true", 1), 0);
	done(&w);
	assert_int_equal(plan_beside(&w, &l, "\"vcpu_pins\": [29]", 1), -1);
	done(&w);
	qp_ledger_free(&l);
	/* Every core of node 0 taken: the automatic pinner says the others hold them. */
	lease(&l, "big", NULL, "0-13", "28-41", 0);
	assert_int_equal(plan_beside(&w, &l, "\"numa\": 0", 2), -1);
	assert_non_null(strstr(w.err->msg, "NUMA node 0 has 0 free cores"));
	assert_non_null(strstr(w.err->msg, "the VMs that run hold the others"));
	done(&w);
	qp_ledger_free(&l);
}

static void lease_round_trip(void **state)
{
	struct qp_ledger l = { 0 };
	lease(&l, "x", (const char *[]){ "04:00", NULL }, "0-3", "28-31", 0);
	l.leases[0].hugepage_kb = 2048;
	l.leases[0].hugepages = 512;
	l.leases[0].qemu = (struct qp_holder){ 42, 4242 };
	json_object *o = qp_lease_json(&l.leases[0]);
	struct qp_lease back;
	struct qp_err *err = NULL;
	assert_int_equal(qp_lease_parse(o, "x.json", &back, &err), 0);
	assert_string_equal(back.name, "x");
	assert_int_equal(back.n_devs, 4);
	assert_int_equal(back.qemu.pid, 42);
	assert_true(back.qemu.start == 4242 && back.hugepages == 512 && back.node == 0);
	assert_true(qp_cpulist_equal(&back.emulator_cpus, &l.leases[0].emulator_cpus));
	qp_lease_free(&back);
	/* A damaged one names its file and the member. */
	json_object_object_add(o, "vcpu_cpus", json_object_new_string("0-3"));
	assert_int_equal(qp_lease_parse(o, "x.json", &back, &err), -1);
	assert_non_null(strstr(err->msg, "x.json: \"vcpu_cpus\" is missing or not a list"));
	qp_err_free(err);
	json_object_put(o);
	/* Reserved and not touched: a starting VM's hugepages count; a running one's not. */
	assert_int_equal(qp_ledger_untouched_hugepages(&l, 0, 2048), 512);
	l.leases[0].running = true;
	assert_int_equal(qp_ledger_untouched_hugepages(&l, 0, 2048), 0);
	l.leases[0].hugepages = 0;
	l.leases[0].resident_mib = 256;
	assert_int_equal(qp_ledger_untouched_mib(&l, 0), 768);
	qp_ledger_free(&l);
}

static void accel_and_cpu_flags(void **state)
{
	struct world w;
	memset(&w, 0, sizeof(w));
	load_host("seed", &w.host);
	w.host.dev_kvm = false;
	load_profile("\"accel\": \"auto\", \"cpu\": {\"hide_hypervisor\": true, "
		     "\"hv_vendor_id\": \"qpass\", \"flags\": [\"-arch-capabilities\"]}", 1,
		     &w.profile);
	assert_int_equal(qp_plan_make(&w.profile, &w.host, &w.plan, &w.err), 0);
	assert_true(w.plan.tcg);
	assert_true(has_warning(&w.plan, "no /dev/kvm"));
	assert_true(argv_has(&w.plan, "max,-arch-capabilities,kvm=off,hv-vendor-id=qpass"));
	done(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seed_two_gpus_on_node_0),
		cmocka_unit_test(seed_node_1_gpus),
		cmocka_unit_test(smt_threads_2_takes_sibling_pairs),
		cmocka_unit_test(too_few_cpus),
		cmocka_unit_test(explicit_pins),
		cmocka_unit_test(devices_on_two_nodes),
		cmocka_unit_test(unknown_node_means_node_0),
		cmocka_unit_test(group_must_be_viable),
		cmocka_unit_test(function_selection),
		cmocka_unit_test(bad_passthrough_entries),
		cmocka_unit_test(boot_vga),
		cmocka_unit_test(guest_slots),
		cmocka_unit_test(memory_and_hugepages),
		cmocka_unit_test(accel_and_cpu_flags),
		cmocka_unit_test(pool_picks_the_node_with_more_free_cores),
		cmocka_unit_test(pool_skips_what_others_hold),
		cmocka_unit_test(explicit_cpus_beside_others),
		cmocka_unit_test(lease_round_trip),
	};
	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
