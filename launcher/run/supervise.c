/* `qpass up`, the supervision: until QEMU ends, its output forwarded, its QMP events
 * applied as the profile's lifecycle says (on_poweroff, on_reboot, on_crash), signals
 * turned into a graceful stop (ACPI power button, then quit, then SIGKILL, each stage
 * under a deadline), and the control socket's requests answered. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/jsonout.h"
#include "base/util.h"
#include "run/control.h"
#include "run/ledger.h"
#include "run/notify.h"
#include "run/up-int.h"

__attribute__((format(printf, 2, 3))) static void say(const struct vm *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qp_vsay(vm->p->name, fmt, ap);
	va_end(ap);
}

struct sup {
	bool stopping;      /* a graceful shutdown is under way */
	bool quitting;      /* quit was sent: QEMU's exit is expected */
	int64_t deadline;   /* for the current stage, 0: none */
	int64_t next_note;
	int timeout_s;      /* of the graceful stop under way */
	int quit_ms;        /* how long QEMU gets to quit before SIGKILL */
	int64_t watchdog_ms, next_watchdog;  /* the unit's watchdog (0: none) */
	bool relaunch;
	bool panicked;      /* GUEST_PANICKED came: its STOP is no news */
	bool qmp_lost;      /* QEMU's QMP socket closed or failed: signals instead */
	int status;         /* QEMU's wait status */
};

static void send_quiet(struct vm *vm, const char *cmd)
{
	struct qp_err *err = NULL;
	if (vm->qmp && qp_up_qmp_ok(vm, cmd, NULL, &err) < 0)
		say(vm, "%s", err->msg);
	qp_err_free(err);
}

static void quit(struct vm *vm, struct sup *s)
{
	if (s->quitting)
		return;
	s->quitting = true;
	s->deadline = qp_now_ms() + s->quit_ms;  /* then SIGKILL */
	qp_notify_stopping("stopping QEMU");
	if (s->qmp_lost)
		kill(vm->qemu, SIGHUP);  /* QEMU quits on it as on `quit` (TERM is held) */
	else
		send_quiet(vm, "quit");
}

/* A graceful stop: ACPI power button, then quit after timeout_ms, then SIGKILL. */
static void begin_shutdown(struct vm *vm, struct sup *s, int timeout_ms)
{
	if (s->stopping) {
		say(vm, "asked again: stopping QEMU now");
		quit(vm, s);
		return;
	}
	if (s->qmp_lost) {
		say(vm, "QMP is lost, so no ACPI power button: stopping QEMU");
		s->stopping = true;
		quit(vm, s);
		return;
	}
	s->stopping = true;
	s->timeout_s = (timeout_ms + 999) / 1000;
	s->deadline = qp_now_ms() + timeout_ms;
	s->next_note = qp_now_ms() + 10000;
	say(vm, "asking the guest to power off (ACPI), up to %d s", s->timeout_s);
	qp_notify_stopping("shutting down: the guest has up to %d s to power off", s->timeout_s);
	send_quiet(vm, "system_powerdown");
}

/* A stop asked by a signal. With a stop timeout (a scheduler's KillWait, a unit's
 * TimeoutStopSec), every stage fits in it: a quarter at most, and 5 s at most, for QEMU
 * to quit, as much (3 s at most) kept for giving the devices back, the rest (no more
 * than shutdown_timeout) for the guest to power off. */
static void stop_on_signal(struct vm *vm, struct sup *s)
{
	int64_t guest = (int64_t)vm->p->shutdown_timeout * 1000;
	if (vm->stop_timeout && !s->stopping) {
		int64_t total = (int64_t)vm->stop_timeout * 1000, quarter = total / 4;
		s->quit_ms = (int)(quarter < 5000 ? quarter : 5000);
		int64_t left = total - s->quit_ms - (quarter < 3000 ? quarter : 3000);
		if (left < guest)
			guest = left;
		say(vm, "to be gone within %d s (--stop-timeout): the guest gets %.1f s, QEMU "
		    "%.1f s to quit", vm->stop_timeout, (double)guest / 1000,
		    (double)s->quit_ms / 1000);
	}
	begin_shutdown(vm, s, (int)(guest > 0 ? guest : 1));
}

