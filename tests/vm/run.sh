#!/usr/bin/env bash
# Boots the IPVS test VM once and runs a scenario in it (qemu, TCG: the stock kernel with
# IPVS; this host's kernel has none). The scenario directory is copied to /scenario in the
# guest with the rvs binary at /scenario/rvs and the shared helpers at /scenario/lib.sh
# (tests/vm/lib.sh); its run.sh's output is printed here and its
# exit code becomes ours. Usage: tests/vm/run.sh SCENARIO_DIR [RVS_BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${RVS_VM_WORK:-/tmp/rvs-vm}
scen=$(cd "$1" && pwd)
rvs=${2:-$here/../../target/debug/rvs}
# Builds the image if there is no sound one (under its lock; parallel callers wait), then
# copies what the VM boots while holding the lock shared, so a rebuild never swaps the
# image under a booting VM.
"$here/build.sh" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
exec 9>"$work/lock"
flock -s 9
img=$(readlink -f "$work/current")
cp "$img/vmlinuz" "$tmp/vmlinuz"
cp "$img/base.cpio.gz" "$tmp/base.cpio.gz"
flock -u 9
mkdir -p "$tmp/root/scenario"
cp -r "$scen"/. "$tmp/root/scenario/"
cp "$here/lib.sh" "$tmp/root/scenario/lib.sh"
# Without its debug information: the guest unpacks the initramfs into its 768 MB of RAM,
# and a debug build's 300 MB binary (most of it DWARF) left the scenarios no room.
strip --strip-debug -o "$tmp/root/scenario/rvs" "$rvs"
(cd "$tmp/root" && find . | cpio -o -H newc --quiet | gzip -1) > "$tmp/scenario.cpio.gz"
cat "$tmp/base.cpio.gz" "$tmp/scenario.cpio.gz" > "$tmp/initrd.gz"
timeout "${RVS_VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -m "${RVS_VM_MEM:-768}" -smp 1 \
  -nodefaults -nographic -no-reboot -nic none \
  -kernel "$tmp/vmlinuz" -initrd "$tmp/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet" \
  -serial "file:$tmp/console.log" -serial "file:$tmp/result.log" >/dev/null 2>&1 || true
if ! grep -q "RVS-VM-EXIT" "$tmp/result.log" 2>/dev/null; then
  echo "the VM did not finish the scenario; console:" >&2
  tail -40 "$tmp/console.log" >&2
  exit 99
fi
grep -v "RVS-VM-EXIT" "$tmp/result.log" | tr -d '\r'
rc=$(awk '/RVS-VM-EXIT/{print $2}' "$tmp/result.log" | tr -d '\r')
exit "${rc:-99}"
