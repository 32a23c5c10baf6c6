"""Removes, then corrupts, every file and link of a fixture host in turn, and runs
`qpass list --all --json` on it each time. qpass must never crash; when it fails it
names the file; a file it needs may never be removed silently, and a value it reads may
never be corrupted silently (no silent zeros)."""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from qptest import fixture, main, run, scratch  # noqa: E402

HOST = "desktop-peg"
DEV = r"sys/devices/pci[0-9a-f:]+(?:/[0-9a-f:.]+)*/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/"
CPU = r"sys/devices/system/cpu/cpu\d+/"
NODE = r"sys/devices/system/node/node\d+/"

# Files whose removal must be an error: qpass cannot describe the host without them.
REQUIRED = [DEV + f for f in ("vendor", "device", "subsystem_vendor", "subsystem_device",
                              "class", "revision", "config", "local_cpulist")] + [
    r"sys/bus/pci/devices/[^/]+",
    r"sys/kernel/iommu_groups/\d+/devices/[^/]+",
    CPU + r"topology/(physical_package_id|core_id|thread_siblings_list)",
    NODE + r"(cpulist|meminfo|distance)",
    NODE + r"hugepages/hugepages-\d+kB/(nr|free)_hugepages",
    r"proc/cmdline",
]
# Files whose values qpass reads: corrupting one must be an error. Optional ones (the
# kernel may lack them) may be absent, never wrong.
PARSED = REQUIRED + [DEV + f for f in ("numa_node", "driver_override", "boot_vga",
                                       "reset_method", "power_state", "driver",
                                       "iommu_group")] + [
    r"sys/kernel/iommu_groups/\d+/type",
    CPU + "online",
    r"proc/modules",
]
# Read, but their content is not a value: only their presence counts.
NOT_VALUES = [r"sys/bus/pci/devices/[^/]+", r"sys/kernel/iommu_groups/\d+/devices/[^/]+",
              r"sys/kernel/iommu_groups/\d+/type"]


# No one-line sysfs value looks like this: "garbage" alone is a fine driver_override.
GARBAGE = b"gar\xffbage\nsecond line\n"


def matches(patterns, rel):
    return any(re.fullmatch(p, rel) for p in patterns)


def names_it(stderr, rel):
    """The error names the file: by the path read, or by the device's bus path."""
    if rel in stderr:
        return True
    dev = re.search(r"([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])/([^/]+)$", rel)
    return bool(re.match(DEV, rel) and dev and
                "sys/bus/pci/devices/%s/%s" % dev.groups() in stderr)


def every_file(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = os.path.relpath(os.path.join(dirpath, n), root)
            if rel != ".qpass-fixture":
                yield rel
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def check(root, rel, how, problems):
    p = run("list", "--all", "--json", sysroot=root)  # raises on a crash
    if p.returncode not in (0, 1):
        problems.append("%s %s: exit %d\n%s" % (how, rel, p.returncode, p.stderr))
    elif p.returncode == 1 and not names_it(p.stderr, rel):
        problems.append("%s %s: the error does not name it: %s" % (how, rel, p.stderr.strip()))
    elif p.returncode == 0 and how == "removed" and matches(REQUIRED, rel):
        problems.append("removed %s: qpass went on without it" % rel)
    elif p.returncode == 0 and how == "corrupted" and matches(PARSED, rel) and \
            not matches(NOT_VALUES, rel):
        problems.append("corrupted %s: qpass took the garbage" % rel)


def test_remove_and_corrupt_each_file():
    with scratch() as tmp:
        root = os.path.join(tmp, "host")
        shutil.copytree(fixture(HOST), root, symlinks=True)
        base = run("list", "--all", "--json", sysroot=root)
        assert base.returncode == 0, base.stderr
        problems, count = [], 0
        for rel in sorted(every_file(root)):
            path = os.path.join(root, rel)
            if os.path.islink(path):
                target = os.readlink(path)
                os.unlink(path)
                check(root, rel, "removed", problems)
                os.symlink("garbage", path)
                check(root, rel, "corrupted", problems)
                os.unlink(path)
                os.symlink(target, path)
            else:
                with open(path, "rb") as f:
                    content = f.read()
                mode = os.stat(path).st_mode
                os.unlink(path)
                check(root, rel, "removed", problems)
                with open(path, "wb") as f:
                    f.write(GARBAGE)
                check(root, rel, "corrupted", problems)
                with open(path, "wb") as f:
                    f.write(content)
                os.chmod(path, mode)
            count += 1
        again = run("list", "--all", "--json", sysroot=root)
        assert again.stdout == base.stdout, "the tree was not put back"
        print("# %d files, each removed and corrupted" % count)
        assert not problems, "\n".join(problems[:40]) + (
            "\n... %d problems in all" % len(problems) if len(problems) > 40 else "")


if __name__ == "__main__":
    sys.exit(main([test_remove_and_corrupt_each_file]))
