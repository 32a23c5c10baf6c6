"""What the benchmarks share: waiting for `qpass up` to say that its VM runs."""

import sys


def wait_runs(proc, name, seen=None):
    """Reads proc's stderr (a `qpass up` started with stderr=PIPE, text=True) until it
    says that VM name runs; each earlier line goes to seen(line) when given. Exits with
    a message when qpass ends first."""
    for line in proc.stderr:
        if line.startswith("qpass: %s runs:" % name):
            return line
        if seen:
            seen(line)
    sys.exit("qpass up %s failed: run it by hand to see why" % name)