/* --- the control socket's requests: status, down, qmp ------------------------------ */

static json_object *status_json(struct vm *vm)
{
	const struct qp_plan *plan = vm->plan;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(vm->p->name));
	const char *state = "unknown";
	struct qp_qmp_msg r = { 0 };
	struct qp_err *err = NULL;
	if (vm->qmp && qp_qmp_execute(vm->qmp, "query-status", NULL, 5000, &r, &err) == 0 &&
	    r.kind == QP_QMP_RETURN)
		state = json_object_get_string(json_object_object_get(r.data, "status"));
	json_object_object_add(o, "state", json_object_new_string(state ? state : "unknown"));
	qp_qmp_msg_free(&r);
	qp_err_free(err);
	json_object_object_add(o, "qpass_pid", json_object_new_int(getpid()));
	json_object_object_add(o, "qemu_pid", json_object_new_int(vm->qemu));
	json_object_object_add(o, "uptime", json_object_new_int64((int64_t)(time(NULL) -
									    vm->started)));
	json_object_object_add(o, "numa_node", json_object_new_int(plan->numa_node));
	json_object_object_add(o, "vcpu_pins", qp_json_ints(vm->pins, plan->n_vcpus));
	json_object_object_add(o, "emulator_cpus", qp_json_cpus(&vm->emulator));
	json_object_object_add(o, "memory_nodes", qp_json_ints(plan->memory_nodes,
							      plan->n_memory_nodes));
	json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)vm->p->memory_mib));
	json_object *devs = json_object_new_array();
	for (size_t i = 0; i < plan->n_devs; i++) {
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&plan->devs[i].host, a);
		json_object_array_add(devs, json_object_new_string(a));
	}
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "qmp", json_object_new_string(vm->qmp_path));
	/* What the kernel says, beside that: vectors the guest enabled since are sent to
	 * their CPUs first. */
	qp_up_place_irqs(vm);
	struct qp_measured m;
	qp_up_measure(vm, &m);
	const struct qp_cpulist **want = qp_xcalloc(m.n_irqs + 1, sizeof(*want));
	for (size_t i = 0; i < m.n_irqs; i++)
		want[i] = qp_up_irq_target(vm, &m.irqs[i].dev);
	struct qp_promise promise = { vm->pins, plan->n_vcpus, &vm->emulator, plan->numa_node,
				      vm->irq_cpus.n ? &vm->irq_cpus : NULL, want };
	json_object_object_add(o, "placement", qp_placement_json(&m, &promise));
	free(want);
	qp_measured_free(&m);
	return o;
}

/* `qpass pin NAME VCPU|emulator CPUS`: checked as `up` checks (online CPUs of the
 * host, none on another VM's core unless both share), applied to the running QEMU and
 * read back, then recorded (state.json, the lease) so that a QEMU started again keeps
 * it. */
static json_object *pin_request(struct vm *vm, json_object *req)
{
	json_object *v = json_object_object_get(req, "vcpu");
	json_object *c = json_object_object_get(req, "cpus");
	int vcpu = json_object_is_type(v, json_type_int) ? json_object_get_int(v) : -1;
	if (vcpu >= (int)vm->plan->n_vcpus || vcpu < -1)
		return qp_ctl_reply_error("no such vCPU");
	struct qp_cpulist cpus = { 0 };
	for (size_t i = 0; json_object_is_type(c, json_type_array) &&
			   i < json_object_array_length(c); i++)
		qp_cpulist_add(&cpus, json_object_get_int(json_object_array_get_idx(c, i)));
	/* Under the host lock, as `up` places: nobody takes these CPUs meanwhile. */
	struct qp_err *err = NULL;
	struct qp_ledger ledger = { 0 };
	int lock = qp_ledger_lock(&err);
	int rc = lock < 0 ? -1 : qp_ledger_load(NULL, false, &ledger, &err);
	if (rc >= 0)
		rc = qp_up_check_pin(vm, &ledger, vcpu, &cpus, &err);
	if (rc == 0)
		rc = qp_up_repin(vm, vcpu, &cpus, &err);
	if (rc == 0)
		qp_up_write_state(vm);
	qp_closep(&lock);
	qp_ledger_free(&ledger);
	qp_cpulist_free(&cpus);
	if (rc < 0) {
		json_object *e = qp_ctl_reply_error(err->msg);
		qp_err_free(err);
		return e;
	}
	qp_autofree char *emu = qp_cpulist_fmt(&vm->emulator);
	if (vcpu >= 0)
		say(vm, "vCPU %d pinned to CPU %d", vcpu, vm->pins[vcpu]);
	else
		say(vm, "QEMU's other threads pinned to CPUs %s", emu);
	json_object *o = qp_ctl_reply();
	json_object_object_add(o, "vcpu_pins", qp_json_ints(vm->pins, vm->plan->n_vcpus));
	json_object_object_add(o, "emulator_cpus", qp_json_cpus(&vm->emulator));
	return o;
}

