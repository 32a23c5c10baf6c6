#!/bin/sh
# Builds the tiny test guest from Debian packages only: Debian's own kernel and an
# initramfs with busybox-static and an /init that
#   - prints QPASS-GUEST-UP on the serial console once it runs,
#   - powers off when the ACPI power button is pressed (system_powerdown),
#   - with qpass.poweroff on the kernel command line, powers off once it is up,
#   - with qpass.reboot, reboots once it is up,
#   - with qpass.panic, panics once it is up (pvpanic tells QEMU: GUEST_PANICKED).
# Boot it under TCG on these machines: their /dev/kvm hangs a Debian kernel.
#
#   tests/guest/build.sh OUTDIR     -> OUTDIR/vmlinuz, OUTDIR/initrd.gz (kept when there)
set -eu
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.gz" ] && [ "$out/initrd.gz" -nt "$here/init" ]; then
	exit 0
fi
kver=${KVER:-$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { sub(/.*linux-image-/, ""); print; exit }')}
[ -n "$kver" ] || { echo "build.sh: no linux-image-amd64 in apt's lists (apt-get update?)" >&2; exit 1; }
for tool in cpio gzip; do
	command -v $tool >/dev/null || { echo "build.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download -q "linux-image-$kver" busybox-static >/dev/null 2>&1 ||
	{ echo "build.sh: apt-get download linux-image-$kver busybox-static failed" >&2; exit 1; }
mods="lib/modules/$kver/kernel/drivers"
dpkg-deb --fsys-tarfile linux-image-*.deb | tar -x "./boot/vmlinuz-$kver" \
	"./$mods/acpi/button.ko" "./$mods/input/evdev.ko" \
	"./$mods/misc/pvpanic/pvpanic.ko" "./$mods/misc/pvpanic/pvpanic-mmio.ko"
dpkg-deb --fsys-tarfile busybox-static_*.deb | tar -x ./bin/busybox
mkdir -p root/bin root/mods root/proc root/sys root/dev
cp bin/busybox root/bin/
for a in $(root/bin/busybox --list); do
	[ -e "root/bin/$a" ] || ln -s busybox "root/bin/$a"
done
# In load order: the power button and its input events, then pvpanic.
for m in acpi/button input/evdev misc/pvpanic/pvpanic misc/pvpanic/pvpanic-mmio; do
	cp "$mods/$m.ko" root/mods/
	basename "$m.ko" >> root/mods/order
done
cp "$here/init" root/init
chmod 755 root/init
mkdir -p "$out"
(cd root && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.gz.tmp"
cp "boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
echo "build.sh: the test guest (kernel $kver) is in $out"
