"""Big GPUs: the guest's 64-bit MMIO window sized from the passed functions' BARs, on
fixture hosts whose GPU has a 16, 32 or 128 GiB BAR (tests/fixtures/mkhost.py scale
--bar), with OVMF and SeaBIOS, on q35 and pc; a window past the host's physical address
bits refused with the numbers; `list` shows each BAR, and the sizes a Resizable BAR may
take (sysfs resourceN_resize)."""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SOURCE, Qemu, main, run, scratch  # noqa: E402

GIB = 1 << 30
PROFILE = """{ "name": "big", "memory": "64G", "vcpus": 2, "machine": "%s",
  "firmware": "%s", "passthrough": ["01:00"] }"""


def host(tmp, bar, phys_bits=None, gpus=1):
    root = os.path.join(tmp, "bar%d-%d" % (bar, gpus))
    subprocess.run([sys.executable, os.path.join(SOURCE, "tests/fixtures/mkhost.py"), "scale",
                    root, "--gpus", str(gpus), "--functions", "2", "--others", "0",
                    "--nodes", "1", "--cpus", "16", "--bar", str(bar)], check=True,
                   stdout=subprocess.DEVNULL)
    if phys_bits:
        path = os.path.join(root, "proc/cpuinfo")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"\d+ bits physical", "%d bits physical" % phys_bits, text))
    return root


def expected(bar):
    """By hand: function 0 has the big BAR and a 32 MiB one, both 64-bit prefetchable
    (its 16 MiB one is not prefetchable, and function 1's 16 KiB one neither: they go
    below 4 GiB). Its root port's window is their sum rounded up to the largest: 2 x BAR.
    The window adds 1 GiB for the emulated devices and rounds up to a power of two."""
    need = 2 * bar * GIB
    window = 1
    while window < need + GIB:
        window <<= 1
    return need, window


def plan(tmp, root, machine, firmware):
    path = os.path.join(tmp, "big.json")
    with open(path, "w") as f:
        f.write(PROFILE % (machine, firmware))
    return run("plan", path, "--json", sysroot=root)


def test_window_from_the_bars():
    with scratch() as tmp:
        for bar in (16, 32, 128):
            root = host(tmp, bar)
            need, window = expected(bar)
            for machine, firmware in (("q35", "ovmf"), ("q35", "bios"), ("pc", "bios"),
                                      ("pc", "ovmf")):
                p = plan(tmp, root, machine, firmware)
                assert p.returncode == 0, p.stderr
                doc = json.loads(p.stdout)
                argv = doc["argv"]
                if firmware == "ovmf":
                    want = ["-fw_cfg", "name=opt/ovmf/X-PciMmio64Mb,string=%d" % (window >> 20)]
                else:
                    want = ["-global", "%s-pcihost.pci-hole64-size=%dG" % (
                        "q35" if machine == "q35" else "i440FX", window >> 30)]
                i = argv.index(want[0])
                assert argv[i:i + 2] == want, (bar, machine, firmware, argv[i:i + 2])
                assert doc["mmio64"]["window_bytes"] == window and doc["mmio64"]["set"], doc
                note = [n for n in doc["notes"] if n.startswith("64-bit MMIO")]
                assert note and "need %d MiB" % (need >> 20) in note[0], note
                assert "a %d GiB window, set with" % (window >> 30) in note[0], note


def test_qemu_takes_the_window():
    """The real QEMU takes what the argv says: its host bridge's pci-hole64-size read back
    over QMP (pc and q35), and OVMF's fw_cfg file accepted."""
    if not shutil.which("qemu-system-x86_64"):
        return
    with scratch() as tmp:
        root = host(tmp, 32)
        for machine, bridge in (("q35", "/machine/q35"), ("pc", "/machine/i440fx")):
            doc = json.loads(plan(tmp, root, machine, "bios").stdout)
            argv = doc["argv"]
            i = argv.index("-global")
            qemu = ["qemu-system-x86_64", "-machine", machine, "-accel", "tcg", "-nodefaults",
                    "-display", "none", "-S", "-chardev", "socket,id=qmp,fd=3,server=on,"
                    "wait=off", "-mon", "chardev=qmp,mode=control"] + argv[i:i + 2] + [
                    "-fw_cfg", "name=opt/ovmf/X-PciMmio64Mb,string=131072"]
            q = Qemu(qemu, tmp)
            try:
                got = q.cmd("qom-get", path=bridge, property="pci-hole64-size")
            finally:
                q.quit()
            assert got == doc["mmio64"]["window_bytes"] == 128 * GIB, (machine, got)


def test_window_past_the_physical_address_bits():
    with scratch() as tmp:
        root = host(tmp, 128, phys_bits=39)
        p = plan(tmp, root, "q35", "ovmf")
        assert p.returncode == 1, p.stdout
        assert "need a 512 GiB MMIO window, which above 65536 MiB of RAM ends at 40 " \
            "physical address bits; this host's CPU has 39" in p.stderr, p.stderr


def test_phys_bits_for_a_window_past_40_bits():
    """Two 128 GiB BARs: a 1 TiB window above 64 GiB of RAM ends at 41 bits; a named CPU
    model (40 bits by default) gets phys-bits=41, "host" under KVM keeps the host's."""
    with scratch() as tmp:
        root = host(tmp, 128, gpus=2)
        path = os.path.join(tmp, "two.json")
        for model, want in (("EPYC", "EPYC,phys-bits=41"), ("host", "host")):
            with open(path, "w") as f:
                f.write('{"name": "two", "memory": "64G", "vcpus": 2, "machine": "q35", '
                        '"firmware": "ovmf", "cpu": {"model": "%s"}, '
                        '"passthrough": ["01:00", "02:00"]}' % model)
            p = run("plan", path, "--json", sysroot=root)
            assert p.returncode == 0, p.stderr
            doc = json.loads(p.stdout)
            assert doc["mmio64"]["window_bytes"] == 1024 * GIB, doc["mmio64"]
            assert doc["mmio64"]["address_bits"] == 41, doc["mmio64"]
            argv = doc["argv"]
            assert argv[argv.index("-cpu") + 1] == want, argv[argv.index("-cpu") + 1]


def test_list_shows_the_bars():
    with scratch() as tmp:
        root = host(tmp, 32)
        p = run("list", "--json", sysroot=root)
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        fn = [d for d in doc["devices"] if d["address"] == "0000:01:00.0"][0]
        bars = [(b["index"], b["size"], b["mem64"], b["prefetch"]) for b in fn["bars"]]
        assert (1, 32 * GIB, True, True) in bars and (2, 32 << 20, True, True) in bars, bars
        assert fn["bars"][1]["resizable"] == [(256 << 20) << n for n in range(8)], fn["bars"]
        assert fn["bars"][0]["resizable"] is None, fn["bars"]
        p = run("list", sysroot=root)
        assert "BARs 16M 32G 32M; BAR1 resizable: 256M-32G" in p.stdout, p.stdout
        p = run("check", "--json", "--device", "01:00.0", sysroot=root)
        rows = [r for r in json.loads(p.stdout)["checks"] if r["id"] == "function"]
        assert rows and "BAR1 is 32768 MiB, resizable to 256-32768 MiB" in rows[0]["detail"], \
            rows


if __name__ == "__main__":
    sys.exit(main([test_window_from_the_bars, test_qemu_takes_the_window,
                   test_window_past_the_physical_address_bits,
                   test_phys_bits_for_a_window_past_40_bits,
                   test_list_shows_the_bars]))