/* What the control socket's handler needs. */
struct ctl_ctx {
	struct vm *vm;
	struct sup *s;
};

/* The supervisor's answers to control requests (run/control.h has the wire). */
static json_object *handle_request(void *ctx, json_object *req)
{
	struct vm *vm = ((struct ctl_ctx *)ctx)->vm;
	struct sup *s = ((struct ctl_ctx *)ctx)->s;
	json_object *cmd = json_object_object_get(req, "command");
	const char *c = json_object_is_type(cmd, json_type_string) ? json_object_get_string(cmd)
								   : "";
	json_object *o = qp_ctl_reply();
	if (!strcmp(c, "status")) {
		json_object_object_add(o, "status", status_json(vm));
	} else if (!strcmp(c, "down")) {
		json_object *f = json_object_object_get(req, "force");
		json_object *t = json_object_object_get(req, "timeout");
		int timeout = json_object_is_type(t, json_type_int) ? json_object_get_int(t)
								   : vm->p->shutdown_timeout;
		bool force = json_object_get_boolean(f);
		say(vm, "%s asked over the control socket", force ? "a forced stop" : "a stop");
		if (force)
			quit(vm, s);
		else
			begin_shutdown(vm, s, (timeout > 0 ? timeout : 1) * 1000);
		json_object_object_add(o, "action",
				       json_object_new_string(force ? "quit" : "powerdown"));
		json_object_object_add(o, "timeout", json_object_new_int(force ? 0 : s->timeout_s));
		json_object_object_add(o, "qpass_pid", json_object_new_int(getpid()));
	} else if (!strcmp(c, "qmp")) {
		json_object *ex = json_object_object_get(req, "execute");
		json_object *args = json_object_object_get(req, "arguments");
		if (!json_object_is_type(ex, json_type_string) || !vm->qmp) {
			json_object_put(o);
			return qp_ctl_reply_error(vm->qmp ? "a qmp request needs \"execute\""
							  : "QMP is not connected");
		}
		struct qp_qmp_msg r;
		struct qp_err *err = NULL;
		if (qp_qmp_execute(vm->qmp, json_object_get_string(ex), json_object_get(args),
				   QMP_TIMEOUT_MS, &r, &err) < 0) {
			json_object_put(o);
			json_object *e = qp_ctl_reply_error(err->msg);
			qp_err_free(err);
			return e;
		}
		json_object *reply = json_object_new_object();
		json_object_object_add(reply, r.kind == QP_QMP_RETURN ? "return" : "error",
				       json_object_get(r.data));
		json_object_object_add(o, "reply", reply);
		qp_qmp_msg_free(&r);
	} else if (!strcmp(c, "pin")) {
		json_object_put(o);
		return pin_request(vm, req);
	} else {
		json_object_put(o);
		return qp_ctl_reply_error("unknown command (status, down, qmp, pin)");
	}
	return o;
}

/* The guest crashed (panicked, or QEMU stopped it with an internal error): on_crash. */
static void on_crash(struct vm *vm, struct sup *s, const char *what)
{
	const struct qp_profile *p = vm->p;
	if (p->on_crash == QP_ACT_RESTART) {
		say(vm, "%s: on_crash restart starts it again", what);
		s->relaunch = true;
		quit(vm, s);
	} else if (p->on_crash == QP_ACT_PRESERVE) {
		say(vm, "%s: on_crash preserve keeps it paused", what);
		send_quiet(vm, "stop");
	} else {
		say(vm, "%s: on_crash destroy", what);
		quit(vm, s);
	}
}

