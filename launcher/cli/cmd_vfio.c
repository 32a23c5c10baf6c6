/* The commands of binding by hand: bind, unbind, and restore after a crash. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/child.h"
#include "base/files.h"
#include "base/rundir.h"
#include "base/util.h"
#include "cli/cli-int.h"
#include "probe/hostload.h"
#include "run/devices.h"
#include "run/ledger.h"
#include "run/vmdir.h"
#include "vfio/bind.h"
#include "vfio/journal.h"

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
	"that each driver link points there again.\n"
	"\n"
	"Both run under the host lock that `up` and `restore` take, and refuse a function\n"
	"that a VM has (naming it); bind refuses one it already has, unbind one it has not.\n"
	"SIGTERM or SIGINT during bind gives back what it changed, then exits 1.\n";

static const char restore_usage[] =
	"Usage: qpass [--sysroot DIR] restore [NAME]\n"
	"\n"
	"Replays the journal a VM's qpass left behind (killed, crashed, the host's power\n"
	"cut between bind and give-back): every function goes back to the driver and\n"
	"driver_override it had. Idempotent: run it again and nothing changes. Without\n"
	"NAME, every journal whose VM is not running, except `bind`'s own (restore that\n"
	"with `qpass unbind`, or `qpass restore manual`). A VM whose QEMU still runs\n"
	"without its qpass is left alone (after up to 5 s for that QEMU to die), and the\n"
	"pid to stop is said. First, the lease of every VM whose qpass and QEMU are both\n"
	"gone is reclaimed: its devices given back, and the CPUs and memory it held free\n"
	"again (as the next `qpass up` would). A function that another running VM has\n"
	"taken since stays in the journal, said, for a restore after that VM stops (exit\n"
	"status 1). All of it under the host lock that `up`, `bind` and `unbind` take, and\n"
	"each VM's journal under that VM's own lock (no `up NAME` starts meanwhile).\n";

/* The functions ADDR... name on the host: "04:00" is every function of the device. */
static int parse_selectors(char **args, int n, struct qp_pci_sel *sel, struct qp_err **err)
{
	for (int i = 0; i < n; i++) {
		bool has_func;
		if (qp_parse_pci_selector(args[i], &sel[i].addr, &has_func, err) < 0)
			return -1;
		sel[i].slot = !has_func;
	}
	return 0;
}

static int select_functions(const struct qp_host *h, char **args, const struct qp_pci_sel *sel,
			    int n, struct qp_pci_addr **out, size_t *count, struct qp_err **err)
{
	*out = NULL;
	*count = 0;
	for (int i = 0; i < n; i++) {
		if (!qp_host_select(h, &sel[i].addr, sel[i].slot, out, count)) {
			free(*out);
			*out = NULL;
			qp_err_set(err, 0, "there is no device %s on this host", args[i]);
			return qp_err_hint(err, "`qpass list --all` shows the host's devices");
		}
	}
	return 0;
}

/* Under the host lock: whether bind (or unbind) may change these functions. None may be
 * a VM's (its lease, or its device lock); bind takes none that `bind` already has,
 * unbind only those. */
static bool may_change(const struct qp_root *root, bool bind, const struct qp_pci_addr *addrs,
		       size_t n, struct qp_err **err)
{
	struct qp_ledger l;
	if (qp_ledger_load(root, false, &l, err) < 0)
		return false;
	for (size_t i = 0; i < n && !*err; i++) {
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&addrs[i], a);
		qp_autofree char *vm = qp_devices_holder(&l, &addrs[i], NULL);
		bool mine = qp_vfio_journaled("manual", &addrs[i]);
		if (vm) {
			qp_err_set(err, 0, "%s is the VM %s's now: not %s under the VM", a, vm,
				   bind ? "binding it" : "giving it back");
			qp_err_hint(err, "stop that VM first (`qpass down %s`)", vm);
		} else if (bind && mine) {
			qp_err_set(err, 0, "%s is already bound by `qpass bind`", a);
			qp_err_hint(err, "`qpass unbind %s` gives it back", a);
		} else if (!bind && !mine) {
			qp_err_set(err, 0, "%s was not bound by `qpass bind`: nothing to give back",
				   a);
		}
	}
	qp_ledger_free(&l);
	return !*err;
}

