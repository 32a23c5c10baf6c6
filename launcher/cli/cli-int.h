/* What the commands share: for the files of cli/ only (cli.h is the interface). The
 * helpers report their own errors to stderr; they return -1 to go on, or an exit
 * status to stop with. */
#ifndef QP_CLI_INT_H
#define QP_CLI_INT_H

#include <json-c/json.h>
#include <stdbool.h>

#include "base/exit.h"
#include "base/root.h"
#include "core/host.h"
#include "core/ledger.h"
#include "profiles/profile.h"

/* The global options. */
struct globals {
	const char *sysroot;
};

/* What the read-only commands share: --json, --all (where it applies), --sysroot and
 * --help, in any order among the arguments. */
struct flags {
	bool json, all;
	int stop_timeout;  /* up --stop-timeout S (or $QPASS_STOP_TIMEOUT); 0: none */
};

/* The options a command takes beyond --json, --sysroot and --help. */
enum {
	QP_FLAG_ALL = 1,   /* --all */
	QP_FLAG_STOP = 2,  /* --stop-timeout S */
};

/* The usage error for getopt's answer c (':' an option without its value, else an
 * unknown option) in command cmd (NULL: the global options). */
int qp_cli_bad_option(const char *cmd, int c, char **argv);

/* A count of seconds on the command line (--timeout, --stop-timeout): 1 to 86400, else
 * -1. */
int qp_cli_seconds(const char *s);

/* "qpass: MSG" and "Try 'qpass --help'." on stderr; returns QP_EXIT_USAGE. */
int qp_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Flushes stdout and reports a failed write (a full disk, a closed pipe): rc, or
 * QP_EXIT_FAIL. */
int qp_cli_finish(int rc);

/* Opens the system root and reads the host under it (flags, sel: qp_host_load_ex's:
 * sel NULL is every device), and says the host's warnings. On failure the error is
 * reported and nothing stays open. */
int qp_cli_open_host(const struct globals *g, unsigned flags, const struct qp_pci_sel *sel,
		     size_t n_sel, struct qp_root *root, struct qp_host *h);

/* The VMs that run, for a plan or a check that only predicts: read without the lock,
 * the dead left out; when they cannot be read, none (with a warning). */
void qp_cli_read_ledger(struct qp_ledger *l);

/* Says the host's warnings (what was read, on stderr). */
void qp_cli_host_warnings(const struct qp_host *h);

/* flags, with what a profile's "gpus" needs read of the host (p may be NULL). */
unsigned qp_cli_host_flags(const struct qp_profile *p, unsigned flags);

/* What the planner needs beyond the host's sysfs for profile p: QEMU's version when the
 * VM preallocates (thread-context). */
void qp_cli_plan_inputs(const struct qp_profile *p, struct qp_host *h);

/* The host with names, for the commands that read nothing else under the root. */
int qp_cli_load_host(const struct globals *g, const struct qp_pci_sel *sel, size_t n_sel,
		     struct qp_host *h);

/* Prints a command's result: JSON when doc, else text; takes both. */
int qp_cli_emit(json_object *doc, char *text);

/* Reads a profile, or reports why not: arg is its path, or a VM's name whose profile is
 * in qp_cli_confdir(); the state directory comes from the environment
 * ($QPASS_STATEDIR). */
int qp_cli_load_profile(const char *arg, struct qp_profile *p);
/* Where profiles are found by name: $QPASS_CONFDIR, else the configured (/etc/qpass). */
const char *qp_cli_confdir(void);

/* Parses --json, --sysroot, --help and what allow (QP_FLAG_*) adds: -1 to go on, else
 * an exit status. */
int qp_cli_parse_flags(struct globals *g, int argc, char **argv, const char *usage,
		       unsigned allow, struct flags *f);

/* What `plan` and `up` start with: their options, one PROFILE argument, the profile
 * read. -1 to go on (*p loaded), else the exit status. */
int qp_cli_profile_command(struct globals *g, int argc, char **argv, const char *usage,
			   bool json_ok, unsigned allow, struct flags *f, struct qp_profile *p);

/* The NAME argument left after the options (a NULL-terminated vector of one), or, when
 * there is none, every name all() gives (the running VMs, the journals' owners). */
char **qp_cli_names(int argc, char **argv, char **(*all)(void));

/* The commands: argv[0] is the command's name. */
int qp_cmd_list(struct globals *g, int argc, char **argv);
int qp_cmd_check(struct globals *g, int argc, char **argv);
int qp_cmd_plan(struct globals *g, int argc, char **argv);
int qp_cmd_up(struct globals *g, int argc, char **argv);
int qp_cmd_down(struct globals *g, int argc, char **argv);
int qp_cmd_status(struct globals *g, int argc, char **argv);
int qp_cmd_qmp(struct globals *g, int argc, char **argv);
int qp_cmd_pin(struct globals *g, int argc, char **argv);
int qp_cmd_bind_unbind(struct globals *g, int argc, char **argv);
int qp_cmd_restore(struct globals *g, int argc, char **argv);

#endif
