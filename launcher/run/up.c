/* `qpass up`: start QEMU paused as the plan says, place every thread, let the guest
 * run, then supervise it in the foreground until it ends.
 *
 * Order (issue 4): plan; runtime directory RUNDIR/NAME (0700), locked (one VM per
 * name); the QMP socket bound and listening, handed to QEMU as fd 3; fork. The child
 * binds its memory to the node, sets RLIMIT_MEMLOCK, drops to run_as, closes stray fds,
 * asks to die with qpass, and execs QEMU (-S). The parent connects to QMP, pins every
 * vCPU thread to its CPU and every other thread to the emulator CPUs, reads the pins
 * back from /proc, and only then lets the guest run. */
#include "run/up.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vfio/bind.h"
#include "base/exit.h"
#include "base/rundir.h"
#include "vfio/group.h"
#include "base/jsonout.h"
#include "qmp/qmp.h"
#include "run/sysfx.h"
#include "run/tap.h"
#include "base/util.h"

#define QMP_TIMEOUT_MS 30000

struct vm {
	const struct qp_plan *plan;
	const struct qp_profile *p;
	const struct qp_root *root;
	char *dir;
	char *qmp_path;
	int lock_fd;
	int sig_fd;
	pid_t qemu;
	int out_fd;
	struct qp_qmp *qmp;
	int ctl_fd;          /* the control socket, listening */
	char *ctl_path;
	bool has_user;
	uid_t uid;
	gid_t gid;
	char line[4096];
	size_t line_len;
	time_t started;
	struct qp_root proc;      /* the real /proc: QEMU runs here, whatever the sysroot */
	int *dev_locks;           /* one flock per passed function */
	size_t n_dev_locks;
	bool bound;               /* functions are on vfio-pci for this VM */
	int *chowned;             /* /dev/vfio/N handed to run_as */
	struct stat *chowned_was;
	size_t n_chowned;
};

