"""`qpass check`, the host doctor: each check on a fixture host made to fail it (a copy
of a fixture tree, changed the way a real host would be), and on this real machine,
which has no IOMMU. Every finding that is not OK must carry its fix for that host."""

import json
import os
import shutil
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from qptest import QPASS, SOURCE, fixture, main, run, scratch  # noqa: E402

SEED_PROFILE = os.path.join(SOURCE, "profiles", "examples", "win10-gpu-01.json")


class Host:
    """A writable copy of a fixture host."""

    def __init__(self, name):
        self.tmp = scratch()
        self.root = os.path.join(self.tmp.name, name)
        shutil.copytree(fixture(name), self.root, symlinks=True)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def write(self, rel, text):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if os.path.exists(p):
            os.chmod(p, 0o644)
        with open(p, "w") as f:
            f.write(text)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def edit(self, rel, old, new):
        text = self.read(rel)
        assert old in text, "%s has no %r" % (rel, old)
        self.write(rel, text.replace(old, new))

    def remove(self, rel):
        os.remove(self.path(rel))

    def link(self, rel, target):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        os.symlink(target, self.path(rel))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tmp.cleanup()


def check(root, *args, env=None, want_rc=None):
    """Runs `qpass check --json ARGS` on root: {(id, subject): row}, and the document."""
    p = run("check", "--json", *args, sysroot=root, env=env)
    assert p.returncode in (0, 1), "check failed to run (%d): %s" % (p.returncode, p.stderr)
    doc = json.loads(p.stdout)
    rows = {(r["id"], r["subject"]): r for r in doc["checks"]}
    fails = [r for r in doc["checks"] if r["status"] == "FAIL"]
    assert doc["ok"] == (not fails) and p.returncode == (1 if fails else 0), \
        "exit status %d with %d FAILs" % (p.returncode, len(fails))
    for r in doc["checks"]:
        assert r["status"] in ("OK", "SKIP", "WARN", "FAIL"), r
        assert (r["fix"] is None) == (r["status"] in ("OK", "SKIP")), \
            "a finding that is not OK carries a fix, an OK one none: %s" % r
    if want_rc is not None:
        assert p.returncode == want_rc, (p.returncode, p.stdout)
    return rows, doc


def finding(rows, id_, subject="host"):
    key = (id_, subject)
    assert key in rows, "no %s finding for %s in %s" % (id_, subject, sorted(rows))
    return rows[key]


def expect(row, status, *words):
    text = row["detail"] + "\n" + (row["fix"] or "")
    assert row["status"] == status, "%s: %s, not %s: %s" % (row["id"], row["status"],
                                                            status, text)
    for w in words:
        assert w in text, "%s (%s) does not say %r:\n%s" % (row["id"], status, w, text)


def profile(tmp, name, text):
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        f.write(text)
    return path


def caps_may_raise_memlock():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 24))
    return False


# --- host checks --------------------------------------------------------------------

def test_ready_hosts_pass():
    """The fixtures as they are: nothing FAILs on the hosts set up for passthrough."""
    for name in ("seed", "desktop-chipset"):
        rows, doc = check(fixture(name))
        for id_ in ("cpu", "iommu", "irq-remap", "vfio", "kvm", "qemu"):
            assert finding(rows, id_)["status"] == "OK", (name, finding(rows, id_))
        expect(finding(rows, "iommu"), "OK", "DMAR" if name == "seed" else "IVRS")


def test_iommu_off_debian():
    rows, _ = check(fixture("iommu-off"), want_rc=1)
    expect(finding(rows, "iommu"), "FAIL", "ACPI DMAR table", "intel_iommu=on",
           "/etc/default/grub, line 10", 'GRUB_CMDLINE_LINUX="intel_iommu=on"',
           "update-grub", "reboot")
    assert finding(rows, "irq-remap")["status"] == "SKIP"
    # Turned off on the command line: the fix takes the word out as it adds the right one.
    with Host("iommu-off") as h:
        h.edit("proc/cmdline", " quiet", " quiet intel_iommu=off")
        h.edit("etc/default/grub", 'GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="intel_iommu=off"')
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "iommu"), "FAIL", "command line turns it off",
               'GRUB_CMDLINE_LINUX="intel_iommu=on"')


