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
from qptest import SKIP, Qemu, main, run  # noqa: E402

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


if __name__ == "__main__":
    if not shutil.which("qemu-system-x86_64") or not shutil.which("qemu-img"):
        print("QEMU is missing: apt-get install qemu-system-x86 qemu-utils ovmf "
              "(tools/dev deps does)")
        sys.exit(SKIP)
    sys.exit(main([test_pc_profile, test_q35_ovmf_profile]))
