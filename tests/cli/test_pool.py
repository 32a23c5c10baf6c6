"""Several VMs on one host, on the seed's host fixture (8 GeForce RTX 2080 Ti, 4 on each
of its 2 nodes) under the fake kernel, QEMU a stub: GPUs picked by need, cores that no
two VMs share, the ledger of leases under a host-wide lock (20 `up` at once), a lease
left by a qpass killed with -9 reclaimed, and one whose QEMU runs on kept."""

import json
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import main, scratch  # noqa: E402
from test_vfio import STUB, Host, VmUp, hold_devices  # noqa: E402

VM = """{ "name": "%s", "memory": "1G", "vcpus": %d, "machine": "pc", "video": "none",
  "usb": {"controller": "none"}, "gpus": %s, "qemu": "%s", "shutdown_timeout": 5 }"""

SEED_GPUS = {0: ["0000:04:00", "0000:05:00", "0000:08:00", "0000:09:00"],
             1: ["0000:85:00", "0000:86:00", "0000:89:00", "0000:8a:00"]}


def core(cpu):
    """The seed's host: 56 CPUs, CPU n and n + 28 are one core's two threads."""
    return cpu % 28


class Vm(VmUp):
    """`qpass-fk up` of a VM asking for `gpus`."""

    def __init__(self, h, name, gpus, vcpus=2):
        super().__init__(h, name, text=VM % (name, vcpus, json.dumps(gpus),
                                             os.path.abspath(STUB)))

    def running(self, timeout=60):
        return super().running(timeout, may_fail=True)

    def gpus(self):
        """The GPUs (function 0 of each slot) QEMU was given."""
        with open(self.argv_file) as f:
            argv = json.load(f)
        hosts = [json.loads(a)["host"] for a in argv if a.startswith('{"driver":"vfio-pci"')]
        return sorted({h[:-2] for h in hosts})

    def lease(self):
        with open(os.path.join(self.h.rundir, "leases", self.name + ".json")) as f:
            return json.load(f)

    def stop(self):
        p = self.h.fk("down", self.name, "--force")
        assert p.returncode == 0, p.stderr
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err



def cores_of(lease):
    return {core(c) for c in lease["vcpu_cpus"] + lease["emulator_cpus"]}


def test_two_vms_four_gpus_each_then_a_third_refused():
    with scratch() as tmp:
        h = Host(tmp)
        a = Vm(h, "a", {"count": 4, "vendor": "nvidia", "model": "2080 Ti"}, vcpus=4)
        assert a.running()
        b = Vm(h, "b", {"count": 4, "vendor": "10de", "node": "any"}, vcpus=4)
        assert b.running()
        # The first takes node 0 (the nodes tie on free cores: the lowest wins), the
        # second node 1: every GPU once, each VM's on one node.
        assert a.gpus() == SEED_GPUS[0], a.gpus()
        assert b.gpus() == SEED_GPUS[1], b.gpus()
        for vm in (a, b):
            for slot in vm.gpus():
                for f in range(4):
                    assert h.driver("%s.%d" % (slot, f)) == "vfio-pci"
        la, lb = a.lease(), b.lease()
        assert (la["node"], lb["node"]) == (0, 1)
        assert not cores_of(la) & cores_of(lb)
        # A third: nothing is free, and the message says who has what.
        c = Vm(h, "c", {"count": 1})
        assert c.running() is None
        rc, err = c.finish()
        assert rc == 1 and "no NUMA node has 1 free GPU;" in err, err
        assert "0000:04:00  node 0" in err and "the VM a has it" in err, err
        assert "the VM b has it" in err, err
        # status shows both, with what they hold.
        p = h.fk("status", "--json")
        st = {s["name"]: s for s in json.loads(p.stdout)}
        assert sorted(st) == ["a", "b"], p.stdout
        assert st["a"]["devices"][0] == "0000:04:00.0" and st["a"]["memory_mib"] == 1024
        text = h.fk("status").stdout
        assert re.search(r"emulator CPUs [0-9,]+; memory 1024 MiB; devices 0000:04:00.0-3 0000:05",
                         text), text
        for vm in (a, b):
            assert "the devices are back on their host drivers" in vm.stop()
        h.assert_restored("two VMs up, then down")
        assert os.listdir(os.path.join(h.rundir, "leases")) == [".lock"]


