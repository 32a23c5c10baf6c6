#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "jsonout.h"
#include "list.h"
#include "plan.h"
#include "plan_show.h"
#include "profile.h"
#include "qp-config.h"
#include "root.h"
#include "up.h"
#include "util.h"

static const char usage_text[] =
	"Usage: qpass [--sysroot DIR] COMMAND [OPTIONS]\n"
	"\n"
	"qpass launches QEMU virtual machines with PCI devices (GPUs above all) passed\n"
	"through by VFIO, on hosts without libvirt.\n"
	"\n"
	"Commands:\n"
	"  list [--all] [--json]  the GPUs with every function of their slots, their\n"
	"                         IOMMU groups, NUMA nodes, local CPUs and drivers\n"
	"  plan PROFILE [--json]  the plan for a VM profile on this host: devices and\n"
	"                         guest slots, vCPU pins, memory node, the QEMU argv\n"
	"  up PROFILE             start the VM as planned and supervise it in the\n"
	"                         foreground until it ends (SIGTERM: graceful stop)\n"
	"\n"
	"Global options:\n"
	"  --sysroot DIR   read the host (DIR/sys, DIR/proc, DIR/dev) under DIR instead\n"
	"                  of /; the environment variable QPASS_SYSROOT does the same\n"
	"  -h, --help      this help; `qpass COMMAND --help` for a command's\n"
	"  -V, --version   the version\n"
	"\n"
	"Exit status: 0 success; 1 failure (stderr says what and how to fix it);\n"
	"2 a wrong command line; 3 (up) QEMU ended on its own.\n";

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

static const char plan_usage[] =
	"Usage: qpass [--sysroot DIR] plan PROFILE [--json]\n"
	"\n"
	"Plans the VM of PROFILE (a JSON file, docs/profile.md) on this host and shows\n"
	"the plan: each passed-through function with its IOMMU group, NUMA node, current\n"
	"driver and guest slot; the vCPU -> host CPU pins and the emulator CPUs; the\n"
	"memory node; and the exact QEMU command line, one option per line, quoted for\n"
	"a shell. Reads only; changes nothing. When no valid plan exists it says why and\n"
	"how to fix it, and exits 1.\n"
	"\n"
	"  --json   JSON for scripts (schema: docs/plan-json.md)\n"
	"  --sysroot DIR  as the global option\n";

static const char up_usage[] =
	"Usage: qpass [--sysroot DIR] up PROFILE\n"
	"\n"
	"Starts the VM of PROFILE as `qpass plan` shows it: QEMU starts paused, every\n"
	"vCPU thread is pinned to its host CPU and QEMU's other threads to the emulator\n"
	"CPUs, the pins are read back from /proc, and only then does the guest run.\n"
	"qpass stays in the foreground (fit for systemd and scripts), logs QEMU's output,\n"
	"and applies the profile's lifecycle: on_poweroff, on_reboot, on_crash.\n"
	"\n"
	"SIGTERM or SIGINT asks the guest to power off (ACPI), waits up to the profile's\n"
	"shutdown_timeout, then quits QEMU, then kills it; a second signal stops QEMU at\n"
	"once. The runtime directory is $QPASS_RUNDIR/NAME (default /run/qpass/NAME),\n"
	"with QEMU's QMP socket; one VM per name.\n"
	"\n"
	"Exit status: 0 the VM stopped as asked or powered off; 1 it could not be\n"
	"started (nothing is left running); 3 QEMU ended on its own.\n";

struct globals {
	const char *sysroot;
};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("qpass: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'qpass --help'.\n", stderr);
	return QP_EXIT_USAGE;
}

/* Flushes stdout and reports a failed write (a full disk, a closed pipe). */
static int finish_output(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "qpass: error: cannot write the output: %s\n", strerror(errno));
		return QP_EXIT_FAIL;
	}
	return rc;
}

static int load_host(const struct globals *g, struct qp_host *h, struct qp_err **err)
{
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, err) < 0)
		return -1;
	int rc = qp_host_load(&root, h, err);
	qp_root_close(&root);
	return rc;
}

static void print_warnings(const struct qp_host *h)
{
	for (char **w = h->warnings; w && *w; w++)
		fprintf(stderr, "qpass: warning: %s\n", *w);
}

/* What the read-only commands share: --json, --all (where it applies), --sysroot and
 * --help, in any order among the arguments. Returns -1 to go on, else an exit status. */
struct flags {
	bool json, all;
};

