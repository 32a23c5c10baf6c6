"""Shared helpers for the tests that run the qpass binary (meson sets the variables)."""

import json
import os
import subprocess
import sys
import time

QPASS = os.environ.get("QPASS", "")
FIXTURES = os.environ.get("QP_FIXTURES", "")
SOURCE = os.environ.get("QP_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
HOSTS = ["seed", "desktop-peg", "desktop-chipset", "iommu-off"]
GOLDEN = os.path.join(SOURCE, "tests", "golden")
UPDATE = os.environ.get("QP_UPDATE_GOLDEN") == "1"
SKIP = 77  # meson's exit code for a skipped test


def scratch():
    """A temporary directory for copies of fixture trees: on tmpfs when there is one
    (copying thousands of small files is slow on some disks)."""
    import tempfile
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.TemporaryDirectory(dir=base)


GUEST = os.environ.get("QP_GUEST_DIR", "/var/tmp/qpass-test-guest")

# A profile of the tiny test guest (tests/guest): it answers the ACPI power button.
GUEST_PROFILE = """{ "name": "%(name)s", "memory": "256M", "vcpus": 1, "accel": "tcg",
  "machine": "pc", "video": "none", "usb": {"controller": "none"},
  "shutdown_timeout": 60, "lifecycle": {%(life)s},
  "serial": {"type": "file", "path": "%(tmp)s/console.log"},
  "extra_args": ["-kernel", "%(guest)s/vmlinuz", "-initrd", "%(guest)s/initrd.gz",
                 "-append", "console=ttyS0 quiet %(word)s"] }"""


def guest_profile(tmp, name, word="", life=""):
    return GUEST_PROFILE % {"name": name, "life": life, "tmp": tmp, "guest": GUEST,
                            "word": word}


def build_guest():
    """Builds the test guest once (Debian's kernel and busybox); None, or why not."""
    build = subprocess.run([os.path.join(SOURCE, "tests", "guest", "build.sh"), GUEST],
                           capture_output=True, text=True)
    if build.returncode != 0:
        return ("cannot build the test guest (apt-get download of Debian's kernel and "
                "busybox-static): %s" % build.stderr.strip())
    return None


def console(tmp):
    try:
        with open(os.path.join(tmp, "console.log"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_console(tmp, text, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if text in console(tmp):
            return
        time.sleep(0.1)
    raise AssertionError("the guest did not print %s:\n%s" % (text, console(tmp)))


def fixture(name):
    return os.path.join(FIXTURES, name)


def run(*args, sysroot=None, env=None, cwd=None):
    """Runs qpass; a sanitizer report or a signal is a failure whatever the test expects."""
    e = dict(os.environ)
    e.pop("QPASS_SYSROOT", None)
    if env:
        e.update(env)
    argv = [QPASS] + (["--sysroot", sysroot] if sysroot else []) + list(args)
    # Strict UTF-8: qpass must never echo raw bytes of a corrupt file.
    p = subprocess.run(argv, capture_output=True, text=True, env=e, timeout=60, cwd=cwd)
    if p.returncode < 0 or "Sanitizer" in p.stderr or "runtime error" in p.stderr:
        raise AssertionError("qpass %s crashed (%d):\n%s" % (" ".join(args), p.returncode,
                                                            p.stderr))
    return p


def check_golden(name, text):
    """Compares text with tests/golden/NAME; QP_UPDATE_GOLDEN=1 rewrites it instead."""
    path = os.path.join(GOLDEN, name)
    if UPDATE:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return
    with open(path) as f:
        want = f.read()
    if want != text:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            "golden/" + name, "qpass output"))
        raise AssertionError("output differs from tests/golden/%s (QP_UPDATE_GOLDEN=1 "
                             "rewrites it):\n%s" % (name, diff))


def list_json(sysroot, all_devices=True):
    args = ["list", "--json"] + (["--all"] if all_devices else [])
    p = run(*args, sysroot=sysroot)
    if p.returncode != 0:
        raise AssertionError("qpass list failed on %s:\n%s" % (sysroot, p.stderr))
    return json.loads(p.stdout)


def main(tests):
    """Runs each test function, reports each, exits non-zero when any failed."""
    if not QPASS or not FIXTURES:
        sys.stderr.write("run these tests through meson test (QPASS and QP_FIXTURES)\n")
        return 2
    failed = 0
    for t in tests:
        try:
            t()
            print("ok - %s" % t.__name__)
        except Exception as ex:  # report every failure, then go on
            failed += 1
            print("FAIL - %s: %s" % (t.__name__, ex))
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    return 1 if failed else 0


class Qemu:
    """A real QEMU started with an argv from `qpass plan`, its QMP on an already
    listening socket passed as fd 3, as qpass's launcher will do."""

    def __init__(self, argv, tmp):
        import socket
        path = os.path.join(tmp, "qmp.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(1)
        fd = listener.fileno()

        def child():
            if fd != 3:
                os.dup2(fd, 3)
            os.set_inheritable(3, True)

        self.proc = subprocess.Popen(argv, preexec_fn=child, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        listener.close()  # QEMU holds it now: when QEMU dies, connecting fails at once
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.proc.wait(10)
            raise AssertionError("QEMU did not start (%s):\n%s" % (e, self.proc.stderr.read()))
        self.file = self.sock.makefile("rw")
        greeting = json.loads(self.file.readline())
        assert "QMP" in greeting, greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise AssertionError("QMP closed:\n" + self.proc.stderr.read())
            reply = json.loads(line)
            if "event" in reply:
                continue
            if "error" in reply:
                raise AssertionError("%s: %s" % (name, reply["error"]))
            return reply["return"]

    def quit(self):
        try:
            self.cmd("quit")
        except (AssertionError, OSError):
            pass
        self.sock.close()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


UP_PROFILE = """{ "name": "%s", "memory": "128M", "vcpus": %d, "accel": "tcg",
  "video": "none", "usb": {"controller": "none"}, "shutdown_timeout": 2
  %s}"""


class Up:
    """`qpass up` of a small TCG VM in the background, its runtime dir under tmp."""

    def __init__(self, tmp, name="uptest", vcpus=1, extra="", text=None, prefix=()):
        self.tmp = tmp
        self.name = name
        self.rundir = os.path.join(tmp, "run")
        self.profile = os.path.join(tmp, name + ".json")
        if not text and '"machine"' not in extra:
            extra = ', "machine": "pc"' + extra
        with open(self.profile, "w") as f:
            f.write(text if text else UP_PROFILE % (name, vcpus, extra))
        self.env = dict(os.environ, QPASS_RUNDIR=self.rundir)
        self.env.pop("QPASS_SYSROOT", None)
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(list(prefix) + [QPASS, "up", self.profile], env=self.env,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.dir = os.path.join(self.rundir, name)

    def stderr(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, text, count=1, timeout=120):
        """Waits until qpass has said `text` count times."""
        end = time.time() + timeout
        while time.time() < end:
            if self.stderr().count(text) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("qpass did not say %r %d times:\n%s" % (text, count,
                                                                     self.stderr()))

    def state(self, timeout=60):
        path = os.path.join(self.dir, "state.json")
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(path):
                with open(path) as f:
                    st = json.load(f)
                # Only what this qpass wrote: a killed one may have left its own.
                if st["qpass_pid"] == self.proc.pid:
                    return st
            if self.proc.poll() is not None:
                raise AssertionError("qpass up ended: %d\n%s" % (self.proc.returncode,
                                                                self.stderr()))
            time.sleep(0.05)
        raise AssertionError("the VM did not start within %d s" % timeout)

    def finish(self, timeout=60):
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("qpass up did not end:\n" + self.stderr())
        self.log.close()
        return self.proc.returncode, self.stderr()


def allowed(pid, tid):
    with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()


def expand(cpulist):
    out = []
    for part in cpulist.split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


