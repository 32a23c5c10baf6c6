#!/usr/bin/env python3
"""How much `qpass up` adds to starting QEMU by hand, and what its supervisor costs.

    bench/up_vs_qemu.py [--rounds N] [--qpass build/qpass] [--breakdown]

Alternates, A B A B, in one run on this machine:
  (a) `qpass up PROFILE` until it prints that the VM runs (after QMP `cont` returned,
      every thread pinned and read back, state.json written), then `qpass down --force`;
  (b) the same QEMU argv (from `qpass plan --json`) started by hand, as leanly as this
      process can: the QMP socket listening and passed as fd 3, QEMU spawned with
      vfork (no pre-exec hook), greeting and capabilities, query-cpus-fast, each vCPU
      thread pinned with sched_setaffinity, until `cont` returns; then quit.
and prints the median of each, the median ratio a/b, and the resident memory (VmRSS)
of the qpass supervisor while a VM runs. Targets: ratio <= 1.03, RSS <= 3 MB.
The profile is minimal and runs under TCG: what is measured is the launch path. The
runtime directory and the sockets are on tmpfs (/dev/shm), as /run is on a host.
While it waits for qpass's line this process runs SCHED_FIFO (observer_realtime).

What (a) pays that (b) does not is mostly being a process of its own: by hand, the
shell or the script that starts QEMU is already running, while qpass has to be
started, linked and initialised first, before it reads the host, takes the runtime
directory and starts QEMU. --breakdown shows it, with a stand-in QEMU that notes the
moment its main() runs: started by this process, by a minimal C launcher (fork, exec)
and by `qpass up`.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import wait_runs  # noqa: E402

PROFILE = """{ "name": "bench", "memory": "128M", "vcpus": 1, "accel": "tcg",
  "machine": "pc", "video": "none", "usb": {"controller": "none"}, "memballoon": false,
  "shutdown_timeout": 5 }"""


def by_hand(argv, tmp, pins):
    """The same argv, started as qpass starts it, as leanly as Python can: the QMP socket
    listening before QEMU starts, passed as fd 3 (dup2 in the parent, so that Python
    spawns with vfork rather than fork and a pre-exec hook), QEMU's output into a pipe,
    greeting, capabilities, vCPU threads pinned, `cont`, until QMP says running."""
    path = os.path.join(tmp, "qmp.sock")
    t0 = time.monotonic()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    moved = listener.fileno() != 3
    if moved:
        saved = os.dup(3) if fd_open(3) else None
        os.dup2(listener.fileno(), 3)
    proc = subprocess.Popen(argv, pass_fds=(3,), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if moved:
        restore_fd3(saved)
    listener.close()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    qmp = sock.makefile("rw")
    json.loads(qmp.readline())
    call(qmp, "qmp_capabilities")
    for cpu in call(qmp, "query-cpus-fast"):
        os.sched_setaffinity(cpu["thread-id"], {pins[cpu["cpu-index"]]})
    call(qmp, "cont")
    elapsed = time.monotonic() - t0
    assert call(qmp, "query-status")["status"] == "running"
    call(qmp, "quit")
    sock.close()
    proc.communicate()
    return elapsed


def fd_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def restore_fd3(saved):
    if saved is None:
        os.close(3)
    else:
        os.dup2(saved, 3)
        os.close(saved)


def call(qmp, name):
    qmp.write(json.dumps({"execute": name}) + "\n")
    qmp.flush()
    while True:
        reply = json.loads(qmp.readline())
        if "event" not in reply:
            return reply["return"]


def with_qpass(qpass, profile, env):
    """`qpass up` until it says the VM runs (the line it prints once `cont` returned and
    state.json is written), then `qpass down --force`."""
    realtime = observer_realtime(True)
    t0 = time.monotonic()
    proc = subprocess.Popen([qpass, "up", profile], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_runs(proc, "bench")
    elapsed = time.monotonic() - t0
    observer_realtime(False)
    with open("/proc/%d/status" % proc.pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    subprocess.run([qpass, "down", "bench", "--force"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.communicate()
    return elapsed, rss, realtime


def observer_realtime(on):
    """While it waits for qpass's line, this process runs SCHED_FIFO (what it starts is
    reset to normal): once the guest runs, QEMU's main thread keeps the other CPU busy
    for tens of ms, and a normal observer would add its own wake-up delay (measured: 1
    to 5 ms in half of the runs) to qpass's figure. By hand, the launcher is the
    observer and runs normally, as qpass does. False when not allowed (not root)."""
    try:
        if on:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(1))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return True
    except PermissionError:
        return False


# --breakdown: the time from "start" to the first instruction of QEMU's main(), with a
# stand-in QEMU that only writes CLOCK_MONOTONIC to $STUB_OUT and exits, and a minimal
# C launcher (fork, exec, wait) as the floor of any launcher that is a process.
STUB_C = r"""#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  FILE *f = fopen(getenv("STUB_OUT"), "w"); fprintf(f, "%ld.%09ld", (long)t.tv_sec,
  t.tv_nsec); fclose(f); return 1; }
