#!/usr/bin/env python3
"""Writes qpass(1) from the binary's own help: `qpass --help` and `qpass COMMAND --help`
for every command it lists, so that the man page and --help never disagree.

    tools/mkman.py QPASS OUT.scd [SCDOC OUT.1 [KEY=VALUE...]]
    tools/mkman.py --profile PROFILE.md OUT.scd [SCDOC OUT.5]

Writes the scdoc source to OUT.scd; with SCDOC, also the man page OUT.1. KEY=VALUE
pairs are this install's paths (@KEY@ in the page's FILES). With --profile: qpass-profile(5)
from docs/profile.md, its one source."""

import re
import subprocess
import sys

EXTRA = """
# EXIT STATUS

*0*
	Success; for *up*: the VM stopped as asked, or the guest powered off.

*1*
	Failure: stderr says what and how to fix it. For *up*: the VM could not be started,
	and nothing is left running or bound.

*2*
	A wrong command line.

*3*
	*up*: QEMU ended on its own (crashed, killed). A scheduler may retry the job.

# ENVIRONMENT

*QPASS_CONFDIR*
	Where profiles are found by name (default @CONFDIR@): *qpass up NAME* reads
	NAME.json there.

*QPASS_STOP_TIMEOUT*
	As *up --stop-timeout*: the seconds a whole stop may take (set by the systemd unit).

*QPASS_STATEDIR*
	Where each VM's kept state goes (default /var/lib/qpass).

*NOTIFY_SOCKET*, *WATCHDOG_USEC*
	Set by systemd for a Type=notify unit: qpass tells it READY=1, STATUS=, STOPPING=1
	and WATCHDOG=1 there.

*QPASS_SYSROOT*
	The system root to read the host under, as --sysroot (default /).

*QPASS_RUNDIR*
	The runtime directory (default /run/qpass): each VM's directory, the journals
	(journal/NAME.json), the device locks (devices/ADDR.lock), the leases and the host
	lock (leases/.lock).

*QPASS_SYSFS_TIMEOUT_MS*
	The deadline of each sysfs write (default 10000).

# FILES

_@CONFDIR@/NAME.json_
	The profile of the VM NAME, found by name (*qpass up NAME*, *qpass@NAME.service*);
	its "name" must be NAME. The format: *qpass-profile*(5).

_@BINDIR@/qpass_
	The program.

_@UNITDIR@/qpass@.service_
	The systemd template unit: *systemctl enable --now qpass@NAME* runs the VM NAME at
	boot; its stop is a graceful shutdown within TimeoutStopSec, and ExecStopPost runs
	*qpass restore NAME*.

_@COMPLETIONDIR@/qpass_
	Tab completion for bash.

_@LIBEXECDIR@/slurm-prolog_, _@LIBEXECDIR@/slurm-epilog_
	Slurm's Prolog= and Epilog= for a node that lends its devices to VM jobs: bind them
	before a job, give them back after it; settings in _@CONFDIR@/slurm.conf_
	(@DOCDIR@/docs/slurm.md).

_@DOCDIR@/_
	README.md, docs/ and examples/ (example profiles).

_/run/qpass/NAME/_
	A running VM's runtime directory: its lock, QMP and control sockets, state.json.

_/run/qpass/journal/NAME.json_
	What each bound function had before (driver, driver_override); *qpass restore*
	replays it after a crash.

_/var/lib/qpass/NAME/OVMF_VARS.fd_
	A VM's own copy of the OVMF variables.

# SEE ALSO

*qpass-profile*(5): the profile format. The JSON documents and the design are in
@DOCDIR@/docs/ (list-json.md, check-json.md, plan-json.md, status-json.md,
architecture.md, slurm.md, trust.md), beside README.md.
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
        if cmd == "help":
            continue
        s.append("## %s\n" % cmd)
        s.append(literal(help_of(qpass, cmd)))
    s.append(EXTRA)
    return "\n".join(s)


def inline(text):
    """Markdown's inline marks, as a man page shows them."""
    text = re.sub(r"\[([^]]+)\]\([^)]+\)", r"\1", text)
    text = text.replace("`", "")
    return re.sub(r"([\\*_])", r"\\\1", text)  # scdoc's marks, as they are


def profile_page(md):
    """qpass-profile(5) from docs/profile.md: headings become sections, each table row a
    key with its type and default, indented code an example block."""
    out = ["qpass-profile(5)", "", "# NAME", "",
           "qpass-profile - the VM profiles of qpass(1)", ""]
    head, code, para = None, [], []

    def flush():
        if para:
            out.extend([inline(" ".join(para)), ""])
            para.clear()
        if code:
            out.append(literal("\n".join(code)))
            code.clear()
    for line in md.splitlines():
        if line.startswith("    ") and not para:
            code.append(line[4:])
            continue
        if line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            title = line.lstrip("#").strip()
            if level == 1:
                out.extend(["# DESCRIPTION", ""])
            else:
                out.extend([("# " + title.upper()) if level == 2 else "## " + title, ""])
            continue
        if line.startswith("|"):
            flush()
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if head is None:
                head = [c.lower() for c in cells]
            elif not set("".join(cells)) <= set("-: "):
                row = dict(zip(head, cells))
                what = [row.get(k) for k in ("type", "default") if row.get(k)]
                out.append("*%s*%s" % (inline(cells[0]), " (%s)" % inline(", ".join(what))
                                       if what else ""))
                out.extend(["\t" + inline(row.get("meaning", cells[-1])), ""])
            continue
        head = None
        if not line.strip():
            flush()
        else:
            if code:
                flush()
            para.append(line.strip())
    flush()
    out.extend(["# SEE ALSO", "", "*qpass*(1)", ""])
    return "\n".join(out)


def render(text, scd, scdoc, man):
    with open(scd, "w") as f:
        f.write(text)
    if scdoc:
        with open(man, "w") as out:
            subprocess.run([scdoc], input=text, stdout=out, text=True, check=True)


def main(argv):
    if len(argv) >= 2 and argv[1] == "--profile":
        if len(argv) not in (4, 6):
            sys.exit(__doc__)
        with open(argv[2]) as f:
            text = profile_page(f.read())
        render(text, argv[3], argv[4] if len(argv) == 6 else None,
               argv[5] if len(argv) == 6 else None)
        return 0
    if len(argv) < 3 or len(argv) == 4:
        sys.exit(__doc__)
    text = page(argv[1])
    for kv in argv[5:]:
        key, _, value = kv.partition("=")
        text = text.replace("@%s@" % key, value)
    if len(argv) == 3:
        render(text, argv[2], None, None)
        return 0
    render(text, argv[2], argv[3], argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
