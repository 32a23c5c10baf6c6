#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/check_show.h"
#include "core/check.h"
#include "probe/checkprobe.h"
#include "core/host.h"
#include "probe/hostload.h"
#include "base/jsonout.h"
#include "cli/list.h"
#include "core/plan.h"
#include "cli/plan_show.h"
#include "profiles/profile.h"
#include "qp-config.h"
#include "base/root.h"
#include "run/up.h"
#include "base/rundir.h"
#include "run/control.h"
#include "vfio/bind.h"
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include "base/util.h"

static const char usage_text[] =
	"Usage: qpass [--sysroot DIR] COMMAND [OPTIONS]\n"
	"\n"
	"qpass launches QEMU virtual machines with PCI devices (GPUs above all) passed\n"
	"through by VFIO, on hosts without libvirt.\n"
	"\n"
	"Commands:\n"
	"  list [--all] [--json]  the GPUs with every function of their slots, their\n"
	"                         IOMMU groups, NUMA nodes, local CPUs and drivers\n"
	"  check [PROFILE] [--device ADDR] [--json]\n"
	"                         the host doctor: is this host ready for passthrough\n"
	"                         (and for PROFILE's VM)? each finding with its fix\n"
	"  plan PROFILE [--json]  the plan for a VM profile on this host: devices and\n"
	"                         guest slots, vCPU pins, memory node, the QEMU argv\n"
	"  up PROFILE             start the VM as planned and supervise it in the\n"
	"                         foreground until it ends (SIGTERM: graceful stop)\n"
	"  down NAME [--force] [--timeout S]\n"
	"                         stop a running VM: ACPI power off, then quit\n"
	"  status [NAME] [--json] state, pids, uptime and placement of running VMs\n"
	"  qmp NAME COMMAND [JSON-ARGUMENTS]\n"
	"                         run a QMP command in a running VM, print the reply\n"
	"  bind ADDR...           bind PCI functions to vfio-pci (journaled)\n"
	"  unbind ADDR...         give functions bound by `bind` back to their drivers\n"
	"  restore [NAME]         give back what a crashed qpass left on vfio-pci\n"
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

static const char down_usage[] =
	"Usage: qpass down NAME [--force] [--timeout S]\n"
	"\n"
	"Stops the running VM NAME through its supervisor (the `qpass up` that runs it):\n"
	"the guest gets the ACPI power button and up to S seconds (default: the profile's\n"
	"shutdown_timeout) to power off; then QEMU is told to quit. --force quits at\n"
	"once. Waits until the VM is gone. Exit status 0 when it stopped, 1 otherwise.\n";

static const char status_usage[] =
	"Usage: qpass status [NAME] [--json]\n"
	"\n"
	"Shows each running VM (or only NAME): its state as QEMU reports it (running,\n"
	"paused...), the pids of qpass and QEMU, the uptime, the NUMA node, the vCPU ->\n"
	"host CPU pins. --json: one object for NAME, else an array of them\n"
	"(docs/status-json.md).\n";

static const char qmp_usage[] =
	"Usage: qpass qmp NAME COMMAND [JSON-ARGUMENTS]\n"
	"\n"
	"Runs a raw QMP command in the running VM NAME, through its supervisor, and\n"
	"prints QEMU's reply as JSON: {\"return\": ...} (exit 0) or {\"error\": ...}\n"
	"(exit 1).\n"
	"Example: qpass qmp win10 query-status; qpass qmp win10 human-monitor-command\n"
	"'{\"command-line\": \"info pci\"}'\n";

static const char bind_usage[] =
	"Usage: qpass [--sysroot DIR] bind ADDR...\n"
	"       qpass [--sysroot DIR] unbind ADDR...\n"
	"\n"
	"bind: binds each PCI function to vfio-pci through sysfs (driver_override,\n"
	"unbind, drivers_probe), recording first, in a journal under\n"
	"$QPASS_RUNDIR/journal (default /run/qpass/journal), which driver and\n"
	"driver_override it had. ADDR is 0000:04:00.0, 04:00.0, or 04:00 for every\n"
	"function of the device. When a step fails, everything already changed is given\n"
	"back. Nothing is saved across reboots (as driverctl --nosave).\n"
	"\n"
	"unbind: gives the functions back to the drivers the journal recorded, and checks\n"
	"that each driver link points there again.\n";

