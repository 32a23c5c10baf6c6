#!/bin/sh
# Builds the nested lab's L1 guest from Debian packages only: Debian's plain kernel
# (linux-image-KVER-amd64, not the cloud flavour: that one has no 9p) and an initramfs
# with busybox-static, tests/lab/init and the kernel modules L1 needs, depmod'ed (the
# .deb ships no modules.dep):
#   - to reach its root, this machine's / over 9p: virtio_pci, 9p, 9pnet_virtio, overlay;
#   - the host drivers of the fake GPUs: bochs, snd-hda-intel (and the generic HDA codec
#     QEMU's hda-output needs), xhci-pci; the PCI serial port's driver is built in;
#   - what qpass needs: vfio-pci (with vfio_iommu_type1), kvm_amd (L1's -cpu max is AMD
#     with SVM, so L2 runs under KVM inside L1).
# L1 bind-mounts the initramfs's /lib/modules over its root's, so `modprobe` finds them.
#
#   tests/lab/build.sh CACHEDIR   -> CACHEDIR/vmlinuz, CACHEDIR/initrd.gz
#
# Kept while this script, tests/lab/init and the kernel version apt offers are the same
# (CACHEDIR/stamp); the downloaded .debs are kept in CACHEDIR/debs.
set -eu
out=${1:?usage: build.sh CACHEDIR}
here=$(cd "$(dirname "$0")" && pwd)
say() { echo "lab/build.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb cpio gzip depmod modprobe sha256sum; do
	command -v $tool >/dev/null ||
		die "$tool is missing (apt-get install apt dpkg cpio gzip kmod coreutils)"
done
kver=${KVER:-$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { sub(/.*linux-image-/, ""); print; exit }')}
[ -n "$kver" ] ||
	die "apt knows no linux-image-amd64: its package lists are missing (apt-get update)"

stamp="kernel $kver; $(cat "$here/build.sh" "$here/init" | sha256sum | cut -d' ' -f1)"
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.gz" ] &&
	[ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi
say "building L1's kernel $kver and initramfs in $out"

# The packages: downloaded once into CACHEDIR/debs (an older kernel's goes).
mkdir -p "$out/debs"
have() { ls "$out/debs/$1"_*.deb >/dev/null 2>&1; }
for old in "$out"/debs/linux-image-*.deb; do
	case $old in */linux-image-"$kver"_*) ;; *) rm -f "$old" ;; esac
done
for pkg in "linux-image-$kver" busybox-static; do
	have "$pkg" && continue
	log=$(cd "$out/debs" && apt-get download -q "$pkg" 2>&1) ||
		die "apt-get download $pkg failed (no mirror reachable?):
$log"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
dpkg-deb -x "$(ls "$out"/debs/linux-image-"$kver"_*.deb)" kernel
dpkg-deb -x "$(ls "$out"/debs/busybox-static_*.deb)" busybox
depmod -b "$work/kernel" "$kver" || die "depmod -b $work/kernel $kver failed"

mkdir -p root/bin root/proc root/sys root/dev root/run root/tmp root/newroot \
	root/hostroot root/overlay "root/lib/modules/$kver"
cp busybox/bin/busybox root/bin/
for a in $(root/bin/busybox --list); do
	[ -e "root/bin/$a" ] || ln -s busybox "root/bin/$a"
done
# The modules and everything they depend on, at their places in the tree.
mods="virtio_pci 9pnet_virtio 9p overlay
      bochs snd-hda-intel snd-hda-codec-generic xhci-pci
      vfio-pci vfio_iommu_type1 kvm_amd"
for m in $mods; do
	modprobe -d "$work/kernel" -S "$kver" --show-depends "$m" >> deps ||
		die "the kernel $kver has no module $m"
done
awk '$1 == "insmod" { print $2 }' deps | sort -u > modules
while read -r ko; do
	rel=${ko#"$work/kernel/"}
	mkdir -p "root/$(dirname "$rel")"
	cp "$ko" "root/$rel"
done < modules
for f in modules.builtin modules.builtin.modinfo modules.order; do
	cp "kernel/lib/modules/$kver/$f" "root/lib/modules/$kver/"
done
depmod -b "$work/root" "$kver" || die "depmod -b $work/root $kver failed"
cp "$here/init" root/init
chmod 755 root/init

(cd root && find . | cpio -o -H newc --quiet | gzip -6) > "$out/initrd.gz.tmp"
cp "kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
echo "$stamp" > "$out/stamp"
say "L1's kernel $kver and initramfs ($(du -k "$out/initrd.gz" | cut -f1) KiB) are in $out"
