#!/usr/bin/env python3
"""Writes qpass(1) from the binary's own help: `qpass --help` and `qpass COMMAND --help`
for every command it lists, so that the man page and --help never disagree.

    tools/mkman.py QPASS OUT.scd [SCDOC OUT.1]

Writes the scdoc source to OUT.scd; with SCDOC, also the man page OUT.1."""

import re
import subprocess
import sys

EXTRA = """
# ENVIRONMENT

*QPASS_SYSROOT*
	The system root to read the host under, as --sysroot (default /).

*QPASS_RUNDIR*
	The runtime directory (default /run/qpass): each VM's directory, the journals
	(journal/NAME.json), the device locks (devices/ADDR.lock), the leases and the host
	lock (leases/.lock).

*QPASS_SYSFS_TIMEOUT_MS*
	The deadline of each sysfs write (default 10000).

# FILES

_/run/qpass/NAME/_
	A running VM's runtime directory: its lock, QMP and control sockets, state.json.

_/run/qpass/journal/NAME.json_
	What each bound function had before (driver, driver_override); *qpass restore*
	replays it after a crash.

_/var/lib/qpass/NAME/OVMF_VARS.fd_
	A VM's own copy of the OVMF variables.

# SEE ALSO

The profile format, the JSON documents and the design are in the source tree's docs/
(profile.md, list-json.md, check-json.md, plan-json.md, status-json.md,
architecture.md) and README.md.
"""


def help_of(qpass, *args):
    p = subprocess.run([qpass] + list(args) + ["--help"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("mkman.py: %s %s --help failed: %s" % (qpass, " ".join(args), p.stderr))
    return p.stdout


def literal(text):
    """A block scdoc prints as it is."""
    return "```\n" + text.rstrip("\n") + "\n```\n"


def commands(top):
    """The command names of `qpass --help`'s "Commands:" list."""
    out, inside = [], False
    for line in top.splitlines():
        if line.startswith("Commands:"):
            inside = True
            continue
        if inside and not line.strip():
            break
        m = re.match(r"^  ([a-z]+)\b", line)
        if inside and m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def page(qpass):
    top = help_of(qpass)
    usage, _, rest = top.partition("\n\n")
    intro, _, _ = rest.partition("\n\n")
    summary = " ".join(intro.split())
    if summary.startswith("qpass "):
        summary = summary[len("qpass "):]
    s = ["qpass(1)", "", "# NAME", "", "qpass - " + summary, "",
         "# SYNOPSIS", "", literal(usage), "# DESCRIPTION", "", literal(top)]
    s.append("# COMMANDS\n")
    for cmd in commands(top):
        s.append("## %s\n" % cmd)
        s.append(literal(help_of(qpass, cmd)))
    s.append(EXTRA)
    return "\n".join(s)


def main(argv):
    if len(argv) not in (3, 5):
        sys.exit(__doc__)
    text = page(argv[1])
    with open(argv[2], "w") as f:
        f.write(text)
    if len(argv) == 5:
        with open(argv[4], "w") as out:
            subprocess.run([argv[3]], input=text, stdout=out, text=True, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