static const char restore_usage[] =
	"Usage: qpass [--sysroot DIR] restore [NAME]\n"
	"\n"
	"Replays the journal a VM's qpass left behind (killed, crashed, the host's power\n"
	"cut between bind and give-back): every function goes back to the driver and\n"
	"driver_override it had. Idempotent: run it again and nothing changes. Without\n"
	"NAME, every journal whose VM is not running, except `bind`'s own (restore that\n"
	"with `qpass unbind`, or `qpass restore manual`). A VM whose QEMU still runs\n"
	"without its qpass is left alone (after up to 5 s for that QEMU to die), and the\n"
	"pid to stop is said.\n";

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

static void print_warnings(const struct qp_host *h)
{
	for (char **w = h->warnings; w && *w; w++)
		fprintf(stderr, "qpass: warning: %s\n", *w);
}

/* Opens the system root and reads the host under it (flags: qp_host_load_ex's), and
 * says the host's warnings. On failure the error is reported and nothing stays open. */
static int open_host(const struct globals *g, unsigned flags, struct qp_root *root,
		     struct qp_host *h)
{
	qp_autoerr struct qp_err *err = NULL;
	if (qp_root_open(qp_root_choose(g->sysroot), root, &err) < 0) {
		qp_err_report(&err);
		return -1;
	}
	if (qp_host_load_ex(root, flags, h, &err) < 0) {
		qp_root_close(root);
		qp_err_report(&err);
		return -1;
	}
	print_warnings(h);
	return 0;
}

/* The host, for the commands that read nothing else under the root. */
static int load_host(const struct globals *g, struct qp_host *h)
{
	struct qp_root root;
	if (open_host(g, QP_HOST_NAMES, &root, h) < 0)
		return -1;
	qp_root_close(&root);
	return 0;
}

/* Where per-VM state goes: $QPASS_STATEDIR, else the planner's default. */
static const char *state_dir(void)
{
	const char *d = secure_getenv("QPASS_STATEDIR");
	return d && *d ? d : NULL;
}

/* Prints a command's result: JSON when doc, else text; takes both. */
static int emit(json_object *doc, char *text)
{
	qp_autoerr struct qp_err *err = NULL;
	int rc = QP_EXIT_OK;
	if (doc && qp_json_print(stdout, doc, &err) < 0) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	} else if (!doc && text) {
		fputs(text, stdout);
	}
	free(text);
	return rc;
}

/* Checks that exactly one PROFILE argument is left: -1, or the usage error's status. */
static int one_profile(const char *cmd, int argc)
{
	if (optind == argc - 1)
		return -1;
	if (optind >= argc)
		return usage_error("%s: which profile? (qpass %s PROFILE)", cmd, cmd);
	return usage_error("%s: one profile at a time", cmd);
}

/* Reads a profile, or reports why not; the state directory comes from the
 * environment. */
static int load_profile(const char *path, struct qp_profile *p)
{
	qp_autoerr struct qp_err *err = NULL;
	if (qp_profile_load(path, p, &err) < 0) {
		qp_err_report(&err);
		return -1;
	}
	p->state_dir = state_dir();
	return 0;
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

	struct qp_host h;
	if (load_host(g, &h) < 0)
		return QP_EXIT_FAIL;
	struct qp_list_opts lo = { .all = f.all };
	if (f.json && !qp_host_iommu_on(&h))
		fputs("qpass: note: the IOMMU is off (see .iommu.message)\n", stderr);
	rc = emit(f.json ? qp_list_json(&h, &lo) : NULL, f.json ? NULL : qp_list_text(&h, &lo));
	qp_host_free(&h);
	return finish_output(rc);
}

/* What `plan` and `up` start with: their options, one PROFILE argument, the profile
 * read. -1 to go on (*p loaded), else the exit status. */
static int profile_command(struct globals *g, int argc, char **argv, const char *usage,
			   bool json_ok, struct flags *f, struct qp_profile *p)
{
	int rc = parse_flags(g, argc, argv, usage, false, f);
	if (rc >= 0)
		return rc;
	if (f->json && !json_ok)
		return usage_error("%s: unknown option '--json'", argv[0]);
	if ((rc = one_profile(argv[0], argc)) >= 0)
		return rc;
	return load_profile(argv[optind], p) < 0 ? QP_EXIT_FAIL : -1;
}