def test_two_vms_on_one_node_share_no_core():
    with scratch() as tmp:
        h = Host(tmp)
        a = Vm(h, "a", {"count": 1, "node": 0}, vcpus=4)
        assert a.running()
        b = Vm(h, "b", {"count": 1, "node": 0}, vcpus=4)
        assert b.running()
        la, lb = a.lease(), b.lease()
        assert a.gpus() == ["0000:04:00"] and b.gpus() == ["0000:05:00"]
        # a: vCPUs on cores 0-3, QEMU's other threads on core 4; b after them.
        assert la["vcpu_cpus"] == [0, 1, 2, 3] and la["emulator_cpus"] == [4, 32], la
        assert lb["vcpu_cpus"] == [5, 6, 7, 8] and lb["emulator_cpus"] == [9, 37], lb
        assert not cores_of(la) & cores_of(lb)
        # Explicit pins on a's core are refused, naming a.
        p = h.fk("plan", write_profile(h, "pinned", ', "vcpu_pins": [1, 20]'))
        assert p.returncode == 1, p.stdout
        assert "vcpu_pins: CPU 1 is on a core of the VM a" in p.stderr, p.stderr
        # plan predicts, beside them: the next VM of node 0 would get the third GPU,
        # and the cores after theirs.
        c = os.path.join(os.path.dirname(h.root), "c.json")
        with open(c, "w") as f:
            f.write(VM % ("c", 2, json.dumps({"count": 1, "node": 0}), "qemu"))
        p = h.fk("plan", "--json", c)
        plan = json.loads(p.stdout)
        assert [d["host"] for d in plan["devices"]][0] == "0000:08:00.0", p.stdout
        assert plan["gpus_picked"] and all(d["picked"] for d in plan["devices"])
        assert plan["vcpu_pins"] == [10, 11] and plan["emulator_cpus"] == [12, 40], p.stdout
        assert any("picks again when it starts" in n for n in plan["notes"]), plan["notes"]
        for vm in (a, b):
            vm.stop()
        h.assert_restored("two VMs of one node")


def write_profile(h, name, extra):
    path = os.path.join(os.path.dirname(h.root), name + ".json")
    with open(path, "w") as f:
        f.write('{ "name": "%s", "memory": "1G", "vcpus": 2, "passthrough": ["85:00"]%s }'
                % (name, extra))
    return path


def test_twenty_at_once():
    """20 one-GPU VMs started at once: 8 run, on 8 different GPUs and cores; the other
    12 are refused with the clear error."""
    with scratch() as tmp:
        h = Host(tmp)
        vms = [Vm(h, "vm%02d" % i, {"count": 1}, vcpus=1) for i in range(20)]
        up = [vm for vm in vms if vm.running()]
        assert len(up) == 8, [vm.name for vm in up]
        gpus = [g for vm in up for g in vm.gpus()]
        assert sorted(gpus) == sorted(SEED_GPUS[0] + SEED_GPUS[1]), gpus
        cores = [(vm.lease()["node"], c) for vm in up for c in cores_of(vm.lease())]
        assert len(cores) == len(set(cores)), cores
        for vm in vms:
            if vm not in up:
                rc, err = vm.finish()
                assert rc == 1 and "no NUMA node has 1 free GPU;" in err, err
        for vm in up:
            vm.stop()
        h.assert_restored("20 at once")


def test_killed_holder_is_reclaimed():
    """kill -9 of a qpass: its QEMU dies with it; the next `up` gives the dead VM's
    devices back and takes them."""
    with scratch() as tmp:
        h = Host(tmp)
        a = Vm(h, "a", {"count": 4, "node": 0})
        assert a.running()
        a.proc.kill()
        a.proc.wait()
        assert h.driver("0000:08:00.0") == "vfio-pci"  # left bound
        b = Vm(h, "b", {"count": 4, "node": 0})
        assert b.running()
        assert b.gpus() == SEED_GPUS[0]
        err = b.stop()
        assert "restored the devices of a (its qpass and QEMU are gone)" in err, err
        h.assert_restored("a killed, b reclaims")


