#!/usr/bin/env python3
"""How fast `qpass up` preallocates the guest RAM: the same guest with one
preallocation thread (the baseline) and with one per CPU of the VM, in the same run.

    bench/prealloc.py [--rounds N] [--memory 4G] [--build build]

Starts, in turn, `qpass up` of a TCG guest with "prealloc": true and "prealloc_threads"
1, then N (this machine's CPUs, at most 16), with the real qemu-system-x86_64; takes the
wall time from starting `qpass up` until it says the VM runs (and what qpass reports,
"guest RAM preallocated: ... in T s"); stops it; and prints each median, the ratio of
the wall times (N threads / 1 thread), and how much of the RAM was on the node. Needs the free
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
sys.path.insert(0, HERE)
from benchlib import wait_runs  # noqa: E402
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
    got = {}

    def seen(line):
        m = re.search(r"guest RAM preallocated: ([0-9.]+) GiB(?:, ([0-9.]+) GiB on node "
                      r"\d+)?, by \d+ threads in ([0-9.]+) s", line)
        if m:
            got["said"] = float(m.group(3))
            got["where"] = "%s of %s GiB on the node" % (m.group(2), m.group(1)) \
                if m.group(2) else "%s GiB" % m.group(1)
    wait_runs(up, "pre", seen)
    wall = time.monotonic() - t0
    up.terminate()
    up.communicate(timeout=60)
    if "said" not in got:
        sys.exit("qpass up did not say that it preallocated")
    return got["said"], wall, got["where"]


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
        print("prealloc_threads %2d: running after %.2f s (median of %d; qpass said "
              "allocated in %.1f s)" % (threads, statistics.median(walls[threads]),
                                        args.rounds, statistics.median(times[threads])))
    ratio = statistics.median(walls[n]) / statistics.median(walls[1])
    print("ratio %d threads / 1 thread: %.2f (%s guest RAM; %s)" % (n, ratio, args.memory,
                                                                   where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
