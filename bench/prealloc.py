#!/usr/bin/env python3
"""How fast `qpass up` preallocates the guest RAM: the same guest with one
preallocation thread (the baseline) and with one per CPU of the VM, in the same run.

    bench/prealloc.py [--rounds N] [--memory 4G] [--build build]

Starts, in turn, `qpass up` of a TCG guest with "prealloc": true and "prealloc_threads"
1, then N (this machine's CPUs, at most 16), with the real qemu-system-x86_64; takes the
time qpass reports ("guest RAM preallocated: ... in T s", from QEMU's start to its QMP
greeting) and the wall time until "runs"; stops it; and prints each median and the
ratio (N threads / 1 thread), and how much of the RAM was on the node. Needs the free
memory for one guest at a time.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)

PROFILE = """{ "name": "pre", "memory": "%s", "vcpus": %d, "accel": "tcg", "machine": "pc",
  "video": "none", "usb": {"controller": "none"}, "shutdown_timeout": 2,
  "prealloc": true, "prealloc_threads": %d }"""


def one(qpass, tmp, memory, vcpus, threads):
    profile = os.path.join(tmp, "pre.json")
    with open(profile, "w") as f:
        f.write(PROFILE % (memory, vcpus, threads))
    env = dict(os.environ, QPASS_RUNDIR=os.path.join(tmp, "run"))
    env.pop("QPASS_SYSROOT", None)
    t0 = time.monotonic()
    up = subprocess.Popen([qpass, "up", profile], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    said, wall, on_node = None, None, ""
    for line in up.stderr:
        m = re.search(r"guest RAM preallocated: ([0-9.]+) GiB(?:, ([0-9.]+) GiB on node "
                      r"\d+)?, by \d+ threads in ([0-9.]+) s", line)
        if m:
            said = float(m.group(3))
            on_node = "%s of %s GiB on the node" % (m.group(2), m.group(1)) if m.group(2) \
                else "%s GiB" % m.group(1)
        if " runs: qemu pid " in line:
            wall = time.monotonic() - t0
            break
    up.terminate()
    up.communicate(timeout=60)
    if said is None or wall is None:
        sys.exit("qpass up did not preallocate and run (exit %s)" % up.returncode)
    return said, wall, on_node


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory", default="4G")
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    args = ap.parse_args()
    qpass = os.path.join(args.build, "qpass")
    n = min(os.cpu_count() or 1, 16)
    # As many vCPUs as threads wanted: the VM's own CPUs run them (its vCPUs' and
    # emulator's); one vCPU leaves the other CPU as the emulator's.
    vcpus = max(1, n - 1)
    times = {1: [], n: []}
    walls = {1: [], n: []}
    where = ""
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for threads in (1, n):
                said, wall, where = one(qpass, tmp, args.memory, vcpus, threads)
                times[threads].append(said)
                walls[threads].append(wall)
    for threads in (1, n):
        print("prealloc_threads %2d: allocated in %.2f s (median of %d), running after "
              "%.2f s" % (threads, statistics.median(times[threads]), args.rounds,
                          statistics.median(walls[threads])))
    ratio = statistics.median(times[n]) / statistics.median(times[1])
    print("ratio %d threads / 1 thread: %.2f (%s guest RAM; %s)" % (n, ratio, args.memory,
                                                                   where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
