#!/usr/bin/env bash
# Builds what the IPVS test VM boots: a stock Debian kernel that has IPVS (downloaded with
# apt-get download and unpacked, never installed on this host) and a base initramfs with
# busybox, iproute2, ipvsadm, keepalived (this host's, which .ci/run installs: the
# reference rvs is compared with; with their libraries), the IPVS modules and tests/vm/init.
#
# Output: $RVS_VM_WORK (default /tmp/rvs-vm)/current -> image.KVER.XXXX/{vmlinuz,
# base.cpio.gz,STAMP}. Safe to run from parallel tests and after an interrupted run:
#  - one build at a time (flock on $work/lock); a caller that waited finds the image ready;
#  - the image is built in a fresh staging directory and published by renaming a symlink,
#    so a reader sees a whole image or none; run.sh copies it under a shared lock;
#  - an image is trusted only if it passes check_image (every IPVS module in the guest's
#    modules.dep, the kernel version of STAMP equal to the image's modules, the initramfs
#    readable); otherwise it is rebuilt;
#  - the build fails (exit 1, with the reason) rather than publish an image without IPVS.
# Usage: build.sh [--check]   (--check: exit 0 if the current image is sound, 1 if not)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${RVS_VM_WORK:-/tmp/rvs-vm}
mkdir -p "$work"
# Modules the scenarios need (an image without one is refused), and ones loaded where the
# kernel has them (ip_vs_twos came with Linux 6.7).
want="ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sed ip_vs_nq ip_vs_sh ip_vs_dh ip_vs_mh ip_vs_lblc ip_vs_lblcr ip_vs_fo ip_vs_ovf veth bridge ipip"
optional="ip_vs_twos"

# check_image DIR: is DIR a whole, sound image? Says why not on stderr.
check_image() {
  local d=$1 kver m
  [ -f "$d/STAMP" ] && [ -f "$d/vmlinuz" ] && [ -f "$d/base.cpio.gz" ] \
    || { echo "vm image $d: incomplete" >&2; return 1; }
  kver=$(awk '/^kernel /{print $2}' "$d/STAMP")
  [ -n "$kver" ] || { echo "vm image $d: STAMP names no kernel" >&2; return 1; }
  gzip -t "$d/base.cpio.gz" 2>/dev/null || { echo "vm image $d: initramfs is damaged" >&2; return 1; }
  local dep
  dep=$(gzip -dc "$d/base.cpio.gz" | cpio -i --quiet --to-stdout "*lib/modules/$kver/modules.dep" 2>/dev/null) \
    || { echo "vm image $d: no modules.dep for kernel $kver" >&2; return 1; }
  for m in $want; do
    grep -qE "(^|/)$m\.ko:" <<<"$dep" || { echo "vm image $d: module $m missing from modules.dep" >&2; return 1; }
  done
  local files
  files=$(gzip -dc "$d/base.cpio.gz" | cpio -t --quiet 2>/dev/null)
  grep -qE "^(\./)?sbin/keepalived$" <<<"$files" || { echo "vm image $d: no keepalived" >&2; return 1; }
}

current_ok() { [ -L "$work/current" ] && check_image "$(readlink -f "$work/current")"; }

if [ "${1:-}" = --check ]; then
  current_ok
  exit
fi

exec 9>"$work/lock"
flock 9
# Another build may have finished while this one waited for the lock.
if current_ok 2>/dev/null; then
  echo "vm image ready: $(readlink -f "$work/current")"
  exit 0
fi
[ -L "$work/current" ] && echo "rebuilding the vm image: $(current_ok 2>&1 || true)" >&2

stage=$(mktemp -d "$work/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# Packages: downloaded once into $work/debs (kept across builds), each checked before use
# (a download cut short is fetched again).
mkdir -p "$work/debs"
cd "$work/debs"
# Package lists older than the mirror name versions it no longer has: on a failed
# download the lists are refreshed once (root) and the kernel is resolved again.
refreshed=0
refresh() {
  [ "$refreshed" = 0 ] && [ "$(id -u)" = 0 ] || return 1
  refreshed=1
  echo "vm image: refreshing the package lists (apt-get update)" >&2
  apt-get update -qq >/dev/null 2>&1
}
kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
kpkg=$(kernel_pkg)
[ -n "$kpkg" ] || { refresh && kpkg=$(kernel_pkg); }
[ -n "$kpkg" ] || { echo "no Debian cloud kernel package found (run apt-get update)" >&2; exit 1; }
deb_of() { # the newest downloaded .deb of package $1 that dpkg-deb can read
  local f
  for f in $(ls -t "$1"_*.deb 2>/dev/null); do
    dpkg-deb --info "$f" >/dev/null 2>&1 && { echo "$f"; return 0; }
    rm -f "$f"
  done
  return 1
}
for p in "$kpkg" ipvsadm libnl-3-200 libnl-genl-3-200 libpopt0 busybox-static iproute2 libbpf1 libelf1 libmnl0 libcap2 libbsd0 libmd0 zlib1g libzstd1 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1 libselinux1 libpcre2-8-0 libxtables12 libdb5.3 libatm1; do
  deb_of "$p" >/dev/null && continue
  if ! apt-get download -qq "$p" >/dev/null 2>&1 && refresh; then
    [ "$p" = "$kpkg" ] && p=$(kernel_pkg) && kpkg=$p
    apt-get download -qq "$p" >/dev/null 2>&1 || true
  fi
  case "$p" in
    "$kpkg"|ipvsadm|busybox-static|iproute2)
      deb_of "$p" >/dev/null || { echo "cannot download $p (apt-get download $p)" >&2; exit 1; } ;;
  esac
