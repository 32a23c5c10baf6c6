"""The seed's plan against the argv libvirt 9.0 renders for the same domain
(../shared/reference/libvirt-argv-for-seed-domain.txt): equal on everything that is not
libvirt's own plumbing. What differs on purpose is listed below, with why, and checked,
so that the list stays true."""

import json
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SKIP, SOURCE, fixture, main, run  # noqa: E402

REFERENCE = os.path.join(SOURCE, "..", "shared", "reference",
                         "libvirt-argv-for-seed-domain.txt")

# What qpass does differently, on purpose: (option, what libvirt has, why).
DIFFERENCES = [
    ("-cpu", "kvm64,vme=on,...,kvm=off",
     "libvirt expands host-model into the flags of the machine it rendered on; qpass "
     "passes the host CPU through (-cpu host), which GPU drivers and benchmarks want"),
    ("-machine", "pc-i440fx-7.2,...",
     "libvirt pins the versioned machine type; qpass writes 'pc', which this QEMU "
     "resolves to its newest pc-i440fx"),
    ("memory", "no host-nodes",
     "the seed's domain has no <numatune>; qpass binds the memory to the GPUs' node"),
    ("-chardev", "socket,path=.../monitor.sock",
     "qpass hands QEMU an already-listening socket fd: no path can race"),
    ("-object secret masterKey0", "libvirt's key for its own secrets", "plumbing"),
    ("-overcommit mem-lock=off", "", "qpass sets RLIMIT_MEMLOCK itself (VFIO pins RAM)"),
    ("-audiodev none", "", "no sound device in the domain; QEMU needs no backend"),
    ("virtio-serial", "a controller at 0xa",
     "for libvirt's guest-agent channel, which qpass does not use; so the balloon takes "
     "the next free slot (0x8), not 0xb"),
    ("-vnc", "0.0.0.0:13",
     "qpass adds password-secret: the seed sets vnc_password in qemu.conf"),
    ("pvpanic", "absent", "qpass adds it so that on_crash sees guest panics"),
]


def parse_argv(words):
    """{option: [values]}; a JSON value is decoded."""
    opts = {}
    i = 1
    while i < len(words):
        opt = words[i]
        val = None
        if i + 1 < len(words) and not words[i + 1].startswith("-"):
            val = words[i + 1]
            i += 1
        if val and val.startswith("{"):
            val = json.loads(val)
        opts.setdefault(opt, []).append(val)
        i += 1
    return opts


def libvirt():
    text = open(REFERENCE).read().replace("\\\n", " ")
    words = shlex.split(text)
    start = next(i for i, w in enumerate(words) if w.endswith("qemu-system-x86_64"))
    return parse_argv(words[start:])


def qpass():
    p = run("plan", "profiles/examples/win10-gpu-01.json", "--json", sysroot=fixture("seed"),
            cwd=SOURCE)
    assert p.returncode == 0, p.stderr
    return parse_argv(json.loads(p.stdout)["argv"])


def devices(opts, driver):
    return [d for d in opts["-device"] if isinstance(d, dict) and d["driver"] == driver]


