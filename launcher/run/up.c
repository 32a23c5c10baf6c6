/* `qpass up`: start QEMU paused as the plan says, place every thread, let the guest
 * run, then supervise it in the foreground until it ends.
 *
 * The order: memlock raised and the OVMF variables made (before anything is touched);
 * the runtime directory RUNDIR/NAME taken, locked (one VM per name); the devices locked,
 * bound to vfio-pci and handed to run_as (run/devices.c); the control socket; then, for
 * every start of QEMU, the launch (run/launch.c): the QMP socket bound and listening,
 * handed to QEMU as fd 3; vfork; the child binds its memory to the node, drops to
 * run_as, closes stray fds, asks to die with qpass, and execs QEMU (-S); the parent
 * connects to QMP, pins every vCPU thread to its CPU and every other thread to the
 * emulator CPUs, reads the pins back from /proc, and only then lets the guest run.
 * Then the supervision (run/supervise.c), and everything given back in reverse. */
#include "run/up.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/child.h"
#include "base/exit.h"
#include "base/files.h"
#include "base/jsonout.h"
#include "base/rundir.h"
#include "base/util.h"
#include "run/control.h"
#include "run/ledger.h"
#include "run/notify.h"
#include "run/sysfx.h"
#include "run/up-int.h"

/* What RUNDIR/NAME/state.json says of the VM once QEMU runs. */
static json_object *state_json(const struct vm *vm)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(vm->p->name));
	json_object_object_add(o, "qpass_pid", json_object_new_int(getpid()));
	json_object_object_add(o, "qemu_pid", json_object_new_int(vm->qemu));
	json_object_object_add(o, "started", json_object_new_int64((int64_t)vm->started));
	json_object_object_add(o, "numa_node", json_object_new_int(vm->plan->numa_node));
	json_object_object_add(o, "vcpu_pins", qp_json_ints(vm->pins, vm->plan->n_vcpus));
	json_object_object_add(o, "emulator_cpus", qp_json_cpus(&vm->emulator));
	json_object_object_add(o, "qmp", json_object_new_string(vm->qmp_path));
	return o;
}

/* The lease says what runs now, and where; a lease that cannot be written is said, not
 * fatal: the one written under the host lock already holds everything. */
static void update_lease(struct vm *vm, bool running)
{
	if (!vm->lease)
		return;
	vm->lease->qemu = (struct qp_holder){ vm->qemu, qp_proc_start(vm->qemu) };
	vm->lease->running = running;
	qp_cpulist_free(&vm->lease->vcpu_cpus);
	for (size_t v = 0; v < vm->plan->n_vcpus; v++)
		qp_cpulist_add(&vm->lease->vcpu_cpus, vm->pins[v]);
	qp_cpulist_free(&vm->lease->emulator_cpus);
	qp_cpulist_copy(&vm->lease->emulator_cpus, &vm->emulator);
	struct qp_err *err = NULL;
	if (qp_ledger_write(vm->lease, &err) < 0) {
		qp_say(vm->p->name, "%s", err->msg);
		qp_err_free(err);
	}
}

void qp_up_write_state(struct vm *vm)
{
	update_lease(vm, vm->lease && vm->lease->running);
	qp_vmdir_write_state(&vm->dir, state_json(vm));
}

/* Starts QEMU paused, places it, lets it run. On failure QEMU is gone. */
static int start(struct vm *vm, struct qp_err **err)
{
	qp_notify_status("starting QEMU");
	if (qp_up_spawn(vm, err) < 0)
		return -1;
	update_lease(vm, false);
	if (qp_up_connect_qmp(vm, err) < 0 || qp_up_place(vm, err) < 0 ||
	    qp_up_qmp_ok(vm, "cont", NULL, err) < 0) {
		kill(vm->qemu, SIGKILL);
		while (qp_up_forward_output(vm))
			;
		waitpid(vm->qemu, NULL, 0);
		vm->qemu = 0;
		qp_qmp_close(vm->qmp);
		vm->qmp = NULL;
		qp_closep(&vm->out_fd);
		return -1;
	}
	vm->started = time(NULL);
	qp_vmdir_write_state(&vm->dir, state_json(vm));
	struct qp_buf b = { 0 };
	for (size_t v = 0; v < vm->plan->n_vcpus; v++)
		qp_buf_addf(&b, "%s%zu->%d", v ? " " : "", v, vm->pins[v]);
	qp_autofree char *pins = qp_buf_steal(&b);
	qp_autofree char *emu = qp_cpulist_fmt(&vm->emulator);
	char node[64] = "no NUMA binding";
	if (vm->plan->span) {
		size_t at = (size_t)snprintf(node, sizeof(node), "memory on nodes");
		for (size_t g = 0; g < vm->plan->n_memory_nodes && at < sizeof(node); g++)
			at += (size_t)snprintf(node + at, sizeof(node) - at, "%s%d", g ? "," : " ",
					       vm->plan->memory_nodes[g]);
	} else if (vm->plan->numa_node >= 0)
		snprintf(node, sizeof(node), "memory on node %d", vm->plan->numa_node);
	fprintf(stderr, "qpass: %s runs: qemu pid %d, QEMU %s; vCPU->CPU %s; emulator CPUs %s; "
		"%s; QMP %s\n", vm->p->name, (int)vm->qemu, qp_qmp_version(vm->qmp), pins, emu,
		node, vm->qmp_path);
	update_lease(vm, true);
	/* Ready only now: QEMU runs, every thread placed and read back, the guest going. */
	qp_notify_ready("running: %s; vCPU->CPU %s", node, pins);
	/* The devices' interrupts now: the guest enables its vectors as it boots, and
	 * status sends the later ones too. */
	qp_up_place_irqs(vm);
	return 0;
}