"""
LAUNCHER_C = r"""#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) { pid_t p = fork(); if (p == 0) { execv(argv[1],
  argv + 1); _exit(127); } waitpid(p, NULL, 0); return 0; }
"""


def breakdown(qpass, rounds, tmp):
    stub, launcher = os.path.join(tmp, "stub"), os.path.join(tmp, "launcher")
    for exe, src in ((stub, STUB_C), (launcher, LAUNCHER_C)):
        subprocess.run(["cc", "-O2", "-x", "c", "-o", exe, "-"], input=src, text=True,
                       check=True)
    profile = os.path.join(tmp, "stub.json")
    with open(profile, "w") as f:
        f.write(PROFILE.replace('"name": "bench"', '"name": "stub", "qemu": "%s"' % stub))
    out = os.path.join(tmp, "stub.out")
    env = dict(os.environ, QPASS_RUNDIR=os.path.join(tmp, "run"), STUB_OUT=out)
    env.pop("QPASS_SYSROOT", None)
    ways = [("started by this process", [stub]),
            ("by a minimal C launcher", [launcher, stub]),
            ("by qpass up", [qpass, "up", profile])]
    times = {name: [] for name, _ in ways}
    for _ in range(rounds):
        for name, argv in ways:
            t0 = time.monotonic()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            with open(out) as f:
                times[name].append((float(f.read()) - t0) * 1000)
    lines = ["time until QEMU's main() runs, %d rounds (a stand-in QEMU):" % rounds]
    for name, _ in ways:
        lines.append("  %-24s median %.2f ms" % (name, statistics.median(times[name])))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--qpass", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                    "qpass"))
    ap.add_argument("--breakdown", action="store_true",
                    help="also time each way to QEMU's main(), with a stand-in QEMU")
    args = ap.parse_args()
    # The runtime directory and the sockets on tmpfs, as /run is on a host.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        profile = os.path.join(tmp, "bench.json")
        with open(profile, "w") as f:
            f.write(PROFILE)
        rundir = os.path.join(tmp, "run")
        env = dict(os.environ, QPASS_RUNDIR=rundir)
        env.pop("QPASS_SYSROOT", None)
        plan = json.loads(subprocess.run([args.qpass, "plan", profile, "--json"], env=env,
                                         capture_output=True, text=True, check=True).stdout)
        a, b, ratios, rss = [], [], [], []
        realtime = True
        for _ in range(args.rounds):
            ta, r, rt = with_qpass(args.qpass, profile, env)
            tb = by_hand(plan["argv"], tmp, plan["vcpu_pins"])
            a.append(ta)
            b.append(tb)
            ratios.append(ta / tb)
            rss.append(r)
            realtime = realtime and rt
        parts = breakdown(args.qpass, args.rounds * 10, tmp) if args.breakdown else None
    print("rounds: %d (A B alternating), QEMU under TCG, 1 vCPU" % args.rounds)
    print("qpass up until running and pinned: median %.1f ms" % (statistics.median(a) * 1000))
    print("QEMU by hand, pinned, cont:        median %.1f ms" % (statistics.median(b) * 1000))
    print("ratio a/b: median %.3f (target <= 1.03)" % statistics.median(ratios))
    print("qpass supervisor RSS while the VM runs: median %.1f MB (target <= 3 MB)"
          % (statistics.median(rss) / 1024))
    if parts:
        print(parts)
    if not realtime:
        print("note: not allowed to run SCHED_FIFO (run as root): qpass's figure includes "
              "this process's own wake-up delays")


if __name__ == "__main__":
    main()
