"""Binding to vfio-pci and giving back, on fixture hosts under the fake kernel
(tests/fakekernel): for every step of bind and of give-back, qpass is killed before or
after the step, or the step fails (EBUSY, ENODEV, a write that hangs); then
`qpass restore` must leave every driver link and driver_override as it was."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

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


def hold_devices(root, holders):
    """The fixture's 08:00.0 with a DRM node (/dev/dri/card1, by-path), and host
    processes (pid, comm, the file they have open as fd 3) in its /proc."""
    os.makedirs(os.path.join(root, "dev/dri/by-path"))
    open(os.path.join(root, "dev/dri/card1"), "w").close()
    os.symlink("../card1", os.path.join(root, "dev/dri/by-path/pci-0000:08:00.0-card"))
    for pid, comm, target in holders:
        os.makedirs(os.path.join(root, "proc", pid, "fd"))
        os.symlink(target, os.path.join(root, "proc", pid, "fd", "3"))
        with open(os.path.join(root, "proc", pid, "comm"), "w") as f:
            f.write(comm + "\n")


def test_busy_device_names_its_holders():
    """An unbind that hangs: qpass gives up, names who holds the device, and leaves
    nothing half bound."""
    with scratch() as tmp:
        h = Host(tmp)
        hold_devices(h.root, (("4242", "Xorg", "/dev/dri/card1"),
                              ("77", "nvidia-smi", "/dev/nvidia0"),
                              ("99", "bash", "/dev/pts/0")))
        # Write 2 is unbinding 08:00.0 from nouveau.
        p = h.fk("bind", "08:00", fault="2:hang")
        assert p.returncode == 1, p
        assert "did not finish within 300 ms" in p.stderr, p.stderr
        assert "in use by 4242 (Xorg), 77 (nvidia-smi)" in p.stderr, p.stderr
        assert "bash" not in p.stderr
        h.assert_restored("a busy device")


def test_bad_addresses():
    with scratch() as tmp:
        h = Host(tmp)
        p = h.fk("bind", "42:00")
        assert p.returncode == 1 and "there is no device 42:00" in p.stderr, p.stderr
        p = h.fk("bind")
        assert p.returncode == 2
        h.assert_restored("nothing done")


STUB = os.path.join(os.path.dirname(__file__), "..", "fakekernel", "qemu-stub")

VM = """{ "name": "%s", "memory": "256M", "vcpus": 1, "machine": "pc", "video": "none",
  "usb": {"controller": "none"}, "passthrough": ["08:00"], "emulator_cpus": "0-1",
  "qemu": "%s", "shutdown_timeout": 5 %s}"""


class VmUp:
    """`qpass-fk up` of a VM with the seed's 08:00 on the fixture (or of `text`), QEMU a
    stub."""

    def __init__(self, h, name="gpuvm", extra="", fault=None, text=None):
        self.h, self.name = h, name
        self.profile = os.path.join(os.path.dirname(h.root), name + ".json")
        with open(self.profile, "w") as f:
            f.write(text or VM % (name, os.path.abspath(STUB), extra))
        self.argv_file = os.path.join(os.path.dirname(h.root), name + ".argv")
        env = dict(os.environ, QPASS_RUNDIR=h.rundir, QP_STUB_ARGV=self.argv_file,
                   QPASS_SYSFS_TIMEOUT_MS="300")
        env.pop("QPASS_FAKE_FAULT", None)
        if fault:
            env["QPASS_FAKE_FAULT"] = fault
        self.proc = subprocess.Popen([QPASS_FK, "--sysroot", h.root, "up", self.profile],
                                     env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.state_path = os.path.join(h.rundir, name, "state.json")

    def running(self, timeout=30, may_fail=False):
        """The state once the VM runs; when `up` ends first, None if may_fail."""
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(self.state_path):
                with open(self.state_path) as f:
                    st = json.load(f)
                if st["qpass_pid"] == self.proc.pid:
                    return st
            if self.proc.poll() is not None:
                if may_fail:
                    return None
                raise AssertionError("up ended: %d %s" % (self.proc.returncode,
                                                          self.proc.stderr.read()))
            time.sleep(0.02)
        raise AssertionError("the VM did not start")

    def kill9(self, st):
        """kill -9 of qpass; its QEMU (stub) dies with it (PR_SET_PDEATHSIG)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for _ in range(200):
            if not os.path.exists("/proc/%d" % st["qemu_pid"]) or \
                    open("/proc/%d/stat" % st["qemu_pid"]).read().split(") ")[1][0] == "Z":
                return
            time.sleep(0.05)
        raise AssertionError("the QEMU stub outlived qpass")

    def finish(self):
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