def test_iommu_off_centos_and_firmware():
    """The seed's host with the IOMMU off in the firmware and the kernel: the seed's own
    fix (grub2-mkconfig), and VT-d in the firmware setup."""
    with Host("iommu-off") as h:
        h.write("etc/os-release", 'NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\n')
        h.edit("etc/default/grub", 'GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="rhgb quiet"')
        h.remove("sys/firmware/acpi/tables/DMAR")
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "iommu"), "FAIL", "no ACPI DMAR or IVRS table", "VT-d",
               'GRUB_CMDLINE_LINUX="rhgb quiet intel_iommu=on"',
               "grub2-mkconfig -o /boot/grub2/grub.cfg")
        h.remove("etc/default/grub")
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "iommu"), "FAIL", "no /etc/default/grub",
               "add intel_iommu=on to the kernel command line")


def test_cpu_virtualization_off():
    with Host("desktop-peg") as h:
        h.write("proc/cpuinfo", h.read("proc/cpuinfo").replace(" vmx", ""))
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "cpu"), "FAIL", "no vmx or svm",
               "Intel Virtualization Technology (VT-x)")


def test_interrupt_remapping():
    with Host("seed") as h:
        h.write("proc/interrupts", h.read("proc/interrupts").replace("IR-", ""))
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "irq-remap"), "FAIL", "Failed to set iommu for container",
               "firmware", "allow_unsafe_interrupts=1", "security hole")
        # Turned off on the command line: the fix is the grub line without it.
        h.edit("proc/cmdline", "intel_iommu=on", "intel_iommu=on intremap=off")
        h.edit("etc/default/grub", "intel_iommu=on", "intel_iommu=on intremap=off")
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "irq-remap"), "FAIL", "command line turns it off",
               "line 6", 'rhgb quiet intel_iommu=on"', "grub2-mkconfig")
        assert "intremap" not in finding(rows, "irq-remap")["fix"]
        # The unsafe escape hatch in use: a loud warning, not a pass.
        h.write("sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n")
        rows, _ = check(h.root)
        expect(finding(rows, "irq-remap"), "WARN", "SECURITY HOLE",
               "allow_unsafe_interrupts", "/etc/modprobe.d")


def test_vfio_modules_missing():
    rows, _ = check(fixture("desktop-peg"))
    expect(finding(rows, "vfio"), "WARN", "vfio, vfio_iommu_type1, vfio_pci not loaded",
           "modprobe -a vfio vfio_iommu_type1 vfio_pci", "/etc/modules-load.d/vfio.conf")


def test_kvm_missing():
    with Host("desktop-peg") as h:
        h.remove("dev/kvm")
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "kvm"), "FAIL", "no /dev/kvm")
        h.edit("proc/modules", "kvm_intel 16384", "kvmgt 16384")
        shutil.rmtree(h.path("sys/module/kvm_intel"))
        rows, _ = check(h.root, want_rc=1)
        expect(finding(rows, "kvm"), "FAIL", "no kvm_intel or kvm_amd", "modprobe kvm_intel")


FAKE_QEMU = """#!/bin/sh
# A QEMU built without VFIO: what its -version and -device help print.
case "$*" in
*-version*) echo "QEMU emulator version 6.2.0"; echo "Copyright (c) 2003-2021";;
*help*) echo 'Display devices:'; echo 'name "VGA", bus PCI'; echo 'name "virtio-net-pci", bus PCI';;
esac
"""


def test_qemu():
    with tempfile.TemporaryDirectory() as tmp:
        rows, _ = check(fixture("seed"), env={"PATH": tmp}, want_rc=1)
        expect(finding(rows, "qemu"), "FAIL", "qemu-system-x86_64 is not in PATH",
               "apt-get install qemu-system-x86")
        fake = os.path.join(tmp, "qemu-novfio")
        with open(fake, "w") as f:
            f.write(FAKE_QEMU)
        os.chmod(fake, 0o755)
        prof = profile(tmp, "novfio", '{"name": "t", "memory": "1G", "vcpus": 1, '
                                      '"qemu": "%s"}' % fake)
        rows, _ = check(fixture("seed"), prof, want_rc=1)
        expect(finding(rows, "qemu"), "FAIL", "version 6.2.0", "has no vfio-pci")
        # The real one: found, its version, and vfio-pci.
        rows, _ = check(fixture("seed"))
        expect(finding(rows, "qemu"), "OK", "qemu-system-x86_64, version ", "has vfio-pci")


def test_ovmf_missing():
    with tempfile.TemporaryDirectory() as tmp:
        prof = profile(tmp, "uefi", '{"name": "t", "memory": "1G", "vcpus": 1, '
                                    '"firmware": "ovmf", "ovmf": {"code": "%s/none.fd", '
                                    '"vars": "/usr/share/OVMF/OVMF_VARS_4M.fd"}}' % tmp)
        rows, _ = check(fixture("desktop-peg"), prof, want_rc=1)
        expect(finding(rows, "ovmf"), "FAIL", "none.fd: No such file", "apt-get install ovmf")


