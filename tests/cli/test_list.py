"""`qpass list` on the fixture hosts: golden output, 80 columns, the JSON contract."""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import HOSTS, QPASS, check_golden, fixture, list_json, main, run  # noqa: E402


def normalized(text, host):
    return text.replace(fixture(host), "FIXTURE")


def test_golden_text():
    for h in HOSTS:
        for extra in ([], ["--all"]):
            p = run("list", *extra, sysroot=fixture(h))
            assert p.returncode == 0, p.stderr
            check_golden("list/%s%s.txt" % (h, "-all" if extra else ""),
                         normalized(p.stdout, h))


def test_golden_json():
    for h in HOSTS:
        p = run("list", "--all", "--json", sysroot=fixture(h))
        assert p.returncode == 0, p.stderr
        check_golden("list/%s.json" % h, normalized(p.stdout, h))


def test_fits_80_columns():
    for h in HOSTS:
        for extra in ([], ["--all"]):
            out = run("list", *extra, sysroot=fixture(h)).stdout
            for line in out.splitlines():
                assert len(line) <= 80, "%s: %d columns: %r" % (h, len(line), line)


def test_seed_shows_8_gpus_with_4_functions():
    out = run("list", sysroot=fixture("seed")).stdout
    blocks = re.findall(r"^GPU (\S+)  NVIDIA Corporation TU102 \[GeForce RTX 2080 Ti\]\n"
                        r"  IOMMU group (\d+), NUMA node (\d), local CPUs (\S+)\n"
                        r"((?:  0000:\S+  .*\n(?:                BARs .*\n)?){4})", out, re.M)
    assert [b[0] for b in blocks] == ["0000:%s:00" % s for s in
                                      ("04", "05", "08", "09", "85", "86", "89", "8a")], out
    assert blocks[0][1] == "44"
    assert [b[2] for b in blocks] == ["0"] * 4 + ["1"] * 4
    assert blocks[0][3] == "0-13,28-41" and blocks[4][3] == "14-27,42-55"
    for b in blocks:
        classes = re.findall(r"^  \S+\.\d  (\S{4}) ", b[4], re.M)
        assert classes == ["0300", "0403", "0c03", "0c80"], b[4]


DEVICE_KEYS = {"address": str, "vendor": str, "device": str, "class": str, "name": str,
               "boot_vga": bool, "numa_node": int}


def test_json_contract():
    for h in HOSTS:
        doc = list_json(fixture(h))
        assert doc["version"] == 1
        assert isinstance(doc["iommu"]["enabled"], bool)
        for d in doc["devices"]:
            for k, t in DEVICE_KEYS.items():
                assert isinstance(d[k], t), (h, d["address"], k)
            assert re.fullmatch(r"[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]", d["address"])
            assert re.fullmatch(r"[0-9a-f]{4}", d["class"]), d["class"]
            assert re.fullmatch(r"[0-9a-f]{4}", d["vendor"])
            assert re.fullmatch(r"[0-9a-f]{4}", d["device"])
            assert d["driver"] is None or isinstance(d["driver"], str)
            assert d["numa_node"] >= -1
            if doc["iommu"]["enabled"]:
                assert isinstance(d["iommu_group"], int)
            else:
                assert d["iommu_group"] is None
        for n in doc["numa_nodes"]:
            assert isinstance(n["node"], int)
            assert all(isinstance(c, int) for c in n["cpus"])
        shown = {d["address"] for d in doc["devices"]}
        for g in doc["gpus"]:
            assert set(g["functions"]) <= shown and set(g["group_peers"]) <= shown


def test_seed_json():
    doc = list_json(fixture("seed"), all_devices=False)
    gpus = [g for g in doc["gpus"] if g["name"].endswith("[GeForce RTX 2080 Ti]")]
    assert len(gpus) == 8
    assert gpus[0]["slot"] == "0000:04:00" and gpus[0]["iommu_groups"] == [44]
    assert gpus[0]["functions"] == ["0000:04:00.%d" % f for f in range(4)]
    devs = {d["address"]: d for d in doc["devices"]}
    assert devs["0000:04:00.0"]["class"] == "0300"
    assert devs["0000:04:00.0"]["driver"] == "vfio-pci"
    assert devs["0000:04:00.3"]["class"] == "0c80"
    assert devs["0000:8a:00.0"]["driver"] is None
    assert devs["0000:85:00.0"]["numa_node"] == 1
    assert devs["0000:0b:00.0"]["boot_vga"] is True
    # Without --all: the GPUs' functions and their groups' members only.
    assert "0000:00:1f.2" not in devs
    nodes = {n["node"]: n["cpus"] for n in doc["numa_nodes"]}
    assert nodes[0] == list(range(0, 14)) + list(range(28, 42))
    assert nodes[1] == list(range(14, 28)) + list(range(42, 56))
    assert doc["iommu"]["enabled"] is True and doc["iommu"]["message"] is None