def test_up_with_passthrough():
    with scratch() as tmp:
        h = Host(tmp)
        vm = VmUp(h)
        vm.running()
        for f in range(4):
            assert h.driver("0000:08:00.%d" % f) == "vfio-pci"
        assert os.path.exists(os.path.join(h.root, "dev/vfio/46"))
        with open(vm.argv_file) as f:
            argv = json.load(f)
        hosts = [json.loads(a)["host"] for a in argv if a.startswith('{"driver":"vfio-pci"')]
        assert hosts == ["0000:08:00.%d" % f for f in range(4)], hosts
        locks = sorted(os.listdir(os.path.join(h.rundir, "devices")))
        assert locks == ["0000:08:00.%d.lock" % f for f in range(4)], locks
        # A second VM that wants the same device is refused, naming the holder.
        other = VmUp(h, name="other")
        rc, err = other.finish()
        assert rc == 1 and "0000:08:00.0 is taken by the VM gpuvm" in err, err
        assert h.driver("0000:08:00.0") == "vfio-pci"
        p = h.fk("down", "gpuvm")
        assert p.returncode == 0, p.stderr
        rc, err = vm.finish()
        assert rc == 0 and "the devices are back on their host drivers" in err, err
        h.assert_restored("up, then down")
        assert os.listdir(os.path.join(h.rundir, "devices")) == []


def test_up_killed_then_restore():
    with scratch() as tmp:
        h = Host(tmp)
        vm = VmUp(h)
        st = vm.running()
        p = h.fk("restore")
        assert "gpuvm is running" in p.stderr, p.stderr
        assert h.driver("0000:08:00.0") == "vfio-pci"
        vm.kill9(st)
        # A QEMU of gpuvm that outlived its qpass (stood in for by a process with its
        # -name): restore refuses to pull the devices from under it.
        qemu = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                 "-name", "guest=gpuvm,debug-threads=on"])
        try:
            with open(vm.state_path) as f:
                state = json.load(f)
            state["qemu_pid"] = qemu.pid
            with open(vm.state_path, "w") as f:
                json.dump(state, f)
            p = h.fk("restore")
            assert p.returncode == 1 and "(pid %d) still runs" % qemu.pid in p.stderr and \
                "kill %d" % qemu.pid in p.stderr, p.stderr
            assert h.driver("0000:08:00.0") == "vfio-pci"
        finally:
            qemu.kill()
            qemu.wait()
        p = h.fk("restore")
        assert p.returncode == 0 and "restored the devices of gpuvm" in p.stderr, p.stderr
        h.assert_restored("kill -9 of up, then restore")
        assert "nothing to restore" in h.fk("restore").stderr


def test_up_fails_at_every_bind_step():
    for step in range(1, 13):
        for what in ("EBUSY", "kill"):
            with scratch() as tmp:
                h = Host(tmp)
                vm = VmUp(h, fault="%d:%s" % (step, what))
                rc, err = vm.finish()
                label = "up, bind step %d, %s" % (step, what)
                if what == "kill":
                    assert rc == -9, (label, rc, err)
                    assert h.fk("restore").returncode == 0
                else:
                    assert rc == 1 and "binding 0000:08:00." in err, (label, err)
                h.assert_restored(label)


def test_up_fails_while_giving_back():
    """up makes 12 writes to bind 08:00; 13 to 24 give it back after `down`."""
    for step in range(13, 25):
        for what in ("EBUSY", "killafter"):
            with scratch() as tmp:
                h = Host(tmp)
                vm = VmUp(h, fault="%d:%s" % (step, what))
                vm.running()
                h.fk("down", "gpuvm")
                rc, err = vm.finish()
                label = "up, give-back step %d, %s" % (step, what)
                if what == "EBUSY":
                    assert rc == 0 and "qpass restore gpuvm" in err, (label, err)
                else:
                    assert rc == -9, (label, rc)
                r = h.fk("restore")
                assert r.returncode == 0, (label, r.stderr)
                h.assert_restored(label)