static int cmd_plan(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	struct qp_profile p;
	int rc = profile_command(g, argc, argv, plan_usage, true, &f, &p);
	if (rc >= 0)
		return rc;
	struct qp_host h;
	if (load_host(g, &h) < 0) {
		qp_profile_free(&p);
		return QP_EXIT_FAIL;
	}
	qp_autoerr struct qp_err *err = NULL;
	struct qp_plan plan;
	rc = QP_EXIT_OK;
	if (qp_plan_make(&p, &h, &plan, &err) < 0) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	} else {
		for (char **w = plan.warnings; f.json && w && *w; w++)
			fprintf(stderr, "qpass: warning: %s\n", *w);
		rc = emit(f.json ? qp_plan_json(&plan) : NULL, f.json ? NULL : qp_plan_text(&plan));
		qp_plan_free(&plan);
	}
	qp_host_free(&h);
	qp_profile_free(&p);
	return finish_output(rc);
}

static int cmd_check(struct globals *g, int argc, char **argv)
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
			return finish_output(QP_EXIT_OK);
		case ':':
			return usage_error("check: %s needs a value", argv[optind - 1]);
		default:
			return usage_error("check: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc - 1)
		return usage_error("check: one profile at a time");
	const char *profile = optind < argc ? argv[optind] : NULL;
	if (profile && device)
		return usage_error("check: a profile or --device, not both");

	struct qp_profile p;
	if (profile && load_profile(profile, &p) < 0)
		return QP_EXIT_FAIL;
	struct qp_root root;
	struct qp_host h;
	if (open_host(g, QP_HOST_NAMES, &root, &h) < 0) {
		if (profile)
			qp_profile_free(&p);
		return QP_EXIT_FAIL;
	}
	qp_autoerr struct qp_err *err = NULL;
	struct qp_check_target t = { 0 };
	int rc = 0;
	if (profile)
		qp_check_target_profile(&p, &h, &t);
	else if (device && qp_check_target_device(device, &h, &t, &err) < 0)
		rc = -1;
	if (rc < 0) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	} else {
		struct qp_check_facts facts;
		struct qp_check_report report;
		qp_check_probe(&root, &h, &t, &facts);
		qp_check_eval(&h, &t, &facts, &report);
		rc = emit(json ? qp_check_json(&report) : NULL, json ? NULL : qp_check_text(&report));
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
	return finish_output(rc);
}

static int cmd_up(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	struct qp_profile p;
	int rc = profile_command(g, argc, argv, up_usage, false, &f, &p);
	if (rc >= 0)
		return rc;
	struct qp_root root;
	struct qp_host h;
	if (open_host(g, 0, &root, &h) < 0) {
		qp_profile_free(&p);
		return QP_EXIT_FAIL;
	}
	qp_autoerr struct qp_err *err = NULL;
	struct qp_plan plan;
	rc = QP_EXIT_FAIL;
	if (qp_plan_make(&p, &h, &plan, &err) == 0) {
		for (char **w = plan.warnings; w && *w; w++)
			fprintf(stderr, "qpass: warning: %s\n", *w);
		rc = qp_up(&plan, &root, &err);
		qp_plan_free(&plan);
	}
	qp_host_free(&h);
	if (rc < 0 || err) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	}
	qp_root_close(&root);
	qp_profile_free(&p);
	return rc;
}

/* Whether a VM of this name runs: its supervisor holds the runtime directory's lock. */
static bool vm_running(const char *name)
{
	qp_autofree char *lock = qp_xasprintf("%s/%s/lock", qp_rundir(), name);
	qp_autoclose int fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return true;
	flock(fd, LOCK_UN);
	return false;
}