/* The VM's own copy of the OVMF variables (its UEFI settings and boot entries): made
 * once from the template, kept across runs, owned by run_as. */
static int make_ovmf_vars(const struct vm *vm, struct qp_err **err)
{
	const char *path = vm->plan->ovmf_vars;
	if (!path || access(path, F_OK) == 0)
		return 0;
	qp_autofree char *dir = qp_xstrndup(path, (size_t)(strrchr(path, '/') - path));
	if (qp_mkdir_p(dir, 0700, err) < 0)
		return -1;
	qp_autoclose int in = open(vm->p->ovmf_vars, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		qp_err_set(err, errno, "cannot open the OVMF variables template %s",
			   vm->p->ovmf_vars);
		return qp_err_hint(err, "install OVMF (apt-get install ovmf), or set \"ovmf\": "
				   "{\"vars\": PATH} in the profile");
	}
	qp_autofree char *tmp = qp_xasprintf("%s.tmp", path);
	qp_autoclose int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return qp_err_set(err, errno, "cannot create %s", tmp);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return qp_err_set(err, errno, "cannot write %s", tmp);
	if (n < 0 || fsync(out) < 0)
		return qp_err_set(err, errno, "cannot copy %s", vm->p->ovmf_vars);
	if (vm->has_user && fchown(out, vm->uid, vm->gid) < 0)
		return qp_err_set(err, errno, "cannot give %s to %s", tmp, vm->p->run_as);
	if (rename(tmp, path) < 0)
		return qp_err_set(err, errno, "cannot rename %s", tmp);
	return 0;
}

/* The memlock QEMU needs (VFIO pins all guest RAM), raised here, before anything is
 * touched, so that a limit that cannot be raised is said up front. QEMU inherits it. */
static int raise_memlock(const struct vm *vm, struct qp_err **err)
{
	char msg[256];
	if (!vm->plan->n_devs || qp_fx_memlock(vm->plan->memlock_bytes, msg, sizeof(msg)) == 0)
		return 0;
	qp_err_set(err, 0, "%s: QEMU needs it for guest RAM + 1 GiB per VFIO device", msg);
	return qp_err_hint(err, "run qpass as root with CAP_SYS_RESOURCE, or raise the hard "
			   "memlock limit (limits.conf, or LimitMEMLOCK= in a systemd unit)");
}

/* Takes RUNDIR/NAME and the devices, and listens on the control socket. */
static int take(struct vm *vm, struct qp_err **err)
{
	if (qp_vmdir_take(vm->p->name, &vm->dir, err) < 0)
		return -1;
	vm->qmp_path = qp_rundir_vm(vm->p->name, QP_VM_QMP);
	/* A SIGTERM or SIGINT now ends a sysfs write's wait at once; the give-back that
	 * follows runs to its end. */
	qp_child_cancel_on(vm->stop_fd);
	if (vm->plan->n_devs)
		qp_notify_status("binding %zu device%s to vfio-pci", vm->plan->n_devs,
				 vm->plan->n_devs == 1 ? "" : "s");
	int rc = qp_devices_take(&vm->devs, err);
	qp_child_cancel_on(-1);
	if (rc < 0)
		return -1;
	vm->ctl_fd = qp_ctl_listen(vm->p->name, err);
	return vm->ctl_fd < 0 ? -1 : 0;
}