def test_hugepages():
    with tempfile.TemporaryDirectory() as tmp:
        # desktop-peg reserves 1024 x 2M pages (2 GiB) on node 0, mounted at /dev/hugepages.
        ok = profile(tmp, "hp", '{"name": "t", "memory": "2G", "vcpus": 2, '
                                '"hugepages": "2M"}')
        rows, _ = check(fixture("desktop-peg"), ok)
        expect(finding(rows, "hugepages", "node 0"), "OK", "1024 of 1024 2M hugepages free")
        big = profile(tmp, "big", '{"name": "t", "memory": "4G", "vcpus": 2, '
                                  '"hugepages": "2M"}')
        rows, _ = check(fixture("desktop-peg"), big, want_rc=1)
        expect(finding(rows, "hugepages", "node 0"), "FAIL", "needs 2048",
               "echo 2048 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/"
               "nr_hugepages")
        with Host("desktop-peg") as h:
            h.edit("proc/mounts", "/dev/hugepages hugetlbfs", "/dev/hugepages tmpfs")
            rows, _ = check(h.root, ok, want_rc=1)
            expect(finding(rows, "hugepages-mount", "/dev/hugepages"), "FAIL",
                   "not a hugetlbfs mount", "mount -t hugetlbfs -o pagesize=2M")


def test_node_rows_of_a_vm_across_nodes():
    """A VM across nodes is checked against each node for its share: the seed's 8 GPUs
    with 128 GiB fit (64 GiB on each node, from free memory and reclaimable caches);
    256 GiB does not, and each node says so."""
    with tempfile.TemporaryDirectory() as tmp:
        text = ('{"name": "t", "memory": "%s", "vcpus": 28, "numa": "span", "passthrough": '
                '["04:00", "05:00", "08:00", "09:00", "85:00", "86:00", "89:00", "8a:00"]}')
        rows, _ = check(fixture("seed"), profile(tmp, "all8", text % "128G"))
        for n in (0, 1):
            expect(finding(rows, "node", "node %d" % n), "WARN", "the VM asks for 65536 MiB")
        assert [r for (i, _), r in rows.items() if i == "plan" and r["status"] == "WARN"] \
            == [], rows
        rows, _ = check(fixture("seed"), profile(tmp, "all8big", text % "256G"), want_rc=1)
        for n in (0, 1):
            expect(finding(rows, "node", "node %d" % n), "FAIL", "the VM asks for 131072 MiB")


def without_memlock_rights():
    """In the child before exec: an 8 MiB hard memlock limit, and CAP_SYS_RESOURCE out
    of the bounding set, so that qpass cannot have it even as root."""
    import ctypes
    import resource
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (8 << 20, 8 << 20))
    PR_CAPBSET_DROP, CAP_SYS_RESOURCE = 24, 24
    ctypes.CDLL(None, use_errno=True).prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0)


def test_memlock():
    """This process's limit against what VFIO pins (64 GiB + 8 devices x 1 GiB): FAIL
    when it is too low and qpass may not raise it, else OK."""
    import subprocess

    def limited(*args):
        p = subprocess.run([QPASS, "--sysroot", fixture("seed"), "check", "--json"] +
                           list(args), capture_output=True, text=True,
                           preexec_fn=without_memlock_rights, timeout=60)
        doc = json.loads(p.stdout)
        assert p.returncode == (0 if doc["ok"] else 1), p.returncode
        return finding({(r["id"], r["subject"]): r for r in doc["checks"]}, "memlock")

    expect(limited(SEED_PROFILE), "FAIL", "hard limit is 8 MiB", "72 GiB",
           "CAP_SYS_RESOURCE", "LimitMEMLOCK=infinity", "/etc/security/limits.conf")
    # Without a VM: only a warning.
    expect(limited(), "WARN", "hard limit 8 MiB", "CAP_SYS_RESOURCE")
    # As this test runs: OK exactly when qpass could pin the VM's memory.
    rows, _ = check(fixture("seed"), SEED_PROFILE)
    row = finding(rows, "memlock")
    import resource
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    need = (64 << 30) + 8 * (1 << 30)
    if caps_may_raise_memlock() or hard == resource.RLIM_INFINITY or hard >= need:
        expect(row, "OK")
    else:
        expect(row, "FAIL", "72 GiB")


# --- per VM or device -----------------------------------------------------------------

