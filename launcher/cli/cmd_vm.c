/* The commands of a VM: plan, up, and those that reach its running supervisor over
 * the control socket (run/control.h): down, status, qmp. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/jsonout.h"
#include "base/rundir.h"
#include "base/util.h"
#include "cli/cli-int.h"
#include "cli/plan_show.h"
#include "core/plan.h"
#include "probe/files.h"
#include "probe/hostload.h"
#include "run/control.h"
#include "run/ledger.h"
#include "run/up.h"
#include "run/vmdir.h"
#include "vfio/journal.h"

static const char plan_usage[] =
	"Usage: qpass [--sysroot DIR] plan PROFILE [--json]\n"
	"\n"
	"Plans the VM of PROFILE (a JSON file, docs/profile.md) on this host and shows\n"
	"the plan: each passed-through function with its IOMMU group, NUMA node, current\n"
	"driver and guest slot; the vCPU -> host CPU pins and the emulator CPUs; the\n"
	"memory node; and the exact QEMU command line, one option per line, quoted for\n"
	"a shell. The plan is made beside the VMs that run: their GPUs and cores are not\n"
	"given to this one, and GPUs the profile asks for (\"gpus\") are picked from the\n"
	"free ones, as `up` would pick them now. Reads only; changes nothing. When no\n"
	"valid plan exists it says why and how to fix it, and exits 1.\n"
	"\n"
	"  --json   JSON for scripts (schema: docs/plan-json.md)\n"
	"  --sysroot DIR  as the global option\n";

static const char up_usage[] =
	"Usage: qpass [--sysroot DIR] up PROFILE [--stop-timeout S]\n"
	"\n"
	"Starts the VM of PROFILE as `qpass plan` shows it: QEMU starts paused, every\n"
	"vCPU thread is pinned to its host CPU and QEMU's other threads to the emulator\n"
	"CPUs, the pins are read back from /proc, and only then does the guest run.\n"
	"The GPUs, cores and memory are chosen under a host-wide lock beside the VMs\n"
	"that run, and held in the VM's lease ($QPASS_RUNDIR/leases/NAME.json) until it\n"
	"stops; a lease whose qpass and QEMU are both gone is reclaimed (its devices\n"
	"given back) by the next `up`.\n"
	"qpass stays in the foreground (fit for systemd and scripts), logs QEMU's output,\n"
	"and applies the profile's lifecycle: on_poweroff, on_reboot, on_crash.\n"
	"\n"
	"SIGTERM, SIGINT or SIGHUP asks the guest to power off (ACPI), waits up to the\n"
	"profile's shutdown_timeout, then quits QEMU (5 s), then kills it; a second\n"
	"signal stops QEMU at once. Those signals are for qpass alone: QEMU runs in its\n"
	"own session with SIGTERM and SIGINT held, so a Ctrl-C, or a scheduler that\n"
	"signals every process of a job, still gives the guest its power button.\n"
	"The runtime directory is $QPASS_RUNDIR/NAME (default /run/qpass/NAME), with\n"
	"QEMU's QMP socket; one VM per name.\n"
	"\n"
	"  --stop-timeout S  the whole stop after a signal, up to qpass's exit, fits in\n"
	"                 S seconds: QEMU gets a quarter of S (5 s at most) to quit, as\n"
	"                 much (3 s at most) is kept to give the devices back, the guest\n"
	"                 the rest (no more than shutdown_timeout). Match it to what\n"
	"                 sends SIGKILL after SIGTERM: Slurm's KillWait, a unit's\n"
	"                 TimeoutStopSec. $QPASS_STOP_TIMEOUT does the same.\n"
	"  --sysroot DIR  as the global option\n"
	"\n"
	"Under systemd (a Type=notify unit such as qpass@.service) qpass says READY=1\n"
	"once the guest runs with every vCPU pinned, STATUS= as it goes, STOPPING=1 on a\n"
	"stop, and WATCHDOG=1 when the unit sets WatchdogSec=.\n"
	"\n"
	"Exit status: 0 the VM stopped as asked or powered off; 1 it could not be\n"
	"started (nothing is left running); 2 a wrong command line; 3 QEMU ended on\n"
	"its own (crashed, killed).\n";

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
	"Shows every VM on the host (or only NAME): its state as QEMU reports it\n"
	"(running, paused...; starting, or orphan when its qpass is gone and its QEMU\n"
	"runs), the pids of qpass and QEMU, the uptime, the NUMA node, the vCPU -> host\n"
	"CPU pins; then its emulator CPUs, memory and devices; then its placement as the\n"
	"kernel reports it now (each thread's allowed CPUs and last CPU, the guest RAM's\n"
	"pages per node, the devices' interrupts) beside the plan: \"as planned\", or\n"
	"DRIFT with what differs. --json: one object for NAME, else an array of them\n"
	"(docs/status-json.md); NAME's is a placement manifest to keep with results.\n";

static const char qmp_usage[] =
	"Usage: qpass qmp NAME COMMAND [JSON-ARGUMENTS]\n"
	"\n"
	"Runs a raw QMP command in the running VM NAME, through its supervisor, and\n"
	"prints QEMU's reply as JSON: {\"return\": ...} (exit 0) or {\"error\": ...}\n"
	"(exit 1).\n"
	"Example: qpass qmp win10 query-status; qpass qmp win10 human-monitor-command\n"
	"'{\"command-line\": \"info pci\"}'\n";

int qp_cmd_plan(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	struct qp_profile p;
	int rc = qp_cli_profile_command(g, argc, argv, plan_usage, true, 0, &f, &p);
	if (rc >= 0)
		return rc;
	struct qp_root root;
	struct qp_host h;
	size_t n_sel;
	qp_autofree struct qp_pci_sel *sel = qp_plan_needs(&p, &n_sel);
	if (qp_cli_open_host(g, qp_cli_host_flags(&p, QP_HOST_NAMES), sel, n_sel, &root, &h) < 0) {
		qp_profile_free(&p);
		return QP_EXIT_FAIL;
	}
	struct qp_ledger ledger;
	qp_cli_read_ledger(&ledger);
	size_t n_files;
	char **bad = qp_probe_profile_files(&root, &p, true, &n_files);
	qp_root_close(&root);
	qp_cli_plan_inputs(&p, &h);
	qp_autoerr struct qp_err *err = NULL;
	struct qp_plan plan;
	rc = QP_EXIT_OK;
	if (qp_plan_make_with(&p, &h, &ledger, &plan, &err) < 0) {
		qp_err_report(&err);
		rc = QP_EXIT_FAIL;
	} else {
		for (char **x = bad; x && *x; x++)
			fprintf(stderr, "qpass: warning: %s: `qpass up` would refuse to start\n",
				*x);
		for (char **w = plan.warnings; f.json && w && *w; w++)
			fprintf(stderr, "qpass: warning: %s\n", *w);
		rc = qp_cli_emit(f.json ? qp_plan_json(&plan) : NULL,
				 f.json ? NULL : qp_plan_text(&plan));
		qp_plan_free(&plan);
	}
	qp_strv_free(bad);
	qp_ledger_free(&ledger);
	qp_host_free(&h);
	qp_profile_free(&p);
	return qp_cli_finish(rc);
}

/* up's first steps, under the host-wide lock (run/ledger.h): the VMs that run read, the
 * dead reclaimed, the host read, the plan made beside the others, and this VM's lease
 * written. The lock goes when this returns: then nothing can take what the lease holds. */
