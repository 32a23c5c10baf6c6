"""qpass@.service under a real systemd: the unit meson installs, with this build's qpass,
runs the test guest (tests/guest). When this machine's PID 1 is not systemd (a container),
the test starts one: systemd as PID 1 of new PID and mount namespaces, with a private
/run, and only the units the test writes there. Shown:
  - `systemctl start` returns once qpass said READY=1: by then QEMU runs with its vCPU
    pinned, and the unit's status line says where;
  - `systemctl stop` is a graceful shutdown: the guest powers off on its ACPI button,
    qpass exits 0, ExecStopPost (qpass restore) runs, the unit is inactive, in a time
    under TimeoutStopSec;
  - qpass killed (kill -9): the unit is failed, QEMU is gone, ExecStopPost ran;
  - WatchdogSec=: a running qpass pings it; a stopped one (SIGSTOP) is killed for it;
  - `systemd-analyze verify` finds nothing wrong with the installed unit and its man
    pages."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from qptest import (QPASS, SKIP, build_guest, console, guest_profile, main,  # noqa: E402
                    wait_console)

BUILD = os.environ.get("QP_BUILD", "")
INNER = r"""#!/bin/sh
# PID 1 of new namespaces (mounts private to them): it sees the test's units and nothing
# of the host's. Its unit and generator search paths are the test's directory alone, and
# every directory of units, generators and tmpfiles rules is hidden under an empty tmpfs,
# so that no host unit (tmpfiles' clean of /tmp, udev's trigger, ...) can run in it.
set -e
mount -t tmpfs tmpfs /run
for d in /etc/systemd/system /lib/systemd/system /usr/local/lib/systemd/system \
	/lib/systemd/system-generators /etc/systemd/system-generators \
	/lib/systemd/system-environment-generators /usr/lib/systemd/system-environment-generators \
	/lib/tmpfiles.d /etc/tmpfiles.d /lib/sysusers.d; do
	[ ! -d "$d" ] || mount -t tmpfs -o ro tmpfs "$d"