def test_holder_whose_qemu_runs_is_kept():
    """A lease whose qpass is gone but whose QEMU runs (here: a process standing in for
    it) is not reclaimed: its GPUs stay its own, and the message names the pid."""
    with scratch() as tmp:
        h = Host(tmp)
        qemu = subprocess.Popen(["sleep", "600"])
        try:
            os.makedirs(os.path.join(h.rundir, "leases"))
            with open("/proc/%d/stat" % qemu.pid) as f:
                start = int(f.read().rsplit(")", 1)[1].split()[19])
            lease = {"name": "ghost", "qpass": {"pid": 999999, "start": 1},
                     "qemu": {"pid": qemu.pid, "start": start}, "running": True,
                     "devices": ["0000:04:00.%d" % f for f in range(4)],
                     "vcpu_cpus": [0], "emulator_cpus": [28], "share_cpus": False,
                     "node": 0, "memory_mib": 1024}
            with open(os.path.join(h.rundir, "leases", "ghost.json"), "w") as f:
                json.dump(lease, f)
            b = Vm(h, "b", {"count": 4, "node": 0})
            assert b.running() is None
            rc, err = b.finish()
            assert rc == 1, err
            assert "the VM ghost has it (its qpass is gone, its QEMU pid %d runs on)" \
                % qemu.pid in err, err
            p = h.fk("status", "--json")
            assert [s["state"] for s in json.loads(p.stdout)] == ["orphan"], p.stdout
        finally:
            qemu.send_signal(signal.SIGKILL)
            qemu.wait()
        # Now it is gone: the next `up` reclaims it (no devices of its were bound).
        b = Vm(h, "b", {"count": 4, "node": 0})
        assert b.running()
        b.stop()
        assert not os.path.exists(os.path.join(h.rundir, "leases", "ghost.json"))


def test_gpu_open_by_a_host_process_is_skipped():
    """Xorg has 08:00's DRM node open (the fixture's /proc, as test_vfio's holders test
    builds it): four GPUs of node 0 are not free, three are, and plan says who has it."""
    with scratch() as tmp:
        h = Host(tmp)
        hold_devices(h.root, (("4242", "Xorg", "/dev/dri/card1"),))
        path = os.path.join(tmp, "three.json")
        with open(path, "w") as f:
            f.write(VM % ("three", 1, json.dumps({"count": 3, "node": 0}), "qemu"))
        p = h.fk("plan", "--json", path)
        devs = sorted({d["host"][:-2] for d in json.loads(p.stdout)["devices"]})
        assert devs == ["0000:04:00", "0000:05:00", "0000:09:00"], p.stdout
        with open(path, "w") as f:
            f.write(VM % ("four", 1, json.dumps({"count": 4, "node": 0}), "qemu"))
        p = h.fk("plan", path)
        assert p.returncode == 1 and "0000:08:00  node 0  TU102 [GeForce RTX 2080 Ti]: " \
            "open by 4242 (Xorg)" in p.stderr, p.stderr


def write_irqs(root, irqs):
    """proc/interrupts as the kernel writes it, and each vector's smp_affinity_list."""
    lines = ["            CPU0       CPU1"]
    for irq, name in irqs:
        lines.append("%4d:          0          0  IR-PCI-MSIX-0000:04:00.0    0-edge      %s"
                     % (irq, name))
        d = os.path.join(root, "proc/irq/%d" % irq)
        os.makedirs(d, exist_ok=True)
        if not os.path.exists(os.path.join(d, "smp_affinity_list")):
            with open(os.path.join(d, "smp_affinity_list"), "w") as f:
                f.write("0-55\n")
    with open(os.path.join(root, "proc/interrupts"), "w") as f:
        f.write("\n".join(lines) + "\n")


