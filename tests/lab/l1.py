#!/usr/bin/python3
"""The nested VFIO lab, inside L1: the real qpass on a real kernel with real vfio-pci,
IOMMU groups and NUMA nodes.

tests/lab/run.py boots L1 (under TCG, -cpu max with AMD SVM: L2 runs under KVM inside
L1) with two fake GPUs; tests/lab/init makes this machine's / L1's root and runs this
script there. It does what a user would: loads the GPUs' host drivers, then

  qpass list; qpass check; qpass plan; qpass up (both GPUs, one VM each), checked
  through `qpass qmp` and /proc; qpass down -> every function back on its host driver,
  and working; qpass up again, kill -9 of the supervisor, qpass restore (once after
  QEMU is gone, once at once); and a profile
  that must be refused (function 0 of a group whose other functions stay on the host).

Every command goes into the transcript as typed, with its output, and every check as a
`# ... : OK` (or FAIL) line: /lab-out/transcript.txt on the results share, which the
host shows. /lab-out/status gets "0 ok" or "1 WHAT FAILED" at the end.
"""

import ctypes
import glob
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

OUT = "/lab-out"
# The fake GPUs as tests/lab/run.py makes them (pxb-pcie bus_nr 0x80 and 0x40, a root
# port under each, so the devices sit on buses 0x81 and 0x41), with their host drivers.
GPU1 = "0000:81:00"
GPU0 = "0000:41:00"
HOST_DRIVERS = {
    GPU1 + ".0": "bochs-drm",      # VGA
    GPU1 + ".1": "snd_hda_intel",  # HDA audio
    GPU1 + ".2": "xhci_hcd",       # xHCI USB
    GPU1 + ".3": "serial",         # 16550 PCI serial (8250_pci, built into the kernel)
    GPU0 + ".0": "bochs-drm",      # bochs-display
    GPU0 + ".1": "snd_hda_intel",  # HDA audio
}
GPU1_FUNCS = sorted(a for a in HOST_DRIVERS if a.startswith(GPU1))
GPU0_FUNCS = sorted(a for a in HOST_DRIVERS if a.startswith(GPU0))
# Loaded by hand: L1 has no udev. The generic codec first, so that snd_hda_intel finds
# it without asking the kernel's module loader.
MODULES = ["bochs", "snd-hda-codec-generic", "snd-hda-intel", "xhci-pci", "kvm_amd"]
CMD_TIMEOUT = 60
T0 = time.monotonic()


class Failed(Exception):
    """A check failed: the lab stops (after giving the devices back)."""


class Transcript:
    """What the user would see, with `#` lines for the checks: into the results share
    (the host follows it live) and onto L1's console (next to the kernel's messages)."""

    def __init__(self, path):
        self.f = open(path, "w", buffering=1)

    def line(self, text=""):
        self.f.write(text + "\n")
        print(text, flush=True)

    def note(self, text):
        self.line("# " + text)

    def lines(self, text):
        for ln in text.rstrip("\n").split("\n") if text.strip() else []:
            self.line(ln)

    def check(self, ok, what, why=""):
        """One check, OK or FAIL; a FAIL stops the lab."""
        self.note("%s: %s" % (what, "OK" if ok else "FAIL" + (" (%s)" % why if why else "")))
        if not ok:
            raise Failed(what)

    def expect(self, ok, what, why=""):
        """One check among several: a FAIL is counted, the caller goes on."""
        self.note("%s: %s" % (what, "OK" if ok else "FAIL" + (" (%s)" % why if why else "")))
        return ok


T = None  # the Transcript
ENV = {}
SOURCE = ""


# --- small readers of sysfs and /proc, builtins only (each process start costs) -----

def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        if default is None:
            raise
        return default


def driver(addr):
    link = "/sys/bus/pci/devices/%s/driver" % addr
    return os.path.basename(os.readlink(link)) if os.path.islink(link) else None


def override(addr):
    v = read("/sys/bus/pci/devices/%s/driver_override" % addr, "")
    return None if v in ("", "(null)") else v


def snapshot(addrs):
    return {a: (driver(a), override(a)) for a in addrs}


