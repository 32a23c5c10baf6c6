"""`qpass up` with the real qemu-system-x86_64 (TCG, no guest OS yet): placement read
back from /proc, SIGTERM, QEMU killed, one VM per name, clear refusals. The guest-side
paths (ACPI poweroff, reboot, panic) need the tiny test guest: not here yet."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from qptest import QPASS, SKIP, SOURCE, UP_PROFILE, Up, allowed, expand, fixture, main, run  # noqa: E402,E501

def test_up_places_and_stops_on_sigterm():
    with tempfile.TemporaryDirectory() as tmp:
        vcpus = min(2, os.cpu_count())
        vm = Up(tmp, vcpus=vcpus)
        st = vm.state()
        pid = st["qemu_pid"]
        assert st["vcpu_pins"] == list(range(vcpus)), st
        plan = json.loads(run("plan", vm.profile, "--json").stdout)
        emulator = plan["emulator_cpus"]
        names = {}
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names[int(tid)] = f.read().strip()
        vcpu_threads = {t: n for t, n in names.items() if n.startswith("CPU ")}
        assert len(vcpu_threads) == vcpus, names
        for tid, name in names.items():
            cpus = expand(allowed(pid, tid))
            if name in vcpu_threads.values():
                index = int(name.split()[1].split("/")[0])
                assert cpus == [st["vcpu_pins"][index]], (name, cpus)
            else:
                assert cpus == emulator, (name, cpus, emulator)
        assert oct(os.stat(vm.dir).st_mode & 0o777) == "0o700"
        vm.proc.send_signal(signal.SIGTERM)
        rc, err = vm.finish()
        assert rc == 0, err
        assert "asking the guest to power off" in err and "QEMU stopped" in err, err
        assert not os.path.exists(vm.dir), os.listdir(vm.dir)
        assert not os.path.exists("/proc/%d" % pid) or open(
            "/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_qemu_killed_means_non_zero():
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp)
        st = vm.state()
        os.kill(st["qemu_pid"], signal.SIGKILL)
        rc, err = vm.finish()
        assert rc == 3, (rc, err)
        assert "QEMU died on its own: killed by signal 9" in err, err
        assert not os.path.exists(vm.dir)


def test_one_vm_per_name():
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp)
        st = vm.state()
        second = subprocess.run([QPASS, "up", vm.profile], env=vm.env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 1, second
        assert "a VM named uptest is already running (qpass pid %d)" % vm.proc.pid in \
            second.stderr, second.stderr
        # The loser touched nothing: the first VM still runs.
        assert os.path.exists(os.path.join(vm.dir, "state.json"))
        os.kill(st["qemu_pid"], 0)
        vm.proc.send_signal(signal.SIGTERM)
        rc, err = vm.finish()
        assert rc == 0, err


def test_status_qmp_down():
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp, name="ctl")
        st = vm.state()
        env = {"QPASS_RUNDIR": vm.rundir}
        p = run("status", "ctl", "--json", env=env)
        assert p.returncode == 0, p.stderr
        s = json.loads(p.stdout)
        assert s["state"] == "running" and s["qemu_pid"] == st["qemu_pid"], s
        assert s["qpass_pid"] == vm.proc.pid and s["vcpu_pins"] == [0]
        p = run("status", "--json", env=env)
        assert [x["name"] for x in json.loads(p.stdout)] == ["ctl"]
        p = run("status", env=env)
        assert p.returncode == 0 and "ctl" in p.stdout and "running" in p.stdout, p.stdout
        p = run("qmp", "ctl", "query-status", env=env)
        assert p.returncode == 0 and json.loads(p.stdout)["return"]["status"] == "running"
        p = run("qmp", "ctl", "stop", env=env)
        assert p.returncode == 0
        p = run("status", "ctl", "--json", env=env)
        assert json.loads(p.stdout)["state"] == "paused"
        p = run("qmp", "ctl", "cont", env=env)
        p = run("qmp", "ctl", "no-such-command", env=env)
        assert p.returncode == 1 and json.loads(p.stdout)["error"]["class"] == "CommandNotFound"
        p = run("qmp", "ctl", "human-monitor-command", '{"command-line": "info cpus"}',
                env=env)
        assert p.returncode == 0 and "CPU #0" in json.loads(p.stdout)["return"]
        p = run("qmp", "ctl", "query-status", "[1]", env=env)
        assert p.returncode == 2
        p = run("qmp", "nosuchvm", "query-status", env=env)
        assert p.returncode == 1 and "no VM named nosuchvm is running" in p.stderr
        # A guest without an OS ignores the power button: down quits after the timeout.
        p = run("down", "ctl", "--timeout", "1", env=env)
        assert p.returncode == 0 and "ctl stopped" in p.stderr, p.stderr
        rc, err = vm.finish()
        assert rc == 0, err
        assert "did not power off within 1 s" in err, err
        assert not os.path.exists(vm.dir)
        p = run("status", env=env)
        assert "no VM is running" in p.stdout


def test_down_force():
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp, name="forced")
        vm.state()
        p = run("down", "forced", "--force", env={"QPASS_RUNDIR": vm.rundir})
        assert p.returncode == 0, p.stderr
        rc, err = vm.finish()
        assert rc == 0 and "a forced stop asked" in err, err


def test_run_as_drops_root():
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        print("# no user nobody: run_as not tested")
        return
    if os.geteuid() != 0:
        print("# not root: run_as not tested")
        return
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp, name="unpriv", extra=', "run_as": "nobody"')
        st = vm.state()
        with open("/proc/%d/status" % st["qemu_pid"]) as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid", "Gid"))}
        assert ids["Uid"] == [str(nobody.pw_uid)] * 4, ids
        assert ids["Gid"] == [str(nobody.pw_gid)] * 4, ids
        vm.proc.send_signal(signal.SIGTERM)
        rc, err = vm.finish()
        assert rc == 0, err
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp, name="nouser", extra=', "run_as": "no-such-user-qpass"')
        rc, err = vm.finish()
        assert rc == 1 and "run_as: no user no-such-user-qpass" in err, err


def gone(pid, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(") ", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_qpass_killed_takes_qemu_along():
    """kill -9 of the supervisor: QEMU dies with it (PR_SET_PDEATHSIG, also after the
    drop to run_as), and the next `up` of the name takes over the stale directory."""
    extras = ['']
    if os.geteuid() == 0:
        extras.append(', "run_as": "nobody"')
    for extra in extras:
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o755)
            vm = Up(tmp, name="orphan", extra=extra)
            st = vm.state()
            vm.proc.kill()
            vm.proc.wait()
            assert gone(st["qemu_pid"]), "QEMU outlived qpass (%s)" % extra
            assert os.path.exists(os.path.join(vm.dir, "state.json"))  # stale
            again = Up(tmp, name="orphan", extra=extra)
            st2 = again.state(timeout=60)
            assert st2["qemu_pid"] != st["qemu_pid"]
            again.proc.send_signal(signal.SIGTERM)
            rc, err = again.finish()
            assert rc == 0, err
            assert not os.path.exists(again.dir)


def test_ovmf_vars_per_vm():
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        os.environ["QPASS_STATEDIR"] = state
        try:
            vm = Up(tmp, name="uefi", extra=', "machine": "q35", "firmware": "ovmf"')
            vm.state()
            vars_path = os.path.join(state, "uefi", "OVMF_VARS.fd")
            assert os.path.getsize(vars_path) == os.path.getsize(
                "/usr/share/OVMF/OVMF_VARS_4M.fd")
            assert oct(os.stat(vars_path).st_mode & 0o777) == "0o600"
            vm.proc.send_signal(signal.SIGTERM)
            assert vm.finish()[0] == 0
            # Kept across runs: the guest's UEFI settings are its own.
            with open(vars_path, "r+b") as f:
                f.write(b"QPASS")
            again = Up(tmp, name="uefi", extra=', "machine": "q35", "firmware": "ovmf"')
            again.state()
            with open(vars_path, "rb") as f:
                assert f.read(5) == b"QPASS"
            again.proc.send_signal(signal.SIGTERM)
            assert again.finish()[0] == 0
        finally:
            del os.environ["QPASS_STATEDIR"]


def test_bridge_network_tap():
    """A bridge network: qpass makes a tap on the bridge and hands QEMU its fd; the tap
    goes with QEMU. Inside a network namespace this test makes (never the host's)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("# not root or no iproute2: bridge networking not tested")
        return
    ns = "qpass-test-%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        print("# cannot make a network namespace: bridge networking not tested")
        return
    try:
        for cmd in (["ip", "link", "add", "br0", "type", "bridge"],
                    ["ip", "link", "set", "br0", "up"]):
            subprocess.run(["ip", "-n", ns] + cmd[1:], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            extra = (', "network": [{"type": "bridge", "bridge": "br0", '
                     '"mac": "52:54:00:8c:04:9f"}]')
            vm = Up(tmp, name="bridged", extra=extra, prefix=["ip", "netns", "exec", ns])
            vm.state()
            ports = subprocess.run(["ip", "-n", ns, "-o", "link", "show", "master", "br0"],
                                   capture_output=True, text=True).stdout
            assert "qptap" in ports and ",UP," in ports, ports
            env = {"QPASS_RUNDIR": vm.rundir}
            p = run("qmp", "bridged", "human-monitor-command",
                    '{"command-line": "info network"}', env=env)
            info = json.loads(p.stdout)["return"]
            assert "type=tap,fd=4" in info and "52:54:00:8c:04:9f" in info, info
            vm.proc.send_signal(signal.SIGTERM)
            rc, err = vm.finish()
            assert rc == 0, err
            ports = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True,
                                   text=True).stdout
            assert "qptap" not in ports, ports
            # A bridge that does not exist is said before QEMU starts.
            vm = Up(tmp, name="nobridge", extra=extra.replace("br0", "br9"),
                    prefix=["ip", "netns", "exec", ns])
            rc, err = vm.finish()
            assert rc == 1 and "no network interface br9" in err, err
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def test_refusals():
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp, name="noqemu", extra=', "qemu": "/nonexistent/qemu"')
        rc, err = vm.finish()
        assert rc == 1 and "cannot run /nonexistent/qemu" in err and "fix: " in err, err
        assert not os.path.exists(vm.dir)
        p = run("up", "profiles/examples/win10-gpu-01.json", sysroot=fixture("seed"),
                cwd=SOURCE, env={"QPASS_RUNDIR": os.path.join(tmp, "run")})
        # The seed's VM: refused before anything is touched (br0 is not on this host,
        # or memlock cannot be raised, or the fixture's devices do not move).
        assert p.returncode == 1, p.stderr
        assert not os.path.exists(os.path.join(tmp, "run", "win10-gpu-01"))
        p = run("up")
        assert p.returncode == 2


