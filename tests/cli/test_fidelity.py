"""The system's own lspci, pointed at each fixture host (and at this machine), must see
the same devices, ids, classes, revisions and names as `qpass list --all --json`."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import HOSTS, SKIP, fixture, list_json, main  # noqa: E402

LINE = re.compile(r"^(?P<addr>\S+) (?P<cls_name>.+) \[(?P<cls>[0-9a-f]{4})\]: "
                  r"(?P<name>.+) \[(?P<ven>[0-9a-f]{4}):(?P<dev>[0-9a-f]{4})\]"
                  r"(?: \(rev (?P<rev>[0-9a-f]{2})\))?$")


def lspci(sysroot):
    sysfs = os.path.join(sysroot, "sys/bus/pci")
    p = subprocess.run(["lspci", "-A", "linux-sysfs", "-O", "sysfs.path=" + sysfs, "-nn", "-D"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = {}
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        assert m, "unexpected lspci line: %r" % line
        out[m["addr"]] = m.groupdict()
    return out


def without_numbers(name):
    """lspci -nn prints unknown ids only once, in the brackets: "Device [10b5:8796]";
    qpass's name is lspci's plain form, "Device 8796"."""
    name = re.sub(r" \[[0-9a-f]{4}\]$", "", name)  # "Unassigned class [ffff]"
    return re.sub(r"\b(Device|Class|Vendor) [0-9a-f]{4}(:[0-9a-f]{4})?$", r"\1", name)


def compare(sysroot):
    want = lspci(sysroot)
    doc = list_json(sysroot)
    got = {d["address"]: d for d in doc["devices"]}
    assert sorted(got) == sorted(want), "devices differ:\nlspci: %s\nqpass: %s" % (
        sorted(want), sorted(got))
    for a, w in want.items():
        d = got[a]
        for ours, theirs in (("vendor", "ven"), ("device", "dev"), ("class", "cls"),
                             ("name", "name"), ("class_name", "cls_name")):
            mine = without_numbers(d[ours]) if ours.endswith("name") else d[ours]
            assert mine == w[theirs], "%s %s: qpass %r, lspci %r" % (a, ours, d[ours],
                                                                     w[theirs])
        if w["rev"]:
            assert d["revision"] == w["rev"], (a, d["revision"], w["rev"])
    return len(want)


def test_every_fixture():
    for h in HOSTS:
        n = compare(fixture(h))
        assert n > 5, (h, n)


def test_this_machine():
    compare("/")


if __name__ == "__main__":
    if not shutil.which("lspci"):
        print("lspci is missing: apt-get install pciutils (tools/dev deps does)")
        sys.exit(SKIP)
    sys.exit(main([test_every_fixture, test_this_machine]))
