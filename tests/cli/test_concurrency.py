"""Nothing lost under concurrency and faults, on the seed's host fixture under the fake
kernel (QEMU a stub): `bind`s of different devices and of one device at once, with
kill -9 at random times, then `restore manual`, the host compared to its snapshot
after each trial; `bind`, `unbind` and `restore` refuse a device that a running VM
has; a QEMU that sends garbage on QMP, wrong thread ids, or stops with an internal
error.

QP_STRESS_TRIALS sets the number of trials (default 50; `tools/dev stress` runs more)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from qptest import main, scratch  # noqa: E402
from test_vfio import QPASS_FK, STUB, VM, Host, VmUp, snapshot  # noqa: E402

TRIALS = int(os.environ.get("QP_STRESS_TRIALS", "50"))
A, B = "08:00", "09:00"
FUNCS = {d: ["0000:%s.%d" % (d, f) for f in range(4)] for d in (A, B)}


def start(h, *args):
    env = dict(os.environ, QPASS_RUNDIR=h.rundir, QPASS_SYSFS_TIMEOUT_MS="300")
    env.pop("QPASS_FAKE_FAULT", None)
    return subprocess.Popen([QPASS_FK, "--sysroot", h.root] + list(args), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def journaled(h):
    path = os.path.join(h.rundir, "journal", "manual.json")
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {e["address"] for e in json.load(f)["functions"]}


def test_binds_at_once_lose_nothing():
    """Each trial: `bind A`, `bind B` and a second `bind A` at once, one of them killed
    -9 at a random moment in some trials. Whatever ran, every function on vfio-pci is
    in the journal, exactly one `bind A` wins (unless killed), and `restore manual`
    gives the host back exactly."""
    rng = random.Random(15)
    stats = {"trials": 0, "kills": 0, "lost": 0, "restored": 0, "double": 0}
    with scratch() as tmp:
        h = Host(tmp)
        for t in range(TRIALS):
            procs = [("A1", start(h, "bind", A)), ("B", start(h, "bind", B)),
                     ("A2", start(h, "bind", A))]
            killed = None
            if t % 3 == 2:
                time.sleep(rng.uniform(0, 0.03))
                killed, victim = procs[rng.randrange(3)]
                victim.send_signal(signal.SIGKILL)
                stats["kills"] += 1
            out = {}
            for name, p in procs:
                _, err = p.communicate(timeout=60)
                out[name] = (p.returncode, err)
            on_vfio = {a for d in (A, B) for a in FUNCS[d] if h.driver(a) == "vfio-pci"}
            lost = on_vfio - journaled(h)
            stats["lost"] += len(lost)
            assert not lost, (t, sorted(lost), out)
            wins = [n for n in ("A1", "A2") if out[n][0] == 0]
            if killed not in ("A1", "A2"):
                if len(wins) != 1:
                    stats["double"] += 1
                assert len(wins) == 1, (t, out)
                loser = "A2" if wins == ["A1"] else "A1"
                assert out[loser][0] == 1 and "already bound by `qpass bind`" in \
                    out[loser][1], (t, out[loser])
            if killed != "B":
                assert out["B"][0] == 0, (t, out["B"])
            p = h.fk("restore", "manual")
            assert p.returncode == 0, (t, p.stderr)
            h.assert_restored("trial %d" % t)
            litter = [n for n in os.listdir(os.path.join(h.rundir, "journal"))
                      if n.endswith(".tmp")]
            assert not litter, (t, litter)
            stats["restored"] += 1
            stats["trials"] += 1
    print("# %(trials)d trials, %(kills)d kill -9s, %(restored)d hosts restored exactly, "
          "%(lost)d journal entries lost, %(double)d double wins" % stats)


def test_bind_up_unbind_restore_at_once():
    """Each trial: `bind A`, `up` of a VM with A, `unbind A` and `restore` at once. Who
    wins varies; what holds is that the VM runs on A or is refused naming who has it,
    that every function on vfio-pci is journaled by someone, and that after `down` and
    `restore manual` the host is as it was."""
    trials = max(10, TRIALS // 5)
    outcomes = {}
    rng = random.Random(17)
    with scratch() as tmp:
        h = Host(tmp)
        for t in range(trials):
            procs = [start(h, "bind", A), start(h, "unbind", A), start(h, "restore")]
            if t % 2:
                time.sleep(rng.uniform(0, 0.08))  # the bind first, some of the time
            vm = VmUp(h, name="mix%d" % t)  # 08:00
            st = vm.running(may_fail=True)
            ends = [p.communicate(timeout=60) and p.returncode for p in procs]
            jr = journaled(h)
            on = {a for a in FUNCS[A] if h.driver(a) == "vfio-pci"}
            vm_journal = os.path.join(h.rundir, "journal", "mix%d.json" % t)
            if os.path.exists(vm_journal):
                with open(vm_journal) as f:
                    jr |= {e["address"] for e in json.load(f)["functions"]}
            assert on <= jr, (t, sorted(on - jr), ends)
            if st:
                p = h.fk("down", vm.name)
                assert p.returncode == 0, p.stderr
            rc, err = vm.finish()
            assert rc == (0 if st else 1), (t, rc, err)
            if not st:
                assert "is taken by" in err or "VM" in err, err
            key = ("up" if st else "refused", "bind" if ends[0] == 0 else "no bind")
            outcomes[key] = outcomes.get(key, 0) + 1
            p = h.fk("restore", "manual")
            assert p.returncode == 0, (t, p.stderr)
            h.assert_restored("mixed trial %d" % t)
    print("# %d mixed trials restored exactly: %s" % (trials, ", ".join(
        "%s/%s %d" % (k[0], k[1], v) for k, v in sorted(outcomes.items()))))


def dead_pid():
    """A pid that is no process now (a child that has been reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_a_vms_devices_are_not_touched():
    """bind and unbind refuse a function a running VM has, naming the VM; restore of a
    dead VM's journal leaves such a function alone (and in the journal) until that VM
    stops."""
    with scratch() as tmp:
        h = Host(tmp)
        before = snapshot(h.root)
        vm = VmUp(h)  # 08:00, "gpuvm"
        vm.running()
        for cmd in ("bind", "unbind"):
            p = h.fk(cmd, "08:00.1")
            assert p.returncode == 1 and "0000:08:00.1 is the VM gpuvm's now" in p.stderr, \
                (cmd, p.stderr)
            assert "qpass down gpuvm" in p.stderr, p.stderr
        assert h.driver("0000:08:00.1") == "vfio-pci"
        # A journal left by a VM that is gone, naming a function gpuvm has now.
        with open(os.path.join(h.rundir, "journal", "ghost.json"), "w") as f:
            json.dump({"version": 1, "functions": [
                {"address": "0000:08:00.1", "driver": "snd_hda_intel",
                 "driver_override": None}]}, f)
        p = h.fk("restore", "ghost")
        assert p.returncode == 1, p.stderr
        assert "0000:08:00.1 of ghost's journal is the VM gpuvm's now: left in the " \
            "journal" in p.stderr, p.stderr
        assert h.driver("0000:08:00.1") == "vfio-pci"
        assert os.path.exists(os.path.join(h.rundir, "journal", "ghost.json"))
        p = h.fk("down", "gpuvm")
        assert p.returncode == 0, p.stderr
        rc, err = vm.finish()
        assert rc == 0, err
        # What a qpass killed mid-save leaves (its pid is no process now) goes.
        stale = os.path.join(h.rundir, "journal", "ghost.json.%d.tmp" % dead_pid())
        open(stale, "w").close()
        p = h.fk("restore", "ghost")
        assert p.returncode == 0 and "restored the devices of ghost" in p.stderr, p.stderr
        assert not os.path.exists(stale)
        assert snapshot(h.root) == before
        assert not os.path.exists(os.path.join(h.rundir, "journal", "ghost.json"))


def test_lock_files_survive_their_release():
    """A device lock is unlinked by its holder as it lets go; a qpass that opened the
    old file just before must not hold a lock nobody else sees. Two VMs wanting one
    device, started again and again at once: never both running."""
    with scratch() as tmp:
        h = Host(tmp)
        for t in range(10):
            a, b = VmUp(h, name="a%d" % t), VmUp(h, name="b%d" % t)
            up = [v for v in (a, b) if v.running(may_fail=True)]
            assert len(up) == 1, (t, [v.proc.returncode for v in (a, b)])
            p = h.fk("down", up[0].name)
            assert p.returncode == 0, p.stderr
            for v in (a, b):
                v.finish()
        h.assert_restored("the VMs that raced")


def bad_qemu(h, how, name):
    os.environ["QP_STUB_MISBEHAVE"] = how
    try:
        return VmUp(h, name=name)
    finally:
        del os.environ["QP_STUB_MISBEHAVE"]


def test_supervision_survives_bad_qmp():
    """Garbage on QMP (a nesting bomb, null, NaN, a line of no JSON) is said and
    dropped, and the guest's SHUTDOWN after it still applies on_poweroff; a vCPU
    thread-id that is not QEMU's fails the start; an internal error is a crash."""
    with scratch() as tmp:
        h = Host(tmp)
        vm = bad_qemu(h, "garbage", "junk")
        rc, err = vm.finish()
        assert rc == 0, err
        assert err.count("QMP: dropped a message from QEMU that could not be read") == 4, err
        assert "(nesting too deep)" in err and "(null, not a JSON object)" in err, err
        assert "(NaN or Infinity, not JSON)" in err and "QMP is lost" not in err, err
        assert "the guest powered off" in err and "QEMU stopped" in err, err
        h.assert_restored("after garbage on QMP")
        vm = bad_qemu(h, "badtid", "tid")
        rc, err = vm.finish()
        assert rc == 1 and "QMP says vCPU 0 runs in thread 1, which is not a thread of " \
            "QEMU" in err, err
        h.assert_restored("after a wrong thread id")
        vm = bad_qemu(h, "internal-error", "ierr")
        rc, err = vm.finish()
        assert "QEMU stopped the guest with an internal error: on_crash destroy" in err, err
        h.assert_restored("after an internal error")


def terminated(h, fault, *args):
    """`qpass-fk ARGS` with FAULT (a 20 s sysfs deadline), sent SIGTERM after 1 s: its
    exit status, stderr and how long it took."""
    env = dict(os.environ, QPASS_RUNDIR=h.rundir, QPASS_SYSFS_TIMEOUT_MS="20000",
               QPASS_FAKE_FAULT=fault)
    t0 = time.monotonic()
    p = subprocess.Popen([QPASS_FK, "--sysroot", h.root] + list(args), env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    return p.returncode, err, time.monotonic() - t0


def test_sigterm_during_a_hung_write():
    """`up` whose third sysfs write hangs (a 20 s deadline): SIGTERM ends the wait at
    once, everything is given back, and qpass says why before it exits 1; `bind` too."""
    with scratch() as tmp:
        h = Host(tmp)
        profile = os.path.join(tmp, "hung.json")
        with open(profile, "w") as f:
            f.write(VM % ("hung", os.path.abspath(STUB), ""))
        rc, err, took = terminated(h, "3:hang", "up", profile)
        assert rc == 1, (rc, err)
        assert "asked to stop (Terminated) while the VM started" in err, err
        assert "interrupted, qpass was asked to stop" in err, err
        assert took < 10, took
        h.assert_restored("SIGTERM during a hung write")
        rc, err, took = terminated(h, "2:hang", "bind", A)
        assert rc == 1 and "asked to stop (Terminated), so every change is given back" \
            in err, (rc, err)
        assert took < 10, took
        h.assert_restored("SIGTERM during a hung write of bind")


def test_missing_files_refused_before_anything():
    """A disk image that is not there: `plan` warns, `check` fails its files row, and
    `up` refuses before it binds anything (not QEMU's message, then a QMP error)."""
    with scratch() as tmp:
        h = Host(tmp)
        profile = os.path.join(tmp, "nodisk.json")
        text = VM % ("nodisk", os.path.abspath(STUB), "")
        text = text.rstrip().rstrip("}") + ', "disks": [{"file": "/var/lib/qpass/none.qcow2", ' \
            '"format": "qcow2"}]}'
        with open(profile, "w") as f:
            f.write(text)
        want = "disks[0].file /var/lib/qpass/none.qcow2: does not exist"
        p = h.fk("plan", profile)
        assert p.returncode == 0 and want in p.stderr, p.stderr
        p = h.fk("check", "--json", profile)
        rows = {r["id"]: r for r in json.loads(p.stdout)["checks"]}
        assert rows["files"]["status"] == "FAIL" and want in rows["files"]["detail"], rows
        p = h.fk("up", profile)
        assert p.returncode == 1 and "files the VM needs are not usable" in p.stderr, p.stderr
        assert want in p.stderr and "qemu-img create" in p.stderr, p.stderr
        h.assert_restored("a missing disk")
        assert not os.path.exists(os.path.join(h.rundir, "leases", "nodisk.json"))


def test_names_stay_inside_the_rundir():
    """A VM name on the command line is a VM name: `restore ../../x` would read
    RUNDIR/journal/../../x.json, `down ../x` would talk to RUNDIR/../x/control.sock."""
    with scratch() as tmp:
        h = Host(tmp)
        outside = os.path.join(tmp, "x.json")
        with open(outside, "w") as f:
            json.dump({"version": 1, "functions": [
                {"address": "0000:08:00.1", "driver": "snd_hda_intel",
                 "driver_override": None}]}, f)
        p = h.fk("restore", "../../x")
        assert p.returncode == 2 and "../../x is not a VM name" in p.stderr, p.stderr
        assert os.path.exists(outside)
        for args in (("down", "../x"), ("pin", "../x", "0", "1"), ("qmp", "../x", "stop")):
            p = h.fk(*args)
            assert p.returncode != 0 and "is not a VM name" in p.stderr, (args, p.stderr)
        h.assert_restored("names outside the runtime directory")


if __name__ == "__main__":
    sys.exit(main([test_binds_at_once_lose_nothing, test_bind_up_unbind_restore_at_once,
                   test_a_vms_devices_are_not_touched,
                   test_lock_files_survive_their_release, test_supervision_survives_bad_qmp,
                   test_sigterm_during_a_hung_write,
                   test_missing_files_refused_before_anything,
                   test_names_stay_inside_the_rundir]))
