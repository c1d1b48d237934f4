#!/usr/bin/env bash
# Builds what the IPVS test VM boots: a stock Debian kernel that has IPVS (downloaded with
# apt-get download and unpacked, never installed on this host) and a base initramfs with
# busybox, iproute2, ipvsadm (with their libraries), the IPVS modules and tests/vm/init.
# Output: $RVS_VM_WORK (default /tmp/rvs-vm)/{vmlinuz,base.cpio.gz}. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${RVS_VM_WORK:-/tmp/rvs-vm}
mkdir -p "$work/debs" "$work/kernel" "$work/user"
cd "$work/debs"
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$kpkg" ] || { echo "no Debian cloud kernel package found (apt-get update?)" >&2; exit 1; }
for p in "$kpkg" ipvsadm libnl-3-200 libnl-genl-3-200 libpopt0 busybox-static iproute2 libbpf1 libelf1 libmnl0 libcap2 libbsd0 libmd0 zlib1g libzstd1 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1 libselinux1 libpcre2-8-0 libxtables12 libdb5.3 libatm1; do
  ls "$p"_*.deb >/dev/null 2>&1 || apt-get download -qq "$p" >/dev/null 2>&1 || true
done
[ -d "$work/kernel/boot" ] || dpkg-deb -x "$kpkg"_*.deb "$work/kernel"
for d in *.deb; do
  case "$d" in linux-image-*) ;; *) [ -f "$work/user/.$d" ] || { dpkg-deb -x "$d" "$work/user"; touch "$work/user/.$d"; } ;; esac
done
kver=$(ls "$work/kernel/lib/modules" | head -1)
[ -f "$work/kernel/lib/modules/$kver/modules.dep" ] || depmod -b "$work/kernel" "$kver"
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"

root=$(mktemp -d "$work/root.XXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,lib,lib64,proc,sys,dev,tmp,run,etc,scenario,www,lib/x86_64-linux-gnu}
cp "$work/user/bin/busybox" "$root/bin/"
for t in $("$root/bin/busybox" --list); do [ -e "$root/bin/$t" ] || ln -s busybox "$root/bin/$t"; done
rm -f "$root/bin/ip"
cp "$work/user/sbin/ipvsadm" "$root/sbin/"
cp "$work/user/bin/ip" "$root/sbin/ip"
libs() { # the shared libraries of $1, from the unpacked packages first, then the host
  LD_LIBRARY_PATH="$work/user/lib/x86_64-linux-gnu:$work/user/usr/lib/x86_64-linux-gnu" ldd "$1" \
    | awk '/=> \//{print $3}' | while read -r l; do
      [ -e "$root/lib/x86_64-linux-gnu/$(basename "$l")" ] || cp -L "$l" "$root/lib/x86_64-linux-gnu/"
    done
}
libs "$root/sbin/ipvsadm"; libs "$root/sbin/ip"
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
# What the rvs binary links against (glibc, libgcc_s).
for l in libc.so.6 libm.so.6 libgcc_s.so.1; do
  [ -e "$root/lib/x86_64-linux-gnu/$l" ] || cp -L "/lib/x86_64-linux-gnu/$l" "$root/lib/x86_64-linux-gnu/"
done
echo "hosts: files" > "$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
cp /etc/services "$root/etc/services" 2>/dev/null || true

# Modules: IPVS, its schedulers, veth, and whatever they depend on.
md="$work/kernel/lib/modules/$kver"
mkdir -p "$root/lib/modules/$kver"
want="ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sed ip_vs_nq ip_vs_sh ip_vs_dh ip_vs_mh ip_vs_lblc ip_vs_lblcr ip_vs_fo ip_vs_ovf ip_vs_twos veth bridge"
grep -q crc32c_generic "$md/modules.builtin" 2>/dev/null || want="crc32c_generic $want"
all=""
for m in $want; do
  line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$md/modules.dep" || true)
  [ -n "$line" ] || continue
  all="$all ${line%%:*} ${line#*:}"
done
for f in $all; do
  mkdir -p "$root/lib/modules/$kver/$(dirname "$f")"
  src="$md/$f"
  case "$f" in
    *.xz) xz -dc "$src" > "$root/lib/modules/$kver/${f%.xz}" ;;
    *.zst) zstd -qdc "$src" > "$root/lib/modules/$kver/${f%.zst}" ;;
    *) cp "$src" "$root/lib/modules/$kver/$f" ;;
  esac
done
# A modules.dep for the uncompressed names, in load order for busybox modprobe.
(cd "$root/lib/modules/$kver" && for m in $want; do
   line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$md/modules.dep" || true)
   [ -n "$line" ] && echo "$line" | sed -E 's/\.ko\.(xz|zst)/.ko/g'
 done) > "$root/lib/modules/$kver/modules.dep"
echo "$want" > "$root/etc/modules-to-load"
cp "$here/init" "$root/init"; chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/base.cpio.gz"
echo "built $work/vmlinuz ($kver) and $work/base.cpio.gz ($(du -h "$work/base.cpio.gz" | cut -f1))"
