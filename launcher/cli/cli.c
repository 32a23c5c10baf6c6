/* The command line: the global options, the command table, qp_main(), and what the
 * commands share (cli-int.h). The commands are cmd_host.c (list, check), cmd_vm.c (plan,
 * up, down, status, qmp) and cmd_vfio.c (bind, unbind, restore). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/jsonout.h"
#include "base/util.h"
#include "cli/cli-int.h"
#include "core/pool.h"
#include "probe/checkprobe.h"
#include "probe/hostload.h"
#include "run/ledger.h"
#include "qp-config.h"

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
	"  status [NAME] [--json] every VM: state, pids, what it holds, and its placement\n"
	"                         as the kernel reports it, beside the plan\n"
	"  pin NAME VCPU CPU | pin NAME emulator CPUS\n"
	"                         move a running VM's vCPU or other threads\n"
	"  qmp NAME COMMAND [JSON-ARGUMENTS]\n"
	"                         run a QMP command in a running VM, print the reply\n"
	"  bind ADDR...           bind PCI functions to vfio-pci (journaled)\n"
	"  unbind ADDR...         give functions bound by `bind` back to their drivers\n"
	"  restore [NAME]         give back what a crashed qpass left on vfio-pci\n"
	"  help [COMMAND]         this help, or COMMAND's (as `qpass COMMAND --help`)\n"
	"\n"
	"Global options:\n"
	"  --sysroot DIR   read the host (DIR/sys, DIR/proc, DIR/dev) under DIR instead\n"
	"                  of /; the environment variable QPASS_SYSROOT does the same\n"
	"  -h, --help      this help; `qpass COMMAND --help` for a command's\n"
	"  -V, --version   the version\n"
	"\n"
	"PROFILE is a profile's path, or the name of one in " QP_CONFDIR "\n"
	"(NAME.json there; $QPASS_CONFDIR changes the directory).\n"
	"\n"
	"Exit status: 0 success; 1 failure (stderr says what and how to fix it);\n"
	"2 a wrong command line; 3 (up) QEMU ended on its own.\n";

int qp_cli_usage_error(const char *fmt, ...)
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
int qp_cli_finish(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "qpass: error: cannot write the output: %s\n", strerror(errno));
		return QP_EXIT_FAIL;
	}
	return rc;
}

void qp_cli_host_warnings(const struct qp_host *h)
{
	for (char **w = h->warnings; w && *w; w++)
		fprintf(stderr, "qpass: warning: %s\n", *w);
}

void qp_cli_plan_inputs(const struct qp_profile *p, struct qp_host *h)
{
	if (p->prealloc && !h->qemu_version)
		h->qemu_version = qp_probe_qemu_version(p->qemu);
}

/* Opens the system root and reads the host under it (flags, sel: qp_host_load_ex's),
 * and says the host's warnings. On failure the error is reported and nothing stays
 * open. */
int qp_cli_open_host(const struct globals *g, unsigned flags, const struct qp_pci_sel *sel,
		     size_t n_sel, struct qp_root *root, struct qp_host *h)
{
	qp_autoerr struct qp_err *err = NULL;
	if (qp_root_open(qp_root_choose(g->sysroot), root, &err) < 0) {
		qp_err_report(&err);
		return -1;
	}
	if (qp_host_load_ex(root, flags, sel, n_sel, h, &err) < 0) {
		qp_root_close(root);
		qp_err_report(&err);
		return -1;
	}
	qp_cli_host_warnings(h);
	return 0;
}

unsigned qp_cli_host_flags(const struct qp_profile *p, unsigned flags)
{
	if (p && p->gpus.count)
		flags |= QP_HOST_GPUS;
	if (p && qp_pool_needs_names(p))
		flags |= QP_HOST_NAMES;
	return flags;
}

void qp_cli_read_ledger(struct qp_ledger *l)
{
	qp_autoerr struct qp_err *err = NULL;
	if (qp_ledger_load(NULL, false, l, &err) < 0) {
		fprintf(stderr, "qpass: warning: %s; planned as if no VM ran\n", err->msg);
		*l = (struct qp_ledger){ 0 };
	}
}

/* The host with names, for the commands that read nothing else under the root. */
int qp_cli_load_host(const struct globals *g, const struct qp_pci_sel *sel, size_t n_sel,
		     struct qp_host *h)
{
	struct qp_root root;
	if (qp_cli_open_host(g, QP_HOST_NAMES, sel, n_sel, &root, h) < 0)
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
int qp_cli_emit(json_object *doc, char *text)
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
		return qp_cli_usage_error("%s: which profile? (qpass %s PROFILE)", cmd, cmd);
	return qp_cli_usage_error("%s: one profile at a time", cmd);
}

