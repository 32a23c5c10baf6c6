"""The argv of `qpass plan` in the real qemu-system-x86_64: QEMU accepts it, starts
paused (-S), runs after `cont`, and its devices sit at the guest slots the plan gave
them (query-pci). Passthrough itself needs an IOMMU: the lab tests it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SKIP, Qemu, fixture, main, run  # noqa: E402

PC = """{ "name": "qemu-pc", "memory": "256M", "vcpus": 2, "machine": "pc", "accel": "tcg",
  "cpu": {"hide_hypervisor": true, "sockets": 1, "cores": 2, "threads": 1},
  "clock": {"base": "localtime"},
  "disks": [{"file": "TMP/d.qcow2", "format": "qcow2", "cache": "none", "aio": "native"},
            {"file": "TMP/d,1.raw", "format": "raw", "bus": "sata"},
            {"file": "TMP/d.iso", "format": "raw", "readonly": true}],
  "network": [{"type": "user", "mac": "52:54:00:8c:04:9f"}],
  "display": {"type": "vnc", "listen": "127.0.0.1", "port": 5999,
              "password_file": "TMP/vnc-password"},
  "video": "cirrus", "usb": {"controller": "ehci", "tablet": true}, "serial": "pty" }"""

Q35 = """{ "name": "qemu-q35", "memory": "512M", "vcpus": 2, "machine": "q35",
  "firmware": "ovmf", "accel": "tcg",
  "cpu": {"hide_hypervisor": true, "hv_vendor_id": "qpass", "cores": 2,
          "hyperv": {"relaxed": true, "vapic": true, "spinlocks": 8191}},
  "clock": {"hypervclock": true},
  "disks": [{"file": "TMP/d.raw", "format": "raw", "bus": "sata"}],
  "network": [{"type": "user"}], "display": "none", "video": "std",
  "usb": {"controller": "xhci", "tablet": true},
  "serial": {"type": "file", "path": "TMP/serial,log"} }"""


def start(profile_text, tmp):
    path = os.path.join(tmp, "vm.json")
    with open(path, "w") as f:
        f.write(profile_text.replace("TMP", tmp))
    p = run("plan", path, "--json")
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    argv = plan["argv"]
    if plan["ovmf"]:
        # The per-VM copy of the variables, which `qpass up` makes.
        shutil.copy(plan["ovmf"]["vars_template"], os.path.join(tmp, "vars.fd"))
        argv = [a.replace(plan["ovmf"]["vars"], os.path.join(tmp, "vars.fd")) for a in argv]
    return plan, Qemu(argv, tmp)


def slots(q, bus=0):
    """{slot: [(function, vendor, device)]} on a guest bus."""
    out = {}
    for b in q.cmd("query-pci"):
        for d in b["devices"]:
            if d["bus"] == bus:
                out.setdefault(d["slot"], []).append(
                    (d["function"], d["id"]["vendor"], d["id"]["device"]))
    return out


def addr_of(plan, driver):
    for i, a in enumerate(plan["argv"]):
        if a.startswith("{") and json.loads(a).get("driver") == driver:
            return int(json.loads(a)["addr"].split(".")[0], 16)
    raise AssertionError("no %s in the argv" % driver)


def test_pc_profile():
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in (("d.qcow2", "64M"), ("d,1.raw", "16M"), ("d.iso", "1M")):
            fmt = "qcow2" if name.endswith("qcow2") else "raw"
            subprocess.run(["qemu-img", "create", "-q", "-f", fmt, os.path.join(tmp, name),
                            size], check=True)
        with open(os.path.join(tmp, "vnc-password"), "w") as f:
            f.write("secret")
        plan, q = start(PC, tmp)
        try:
            assert q.cmd("query-status")["status"] == "prelaunch"
            s = slots(q)
            assert (0, 0x1013, 0x00b8) in s[addr_of(plan, "cirrus-vga")]
            assert (0, 0x1af4, 0x1000) in s[addr_of(plan, "virtio-net-pci")]
            assert (0, 0x1af4, 0x1001) in s[addr_of(plan, "virtio-blk-pci")]
            assert (0, 0x8086, 0x2922) in s[addr_of(plan, "ich9-ahci")]
            usb = sorted(s[addr_of(plan, "ich9-usb-uhci1")])
            assert [f for f, _, _ in usb] == [0, 1, 2, 7], usb
            assert (0, 0x1af4, 0x1002) in s[addr_of(plan, "virtio-balloon-pci")]
            vnc = q.cmd("query-vnc")
            assert vnc["enabled"] and vnc["service"] == "5999" and vnc["auth"] == "vnc"
            q.cmd("cont")
            assert q.cmd("query-status")["status"] == "running"
        finally:
            rc = q.quit()
        assert rc == 0, q.proc.stderr.read()


def test_q35_ovmf_profile():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", os.path.join(tmp, "d.raw"),
                        "16M"], check=True)
        plan, q = start(Q35, tmp)
        try:
            s = slots(q)
            assert (0, 0x1234, 0x1111) in s[addr_of(plan, "VGA")]
            assert (0, 0x1b36, 0x000d) in s[addr_of(plan, "qemu-xhci")]
            cpus = q.cmd("query-cpus-fast")
            assert [c["props"]["core-id"] for c in cpus] == [0, 1]
            q.cmd("cont")
            assert q.cmd("query-status")["status"] == "running"
        finally:
            rc = q.quit()
        assert rc == 0, q.proc.stderr.read()
        assert os.path.exists(os.path.join(tmp, "serial,log"))


SPAN = """{ "name": "span", "memory": "2G", "vcpus": 4, "numa": "span", "machine": "%s",
  "accel": "tcg", "display": "none", "video": "none", "usb": {"controller": "none"},
  "passthrough": ["04:00", "05:00", "85:00"] }"""


def stand_in(argv):
    """The plan's argv for this host: the seed host's GPUs become emulated e1000e
    functions at the same guest addresses (no IOMMU here), the memory is not bound
    (this host has one node), the CPU model is TCG's."""
    out = []
    for a in argv:
        if a.startswith("{"):
            o = json.loads(a)
            if o.get("driver") == "vfio-pci":
                del o["host"]
                o["driver"] = "e1000e"
            o.pop("host-nodes", None)
            o.pop("policy", None)
            a = json.dumps(o)
        out.append("max" if a.startswith("host") and out and out[-1] == "-cpu" else a)
    return out