/* QEMU stopped the guest: a crash when its run state says so (internal-error: KVM
 * could not go on; guest-panicked without a pvpanic event). */
static void on_stop(struct vm *vm, struct sup *s)
{
	if (s->stopping || s->quitting)
		return;
	struct qp_qmp_msg r;
	struct qp_err *err = NULL;
	if (qp_qmp_execute(vm->qmp, "query-status", NULL, QMP_TIMEOUT_MS, &r, &err) < 0) {
		qp_err_free(err);
		return;
	}
	json_object *st = r.kind == QP_QMP_RETURN ? json_object_object_get(r.data, "status")
						  : NULL;
	const char *status = st ? json_object_get_string(st) : "";
	if (!strcmp(status, "internal-error"))
		on_crash(vm, s, "QEMU stopped the guest with an internal error");
	else if (!strcmp(status, "guest-panicked"))
		on_crash(vm, s, "the guest panicked");
	qp_qmp_msg_free(&r);
}

static void on_event(struct vm *vm, struct sup *s, struct qp_qmp_msg *ev)
{
	const struct qp_profile *p = vm->p;
	if (ev->kind == QP_QMP_BAD) {
		say(vm, "QMP: dropped a message from QEMU that could not be read (%s); reading "
		    "on", ev->bad);
		return;
	}
	json_object *guest = ev->data ? json_object_object_get(ev->data, "guest") : NULL;
	bool by_guest = guest && json_object_get_boolean(guest);
	if (!strcmp(ev->event, "SHUTDOWN")) {
		if (s->quitting)
			return;
		if (s->stopping || !by_guest || p->on_poweroff == QP_ACT_DESTROY) {
			say(vm, "the guest powered off");
			quit(vm, s);
		} else if (p->on_poweroff == QP_ACT_RESTART) {
			say(vm, "the guest powered off: on_poweroff restart");
			send_quiet(vm, "system_reset");
			send_quiet(vm, "cont");
		} else {
			say(vm, "the guest powered off: on_poweroff preserve keeps QEMU paused");
		}
	} else if (!strcmp(ev->event, "RESET") && by_guest) {
		if (p->on_reboot == QP_ACT_DESTROY) {
			say(vm, "the guest rebooted: on_reboot destroy");
			quit(vm, s);
		} else if (p->on_reboot == QP_ACT_PRESERVE) {
			say(vm, "the guest rebooted: on_reboot preserve pauses it");
			send_quiet(vm, "stop");
		} else {
			say(vm, "the guest rebooted");
		}
	} else if (!strcmp(ev->event, "GUEST_PANICKED")) {
		s->panicked = true;
		on_crash(vm, s, "the guest panicked");
	} else if (!strcmp(ev->event, "STOP") && !s->panicked) {
		on_stop(vm, s);
	}
}

/* --- the loop ---------------------------------------------------------------------- */

/* How long poll may wait: until the current stage's deadline, the next progress note
 * while the guest powers off, or the next watchdog ping; -1 when none is due. */
static int poll_timeout(const struct sup *s)
{
	int64_t t = s->deadline;
	if (s->stopping && !s->quitting && s->next_note && (!t || s->next_note < t))
		t = s->next_note;
	if (s->next_watchdog && (!t || s->next_watchdog < t))
		t = s->next_watchdog;
	if (!t)
		return -1;
	return (int)(t > qp_now_ms() ? t - qp_now_ms() : 0);
}

/* WATCHDOG=1 when it is due: the loop runs, so the supervisor is alive. */
static void on_watchdog(struct sup *s)
{
	if (!s->next_watchdog || qp_now_ms() < s->next_watchdog)
		return;
	qp_notify_watchdog();
	s->next_watchdog = qp_now_ms() + s->watchdog_ms;
}