const char *qp_cli_confdir(void)
{
	const char *d = secure_getenv("QPASS_CONFDIR");
	return d && *d ? d : QP_CONFDIR;
}

/* Where PROFILE is: the file it names when it is a path (a '/', or .json at its end)
 * or a file is there; else it names a VM, whose profile is CONFDIR/NAME.json. NULL
 * when neither is there (said). */
static char *profile_path(const char *arg, bool *by_name)
{
	struct stat st;
	*by_name = false;
	if (strchr(arg, '/') || (strlen(arg) > 5 && !strcmp(arg + strlen(arg) - 5, ".json")) ||
	    stat(arg, &st) == 0 || !qp_vm_name_ok(arg))
		return qp_xstrdup(arg);
	char *path = qp_xasprintf("%s/%s.json", qp_cli_confdir(), arg);
	if (stat(path, &st) == 0) {
		*by_name = true;
		return path;
	}
	fprintf(stderr, "qpass: error: no profile %s: no file %s here, and no %s\n"
		"  hint: give the profile's path, or put it in %s/ as %s.json (QPASS_CONFDIR "
		"changes that directory)\n", arg, arg, path, qp_cli_confdir(), arg);
	free(path);
	return NULL;
}

/* Reads a profile, or reports why not; the state directory comes from the
 * environment. */
int qp_cli_load_profile(const char *arg, struct qp_profile *p)
{
	qp_autoerr struct qp_err *err = NULL;
	bool by_name;
	qp_autofree char *path = profile_path(arg, &by_name);
	if (!path)
		return -1;
	if (qp_profile_load(path, p, &err) < 0) {
		qp_err_report(&err);
		return -1;
	}
	/* Found by name, it must bear that name: qpass@NAME.service, `down NAME` and
	 * `restore NAME` all find the VM by it. */
	if (by_name && strcmp(p->name, arg) != 0) {
		fprintf(stderr, "qpass: error: %s: the profile found for %s is named \"%s\": "
			"`qpass down %s` and `restore %s` would not find its VM\n"
			"  hint: set \"name\": \"%s\" in it, or rename it %s/%s.json\n",
			path, arg, p->name, arg, arg, arg, qp_cli_confdir(), p->name);
		qp_profile_free(p);
		return -1;
	}
	p->state_dir = state_dir();
	return 0;
}

int qp_cli_bad_option(const char *cmd, int c, char **argv)
{
	const char *opt = argv[optind - 1];
	char pre[64] = "";
	if (cmd)
		snprintf(pre, sizeof(pre), "%s: ", cmd);
	static const char *const values[][2] = {
		{ "--sysroot", "DIR" }, { "--device", "ADDR" }, { "-d", "ADDR" },
		{ "--timeout", "S" }, { "-t", "S" }, { "--stop-timeout", "S" },
	};
	const char *what = "VALUE";
	for (size_t i = 0; i < QP_ARRAY_SIZE(values); i++)
		if (!strcmp(opt, values[i][0]))
			what = values[i][1];
	if (c == ':')
		return qp_cli_usage_error("%soption '%s' needs a value (%s %s)", pre, opt, opt, what);
	return qp_cli_usage_error("%sunknown option '%s'", pre, opt);
}

int qp_cli_seconds(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *s && !*end && v >= 1 && v <= 86400 ? (int)v : -1;
}

int qp_cli_parse_flags(struct globals *g, int argc, char **argv, const char *usage,
		       unsigned allow, struct flags *f)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "stop-timeout", required_argument, NULL, 'T' },
		{ "sysroot", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	optind = 0;
	opterr = 0;
	const char *env = (allow & QP_FLAG_STOP) ? secure_getenv("QPASS_STOP_TIMEOUT") : NULL;
	if (env && *env && (f->stop_timeout = qp_cli_seconds(env)) < 0)
		return qp_cli_usage_error("%s: QPASS_STOP_TIMEOUT=%s: seconds, 1 to 86400",
					  argv[0], env);
	while ((c = getopt_long(argc, argv, ":ajh", opts, NULL)) != -1) {
		if (c == 'a' && !(allow & QP_FLAG_ALL))
			return qp_cli_bad_option(argv[0], '?', argv);
		if (c == 'T' && !(allow & QP_FLAG_STOP))
			return qp_cli_usage_error("%s: unknown option '--stop-timeout' (`up` takes "
						  "it)", argv[0]);
		switch (c) {
		case 'a':
			f->all = true;
			break;
		case 'j':
			f->json = true;
			break;
		case 'T':
			if ((f->stop_timeout = qp_cli_seconds(optarg)) < 0)
				return qp_cli_usage_error("%s: --stop-timeout takes seconds, 1 to "
							  "86400", argv[0]);
			break;
		case 's':
			g->sysroot = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return qp_cli_finish(QP_EXIT_OK);
		default:
			return qp_cli_bad_option(argv[0], c, argv);
		}
	}
	return -1;
}

