"""Reading by need: `plan` and `check PROFILE` read the devices the profile names and
their IOMMU groups, nothing else of the PCI tree, and of the CPUs only what placement
uses (every other device, and every CPU's package and core ids and the thread list of
every CPU but a core's first, are corrupted here, and their output is unchanged), while
`list` reads everything; and the generator of large hosts (mkhost.py scale), read by
lspci and by qpass alike."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SOURCE, fixture, list_json, main, run, scratch  # noqa: E402
from test_fidelity import compare  # noqa: E402

GARBAGE = "gar\xffbage\n"
PROFILE = "profiles/examples/win10-gpu-01.json"   # 04:00 and 05:00, groups 44 and 45
TOUCHED = re.compile(r"0000:0[45]:00\.[0-7]$")


def corrupt_others(root):
    """Writes garbage into every file of every PCI device but the VM's."""
    base = os.path.join(root, "sys/bus/pci/devices")
    n = 0
    for addr in os.listdir(base):
        if TOUCHED.match(addr):
            continue
        d = os.path.realpath(os.path.join(base, addr))
        for f in ("vendor", "class", "config", "local_cpulist", "numa_node"):
            with open(os.path.join(d, f), "w", errors="surrogateescape") as out:
                out.write(GARBAGE)
        n += 1
    return n


def corrupt_cpu_ids(root):
    """Writes garbage into every CPU's package and core ids, and into the thread list
    of every CPU that is not the first thread of its core. Returns how many CPUs have
    their thread list left to read."""
    base = os.path.join(root, "sys/devices/system/cpu")
    firsts = 0
    for name in os.listdir(base):
        topo = os.path.join(base, name, "topology")
        if not re.fullmatch(r"cpu\d+", name) or not os.path.isdir(topo):
            continue
        with open(os.path.join(topo, "thread_siblings_list")) as f:
            first = int(re.split(r"[,-]", f.read().strip())[0])
        files = ["physical_package_id", "core_id"]
        if first == int(name[3:]):
            firsts += 1
        else:
            files.append("thread_siblings_list")
        for f in files:
            with open(os.path.join(topo, f), "w", errors="surrogateescape") as out:
                out.write(GARBAGE)
    return firsts


def test_plan_and_check_read_what_the_vm_touches():
    pristine = fixture("seed")
    want_plan = run("plan", PROFILE, "--json", sysroot=pristine, cwd=SOURCE)
    want_check = run("check", PROFILE, "--json", sysroot=pristine, cwd=SOURCE)
    assert want_plan.returncode == 0, want_plan.stderr
    with scratch() as tmp:
        root = os.path.join(tmp, "seed")
        shutil.copytree(pristine, root, symlinks=True)
        n = corrupt_others(root)
        assert n > 50, n
        cores = corrupt_cpu_ids(root)
        assert cores == 28, cores  # 56 CPUs, two threads a core
        p = run("plan", PROFILE, "--json", sysroot=root, cwd=SOURCE)
        assert (p.returncode, p.stdout) == (0, want_plan.stdout), p.stderr
        c = run("check", PROFILE, "--json", sysroot=root, cwd=SOURCE)
        # The sysroot is in no check row; the exit status and every row are the same.
        assert (c.returncode, c.stdout) == (want_check.returncode, want_check.stdout), \
            c.stderr
        # list reads every device: the first corrupted one is named.
        ls = run("list", "--all", "--json", sysroot=root)
        assert ls.returncode == 1 and "sys/bus/pci/devices/" in ls.stderr, ls.stderr
    print("# %d devices and the ids of 56 CPUs corrupted; plan and check unchanged, list "
          "refuses" % n)


def test_group_members_are_read():
    """A GPU whose IOMMU group holds devices on host drivers: check names them, with
    their names, though it was asked about the GPU alone."""
    import json
    p = run("check", "--device", "03:00", "--json", sysroot=fixture("desktop-chipset"))
    assert p.returncode == 1, p.stdout
    group = [r for r in json.loads(p.stdout)["checks"] if r["subject"] == "group 14"][0]
    assert group["status"] == "FAIL", group
    for member in ("0000:01:00.0", "0000:01:00.1", "0000:04:00.0",
                   "RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller"):
        assert member in group["detail"], (member, group)


def test_scale_host():
    """mkhost.py scale: lspci reads it as qpass does, and a four-GPU VM plans on it."""
    with scratch() as tmp:
        root = os.path.join(tmp, "scale")
        subprocess.run([sys.executable, os.path.join(SOURCE, "tests/fixtures/mkhost.py"),
                        "scale", root, "--gpus", "8", "--functions", "8", "--others", "60",
                        "--nodes", "2", "--cpus", "8"], check=True)
        n = compare(root)
        # 8 GPUs of 8 functions and their root ports, 60 others and theirs, 2 host bridges.
        assert n == 1 + 8 * 9 + 60 + 8 + 1, n
        doc = list_json(root)
        assert len(doc["gpus"]) == 8 and all(len(g["functions"]) == 8 for g in doc["gpus"])
        prof = os.path.join(tmp, "four.json")
        with open(prof, "w") as f:
            f.write('{"name": "four", "memory": "1G", "vcpus": 2, "accel": "tcg",'
                    ' "passthrough": ["01:00", "02:00", "03:00", "04:00"]}')
        p = run("plan", prof, "--json", sysroot=root)
        assert p.returncode == 0, p.stderr
        import json
        plan = json.loads(p.stdout)
        assert len(plan["devices"]) == 32 and plan["numa_node"] == 0, plan
        slots = {d["guest"].rsplit(".", 1)[0] for d in plan["devices"]}
        assert len(slots) == 4, slots


if __name__ == "__main__":
    sys.exit(main([test_plan_and_check_read_what_the_vm_touches, test_group_members_are_read,
                   test_scale_host]))