def wait_for(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def node_cpus(node):
    return expand(read("/sys/devices/system/node/node%d/cpulist" % node))


def expand(cpulist):
    out = []
    for part in cpulist.split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


# --- running qpass as a user would ---------------------------------------------------

def shown(argv):
    return " ".join(shlex.quote(a) for a in argv)


def qpass(*args, want=0, save=None, background=()):
    """Runs `qpass ARGS` in the source tree, shows it and its output (stdout and stderr
    as a terminal interleaves them; with save, stdout goes to that file in the results
    share, as `> FILE` would). What the background `qpass up`s said meanwhile comes
    first, as in a terminal. Returns (exit status, stdout)."""
    argv = ["qpass"] + list(args)
    T.line("$ " + shown(argv) + (" > " + save if save else ""))
    try:
        p = subprocess.run(argv, cwd=SOURCE, env=ENV, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE if save else subprocess.STDOUT,
                           text=True, timeout=CMD_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        said = e.stdout or b""  # bytes, even with text=True
        T.lines(said.decode(errors="replace") if isinstance(said, bytes) else said)
        T.check(False, "%s finished within %d s" % (shown(argv), CMD_TIMEOUT))
    for up in background:
        up.show()
    if save:
        with open(os.path.join(OUT, save), "w") as f:
            f.write(p.stdout)
        T.lines(p.stderr)
    else:
        T.lines(p.stdout)
    if p.returncode < 0:
        T.check(False, "%s ran" % shown(argv), "killed by signal %d" % -p.returncode)
    if want is not None and p.returncode != want:  # as expected: nothing to say
        T.check(False, "%s: exit status %d" % (argv[1], p.returncode), "expected %d" % want)
    return p.returncode, p.stdout


class Up:
    """`qpass up PROFILE &`: the supervisor in the background, its output (QEMU's too)
    in a log that the transcript shows as it grows."""

    def __init__(self, profile, name):
        self.name = name
        self.log_path = os.path.join(OUT, "up-%s.log" % name)
        self.log = open(self.log_path, "a+")
        self.start = self.shown_to = self.log.tell()  # the log may hold an earlier run
        T.line("$ qpass up %s &" % profile)
        self.proc = subprocess.Popen(["qpass", "up", profile], cwd=SOURCE, env=ENV,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.qemu = None

    def text(self, since=None):
        with open(self.log_path) as f:
            f.seek(self.shown_to if since is None else since)
            return f.read()

    def show(self):
        """Shows what it said since last time."""
        new = self.text()
        complete = new[:new.rfind("\n") + 1]
        T.lines(complete)
        self.shown_to += len(complete)

    def wait_running(self, timeout=120):
        pattern = re.compile(r"qpass: %s runs: qemu pid (\d+)" % re.escape(self.name))

        def runs():
            return pattern.search(self.text(self.start)) or self.proc.poll() is not None

        wait_for(runs, timeout, 0.1)
        self.show()
        m = pattern.search(self.text(self.start))
        if not m:
            status = self.proc.poll()
            T.check(False, "qpass up %s runs the VM" % self.name,
                    "it ended with status %s" % status if status is not None
                    else "not within %d s" % timeout)
        self.qemu = int(m.group(1))
        return self.qemu

    def wait_exit(self, timeout=60):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.show()
            T.check(False, "qpass up %s ended" % self.name, "still running after %d s" % timeout)
        self.show()
        return rc

    def stop(self):
        """Cleanup after a failure: SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the steps ------------------------------------------------------------------------

def setup():
    T.note("nested VFIO lab: L1 runs Linux %s under TCG; this is L1's transcript" %
           os.uname().release)
    nodes = sorted(int(n[len("/sys/devices/system/node/node"):])
                   for n in glob.glob("/sys/devices/system/node/node[0-9]*"))
    T.note("L1's NUMA nodes: %s" % ", ".join("node %d CPUs %s" % (n, read(
        "/sys/devices/system/node/node%d/cpulist" % n)) for n in nodes))
    T.check(nodes == [0, 1] and node_cpus(0) == [0] and node_cpus(1) == [1],
            "L1 has NUMA node 0 with CPU 0 and node 1 with CPU 1")
    T.check(len(os.listdir("/sys/kernel/iommu_groups")) > 0,
            "L1's IOMMU (intel-iommu) made IOMMU groups")
    # The host drivers take the fake GPUs, as on a desktop before passthrough.
    p = subprocess.run(["modprobe", "-a"] + MODULES, env=ENV, capture_output=True, text=True)
    T.check(p.returncode == 0, "the host drivers loaded (L1 has no udev): modprobe -a %s" %
            " ".join(MODULES), p.stderr.strip())
    for a, want in sorted(HOST_DRIVERS.items()):
        got = wait_for(lambda: driver(a) == want and driver(a), 20)
        how = got == want and works(a)
        T.check(bool(how), "%s on its host driver %s, working: %s" % (a, want, how or "no"),
                "its driver is %s" % driver(a))
    T.check(os.path.exists("/dev/kvm"), "L1 has /dev/kvm (kvm_amd: L2 runs under KVM)")


def works(addr):
    """Whether the host driver of addr really works: its card, bus or port is there.
    Returns a description, or None."""
    dev = "/sys/bus/pci/devices/" + addr
    drv = HOST_DRIVERS[addr]

    def probe():
        if drv == "snd_hda_intel":
            cards = [os.path.basename(c) for c in glob.glob(dev + "/sound/card*")]
            if not cards:
                return None
            n = cards[0][len("card"):]
            listed = read("/proc/asound/cards", "")
            if re.search(r"^ *%s \[" % n, listed, re.M):
                return "sound card %s in /proc/asound/cards" % n
        elif drv == "xhci_hcd":
            for bus in glob.glob(dev + "/usb[0-9]*"):
                b = os.path.basename(bus)
                if os.path.exists("/sys/bus/usb/devices/" + b):
                    return "USB bus %s in /sys/bus/usb/devices" % b
        elif drv == "bochs-drm":
            cards = glob.glob(dev + "/drm/card[0-9]*")
            if cards:
                return "DRM device /dev/dri/%s" % os.path.basename(cards[0])
        elif drv == "serial":
            ttys = glob.glob(dev + "/tty/ttyS*")
            if ttys:
                return "serial port /dev/%s" % os.path.basename(ttys[0])
        return None

    return wait_for(probe, 15, 0.1)


def list_step():
    qpass("list")
    qpass("list", "--json", save="list.json")
    with open(os.path.join(OUT, "list.json")) as f:
        host = json.load(f)
    gpus = {g["slot"]: g for g in host["gpus"]}
    devs = {d["address"]: d for d in host["devices"]}
    T.check(sorted(gpus) == [GPU0, GPU1], "qpass list --json shows 2 GPUs, %s and %s" %
            (GPU0, GPU1), "it shows %s" % sorted(gpus))
    groups = {}
    for slot, funcs, node in ((GPU1, GPU1_FUNCS, 1), (GPU0, GPU0_FUNCS, 0)):
        g = gpus[slot]
        T.check(g["functions"] == funcs, "GPU %s has the functions %s" % (
            slot, " ".join(f[len(slot):] for f in funcs)), "list says %s" % g["functions"])
        T.check(len(g["iommu_groups"]) == 1 and not g["group_peers"],
                "GPU %s: its functions are IOMMU group %s, with nothing else in it" %
                (slot, ", ".join(map(str, g["iommu_groups"]))), "peers %s" % g["group_peers"])
        groups[slot] = g["iommu_groups"][0]
        T.check(g["numa_node"] == node, "GPU %s is on NUMA node %d" % (slot, node),
                "list says %s" % g["numa_node"])
        for a in funcs:
            d = devs[a]
            T.check(d["driver"] == HOST_DRIVERS[a] and d["iommu_group"] == groups[slot] and
                    d["numa_node"] == node,
                    "%s: %s, group %s, node %s, driver %s" % (a, d["class_name"],
                                                             d["iommu_group"], d["numa_node"],
                                                             d["driver"]))
    T.check(groups[GPU0] != groups[GPU1], "the two GPUs are in different IOMMU groups")


def check_step(profiles):
    p = subprocess.run(["qpass", "check", "--help"], cwd=SOURCE, env=ENV,
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if p.returncode != 0 and "unknown command" in p.stdout + p.stderr:
        T.note("qpass check: not available (`qpass check --help` says: %s)" %
               (p.stderr.strip().splitlines() or [""])[0])
        return
    for prof in profiles:
        qpass("check", prof)


def plan_step(profile, name):
    qpass("plan", profile)
    qpass("plan", profile, "--json", save="%s-plan.json" % name)
    with open(os.path.join(OUT, "%s-plan.json" % name)) as f:
        return json.load(f)


def pci_devices(buses, parent=None):
    """Flattens query-pci: every device with its bus number and the bridge above it."""
    out = []
    for bus in buses:
        for d in bus["devices"]:
            out.append(dict(d, parent=parent))
            bridge = d.get("pci_bridge")
            if bridge and bridge.get("devices") is not None:
                out += pci_devices([{"devices": bridge["devices"]}], d.get("qdev_id"))
    return out


def l2_slot_step(name, plan):
    """In L2 (through `qpass qmp`): every function of the GPU on one guest slot, each
    with its host function's number, multifunction on function 0."""
    ids = {d["id"]: d for d in plan["devices"]}
    # The guest runs (qpass up sends cont after placement); SeaBIOS numbers the root
    # ports' buses only then, and query-pci shows the devices behind them after that.
    tries = 0

    def numbered():
        nonlocal tries
        tries += 1
        p = subprocess.run(["qpass", "qmp", name, "query-pci"], env=ENV, capture_output=True,
                           text=True, timeout=CMD_TIMEOUT)
        if p.returncode != 0:
            return None
        devs = [d for d in pci_devices(json.loads(p.stdout)["return"]) if d.get("qdev_id") in ids]
        return devs if len(devs) == len(ids) and all(d["bus"] for d in devs) else None

    if not wait_for(numbered, 60, 0.3):
        T.check(False, "L2's firmware numbered the bus of %s's devices" % name,
                "not within 60 s")
    if tries > 1:
        T.note("(query-pci asked %d times, until SeaBIOS in L2 had numbered the root "
               "port's bus)" % tries)
    qpass("qmp", name, "query-pci", save="%s-l2-query-pci.json" % name)
    with open(os.path.join(OUT, "%s-l2-query-pci.json" % name)) as f:
        devs = [d for d in pci_devices(json.load(f)["return"]) if d.get("qdev_id") in ids]
    for d in sorted(devs, key=lambda d: d["function"]):
        p = ids[d["qdev_id"]]
        T.note("L2 %02x:%02x.%d  class %04x  %04x:%04x  %s = host %s  (behind %s)" % (
            d["bus"], d["slot"], d["function"], d["class_info"]["class"], d["id"]["vendor"],
            d["id"]["device"], d["qdev_id"], p["host"], d["parent"]))
    places = {(d["bus"], d["slot"]) for d in devs}
    T.check(len(devs) == len(ids) and len(places) == 1,
            "%s: the %d functions sit on one guest slot (bus %02x slot %02x)" % (
                name, len(ids), *sorted(places)[0]), "slots %s" % sorted(places))
    for d in devs:
        host_fn = int(ids[d["qdev_id"]]["host"][-1])
        T.check(d["function"] == host_fn, "%s is function %d in L2 as on the host" % (
            ids[d["qdev_id"]]["host"], d["function"]))
    fn0 = [i for i, p in ids.items() if p["host"].endswith(".0")][0]
    _, out = qpass("qmp", name, "qom-get", json.dumps(
        {"path": "/machine/peripheral/" + fn0, "property": "multifunction"}))
    T.check(json.loads(out).get("return") is True,
            "%s (function 0) has multifunction on" % fn0)


def placement_step(name, qemu, plan, node):
    """vCPU threads on the node's CPUs, guest RAM on the node, read from /proc."""
    cpus = node_cpus(node)
    vcpus = 0
    measured = set()
    for task in sorted(os.listdir("/proc/%d/task" % qemu), key=int):
        comm = read("/proc/%d/task/%s/comm" % (qemu, task), "")
        m = re.fullmatch(r"CPU (\d+)/KVM", comm)
        if not m:
            continue
        vcpus += 1
        v = int(m.group(1))
        status = read("/proc/%d/task/%s/status" % (qemu, task))
        allowed = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.M).group(1)
        want = [plan["vcpu_pins"][v]]
        measured.update(expand(allowed))
        T.check(expand(allowed) == want and want[0] in cpus,
                "vCPU %d thread (\"%s\", tid %s) runs on CPU %s (node %d)" % (
                    v, comm, task, allowed, node), "pinned to %s" % want)
    T.check(vcpus == len(plan["vcpu_pins"]), "QEMU has the plan's %d vCPU thread%s" % (
        len(plan["vcpu_pins"]), "" if len(plan["vcpu_pins"]) == 1 else "s"), "found %d" % vcpus)
    # The guest RAM: the mapping of exactly the memory backend's size. VFIO pins all of
    # it, so every page is there to count.
    size = plan["memory_mib"] << 20
    starts = []
    with open("/proc/%d/maps" % qemu) as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if hi - lo == size:
                starts.append(lo)
    T.check(len(starts) == 1, "QEMU has one mapping of %d MiB, the guest RAM" % (size >> 20),
            "found %d" % len(starts))
    with open("/proc/%d/numa_maps" % qemu) as f:
        line = [ln for ln in f if int(ln.split()[0], 16) == starts[0]][0]
    fields = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
    total = size // (int(fields.get("kernelpagesize_kB", "4")) * 1024)
    on = int(fields.get("N%d" % node, "0"))
    elsewhere = {k: v for k, v in fields.items() if re.fullmatch(r"N\d+", k) and
                 k != "N%d" % node}
    T.note("numa_maps of the guest RAM: %s" % line.strip())
    T.check(on * 100 >= total * 99, "guest RAM: %d of %d pages on node %d (%d%%)" % (
        on, total, node, on * 100 // total), "elsewhere: %s" % elsewhere)
    return measured


def status_step(name, node, qemu):
    """qpass status reads the placement back from the kernel and says it is as planned:
    guest RAM on the node, the fake GPU's vfio interrupts on the VM's CPUs of that
    node. Then a pin made from outside (taskset) shows as drift."""
    _, out = qpass("status", name, "--json", save="status-%s.json" % name)
    pl = json.loads(out)["placement"]
    mem = pl["memory"] or {}
    total = mem.get("on_node", 0) + mem.get("elsewhere", 0)
    T.check(pl["as_planned"] and total and mem["on_node"] * 100 >= total * 99,
            "%s: status says placed as planned; guest RAM %d of %d pages on node %d" % (
                name, mem.get("on_node", 0), total, node), "drift: %s" % pl["drift"])
    irqs = pl["interrupts"]
    cpus = set(node_cpus(node))
    if not irqs:
        # A function whose INTx line is shared and that cannot mask it (81:00's serial
        # on IRQ 11) gets no vfio interrupt from the kernel.
        T.note("%s: its devices have no vfio interrupt in L1's /proc/interrupts" % name)
    T.check(all(i["affinity"] == i["wanted"] and set(i["affinity"]) <= cpus for i in irqs),
            "%s: its vfio interrupts (%s) go to CPUs %s of node %d" % (
                name, ", ".join("%d %s" % (i["irq"], i["name"]) for i in irqs) or "none",
                sorted({c for i in irqs for c in i["affinity"]}), node), "%s" % irqs)
    everywhere = ",".join(str(c) for c in sorted(set(node_cpus(0)) | set(node_cpus(1))))
    subprocess.run(["taskset", "-pc", everywhere, str(qemu)], check=True,
                   stdout=subprocess.DEVNULL)
    _, out = qpass("status", name)
    T.check("placement: DRIFT" in out and "main) may run on CPUs" in out,
            "%s: after `taskset -pc %s %d` status reports the drift" % (name, everywhere, qemu))
    _, out = qpass("status", name, "--json", save="status-%s-drift.json" % name)
    main = [t for t in json.loads(out)["placement"]["threads"] if t["role"] == "main"][0]
    qpass("pin", name, "emulator", ",".join(str(c) for c in main["pinned"]))
    _, out = qpass("status", name)
    T.check("placement: as planned" in out, "%s: `qpass pin %s emulator` puts it back" %
            (name, name))
    return len(irqs)


def lease_step(name, funcs):
    """The VM's lease holds its functions and its CPUs, as the ledger shows them."""
    lease = json.loads(read("/run/qpass/leases/%s.json" % name, "{}") or "{}")
    T.check(lease.get("devices") == sorted(funcs) and lease.get("running") is True,
            "%s's lease holds %s" % (name, " ".join(sorted(funcs))), "lease: %s" % lease)
    return set(lease.get("vcpu_cpus", [])) | set(lease.get("emulator_cpus", []))


def journal(name):
    return "/run/qpass/journal/%s.json" % name


def back_step(funcs, what):
    """Every function on its host driver again, and the driver working."""
    bad = 0
    for a in funcs:
        want = HOST_DRIVERS[a]
        got = wait_for(lambda: driver(a) == want and driver(a), 10)
        if not T.expect(got == want and override(a) is None, "%s back on %s" % (a, want),
                        "driver %s, driver_override %s" % (driver(a), override(a))):
            bad += 1
    for a in funcs:
        how = works(a)
        if not T.expect(bool(how), "%s works again: %s" % (a, how or HOST_DRIVERS[a])):
            bad += 1
    T.check(bad == 0, "%s: every function back on its host driver, and working" % what)


def clean_path():
    """Both VMs up at once, checked, stopped with qpass down."""
    plans = {"gpu1": plan_step("tests/lab/gpu1.json", "gpu1"),
             "gpu0": plan_step("tests/lab/gpu0.json", "gpu0")}
    T.check(plans["gpu1"]["numa_node"] == 1 and plans["gpu0"]["numa_node"] == 0,
            "the plans put gpu1 on node 1 and gpu0 on node 0 (numa auto)")
    ups = {}
    try:
        for name in ("gpu1", "gpu0"):
            ups[name] = Up("tests/lab/%s.json" % name, name)
            ups[name].wait_running()
            funcs = GPU1_FUNCS if name == "gpu1" else GPU0_FUNCS
            T.check(all(driver(a) == "vfio-pci" for a in funcs),
                    "%s: %s on vfio-pci" % (name, " ".join(funcs)))
        qpass("status")
        vcpus, held, irqs = {}, {}, 0
        for name, node in (("gpu1", 1), ("gpu0", 0)):
            T.note("%s in L2:" % name)
            l2_slot_step(name, plans[name])
            vcpus[name] = placement_step(name, ups[name].qemu, plans[name], node)
            held[name] = lease_step(name, GPU1_FUNCS if name == "gpu1" else GPU0_FUNCS)
            irqs += status_step(name, node, ups[name].qemu)
            for u in ups.values():
                u.show()
        T.check(irqs > 0, "the fake GPUs have %d vfio interrupt%s, each on its VM's node" %
                (irqs, "" if irqs == 1 else "s"))
        T.check(not vcpus["gpu1"] & vcpus["gpu0"] and not held["gpu1"] & held["gpu0"],
                "the two VMs' vCPUs run on CPUs of their own (measured: gpu1 %s, gpu0 %s), and "
                "their leases hold no CPU twice" % (sorted(vcpus["gpu1"]), sorted(vcpus["gpu0"])))
        for name in ("gpu1", "gpu0"):
            qpass("down", name, background=[ups[name]])
            rc = ups[name].wait_exit()
            T.check(rc == 0, "qpass up %s ended with status 0" % name, "status %d" % rc)
            T.check(not os.path.exists(journal(name)), "%s's journal is gone" % name)
        back_step(GPU1_FUNCS + GPU0_FUNCS, "after qpass down")
        T.check(not [f for f in os.listdir("/run/qpass/leases") if f.endswith(".json")],
                "no lease is left")
    finally:
        for u in ups.values():
            u.stop()


def span_path():
    """One VM with both GPUs across both nodes: a guest node per host node, each half of
    the RAM on its own node (numa_maps), each GPU behind the expander of its node in
    L2, each GPU's interrupts on its node's CPU."""
    plan = plan_step("tests/lab/gpu-both.json", "gpu-both")
    T.check(plan["memory_nodes"] == [0, 1] and plan["vcpu_pins"] == [0, 1],
            "the plan spans nodes 0 and 1: vCPU 0 on CPU 0, vCPU 1 on CPU 1",
            "memory_nodes %s, vcpu_pins %s" % (plan["memory_nodes"], plan["vcpu_pins"]))
    up = Up("tests/lab/gpu-both.json", "gpu-both")
    try:
        qemu = up.wait_running()
        funcs = GPU0_FUNCS + GPU1_FUNCS
        T.check(all(driver(a) == "vfio-pci" for a in funcs), "%s on vfio-pci" %
                " ".join(funcs))
        # The two backends: the mappings of half the RAM each (128 MiB).
        starts = set()
        with open("/proc/%d/maps" % qemu) as f:
            for ln in f:
                lo, hi = (int(x, 16) for x in ln.split()[0].split("-"))
                if hi - lo == 128 << 20:
                    starts.add(lo)
        with open("/proc/%d/numa_maps" % qemu) as f:
            maps = [ln for ln in f if int(ln.split()[0], 16) in starts]
        for ln in maps:
            T.note("numa_maps: %s" % ln.strip())
        per = {}
        for ln in maps:
            node = int(ln.split()[1].split(":")[1])
            pages = {k: int(v) for k, v in re.findall(r"\b(N\d+)=(\d+)", ln)}
            per[node] = (pages.get("N%d" % node, 0), sum(pages.values()))
        T.check(sorted(per) == [0, 1] and all(t and on * 100 >= t * 99
                                              for on, t in per.values()),
                "guest RAM: each half on its own node (%s)" % ", ".join(
                    "node %d: %d of %d pages" % (n, on, t) for n, (on, t) in sorted(
                        per.items())), "%s" % per)
        _, out = qpass("status", "gpu-both", "--json", save="status-gpu-both.json")
        pl = json.loads(out)["placement"]
        T.check(pl["as_planned"] and pl["memory"] and pl["memory"].get("by_guest_node"),
                "status: placed as planned, the RAM read per guest node", "%s" % pl["drift"])
        irqs = pl["interrupts"]
        good = all(i["affinity"] == i["wanted"] == [0 if i["device"].startswith(
            "0000:41:") else 1] for i in irqs)
        T.check(good, "each GPU's vfio interrupts on its own node's CPU (%s)" % (
            ", ".join("%s -> %s" % (i["name"], i["affinity"]) for i in irqs) or "none"),
            "%s" % irqs)
        for dev, want in (("hostdev0", "pxb.node0"), (plan_dev_id(plan, GPU1), "pxb.node1")):
            bus = dev
            while not bus.startswith("pxb.") and bus not in ("pcie.0", ""):
                _, out = qpass("qmp", "gpu-both", "qom-get", json.dumps(
                    {"path": "/machine/peripheral/" + bus, "property": "parent_bus"}))
                bus = json.loads(out)["return"].rsplit("/", 1)[1]
            T.check(bus == want, "in L2, %s sits behind %s" % (dev, want), "got %s" % bus)
        qpass("down", "gpu-both", background=[up])
        rc = up.wait_exit()
        T.check(rc == 0, "qpass up gpu-both ended with status 0", "status %d" % rc)
    finally:
        up.stop()
    back_step(GPU0_FUNCS + GPU1_FUNCS, "after the VM across nodes")


def plan_dev_id(plan, slot):
    """The guest id of the first function of host slot in a plan."""
    for d in plan["devices"]:
        if d["host"].startswith(slot):
            return d["id"]
    raise Failed("no device of %s in the plan" % slot)


def crash_path(at_once):
    """kill -9 of the supervisor: QEMU dies with it, the journal stays, restore. With
    at_once, restore runs the moment the supervisor is dead, as a script would, while
    QEMU may still be letting go of the devices."""
    up = Up("tests/lab/gpu1.json", "gpu1")
    try:
        qemu = up.wait_running()
        T.check(all(driver(a) == "vfio-pci" for a in GPU1_FUNCS),
                "%s on vfio-pci" % " ".join(GPU1_FUNCS))
        T.line("$ kill -9 %d    # qpass up, the supervisor" % up.proc.pid)
        up.proc.kill()
        up.proc.wait()
        if not at_once:
            # This script is the child subreaper: the orphaned QEMU comes to it.
            status = wait_for(lambda: reaped(qemu), 30, 0.05)
            T.check(bool(status), "QEMU (pid %d) is gone: %s" % (qemu, status or
                                                                  "still running"))
            up.show()
            T.check(os.path.exists(journal("gpu1")), "the journal %s is left for restore" %
                    journal("gpu1"))
            T.check(all(driver(a) == "vfio-pci" for a in GPU1_FUNCS),
                    "%s still on vfio-pci" % " ".join(GPU1_FUNCS))
    finally:
        up.stop()
    qpass("restore")
    if at_once:
        status = wait_for(lambda: reaped(qemu), 30, 0.05)
        T.check(bool(status), "QEMU (pid %d) is gone: %s" % (qemu, status or "still running"))
    T.check(not os.path.exists(journal("gpu1")), "the journal is gone")
    back_step(GPU1_FUNCS, "after kill -9 and qpass restore%s" % (" at once" if at_once else ""))


def reaped(pid):
    """The child subreaper's view: None while pid runs, else how it ended."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not ours after all: /proc says whether it still runs
        state = read("/proc/%d/stat" % pid, "").rpartition(")")[2].split()[:1]
        return "ended (its exit status went elsewhere)" if state in ([], ["Z"]) else None
    if got == 0:
        return None
    if os.WIFSIGNALED(status):
        return "killed by %s (it dies with qpass: PR_SET_PDEATHSIG)" % signal.Signals(
            os.WTERMSIG(status)).name
    return "exited with status %d" % os.WEXITSTATUS(status)


def refusal_path():
    """Function 0 alone of a group whose other functions keep their host drivers."""
    funcs = GPU1_FUNCS + GPU0_FUNCS
    before = snapshot(funcs)
    journals = sorted(os.listdir("/run/qpass/journal")) if os.path.isdir(
        "/run/qpass/journal") else []
    rc, out = qpass("up", "tests/lab/gpu1-fn0.json", want=None)
    T.check(rc == 1, "qpass up refused it: exit status %d" % rc, "expected 1")
    T.check("IOMMU group" in out and GPU1 + ".1" in out,
            "it says why: the IOMMU group's other functions stay on host drivers")
    after = snapshot(funcs)
    changed = {a: (before[a], after[a]) for a in funcs if before[a] != after[a]}
    T.check(not changed, "nothing was touched: every driver and driver_override as before",
            "changed: %s" % changed)
    now = sorted(os.listdir("/run/qpass/journal")) if os.path.isdir(
        "/run/qpass/journal") else []
    T.check(now == journals, "no journal was written", "journals now %s" % now)


def main():
    global T, SOURCE, ENV
    args = dict(w.split("=", 1) for w in read("/proc/cmdline").split()
                if w.startswith("lab.") and "=" in w)
    SOURCE = args["lab.source"]
    qpass_bin = args["lab.qpass"]
    ENV = {"PATH": os.path.dirname(qpass_bin) + ":/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8", "HOME": "/root"}
    T = Transcript(os.path.join(OUT, "transcript.txt"))
    # QEMU, orphaned when its qpass is killed, must come to this script, not to PID 1.
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    status = "1 the lab did not finish"
    try:
        setup()
        T.line()
        T.note("qpass sees the GPUs, their functions, IOMMU groups and NUMA nodes")
        list_step()
        T.line()
        check_step(["tests/lab/gpu1.json", "tests/lab/gpu0.json"])
        T.line()
        T.note("the clean path: both VMs up, checked in L2 and on L1, then qpass down")
        clean_path()
        T.line()
        T.note("one VM across both nodes: both GPUs, the guest's NUMA mirrors L1's")
        span_path()
        T.line()
        T.note("the crash path: qpass up, kill -9 of the supervisor, qpass restore")
        crash_path(at_once=False)
        T.line()
        T.note("again, with qpass restore the moment the supervisor is dead")
        crash_path(at_once=True)
        T.line()
        T.note("the refusal path: function 0 alone of a group whose other functions "
               "stay on host drivers")
        refusal_path()
        status = "0 ok"
    except Failed as e:
        status = "1 %s" % e
    except Exception as e:  # a bug of this script, or a surprise of the kernel: say it
        import traceback
        T.lines(traceback.format_exc())
        status = "1 %s: %s" % (type(e).__name__, e)
    T.line()
    T.note("lab in L1: %s after %.1f s (L1 uptime %s s)" % (
        "all checks OK" if status.startswith("0") else "FAILED: " + status[2:],
        time.monotonic() - T0, read("/proc/uptime").split()[0]))
    with open(os.path.join(OUT, "dmesg.txt"), "w") as f:
        subprocess.run(["dmesg"], stdout=f, stderr=subprocess.STDOUT)
    with open(os.path.join(OUT, "status"), "w") as f:
        f.write(status + "\n")
    return 0 if status.startswith("0") else 1


if __name__ == "__main__":
    sys.exit(main())