/* The one NAME argument left, or every name all() gives. */
char **qp_cli_names(int argc, char **argv, char **(*all)(void))
{
	if (optind >= argc)
		return all();
	char **v = qp_xcalloc(2, sizeof(char *));
	v[0] = qp_xstrdup(argv[optind]);
	return v;
}

/* What `plan` and `up` start with: their options, one PROFILE argument, the profile
 * read. -1 to go on (*p loaded), else the exit status. */
int qp_cli_profile_command(struct globals *g, int argc, char **argv, const char *usage,
			   bool json_ok, unsigned allow, struct flags *f, struct qp_profile *p)
{
	int rc = qp_cli_parse_flags(g, argc, argv, usage, allow, f);
	if (rc >= 0)
		return rc;
	if (f->json && !json_ok)
		return qp_cli_usage_error("%s: unknown option '--json'", argv[0]);
	if ((rc = one_profile(argv[0], argc)) >= 0)
		return rc;
	return qp_cli_load_profile(argv[optind], p) < 0 ? QP_EXIT_FAIL : -1;
}

struct command {
	const char *name;
	int (*run)(struct globals *g, int argc, char **argv);
};

static const struct command commands[] = {
	{ "list", qp_cmd_list },
	{ "check", qp_cmd_check },
	{ "plan", qp_cmd_plan },
	{ "up", qp_cmd_up },
	{ "down", qp_cmd_down },
	{ "status", qp_cmd_status },
	{ "qmp", qp_cmd_qmp },
	{ "pin", qp_cmd_pin },
	{ "bind", qp_cmd_bind_unbind },
	{ "unbind", qp_cmd_bind_unbind },
	{ "restore", qp_cmd_restore },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < QP_ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* An unknown command, with the nearest one when it is near (a typo), or a command the
 * word begins. */
static int unknown_command(const char *name)
{
	const char *best = NULL;
	size_t best_d = strlen(name) <= 3 ? 2 : 3;
	for (size_t i = 0; i <= QP_ARRAY_SIZE(commands); i++) {
		const char *c = i < QP_ARRAY_SIZE(commands) ? commands[i].name : "help";
		size_t d = qp_edit_distance(name, c, true);
		if (d < best_d || (*name && !strncmp(c, name, strlen(name)) && !best)) {
			best = c;
			best_d = d < best_d ? d : best_d;
		}
	}
	if (best)
		return qp_cli_usage_error("unknown command '%s'; did you mean '%s'?", name, best);
	return qp_cli_usage_error("unknown command '%s'", name);
}

/* `qpass help [COMMAND]`: the help of qpass, or of COMMAND (its --help). */
static int help(struct globals *g, int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stdout);
		return qp_cli_finish(QP_EXIT_OK);
	}
	if (argc > 2)
		return qp_cli_usage_error("help: one command at a time (qpass help COMMAND)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return qp_cli_finish(QP_EXIT_OK);
	}
	const struct command *cmd = find_command(argv[1]);
	if (!cmd)
		return unknown_command(argv[1]);
	char name[32], opt[] = "--help";
	snprintf(name, sizeof(name), "%s", cmd->name);
	char *args[] = { name, opt, NULL };
	return cmd->run(g, 2, args);
}

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
	while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			g.sysroot = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return qp_cli_finish(QP_EXIT_OK);
		case 'V':
			printf("qpass %s\n", QP_VERSION);
			return qp_cli_finish(QP_EXIT_OK);
		default:
			return qp_cli_bad_option(NULL, c, argv);
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return QP_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (!strcmp(name, "help"))
		return help(&g, argc - optind, argv + optind);
	const struct command *cmd = find_command(name);
	if (cmd)
		return cmd->run(&g, argc - optind, argv + optind);
	return unknown_command(name);
}
