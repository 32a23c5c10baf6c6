"""The bash completion (tools/completion/qpass.bash) offers what qpass has: the commands
of `qpass --help`, each command's options as its --help names them, VM names from the
runtime directory, display functions' addresses for bind under --sysroot."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SKIP, SOURCE, fixture, main, run  # noqa: E402

# The one meson made, with this build's profile directory in it.
SCRIPT = os.path.join(os.environ.get("QP_BUILD", ""), "qpass.bash")


def complete(words, env=None):
    """COMPREPLY for the command line `words`, the last one being completed."""
    quoted = " ".join("'%s'" % w for w in words)
    p = subprocess.run(["bash", "-c", 'source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _qpass; '
                        'printf "%%s\\n" "${COMPREPLY[@]}"' % (SCRIPT, quoted, len(words) - 1)],
                       capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.splitlines() if w]


def test_commands_and_options():
    top = run("--help").stdout
    cmds = re.findall(r"^  ([a-z]+) ", top.split("Commands:")[1].split("\n\n")[0], re.M)
    got = complete(["qpass", ""])
    assert set(cmds) <= set(got), (cmds, got)
    for cmd in set(cmds):
        help_text = run(cmd, "--help").stdout
        for opt in complete(["qpass", cmd, "--"]):
            assert opt == "--help" or opt in help_text, (cmd, opt)


def test_vm_names_and_gpus():
    with tempfile.TemporaryDirectory() as rundir:
        for d in ("vm1", "vm2", "journal", "leases"):
            os.mkdir(os.path.join(rundir, d))
        assert complete(["qpass", "down", "v"], {"QPASS_RUNDIR": rundir}) == ["vm1", "vm2"]
        assert "manual" in complete(["qpass", "restore", ""], {"QPASS_RUNDIR": rundir})
    with tempfile.TemporaryDirectory() as conf:
        for n in ("win10", "bench", "notes.txt"):
            open(os.path.join(conf, n if "." in n else n + ".json"), "w").close()
        with tempfile.TemporaryDirectory() as cwd:
            p = subprocess.run(["bash", "-c", 'cd "%s"; source "%s"; COMP_WORDS=(qpass up w); '
                                'COMP_CWORD=2; _qpass; printf "%%s\\n" "${COMPREPLY[@]}"'
                                % (cwd, SCRIPT)], capture_output=True, text=True,
                               env=dict(os.environ, QPASS_CONFDIR=conf))
            assert p.stdout.split() == ["win10"], p.stdout
        assert "up" in complete(["qpass", "help", "u"])
    got = complete(["qpass", "--sysroot", fixture("seed"), "bind", "0000:8"])
    assert got == ["0000:85:00.0", "0000:86:00.0", "0000:89:00.0", "0000:8a:00.0"], got


if __name__ == "__main__":
    if not shutil.which("bash"):
        sys.exit(SKIP)
    sys.exit(main([test_commands_and_options, test_vm_names_and_gpus]))