static void say(const struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- the runtime directory ------------------------------------------------------ */

static int rundir_take(struct vm *vm, struct qp_err **err)
{
	vm->dir = qp_xasprintf("%s/%s", qp_rundir(), vm->p->name);
	if (qp_mkdir_p(vm->dir, 0700, err) < 0)
		return -1;
	if (chmod(vm->dir, 0700) < 0)
		return qp_err_set(err, errno, "cannot chmod %s", vm->dir);
	qp_autofree char *lock = qp_xasprintf("%s/lock", vm->dir);
	vm->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (vm->lock_fd < 0)
		return qp_err_set(err, errno, "cannot open %s", lock);
	if (flock(vm->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		qp_closep(&vm->lock_fd);
		if (e != EWOULDBLOCK)
			return qp_err_set(err, e, "cannot lock %s", lock);
		char pid[32] = "";
		qp_autofree char *pidfile = qp_xasprintf("%s/pid", vm->dir);
		qp_autofclose FILE *f = fopen(pidfile, "re");
		if (f && !fgets(pid, sizeof(pid), f))
			pid[0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		qp_err_set(err, 0, "a VM named %s is already running%s%s%s", vm->p->name,
			   *pid ? " (qpass pid " : "", pid, *pid ? ")" : "");
		/* The directory belongs to the running VM: not ours to remove. */
		free(vm->dir);
		vm->dir = NULL;
		return qp_err_hint(err, "stop it first (SIGTERM to that qpass), or give this VM "
				   "another \"name\"");
	}
	/* Left by a qpass that died: the lock says nobody uses them. */
	vm->qmp_path = qp_xasprintf("%s/qmp.sock", vm->dir);
	unlink(vm->qmp_path);
	qp_autofree char *stale = qp_xasprintf("%s/state.json", vm->dir);
	unlink(stale);
	qp_autofree char *pidfile = qp_xasprintf("%s/pid", vm->dir);
	qp_autofclose FILE *f = fopen(pidfile, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fflush(f) != 0)
		return qp_err_set(err, errno, "cannot write %s", pidfile);
	return 0;
}

static void rundir_release(struct vm *vm)
{
	if (!vm->dir)
		return;
	const char *files[] = { "qmp.sock", "control.sock", "pid", "state.json", "lock" };
	for (size_t i = 0; i < QP_ARRAY_SIZE(files); i++) {
		qp_autofree char *f = qp_xasprintf("%s/%s", vm->dir, files[i]);
		unlink(f);
	}
	rmdir(vm->dir);
	qp_closep(&vm->lock_fd);
}

/* --- starting QEMU ---------------------------------------------------------------- */

/* A listening socket at path, 0600. */
static int listen_at(const char *path, int flags, struct qp_err **err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return qp_err_set(err, 0, "%s: the path is too long for a socket", path);
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return qp_err_set(err, errno, "socket");
	mode_t old = umask(0077);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0 || listen(fd, 8) < 0) {
		int e = errno;
		close(fd);
		return qp_err_set(err, e, "cannot listen on %s", path);
	}
	return fd;
}

/* In the child, between fork and exec: only async-signal-safe steps, errors as text
 * into the status pipe. Never returns. */
__attribute__((noreturn)) static void child(struct vm *vm, pid_t parent, int qmp_fd,
					    int out_fd, int status_fd, const int *taps)
{
	char msg[512] = "";
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Every fd this child still needs goes above 10 first, so that no dup2 below
	 * overwrites one of them. */
	int st = fcntl(status_fd, F_DUPFD_CLOEXEC, 10);
	int q = fcntl(qmp_fd, F_DUPFD_CLOEXEC, 10), o = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
	if (st < 0)
		_exit(127);
	status_fd = st;
	/* Memory first, while allocations are still few: QEMU's own come from the node. */
	if (vm->plan->numa_node >= 0 && qp_fx_numa_available() &&
	    qp_fx_bind_memory(vm->plan->numa_node, msg, sizeof(msg)) < 0)
		goto fail;
	if (vm->has_user && qp_fx_drop_privileges(vm->uid, vm->gid, msg, sizeof(msg)) < 0)
		goto fail;
	/* QEMU must not outlive qpass: with nobody to supervise it, it would keep the
	 * devices and memory forever. After the privilege drop: a change of credentials
	 * clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
		snprintf(msg, sizeof(msg), "the launching qpass went away");
		goto fail;
	}
	/* fds: 0 /dev/null, 1 and 2 the log pipe, 3 QMP; everything else closes at exec. */
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || q < 0 || o < 0 || dup2(devnull, 0) < 0 || dup2(o, 1) < 0 ||
	    dup2(o, 2) < 0 || dup2(q, 3) < 0) {
		snprintf(msg, sizeof(msg), "cannot set up QEMU's file descriptors: %s",
			 strerror(errno));
		goto fail;
	}
	/* The taps, at the fds the argv names (4, 5...). They were moved above the range
	 * first, so no dup2 overwrites another. */
	size_t n_taps = vm->plan->n_taps;
	int high[16];
	for (size_t i = 0; i < n_taps && i < 16; i++)
		high[i] = fcntl(taps[i], F_DUPFD_CLOEXEC, QP_FD_TAP0 + 16);
	for (size_t i = 0; i < n_taps && i < 16; i++) {
		if (high[i] < 0 || dup2(high[i], vm->plan->taps[i].fd) < 0) {
			snprintf(msg, sizeof(msg), "cannot pass the tap fds: %s", strerror(errno));
			goto fail;
		}
	}
	if (close_range(4 + (unsigned)n_taps, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		/* Kernels before 5.11. */
		for (int fd = 4 + (int)n_taps; fd < 65536; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	execvp(vm->plan->argv[0], vm->plan->argv);
	snprintf(msg, sizeof(msg), "cannot run %s: %s", vm->plan->argv[0], strerror(errno));
fail:
	if (write(status_fd, msg, strlen(msg)) < 0)
		_exit(127);
	_exit(127);
}

static int spawn(struct vm *vm, struct qp_err **err)
{
	/* The taps first: QEMU gets new ones at every start, and they go with it. */
	int taps[16];
	size_t n_taps = 0;
	if (vm->plan->n_taps > 16)
		return qp_err_set(err, 0, "at most 16 bridge networks per VM");
	for (; n_taps < vm->plan->n_taps; n_taps++) {
		char name[QP_IFNAMSIZ];
		taps[n_taps] = qp_tap_open(vm->plan->taps[n_taps].bridge,
					   vm->has_user ? vm->uid : (uid_t)-1, name, err);
		if (taps[n_taps] < 0) {
			while (n_taps)
				close(taps[--n_taps]);
			return -1;
		}
		say(vm, "network %zu: %s on %s", n_taps, name, vm->plan->taps[n_taps].bridge);
	}
	/* A QEMU that was killed leaves its socket behind; the lock makes it ours. */
	unlink(vm->qmp_path);
	int qmp_fd = listen_at(vm->qmp_path, 0, err);
	if (qmp_fd < 0) {
		while (n_taps)
			close(taps[--n_taps]);
		return -1;
	}
	int out[2], status[2];
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(qmp_fd);
		return qp_err_set(err, errno, "pipe");
	}
	if (pipe2(status, O_CLOEXEC) < 0) {
		close(qmp_fd);
		close(out[0]);
		close(out[1]);
		return qp_err_set(err, errno, "pipe");
	}
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(qmp_fd);
		close(out[0]);
		close(out[1]);
		close(status[0]);
		close(status[1]);
		return qp_err_set(err, e, "fork");
	}
	if (pid == 0)
		child(vm, parent, qmp_fd, out[1], status[1], taps);
	vm->qemu = pid;
	close(qmp_fd);
	/* QEMU holds the taps now: they vanish when it exits. */
	while (n_taps)
		close(taps[--n_taps]);
	close(out[1]);
	close(status[1]);
	vm->out_fd = out[0];
	/* The status pipe closes at exec: anything in it is the child's error. */
	char msg[512];
	ssize_t n;
	do
		n = read(status[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(status[0]);
	if (n > 0) {
		msg[n] = '\0';
		waitpid(pid, NULL, 0);
		vm->qemu = 0;
		qp_err_set(err, 0, "%s", msg);
		if (strstr(msg, "cannot run"))
			qp_err_hint(err, "install QEMU (apt-get install qemu-system-x86), or set "
				    "\"qemu\" in the profile to its path");
		return -1;
	}
	return 0;
}

/* Forwards QEMU's output, a line at a time, prefixed. Returns false at EOF. */
static bool forward_output(struct vm *vm)
{
	ssize_t n = read(vm->out_fd, vm->line + vm->line_len, sizeof(vm->line) - 1 - vm->line_len);
	if (n <= 0) {
		if (n < 0 && errno == EINTR)
			return true;
		if (vm->line_len)
			fprintf(stderr, "qemu[%d]: %.*s\n", (int)vm->qemu, (int)vm->line_len, vm->line);
		vm->line_len = 0;
		return false;
	}
	vm->line_len += (size_t)n;
	char *start = vm->line, *nl;
	while ((nl = memchr(start, '\n', vm->line_len - (size_t)(start - vm->line)))) {
		fprintf(stderr, "qemu[%d]: %.*s\n", (int)vm->qemu, (int)(nl - start), start);
		start = nl + 1;
	}
	size_t rest = vm->line_len - (size_t)(start - vm->line);
	if (rest == sizeof(vm->line) - 1) {
		fprintf(stderr, "qemu[%d]: %.*s\n", (int)vm->qemu, (int)rest, start);
		rest = 0;
	}
	memmove(vm->line, start, rest);
	vm->line_len = rest;
	return true;
}

static int connect_qmp(struct vm *vm, struct qp_err **err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, vm->qmp_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return qp_err_set(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return qp_err_set(err, e, "cannot connect to QEMU's QMP socket %s", vm->qmp_path);
	}
	if (qp_qmp_open(fd, QMP_TIMEOUT_MS, &vm->qmp, err) < 0)
		return -1;
	return 0;
}

/* Runs a command that must succeed; its return value is dropped. */
static int qmp_ok(struct vm *vm, const char *cmd, json_object *args, struct qp_err **err)
{
	struct qp_qmp_msg r;
	if (qp_qmp_execute(vm->qmp, cmd, args, QMP_TIMEOUT_MS, &r, err) < 0)
		return -1;
	int rc = 0;
	if (r.kind == QP_QMP_ERROR)
		rc = qp_err_set(err, 0, "QMP %s: %s", cmd, r.error_desc);
	qp_qmp_msg_free(&r);
	return rc;
}

/* --- placement ------------------------------------------------------------------- */

static int read_allowed(struct vm *vm, pid_t tid, struct qp_cpulist *out, struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("proc/%d/task/%d/status", (int)vm->qemu, (int)tid);
	qp_autofree char *text = NULL;
	if (qp_root_read(&vm->proc, rel, &text, NULL, err) < 0)
		return -1;
	char *line = strstr(text, "\nCpus_allowed_list:");
	if (!line)
		return qp_err_set(err, 0, "/%s has no Cpus_allowed_list", rel);
	line = strchr(line, ':') + 1;
	line += strspn(line, " \t");
	line[strcspn(line, "\n")] = '\0';
	return qp_cpulist_parse(line, out, err);
}

static int place(struct vm *vm, struct qp_err **err)
{
	const struct qp_plan *plan = vm->plan;
	struct qp_qmp_msg r;
	if (qp_qmp_execute(vm->qmp, "query-cpus-fast", NULL, QMP_TIMEOUT_MS, &r, err) < 0)
		return -1;
	if (r.kind != QP_QMP_RETURN || !json_object_is_type(r.data, json_type_array)) {
		qp_qmp_msg_free(&r);
		return qp_err_set(err, 0, "QMP query-cpus-fast: no list of vCPUs");
	}
	size_t n = json_object_array_length(r.data);
	pid_t *vcpu_tid = qp_xcalloc(plan->n_vcpus ? plan->n_vcpus : 1, sizeof(pid_t));
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(r.data, i);
		int idx = json_object_get_int(json_object_object_get(c, "cpu-index"));
		int tid = json_object_get_int(json_object_object_get(c, "thread-id"));
		if (idx >= 0 && (size_t)idx < plan->n_vcpus)
			vcpu_tid[idx] = tid;
	}
	qp_qmp_msg_free(&r);
	int rc = 0;
	for (size_t v = 0; v < plan->n_vcpus && rc == 0; v++)
		if (!vcpu_tid[v])
			rc = qp_err_set(err, 0, "QEMU did not report the thread of vCPU %zu", v);

	/* Every thread QEMU has now: vCPUs to their CPU, the rest to the emulator CPUs.
	 * Threads made later inherit from their maker, the pinned main thread. */
	qp_autofree char *taskdir = qp_xasprintf("proc/%d/task", (int)vm->qemu);
	char **tasks = NULL;
	if (rc == 0)
		rc = qp_root_list(&vm->proc, taskdir, false, &tasks, err);
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		for (size_t i = 0; tasks[i] && rc == 0; i++) {
			pid_t tid = (pid_t)atoi(tasks[i]);
			struct qp_cpulist want = { 0 };
			const struct qp_cpulist *set = &plan->emulator_cpus;
			for (size_t v = 0; v < plan->n_vcpus; v++) {
				if (vcpu_tid[v] == tid) {
					qp_cpulist_add(&want, plan->vcpu_pins[v]);
					set = &want;
				}
			}
			if (pass == 0) {
				rc = qp_fx_pin(tid, set, err);
			} else {
				/* Read back: what the kernel says is what counts. */
				struct qp_cpulist got = { 0 };
				rc = read_allowed(vm, tid, &got, err);
				if (rc == 0 && !qp_cpulist_equal(&got, set)) {
					qp_autofree char *g = qp_cpulist_fmt(&got);
					qp_autofree char *w = qp_cpulist_fmt(set);
					rc = qp_err_set(err, 0, "thread %d of QEMU runs on CPUs %s, not %s "
							"as pinned (a cpuset cgroup may forbid them)",
							(int)tid, g, w);
				}
				qp_cpulist_free(&got);
			}
			qp_cpulist_free(&want);
		}
	}
	qp_strv_free(tasks);
	free(vcpu_tid);
	return rc;
}

static void write_state(struct vm *vm)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(vm->p->name));
	json_object_object_add(o, "qpass_pid", json_object_new_int(getpid()));
	json_object_object_add(o, "qemu_pid", json_object_new_int(vm->qemu));
	json_object_object_add(o, "started", json_object_new_int64((int64_t)vm->started));
	json_object_object_add(o, "numa_node", json_object_new_int(vm->plan->numa_node));
	json_object_object_add(o, "vcpu_pins", qp_json_ints(vm->plan->vcpu_pins,
							   vm->plan->n_vcpus));
	json_object_object_add(o, "qmp", json_object_new_string(vm->qmp_path));
	qp_autofree char *path = qp_xasprintf("%s/state.json", vm->dir);
	qp_autofree char *tmp = qp_xasprintf("%s/state.json.tmp", vm->dir);
	FILE *f = fopen(tmp, "we");
	if (f) {
		fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		if (fclose(f) == 0)
			rename(tmp, path);
	}
	json_object_put(o);
}

