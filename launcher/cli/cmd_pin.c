/* `qpass pin`: moves a running VM's vCPU, or QEMU's other threads, to other CPUs,
 * through its supervisor (run/control.h), which checks, applies, reads back and keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsonout.h"
#include "base/util.h"
#include "cli/cli-int.h"
#include "run/control.h"

static const char pin_usage[] =
	"Usage: qpass pin NAME VCPU CPU\n"
	"       qpass pin NAME emulator CPUS\n"
	"\n"
	"Moves vCPU VCPU of the running VM NAME to host CPU CPU, or QEMU's other threads\n"
	"(main loop, iothreads, workers) to CPUS (\"2-3\", \"4,32\"), while the guest runs.\n"
	"The same rules as `qpass up`: online CPUs of the host, none on a core another\n"
	"VM holds unless both profiles set \"share_cpus\". The supervisor applies it, reads\n"
	"it back from /proc, and keeps it: `qpass status` shows it, and a QEMU started\n"
	"again (on_reboot, on_crash restart) gets it. Prints the VM's pins as JSON.\n"
	"Exit status 0 when it is applied, 1 otherwise.\n";

int qp_cmd_pin(struct globals *g, int argc, char **argv)
{
	(void)g;
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(pin_usage, stdout);
		return qp_cli_finish(QP_EXIT_OK);
	}
	if (argc != 4)
		return qp_cli_usage_error("pin: qpass pin NAME VCPU CPU, or qpass pin NAME emulator "
					  "CPUS%s", "");
	int vcpu = -1;
	if (strcmp(argv[2], "emulator")) {
		char *end;
		long v = strtol(argv[2], &end, 10);
		if (*end || end == argv[2] || v < 0 || v > 1023)
			return qp_cli_usage_error("pin: '%s' is neither a vCPU number nor "
						  "\"emulator\"", argv[2]);
		vcpu = (int)v;
	}
	struct qp_cpulist cpus = { 0 };
	qp_autoerr struct qp_err *err = NULL;
	if (qp_cpulist_parse(argv[3], &cpus, &err) < 0 || !cpus.n) {
		qp_cpulist_free(&cpus);
		return qp_cli_usage_error("pin: '%s' is not a list of CPUs like \"2\" or \"2-3,8\"",
					  argv[3]);
	}
	json_object *reply;
	int rc = qp_ctl_call(argv[1], qp_ctl_req_pin(vcpu, &cpus), &reply, &err);
	qp_cpulist_free(&cpus);
	if (rc < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	json_object *out = json_object_new_object();
	qp_json_add(out, "vcpu_pins", json_object_get(json_object_object_get(reply, "vcpu_pins")));
	qp_json_add(out, "emulator_cpus",
		    json_object_get(json_object_object_get(reply, "emulator_cpus")));
	json_object_put(reply);
	if (qp_json_print(stdout, out, &err) < 0) {
		qp_err_report(&err);
		return QP_EXIT_FAIL;
	}
	return qp_cli_finish(QP_EXIT_OK);
}
