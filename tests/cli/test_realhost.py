"""`qpass list` on this machine's own /sys: it must work, and say whether the IOMMU is
off exactly as the kernel shows it (these CI machines have none: the message and fix)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import main, run  # noqa: E402


def iommu_off_here():
    try:
        return not os.listdir("/sys/kernel/iommu_groups")
    except FileNotFoundError:
        return True


def test_list_text():
    p = run("list")
    assert p.returncode == 0, p.stderr
    for line in p.stdout.splitlines():
        assert len(line) <= 80, line
    if iommu_off_here():
        assert p.stdout.count("The IOMMU is off") == 1, p.stdout
        assert "_iommu=on" in p.stdout and "GRUB_CMDLINE_LINUX" in p.stdout
    else:
        assert "IOMMU  on" in p.stdout


def test_list_json():
    p = run("list", "--all", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["sysroot"] == "/"
    assert doc["iommu"]["enabled"] == (not iommu_off_here())
    if iommu_off_here():
        assert "_iommu=on" in doc["iommu"]["message"]
    want = sorted(os.listdir("/sys/bus/pci/devices"))
    assert [d["address"] for d in doc["devices"]] == want
    cpus = sorted(c["cpu"] for c in doc["cpus"])
    assert len(cpus) == os.cpu_count(), (cpus, os.cpu_count())


if __name__ == "__main__":
    sys.exit(main([test_list_text, test_list_json]))