static int plan_under_lock(const struct globals *g, const struct qp_profile *p,
			   const struct qp_root *root, struct qp_host *h, struct qp_plan *plan,
			   struct qp_lease *lease, struct qp_err **err)
{
	qp_autoclose int lock = qp_ledger_lock(err);
	if (lock < 0)
		return -1;
	struct qp_ledger ledger;
	if (qp_ledger_load(root, true, &ledger, err) < 0)
		return -1;
	int rc = -1;
	const struct qp_lease *same = qp_ledger_find(&ledger, p->name);
	size_t n_sel;
	qp_autofree struct qp_pci_sel *sel = qp_plan_needs(p, &n_sel);
	if (same) {
		qp_err_set(err, 0, "a VM named %s is already running (%s pid %d)", p->name,
			   same->orphan ? "its qpass is gone; QEMU" : "qpass",
			   same->orphan ? same->qemu.pid : same->qpass.pid);
		qp_err_hint(err, "stop it first (`qpass down %s`), or give this VM another "
			    "\"name\"", p->name);
	} else if (qp_host_load_ex(root, qp_cli_host_flags(p, 0), sel, n_sel, h, err) == 0) {
		qp_cli_host_warnings(h);
		qp_cli_plan_inputs(p, h);
		rc = qp_plan_make_with(p, h, &ledger, plan, err);
		if (rc < 0)
			qp_host_free(h);
	}
	qp_ledger_free(&ledger);
	if (rc < 0)
		return -1;
	qp_plan_lease(plan, lease);
	lease->qpass = qp_holder_self();
	if (qp_ledger_write(lease, err) < 0) {
		qp_lease_free(lease);
		qp_plan_free(plan);
		qp_host_free(h);
		return -1;
	}
	return 0;
}

