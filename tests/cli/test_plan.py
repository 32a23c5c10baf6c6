"""`qpass plan` on the fixture hosts: the example profiles' plans against committed
golden files (as Proxmox's cfg2cmd tests do), and every failing case's message."""

import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SOURCE, check_golden, fixture, main, run  # noqa: E402

# Each example profile on the host it was written for.
EXAMPLES = [("win10-gpu-01", "seed"), ("win10-gpu-02", "seed"),
            ("desktop-ovmf", "desktop-peg"), ("bench-all8", "seed")]


def plan(profile, host, *extra):
    # From the source tree, so that the profile's path in the output is stable.
    return run("plan", profile, *extra, sysroot=fixture(host), cwd=SOURCE)


def test_golden_plans():
    for name, host in EXAMPLES:
        profile = "profiles/examples/%s.json" % name
        p = plan(profile, host)
        assert p.returncode == 0, p.stderr
        check_golden("plan/%s.txt" % name, p.stdout)
        p = plan(profile, host, "--json")
        assert p.returncode == 0, p.stderr
        check_golden("plan/%s.json" % name, p.stdout)
        argv = json.loads(p.stdout)["argv"]
        check_golden("plan/%s.args" % name, "\n".join(argv) + "\n")


def test_seed_plan_json():
    p = plan("profiles/examples/win10-gpu-01.json", "seed", "--json")
    doc = json.loads(p.stdout)
    assert doc["numa_node"] == 0 and doc["memory_nodes"] == [0]
    assert doc["vcpu_pins"] == list(range(14))
    assert doc["emulator_cpus"] == list(range(28, 42))
    devs = [(d["host"], d["guest"], d["multifunction"]) for d in doc["devices"]]
    assert devs == [("0000:%s:00.%d" % (b, f), "pci.0:%s.%d" % (s, f), f == 0)
                    for b, s in (("04", "06"), ("05", "07")) for f in range(4)], devs
    assert doc["devices"][0]["iommu_group"] == 44
    assert doc["fds"] == {"qmp": 3, "taps": [{"fd": 4, "bridge": "br0"}]}
    p = plan("profiles/examples/win10-gpu-02.json", "seed", "--json")
    doc = json.loads(p.stdout)
    assert doc["numa_node"] == 1 and doc["vcpu_pins"] == list(range(14, 28))
    assert [d["guest"] for d in doc["devices"] if d["multifunction"]] == \
        ["pci.0:06.0", "pci.0:07.0", "pci.0:08.0", "pci.0:09.0"]


def test_text_is_pastable():
    """The argv shown for people is one option a line, quoted for a POSIX shell."""
    p = plan("profiles/examples/win10-gpu-01.json", "seed")
    text = p.stdout.split("QEMU command line\n", 1)[1]
    import shlex
    words = shlex.split(text.replace("\\\n", " "))
    doc = json.loads(plan("profiles/examples/win10-gpu-01.json", "seed", "--json").stdout)
    assert words == doc["argv"]


def failing(host, profile_text, *needles):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(profile_text)
    try:
        p = run("plan", f.name, sysroot=fixture(host))
    finally:
        os.unlink(f.name)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", p.stdout
    assert p.stderr.startswith("qpass: error: "), p.stderr
    for n in needles:
        assert n in p.stderr, "%r lacks %r" % (p.stderr, n)
    return p.stderr


BASE = '{"name": "t", "memory": "4G", "vcpus": %d, %s}'


def test_failures_say_what_and_how():
    failing("desktop-chipset", BASE % (2, '"passthrough": ["03:00"]'),
            "VFIO takes whole IOMMU groups", "(driver xhci_hcd)", "fix: pass them through")
    failing("desktop-chipset", BASE % (2, '"passthrough": ["07:00"]'),
            "boot VGA", "fix: ", "allow_boot_vga")
    failing("seed", BASE % (2, '"passthrough": ["04:00", "85:00"]'),
            "NUMA nodes 0 and 1", "fix: ", '"numa": 0')
    failing("seed", BASE % (16, '"passthrough": ["04:00"]'),
            "16 vCPUs at 1 thread per core need 16 cores", "fix: lower \"vcpus\"")
    failing("iommu-off", BASE % (2, '"passthrough": ["65:00"]'),
            "the IOMMU is off", "intel_iommu=on")
    err = failing("seed", '{"name": "t",\n "memory": "4G", "vcpus": 2,\n "cpu": {"modle": "x"}}',
                  ":3:10: cpu.modle: unknown key (did you mean 'model'?)")
    assert re.search(r"^qpass: error: /\S+\.json:3:10:", err), err
    failing("seed", '{"name": "t", "memory": "4G" "vcpus": 2}', ":1:30: not valid JSON")
    disks = ", ".join('{"file": "/d%d", "format": "raw"}' % i for i in range(40))
    failing("seed", BASE % (2, '"machine": "pc", "disks": [%s]' % disks),
            ".json: the guest's root bus has no free slot left", "fix: pass fewer devices")


