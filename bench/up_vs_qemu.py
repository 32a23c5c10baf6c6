#!/usr/bin/env python3
"""How much `qpass up` adds to starting QEMU by hand, and what its supervisor costs.

    bench/up_vs_qemu.py [--rounds N] [--qpass build/qpass]

Alternates, A B A B, in one run on this machine:
  (a) `qpass up PROFILE` until the VM runs with its vCPUs pinned (qpass writes
      state.json right after QMP `cont` succeeded), then `qpass down --force`;
  (b) the same QEMU argv (from `qpass plan --json`) started by hand: QMP socket as fd 3,
      -S, greeting and capabilities, query-cpus-fast, each vCPU thread pinned with
      sched_setaffinity, `cont`, until QMP says running; then quit.
and prints the median of each, the median ratio a/b, and the resident memory (VmRSS)
of the qpass supervisor while a VM runs. Targets: ratio <= 1.1, RSS <= 3 MB.
The profile is minimal and runs under TCG: what is measured is the launch path.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "cli"))
from qptest import Qemu  # noqa: E402

PROFILE = """{ "name": "bench", "memory": "128M", "vcpus": 1, "accel": "tcg",
  "machine": "pc", "video": "none", "usb": {"controller": "none"}, "memballoon": false,
  "shutdown_timeout": 5 }"""


def by_hand(argv, tmp, pins):
    """The same argv, started as qpass would, with the tests' helper (fd 3, greeting,
    capabilities), then pinned and let run."""
    t0 = time.monotonic()
    q = Qemu(argv, tmp)
    for cpu in q.cmd("query-cpus-fast"):
        os.sched_setaffinity(cpu["thread-id"], {pins[cpu["cpu-index"]]})
    q.cmd("cont")
    assert q.cmd("query-status")["status"] == "running"
    elapsed = time.monotonic() - t0
    q.quit()
    return elapsed


def with_qpass(qpass, profile, env, rundir):
    state = os.path.join(rundir, "bench", "state.json")
    t0 = time.monotonic()
    proc = subprocess.Popen([qpass, "up", profile], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while not os.path.exists(state):
        if proc.poll() is not None:
            sys.exit("qpass up failed: run it by hand to see why")
        time.sleep(0.0005)
    elapsed = time.monotonic() - t0
    with open("/proc/%d/status" % proc.pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    subprocess.run([qpass, "down", "bench", "--force"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.wait()
    return elapsed, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--qpass", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                    "qpass"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        profile = os.path.join(tmp, "bench.json")
        with open(profile, "w") as f:
            f.write(PROFILE)
        rundir = os.path.join(tmp, "run")
        env = dict(os.environ, QPASS_RUNDIR=rundir)
        env.pop("QPASS_SYSROOT", None)
        plan = json.loads(subprocess.run([args.qpass, "plan", profile, "--json"], env=env,
                                         capture_output=True, text=True, check=True).stdout)
        a, b, ratios, rss = [], [], [], []
        for _ in range(args.rounds):
            ta, r = with_qpass(args.qpass, profile, env, rundir)
            tb = by_hand(plan["argv"], tmp, plan["vcpu_pins"])
            a.append(ta)
            b.append(tb)
            ratios.append(ta / tb)
            rss.append(r)
    print("rounds: %d (A B alternating), QEMU under TCG, 1 vCPU" % args.rounds)
    print("qpass up until running and pinned: median %.1f ms" % (statistics.median(a) * 1000))
    print("QEMU by hand, pinned, cont:        median %.1f ms" % (statistics.median(b) * 1000))
    print("ratio a/b: median %.3f (target <= 1.1)" % statistics.median(ratios))
    print("qpass supervisor RSS while the VM runs: median %.1f MB (target <= 3 MB)"
          % (statistics.median(rss) / 1024))


if __name__ == "__main__":
    main()