/* SIGTERM, SIGINT, SIGHUP: a graceful stop (a second one: at once). */
static void on_signals(struct vm *vm, struct sup *s)
{
	struct signalfd_siginfo si;
	while (read(vm->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		stop_on_signal(vm, s);
	}
}

/* Whether QEMU has ended, and then how (said, and in *o). */
static bool ended(struct vm *vm, struct sup *s, bool out_open, enum outcome *o)
{
	int status;
	if (waitpid(vm->qemu, &status, WNOHANG) != vm->qemu)
		return false;
	while (out_open && qp_up_forward_output(vm))
		;
	vm->qemu = 0;
	s->status = status;
	if (s->quitting || (WIFEXITED(status) && WEXITSTATUS(status) == 0 && s->stopping)) {
		*o = s->relaunch ? OUT_RELAUNCH : OUT_STOPPED;
		if (!s->relaunch)
			say(vm, "QEMU stopped");
		return true;
	}
	if (WIFSIGNALED(status))
		say(vm, "QEMU died on its own: killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		say(vm, "QEMU ended on its own with exit status %d", WEXITSTATUS(status));
	*o = OUT_DIED;
	return true;
}

/* The stages' deadlines: a note every 10 s while the guest powers off; quit when it
 * did not in time; SIGKILL when QEMU did not quit. */
static void on_deadline(struct vm *vm, struct sup *s)
{
	int64_t t = qp_now_ms();
	if (s->stopping && !s->quitting && s->next_note && t >= s->next_note) {
		say(vm, "waiting for the guest to power off (%lld s left)",
		    (long long)((s->deadline - t) / 1000));
		s->next_note = t + 10000;
	}
	if (!s->deadline || t < s->deadline)
		return;
	if (!s->quitting) {
		say(vm, "the guest did not power off within %d s: stopping QEMU", s->timeout_s);
		quit(vm, s);
	} else {
		say(vm, "QEMU did not quit: killing it");
		kill(vm->qemu, SIGKILL);
		s->deadline = 0;
	}
}

enum outcome qp_up_supervise(struct vm *vm)
{
	struct sup s = { .quit_ms = 5000, .watchdog_ms = qp_notify_watchdog_ms() };
	if (s.watchdog_ms)
		s.next_watchdog = qp_now_ms();
	struct ctl_ctx ctx = { vm, &s };
	bool out_open = true;
	for (;;) {
		struct pollfd fds[4] = {
			{ .fd = vm->sig_fd, .events = POLLIN },
			{ .fd = out_open ? vm->out_fd : -1, .events = POLLIN },
			{ .fd = !s.qmp_lost && vm->qmp ? qp_qmp_fd(vm->qmp) : -1, .events = POLLIN },
			{ .fd = vm->ctl_fd, .events = POLLIN },
		};
		int rc = poll(fds, 4, poll_timeout(&s));
		if (rc < 0 && errno != EINTR)
			break;
		if (fds[1].revents && !qp_up_forward_output(vm))
			out_open = false;
		if (fds[2].revents) {
			struct qp_err *err = NULL;
			if (qp_qmp_pump(vm->qmp, &err) < 0) {
				/* QEMU is going away (SIGCHLD follows), or QMP is lost: the
				 * lifecycle follows from how QEMU ends. */
				s.qmp_lost = true;
				siginfo_t info = { 0 };
				if (!s.quitting && waitid(P_PID, (id_t)vm->qemu, &info,
							  WEXITED | WNOHANG | WNOWAIT) == 0 &&
				    !info.si_pid)
					say(vm, "%s: QMP is lost; how QEMU ends decides what "
					    "follows", err->msg);
			}
			qp_err_free(err);
		}
		if (fds[0].revents)
			on_signals(vm, &s);
		if (fds[3].revents)
			qp_ctl_serve_one(vm->ctl_fd, handle_request, &ctx);
		/* Events also arrive with the replies to our own commands: handle every
		 * queued one, not only after the socket was readable. */
		struct qp_qmp_msg ev;
		while (vm->qmp && qp_qmp_next_event(vm->qmp, &ev)) {
			on_event(vm, &s, &ev);
			qp_qmp_msg_free(&ev);
		}
		enum outcome o;
		if (ended(vm, &s, out_open, &o))
			return o;
		on_deadline(vm, &s);
		on_watchdog(&s);
	}
	return OUT_DIED;
}