/* Starts QEMU paused, places it, lets it run. On failure QEMU is gone. */
static int start(struct vm *vm, struct qp_err **err)
{
	if (spawn(vm, err) < 0)
		return -1;
	if (connect_qmp(vm, err) < 0 || place(vm, err) < 0 || qmp_ok(vm, "cont", NULL, err) < 0) {
		kill(vm->qemu, SIGKILL);
		while (forward_output(vm))
			;
		waitpid(vm->qemu, NULL, 0);
		vm->qemu = 0;
		qp_qmp_close(vm->qmp);
		vm->qmp = NULL;
		qp_closep(&vm->out_fd);
		return -1;
	}
	vm->started = time(NULL);
	write_state(vm);
	struct qp_buf b = { 0 };
	for (size_t v = 0; v < vm->plan->n_vcpus; v++)
		qp_buf_addf(&b, "%s%zu->%d", v ? " " : "", v, vm->plan->vcpu_pins[v]);
	qp_autofree char *pins = qp_buf_steal(&b);
	qp_autofree char *emu = qp_cpulist_fmt(&vm->plan->emulator_cpus);
	char node[32] = "no NUMA binding";
	if (vm->plan->numa_node >= 0)
		snprintf(node, sizeof(node), "memory on node %d", vm->plan->numa_node);
	fprintf(stderr, "qpass: %s runs: qemu pid %d, QEMU %s; vCPU->CPU %s; emulator CPUs %s; "
		"%s; QMP %s\n", vm->p->name, (int)vm->qemu, qp_qmp_version(vm->qmp), pins, emu,
		node, vm->qmp_path);
	return 0;
}

