"""The Debian package: `tools/dev deb` builds it from this tree (dpkg-buildpackage -us -uc
-b with debian/), lintian finds no error, and apt-get installs it in a fresh Debian 12
(mmdebstrap, from the mirror) where `qpass list` runs; the files land where qpass(1) says,
and this host is left without the package, as it was."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from qptest import SKIP, SOURCE, main  # noqa: E402


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "qpass"], capture_output=True,
                       text=True)
    return "install ok installed" in p.stdout


def test_build_lint_install():
    was = installed()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "deb")
        p = subprocess.run([os.path.join(SOURCE, "tools", "dev"), "deb", out], cwd=SOURCE,
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stdout + p.stderr
        text = p.stdout
        assert "Status: install ok installed" in text, text
        assert "NUMA nodes" in text and "/usr/share/man/man1/qpass.1.gz" in text, text
        # Where the package puts its files is where the installed qpass(1) says.
        deb = [f for f in os.listdir(out) if f.endswith(".deb") and "dbgsym" not in f][0]
        files = subprocess.run(["dpkg-deb", "-c", os.path.join(out, deb)],
                               capture_output=True, text=True, check=True).stdout
        for path in ("./usr/bin/qpass", "./lib/systemd/system/qpass@.service",
                     "./usr/share/man/man1/qpass.1.gz", "./usr/share/man/man5/qpass-profile.5.gz",
                     "./usr/share/bash-completion/completions/qpass",
                     "./usr/libexec/qpass/slurm-prolog", "./usr/libexec/qpass/slurm-epilog",
                     "./usr/share/doc/qpass/examples/win10-gpu-01.json", "./etc/qpass/"):
            assert path in files, (path, files)
        man = subprocess.run(["sh", "-c", "dpkg-deb --fsys-tarfile '%s' | tar -xOf - "
                              "./usr/share/man/man1/qpass.1.gz | zcat" % os.path.join(out, deb)],
                             capture_output=True, text=True, check=True).stdout
        for said in ("/etc/qpass", "/usr/bin/qpass", "/lib/systemd/system",
                     "/usr/share/bash-completion/completions", "/usr/libexec/qpass/slurm-prolog"):
            assert said in man, said
    assert installed() == was, "the package was left installed on this host"


if __name__ == "__main__":
    missing = [p for p in ("dpkg-buildpackage", "dh", "lintian", "mmdebstrap")
               if not shutil.which(p)]
    if os.geteuid() != 0 or missing:
        print("needs root and %s (tools/dev deps installs them)" % (", ".join(missing) or
                                                                  "nothing else"))
        sys.exit(SKIP)
    sys.exit(main([test_build_lint_install]))
