#!/usr/bin/env python3
"""What reading a host costs qpass, as hosts grow: the figures of the README's
performance section, in one run on this machine.

    bench/host_scale.py [--rounds N] [--qpass build/qpass] [--dir DIR]

Writes three fixture hosts with tests/fixtures/mkhost.py (into DIR, by default a
temporary directory; a tree already there is used again): the seed's host; a host of
500-odd PCI functions (8 GPUs of 8 functions, 400 others, 8 NUMA nodes, 256 CPUs); and
one of 6,000-odd (64 GPUs of 8 functions, 5,000 others, the same nodes and CPUs). Then
runs, in turn, round after round (A B C ... A B C ...), each command as a whole process,
taking its CPU time (user + system) and peak memory (maxrss) from the kernel (wait4, in
a small C parent built with cc: see RUSAGE_C):

    qpass --version                              the process's own start
    qpass plan --json, the seed's VM on the seed's host
    qpass plan --json, a four-GPU VM, on the small host and on the large one
    qpass list --all --json, qpass list --all    on the large host
    lspci -nnk                                   on the large host (the yardstick)

and prints each command's median, the ratios (per round, then their median) and the
targets: the seed's plan under 4 ms and at most 2 x --version; the large host's plan
under 10 ms and at most 1.5 x the small host's; list --all --json at most lspci's CPU
time, and under 16 MiB. Exit status 0; it measures, it does not judge.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
MKHOST = os.path.join(SOURCE, "tests", "fixtures", "mkhost.py")

HOSTS = {
    "seed": ["seed"],
    "small": ["scale", "--gpus", "8", "--functions", "8", "--others", "400", "--nodes", "8",
              "--cpus", "256"],
    "large": ["scale", "--gpus", "64", "--functions", "8", "--others", "5000", "--nodes",
              "8", "--cpus", "256"],
}

FOUR = """{ "name": "four", "memory": "16G", "vcpus": 8,
  "passthrough": ["01:00", "02:00", "03:00", "04:00"] }
"""


def make_hosts(base):
    roots = {}
    for name, args in HOSTS.items():
        root = os.path.join(base, name)
        stamp = os.path.join(root, ".bench-args")
        want = " ".join(args)
        if not (os.path.exists(stamp) and open(stamp).read() == want):
            sys.stderr.write("writing the %s host (%s)...\n" % (name, want))
            subprocess.run([sys.executable, MKHOST, args[0], root] + args[1:], check=True)
            with open(stamp, "w") as f:
                f.write(want)
        roots[name] = root
    return roots


def functions(root):
    return len(os.listdir(os.path.join(root, "sys/bus/pci/devices")))


# The measuring parent: a small C process that forks, execs the command (its output to
# /dev/null) and prints what wait4 says of it. Not this Python process: the peak memory
# the kernel reports (maxrss) counts what the process was before its exec, and a fork of
# Python is 11 MB before it execs anything.
RUSAGE_C = r"""#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
  pid_t pid = fork();
  if (pid == 0) { int null = open("/dev/null", O_WRONLY); dup2(null, 1); dup2(null, 2);
    execvp(argv[1], argv + 1); _exit(127); }
  int status; struct rusage ru;
  if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) return 126;
  printf("%ld %ld %ld\n", ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec,
         ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec, ru.ru_maxrss);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125; }
"""


def build_rusage(base):
    exe = os.path.join(base, "rusage")
    subprocess.run(["cc", "-O2", "-x", "c", "-o", exe, "-"], input=RUSAGE_C, text=True,
                   check=True)
    return exe


def run_once(rusage, argv):
    """CPU seconds (user + system) and peak resident memory (KiB) of one run."""
    r = subprocess.run([rusage] + argv, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit("%s: exit status %d" % (" ".join(argv), r.returncode))
    user, system, maxrss = (int(x) for x in r.stdout.split())
    return (user + system) / 1e6, maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--qpass", default=os.path.join(SOURCE, "build", "qpass"))
    ap.add_argument("--dir", help="where the hosts are written (kept there)")
    args = ap.parse_args()
    qpass = os.path.abspath(args.qpass)
    tmp = None
    base = args.dir
    if not base:
        tmp = tempfile.mkdtemp(prefix="qpass-bench-")
        base = tmp
    try:
        roots = make_hosts(base)
        rusage = build_rusage(base)
        four = os.path.join(base, "four.json")
        with open(four, "w") as f:
            f.write(FOUR)
        seed_vm = os.path.join(SOURCE, "profiles", "examples", "win10-gpu-01.json")
        large_pci = os.path.join(roots["large"], "sys/bus/pci")
        cmds = [
            ("version", [qpass, "--version"]),
            ("plan seed", [qpass, "--sysroot", roots["seed"], "plan", seed_vm, "--json"]),
            ("plan small", [qpass, "--sysroot", roots["small"], "plan", four, "--json"]),
            ("plan large", [qpass, "--sysroot", roots["large"], "plan", four, "--json"]),
            ("list json", [qpass, "--sysroot", roots["large"], "list", "--all", "--json"]),
            ("list text", [qpass, "--sysroot", roots["large"], "list", "--all"]),
            ("lspci", ["lspci", "-A", "linux-sysfs", "-O", "sysfs.path=" + large_pci, "-nnk"]),
        ]
        for _, argv in cmds:  # warm the page cache
            run_once(rusage, argv)
        cpu = {n: [] for n, _ in cmds}
        rss = {n: [] for n, _ in cmds}
        for _ in range(args.rounds):
            for name, argv in cmds:
                c, m = run_once(rusage, argv)
                cpu[name].append(c)
                rss[name].append(m)
        print("hosts: seed %d, small %d, large %d PCI functions; %d rounds, commands in turn"
              % (functions(roots["seed"]), functions(roots["small"]),
                 functions(roots["large"]), args.rounds))
        print("%-11s %10s %10s %10s" % ("", "CPU ms", "(min)", "peak MiB"))
        for name, argv in cmds:
            print("%-11s %10.2f %10.2f %10.1f" % (name, statistics.median(cpu[name]) * 1e3,
                                                  min(cpu[name]) * 1e3,
                                                  max(rss[name]) / 1024))

        def ratio(a, b):
            return statistics.median(x / y for x, y in zip(cpu[a], cpu[b]) if y)

        seed_ms = statistics.median(cpu["plan seed"]) * 1e3
        large_ms = statistics.median(cpu["plan large"]) * 1e3
        list_mib = max(rss["list json"]) / 1024
        rows = [
            ("plan seed, CPU", "%.2f ms" % seed_ms, "< 4 ms", seed_ms < 4),
            ("plan seed / --version", "%.2f" % ratio("plan seed", "version"), "<= 2",
             ratio("plan seed", "version") <= 2),
            ("plan large, CPU", "%.2f ms" % large_ms, "< 10 ms", large_ms < 10),
            ("plan large / plan small", "%.2f" % ratio("plan large", "plan small"), "<= 1.5",
             ratio("plan large", "plan small") <= 1.5),
            ("list --all --json / lspci", "%.2f" % ratio("list json", "lspci"), "<= 1",
             ratio("list json", "lspci") <= 1),
            ("list --all / lspci", "%.2f" % ratio("list text", "lspci"), "", None),
            ("list --all --json, peak", "%.1f MiB" % list_mib, "< 16 MiB", list_mib < 16),
        ]
        print()
        for what, got, target, ok in rows:
            print("%-27s %10s   %-9s %s" % (what, got, target,
                                            "" if ok is None else "met" if ok else "MISSED"))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