def test_placement_measured_and_pinned_live():
    """status measures what the kernel says, beside the plan; `qpass pin` moves a vCPU
    and then QEMU's other threads while the guest runs; a pin made from outside
    (taskset) is reported as drift."""
    if os.cpu_count() < 2:
        return
    with tempfile.TemporaryDirectory() as tmp:
        vm = Up(tmp, name="pins")
        st = vm.state()
        pid = st["qemu_pid"]
        env = {"QPASS_RUNDIR": vm.rundir}

        def placement():
            p = run("status", "pins", "--json", env=env)
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout)["placement"]

        # The guest touches its RAM as it starts: on a loaded machine that takes a while.
        end = time.time() + 20
        pl = placement()
        while not (pl["memory"] or {}).get("on_node") and time.time() < end:
            time.sleep(0.1)
            pl = placement()
        assert pl["as_planned"] and pl["drift"] == [], pl
        (v,) = pl["vcpus"]
        assert v["vcpu"] == 0 and v["allowed"] == [0] and v["pinned"] == [0], v
        assert v["name"] == "CPU 0/TCG" and expand(allowed(pid, v["tid"])) == [0]
        roles = {t["role"] for t in pl["threads"]}
        assert "main" in roles, pl["threads"]
        assert all(t["allowed"] == [1] for t in pl["threads"]), pl["threads"]
        assert pl["memory"]["node"] == 0 and pl["memory"]["elsewhere"] == 0, pl["memory"]
        assert pl["memory"]["on_node"] > 0, pl["memory"]
        text = run("status", env=env).stdout
        assert "placement: as planned (measured: vCPU 0->0; " in text, text
        # Live: the vCPU to CPU 1, then the others to CPU 0.
        p = run("pin", "pins", "0", "1", env=env)
        assert p.returncode == 0 and json.loads(p.stdout)["vcpu_pins"] == [1], p.stderr
        assert expand(allowed(pid, v["tid"])) == [1]
        p = run("pin", "pins", "emulator", "0", env=env)
        assert p.returncode == 0 and json.loads(p.stdout)["emulator_cpus"] == [0], p.stderr
        pl = placement()
        assert pl["as_planned"], pl["drift"]
        assert pl["vcpus"][0]["allowed"] == [1]
        for t in pl["threads"]:
            assert t["allowed"] == [0] and expand(allowed(pid, t["tid"])) == [0], t
        with open(os.path.join(vm.dir, "state.json")) as f:
            assert json.load(f)["vcpu_pins"] == [1]
        p = run("status", "pins", "--json", env=env)
        assert json.loads(p.stdout)["vcpu_pins"] == [1]
        # Refusals: no such CPU, no such vCPU, a vCPU on two CPUs.
        for args, want in ((["0", "4095"], "CPU 4095 is not an online CPU"),
                           (["7", "0"], "no such vCPU"),
                           (["0", "0-1"], "a vCPU is pinned to one CPU")):
            p = run("pin", "pins", *args, env=env)
            assert p.returncode == 1 and want in p.stderr, (args, p.stderr)
        # From outside: QEMU's main thread let onto every CPU.
        subprocess.run(["taskset", "-pc", "0-1", str(pid)], check=True,
                       stdout=subprocess.DEVNULL)
        pl = placement()
        assert not pl["as_planned"], pl
        assert any("thread %d (qemu-system-x86, main) may run on CPUs 0-1, not the "
                   "emulator CPUs 0" % pid in d for d in pl["drift"]), pl["drift"]
        text = run("status", env=env).stdout
        assert "placement: DRIFT" in text, text
        vm.proc.send_signal(signal.SIGTERM)
        rc, err = vm.finish()
        assert rc == 0, err
        assert "vCPU 0 pinned to CPU 1" in err, err