def test_span_nodes_in_real_qemu():
    """A VM across the seed host's two nodes: a guest NUMA node per host node with its
    vCPUs and half the RAM, the host's distances, and each GPU behind the expander of
    its node; QEMU (q35 and pc) builds exactly that."""
    for machine in ("q35", "pc"):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "span.json")
            with open(path, "w") as f:
                f.write(SPAN % machine)
            p = run("plan", path, "--json", sysroot=fixture("seed"))
            assert p.returncode == 0, p.stderr
            plan = json.loads(p.stdout)
            assert plan["memory_nodes"] == [0, 1], plan["memory_nodes"]
            assert plan["vcpu_pins"][:2] == [0, 1] and plan["vcpu_pins"][2:] == [14, 15]
            q = Qemu(stand_in(plan["argv"]), tmp)
            try:
                mem = {m["id"]: m["size"] for m in q.cmd("query-memdev")}
                assert mem == {"ram-node0": 1 << 30, "ram-node1": 1 << 30}, mem
                cpus = {c["cpu-index"]: c["props"]["node-id"] for c in q.cmd("query-cpus-fast")}
                assert cpus == {0: 0, 1: 0, 2: 1, 3: 1}, cpus
                info = q.cmd("human-monitor-command", **{"command-line": "info numa"})
                assert "node 0 size: 1024 MB" in info and "node 1 size: 1024 MB" in info, info
                dist = [a for i, a in enumerate(plan["argv"]) if plan["argv"][i - 1] == "-numa"
                        and a.startswith("dist,")]
                assert dist == ["dist,src=0,dst=1,val=21", "dist,src=1,dst=0,val=21"], dist
                for g in (0, 1):
                    n = q.cmd("qom-get", path="/machine/peripheral/pxb.node%d" % g,
                              property="numa_node")
                    assert n == g, (machine, g, n)
                # Each GPU behind its node's expander: the buses up from it, in QOM.
                def expander(dev):
                    while True:
                        bus = q.cmd("qom-get", path="/machine/peripheral/" + dev,
                                    property="parent_bus").rsplit("/", 1)[1]
                        if bus.startswith("pxb.") or bus in ("pci.0", "pcie.0"):
                            return bus
                        dev = bus
                got = {d: expander(d) for d in ("hostdev0", "hostdev5", "hostdev8")}
                assert got == {"hostdev0": "pxb.node0", "hostdev5": "pxb.node0",
                               "hostdev8": "pxb.node1"}, (machine, got)
            finally:
                rc = q.quit()
            assert rc == 0, q.proc.stderr.read()


if __name__ == "__main__":
    if not shutil.which("qemu-system-x86_64") or not shutil.which("qemu-img"):
        print("QEMU is missing: apt-get install qemu-system-x86 qemu-utils ovmf "
              "(tools/dev deps does)")
        sys.exit(SKIP)
    sys.exit(main([test_pc_profile, test_q35_ovmf_profile, test_span_nodes_in_real_qemu]))
