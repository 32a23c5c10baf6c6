/* `qpass up`, the launch: QEMU started (vfork, exec) with its fds (QMP at 3, the taps from 4), its
 * memory bound to the node, its privileges dropped, execed paused (-S); then QMP
 * connected. Placing its threads is run/placement.c's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/kernel.h"
#include "base/util.h"
#include "run/control.h"
#include "run/sysfx.h"
#include "run/tap.h"
#include "run/up-int.h"

/* --- starting QEMU ---------------------------------------------------------------- */

/* In the child, between vfork and exec: it runs in qpass's memory, on its stack, while
 * qpass waits, so it only makes system calls and writes its own locals (no allocation,
 * no stdio); errors go as text into the status pipe. Never returns. vfork, not fork:
 * nothing of qpass is copied, which makes QEMU start about 0.2 ms sooner
 * (bench/up_vs_qemu.py). */
__attribute__((noreturn)) static void child(struct vm *vm, pid_t parent, int qmp_fd,
					    int out_fd, int status_fd, const int *taps,
					    const struct qp_fx_membind *mem)
{
	char msg[512] = "";
	/* QEMU quits at once on SIGTERM and SIGINT, without asking the guest. Those are for
	 * qpass, which turns them into a graceful stop: QEMU gets them blocked (it never
	 * unblocks them; they stay pending), and its own session, so that a terminal's
	 * Ctrl-C or hangup, a scheduler signalling every process of a job (Slurm's scancel)
	 * or a unit's processes reach only qpass. qpass ends QEMU with QMP's quit, with
	 * SIGHUP when QMP is lost, and with SIGKILL. */
	sigset_t held;
	sigemptyset(&held);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGINT);
	sigprocmask(SIG_SETMASK, &held, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	/* Every fd this child still needs goes above 10 first, so that no dup2 below
	 * overwrites one of them. */
	int st = fcntl(status_fd, F_DUPFD_CLOEXEC, 10);
	int q = fcntl(qmp_fd, F_DUPFD_CLOEXEC, 10), o = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
	if (st < 0)
		_exit(127);
	status_fd = st;
	/* Memory first, while allocations are still few: QEMU's own come from the node. */
	if (mem && qp_fx_membind_apply(mem, msg, sizeof(msg)) < 0)
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

/* What spawn opens and makes ready: on every path, what is not handed on is closed
 * or freed here. */
struct spawn_fds {
	int taps[16];
	size_t n_taps;
	int qmp, out[2], status[2];
	struct qp_fx_membind mem;
};

static void spawn_fds_close(struct spawn_fds *f)
{
	while (f->n_taps)
		close(f->taps[--f->n_taps]);
	qp_closep(&f->qmp);
	for (int i = 0; i < 2; i++) {
		qp_closep(&f->out[i]);
		qp_closep(&f->status[i]);
	}
	qp_fx_membind_free(&f->mem);
}

int qp_up_spawn(struct vm *vm, struct qp_err **err)
{
	__attribute__((cleanup(spawn_fds_close))) struct spawn_fds f = {
		.qmp = -1, .out = { -1, -1 }, .status = { -1, -1 },
	};
	/* The taps first: QEMU gets new ones at every start, and they go with it. */
	if (vm->plan->n_taps > 16)
		return qp_err_set(err, 0, "at most 16 bridge networks per VM");
	for (; f.n_taps < vm->plan->n_taps; f.n_taps++) {
		char name[QP_IFNAMSIZ];
		int fd = qp_tap_open(vm->plan->taps[f.n_taps].bridge,
				     vm->has_user ? vm->uid : (uid_t)-1, name, err);
		if (fd < 0)
			return -1;
		f.taps[f.n_taps] = fd;
		qp_say(vm->p->name, "network %zu: %s on %s", f.n_taps, name,
		       vm->plan->taps[f.n_taps].bridge);
	}
	/* A QEMU that was killed leaves its socket behind; the lock makes it ours. */
	unlink(vm->qmp_path);
	f.qmp = qp_unix_listen(vm->qmp_path, 0, err);
	if (f.qmp < 0)
		return -1;
	if (pipe2(f.out, O_CLOEXEC) < 0 || pipe2(f.status, O_CLOEXEC) < 0)
		return qp_err_set(err, errno, "pipe");
	bool bind = vm->plan->numa_node >= 0 && qp_fx_membind_prepare(vm->plan->numa_node,
									   &f.mem);
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = vfork();
	if (pid < 0)
		return qp_err_set(err, errno, "vfork");
	if (pid == 0)
		child(vm, parent, f.qmp, f.out[1], f.status[1], f.taps, bind ? &f.mem : NULL);
	vm->qemu = pid;
	/* QEMU holds the QMP socket and the taps now: they vanish when it exits. */
	qp_closep(&f.qmp);
	while (f.n_taps)
		close(f.taps[--f.n_taps]);
	qp_closep(&f.out[1]);
	qp_closep(&f.status[1]);
	vm->out_fd = qp_steal_fd(&f.out[0]);
	/* The status pipe closes at exec: anything in it is the child's error. */
	char msg[512];
	ssize_t n;
	do
		n = read(f.status[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
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

bool qp_up_forward_output(struct vm *vm)
{
	ssize_t n = read(vm->out_fd, vm->line + vm->line_len, sizeof(vm->line) - 1 - vm->line_len);
	if (n <= 0) {
		if (n < 0 && errno == EINTR)
			return true;
		if (vm->line_len)
			fprintf(stderr, "qemu[%d]: %.*s\n", (int)vm->qemu, (int)vm->line_len,
				vm->line);
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

/* The guest RAM QEMU has allocated so far, in bytes, and on the VM's node. */
static uint64_t ram_allocated(struct vm *vm, uint64_t *on_node)
{
	struct qp_measured m;
	memset(&m, 0, sizeof(m));
	qp_up_measure_memory(vm, &m);
	uint64_t all = 0;
	*on_node = 0;
	for (size_t n = 0; m.has_memory && n < m.n_pages; n++) {
		all += m.pages[n] * m.page_kb << 10;
		if ((int)n == vm->plan->numa_node)
			*on_node += m.pages[n] * m.page_kb << 10;
	}
	qp_measured_free(&m);
	return all;
}

static double gib(uint64_t bytes)
{
	return (double)bytes / (1 << 30);
}

/* ", 1.5 GiB on node 0", or nothing without a NUMA binding. */
static const char *on_node(const struct vm *vm, uint64_t bytes, char *buf, size_t size)
{
	buf[0] = '\0';
	if (vm->plan->numa_node >= 0)
		snprintf(buf, size, ", %.1f GiB on node %d", gib(bytes), vm->plan->numa_node);
	return buf;
}

/* QEMU says nothing while it preallocates guest RAM (seconds per 100 GiB), and greets on
 * QMP only after: until then, say each second how much is there. It may take as long as
 * the allocation grows; a signal (qpass asked to stop) ends the wait. */
static int wait_prealloc(struct vm *vm, int fd, struct qp_err **err)
{
	uint64_t want = vm->p->memory_mib << 20, last = 0, node_b = 0;
	char where[64];
	int64_t start = qp_now_ms(), moved = start;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN },
					 { .fd = vm->stop_fd, .events = POLLIN } };
		int n = poll(pfd, vm->stop_fd >= 0 ? 2 : 1, 1000);
		if (n < 0 && errno != EINTR)
			return qp_err_set(err, errno, "poll");
		if (n > 0 && pfd[0].revents)
			break;  /* the greeting, or QEMU gone: qp_qmp_open says which */
		if (n > 0 && pfd[1].revents)
			return qp_err_set(err, 0, "asked to stop while QEMU allocated the guest RAM");
		uint64_t now = ram_allocated(vm, &node_b);
		int64_t t = qp_now_ms();
		if (now != last)
			moved = t;
		else if (t - moved > QMP_TIMEOUT_MS)
			return qp_err_set(err, 0, "QEMU allocated nothing more of the guest RAM in "
					  "%d s (%.1f of %.1f GiB)", QMP_TIMEOUT_MS / 1000,
					  gib(now), gib(want));
		last = now;
		qp_say(vm->p->name, "allocating guest RAM: %.1f of %.1f GiB (%.0f %%)%s, %.0f s",
		       gib(now), gib(want), 100.0 * (double)now / (double)want,
		       on_node(vm, node_b, where, sizeof(where)), (double)(t - start) / 1000);
	}
	uint64_t all = ram_allocated(vm, &node_b);
	if (all)
		qp_say(vm->p->name, "guest RAM preallocated: %.1f GiB%s, by %d threads in %.1f s",
		       gib(all), on_node(vm, node_b, where, sizeof(where)),
		       vm->plan->prealloc_threads, (double)(qp_now_ms() - start) / 1000);
	return 0;
}

int qp_up_connect_qmp(struct vm *vm, struct qp_err **err)
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
	if (vm->plan->prealloc && wait_prealloc(vm, fd, err) < 0) {
		close(fd);
		return -1;
	}
	if (qp_qmp_open(fd, QMP_TIMEOUT_MS, &vm->qmp, err) < 0)
		return -1;
	return 0;
}

int qp_up_qmp_ok(struct vm *vm, const char *cmd, json_object *args, struct qp_err **err)
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