def test_peg_group_peer_is_a_bridge():
    doc = list_json(fixture("desktop-peg"), all_devices=False)
    gpu = next(g for g in doc["gpus"] if g["slot"] == "0000:01:00")
    assert gpu["group_peers"] == ["0000:00:01.0"]
    devs = {d["address"]: d for d in doc["devices"]}
    assert devs["0000:00:01.0"]["header_type"] == "bridge"
    assert devs["0000:01:00.0"]["numa_node"] == -1


def test_chipset_group_peers():
    doc = list_json(fixture("desktop-chipset"), all_devices=False)
    gpu = next(g for g in doc["gpus"] if g["slot"] == "0000:03:00")
    devs = {d["address"]: d for d in doc["devices"]}
    classes = sorted(devs[a]["class"] for a in gpu["group_peers"])
    assert classes == ["0106", "0200", "0604", "0604", "0604", "0c03"], classes


def test_iommu_off_says_so_once():
    p = run("list", sysroot=fixture("iommu-off"))
    assert p.returncode == 0
    assert p.stdout.count("The IOMMU is off") == 1, p.stdout
    assert "intel_iommu=on" in p.stdout and "grub2-mkconfig" in p.stdout
    p = run("list", "--json", sysroot=fixture("iommu-off"))
    doc = json.loads(p.stdout)
    assert doc["iommu"]["enabled"] is False
    assert "intel_iommu=on" in doc["iommu"]["message"]
    assert p.stderr.count("IOMMU is off") == 1, p.stderr
    # A host with groups says nothing of the kind.
    p = run("list", sysroot=fixture("seed"))
    assert "IOMMU is off" not in p.stdout + p.stderr


def test_sysroot_from_environment():
    a = run("list", "--all", sysroot=fixture("seed")).stdout
    b = run("list", "--all", env={"QPASS_SYSROOT": fixture("seed")}).stdout
    c = run("list", "--all", "--sysroot", fixture("seed")).stdout
    assert a == b == c


def test_usage_errors():
    for args in (["list", "--bogus"], ["bogus"], [], ["list", "extra"], ["--bogus"]):
        p = run(*args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert "qpass" in p.stderr
    p = run("--help")
    assert p.returncode == 0 and "list [--all] [--json]" in p.stdout
    assert "--sysroot DIR" in p.stdout and "Exit status" in p.stdout
    p = run("list", "--help")
    assert p.returncode == 0 and "--json" in p.stdout
    p = run("--version")
    assert p.returncode == 0 and p.stdout.startswith("qpass ")


def test_uncontained_sysroot_is_said():
    """Without openat2 (injected: ENOSYS, as before Linux 5.6), reads under --sysroot
    are not contained: qpass says so instead of going on without a word."""
    if not shutil.which("strace"):
        return
    p = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", "trace=openat2", "-e",
                        "inject=openat2:error=ENOSYS", QPASS, "--sysroot", fixture("seed"),
                        "list"], capture_output=True, text=True, timeout=60,
                       # LeakSanitizer cannot run under ptrace (the sanitizer build).
                       env=dict(os.environ, ASAN_OPTIONS="abort_on_error=1:detect_leaks=0"))
    assert p.returncode == 0 and "GPU 0000:04:00" in p.stdout, p.stderr
    assert p.stderr.count("qpass: warning: openat2 is not there") == 1, p.stderr
    assert "are not contained" in p.stderr, p.stderr


def test_missing_sysroot_is_named():
    p = run("list", sysroot="/nonexistent/qpass-host")
    assert p.returncode == 1
    assert "/nonexistent/qpass-host" in p.stderr and "No such file" in p.stderr


if __name__ == "__main__":
    sys.exit(main([test_uncontained_sysroot_is_said, test_golden_text, test_golden_json, test_fits_80_columns,
                   test_seed_shows_8_gpus_with_4_functions, test_json_contract,
                   test_seed_json, test_peg_group_peer_is_a_bridge, test_chipset_group_peers,
                   test_iommu_off_says_so_once, test_sysroot_from_environment,
                   test_usage_errors, test_missing_sysroot_is_named]))
