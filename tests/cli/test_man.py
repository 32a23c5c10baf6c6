"""qpass(1), made at build time from the binary's --help (tools/mkman.py): every line of
`qpass --help` and of each `qpass COMMAND --help` is in it, and man renders it."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SKIP, SOURCE, main, run  # noqa: E402

BUILD = os.environ.get("QP_BUILD", "")


def test_man_page_says_what_help_says():
    with open(os.path.join(BUILD, "qpass.1.scd")) as f:
        page = f.read()
    top = run("--help").stdout
    cmds = ["list", "check", "plan", "up", "down", "status", "pin", "qmp", "bind", "unbind",
            "restore"]
    for cmd in cmds:
        assert "\n  %s " % cmd in top, cmd
        assert "\n## %s\n" % cmd in page, cmd
        for line in run(cmd, "--help").stdout.splitlines():
            assert line in page, (cmd, line)
    for line in top.splitlines():
        assert line in page, line
    if shutil.which("man"):
        p = subprocess.run(["man", "-l", os.path.join(BUILD, "qpass.1")],
                           capture_output=True, text=True, env=dict(os.environ, MANPAGER="cat",
                                                                    COLUMNS="80"))
        assert p.returncode == 0 and "qpass - launches QEMU" in p.stdout, p.stderr
        assert "QPASS_RUNDIR" in p.stdout and "restore [NAME]" in p.stdout
        p = subprocess.run(["man", "-l", os.path.join(BUILD, "qpass-profile.5")],
                           capture_output=True, text=True, env=dict(os.environ, MANPAGER="cat",
                                                                    COLUMNS="80"))
        assert p.returncode == 0 and "qpass-profile - the VM profiles" in p.stdout, p.stderr


def test_profile_page_says_what_profile_md_says():
    """qpass-profile(5) is docs/profile.md: every key of its tables is in the page."""
    with open(os.path.join(SOURCE, "docs/profile.md")) as f:
        md = f.read()
    with open(os.path.join(BUILD, "qpass-profile.5.scd")) as f:
        page = f.read()
    keys = re.findall(r"^\| `([^`]+)` \|", md, re.M)
    assert len(keys) > 40, keys
    for k in keys:
        assert "*%s*" % re.sub(r"([\\*_])", r"\\\1", k) in page, k
    for title in re.findall(r"^## (.+)$", md, re.M):
        assert "# " + title.upper() in page, title

def test_installed_files_are_where_the_page_says():
    """meson install --destdir: every file the page's FILES names under the install's
    prefix is there, and every installed file is under a place the page names (or the
    man pages' own directory)."""
    import tempfile
    with open(os.path.join(BUILD, "qpass.1.scd")) as f:
        page = f.read()
    files = page.split("\n# FILES\n", 1)[1].split("\n# ", 1)[0]
    named = [n for line in files.splitlines() if line.startswith("_")
             for n in re.findall(r"_(/[^_]+)_", line)]
    with tempfile.TemporaryDirectory() as dest:
        p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
                            "--quiet"], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
        installed = sorted("/" + os.path.relpath(os.path.join(r, f), dest)
                           for r, _, fs in os.walk(dest) for f in fs)
        prefix = os.path.commonpath([n for n in named if not n.startswith(("/run", "/var"))])
        mine = [n for n in named if n.startswith(prefix) and "NAME" not in n]
        for n in mine:
            assert os.path.lexists(dest + n), "qpass(1) names %s; meson installs no such" % n
        assert os.path.isdir(dest + [n for n in named if n.endswith("/NAME.json")][0][:-10])
        places = [n for n in mine] + [os.path.dirname(n.replace("/NAME.json", "/x"))
                                      for n in named]
        for path in installed:
            if "/man/man" in path:
                continue
            assert any(path == n or path.startswith(n.rstrip("/") + "/") for n in places), (
                "%s is installed where qpass(1) says nothing" % path)


if __name__ == "__main__":
    if not os.path.exists(os.path.join(BUILD, "qpass.1.scd")):
        print("scdoc is missing: apt-get install scdoc (tools/dev deps does)")
        sys.exit(SKIP)
    sys.exit(main([test_man_page_says_what_help_says,
                   test_profile_page_says_what_profile_md_says,
                   test_installed_files_are_where_the_page_says]))
