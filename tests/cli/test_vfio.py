"""Binding to vfio-pci and giving back, on fixture hosts under the fake kernel
(tests/fakekernel): for every step of bind and of give-back, qpass is killed before or
after the step, or the step fails (EBUSY, ENODEV, a write that hangs); then
`qpass restore` must leave every driver link and driver_override as it was."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import fixture, main, scratch  # noqa: E402

QPASS_FK = os.environ.get("QPASS_FK", "")


def snapshot(root):
    """Every driver link (both ends) and driver_override of the tree."""
    out = {}
    for base in ("sys/devices", "sys/bus/pci/drivers"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, base)):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                rel = os.path.relpath(p, root)
                if os.path.islink(p) and (n == "driver" or n.startswith("0000:")):
                    out[rel] = os.readlink(p)
                elif n == "driver_override":
                    with open(p) as f:
                        out[rel] = f.read()
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return out


class Host:
    def __init__(self, tmp, name="seed"):
        self.root = os.path.join(tmp, "host")
        shutil.copytree(fixture(name), self.root, symlinks=True)
        self.rundir = os.path.join(tmp, "run")
        self.start = snapshot(self.root)

    def fk(self, *args, fault=None):
        env = dict(os.environ, QPASS_RUNDIR=self.rundir, QPASS_SYSFS_TIMEOUT_MS="300")
        env.pop("QPASS_FAKE_FAULT", None)
        if fault:
            env["QPASS_FAKE_FAULT"] = fault
        return subprocess.run([QPASS_FK, "--sysroot", self.root] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)

    def driver(self, addr):
        link = os.path.join(self.root, "sys/bus/pci/devices", addr, "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def journal(self):
        return os.path.exists(os.path.join(self.rundir, "journal", "manual.json"))

    def assert_restored(self, what):
        now = snapshot(self.root)
        diff = {k for k in set(now) | set(self.start) if now.get(k) != self.start.get(k)}
        assert not diff, "%s: not as it was: %s" % (what, sorted(diff)[:6])
        assert not self.journal(), "%s: the journal is still there" % what


# The seed's 08:00 (4 functions on host drivers) and 8a:00 (one on a driver, three on
# none).
DEVICES = ["08:00", "8a:00"]
FUNCS = ["0000:%s.%d" % (d, f) for d in DEVICES for f in range(4)]

# For the fault matrix, a smaller tree: desktop-chipset's GTX 1660 Ti (4 functions on
# host drivers: 3 writes each way) and its LPC bridge function 00:14.3 (no driver: 2).
FAULT_HOST = "desktop-chipset"
FAULT_DEVICES = ["07:00", "00:14.3"]


def test_round_trip():
    with scratch() as tmp:
        h = Host(tmp)
        p = h.fk("bind", *DEVICES, "04:00")
        assert p.returncode == 0, p.stderr
        for a in FUNCS + ["0000:04:00.%d" % f for f in range(4)]:
            assert h.driver(a) == "vfio-pci", (a, h.driver(a))
        assert os.path.exists(os.path.join(h.root, "dev/vfio/46"))
        with open(os.path.join(h.rundir, "journal", "manual.json")) as f:
            j = json.load(f)["functions"]
        assert j[0] == {"address": "0000:08:00.0", "driver": "nouveau", "driver_override": None}
        # 04:00 was on vfio-pci before: it stays there.
        p = h.fk("unbind", *DEVICES, "04:00")
        assert p.returncode == 0, p.stderr
        h.assert_restored("bind then unbind")
        assert not os.path.exists(os.path.join(h.root, "dev/vfio/46"))
        assert os.path.exists(os.path.join(h.root, "dev/vfio/44"))
        p = h.fk("restore")
        assert p.returncode == 0 and "nothing to restore" in p.stderr, p.stderr


def count_writes(args_list):
    """How many sysfs writes the steps make, by failing the nth until none fails."""
    n = 1
    while True:
        with scratch() as tmp:
            h = Host(tmp, FAULT_HOST)
            for args in args_list[:-1]:
                assert h.fk(*args).returncode == 0
            if h.fk(*args_list[-1], fault="%d:EIO" % n).returncode == 0:
                return n - 1
        n += 1


def faults(step, kinds):
    # A write that hangs costs the whole deadline: every third step is enough for it.
    return [k for k in kinds if k != "hang" or step % 3 == 1]


def test_every_fault_while_binding():
    steps = count_writes([["bind"] + FAULT_DEVICES])
    assert steps == 14, steps
    for step in range(1, steps + 1):
        for what in faults(step, ("kill", "killafter", "EBUSY", "ENODEV", "hang")):
            with scratch() as tmp:
                h = Host(tmp, FAULT_HOST)
                p = h.fk("bind", *FAULT_DEVICES, fault="%d:%s" % (step, what))
                label = "bind, step %d, %s" % (step, what)
                if what.startswith("kill"):
                    assert p.returncode == -9, (label, p.returncode, p.stderr)
                else:
                    # Failed in place: already given back, nothing half bound.
                    assert p.returncode == 1 and "qpass: error: " in p.stderr, (label, p)
                    h.assert_restored(label + ", without restore")
                r = h.fk("restore", "manual")
                assert r.returncode == 0, (label, r.stderr)
                h.assert_restored(label)


def test_every_fault_while_giving_back():
    steps = count_writes([["bind"] + FAULT_DEVICES, ["unbind"] + FAULT_DEVICES])
    assert steps == 14, steps
    for step in range(1, steps + 1):
        for what in faults(step, ("kill", "killafter", "EBUSY", "hang")):
            with scratch() as tmp:
                h = Host(tmp, FAULT_HOST)
                assert h.fk("bind", *FAULT_DEVICES).returncode == 0
                p = h.fk("unbind", *FAULT_DEVICES, fault="%d:%s" % (step, what))
                label = "unbind, step %d, %s" % (step, what)
                assert p.returncode != 0, label
                r = h.fk("restore", "manual")
                assert r.returncode == 0, (label, r.stderr)
                h.assert_restored(label)
                # Idempotent: once more changes nothing.
                assert "nothing to restore" in h.fk("restore", "manual").stderr


def test_loads_vfio_pci():
    """desktop-peg has no vfio-pci driver: qpass loads it, then binds."""
    with scratch() as tmp:
        h = Host(tmp, "desktop-peg")
        p = h.fk("bind", "01:00")
        assert p.returncode == 0, p.stderr
        assert h.driver("0000:01:00.0") == "vfio-pci"
        assert h.fk("unbind", "01:00").returncode == 0
        assert h.driver("0000:01:00.0") == "nvidia"
        assert h.driver("0000:01:00.1") == "snd_hda_intel"


def test_bad_addresses():
    with scratch() as tmp:
        h = Host(tmp)
        p = h.fk("bind", "42:00")
        assert p.returncode == 1 and "there is no device 42:00" in p.stderr, p.stderr
        p = h.fk("bind")
        assert p.returncode == 2
        h.assert_restored("nothing done")


if __name__ == "__main__":
    sys.exit(main([test_round_trip, test_every_fault_while_binding,
                   test_every_fault_while_giving_back, test_loads_vfio_pci,
                   test_bad_addresses]))