def test_memory_on_the_node():
    """A node that cannot hold the guest RAM, even after reclaiming its caches, is refused
    with what it has; preallocation runs on the VM's own CPUs, in a thread-context."""
    big = '{"name": "t", "memory": "100G", "vcpus": 2, "passthrough": ["85:00"]}'
    failing("seed", big, "NUMA node 1 has 68 MiB free and 90065 MiB the kernel can reclaim", "the VM asks for 102400 MiB",
            'fix: lower "memory", stop what uses node 1')
    failing("seed", BASE % (2, '"hugepages": "2M", "prealloc": false'),
            "prealloc: hugepages are always preallocated")
    failing("seed", BASE % (2, '"prealloc_threads": 4'),
            'prealloc_threads: only with "prealloc": true')
    failing("seed", BASE % (2, '"prealloc": true, "prealloc_threads": 0'), "prealloc_threads")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write('{"name": "t", "memory": "64G", "vcpus": 4, "passthrough": ["85:00"], '
                '"prealloc": true}')
    try:
        p = run("plan", f.name, "--json", sysroot=fixture("seed"))
    finally:
        os.unlink(f.name)
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    cpus = sorted(plan["vcpu_pins"] + plan["emulator_cpus"])
    objs = [json.loads(plan["argv"][i + 1]) for i, a in enumerate(plan["argv"])
            if a == "-object"]
    tc, ram = objs[0], objs[1]
    assert tc == {"qom-type": "thread-context", "id": "tc-prealloc", "cpu-affinity": cpus}, tc
    assert ram["prealloc"] is True and ram["prealloc-threads"] == len(cpus), ram
    assert ram["prealloc-context"] == "tc-prealloc" and ram["host-nodes"] == [1], ram


def test_usage():
    p = run("plan")
    assert p.returncode == 2 and "which profile" in p.stderr
    p = run("plan", "a.json", "b.json")
    assert p.returncode == 2
    p = run("plan", "--help")
    assert p.returncode == 0 and "--json" in p.stdout
    p = run("plan", "/nonexistent/vm.json", sysroot=fixture("seed"))
    assert p.returncode == 1 and "/nonexistent/vm.json" in p.stderr


def test_profiles_by_name():
    """`plan NAME` reads CONFDIR/NAME.json, and refuses one whose "name" is not NAME (its
    VM would be one that `down NAME` and qpass@NAME.service's restore cannot find)."""
    src = os.path.join(SOURCE, "profiles", "examples", "win10-gpu-01.json")
    with open(src) as f:
        text = f.read()
    with tempfile.TemporaryDirectory() as conf:
        with open(os.path.join(conf, "win10-gpu-01.json"), "w") as f:
            f.write(text)
        with open(os.path.join(conf, "other.json"), "w") as f:
            f.write(text)
        env = {"QPASS_CONFDIR": conf}
        p = run("plan", "win10-gpu-01", sysroot=fixture("seed"), env=env)
        assert p.returncode == 0 and "-name guest=win10-gpu-01," in p.stdout, p.stderr
        p = run("plan", "other", sysroot=fixture("seed"), env=env)
        assert p.returncode == 1, p.stdout
        assert 'the profile found for other is named "win10-gpu-01"' in p.stderr, p.stderr
        assert 'set "name": "other"' in p.stderr and conf + "/win10-gpu-01.json" in p.stderr
        p = run("plan", "absent", sysroot=fixture("seed"), env=env)
        assert p.returncode == 1 and conf + "/absent.json" in p.stderr, p.stderr


if __name__ == "__main__":
    sys.exit(main([test_golden_plans, test_seed_plan_json, test_text_is_pastable,
                   test_failures_say_what_and_how, test_memory_on_the_node, test_usage,
                   test_profiles_by_name]))