def test_prealloc_shows_progress_and_lands_on_node():
    """With "prealloc", QEMU allocates every page before it greets on QMP; qpass says how
    far it is while it waits, and the whole RAM is resident on the node when it runs."""
    with tempfile.TemporaryDirectory() as tmp:
        text = UP_PROFILE % ("pre", 1, ', "machine": "pc", "memory": "1536M", '
                             '"prealloc": true, "prealloc_threads": 2')
        text = text.replace('"memory": "128M", ', "")
        vm = Up(tmp, name="pre", text=text)
        vm.state()
        err = vm.stderr()
        p = run("status", "pre", "--json", env={"QPASS_RUNDIR": vm.rundir})
        vm.proc.send_signal(signal.SIGTERM)
        rc, _ = vm.finish()
        assert rc == 0, err
        assert re.search(r"pre: guest RAM preallocated: 1\.5 GiB(, 1\.5 GiB on node \d+)?, "
                         r"by 2 threads in [0-9.]+ s", err), err
        for line in re.findall(r"allocating guest RAM: .*", err):
            assert re.fullmatch(r"allocating guest RAM: [0-9.]+ of 1\.5 GiB \(\d+ %\)"
                                r"(, [0-9.]+ GiB on node \d+)?, \d+ s", line), line
        mem = json.loads(p.stdout)["placement"]["memory"]
        resident = sum(mem["pages"].values()) * mem["page_kb"] * 1024
        assert resident >= 1536 << 20, mem
        if mem["node"] is not None and mem["node"] >= 0:
            assert mem["elsewhere"] == 0 and mem["on_node"] * mem["page_kb"] >= 1536 << 10


if __name__ == "__main__":
    if not shutil.which("qemu-system-x86_64"):
        print("QEMU is missing: apt-get install qemu-system-x86 (tools/dev deps does)")
        sys.exit(SKIP)
    sys.exit(main([test_up_places_and_stops_on_sigterm, test_qemu_killed_means_non_zero,
                   test_one_vm_per_name, test_status_qmp_down, test_down_force,
                   test_run_as_drops_root, test_qpass_killed_takes_qemu_along,
                   test_ovmf_vars_per_vm, test_bridge_network_tap,
                   test_refusals, test_placement_measured_and_pinned_live,
                   test_prealloc_shows_progress_and_lands_on_node]))