/* --- supervision ------------------------------------------------------------------ */

enum outcome {
	OUT_STOPPED,    /* QEMU ended because it was asked to */
	OUT_DIED,       /* QEMU ended on its own */
	OUT_RELAUNCH,   /* on_crash restart: start again with the same placement */
};

struct sup {
	bool stopping;      /* a graceful shutdown is under way */
	bool quitting;      /* quit was sent: QEMU's exit is expected */
	int64_t deadline;   /* for the current stage, 0: none */
	int64_t next_note;
	int timeout_s;      /* of the graceful stop under way */
	bool relaunch;
	int status;         /* QEMU's wait status */
};

static void say(const struct vm *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "qpass: %s: ", vm->p->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void send_quiet(struct vm *vm, const char *cmd)
{
	struct qp_err *err = NULL;
	if (vm->qmp && qmp_ok(vm, cmd, NULL, &err) < 0)
		say(vm, "%s", err->msg);
	qp_err_free(err);
}

static void quit(struct vm *vm, struct sup *s)
{
	if (s->quitting)
		return;
	s->quitting = true;
	s->deadline = qp_now_ms() + 5000;  /* then SIGKILL */
	send_quiet(vm, "quit");
}

/* A graceful stop: ACPI power button, then quit after timeout_s, then SIGKILL. */
static void begin_shutdown(struct vm *vm, struct sup *s, int timeout_s)
{
	if (s->stopping) {
		say(vm, "asked again: stopping QEMU now");
		quit(vm, s);
		return;
	}
	s->stopping = true;
	s->timeout_s = timeout_s;
	s->deadline = qp_now_ms() + (int64_t)timeout_s * 1000;
	s->next_note = qp_now_ms() + 10000;
	say(vm, "asking the guest to power off (ACPI), up to %d s", timeout_s);
	send_quiet(vm, "system_powerdown");
}

/* --- the control socket: down, status, qmp ------------------------------------------ */

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
	json_object_object_add(o, "vcpu_pins", qp_json_ints(plan->vcpu_pins, plan->n_vcpus));
	json_object_object_add(o, "emulator_cpus", qp_json_cpus(&plan->emulator_cpus));
	json_object_object_add(o, "memory_nodes", qp_json_ints(plan->memory_nodes,
							      plan->n_memory_nodes));
	json_object_object_add(o, "qmp", json_object_new_string(vm->qmp_path));
	return o;
}

