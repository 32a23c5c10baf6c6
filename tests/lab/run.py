#!/usr/bin/env python3
"""The nested VFIO lab, host side: the real qpass with real vfio-pci, IOMMU groups and
NUMA nodes, on a machine that has none of them.

It builds L1 (tests/lab/build.sh: Debian's kernel and an initramfs, cached) and boots it
under TCG: q35 with an intel-iommu (interrupt remapping on), two NUMA nodes with one
vCPU each, -cpu max (AMD SVM: L1 loads kvm_amd and L2 runs under KVM inside L1), and
two fake GPUs:

  node 1: pxb-pcie (bus 0x80, numa_node 1) -> pcie-root-port -> 81:00.0 VGA,
          81:00.1 HDA audio, 81:00.2 xHCI USB, 81:00.3 PCI serial
  node 0: pxb-pcie (bus 0x40, numa_node 0) -> pcie-root-port -> 41:00.0 bochs-display,
          41:00.1 HDA audio

L1's root is this machine's / over 9p (read-only, under a tmpfs overlay), so it runs the
qpass this build made; tests/lab/l1.py does the lab inside L1 and writes its transcript
to a writable 9p share, which this script follows live. On any failure it shows L1's
console and the transcript's tail, and exits 1. It exits 77 (meson's skip), saying why,
only when QEMU cannot run at all.

Meson runs it with QPASS, QP_SOURCE and QP_BUILD set (tools/dev lab too). Files, in
QP_BUILD/tests/lab/: transcript.txt, console.log (L1's serial console), out/ (the share:
plans, query-pci replies, qpass up's logs, L1's dmesg). The kernel and initramfs are
cached in QP_LAB_CACHE (default /var/tmp/qpass-lab). QP_LAB_TIMEOUT bounds L1 (seconds,
default 180; it takes about 40). For experiments: QP_LAB_ACCEL replaces L1's -accel (see
l1_argv), QP_LAB_KARGS adds to its kernel command line.
"""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
QEMU = "qemu-system-x86_64"


def say(msg):
    print("lab: " + msg, flush=True)


def tail(path, lines):
    try:
        with open(path, errors="replace") as f:
            text = f.read().splitlines()
    except OSError as e:
        return "(%s)" % e
    return "\n".join(text[-lines:])


