/* The commands that read the host: list, check. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/check_show.h"
#include "cli/cli-int.h"
#include "cli/list.h"
#include "core/check.h"
#include "probe/checkprobe.h"
#include "probe/hostload.h"

static const char list_usage[] =
	"Usage: qpass [--sysroot DIR] list [--all] [--json]\n"
	"\n"
	"Shows every GPU (PCI class 03xx) with all functions of its slot (VGA, audio,\n"
	"USB, serial), its IOMMU group and the group's other members, its NUMA node,\n"
	"local CPUs and current drivers; then the NUMA nodes and whether the IOMMU,\n"
	"KVM and VFIO are ready. Reads only; changes nothing.\n"
	"\n"
	"  --all    also every other PCI device\n"
	"  --json   JSON for scripts (schema: docs/list-json.md)\n"
	"  --sysroot DIR  as the global option\n";

static const char check_usage[] =
	"Usage: qpass [--sysroot DIR] check [PROFILE] [--device ADDR] [--json]\n"
	"\n"
	"Checks what passthrough needs before QEMU starts, and says for each finding\n"
	"that is not OK what to do on this host (the command, or the file and line to\n"
	"change). The host: CPU virtualization, IOMMU, interrupt remapping, the VFIO\n"
	"modules, /dev/kvm, QEMU and its vfio-pci, the memlock limit, hugepages.\n"
	"With PROFILE (or --device ADDR: 04:00 for every function, 04:00.1 for one):\n"
	"the IOMMU groups as the planner sees them, a boot framebuffer in a GPU's BARs,\n"
	"processes holding the device, an empty reset_method, D3cold, OVMF, and free\n"
	"memory, CPUs and hugepages on the VM's NUMA node. Reads only; changes nothing.\n"
	"\n"
	"  --device ADDR  check these functions instead of a profile's\n"
	"  --json         JSON for scripts (schema: docs/check-json.md)\n"
	"  --sysroot DIR  as the global option\n"
	"\n"
	"Exit status: 0 when no check FAILs (WARN does not fail); 1 when one does;\n"
	"2 a wrong command line.\n";

int qp_cmd_list(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = qp_cli_parse_flags(g, argc, argv, list_usage, QP_FLAG_ALL, &f);
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return qp_cli_usage_error("list: unexpected argument '%s'", argv[optind]);

	struct qp_host h;
	if (qp_cli_load_host(g, NULL, 0, &h) < 0)
		return QP_EXIT_FAIL;
	struct qp_list_opts lo = { .all = f.all };
	if (f.json && !qp_host_iommu_on(&h))
		fputs("qpass: note: the IOMMU is off (see .iommu.message)\n", stderr);
	if (f.json) {
		qp_autoerr struct qp_err *err = NULL;
		rc = qp_list_json(stdout, &h, &lo, &err) < 0 ? QP_EXIT_FAIL : QP_EXIT_OK;
		qp_err_report(&err);
	} else {
		rc = qp_cli_emit(NULL, qp_list_text(&h, &lo));
	}
	qp_host_free(&h);
	return qp_cli_finish(rc);
}

/* --device's selector (none when it is malformed: the target says why). */
static struct qp_pci_sel *device_sel(const char *device, size_t *n)
{
	struct qp_pci_sel *sel = qp_xcalloc(1, sizeof(*sel));
	bool has_func = false;
	struct qp_err *err = NULL;
	*n = device && qp_parse_pci_selector(device, &sel->addr, &has_func, &err) == 0;
	sel->slot = !has_func;
	qp_err_free(err);
	return sel;
}

/* The three steps of check (core/check.h): target, probe, evaluation; then the report. */
static int run_check(const struct globals *g, const char *profile, const char *device, bool json)
{
	struct qp_profile p;
	if (profile && qp_cli_load_profile(profile, &p) < 0)
		return QP_EXIT_FAIL;
	/* The host's devices the check looks at: the profile's, or --device's, or none. */
	size_t n_sel = 0;
	qp_autofree struct qp_pci_sel *sel = profile ? qp_plan_needs(&p, &n_sel)
						     : device_sel(device, &n_sel);
	struct qp_root root;
	struct qp_host h;
	unsigned flags = qp_cli_host_flags(profile ? &p : NULL, QP_HOST_NAMES);
	if (qp_cli_open_host(g, flags, sel, n_sel, &root, &h) < 0) {
		if (profile)
			qp_profile_free(&p);
		return QP_EXIT_FAIL;
	}
	qp_autoerr struct qp_err *err = NULL;
	struct qp_check_target t = { 0 };
	int rc = 0;
	if (profile) {
		struct qp_ledger ledger;
		qp_cli_read_ledger(&ledger);
		qp_cli_plan_inputs(&p, &h);
		qp_check_target_profile(&p, &h, &ledger, &t);
		qp_ledger_free(&ledger);
	} else if (device && qp_check_target_device(device, &h, &t, &err) < 0) {
		rc = -1;
	}
	if (rc < 0) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	} else {
		struct qp_check_facts facts;
		struct qp_check_report report;
		qp_check_probe(&root, &h, &t, &facts);
		qp_check_eval(&h, &t, &facts, &report);
		rc = qp_cli_emit(json ? qp_check_json(&report) : NULL,
				 json ? NULL : qp_check_text(&report));
		if (rc == QP_EXIT_OK && report.n[QP_CHECK_FAIL])
			rc = QP_EXIT_FAIL;
		qp_check_report_free(&report);
		qp_check_facts_free(&facts);
	}
	qp_check_target_free(&t);
	qp_host_free(&h);
	qp_root_close(&root);
	if (profile)
		qp_profile_free(&p);
	return qp_cli_finish(rc);
}

int qp_cmd_check(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "sysroot", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *device = NULL;
	bool json = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			device = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			g->sysroot = optarg;
			break;
		case 'h':
			fputs(check_usage, stdout);
			return qp_cli_finish(QP_EXIT_OK);
		default:
			return qp_cli_bad_option("check", c, argv);
		}
	}
	if (optind < argc - 1)
		return qp_cli_usage_error("check: one profile at a time");
	const char *profile = optind < argc ? argv[optind] : NULL;
	if (profile && device)
		return qp_cli_usage_error("check: a profile or --device, not both");
	return run_check(g, profile, device, json);
}