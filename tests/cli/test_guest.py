"""`qpass up` with a real guest OS (tests/guest: Debian's kernel and busybox, booted
under TCG): the guest answers the ACPI power button, powers off, reboots and panics
when told to, and qpass applies the profile's lifecycle each time."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from qptest import (SKIP, Up, allowed, build_guest, console, expand, guest_profile,  # noqa: E402,E501
                    main, run, wait_console)

def boot(tmp, name, word="", life=""):
    return Up(tmp, name=name, text=guest_profile(tmp, name, word, life))


def vcpu_pins(pid):
    """{vCPU index: its allowed CPUs}, read from /proc."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            name = f.read().strip()
        if name.startswith("CPU "):
            out[int(name.split()[1].split("/")[0])] = expand(allowed(pid, int(tid)))
    return out


def stop(vm):
    p = run("down", vm.name, "--force", env={"QPASS_RUNDIR": vm.rundir})
    assert p.returncode == 0, p.stderr
    return vm.finish()


def test_sigterm_is_an_acpi_shutdown():
    with tempfile.TemporaryDirectory() as tmp:
        vm = boot(tmp, "acpi")
        st = vm.state()
        wait_console(tmp, "QPASS-GUEST-UP")
        assert vcpu_pins(st["qemu_pid"]) == {0: [st["vcpu_pins"][0]]}
        env = {"QPASS_RUNDIR": vm.rundir}
        assert json.loads(run("status", "acpi", "--json", env=env).stdout)["state"] == "running"
        p = run("qmp", "acpi", "query-status", env=env)
        assert json.loads(p.stdout)["return"]["status"] == "running"
        vm.proc.send_signal(signal.SIGTERM)
        rc, err = vm.finish()
        assert rc == 0, err
        assert "the guest powered off" in err and "did not power off" not in err, err
        assert "QPASS-GUEST-POWEROFF" in console(tmp)
        assert not os.path.exists(vm.dir)


def test_guest_powers_off():
    with tempfile.TemporaryDirectory() as tmp:
        vm = boot(tmp, "poweroff", word="qpass.poweroff", life='"on_poweroff": "destroy"')
        rc, err = vm.finish(timeout=120)
        assert rc == 0 and "the guest powered off" in err, err


def ends_by_itself(name, word, life, said):
    """The policy stops the VM: qpass ends on its own, with exit 0, having said so."""
    with tempfile.TemporaryDirectory() as tmp:
        vm = boot(tmp, name, word=word, life=life)
        rc, err = vm.finish(timeout=120)
        assert rc == 0 and said in err, err


def stays_paused(name, word, life, said, states):
    """The policy keeps the VM, paused: status says so; then it is stopped by hand."""
    with tempfile.TemporaryDirectory() as tmp:
        vm = boot(tmp, name, word=word, life=life)
        vm.wait_log(said)
        p = run("status", name, "--json", env={"QPASS_RUNDIR": vm.rundir})
        assert json.loads(p.stdout)["state"] in states, p.stdout
        rc, err = stop(vm)
        assert rc == 0, err


def test_reboot_policies():
    with tempfile.TemporaryDirectory() as tmp:
        vm = boot(tmp, "rb-restart", word="qpass.reboot", life='"on_reboot": "restart"')
        vm.wait_log("the guest rebooted", count=2)
        rc, err = stop(vm)
        assert rc == 0, err
    ends_by_itself("rb-destroy", "qpass.reboot", '"on_reboot": "destroy"',
                   "the guest rebooted: on_reboot destroy")
    stays_paused("rb-keep", "qpass.reboot", '"on_reboot": "preserve"',
                 "on_reboot preserve pauses it", ("paused",))


def test_panic_restart_keeps_the_pins():
    with tempfile.TemporaryDirectory() as tmp:
        vm = boot(tmp, "crash", word="qpass.panic", life='"on_crash": "restart"')
        first = vm.state()["qemu_pid"]
        vm.wait_log("on_crash restart starts it again")
        vm.wait_log(" runs: qemu pid", count=2)
        st = vm.state()
        assert st["qemu_pid"] != first
        assert vcpu_pins(st["qemu_pid"]) == {0: [st["vcpu_pins"][0]]}
        rc, err = stop(vm)
        assert rc == 0, err
    ends_by_itself("crash-d", "qpass.panic", '"on_crash": "destroy"',
                   "the guest panicked: on_crash destroy")
    stays_paused("crash-p", "qpass.panic", '"on_crash": "preserve"',
                 "on_crash preserve keeps it paused", ("paused", "guest-panicked"))


if __name__ == "__main__":
    why = build_guest()
    if why:
        print(why)
        sys.exit(SKIP)
    sys.exit(main([test_sigterm_is_an_acpi_shutdown, test_guest_powers_off,
                   test_reboot_policies, test_panic_restart_keeps_the_pins]))