done

# The kernel: unpacked into the staging directory, its module index made there.
kdeb=$(deb_of "$kpkg")
dpkg-deb -x "$kdeb" "$stage/kernel"
kver=$(ls "$stage/kernel/lib/modules")
[ "$(wc -w <<<"$kver")" = 1 ] || { echo "$kdeb holds modules for [$kver], expected one kernel" >&2; exit 1; }
md="$stage/kernel/lib/modules/$kver"
[ -f "$md/modules.dep" ] || depmod -b "$stage/kernel" "$kver"
for m in $want; do
  grep -qE "(^|/)$m\.ko(\.[a-z]+)?:" "$md/modules.dep" \
    || { echo "kernel $kver: module $m not found in its modules.dep" >&2; exit 1; }
done

# User space: every package but the kernel, unpacked together.
mkdir -p "$stage/user"
for d in *.deb; do
  case "$d" in linux-image-*) ;; *) dpkg-deb -x "$d" "$stage/user" ;; esac
done

img="$stage/image"
root="$stage/root"
mkdir -p "$img" "$root"/{bin,sbin,lib,lib64,proc,sys,dev,tmp,run,etc,scenario,www,lib/x86_64-linux-gnu}
cp "$stage/kernel/boot/vmlinuz-$kver" "$img/vmlinuz"
cp "$stage/user/bin/busybox" "$root/bin/"
for t in $("$root/bin/busybox" --list); do [ -e "$root/bin/$t" ] || ln -s busybox "$root/bin/$t"; done
rm -f "$root/bin/ip"
cp "$stage/user/sbin/ipvsadm" "$root/sbin/"
cp "$stage/user/bin/ip" "$root/sbin/ip"
libs() { # the shared libraries of $1, from the unpacked packages first, then the host
  LD_LIBRARY_PATH="$stage/user/lib/x86_64-linux-gnu:$stage/user/usr/lib/x86_64-linux-gnu" ldd "$1" \
    | awk '/=> \//{print $3}' | while read -r l; do
      [ -e "$root/lib/x86_64-linux-gnu/$(basename "$l")" ] || cp -L "$l" "$root/lib/x86_64-linux-gnu/"
    done
}
libs "$root/sbin/ipvsadm"; libs "$root/sbin/ip"
# keepalived: the reference the active/backup comparison runs beside rvs.
kad=$(command -v keepalived || true)
[ -n "$kad" ] || { echo "keepalived is not installed (apt-get install keepalived): the vm image carries it" >&2; exit 1; }
cp -L "$kad" "$root/sbin/keepalived"
libs "$root/sbin/keepalived"
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
# What the rvs binary links against (glibc, libgcc_s).
for l in libc.so.6 libm.so.6 libgcc_s.so.1; do
  [ -e "$root/lib/x86_64-linux-gnu/$l" ] || cp -L "/lib/x86_64-linux-gnu/$l" "$root/lib/x86_64-linux-gnu/"
done
echo "hosts: files" > "$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
cp /etc/services "$root/etc/services" 2>/dev/null || true

# Modules: IPVS, its schedulers, veth, IP-in-IP (LVS-TUN real servers), and whatever they
# depend on.
mkdir -p "$root/lib/modules/$kver"
load="$want $optional"
grep -q crc32c_generic "$md/modules.builtin" 2>/dev/null || load="crc32c_generic $load"
all=""
for m in $load; do
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
(cd "$root/lib/modules/$kver" && for m in $load; do
   line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$md/modules.dep" || true)
   if [ -n "$line" ]; then echo "$line" | sed -E 's/\.ko\.(xz|zst)/.ko/g'; fi
 done) > "$root/lib/modules/$kver/modules.dep"
echo "$load" > "$root/etc/modules-to-load"
cp "$here/init" "$root/init"; chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$img/base.cpio.gz"
printf 'kernel %s\npackage %s\nbuilt %s\n' "$kver" "$(basename "$kdeb")" "$(date -u +%FT%TZ)" > "$img/STAMP"
check_image "$img" || { echo "the vm image just built failed its own check" >&2; exit 1; }

# Publish: the image directory gets its final name, then the symlink is replaced by a
# rename (atomic). Older images go: run.sh copies what it boots while it holds the lock
# shared, so no reader is left inside one.
final=$(mktemp -d "$work/image.$kver.XXXXXX")
rmdir "$final"
mv "$img" "$final"
ln -sfn "$(basename "$final")" "$work/current.tmp"
mv -T "$work/current.tmp" "$work/current"
for old in "$work"/image.*; do
  [ "$old" = "$final" ] || rm -rf "$old"
done
# Unpacked copies of an earlier harness (before images were versioned).
rm -rf "$work/kernel" "$work/user" "$work/vmlinuz" "$work/base.cpio.gz"
echo "built $final ($kver, $(du -h "$final/base.cpio.gz" | cut -f1) initramfs)"
