#!/usr/bin/env python3
"""Runs one libFuzzer harness for a fixed time on a seed corpus made from the tree's own
inputs: the example profiles and the fixture hosts' profiles (profile), QMP traffic as
QEMU 7.2 writes it (qmp), the fixture hosts' sysfs and procfs files (host). Fails on a
crash, a leak, a sanitizer report or a timeout; prints how many inputs ran.

  run.py HARNESS-BINARY NAME [SECONDS]      (default $QP_FUZZ_SECONDS, else 10)"""

import glob
import os
import re
import subprocess
import sys
import tempfile

SOURCE = os.environ.get("QP_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.environ.get("QP_FIXTURES", "")

QMP = [
    b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": '
    b'"Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}\r\n',
    b'{"return": {}, "id": 1}\r\n',
    b'{"return": [{"cpu-index": 0, "thread-id": 2570, "props": {"core-id": 0}, '
    b'"qom-path": "/machine/unattached/device[0]", "target": "x86_64"}], "id": 2}\r\n',
    b'{"timestamp": {"seconds": 1733328000, "microseconds": 12}, "event": "POWERDOWN"}\r\n',
    b'{"timestamp": {"seconds": 1733328001, "microseconds": 5}, "event": "SHUTDOWN", '
    b'"data": {"guest": true, "reason": "guest-shutdown"}}\r\n',
    b'{"error": {"class": "GenericError", "desc": "No such device"}, "id": 3}\r\n',
    b'{"return": {"status": "running", "singlestep": false, "running": true}}\r\n'
    b'{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n',
]

# The host harness's first byte picks its parser (tests/fuzz/fuzz_host.c's enum).
HOST = [(0, "sys/devices/system/node/node*/cpulist"), (1, "sys/bus/pci/devices/*/resource"),
        (4, "sys/devices/system/node/node*/meminfo"), (5, "proc/modules"),
        (7, "proc/self/stat"), (8, "proc/cmdline"), (9, "proc/cpuinfo"),
        (10, "sys/bus/pci/devices/*/vendor"), (3, "proc/interrupts")]
HOST_TEXT = [
    (2, b"7f1234000000 bind:1 anon=65536 dirty=65536 N1=65536 kernelpagesize_kB=4\n"
        b"7f1300000000 default file=/dev/hugepages/x huge N0=4 kernelpagesize_kB=2048\n"),
    (3, b"           CPU0       CPU1\n 45:          0        120  IR-PCI-MSIX-0000:04:00.0"
        b"    0-edge      vfio-msix[0](0000:04:00.0)\nNMI:          0          0   Non-mask\n"),
    (6, b"Name:\tqemu-system-x86\nCpus_allowed:\tff\nCpus_allowed_list:\t0-3,8\n"),
    (7, b"2570 (CPU 0/KVM) S 2569 2569 2569 0 -1 4194560 0 0 0 0 5 1 0 0 20 0 6 0 1 "
        b"0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"),
]


def seeds(name):
    out = []
    if name == "profile":
        for pattern in ("profiles/examples/*.json", "tests/lab/*.json",
                        "tests/golden/plan/*.json"):
            out += [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(SOURCE,
                                                                                pattern)))]
    elif name == "qmp":
        out = [bytes([c]) + m for c in (0, 128, 255) for m in QMP] + [b"\x80" + b"".join(QMP)]
    elif name == "host":
        for sel, pattern in HOST:
            for f in sorted(glob.glob(os.path.join(FIXTURES, "*", pattern)))[:8]:
                try:
                    out.append(bytes([sel]) + open(f, "rb").read()[:65536])
                except OSError:
                    pass
        out += [bytes([sel]) + t for sel, t in HOST_TEXT]
    return out


def main():
    exe, name = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[3] if len(sys.argv) > 3 else os.environ.get("QP_FUZZ_SECONDS", "10"))
    with tempfile.TemporaryDirectory() as tmp:
        seed_dir, work = os.path.join(tmp, "seed"), os.path.join(tmp, "corpus")
        os.makedirs(seed_dir)
        os.makedirs(work)
        for i, s in enumerate(seeds(name)):
            with open(os.path.join(seed_dir, "%03d" % i), "wb") as f:
                f.write(s)
        env = dict(os.environ, ASAN_OPTIONS="abort_on_error=1:detect_leaks=1",
                   UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1")
        p = subprocess.run([exe, "-max_total_time=%d" % seconds, "-timeout=10",
                            "-rss_limit_mb=2048", "-max_len=65536", "-print_final_stats=1",
                            "-artifact_prefix=%s/" % os.getcwd(), work, seed_dir],
                           capture_output=True, text=True, env=env)
        runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
        n = len(os.listdir(seed_dir))
        if p.returncode != 0 or not runs:
            print(p.stderr[-6000:])
            print("fuzz-%s: FAILED (exit %d) after %s inputs; the input is kept as crash-* "
                  "or leak-* in %s" % (name, p.returncode, runs[0] if runs else "?",
                                      os.getcwd()))
            return 1
        print("fuzz-%s: %s inputs in %d s, no crash, leak or sanitizer report (%d seeds)" % (
            name, runs[0], seconds, n))
        return 0


if __name__ == "__main__":
    sys.exit(main())