done
mkdir -p /run/qpass-test/units /run/qpass-test/none
cp -r "$1"/. /run/qpass-test/units/
export container=qpass-test SYSTEMD_UNIT_PATH=/run/qpass-test/units
export SYSTEMD_GENERATOR_PATH=/run/qpass-test/none
export SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/qpass-test/none
exec /lib/systemd/systemd --unit=qpass-test.target --log-target=console --log-level=notice
"""
# The targets a unit's default dependencies name, as stubs that do nothing.
STUBS = ("sysinit.target", "basic.target", "shutdown.target", "local-fs.target",
         "network-online.target", "network.target", "multi-user.target", "sockets.target",
         "timers.target", "paths.target", "slices.target")
TARGET = """[Unit]
Description=qpass's test: nothing but what the test starts
DefaultDependencies=no
"""


class Systemd:
    """A systemd to run units in: the host's when PID 1 is systemd, else one of our own
    as PID 1 of new namespaces."""

    def __init__(self, tmp):
        self.units = os.path.join(tmp, "units")
        os.makedirs(self.units)
        self.own = open("/proc/1/comm").read().strip() != "systemd"
        self.proc = None
        self.pid = None
        self.added = []

    def add(self, name, text):
        path = os.path.join(self.units if self.own else "/run/systemd/system", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        self.added.append(path)

    def start(self, tmp):
        if not self.own:
            self.ctl("daemon-reload")
            return
        self.add("qpass-test.target", TARGET)
        for name in STUBS:
            self.add(name, TARGET.replace("qpass's test: nothing but what the test starts",
                                          "a stub for qpass's test"))
        inner = os.path.join(tmp, "inner.sh")
        with open(inner, "w") as f:
            f.write(INNER)
        os.chmod(inner, 0o755)
        self.log = open(os.path.join(tmp, "systemd.log"), "w+")
        self.proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--mount-proc",
                                      inner, self.units], stdout=self.log, stderr=self.log)
        end = time.time() + 30
        while time.time() < end and self.proc.poll() is None:
            try:
                kids = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read()
            except FileNotFoundError:
                kids = ""
            if kids.split():
                self.pid = int(kids.split()[0])
                if self.ctl("is-system-running", check=False).stdout.strip() in (
                        "running", "degraded"):
                    return
            time.sleep(0.2)
        raise AssertionError("systemd did not come up:\n" + self.output())

    def output(self):
        text = ""
        if getattr(self, "log_path", None) and os.path.exists(self.log_path):
            with open(self.log_path) as f:
                text = "the units' output:\n" + f.read()
        if not self.own:
            return text
        self.log.seek(0)
        return "systemd's:\n" + self.log.read() + text

    def ctl(self, *args, check=True, timeout=180):
        prefix = ["nsenter", "-t", str(self.pid), "-m", "-p"] if self.own else []
        p = subprocess.run(prefix + ["systemctl"] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("systemctl %s: %s\n%s" % (" ".join(args), p.stderr,
                                                           self.output()))
        return p

    def host_pid(self, pid):
        """The host's number for a PID our systemd's namespace gives (state.json's and
        MainPID are in its numbers): never signal a namespace's number from out here."""
        if not self.own:
            return pid
        ns = os.readlink("/proc/%d/ns/pid" % self.pid)
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/ns/pid" % d) != ns:
                    continue
                with open("/proc/%s/status" % d) as f:
                    line = [x for x in f if x.startswith("NSpid:")][0]
            except (OSError, IndexError):
                continue
            if int(line.split()[-1]) == pid:
                return int(d)
        raise AssertionError("no process %d in systemd's namespace" % pid)

    def show(self, unit, *props):
        p = self.ctl("show", unit, "-p", ",".join(props))
        return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)

    def wait(self, unit, states, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            st = self.show(unit, "ActiveState")["ActiveState"]
            if st in states:
                return st
            time.sleep(0.2)
        raise AssertionError("%s stayed %s:\n%s" % (unit, st, self.output()))

    def close(self):
        if self.own and self.proc:
            if self.pid:
                os.kill(self.pid, signal.SIGKILL)  # and with it, everything it runs
            self.proc.wait(30)
            self.log.close()
            # The cgroups it made (the name=systemd hierarchy is the host's): empty now.
            for top in ("system.slice", "init.scope"):
                for root, dirs, _ in os.walk("/sys/fs/cgroup/systemd/" + top, topdown=False):
                    try:
                        os.rmdir(root)
                    except OSError:
                        pass
        else:
            for path in self.added:
                os.unlink(path)
            if self.added:
                self.ctl("daemon-reload", check=False)


def unit_text():
    """The unit as meson made it, with this build's qpass."""
    with open(os.path.join(BUILD, "qpass@.service")) as f:
        text = f.read()
    exe = [w for w in text.split() if w.startswith("ExecStart=")][0][len("ExecStart="):]
    return text.replace(exe, QPASS)


def qemu_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def setup(tmp, sd, names, dropin=""):
    conf, run = os.path.join(tmp, "conf"), os.path.join(tmp, "run")
    os.makedirs(conf)
    for n in names:
        with open(os.path.join(conf, n + ".json"), "w") as f:
            f.write(guest_profile(tmp, n))
    sd.add("qpass@.service", unit_text())
    sd.log_path = os.path.join(tmp, "units.log")
    sd.add("qpass@.service.d/test.conf", "[Service]\nEnvironment=QPASS_CONFDIR=%s "
           "QPASS_RUNDIR=%s QPASS_STATEDIR=%s\nStandardOutput=append:%s\n"
           "StandardError=append:%s\n%s" % (conf, run, os.path.join(tmp, "state"),
                                             sd.log_path, sd.log_path, dropin))
    sd.start(tmp)
    return run


def test_ready_stop_crash():
    with tempfile.TemporaryDirectory() as tmp:
        sd = Systemd(tmp)
        try:
            run = setup(tmp, sd, ["sdvm"])
            unit = "qpass@sdvm.service"
            t0 = time.time()
            sd.ctl("start", unit)
            ready_s = time.time() - t0
            # READY=1 came only after the pins: state.json is there, the vCPU pinned.
            with open(os.path.join(run, "sdvm", "state.json")) as f:
                st = json.load(f)
            pid = sd.host_pid(st["qemu_pid"])
            show = sd.show(unit, "StatusText", "MainPID", "ActiveState", "SubState")
            assert show["ActiveState"] == "active" and show["SubState"] == "running", show
            assert show["StatusText"].startswith("running:"), show
            assert "vCPU->CPU 0->%d" % st["vcpu_pins"][0] in show["StatusText"], show
            assert int(show["MainPID"]) == st["qpass_pid"], (show, st)
            wait_console(tmp, "QPASS-GUEST-UP")
            t0 = time.time()
            sd.ctl("stop", unit)
            stop_s = time.time() - t0
            assert "QPASS-GUEST-POWEROFF" in console(tmp), console(tmp)
            show = sd.show(unit, "ActiveState", "Result", "ExecMainStatus", "ExecStopPost")
            assert show["ActiveState"] == "inactive" and show["Result"] == "success", show
            assert show["ExecMainStatus"] == "0", show
            assert "status=0" in show["ExecStopPost"], show
            assert not qemu_alive(pid), "QEMU (pid %d) outlived the stop" % pid
            print("# start until READY=1: %.2f s; graceful stop: %.2f s" % (ready_s, stop_s))

            # A crash of qpass: the unit fails, QEMU goes with it, the give-back runs.
            sd.ctl("start", unit)
            with open(os.path.join(run, "sdvm", "state.json")) as f:
                st = json.load(f)
            qemu = sd.host_pid(st["qemu_pid"])
            os.kill(sd.host_pid(st["qpass_pid"]), signal.SIGKILL)
            sd.wait(unit, ("failed",))
            show = sd.show(unit, "Result", "ExecStopPost")
            assert show["Result"] == "signal", show
            assert "status=0" in show["ExecStopPost"], show
            end = time.time() + 10
            while qemu_alive(qemu) and time.time() < end:
                time.sleep(0.1)
            assert not qemu_alive(qemu)
        finally:
            sd.close()


def test_watchdog():
    with tempfile.TemporaryDirectory() as tmp:
        sd = Systemd(tmp)
        try:
            run = setup(tmp, sd, ["wdvm"], "WatchdogSec=2\n")
            unit = "qpass@wdvm.service"
            sd.ctl("start", unit)
            time.sleep(5)  # more than twice the watchdog's time: pinged all along
            assert sd.show(unit, "ActiveState")["ActiveState"] == "active", sd.output()
            with open(os.path.join(run, "wdvm", "state.json")) as f:
                st = json.load(f)
            os.kill(sd.host_pid(st["qpass_pid"]), signal.SIGSTOP)  # a hung supervisor
            sd.wait(unit, ("failed",), timeout=30)
            assert sd.show(unit, "Result")["Result"] == "watchdog", sd.output()
        finally:
            sd.close()


def test_verify_installed_unit():
    if not shutil.which("systemd-analyze"):
        print("# systemd-analyze is missing: skipped")
        return
    with tempfile.TemporaryDirectory() as dest:
        p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
                            "--quiet"], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
        units = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs
                 if f == "qpass@.service"]
        assert len(units) == 1, units
        bins = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs if f == "qpass"
                and r.endswith("/bin")]
        with open(units[0]) as f:
            text = f.read()
        exe = [w for w in text.split() if w.startswith("ExecStart=")][0][len("ExecStart="):]
        check = os.path.join(dest, "qpass@vm1.service")
        with open(check, "w") as f:
            f.write(text.replace(exe, bins[0]))
        mandir = [r for r, ds, _ in os.walk(dest) if "man1" in ds][0]
        p = subprocess.run(["systemd-analyze", "verify", check], capture_output=True,
                           text=True, env=dict(os.environ, MANPATH=mandir))
        assert p.returncode == 0 and not p.stderr.strip(), p.stderr


if __name__ == "__main__":
    if os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists(
            "/lib/systemd/systemd"):
        print("needs root, unshare and systemd (apt-get install systemd)")
        sys.exit(SKIP)
    why = build_guest()
    if why:
        print(why)
        sys.exit(SKIP)
    sys.exit(main([test_verify_installed_unit, test_ready_stop_crash, test_watchdog]))