/* bind's signals: SIGTERM, SIGINT and SIGHUP wait in a signalfd that ends a hung sysfs
 * write's wait (base/child.h), so that the roll-back runs and qpass says why. */
static int stop_signals(sigset_t *old)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, old);
	int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	qp_child_cancel_on(fd);
	return fd;
}

/* Reads what came (said with the failure), and lets the signals be again. */
static void stop_signals_end(int fd, const sigset_t *old, struct qp_err **err)
{
	qp_child_cancel_on(-1);
	int asked = qp_child_stop_asked(fd);
	if (fd >= 0)
		close(fd);
	if (asked && *err)
		qp_err_prefix(err, "asked to stop (%s), so every change is given back",
			      strsignal(asked));
	sigprocmask(SIG_SETMASK, old, NULL);
}

int qp_cmd_bind_unbind(struct globals *g, int argc, char **argv)
{
	bool bind = !strcmp(argv[0], "bind");
	struct flags f = { 0 };
	int rc = qp_cli_parse_flags(g, argc, argv, bind_usage, 0, &f);
	if (rc >= 0)
		return rc;
	if (f.json)
		return qp_cli_usage_error("%s: unknown option '--json'", argv[0]);
	if (optind >= argc)
		return qp_cli_usage_error("%s: which devices? (qpass %s 0000:04:00.0 ...)", argv[0],
					  argv[0]);
	qp_autoerr struct qp_err *err = NULL;
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	struct qp_host h;
	struct qp_pci_addr *addrs = NULL;
	size_t n = 0;
	int n_sel = argc - optind;
	qp_autofree struct qp_pci_sel *sel = qp_xcalloc((size_t)n_sel, sizeof(*sel));
	rc = QP_EXIT_FAIL;
	if (parse_selectors(argv + optind, n_sel, sel, &err) == 0 &&
	    qp_host_load_ex(&root, 0, sel, (size_t)n_sel, &h, &err) == 0) {
		int lock = -1;
		if (select_functions(&h, argv + optind, sel, n_sel, &addrs, &n, &err) == 0 &&
		    (lock = qp_ledger_lock(&err)) >= 0 && may_change(&root, bind, addrs, n, &err)) {
			sigset_t old;
			int sfd = bind ? stop_signals(&old) : -1;
			int r = bind ? qp_vfio_bind(&root, "manual", addrs, n, &err)
				     : qp_vfio_restore(&root, "manual", addrs, n, &err);
			if (bind)
				stop_signals_end(sfd, &old, &err);
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
		qp_closep(&lock);
		qp_host_free(&h);
	}
	free(addrs);
	qp_root_close(&root);
	if (err)
		qp_err_report(&err);
	return rc;
}

/* Under the host lock: the leases of the VMs that are gone (run/ledger.h) reclaimed,
 * their devices given back and what they held freed, as the next `up` would; *l the
 * leases left. Returns how many were reclaimed. */
static size_t reclaim_leases(const struct qp_root *root, struct qp_ledger *l)
{
	qp_autoerr struct qp_err *err = NULL;
	*l = (struct qp_ledger){ 0 };
	qp_autofree char *dir = qp_rundir_lease(NULL);
	if (access(dir, F_OK) < 0)
		return 0;
	int n = qp_ledger_load(root, true, l, &err);
	if (n < 0) {
		qp_err_report(&err);
		*l = (struct qp_ledger){ 0 };
		return 0;
	}
	return (size_t)n;
}

/* Gives back what owner's journal holds, but the functions another running VM has
 * taken since (said, and left in the journal for a later restore). */
static int restore_owner(const struct qp_root *root, const struct qp_ledger *l,
			 const char *owner, struct qp_err **err)
{
	struct qp_journal j;
	if (qp_journal_load(owner, &j, err) < 0)
		return -1;
	struct qp_pci_addr *free_ = qp_xcalloc(j.n ? j.n : 1, sizeof(*free_));
	size_t n = 0;
	for (size_t i = 0; i < j.n; i++) {
		qp_autofree char *vm = qp_devices_holder(l, &j.e[i].addr, owner);
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&j.e[i].addr, a);
		if (vm)
			fprintf(stderr, "qpass: %s of %s's journal is the VM %s's now: left in the "
				"journal (run qpass restore %s again once %s stops)\n", a, owner, vm,
				owner, vm);
		else
			free_[n++] = j.e[i].addr;
	}
	int rc = n < j.n ? 1 : 0;
	if (n && qp_vfio_restore(root, owner, free_, n, err) < 0)
		rc = -1;
	qp_journal_free(&j);
	free(free_);
	return rc;
}

