"""Shared helpers for the tests that run the qpass binary (meson sets the variables)."""

import json
import os
import subprocess
import sys

QPASS = os.environ.get("QPASS", "")
FIXTURES = os.environ.get("QP_FIXTURES", "")
SOURCE = os.environ.get("QP_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
HOSTS = ["seed", "desktop-peg", "desktop-chipset", "iommu-off"]
GOLDEN = os.path.join(SOURCE, "tests", "golden")
UPDATE = os.environ.get("QP_UPDATE_GOLDEN") == "1"
SKIP = 77  # meson's exit code for a skipped test


def fixture(name):
    return os.path.join(FIXTURES, name)


def run(*args, sysroot=None, env=None):
    """Runs qpass; a sanitizer report or a signal is a failure whatever the test expects."""
    e = dict(os.environ)
    e.pop("QPASS_SYSROOT", None)
    if env:
        e.update(env)
    argv = [QPASS] + (["--sysroot", sysroot] if sysroot else []) + list(args)
    # Strict UTF-8: qpass must never echo raw bytes of a corrupt file.
    p = subprocess.run(argv, capture_output=True, text=True, env=e, timeout=60)
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