static int cmd_down(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool force = false;
	long timeout = -1;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "ft:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 't': {
			char *end;
			timeout = strtol(optarg, &end, 10);
			if (*end || timeout < 1 || timeout > 86400)
				return usage_error("down: --timeout takes seconds, 1 to 86400");
			break;
		}
		case 'h':
			fputs(down_usage, stdout);
			return finish_output(QP_EXIT_OK);
		default:
			return usage_error("down: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return usage_error("down: which VM? (qpass down NAME)");
	const char *name = argv[optind];
	json_object *req = json_object_new_object();
	json_object_object_add(req, "command", json_object_new_string("down"));
	json_object_object_add(req, "force", json_object_new_boolean(force));
	if (timeout > 0)
		json_object_object_add(req, "timeout", json_object_new_int((int)timeout));
	qp_autoerr struct qp_err *err = NULL;
	json_object *reply;
	if (qp_ctl_call(name, req, &reply, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	json_object_put(reply);
	/* Gone when its supervisor no longer holds the runtime directory's lock: the
	 * kernel drops it however the supervisor ends. */
	long wait_s = (force ? 10 : (timeout > 0 ? timeout : 600)) + 15;
	for (long i = 0; i < wait_s * 10; i++) {
		if (!vm_running(name)) {
			fprintf(stderr, "qpass: %s stopped\n", name);
			if (qp_vfio_journaled(name, NULL)) {
				fprintf(stderr, "qpass: %s's devices were not all given back: run "
					"`qpass restore %s`\n", name, name);
				return QP_EXIT_FAIL;
			}
			return QP_EXIT_OK;
		}
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "qpass: error: %s is still running after %ld s\n", name, wait_s);
	return QP_EXIT_FAIL;
}

static void print_status_row(json_object *st)
{
	long up = (long)json_object_get_int64(json_object_object_get(st, "uptime"));
	char uptime[32];
	snprintf(uptime, sizeof(uptime), "%ld:%02ld:%02ld", up / 3600, up / 60 % 60, up % 60);
	struct qp_buf pins = { 0 };
	json_object *p = json_object_object_get(st, "vcpu_pins");
	for (size_t v = 0; v < json_object_array_length(p); v++)
		qp_buf_addf(&pins, "%s%zu->%d", v ? " " : "", v,
			    json_object_get_int(json_object_array_get_idx(p, v)));
	qp_autofree char *pin_text = qp_buf_steal(&pins);
	printf("%-16s %-10s %-9d %-9d %-9s %-4d %s\n",
	       json_object_get_string(json_object_object_get(st, "name")),
	       json_object_get_string(json_object_object_get(st, "state")),
	       json_object_get_int(json_object_object_get(st, "qpass_pid")),
	       json_object_get_int(json_object_object_get(st, "qemu_pid")), uptime,
	       json_object_get_int(json_object_object_get(st, "numa_node")), pin_text);
}

static int cmd_status(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = parse_flags(g, argc, argv, status_usage, false, &f);
	if (rc >= 0)
		return rc;
	if (argc - optind > 1)
		return usage_error("status: one VM at a time, or none for all");
	char **names;
	if (optind < argc) {
		names = qp_xcalloc(2, sizeof(char *));
		names[0] = qp_xstrdup(argv[optind]);
	} else {
		names = qp_ctl_names();
	}
	json_object *all = json_object_new_array();
	rc = QP_EXIT_OK;
	for (char **n = names; *n; n++) {
		json_object *req = json_object_new_object();
		json_object_object_add(req, "command", json_object_new_string("status"));
		struct qp_err *err = NULL;
		json_object *reply;
		if (qp_ctl_call(*n, req, &reply, &err) < 0) {
			qp_err_report(&err);
			rc = QP_EXIT_FAIL;
			continue;
		}
		json_object_array_add(all, json_object_get(json_object_object_get(reply, "status")));
		json_object_put(reply);
	}
	bool one = optind < argc;
	qp_strv_free(names);
	qp_autoerr struct qp_err *err = NULL;
	if (f.json) {
		if (one && !json_object_array_length(all)) {
			json_object_put(all);
			return rc;
		}
		json_object *out = one ? json_object_get(json_object_array_get_idx(all, 0)) : all;
		if (one)
			json_object_put(all);
		if (qp_json_print(stdout, out, &err) < 0) {
			qp_err_report(&err);
			return QP_EXIT_FAIL;
		}
		return finish_output(rc);
	}
	if (json_object_array_length(all))
		printf("%-16s %-10s %-9s %-9s %-9s %-4s %s\n", "NAME", "STATE", "QPASS", "QEMU",
		       "UPTIME", "NODE", "vCPU->CPU");
	else if (!one)
		printf("no VM is running (under %s)\n", qp_rundir());
	for (size_t i = 0; i < json_object_array_length(all); i++)
		print_status_row(json_object_array_get_idx(all, i));
	json_object_put(all);
	return finish_output(rc);
}

static int cmd_qmp(struct globals *g, int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(qmp_usage, stdout);
		return finish_output(QP_EXIT_OK);
	}
	if (argc < 3 || argc > 4)
		return usage_error("qmp: qpass qmp NAME COMMAND [JSON-ARGUMENTS]%s", "");
	json_object *req = json_object_new_object();
	json_object_object_add(req, "command", json_object_new_string("qmp"));
	json_object_object_add(req, "execute", json_object_new_string(argv[2]));
	if (argc == 4) {
		json_object *args = json_tokener_parse(argv[3]);
		if (!json_object_is_type(args, json_type_object)) {
			json_object_put(args);
			json_object_put(req);
			return usage_error("qmp: the arguments are one JSON object, e.g. "
					   "'{\"command-line\": \"info pci\"}'%s", "");
		}
		json_object_object_add(req, "arguments", args);
	}
	qp_autoerr struct qp_err *err = NULL;
	json_object *reply;
	if (qp_ctl_call(argv[1], req, &reply, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	json_object *r = json_object_get(json_object_object_get(reply, "reply"));
	json_object_put(reply);
	bool ok = json_object_object_get_ex(r, "return", NULL);
	if (qp_json_print(stdout, r, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	(void)g;
	return finish_output(ok ? QP_EXIT_OK : QP_EXIT_FAIL);
}

/* The functions ADDR... name on the host: "04:00" is every function of the device. */
static int select_functions(const struct qp_host *h, char **args, int n, struct qp_pci_addr **out,
			    size_t *count, struct qp_err **err)
{
	*out = NULL;
	*count = 0;
	for (int i = 0; i < n; i++) {
		struct qp_pci_addr a;
		bool has_func;
		if (qp_parse_pci_selector(args[i], &a, &has_func, err) < 0)
			return -1;
		if (!qp_host_select(h, &a, !has_func, out, count)) {
			free(*out);
			*out = NULL;
			qp_err_set(err, 0, "there is no device %s on this host", args[i]);
			return qp_err_hint(err, "`qpass list --all` shows the host's devices");
		}
	}
	return 0;
}

static int cmd_bind_unbind(struct globals *g, int argc, char **argv)
{
	bool bind = !strcmp(argv[0], "bind");
	struct flags f = { 0 };
	int rc = parse_flags(g, argc, argv, bind_usage, false, &f);
	if (rc >= 0)
		return rc;
	if (f.json)
		return usage_error("%s: unknown option '--json'", argv[0]);
	if (optind >= argc)
		return usage_error("%s: which devices? (qpass %s 0000:04:00.0 ...)", argv[0], argv[0]);
	qp_autoerr struct qp_err *err = NULL;
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	struct qp_host h;
	struct qp_pci_addr *addrs = NULL;
	size_t n = 0;
	rc = QP_EXIT_FAIL;
	if (qp_host_load_ex(&root, 0, &h, &err) == 0) {
		if (select_functions(&h, argv + optind, argc - optind, &addrs, &n, &err) == 0) {
			for (size_t i = 0; !bind && !err && i < n; i++) {
				char a[QP_PCI_ADDR_LEN];
				qp_pci_addr_fmt(&addrs[i], a);
				if (!qp_vfio_journaled("manual", &addrs[i]))
					qp_err_set(&err, 0, "%s was not bound by `qpass bind`: "
						   "nothing to give back", a);
			}
			int r = err ? -1 : bind ? qp_vfio_bind(&root, "manual", addrs, n, &err)
				     : qp_vfio_restore(&root, "manual", addrs, n, &err);
			if (r == 0) {
				for (size_t i = 0; i < n; i++) {
					char a[QP_PCI_ADDR_LEN];
					qp_pci_addr_fmt(&addrs[i], a);
					fprintf(stderr, "qpass: %s %s\n", a,
						bind ? "is on vfio-pci" : "is back");
				}
				rc = QP_EXIT_OK;
			}
		}
		qp_host_free(&h);
	}
	free(addrs);
	qp_root_close(&root);
	if (err)
		qp_err_report(&err);
	return rc;
}

/* Whether pid is the QEMU of the VM name: its command line has -name guest=NAME,...
 * (a pid reused by another program is not taken for it). A zombie has none. */
static bool is_vm_qemu(pid_t pid, const char *name)
{
	qp_autofree char *path = qp_xasprintf("/proc/%d/cmdline", (int)pid);
	qp_autofclose FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	qp_autofree char *want = qp_xasprintf("guest=%s,", name);
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (!strncmp(buf + i, want, strlen(want)))
			return true;
	return false;
}

/* The QEMU of a VM whose qpass is gone, when it still runs: its pid, after up to 5 s
 * for it to die with its qpass (PR_SET_PDEATHSIG); else 0. Its devices are in use:
 * giving them back under it would pull them out of a running guest. */
static pid_t orphan_qemu(const char *name)
{
	qp_autofree char *path = qp_xasprintf("%s/%s/state.json", qp_rundir(), name);
	json_object *st = json_object_from_file(path), *v;
	pid_t pid = 0;
	if (st && json_object_object_get_ex(st, "qemu_pid", &v))
		pid = (pid_t)json_object_get_int(v);
	json_object_put(st);
	for (int i = 0; pid > 0 && i < 100; i++) {
		if (!is_vm_qemu(pid, name))
			return 0;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return pid > 0 && is_vm_qemu(pid, name) ? pid : 0;
}

static int cmd_restore(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = parse_flags(g, argc, argv, restore_usage, false, &f);
	if (rc >= 0)
		return rc;
	if (f.json || argc - optind > 1)
		return usage_error("restore: qpass restore [NAME]%s", "");
	char **owners;
	if (optind < argc) {
		owners = qp_xcalloc(2, sizeof(char *));
		owners[0] = qp_xstrdup(argv[optind]);
	} else {
		owners = qp_vfio_journals();
	}
	qp_autoerr struct qp_err *err = NULL;
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, &err) < 0) {
		qp_strv_free(owners);
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	rc = QP_EXIT_OK;
	size_t done = 0;
	for (char **o = owners; *o; o++) {
		if (optind >= argc && !strcmp(*o, "manual"))
			continue;
		if (!qp_vfio_journaled(*o, NULL)) {
			if (optind < argc)
				fprintf(stderr, "qpass: %s has no journal: nothing to restore\n", *o);
			continue;
		}
		if (vm_running(*o)) {
			fprintf(stderr, "qpass: %s is running; its qpass gives its devices back "
				"when it stops\n", *o);
			continue;
		}
		pid_t qemu = orphan_qemu(*o);
		if (qemu) {
			fprintf(stderr, "qpass: error: the QEMU of %s (pid %d) still runs without its "
				"qpass, and uses the devices: not giving them back under it\n"
				"  fix: stop it (kill %d), then run qpass restore %s again\n", *o,
				(int)qemu, (int)qemu, *o);
			rc = QP_EXIT_FAIL;
			continue;
		}
		if (qp_vfio_restore(&root, *o, NULL, 0, &err) < 0) {
			qp_err_report(&err);
			rc = QP_EXIT_FAIL;
			continue;
		}
		fprintf(stderr, "qpass: restored the devices of %s\n", *o);
		done++;
	}
	if (!done && rc == QP_EXIT_OK && optind >= argc)
		fprintf(stderr, "qpass: nothing to restore\n");
	qp_strv_free(owners);
	qp_root_close(&root);
	return rc;
}

struct command {
	const char *name;
	int (*run)(struct globals *g, int argc, char **argv);
};

static const struct command commands[] = {
	{ "list", cmd_list },
	{ "check", cmd_check },
	{ "plan", cmd_plan },
	{ "up", cmd_up },
	{ "down", cmd_down },
	{ "status", cmd_status },
	{ "qmp", cmd_qmp },
	{ "bind", cmd_bind_unbind },
	{ "unbind", cmd_bind_unbind },
	{ "restore", cmd_restore },
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