static json_object *reply_error(const char *msg)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(false));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static json_object *handle_request(struct vm *vm, struct sup *s, json_object *req)
{
	json_object *cmd = json_object_object_get(req, "command");
	const char *c = json_object_is_type(cmd, json_type_string) ? json_object_get_string(cmd)
								   : "";
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(true));
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
			begin_shutdown(vm, s, timeout > 0 ? timeout : 1);
		json_object_object_add(o, "action",
				       json_object_new_string(force ? "quit" : "powerdown"));
		json_object_object_add(o, "qpass_pid", json_object_new_int(getpid()));
	} else if (!strcmp(c, "qmp")) {
		json_object *ex = json_object_object_get(req, "execute");
		json_object *args = json_object_object_get(req, "arguments");
		if (!json_object_is_type(ex, json_type_string) || !vm->qmp) {
			json_object_put(o);
			return reply_error(vm->qmp ? "a qmp request needs \"execute\""
						   : "QMP is not connected");
		}
		struct qp_qmp_msg r;
		struct qp_err *err = NULL;
		if (qp_qmp_execute(vm->qmp, json_object_get_string(ex), json_object_get(args),
				   QMP_TIMEOUT_MS, &r, &err) < 0) {
			json_object_put(o);
			json_object *e = reply_error(err->msg);
			qp_err_free(err);
			return e;
		}
		json_object *reply = json_object_new_object();
		json_object_object_add(reply, r.kind == QP_QMP_RETURN ? "return" : "error",
				       json_object_get(r.data));
		json_object_object_add(o, "reply", reply);
		qp_qmp_msg_free(&r);
	} else {
		json_object_put(o);
		return reply_error("unknown command (status, down, qmp)");
	}
	return o;
}