def affinity(root, irq):
    with open(os.path.join(root, "proc/irq/%d/smp_affinity_list" % irq)) as f:
        return f.read().strip()


def test_interrupts_follow_the_vm_and_pins_respect_others():
    """The passed devices' vfio vectors go to the VM's emulator CPUs once it runs, and
    a vector the guest enables later at the next status; `qpass pin` onto another VM's
    core is refused, naming it."""
    with scratch() as tmp:
        h = Host(tmp)
        os.makedirs(os.path.join(h.root, "proc"), exist_ok=True)
        write_irqs(h.root, [(120, "vfio-msix[0](0000:04:00.0)"),
                            (121, "vfio-msix[1](0000:04:00.0)"),
                            (130, "vfio-msix[0](0000:85:00.0)"),  # not the VM's
                            (140, "nvme0q1")])
        a = Vm(h, "a", {"count": 1, "node": 0}, vcpus=2)
        assert a.running()
        lease = a.lease()
        emu = ",".join(str(c) for c in lease["emulator_cpus"])  # "2,30"
        assert (affinity(h.root, 120), affinity(h.root, 121)) == (emu, emu)
        assert affinity(h.root, 130) == "0-55"
        # The guest enables another vector: status sends it too, and shows all three.
        write_irqs(h.root, [(120, "vfio-msix[0](0000:04:00.0)"),
                            (121, "vfio-msix[1](0000:04:00.0)"),
                            (122, "vfio-msix[2](0000:04:00.0)")])
        p = h.fk("status", "a", "--json")
        pl = json.loads(p.stdout)["placement"]
        assert [i["irq"] for i in pl["interrupts"]] == [120, 121, 122], pl["interrupts"]
        assert affinity(h.root, 122) == emu
        assert all(i["affinity"] == lease["emulator_cpus"] for i in pl["interrupts"]), pl
        # Pinning beside another VM: b may not take a's core, may take a free one.
        b = Vm(h, "b", {"count": 1, "node": 0}, vcpus=2)
        assert b.running()
        p = h.fk("pin", "b", "0", "28")  # 28: a thread of a's core 0
        assert p.returncode == 1 and "CPU 28 is on a core of the VM a" in p.stderr, p.stderr
        p = h.fk("pin", "b", "0", "13")
        assert p.returncode == 0, p.stderr
        assert 13 in b.lease()["vcpu_cpus"]
        # And the next VM's plan sees it: core 13 is b's now.
        c = os.path.join(os.path.dirname(h.root), "c.json")
        with open(c, "w") as f:
            f.write(VM % ("c", 2, json.dumps({"count": 1, "node": 0}), "qemu"))
        plan = json.loads(h.fk("plan", "--json", c).stdout)
        assert 13 not in plan["vcpu_pins"] + plan["emulator_cpus"], plan
        for vm in (a, b):
            vm.stop()
        h.assert_restored("interrupts and pins")