def test_seed_profile():
    rows, doc = check(fixture("seed"), SEED_PROFILE)
    for g in (44, 45):
        expect(finding(rows, "group", "group %d" % g), "OK", "viable")
    for f in range(4):
        expect(finding(rows, "function", "0000:04:00.%d" % f), "OK", "driver vfio-pci")
    # Node 0 has 1.4 GiB free; the VM asks for 64 GiB.
    expect(finding(rows, "node", "node 0"), "WARN", "1417 MiB free", "65536 MiB",
           "drop_caches")
    expect(finding(rows, "plan", "plan"), "OK", "8 functions, 14 vCPUs, NUMA node 0")
    # The planner's own memory warning is not said twice.
    assert not [r for r in doc["checks"] if r["id"] == "plan" and r["status"] == "WARN"]


def test_group_not_viable():
    """The RX 580 behind the chipset shares its group with USB, SATA and a NIC."""
    rows, _ = check(fixture("desktop-chipset"), "--device", "03:00", want_rc=1)
    expect(finding(rows, "group", "group 14"), "FAIL", "whole IOMMU groups",
           "0000:01:00.0", "xhci_hcd", "0000:04:00.0", "r8169", '"01:00.1"', "passthrough")


def test_boot_framebuffer():
    rows, _ = check(fixture("desktop-chipset"), "--device", "07:00")
    expect(finding(rows, "framebuffer", "0000:07:00.0"), "WARN", "efifb owns", "BAR 1",
           'GRUB_CMDLINE_LINUX="iommu=pt video=efifb:off"', "update-grub")
    with Host("desktop-chipset") as h:
        h.edit("proc/iomem", ": efifb", ": simpledrm")
        rows, _ = check(h.root, "--device", "07:00.0")
        expect(finding(rows, "framebuffer", "0000:07:00.0"), "WARN", "simpledrm owns",
               "initcall_blacklist=sysfb_init")
        # Without root, /proc/iomem shows zeros: nothing can be said, nothing is made up.
        h.write("proc/iomem", "".join(
            "%s-%s : %s" % ("0" * 8, "0" * 8, line.split(" : ", 1)[1]) + "\n"
            for line in h.read("proc/iomem").splitlines()))
        rows, _ = check(h.root, "--device", "07:00.0")
        expect(finding(rows, "function", "0000:07:00.0"), "OK")


def test_holders():
    """Xorg holding the NVIDIA GPU open: unbinding nvidia would hang."""
    with Host("desktop-chipset") as h:
        h.write("proc/4242/comm", "Xorg\n")
        h.link("proc/4242/fd/12", "/dev/nvidia0")
        # And a DRM client of the RX 580 through its by-path node.
        h.write("dev/dri/card1", "")
        h.link("dev/dri/by-path/pci-0000:03:00.0-card", "../card1")
        h.write("proc/4343/comm", "gnome-shell\n")
        h.link("proc/4343/fd/20", "/dev/dri/card1")
        rows, _ = check(h.root, "--device", "07:00", want_rc=1)
        expect(finding(rows, "holders", "0000:07:00.0"), "FAIL", "4242 (Xorg)",
               "nvidia driver would hang", "systemctl stop display-manager")
        rows, _ = check(h.root, "--device", "03:00.0", want_rc=1)
        expect(finding(rows, "holders", "0000:03:00.0"), "FAIL", "4343 (gnome-shell)")


def test_reset_and_d3cold():
    # The seed's chipset xHCI has an empty reset_method.
    rows, _ = check(fixture("seed"), "--device", "00:14.0")
    expect(finding(rows, "reset", "0000:00:14.0"), "WARN", "no reset method", "reset bug",
           "power-cycle", "reset_method is empty")
    # Since Linux 5.15 a device the kernel cannot reset has no reset_method file at all
    # (the seed's ASPEED VGA), while the others have one.
    rows, _ = check(fixture("seed"), "--device", "0b:00.0")
    expect(finding(rows, "reset", "0000:0b:00.0"), "WARN", "gives it no reset_method")
    # A function without a reset of its own goes with its slot's (VFIO's hot reset).
    with Host("desktop-chipset") as h:
        h.remove("sys/bus/pci/devices/0000:07:00.1/reset_method")
        rows, _ = check(h.root, "--device", "07:00")
        expect(finding(rows, "function", "0000:07:00.1"), "OK",
               "reset with its slot (0000:07:00.0: bus)")
        rows, _ = check(h.root, "--device", "07:00.1")
        expect(finding(rows, "reset", "0000:07:00.1"), "WARN", "gives it no reset_method")
    with Host("desktop-chipset") as h:
        h.edit("sys/bus/pci/devices/0000:07:00.1/power_state", "D0", "D3cold")
        rows, _ = check(h.root, "--device", "07:00")
        expect(finding(rows, "power", "0000:07:00.1"), "WARN", "D3cold",
               "echo 0 > /sys/bus/pci/devices/0000:07:00.1/d3cold_allowed")