static int parse_flags(struct globals *g, int argc, char **argv, const char *usage,
		       bool with_all, struct flags *f)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "sysroot", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "ajh", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (!with_all)
				return usage_error("%s: unknown option '--all'", argv[0]);
			f->all = true;
			break;
		case 'j':
			f->json = true;
			break;
		case 's':
			g->sysroot = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return finish_output(QP_EXIT_OK);
		default:
			return usage_error("%s: unknown option '%s'", argv[0], argv[optind - 1]);
		}
	}
	return -1;
}

static int cmd_list(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = parse_flags(g, argc, argv, list_usage, true, &f);
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return usage_error("list: unexpected argument '%s'", argv[optind]);

	qp_autoerr struct qp_err *err = NULL;
	struct qp_host h;
	if (load_host(g, &h, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	print_warnings(&h);
	rc = QP_EXIT_OK;
	struct qp_list_opts lo = { .all = f.all };
	if (f.json) {
		if (!qp_host_iommu_on(&h))
			fputs("qpass: note: the IOMMU is off (see .iommu.message)\n", stderr);
		if (qp_json_print(stdout, qp_list_json(&h, &lo), &err) < 0) {
			qp_err_report(&err);
			rc = QP_EXIT_FAIL;
		}
	} else {
		qp_autofree char *text = qp_list_text(&h, &lo);
		fputs(text, stdout);
	}
	qp_host_free(&h);
	return finish_output(rc);
}

static int cmd_plan(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = parse_flags(g, argc, argv, plan_usage, false, &f);
	if (rc >= 0)
		return rc;
	if (optind != argc - 1)
		return usage_error("plan: %s", optind >= argc ? "which profile? (qpass plan "
			       "PROFILE)" : "one profile at a time");

	qp_autoerr struct qp_err *err = NULL;
	struct qp_profile p;
	if (qp_profile_load(argv[optind], &p, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	struct qp_host h;
	if (load_host(g, &h, &err) < 0) {
		qp_profile_free(&p);
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	print_warnings(&h);
	struct qp_plan plan;
	rc = QP_EXIT_OK;
	if (qp_plan_make(&p, &h, &plan, &err) < 0) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	} else {
		for (char **w = plan.warnings; f.json && w && *w; w++)
			fprintf(stderr, "qpass: warning: %s\n", *w);
		if (f.json) {
			if (qp_json_print(stdout, qp_plan_json(&plan), &err) < 0) {
				qp_err_report(&err);
				rc = QP_EXIT_FAIL;
			}
		} else {
			qp_autofree char *text = qp_plan_text(&plan);
			fputs(text, stdout);
		}
		qp_plan_free(&plan);
	}
	qp_host_free(&h);
	qp_profile_free(&p);
	return finish_output(rc);
}

static int cmd_up(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = parse_flags(g, argc, argv, up_usage, false, &f);
	if (rc >= 0)
		return rc;
	if (f.json)
		return usage_error("up: unknown option '--json'");
	if (optind != argc - 1)
		return usage_error("up: %s", optind >= argc ? "which profile? (qpass up PROFILE)"
						       : "one profile at a time");
	qp_autoerr struct qp_err *err = NULL;
	struct qp_profile p;
	if (qp_profile_load(argv[optind], &p, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, &err) < 0) {
		qp_profile_free(&p);
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	struct qp_host h;
	struct qp_plan plan;
	rc = QP_EXIT_FAIL;
	if (qp_host_load(&root, &h, &err) == 0) {
		print_warnings(&h);
		if (qp_plan_make(&p, &h, &plan, &err) == 0) {
			for (char **w = plan.warnings; w && *w; w++)
				fprintf(stderr, "qpass: warning: %s\n", *w);
			rc = qp_up(&plan, &root, &err);
			qp_plan_free(&plan);
		}
		qp_host_free(&h);
	}
	if (rc < 0 || err) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	}
	qp_root_close(&root);
	qp_profile_free(&p);
	return rc;
}

struct command {
	const char *name;
	int (*run)(struct globals *g, int argc, char **argv);
};

static const struct command commands[] = {
	{ "list", cmd_list },
	{ "plan", cmd_plan },
	{ "up", cmd_up },
};

int qp_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sysroot", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct globals g = { 0 };
	int c;
	optind = 0;
	opterr = 0;
	/* "+": stop at the command; its options are its own. */
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			g.sysroot = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return finish_output(QP_EXIT_OK);
		case 'V':
			printf("qpass %s\n", QP_VERSION);
			return finish_output(QP_EXIT_OK);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return QP_EXIT_USAGE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < QP_ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return commands[i].run(&g, argc - optind, argv + optind);
	return usage_error("unknown command '%s'", name);
}