def test_all_gpus_in_one_vm_across_nodes():
    """"numa": "span": the 8 GPUs of both nodes in one VM, a guest node per host node
    (its vCPUs on that node's cores, its half of the RAM bound there), each GPU behind
    the expander of its node; nothing is left for another VM."""
    with scratch() as tmp:
        h = Host(tmp)
        os.makedirs(os.path.join(h.root, "proc"), exist_ok=True)
        write_irqs(h.root, [(120, "vfio-msix[0](0000:04:00.0)"),
                            (130, "vfio-msix[0](0000:85:00.0)")])
        text = VM % ("all8", 2, json.dumps({"count": 8}), os.path.abspath(STUB))
        vm = VmUp(h, "all8", text=text.replace('"machine": "pc",',
                                               '"machine": "pc", "numa": "span",'))
        vm.running()
        with open(vm.argv_file) as f:
            argv = json.load(f)
        hosts = sorted({json.loads(a)["host"][:-2] for a in argv
                        if a.startswith('{"driver":"vfio-pci"')})
        assert hosts == SEED_GPUS[0] + SEED_GPUS[1], hosts
        pxb = [json.loads(a) for a in argv if a.startswith('{"driver":"pxb"')]
        assert [(x["id"], x["numa_node"]) for x in pxb] == [("pxb.node0", 0),
                                                            ("pxb.node1", 1)], pxb
        for a in argv:
            if a.startswith('{"driver":"vfio-pci"'):
                d = json.loads(a)
                node = 0 if d["host"][:-2] in SEED_GPUS[0] else 1
                assert d["bus"] == "pxb.node%d" % node, d
        numa = [argv[i + 1] for i, a in enumerate(argv) if a == "-numa"]
        assert numa[:2] == ["node,nodeid=0,cpus=0,memdev=ram-node0",
                            "node,nodeid=1,cpus=1,memdev=ram-node1"], numa
        backends = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-object"]
        assert [(b["id"], b["host-nodes"], b["size"]) for b in backends] == [
            ("ram-node0", [0], 512 << 20), ("ram-node1", [1], 512 << 20)], backends
        with open(os.path.join(h.rundir, "leases", "all8.json")) as f:
            lease = json.load(f)
        assert [c < 14 or 28 <= c < 42 for c in lease["vcpu_cpus"]] == [True, False], lease
        assert lease["memory_nodes"] == [0, 1] and lease["memory_mib"] == 1024, lease
        # Each GPU's interrupts on its own node: node 0's emulator CPUs, node 1's vCPU.
        emu = ",".join(str(c) for c in lease["emulator_cpus"])
        assert affinity(h.root, 120) == emu, affinity(h.root, 120)
        assert affinity(h.root, 130) == str(lease["vcpu_cpus"][1]), affinity(h.root, 130)
        text = h.fk("status", "all8").stdout
        assert re.search(r"^all8 +running +\d+ +\d+ +\S+ +0,1 ", text, re.M), text
        p = h.fk("status", "all8", "--json")
        pl = json.loads(p.stdout)["placement"]
        assert pl["as_planned"], pl["drift"]
        assert [i["wanted"] for i in pl["interrupts"]] == [lease["emulator_cpus"],
                                                           [lease["vcpu_cpus"][1]]], pl
        other = VmUp(h, "other", text=VM % ("other", 1, json.dumps({"count": 1}),
                                            os.path.abspath(STUB)))
        _, err = other.proc.communicate(timeout=60)
        assert other.proc.returncode == 1 and "all8" in err, err
        p = h.fk("down", "all8", "--force")
        assert p.returncode == 0, p.stderr
        vm.proc.communicate(timeout=60)
        assert vm.proc.returncode == 0


def test_bad_requests():
    with scratch() as tmp:
        h = Host(tmp)
        cases = [
            ({"count": 0}, "gpus.count"),
            ({"count": 10}, "10 GPUs are asked for, and this host has 9"),
            ({"count": 5}, "no NUMA node has 5 free GPUs"),
            ({"count": 1, "vendor": "matrox"}, 'unknown vendor "matrox"'),
            ({"count": 1, "model": "3090"}, 'no GPU of model "3090" on this host'),
            ({"count": 1, "node": 7}, "gpus.node: this host has no node 7 (its nodes: 0, 1)"),
            ({"vendor": "amd"}, "the key 'count' is required"),
        ]
        for gpus, want in cases:
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                f.write(VM % ("bad", 1, json.dumps(gpus), "qemu"))
            p = h.fk("plan", path)
            assert p.returncode == 1 and want in p.stderr, (gpus, p.stderr)


if __name__ == "__main__":
    sys.exit(main([test_two_vms_four_gpus_each_then_a_third_refused,
                   test_two_vms_on_one_node_share_no_core, test_twenty_at_once,
                   test_killed_holder_is_reclaimed, test_holder_whose_qemu_runs_is_kept,
                   test_gpu_open_by_a_host_process_is_skipped,
                   test_interrupts_follow_the_vm_and_pins_respect_others,
                   test_all_gpus_in_one_vm_across_nodes, test_bad_requests]))