static void serve_control(struct vm *vm, struct sup *s)
{
	int c = accept4(vm->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	json_object *reply = NULL;
	/* Only root, or the user qpass runs as, may control the VM. */
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		reply = reply_error("permission denied");
	} else {
		struct timeval tv = { .tv_sec = 2 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		char buf[65536];
		size_t n = 0;
		while (n < sizeof(buf) - 1) {
			ssize_t r = read(c, buf + n, sizeof(buf) - 1 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			if (memchr(buf, '\n', n))
				break;
		}
		buf[n] = '\0';
		json_object *req = json_tokener_parse(buf);
		if (!json_object_is_type(req, json_type_object))
			reply = reply_error("a request is one JSON object on one line");
		else
			reply = handle_request(vm, s, req);
		json_object_put(req);
	}
	qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
							     reply, JSON_C_TO_STRING_PLAIN));
	json_object_put(reply);
	if (send(c, text, strlen(text), MSG_NOSIGNAL) < 0) {
		/* The client went away; nothing to tell it. */
	}
	close(c);
}

static void on_event(struct vm *vm, struct sup *s, struct qp_qmp_msg *ev)
{
	const struct qp_profile *p = vm->p;
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
		if (p->on_crash == QP_ACT_RESTART) {
			say(vm, "the guest panicked: on_crash restart starts it again");
			s->relaunch = true;
			quit(vm, s);
		} else if (p->on_crash == QP_ACT_PRESERVE) {
			say(vm, "the guest panicked: on_crash preserve keeps it paused");
			send_quiet(vm, "stop");
		} else {
			say(vm, "the guest panicked: on_crash destroy");
			quit(vm, s);
		}
	}
}