/* Where the threads and interrupts go, to begin with: as the plan says. */
static void init_placement(struct vm *vm)
{
	const struct qp_plan *plan = vm->plan;
	vm->pins = qp_xcalloc(plan->n_vcpus ? plan->n_vcpus : 1, sizeof(int));
	memcpy(vm->pins, plan->vcpu_pins, plan->n_vcpus * sizeof(int));
	qp_cpulist_copy(&vm->emulator, &plan->emulator_cpus);
	if (vm->p->irq_cpus == QP_IRQ_EMULATOR)
		qp_cpulist_copy(&vm->irq_cpus, &plan->emulator_cpus);
	for (size_t v = 0; vm->p->irq_cpus == QP_IRQ_VCPUS && v < plan->n_vcpus; v++)
		qp_cpulist_add(&vm->irq_cpus, plan->vcpu_pins[v]);
	if (!plan->span || vm->p->irq_cpus == QP_IRQ_LEAVE)
		return;
	/* Across nodes, each device's to CPUs of its own node: the emulator's on the first
	 * (with "emulator"), else that node's vCPUs'. */
	size_t k = plan->n_memory_nodes, per = plan->n_vcpus / k;
	vm->irq_node_cpus = qp_xcalloc(k, sizeof(*vm->irq_node_cpus));
	for (size_t g = 0; g < k; g++) {
		if (g == 0 && vm->p->irq_cpus == QP_IRQ_EMULATOR) {
			qp_cpulist_copy(&vm->irq_node_cpus[g], &plan->emulator_cpus);
			continue;
		}
		for (size_t v = g * per; v < g * per + per; v++)
			qp_cpulist_add(&vm->irq_node_cpus[g], plan->vcpu_pins[v]);
	}
}

static void free_placement(struct vm *vm)
{
	free(vm->pins);
	free(vm->vcpu_tids);
	qp_cpulist_free(&vm->emulator);
	qp_cpulist_free(&vm->irq_cpus);
	for (size_t g = 0; vm->irq_node_cpus && g < vm->plan->n_memory_nodes; g++)
		qp_cpulist_free(&vm->irq_node_cpus[g]);
	free(vm->irq_node_cpus);
}

/* The signals nobody read (the supervisor reads its own): a stop asked for while the
 * VM started is said with the failure, not left pending to kill qpass before it
 * prints why. */
static void stopped_while_starting(struct vm *vm, int rc, struct qp_err **err)
{
	int asked = qp_child_stop_asked(vm->sig_fd);
	if (asked && rc < 0 && err && *err)
		qp_err_prefix(err, "asked to stop (%s) while the VM started, so nothing is left "
			      "taken", strsignal(asked));
}

int qp_up(const struct qp_plan *plan, const struct qp_host *host, const struct qp_root *root,
	  struct qp_lease *lease, const struct qp_up_opts *opts, struct qp_err **err)
{
	struct vm vm = { .plan = plan, .p = plan->profile, .root = root, .dir = { .lock_fd = -1 },
			 .sig_fd = -1, .stop_fd = -1, .out_fd = -1, .ctl_fd = -1, .proc = { .fd = -1 },
			 .lease = lease, .host = host,
			 .stop_timeout = opts ? opts->stop_timeout : 0 };
	if (vm.p->run_as) {
		struct passwd *pw = getpwnam(vm.p->run_as);
		if (!pw)
			return qp_err_set(err, 0, "%s: run_as: no user %s on this host", vm.p->file,
					  vm.p->run_as);
		vm.has_user = true;
		vm.uid = pw->pw_uid;
		vm.gid = pw->pw_gid;
	}
	init_placement(&vm);
	vm.devs = (struct qp_vm_devices){
		.plan = plan, .root = root, .name = vm.p->name,
		.user = vm.has_user ? vm.p->run_as : NULL, .uid = vm.uid, .gid = vm.gid,
	};
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &old);
	vm.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	sigdelset(&mask, SIGCHLD);
	vm.stop_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	int rc = -1;
	if (vm.sig_fd < 0 || vm.stop_fd < 0) {
		qp_err_set(err, errno, "signalfd");
		goto out;
	}
	if (raise_memlock(&vm, err) < 0 || make_ovmf_vars(&vm, err) < 0 ||
	    qp_root_open("/", &vm.proc, err) < 0 || take(&vm, err) < 0)
		goto out;
	for (;;) {
		if (start(&vm, err) < 0)
			goto out;
		enum outcome o = qp_up_supervise(&vm);
		qp_qmp_close(vm.qmp);
		vm.qmp = NULL;
		qp_closep(&vm.out_fd);
		if (o == OUT_RELAUNCH)
			continue;
		rc = o == OUT_STOPPED ? QP_EXIT_OK : QP_EXIT_QEMU;
		break;
	}
out:
	if (vm.plan->n_devs)
		qp_notify_stopping("giving the devices back");
	if (vm.qemu > 0) {
		kill(vm.qemu, SIGKILL);
		waitpid(vm.qemu, NULL, 0);
	}
	qp_qmp_close(vm.qmp);
	qp_closep(&vm.out_fd);
	qp_closep(&vm.ctl_fd);
	qp_devices_give_back(&vm.devs);
	if (vm.proc.path)
		qp_root_close(&vm.proc);
	qp_vmdir_release(&vm.dir);
	free(vm.qmp_path);
	free_placement(&vm);
	stopped_while_starting(&vm, rc, err);
	qp_closep(&vm.sig_fd);
	qp_closep(&vm.stop_fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
