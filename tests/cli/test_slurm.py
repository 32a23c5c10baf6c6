"""qpass under a real Slurm: a one-node cluster (munged, slurmctld and slurmd from
Debian, on this machine, with their own keys, ports, spool and logs under a temporary
directory) runs a batch job whose step is `qpass up` of the TCG test guest. Shown:
  - the prolog (build/slurm-prolog) binds the node's devices before the step starts and
    the epilog gives them back after it ends: on a fixture host through the fake kernel
    (this machine has no device to lend), every driver link as it was;
  - `scancel` of the running job: Slurm sends SIGTERM to every process of the job, then
    SIGKILL after KillWait; qpass, with --stop-timeout below KillWait, shuts the guest down
    by ACPI (it powers off), exits 0 (the job's script reads it), and the job is over well
    within KillWait; QEMU is gone."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from qptest import (QPASS, SKIP, build_guest, console, fixture, guest_profile, main,  # noqa: E402
                    wait_console)
from test_vfio import snapshot  # noqa: E402

BUILD = os.environ.get("QP_BUILD", "")
QPASS_FK = os.environ.get("QPASS_FK", "")
KILL_WAIT = 30
STOP_TIMEOUT = 25
DEVICES = ["08:00", "8a:00"]  # the seed's, on host drivers before the job

SLURM_CONF = """ClusterName=qpasstest
SlurmctldHost=%(host)s
SlurmctldPort=%(port0)d
SlurmdPort=%(port1)d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%(tmp)s/munge/socket
StateSaveLocation=%(tmp)s/ctld
SlurmdSpoolDir=%(tmp)s/spool
SlurmctldPidFile=%(tmp)s/slurmctld.pid
SlurmdPidFile=%(tmp)s/slurmd.pid
SlurmctldLogFile=%(tmp)s/slurmctld.log
SlurmdLogFile=%(tmp)s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/linear
MpiDefault=none
ReturnToService=2
KillWait=%(killwait)d
Prolog=%(tmp)s/prolog
Epilog=%(tmp)s/epilog
NodeName=%(host)s CPUs=%(cpus)d State=UNKNOWN
PartitionName=vms Nodes=%(host)s Default=YES MaxTime=INFINITE State=UP
"""

# The site's wrappers: Slurm runs Prolog= and Epilog= without arguments or our
# environment, so these name the settings file and exec the installed scripts.
WRAPPER = """#!/bin/sh
QPASS_SLURM_CONF=%(tmp)s/qpass-slurm.conf exec %(build)s/slurm-%(phase)s
"""

JOB = """#!/bin/sh
# The job's step: the VM, stopped gracefully inside KillWait when the job is cancelled.
trap 'echo "job: got SIGTERM" >> %(tmp)s/job.log' TERM
%(qpass)s up %(tmp)s/slurmvm.json --stop-timeout %(stop)d >> %(tmp)s/job.log 2>&1
echo "qpass exit=$?" >> %(tmp)s/job.log
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.env = dict(os.environ, SLURM_CONF=os.path.join(tmp, "slurm.conf"))

    def start(self):
        tmp = self.tmp
        for d in ("munge", "ctld", "spool"):
            os.makedirs(os.path.join(tmp, d), mode=0o700)
        key = os.path.join(tmp, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        m = os.path.join(tmp, "munge")
        self.daemon(["munged", "--foreground", "--force", "--socket", m + "/socket",
                     "--key-file", key, "--pid-file", m + "/pid", "--seed-file",
                     m + "/seed", "--log-file", m + "/log"])
        self.wait_for(lambda: os.path.exists(m + "/socket"), "munged's socket")
        with open(self.env["SLURM_CONF"], "w") as f:
            f.write(SLURM_CONF % {"host": socket.gethostname().split(".")[0], "tmp": tmp,
                                  "port0": free_port(), "port1": free_port(),
                                  "cpus": os.cpu_count(), "killwait": KILL_WAIT})
        self.daemon(["slurmctld", "-D", "-i", "-f", self.env["SLURM_CONF"]])
        self.daemon(["slurmd", "-D", "-f", self.env["SLURM_CONF"]])
        self.wait_for(lambda: self.slurm("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
                      == "idle", "the node to be idle", timeout=60)

    def daemon(self, argv):
        log = open(os.path.join(self.tmp, os.path.basename(argv[0]) + ".out"), "w")
        self.procs.append((subprocess.Popen(argv, stdout=log, stderr=log, env=self.env), log))

    def wait_for(self, cond, what, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            for p, _ in self.procs:
                if p.poll() is not None:
                    raise AssertionError("%s exited (%d) waiting for %s:\n%s" % (
                        p.args[0], p.returncode, what, self.logs()))
            if cond():
                return
            time.sleep(0.2)
        raise AssertionError("no %s after %d s:\n%s" % (what, timeout, self.logs()))

    def logs(self):
        out = []
        for name in ("munged.out", "munge/log", "slurmctld.log", "slurmd.log", "job.log"):
            path = os.path.join(self.tmp, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append("== %s\n%s" % (name, f.read()[-3000:]))
        return "\n".join(out)

    def slurm(self, *argv, check=True):
        p = subprocess.run(list(argv), capture_output=True, text=True, env=self.env,
                           timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("%s: %s\n%s" % (" ".join(argv), p.stderr, self.logs()))
        return p

    def job_state(self, job):
        p = self.slurm("scontrol", "show", "job", job, "-o", check=False)
        fields = dict(w.split("=", 1) for w in p.stdout.split() if "=" in w)
        return fields.get("JobState", "GONE")

    def stop(self):
        for p, log in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            log.close()


def test_job_prolog_scancel_epilog():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        host = os.path.join(tmp, "host")
        shutil.copytree(fixture("seed"), host, symlinks=True)
        before = snapshot(host)
        rundir = os.path.join(tmp, "run")
        with open(os.path.join(tmp, "qpass-slurm.conf"), "w") as f:
            f.write('QPASS=%s\nQPASS_ARGS="--sysroot %s"\nQPASS_DEVICES="%s"\n'
                    'export QPASS_RUNDIR=%s/fk-run\n' % (QPASS_FK, host, " ".join(DEVICES),
                                                         tmp))
        for phase in ("prolog", "epilog"):
            path = os.path.join(tmp, phase)
            with open(path, "w") as f:
                f.write(WRAPPER % {"tmp": tmp, "build": BUILD, "phase": phase})
            os.chmod(path, 0o755)
        with open(os.path.join(tmp, "slurmvm.json"), "w") as f:
            f.write(guest_profile(tmp, "slurmvm"))
        job_sh = os.path.join(tmp, "job.sh")
        with open(job_sh, "w") as f:
            f.write(JOB % {"tmp": tmp, "qpass": QPASS, "stop": STOP_TIMEOUT})
        os.chmod(job_sh, 0o755)

        c = Cluster(tmp)
        c.env["QPASS_RUNDIR"] = rundir
        try:
            c.start()
            p = c.slurm("sbatch", "--parsable", "-o", os.path.join(tmp, "job.out"),
                        "-J", "slurmvm", job_sh)
            job = p.stdout.strip().split(";")[0]
            state = os.path.join(rundir, "slurmvm", "state.json")
            c.wait_for(lambda: os.path.exists(state), "the VM's state.json", timeout=90)
            wait_console(tmp, "QPASS-GUEST-UP")
            # The prolog bound the node's devices before the step ran.
            for d in DEVICES:
                for fn in range(4):
                    link = os.path.join(host, "sys/bus/pci/devices/0000:%s.%d/driver" % (d, fn))
                    assert os.path.basename(os.readlink(link)) == "vfio-pci", (d, fn)
            with open(state) as f:
                qemu = json.load(f)["qemu_pid"]

            t0 = time.time()
            c.slurm("scancel", job)
            c.wait_for(lambda: c.job_state(job) not in ("RUNNING", "COMPLETING", "PENDING")
                       and not os.path.exists(state), "the job's end", timeout=KILL_WAIT + 30)
            took = time.time() - t0
            with open(os.path.join(tmp, "job.log")) as f:
                log = f.read()
            assert "QPASS-GUEST-POWEROFF" in console(tmp), console(tmp) + c.logs()
            assert "qpass exit=0" in log and "job: got SIGTERM" in log, c.logs()
            print("# the job's log:\n# " + log.strip().replace("\n", "\n# "))
            assert took < KILL_WAIT, "the job took %.1f s to end, KillWait is %d" % (
                took, KILL_WAIT)
            assert not os.path.exists("/proc/%d" % qemu) or open(
                "/proc/%d/stat" % qemu).read().split()[2] == "Z", "QEMU outlived the job"
            # The epilog gave every device back.
            c.wait_for(lambda: snapshot(host) == before, "the epilog's give-back")
            print("# scancel to the job's end: %.1f s (KillWait %d s, --stop-timeout %d s); "
                  "job state %s" % (took, KILL_WAIT, STOP_TIMEOUT, c.job_state(job)))
        finally:
            c.stop()


if __name__ == "__main__":
    missing = [p for p in ("munged", "slurmctld", "slurmd", "sbatch") if not shutil.which(p)]
    if os.geteuid() != 0 or missing:
        print("needs root and Slurm (apt-get install slurm-wlm munge; tools/dev deps does): "
              "missing %s" % (", ".join(missing) or "root"))
        sys.exit(SKIP)
    why = build_guest()
    if why:
        print(why)
        sys.exit(SKIP)
    sys.exit(main([test_job_prolog_scancel_epilog]))