static enum outcome supervise(struct vm *vm)
{
	struct sup s = { 0 };
	bool out_open = true, qmp_open = true;
	for (;;) {
		struct pollfd fds[4] = {
			{ .fd = vm->sig_fd, .events = POLLIN },
			{ .fd = out_open ? vm->out_fd : -1, .events = POLLIN },
			{ .fd = qmp_open && vm->qmp ? qp_qmp_fd(vm->qmp) : -1, .events = POLLIN },
			{ .fd = vm->ctl_fd, .events = POLLIN },
		};
		int timeout = -1;
		if (s.deadline || s.next_note) {
			int64_t t = s.deadline;
			if (s.stopping && !s.quitting && s.next_note && s.next_note < t)
				t = s.next_note;
			timeout = (int)(t > qp_now_ms() ? t - qp_now_ms() : 0);
		}
		int rc = poll(fds, 4, timeout);
		if (rc < 0 && errno != EINTR)
			break;
		if (fds[1].revents && !forward_output(vm))
			out_open = false;
		if (fds[2].revents) {
			struct qp_err *err = NULL;
			if (qp_qmp_pump(vm->qmp, &err) < 0)
				qmp_open = false;  /* QEMU is going away: SIGCHLD follows */
			qp_err_free(err);
		}
		if (fds[0].revents) {
			struct signalfd_siginfo si;
			while (read(vm->sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					continue;
				begin_shutdown(vm, &s, vm->p->shutdown_timeout);
			}
		}
		if (fds[3].revents)
			serve_control(vm, &s);
		/* Events also arrive with the replies to our own commands: handle every
		 * queued one, not only after the socket was readable. */
		struct qp_qmp_msg ev;
		while (vm->qmp && qp_qmp_next_event(vm->qmp, &ev)) {
			on_event(vm, &s, &ev);
			qp_qmp_msg_free(&ev);
		}
		/* Has QEMU ended? */
		int status;
		pid_t w = waitpid(vm->qemu, &status, WNOHANG);
		if (w == vm->qemu) {
			while (out_open && forward_output(vm))
				;
			vm->qemu = 0;
			s.status = status;
			if (s.quitting || (WIFEXITED(status) && WEXITSTATUS(status) == 0 && s.stopping)) {
				if (s.relaunch)
					return OUT_RELAUNCH;
				say(vm, "QEMU stopped");
				return OUT_STOPPED;
			}
			if (WIFSIGNALED(status))
				say(vm, "QEMU died on its own: killed by signal %d (%s)", WTERMSIG(status),
				    strsignal(WTERMSIG(status)));
			else
				say(vm, "QEMU ended on its own with exit status %d", WEXITSTATUS(status));
			return OUT_DIED;
		}
		int64_t t = qp_now_ms();
		if (s.stopping && !s.quitting && s.next_note && t >= s.next_note) {
			say(vm, "waiting for the guest to power off (%lld s left)",
			    (long long)((s.deadline - t) / 1000));
			s.next_note = t + 10000;
		}
		if (s.deadline && t >= s.deadline) {
			if (!s.quitting) {
				say(vm, "the guest did not power off within %d s: stopping QEMU",
				    s.timeout_s);
				quit(vm, &s);
			} else {
				say(vm, "QEMU did not quit: killing it");
				kill(vm->qemu, SIGKILL);
				s.deadline = 0;
			}
		}
	}
	return OUT_DIED;
}

/* --- the whole command --------------------------------------------------------------- */

static int refuse_unsupported(const struct qp_plan *plan, struct qp_err **err)
{
	return 0;
}

/* --- the devices ------------------------------------------------------------------ */

/* A lock per function (RUNDIR/devices/ADDR.lock) so that two VMs never take one; the
 * loser names the VM that holds it. */
static int lock_devices(struct vm *vm, struct qp_err **err)
{
	qp_autofree char *dir = qp_xasprintf("%s/devices", qp_rundir());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return qp_err_set(err, errno, "cannot create %s", dir);
	vm->dev_locks = qp_xcalloc(vm->plan->n_devs, sizeof(int));
	for (size_t i = 0; i < vm->plan->n_devs; i++) {
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&vm->plan->devs[i].host, a);
		qp_autofree char *path = qp_xasprintf("%s/%s.lock", dir, a);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return qp_err_set(err, errno, "cannot open %s", path);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			char holder[80] = "";
			ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
			holder[n > 0 ? n : 0] = '\0';
			close(fd);
			return qp_err_set(err, 0, "%s is taken by the VM %s", a,
					  *holder ? holder : "(unknown)");
		}
		if (ftruncate(fd, 0) < 0 || pwrite(fd, vm->p->name, strlen(vm->p->name), 0) < 0) {
			close(fd);
			return qp_err_set(err, errno, "cannot write %s", path);
		}
		vm->dev_locks[vm->n_dev_locks++] = fd;
	}
	return 0;
}

static void unlock_devices(struct vm *vm)
{
	qp_autofree char *dir = qp_xasprintf("%s/devices", qp_rundir());
	for (size_t i = 0; i < vm->n_dev_locks; i++) {
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&vm->plan->devs[i].host, a);
		qp_autofree char *path = qp_xasprintf("%s/%s.lock", dir, a);
		unlink(path);
		close(vm->dev_locks[i]);
	}
	free(vm->dev_locks);
	vm->dev_locks = NULL;
	vm->n_dev_locks = 0;
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

/* Binds the plan's functions, proves each group usable, hands them to run_as. */
static int take_devices(struct vm *vm, struct qp_err **err)
{
	const struct qp_plan *plan = vm->plan;
	if (!plan->n_devs)
		return 0;
	if (lock_devices(vm, err) < 0)
		return -1;
	struct qp_pci_addr *addrs = qp_xcalloc(plan->n_devs, sizeof(*addrs));
	for (size_t i = 0; i < plan->n_devs; i++)
		addrs[i] = plan->devs[i].host;
	int rc = qp_vfio_bind(vm->root, vm->p->name, addrs, plan->n_devs, err);
	free(addrs);
	if (rc < 0)
		return -1;
	vm->bound = true;
	vm->chowned = qp_xcalloc(plan->n_groups, sizeof(int));
	vm->chowned_was = qp_xcalloc(plan->n_groups, sizeof(struct stat));
	for (size_t g = 0; g < plan->n_groups; g++) {
		if (qp_vfio_check_group(vm->root, plan->groups[g], err) < 0)
			return -1;
		if (!vm->has_user)
			continue;
		qp_autofree char *rel = qp_xasprintf("dev/vfio/%d", plan->groups[g]);
		qp_autoclose int fd = qp_root_openat(vm->root, rel, O_PATH);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return qp_err_set(err, errno, "cannot stat /%s", rel);
		qp_autofree char *path = qp_xasprintf("/proc/self/fd/%d", fd);
		if (chown(path, vm->uid, vm->gid) < 0)
			return qp_err_set(err, errno, "cannot give /%s to %s", rel, vm->p->run_as);
		vm->chowned[vm->n_chowned] = plan->groups[g];
		vm->chowned_was[vm->n_chowned++] = st;
	}
	return 0;
}