def qemu_runs():
    """None when QEMU can start a trivial machine under TCG, else why not."""
    if not shutil.which(QEMU):
        return "%s is not installed (apt-get install qemu-system-x86)" % QEMU
    argv = [QEMU, "-machine", "q35,accel=tcg", "-cpu", "max", "-nodefaults", "-no-user-config",
            "-display", "none", "-S", "-qmp", "stdio"]
    try:
        p = subprocess.run(argv, input='{"execute": "qmp_capabilities"}\n'
                           '{"execute": "quit"}\n', capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "%s did not start and quit a trivial machine within 60 s" % QEMU
    except OSError as e:
        return "%s cannot run: %s" % (QEMU, e)
    if p.returncode != 0:
        return "%s cannot start a trivial machine (status %d): %s" % (
            QEMU, p.returncode, p.stderr.strip())
    return None


def build(cache):
    """The kernel and initramfs, built once (tests/lab/build.sh keeps them while its
    inputs are the same); two labs at once take turns."""
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sys.stdout.flush()  # its messages after ours, in one stream
        p = subprocess.run(["sh", os.path.join(HERE, "build.sh"), cache], stderr=subprocess.STDOUT)
    if p.returncode != 0:
        say("FAIL: building L1's kernel and initramfs failed (tests/lab/build.sh %s, "
            "status %d; it said why above)" % (cache, p.returncode))
        sys.exit(1)


def l1_argv(cache, source, qpass, share, console):
    # Interrupt remapping (intremap=on) as on a real host: without it VFIO refuses the
    # L2 container unless allow_unsafe_interrupts. iommu=pt keeps the IOMMU out of the
    # way of L1's own virtio devices (the 9p shares), which are not passed anywhere.
    kargs = ["console=ttyS0", "loglevel=4", "panic=-1", "intel_iommu=on", "iommu=pt",
             "lab.source=" + source, "lab.qpass=" + qpass]
    kargs += os.environ.get("QP_LAB_KARGS", "").split()
    # One TCG thread for both vCPUs, not one thread per vCPU (QEMU's default): with
    # multi-threaded TCG, L1 locks up for good (soft lockups on both CPUs, RCU stalls,
    # then silence) when KVM in L1 enables and disables SVM on every CPU, which it does
    # each time the first L2 VM starts and the last one ends. Measured in L1 with a loop
    # that creates and closes a KVM VM: multi-threaded, 5 of 5 boots hung within 200 VMs
    # (2 of 2 within 600 with idle=poll; none in 2000 while another VM kept SVM enabled);
    # one thread: 8000 VMs in 4 boots, no hang. This lab is faster so too: L1 about 33 s
    # against 38 s.
    argv = [QEMU, "-name", "qpass-lab-l1",
            "-machine", "q35", "-accel", os.environ.get("QP_LAB_ACCEL", "tcg,thread=single"),
            "-cpu", "max",
            "-smp", "2,sockets=2,cores=1,threads=1", "-m", "2G",
            "-object", "memory-backend-ram,id=ram0,size=1G",
            "-object", "memory-backend-ram,id=ram1,size=1G",
            "-numa", "node,nodeid=0,memdev=ram0", "-numa", "node,nodeid=1,memdev=ram1",
            "-numa", "cpu,node-id=0,socket-id=0", "-numa", "cpu,node-id=1,socket-id=1",
            "-device", "intel-iommu,intremap=on",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-chardev", "file,id=console,path=" + console, "-serial", "chardev:console",
            "-kernel", os.path.join(cache, "vmlinuz"),
            "-initrd", os.path.join(cache, "initrd.gz"),
            "-append", " ".join(kargs),
            # L1's root: this machine's /, read-only; and the results share.
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-fsdev", "local,id=labout,path=%s,security_model=none" % share,
            "-device", "virtio-9p-pci,fsdev=labout,mount_tag=labout",
            "-audiodev", "none,id=noaudio", "-chardev", "null,id=nothing"]
    # The node-1 GPU: VGA, audio, USB, serial on one slot behind a root port.
    argv += ["-device", "pxb-pcie,id=pxb1,bus_nr=0x80,numa_node=1,bus=pcie.0",
             "-device", "pcie-root-port,id=rp1,bus=pxb1,chassis=1,slot=1",
             "-device", "VGA,bus=rp1,addr=00.0,multifunction=on",
             "-device", "intel-hda,id=hda1,bus=rp1,addr=00.1",
             "-device", "hda-output,bus=hda1.0,audiodev=noaudio",
             "-device", "qemu-xhci,bus=rp1,addr=00.2",
             "-device", "pci-serial,bus=rp1,addr=00.3,chardev=nothing"]
    # The node-0 GPU: a display controller and audio.
    argv += ["-device", "pxb-pcie,id=pxb0,bus_nr=0x40,numa_node=0,bus=pcie.0",
             "-device", "pcie-root-port,id=rp0,bus=pxb0,chassis=2,slot=1",
             "-device", "bochs-display,bus=rp0,addr=00.0,multifunction=on",
             "-device", "intel-hda,id=hda0,bus=rp0,addr=00.1",
             "-device", "hda-duplex,bus=hda0.0,audiodev=noaudio"]
    return argv


class Follower:
    """Prints the transcript as L1 writes it, whole lines only."""

    def __init__(self, path):
        self.path = path
        self.pos = 0

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return
        done = data[:data.rfind(b"\n") + 1]
        if done:
            sys.stdout.write(done.decode(errors="replace"))
            sys.stdout.flush()
            self.pos += len(done)


def die_with_parent():
    """In L1's QEMU, before exec: SIGKILL when this script dies, however it dies."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def main():
    source = os.path.abspath(os.environ.get("QP_SOURCE", os.path.join(HERE, "..", "..")))
    qpass = os.path.abspath(os.environ.get("QPASS", ""))
    build_dir = os.path.abspath(os.environ.get("QP_BUILD", os.path.dirname(qpass)))
    if not os.environ.get("QPASS") or not os.access(qpass, os.X_OK):
        say("run it through meson test (QPASS, QP_SOURCE, QP_BUILD), or tools/dev lab")
        return 2
    for path in (source, qpass):
        if any(c.isspace() for c in path):
            say("FAIL: %r has white space: it cannot go on L1's kernel command line" % path)
            return 1
        # L1 mounts its own /proc, /sys, /dev and /run over this machine's.
        hidden = [d for d in ("/proc", "/sys", "/dev", "/run")
                  if (path + "/").startswith(d + "/")]
        if hidden:
            say("FAIL: %s is under %s, which L1 replaces with its own: clone and build "
                "qpass elsewhere (/tmp, /var/tmp and home directories are fine)" %
                (path, hidden[0]))
            return 1

    why = qemu_runs()
    if why:
        print("SKIP: the lab needs QEMU: %s" % why, flush=True)
        return SKIP

    t0 = time.monotonic()
    cache = os.environ.get("QP_LAB_CACHE", "/var/tmp/qpass-lab")
    build(cache)
    t_build = time.monotonic() - t0

    out = os.path.join(build_dir, "tests", "lab")
    share = os.path.join(out, "out")
    console = os.path.join(out, "console.log")
    transcript = os.path.join(share, "transcript.txt")
    shutil.rmtree(share, ignore_errors=True)
    os.makedirs(share)
    for f in (console, os.path.join(out, "transcript.txt")):
        if os.path.exists(f):
            os.unlink(f)
    timeout = int(os.environ.get("QP_LAB_TIMEOUT", "180"))
    argv = l1_argv(cache, source, qpass, share, console)
    with open(os.path.join(out, "l1-argv.txt"), "w") as f:
        f.write("\n".join(argv) + "\n")
    say("booting L1 under TCG (at most %d s; its console: %s)" % (timeout, console))

    t1 = time.monotonic()
    follow = Follower(transcript)
    # meson's own timeout sends SIGTERM: end as for Ctrl-C, through the finally below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with open(os.path.join(out, "qemu.log"), "w") as qlog:
        l1 = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qlog,
                              stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        hung = False
        try:
            while l1.poll() is None:
                if time.monotonic() - t1 > timeout:
                    hung = True
                    l1.kill()
                    l1.wait()
                    break
                follow.poll()
                time.sleep(0.2)
        finally:
            if l1.poll() is None:  # interrupted: never leave L1 behind
                l1.kill()
                l1.wait()
    follow.poll()
    t_l1 = time.monotonic() - t1
    if os.path.exists(transcript):
        shutil.copy(transcript, os.path.join(out, "transcript.txt"))

    status = ""
    try:
        with open(os.path.join(share, "status")) as f:
            status = f.read().strip()
    except OSError:
        pass
    print()
    say("build %.1f s, L1 %.1f s (QEMU exit status %s); transcript: %s" % (
        t_build, t_l1, "killed" if hung else l1.returncode, os.path.join(out, "transcript.txt")))
    if status == "0 ok" and not hung:
        say("PASS")
        return 0
    if hung:
        why = "L1 did not finish within %d s (killed): hung?" % timeout
    elif not status:
        why = "L1 ended (QEMU status %d) without a result" % l1.returncode
    else:
        why = status[2:]
    say("FAIL: " + why)
    print("\n--- QEMU (L1) said: %s\n%s" % (os.path.join(out, "qemu.log"),
                                         tail(os.path.join(out, "qemu.log"), 20)))
    print("\n--- L1's console, last 60 lines: %s\n%s" % (console, tail(console, 60)))
    print("\n--- the transcript, last 30 lines: %s\n%s" % (transcript, tail(transcript, 30)))
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C, or meson's SIGTERM: L1 is gone already
        say("interrupted: L1 was stopped")
        sys.exit(1)