/* The files the profile names, before anything is taken: QEMU would fail on them only
 * after the devices were bound, with a message about QMP. */
static bool files_usable(const struct qp_profile *p, const struct qp_root *root,
			 struct qp_err **err)
{
	size_t n;
	char **bad = qp_probe_profile_files(root, p, true, &n);
	if (!bad)
		return true;
	struct qp_buf b = { 0 };
	for (char **x = bad; *x; x++)
		qp_buf_addf(&b, "\n  %s", *x);
	qp_strv_free(bad);
	qp_autofree char *list = qp_buf_steal(&b);
	qp_err_set(err, 0, "%s: files the VM needs are not usable:%s", p->file, list);
	qp_err_hint(err, "create them (qemu-img create -f qcow2 FILE SIZE makes a disk), fix "
		    "their paths in the profile, or give %s access", p->run_as ? p->run_as
										: "root");
	return false;
}

int qp_cmd_up(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	struct qp_profile p;
	int rc = qp_cli_profile_command(g, argc, argv, up_usage, false, QP_FLAG_STOP, &f, &p);
	if (rc >= 0)
		return rc;
	qp_autoerr struct qp_err *err = NULL;
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, &err) < 0) {
		qp_err_report(&err);
		qp_profile_free(&p);
		return QP_EXIT_FAIL;
	}
	struct qp_host h;
	struct qp_plan plan;
	struct qp_lease lease;
	rc = QP_EXIT_FAIL;
	if (files_usable(&p, &root, &err) && plan_under_lock(g, &p, &root, &h, &plan, &lease,
							      &err) == 0) {
		for (char **w = plan.warnings; w && *w; w++)
			fprintf(stderr, "qpass: warning: %s\n", *w);
		struct qp_up_opts opts = { .stop_timeout = f.stop_timeout };
		rc = qp_up(&plan, &h, &root, &lease, &opts, &err);
		/* Everything is given back: what the lease held is free again. */
		qp_ledger_remove(p.name);
		qp_lease_free(&lease);
		qp_plan_free(&plan);
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

int qp_cmd_down(struct globals *g, int argc, char **argv)
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
	while ((c = getopt_long(argc, argv, ":ft:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 't':
			if ((timeout = qp_cli_seconds(optarg)) < 0)
				return qp_cli_usage_error("down: --timeout takes seconds, "
							  "1 to 86400");
			break;
		case 'h':
			fputs(down_usage, stdout);
			return qp_cli_finish(QP_EXIT_OK);
		default:
			return qp_cli_bad_option("down", c, argv);
		}
	}
	if (optind != argc - 1)
		return qp_cli_usage_error("down: which VM? (qpass down NAME)");
	const char *name = argv[optind];
	qp_autoerr struct qp_err *err = NULL;
	json_object *reply;
	if (qp_ctl_call(name, qp_ctl_req_down(force, timeout), &reply, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	/* What the supervisor does, and how long the guest has (it may have been stopping
	 * already: then the stop under way goes on). */
	json_object *t = json_object_object_get(reply, "timeout");
	long guest_s = force ? 0 : (json_object_is_type(t, json_type_int) ? json_object_get_int(t)
									 : timeout);
	json_object_put(reply);
	fprintf(stderr, force ? "qpass: %s: QEMU is told to quit\n"
		: "qpass: %s: the guest is asked to power off (ACPI) and has up to %ld s; then "
		  "QEMU is told to quit\n", name, guest_s);
	/* Gone when its supervisor no longer holds the runtime directory's lock: the
	 * kernel drops it however the supervisor ends. */
	long wait_s = (guest_s > 0 ? guest_s : 10) + 15;
	int64_t start = qp_now_ms();
	for (long i = 0; i < wait_s * 10; i++) {
		if (!qp_vm_running(name)) {
			fprintf(stderr, "qpass: %s stopped (%.1f s)\n", name,
				(double)(qp_now_ms() - start) / 1000);
			if (qp_vfio_journaled(name, NULL)) {
				fprintf(stderr, "qpass: %s's devices were not all given back: run "
					"`qpass restore %s`\n", name, name);
				return QP_EXIT_FAIL;
			}
			return QP_EXIT_OK;
		}
		if (i && i % 100 == 0) {
			long left = guest_s - i / 10;
			if (left > 0)
				fprintf(stderr, "qpass: %s: waiting for the guest to power off "
					"(%ld s left)\n", name, left);
			else
				fprintf(stderr, "qpass: %s: waiting for QEMU to stop\n", name);
		}
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "qpass: error: %s is still running after %ld s\n", name, wait_s);
	return QP_EXIT_FAIL;
}

/* "0-3,8", from a JSON array of CPUs. */
static char *cpus_text(json_object *a)
{
	struct qp_cpulist l = { 0 };
	for (size_t i = 0; i < json_object_array_length(a); i++)
		qp_cpulist_add(&l, json_object_get_int(json_object_array_get_idx(a, i)));
	char *s = qp_cpulist_fmt(&l);
	qp_cpulist_free(&l);
	return s;
}

/* What the kernel says, in one line when as planned, else each thing that differs. */
static void print_placement(json_object *pl)
{
	if (!pl)
		return;
	struct qp_buf b = { 0 };
	json_object *vcpus = json_object_object_get(pl, "vcpus");
	for (size_t i = 0; i < json_object_array_length(vcpus); i++) {
		json_object *v = json_object_array_get_idx(vcpus, i);
		qp_autofree char *allowed = cpus_text(json_object_object_get(v, "allowed"));
		qp_buf_addf(&b, "%svCPU %d->%s", i ? " " : "",
			    json_object_get_int(json_object_object_get(v, "vcpu")), allowed);
	}
	json_object *others = json_object_object_get(pl, "threads");
	qp_buf_addf(&b, "; %zu other threads", json_object_array_length(others));
	json_object *mem = json_object_object_get(pl, "memory");
	if (mem)
		qp_buf_addf(&b, "; guest RAM %lld pages on node %d, %lld elsewhere",
			    (long long)json_object_get_int64(json_object_object_get(mem, "on_node")),
			    json_object_get_int(json_object_object_get(mem, "node")),
			    (long long)json_object_get_int64(json_object_object_get(mem, "elsewhere")));
	size_t irqs = json_object_array_length(json_object_object_get(pl, "interrupts"));
	if (irqs)
		qp_buf_addf(&b, "; %zu device interrupts", irqs);
	qp_autofree char *measured = qp_buf_steal(&b);
	json_object *drift = json_object_object_get(pl, "drift");
	bool ok = json_object_get_boolean(json_object_object_get(pl, "as_planned"));
	printf("  placement: %s (measured: %s)\n", ok ? "as planned" : "DRIFT", measured);
	for (size_t i = 0; i < json_object_array_length(drift); i++)
		printf("    %s\n", json_object_get_string(json_object_array_get_idx(drift, i)));
}

static void print_status_row(json_object *st)
{
	long up = (long)json_object_get_int64(json_object_object_get(st, "uptime"));
	char uptime[32];
	snprintf(uptime, sizeof(uptime), "%ld:%02ld:%02ld", up / 3600, up / 60 % 60, up % 60);
	struct qp_buf pins = { 0 }, more = { 0 };
	json_object *p = json_object_object_get(st, "vcpu_pins");
	for (size_t v = 0; v < json_object_array_length(p); v++)
		qp_buf_addf(&pins, "%s%zu->%d", v ? " " : "", v,
			    json_object_get_int(json_object_array_get_idx(p, v)));
	qp_autofree char *pin_text = qp_buf_steal(&pins);
	/* The node, or across nodes every memory node ("0,1"). */
	struct qp_buf node = { 0 };
	json_object *mn = json_object_object_get(st, "memory_nodes");
	for (size_t i = 0; mn && json_object_array_length(mn) > 1 &&
			   i < json_object_array_length(mn); i++)
		qp_buf_addf(&node, "%s%d", i ? "," : "",
			    json_object_get_int(json_object_array_get_idx(mn, i)));
	if (!node.len)
		qp_buf_addf(&node, "%d", json_object_get_int(json_object_object_get(st,
										   "numa_node")));
	qp_autofree char *node_text = qp_buf_steal(&node);
	printf("%-16s %-10s %-9d %-9d %-9s %-4s %s\n",
	       json_object_get_string(json_object_object_get(st, "name")),
	       json_object_get_string(json_object_object_get(st, "state")),
	       json_object_get_int(json_object_object_get(st, "qpass_pid")),
	       json_object_get_int(json_object_object_get(st, "qemu_pid")), uptime, node_text,
	       pin_text);
	/* The rest of what it holds, on a line of its own. */
	json_object *emu = json_object_object_get(st, "emulator_cpus");
	qp_buf_add(&more, "emulator CPUs");
	for (size_t i = 0; i < json_object_array_length(emu); i++)
		qp_buf_addf(&more, "%s%d", i ? "," : " ",
			    json_object_get_int(json_object_array_get_idx(emu, i)));
	qp_buf_addf(&more, "; memory %lld MiB",
		    (long long)json_object_get_int64(json_object_object_get(st, "memory_mib")));
	/* Functions of one device as one: "0000:04:00.0-3". */
	json_object *devs = json_object_object_get(st, "devices");
	size_t n = json_object_array_length(devs);
	for (size_t i = 0; i < n;) {
		const char *a = json_object_get_string(json_object_array_get_idx(devs, i));
		size_t len = strlen(a), j = i + 1;
		while (j < n && len > 2) {
			const char *b = json_object_get_string(json_object_array_get_idx(devs, j));
			if (strncmp(a, b, len - 1) || b[len - 1] != a[len - 1] + (char)(j - i))
				break;
			j++;
		}
		qp_buf_addf(&more, "%s%s", i ? " " : "; devices ", a);
		if (j - i > 1)
			qp_buf_addf(&more, "-%c", a[len - 1] + (char)(j - i - 1));
		i = j;
	}
	qp_autofree char *rest = qp_buf_steal(&more);
	printf("  %s\n", rest);
	print_placement(json_object_object_get(st, "placement"));
}

/* A VM of the ledger that no supervisor answers for: starting (its qpass runs, its
 * control socket is not there yet), or an orphan (its qpass is gone, its QEMU runs). */
static json_object *lease_status(const struct qp_lease *e)
{
	json_object *o = json_object_new_object();
	qp_json_add(o, "name", json_object_new_string(e->name));
	qp_json_add(o, "state", json_object_new_string(e->orphan ? "orphan" : "starting"));
	qp_json_add(o, "qpass_pid", json_object_new_int(e->orphan ? 0 : e->qpass.pid));
	qp_json_add(o, "qemu_pid", json_object_new_int(e->qemu.pid));
	qp_json_add(o, "uptime", json_object_new_int(0));
	qp_json_add(o, "numa_node", json_object_new_int(e->node));
	qp_json_add(o, "vcpu_pins", qp_json_cpus(&e->vcpu_cpus));
	qp_json_add(o, "emulator_cpus", qp_json_cpus(&e->emulator_cpus));
	qp_json_add(o, "memory_nodes", e->node >= 0 ? qp_json_ints(&e->node, 1) :
			json_object_new_array());
	qp_json_add(o, "memory_mib", json_object_new_int64((int64_t)e->memory_mib));
	qp_json_add(o, "devices", qp_json_pci_addrs(e->devs, e->n_devs));
	qp_json_add(o, "qmp", NULL);
	return o;
}

static int cmp_status(const void *a, const void *b)
{
	const char *x = json_object_get_string(json_object_object_get(*(json_object *const *)a,
								       "name"));
	const char *y = json_object_get_string(json_object_object_get(*(json_object *const *)b,
								       "name"));
	return strcmp(x ? x : "", y ? y : "");
}

/* Every VM on the host (or only `one`): from its supervisor, else from the ledger. */
static json_object *collect_status(char **names, const char *one, int *rc)
{
	struct qp_ledger ledger = { 0 };
	qp_autoerr struct qp_err *lerr = NULL;
	if (qp_ledger_load(NULL, false, &ledger, &lerr) < 0)
		fprintf(stderr, "qpass: warning: %s; VMs still starting are not shown\n",
			lerr->msg);
	json_object *all = json_object_new_array();
	for (char **n = names; *n; n++) {
		const struct qp_lease *e = qp_ledger_find(&ledger, *n);
		if (e && !qp_vm_running(*n)) {
			json_object_array_add(all, lease_status(e));
			continue;
		}
		struct qp_err *err = NULL;
		json_object *reply;
		if (qp_ctl_call(*n, qp_ctl_req_status(), &reply, &err) < 0) {
			qp_err_report(&err);
			*rc = QP_EXIT_FAIL;
			continue;
		}
		json_object_array_add(all, json_object_get(json_object_object_get(reply, "status")));
		json_object_put(reply);
	}
	for (size_t i = 0; !one && i < ledger.n; i++)
		if (!qp_strv_contains(names, ledger.leases[i].name))
			json_object_array_add(all, lease_status(&ledger.leases[i]));
	json_object_array_sort(all, cmp_status);
	qp_ledger_free(&ledger);
	return all;
}

int qp_cmd_status(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = qp_cli_parse_flags(g, argc, argv, status_usage, 0, &f);
	if (rc >= 0)
		return rc;
	if (argc - optind > 1)
		return qp_cli_usage_error("status: one VM at a time, or none for all");
	char **names = qp_cli_names(argc, argv, qp_vm_names);
	bool one = optind < argc;
	rc = QP_EXIT_OK;
	json_object *all = collect_status(names, one ? names[0] : NULL, &rc);
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
		return qp_cli_finish(rc);
	}
	if (json_object_array_length(all))
		printf("%-16s %-10s %-9s %-9s %-9s %-4s %s\n", "NAME", "STATE", "QPASS", "QEMU",
		       "UPTIME", "NODE", "vCPU->CPU");
	else if (!one)
		printf("no VM is running (under %s)\n", qp_rundir());
	for (size_t i = 0; i < json_object_array_length(all); i++)
		print_status_row(json_object_array_get_idx(all, i));
	json_object_put(all);
	return qp_cli_finish(rc);
}

int qp_cmd_qmp(struct globals *g, int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(qmp_usage, stdout);
		return qp_cli_finish(QP_EXIT_OK);
	}
	if (argc < 3 || argc > 4)
		return qp_cli_usage_error("qmp: qpass qmp NAME COMMAND [JSON-ARGUMENTS]%s", "");
	json_object *args = NULL;
	if (argc == 4) {
		args = json_tokener_parse(argv[3]);
		if (!json_object_is_type(args, json_type_object)) {
			json_object_put(args);
			return qp_cli_usage_error("qmp: the arguments are one JSON object, e.g. "
						  "'{\"command-line\": \"info pci\"}'%s", "");
		}
	}
	qp_autoerr struct qp_err *err = NULL;
	json_object *reply;
	if (qp_ctl_call(argv[1], qp_ctl_req_qmp(argv[2], args), &reply, &err) < 0) {
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
	return qp_cli_finish(ok ? QP_EXIT_OK : QP_EXIT_FAIL);
}