def strip(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def test_same_passthrough():
    lv, qp = libvirt(), qpass()
    want = [strip(d, "id") for d in devices(lv, "vfio-pci")]
    got = [strip(d, "id") for d in devices(qp, "vfio-pci")]
    assert len(want) == 8 and got == want, (got, want)


def test_same_machine_shape():
    lv, qp = libvirt(), qpass()
    assert "kvm=off" in lv["-cpu"][0].split(",") and "kvm=off" in qp["-cpu"][0].split(",")
    assert qp["-smp"] == ["14,sockets=1,cores=14,threads=1"]
    assert lv["-smp"][0].replace("dies=1,", "") == qp["-smp"][0]
    assert qp["-m"] == lv["-m"] == ["65536"]
    assert qp["-rtc"] == lv["-rtc"] == ["base=localtime"]
    assert qp["-accel"] == lv["-accel"] == ["kvm"]
    lmem = next(o for o in lv["-object"] if isinstance(o, dict) and o["id"] == "pc.ram")
    qmem = next(o for o in qp["-object"] if isinstance(o, dict) and o["id"] == "pc.ram")
    assert qmem["size"] == lmem["size"] and qmem["qom-type"] == lmem["qom-type"]
    assert "memory-backend=pc.ram" in qp["-machine"][0]
    for same in ("-S", "-no-shutdown", "-no-user-config", "-nodefaults", "-sandbox", "-msg",
                 "-boot", "-uuid", "-name"):
        assert qp[same] == lv[same], (same, qp.get(same), lv.get(same))


def test_same_devices():
    lv, qp = libvirt(), qpass()
    # The virtio disk: qcow2 over a file with direct I/O and native AIO, boot disk.
    lfile, lfmt = lv["-blockdev"]
    qfile, qfmt = qp["-blockdev"]
    for k in ("driver", "filename", "aio", "cache", "auto-read-only", "discard"):
        assert qfile[k] == lfile[k], k
    for k in ("driver", "read-only", "cache"):
        assert qfmt[k] == lfmt[k], k
    ld, qd = devices(lv, "virtio-blk-pci")[0], devices(qp, "virtio-blk-pci")[0]
    for k in ("bus", "addr", "bootindex", "write-cache"):
        assert qd[k] == ld[k], k
    # USB: EHCI and its UHCI companions at slot 5, the tablet on it.
    for drv in ("ich9-usb-ehci1", "ich9-usb-uhci1", "ich9-usb-uhci2", "ich9-usb-uhci3",
                "usb-tablet"):
        assert strip(devices(qp, drv)[0], "id") == strip(devices(lv, drv)[0], "id"), drv
    # The network: virtio on a tap, the seed's MAC, slot 3.
    assert strip(devices(qp, "virtio-net-pci")[0], "netdev", "id") == \
        strip(devices(lv, "virtio-net-pci")[0], "netdev", "id")
    assert qp["-netdev"][0]["type"] == lv["-netdev"][0]["type"] == "tap"
    # Serial on a pty, cirrus at slot 2, a balloon, VNC display 13.
    assert "pty,id=charserial0" in qp["-chardev"]
    assert strip(devices(qp, "isa-serial")[0], "id") == strip(devices(lv, "isa-serial")[0], "id")
    assert devices(qp, "cirrus-vga")[0] == devices(lv, "cirrus-vga")[0]
    assert devices(qp, "virtio-balloon-pci") and devices(lv, "virtio-balloon-pci")
    assert qp["-vnc"][0].split(",")[0] == lv["-vnc"][0].split(",")[0] == "0.0.0.0:13"


def test_differences_are_as_listed():
    lv, qp = libvirt(), qpass()
    assert qp["-cpu"] == ["host,kvm=off"] and lv["-cpu"][0].startswith("kvm64,")
    assert qp["-machine"][0].startswith("pc,") and lv["-machine"][0].startswith("pc-i440fx-")
    qmem = next(o for o in qp["-object"] if isinstance(o, dict) and o["id"] == "pc.ram")
    lmem = next(o for o in lv["-object"] if isinstance(o, dict) and o["id"] == "pc.ram")
    assert qmem["host-nodes"] == [0] and "host-nodes" not in lmem
    assert any("path=" in c for c in lv["-chardev"]) and "fd=3" in ",".join(qp["-chardev"])
    assert any(isinstance(o, dict) and o["id"] == "masterKey0" for o in lv["-object"])
    assert "-overcommit" in lv and "-overcommit" not in qp
    assert "-audiodev" in lv and "-audiodev" not in qp
    assert devices(lv, "virtio-serial-pci") and not devices(qp, "virtio-serial-pci")
    assert devices(lv, "virtio-balloon-pci")[0]["addr"] == "0xb"
    assert devices(qp, "virtio-balloon-pci")[0]["addr"] == "0x8"
    assert "password-secret=vnc-secret" in qp["-vnc"][0]
    assert devices(qp, "pvpanic") and not devices(lv, "pvpanic")
    print("# differences from libvirt, on purpose:")
    for opt, theirs, why in DIFFERENCES:
        print("#   %s (libvirt: %s): %s" % (opt, theirs or "-", why))


if __name__ == "__main__":
    if not os.path.exists(REFERENCE):
        print("the reference is missing: %s (../shared beside the checkout)" % REFERENCE)
        sys.exit(SKIP)
    sys.exit(main([test_same_passthrough, test_same_machine_shape, test_same_devices,
                   test_differences_are_as_listed]))