/* Restores owner o's journal unless its VM runs (or its QEMU still does): 1 when
 * restored. Failures set *rc. */
static int restore_one(const struct qp_root *root, const struct qp_ledger *l, const char *o,
		       bool named, int *rc)
{
	qp_autoerr struct qp_err *err = NULL;
	if (!qp_vfio_journaled(o, NULL)) {
		if (named)
			fprintf(stderr, "qpass: %s has no journal: nothing to restore\n", o);
		return 0;
	}
	/* No `up` of this name may start while its journal is replayed. */
	int hold = strcmp(o, "manual") ? qp_vmdir_hold(o) : -1;
	if (hold < 0 && strcmp(o, "manual") && errno != EWOULDBLOCK) {
		fprintf(stderr, "qpass: error: cannot lock the runtime directory of %s: "
			"%s\n", o, strerror(errno));
		*rc = QP_EXIT_FAIL;
		return 0;
	}
	if (hold < 0 && strcmp(o, "manual")) {
		fprintf(stderr, "qpass: %s is running; its qpass gives its devices back "
			"when it stops\n", o);
		return 0;
	}
	pid_t qemu = qp_vm_orphan_qemu(o);
	if (qemu) {
		qp_vmdir_unhold(o, hold);
		fprintf(stderr, "qpass: error: the QEMU of %s (pid %d) still runs without its "
			"qpass, and uses the devices: not giving them back under it\n"
			"  fix: stop it (kill %d), then run qpass restore %s again\n", o,
			(int)qemu, (int)qemu, o);
		*rc = QP_EXIT_FAIL;
		return 0;
	}
	int r = restore_owner(root, l, o, &err);
	qp_vmdir_unhold(o, hold);
	if (r < 0) {
		qp_err_report(&err);
		*rc = QP_EXIT_FAIL;
		return 0;
	}
	fprintf(stderr, "qpass: restored the devices of %s%s\n", o,
		r ? " that no other VM has taken" : "");
	if (r)
		*rc = QP_EXIT_FAIL;
	return 1;
}

int qp_cmd_restore(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = qp_cli_parse_flags(g, argc, argv, restore_usage, 0, &f);
	if (rc >= 0)
		return rc;
	if (f.json || argc - optind > 1)
		return qp_cli_usage_error("restore: qpass restore [NAME]%s", "");
	if (optind < argc && strcmp(argv[optind], "manual") && !qp_vm_name_ok(argv[optind]))
		return qp_cli_usage_error("restore: %s is not a VM name (1 to 64 letters, digits, "
					  "'.', '_' or '-', starting with a letter or digit)",
					  argv[optind]);
	char **owners = qp_cli_names(argc, argv, qp_vfio_journals);
	qp_autoerr struct qp_err *err = NULL;
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, &err) < 0) {
		qp_strv_free(owners);
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	rc = QP_EXIT_OK;
	/* Every change of who holds what is made under the host lock. */
	int lock = qp_ledger_lock(&err);
	if (lock < 0) {
		qp_strv_free(owners);
		qp_root_close(&root);
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	qp_autofree char *journals = qp_rundir_journal(NULL);
	qp_remove_stale_tmp(journals);  /* a qpass killed mid-save left them */
	struct qp_ledger l;
	size_t done = reclaim_leases(&root, &l);
	for (char **o = owners; *o; o++) {
		if (optind >= argc && !strcmp(*o, "manual"))
			continue;
		done += (size_t)restore_one(&root, &l, *o, optind < argc, &rc);
	}
	qp_ledger_free(&l);
	qp_closep(&lock);
	if (!done && rc == QP_EXIT_OK && optind >= argc)
		fprintf(stderr, "qpass: nothing to restore\n");
	qp_strv_free(owners);
	qp_root_close(&root);
	return rc;
}