def test_memlock_said_before_anything():
    with scratch() as tmp:
        h = Host(tmp)
        os.environ["QPASS_FAKE_MEMLOCK"] = "EPERM"
        try:
            vm = VmUp(h)
            rc, err = vm.finish()
        finally:
            del os.environ["QPASS_FAKE_MEMLOCK"]
        assert rc == 1 and "cannot raise RLIMIT_MEMLOCK to 4563402752 bytes" in err, err
        assert "guest RAM + 1 GiB per VFIO device" in err and "fix: " in err, err
        h.assert_restored("memlock refused")
        assert not os.path.exists(os.path.join(h.rundir, "devices"))


def nobody():
    """The user run_as tests give QEMU to; None (said) when not root."""
    if os.geteuid() != 0:
        print("# not root: run_as not tested")
        return None
    import pwd
    return pwd.getpwnam("nobody")


def test_run_as_owns_the_group():
    user = nobody()
    if not user:
        return
    with scratch() as tmp:
        h = Host(tmp)
        node = os.path.join(h.root, "dev/vfio/46")
        vm = VmUp(h, extra=', "run_as": "nobody"')
        vm.running()
        assert os.stat(node).st_uid == user.pw_uid
        assert h.fk("down", "gpuvm").returncode == 0
        rc, err = vm.finish()
        assert rc == 0, err
        h.assert_restored("run_as")


def test_run_as_node_restored_after_a_crash():
    """A group node that outlives the VM (its device was on vfio-pci before: the seed's
    04:00, group 44) goes back to its owner by `restore` after a kill -9 of qpass: the
    change of owner was journaled before it was made."""
    user = nobody()
    if not user:
        return
    with scratch() as tmp:
        h = Host(tmp)
        node = os.path.join(h.root, "dev/vfio/44")
        was = os.stat(node)
        vm = VmUp(h, text=VM.replace('"08:00"', '"04:00"') % (
            "gpuvm", os.path.abspath(STUB), ', "run_as": "nobody"'))
        st = vm.running()
        assert os.stat(node).st_uid == user.pw_uid
        with open(os.path.join(h.rundir, "journal", "gpuvm.json")) as f:
            nodes = json.load(f)["nodes"]
        assert nodes == [{"group": 44, "uid": was.st_uid, "gid": was.st_gid}], nodes
        vm.kill9(st)
        assert os.stat(node).st_uid == user.pw_uid  # as the crash left it
        p = h.fk("restore")
        assert p.returncode == 0 and "restored the devices of gpuvm" in p.stderr, p.stderr
        now = os.stat(node)
        assert (now.st_uid, now.st_gid, now.st_mode) == (was.st_uid, was.st_gid, was.st_mode)
        h.assert_restored("run_as, kill -9, restore")


def test_restore_refuses_a_forged_journal():
    """A journal is read back as root into sysfs paths: a driver or override that is not a
    driver's name (../../x) is refused with the entry named, and nothing is written; a
    path for NAME is refused as a usage error."""
    with scratch() as tmp:
        h = Host(tmp)
        assert h.fk("bind", "08:00").returncode == 0
        path = os.path.join(h.rundir, "journal", "manual.json")
        with open(path) as f:
            good = f.read()
        bound = snapshot(h.root)
        for key, value in (("driver", "../../x"), ("driver_override", "a/b"),
                           ("driver", "")):
            j = json.loads(good)
            j["functions"][1][key] = value
            with open(path, "w") as f:
                json.dump(j, f)
            p = h.fk("restore", "manual")
            assert p.returncode == 1, (value, p.stderr)
            assert "entry 1 (0000:08:00.1) names the driver \"%s\"" % value in p.stderr, p.stderr
            assert "nothing was changed" in p.stderr, p.stderr
            assert snapshot(h.root) == bound, value
        with open(path, "w") as f:
            f.write(good)
        p = h.fk("restore", "../x")
        assert p.returncode == 2 and "is not a VM name" in p.stderr, p.stderr
        assert h.fk("restore", "manual").returncode == 0
        h.assert_restored("after the forged journals")


if __name__ == "__main__":
    sys.exit(main([test_restore_refuses_a_forged_journal, test_round_trip, test_every_fault_while_binding,
                   test_every_fault_while_giving_back, test_loads_vfio_pci,
                   test_bad_addresses, test_busy_device_names_its_holders,
                   test_up_with_passthrough, test_up_killed_then_restore,
                   test_up_fails_at_every_bind_step, test_up_fails_while_giving_back,
                   test_memlock_said_before_anything,
                   test_run_as_owns_the_group, test_run_as_node_restored_after_a_crash]))