def test_node_too_small():
    with tempfile.TemporaryDirectory() as tmp:
        cpus = profile(tmp, "cpus", '{"name": "t", "memory": "1G", "vcpus": 20, '
                                    '"passthrough": ["07:00"]}')
        rows, _ = check(fixture("desktop-chipset"), cpus, want_rc=1)
        expect(finding(rows, "node", "node 0"), "FAIL", "16 online CPUs", "20 vCPUs",
               '"vcpus"')
        mem = profile(tmp, "mem", '{"name": "t", "memory": "32G", "vcpus": 4, '
                                  '"passthrough": ["07:00"]}')
        rows, doc = check(fixture("desktop-chipset"), mem, want_rc=1)
        expect(finding(rows, "node", "node 0"), "FAIL", "15935 MiB of memory in all",
               "32768 MiB")


def test_plan_failure_is_reported():
    """A reason only the planner knows: the 1660 Ti is the boot VGA, held by nvidia."""
    with tempfile.TemporaryDirectory() as tmp:
        prof = profile(tmp, "bootvga", '{"name": "t", "memory": "4G", "vcpus": 4, '
                                       '"passthrough": ["07:00"]}')
        rows, _ = check(fixture("desktop-chipset"), prof, want_rc=1)
        expect(finding(rows, "plan", "plan"), "FAIL", "boot VGA", "allow_boot_vga")


def test_text_and_usage():
    p = run("check", sysroot=fixture("iommu-off"))
    assert p.returncode == 1, p.stderr
    out = p.stdout
    assert out.startswith("Host\n"), out
    assert "  FAIL  IOMMU " in out and "        fix: in /etc/default/grub, line 10" in out, out
    # Commands and file lines are never broken across lines.
    assert '\n               GRUB_CMDLINE_LINUX="intel_iommu=on"\n' in out, out
    assert max(len(l) for l in out.splitlines() if not l.startswith("               ")) <= 80
    assert "1 FAIL" in out.splitlines()[-1], out
    p = run("check", "--device", "07:00", sysroot=fixture("desktop-chipset"))
    assert "\nDevices --device 07:00\n" in p.stdout, p.stdout
    for args, rc, said in [(["check", SEED_PROFILE, "--device", "04:00"], 2, "not both"),
                           (["check", "--device"], 2, "needs a value"),
                           (["check", "--device", "77:00"], 1, "no such device"),
                           (["check", "a.json", "b.json"], 2, "one profile")]:
        p = run(*args, sysroot=fixture("seed"))
        assert p.returncode == rc and said in p.stderr, (args, p.returncode, p.stderr)
    p = run("check", "--help")
    assert p.returncode == 0 and "docs/check-json.md" in p.stdout


def test_this_machine():
    """This machine has no IOMMU: FAIL, with the kernel command line fix for its CPU."""
    p = run("check", "--json")
    doc = json.loads(p.stdout)
    rows = {(r["id"], r["subject"]): r for r in doc["checks"]}
    iommu = rows[("iommu", "host")]
    if os.listdir("/sys/kernel/iommu_groups"):
        expect(iommu, "OK")
        return
    expect(iommu, "FAIL", "no IOMMU groups", "reboot")
    assert "intel_iommu=on" in iommu["fix"] or "amd_iommu=on" in iommu["fix"], iommu
    assert p.returncode == 1
    # /dev/kvm is asked for real here.
    if stat.S_ISCHR(os.stat("/dev/kvm").st_mode) if os.path.exists("/dev/kvm") else False:
        expect(rows[("kvm", "host")], "OK", "API version 12")


if __name__ == "__main__":
    sys.exit(main([test_ready_hosts_pass, test_iommu_off_debian,
                   test_iommu_off_centos_and_firmware, test_cpu_virtualization_off,
                   test_interrupt_remapping, test_vfio_modules_missing, test_kvm_missing,
                   test_qemu, test_ovmf_missing, test_hugepages, test_node_rows_of_a_vm_across_nodes,
                   test_memlock,
                   test_seed_profile, test_group_not_viable, test_boot_framebuffer,
                   test_holders, test_reset_and_d3cold, test_node_too_small,
                   test_plan_failure_is_reported, test_text_and_usage, test_this_machine]))
