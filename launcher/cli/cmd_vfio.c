/* The commands of binding by hand: bind, unbind, and restore after a crash. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/rundir.h"
#include "base/util.h"
#include "cli/cli-int.h"
#include "probe/hostload.h"
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
	"pid to stop is said. First, the lease of every VM whose qpass and QEMU are both\n"
	"gone is reclaimed: its devices given back, and the CPUs and memory it held free\n"
	"again (as the next `qpass up` would).\n";

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

int qp_cmd_bind_unbind(struct globals *g, int argc, char **argv)
{
	bool bind = !strcmp(argv[0], "bind");
	struct flags f = { 0 };
	int rc = qp_cli_parse_flags(g, argc, argv, bind_usage, false, &f);
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
		if (select_functions(&h, argv + optind, sel, n_sel, &addrs, &n, &err) == 0) {
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

/* The leases of the VMs that are gone (run/ledger.h): their devices given back and
 * what they held freed, as the next `up` would. Returns how many. */
static size_t reclaim_leases(const struct qp_root *root)
{
	qp_autoerr struct qp_err *err = NULL;
	qp_autofree char *dir = qp_rundir_lease(NULL);
	if (access(dir, F_OK) < 0)
		return 0;
	qp_autoclose int lock = qp_ledger_lock(&err);
	struct qp_ledger l;
	int n = lock < 0 ? -1 : qp_ledger_load(root, true, &l, &err);
	if (n < 0) {
		qp_err_report(&err);
		return 0;
	}
	qp_ledger_free(&l);
	return (size_t)n;
}

int qp_cmd_restore(struct globals *g, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = qp_cli_parse_flags(g, argc, argv, restore_usage, false, &f);
	if (rc >= 0)
		return rc;
	if (f.json || argc - optind > 1)
		return qp_cli_usage_error("restore: qpass restore [NAME]%s", "");
	char **owners = qp_cli_names(argc, argv, qp_vfio_journals);
	qp_autoerr struct qp_err *err = NULL;
	struct qp_root root;
	if (qp_root_open(qp_root_choose(g->sysroot), &root, &err) < 0) {
		qp_strv_free(owners);
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	rc = QP_EXIT_OK;
	size_t done = reclaim_leases(&root);
	for (char **o = owners; *o; o++) {
		if (optind >= argc && !strcmp(*o, "manual"))
			continue;
		if (!qp_vfio_journaled(*o, NULL)) {
			if (optind < argc)
				fprintf(stderr, "qpass: %s has no journal: nothing to restore\n", *o);
			continue;
		}
		if (qp_vm_running(*o)) {
			fprintf(stderr, "qpass: %s is running; its qpass gives its devices back "
				"when it stops\n", *o);
			continue;
		}
		pid_t qemu = qp_vm_orphan_qemu(*o);
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