/* Gives every function back to its driver, and the groups back to their owner. */
static void give_back_devices(struct vm *vm)
{
	for (size_t i = 0; i < vm->n_chowned; i++) {
		qp_autofree char *rel = qp_xasprintf("dev/vfio/%d", vm->chowned[i]);
		qp_autoclose int fd = qp_root_openat(vm->root, rel, O_PATH);
		qp_autofree char *path = qp_xasprintf("/proc/self/fd/%d", fd);
		if (fd >= 0 && chown(path, vm->chowned_was[i].st_uid, vm->chowned_was[i].st_gid) < 0)
			say(vm, "cannot give /%s back to uid %u", rel,
			    (unsigned)vm->chowned_was[i].st_uid);
	}
	free(vm->chowned);
	free(vm->chowned_was);
	vm->chowned = NULL;
	vm->n_chowned = 0;
	if (vm->bound) {
		struct qp_err *err = NULL;
		if (qp_vfio_restore(vm->root, vm->p->name, NULL, 0, &err) < 0) {
			say(vm, "%s", err->msg);
			say(vm, "run `qpass restore %s` to try again", vm->p->name);
			qp_err_free(err);
		} else {
			say(vm, "the devices are back on their host drivers");
		}
		vm->bound = false;
	}
	unlock_devices(vm);
}

int qp_up(const struct qp_plan *plan, const struct qp_root *root, struct qp_err **err)
{
	if (refuse_unsupported(plan, err) < 0)
		return -1;
	struct vm vm = { .plan = plan, .p = plan->profile, .root = root, .lock_fd = -1,
			 .sig_fd = -1, .out_fd = -1, .ctl_fd = -1, .proc = { .fd = -1 } };
	if (vm.p->run_as) {
		struct passwd *pw = getpwnam(vm.p->run_as);
		if (!pw)
			return qp_err_set(err, 0, "%s: run_as: no user %s on this host", vm.p->file,
					  vm.p->run_as);
		vm.has_user = true;
		vm.uid = pw->pw_uid;
		vm.gid = pw->pw_gid;
	}
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &old);
	vm.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	int rc = -1;
	if (vm.sig_fd < 0) {
		qp_err_set(err, errno, "signalfd");
		goto out;
	}
	if (raise_memlock(&vm, err) < 0 || make_ovmf_vars(&vm, err) < 0 ||
	    qp_root_open("/", &vm.proc, err) < 0 ||
	    rundir_take(&vm, err) < 0 || take_devices(&vm, err) < 0)
		goto out;
	vm.ctl_path = qp_xasprintf("%s/control.sock", vm.dir);
	unlink(vm.ctl_path);
	vm.ctl_fd = listen_at(vm.ctl_path, SOCK_NONBLOCK, err);
	if (vm.ctl_fd < 0)
		goto out;
	for (;;) {
		if (start(&vm, err) < 0)
			goto out;
		enum outcome o = supervise(&vm);
		qp_qmp_close(vm.qmp);
		vm.qmp = NULL;
		qp_closep(&vm.out_fd);
		if (o == OUT_RELAUNCH)
			continue;
		rc = o == OUT_STOPPED ? QP_EXIT_OK : QP_EXIT_QEMU;
		break;
	}
out:
	if (vm.qemu > 0) {
		kill(vm.qemu, SIGKILL);
		waitpid(vm.qemu, NULL, 0);
	}
	qp_qmp_close(vm.qmp);
	qp_closep(&vm.out_fd);
	qp_closep(&vm.ctl_fd);
	give_back_devices(&vm);
	if (vm.proc.path)
		qp_root_close(&vm.proc);
	rundir_release(&vm);
	free(vm.dir);
	free(vm.qmp_path);
	free(vm.ctl_path);
	qp_closep(&vm.sig_fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
