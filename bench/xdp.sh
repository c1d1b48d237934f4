#!/usr/bin/env bash
# XDP data plane benchmarks (issue #8). Root; clang; nftables for the peer.
#  1. Program cost by BPF_PROG_RUN (crates/rvs-xdp/examples/progrun.rs).
#  2. Packets per second through a director in namespaces (client, director, rs1, rs2 on a
#     bridge, 198.18.0.0/24), UDP 64-byte frames from a bounded generator
#     (examples/blast.rs, SECONDS per case, 2 threads), counted at the real servers' eth0:
#       fabric     client -> rs1 directly (the veth/bridge ceiling)
#       forward    kernel IPv4 forwarding through the director (routed /32 on rs1's lo)
#       nftables   nftables DNAT load balancer on the director (numgen inc mod 2)
#       rvs-xdp    rvs --dataplane xdp, LVS-DR rr, generic mode
#       rvs-xdp-native  the same in native (driver) mode (pass program on the bridge
#                  port, client TX checksum offload off; needs ethtool)
#     All in one run; ratios are rvs-xdp / peer.
#  With KATRAN_SRC=<a checkout of github.com/facebookincubator/katran>, step 1 measures
#  Katran's XDP balancer too, in the same run with the same frames (built from that
#  checkout as Katran's Makefile-bpf builds it, inside bench/katran/harness.bpf.c).
#  Step 1 runs on one CPU (taskset): Katran's connection tables are per CPU.
#  PPS=0 stops after step 1.
# Usage: [KATRAN_SRC=DIR] [PPS=0] bench/xdp.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release -q -p rvs -p rvs-xdp --examples
cargo build --release -q -p rvs
katran=()
if [ -n "${KATRAN_SRC:-}" ]; then
  kdir=$(mktemp -d)
  mkdir -p "$kdir/include"
  cp "$KATRAN_SRC"/katran/lib/linux_includes/* "$kdir/include/"
  # Katran's Makefile-bpf flags; MAX_CONN_RATE lifted so that its rate limiter does not
  # skip the connection-table insert of a benchmark's million new flows a second.
  clang -I"$kdir/include" -I"$KATRAN_SRC" -Icrates/rvs-xdp/bpf -D__KERNEL__ -DMAX_CONN_RATE=0xffffffffffffffffULL \
    -Wno-unused-value -Wno-pointer-sign -Wno-compare-distinct-pointer-types \
    -O2 -emit-llvm -c -g bench/katran/harness.bpf.c -o - \
    | llc -march=bpf -filetype=obj -o "$kdir/harness.o"
  katran=(--katran "$kdir/harness.o")
  echo "Katran: $(git -C "$KATRAN_SRC" log -1 --format='%h %cs' 2>/dev/null || echo "$KATRAN_SRC")"
fi
echo "## BPF_PROG_RUN"
taskset -c 0 ./target/release/examples/progrun "${katran[@]}"
[ -n "${kdir:-}" ] && rm -rf "$kdir"
[ "${PPS:-1}" = 0 ] && exit 0
P=rvsxb$$
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in c d rs1 rs2 br; do ip netns del $P-$n 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns add $P-br
ip -n $P-br link add br0 type bridge
ip -n $P-br link set br0 up
i=0
for pair in c:100 d:1 rs1:11 rs2:12; do
  n=${pair%%:*}; h=${pair##*:}
  ip netns add $P-$n
  ip -n $P-br link add p$i type veth peer name eth0 netns $P-$n
  ip -n $P-br link set p$i master br0 up
  ip -n $P-$n link set lo up
  ip -n $P-$n addr add 198.18.0.$h/24 dev eth0
  ip -n $P-$n link set eth0 up
  i=$((i+1))
done
for rs in rs1 rs2; do
  ip -n $P-$rs addr add 198.18.0.50/32 dev lo
  for k in all.arp_ignore=1 all.arp_announce=2 lo.arp_ignore=1 lo.arp_announce=2; do
    ip netns exec $P-$rs sysctl -qw net.ipv4.conf.$k
  done
done
ip -n $P-rs1 addr add 198.19.0.11/32 dev lo
ip -n $P-c route add 198.19.0.0/24 via 198.18.0.1
ip -n $P-d route add 198.19.0.11/32 via 198.18.0.11
ip netns exec $P-d sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
ip -n $P-d addr add 198.18.0.50/32 dev eth0
# Resolve every neighbour once.
for t in 198.18.0.1 198.18.0.11 198.18.0.12 198.18.0.50; do
  ip netns exec $P-c bash -c "echo > /dev/udp/$t/9" 2>/dev/null || true
done
ip netns exec $P-d bash -c "echo > /dev/udp/198.18.0.11/9; echo > /dev/udp/198.18.0.12/9" 2>/dev/null || true
sleep 1

rx() { cat /dev/null; local s=0; for rs in "$@"; do
  s=$((s + $(ip netns exec $P-$rs cat /sys/class/net/eth0/statistics/rx_packets))); done; echo $s; }
measure() { # name dest reals...
  local name=$1 dest=$2; shift 2
  local a b sent
  a=$(rx "$@")
  sent=$(ip netns exec $P-c ./target/release/examples/blast "$dest" "$secs" 2)
  sleep 0.3
  b=$(rx "$@")
  echo "$name $(( (b - a) / secs )) $(( sent / secs ))"
}
results=()
results+=("$(measure fabric 198.18.0.11:9 rs1)")
ip netns exec $P-d sysctl -qw net.ipv4.ip_forward=1
results+=("$(measure forward 198.19.0.11:9 rs1)")
ip netns exec $P-d nft -f - <<NFT
table ip lb {
  chain pre {
    type nat hook prerouting priority -100;
    ip daddr 198.18.0.50 udp dport 9 dnat to numgen inc mod 2 map { 0 : 198.18.0.11, 1 : 198.18.0.12 }
  }
}
NFT
results+=("$(measure nftables 198.18.0.50:9 rs1 rs2)")
ip netns exec $P-d nft delete table ip lb
ip netns exec $P-d sysctl -qw net.ipv4.ip_forward=0
cat > "$dir/xdp.conf" <<CONF
virtual_server 198.18.0.50 9 {
    lb_algo rr
    lb_kind DR
    protocol UDP
    real_server 198.18.0.11 9 {
        weight 1
    }
    real_server 198.18.0.12 9 {
        weight 1
    }
}
CONF
ip netns exec $P-d ./target/release/rvs run -C -f "$dir/xdp.conf" --dataplane xdp --xdp-iface eth0 \
  --control "$dir/d.sock" --pid-file "$dir/d.pid" --log-level warn > "$dir/rvs.log" 2>&1 &
pids+=($!)
sleep 3
results+=("$(measure rvs-xdp 198.18.0.50:9 rs1 rs2)")
# The same in native (driver) mode: on veth it needs an XDP program on the director's
# bridge port (the peer of its eth0) and the client's TX checksum offload off (as
# `rvs lab up --xdp-mode native` sets up).
kill "${pids[-1]}"   # `ip netns exec` execs rvs: this is rvs's pid
wait "${pids[-1]}" 2>/dev/null || true
arch=$(uname -m)-linux-gnu
clang -O2 -g -target bpf -I/usr/include/$arch -c crates/rvs-xdp/bpf/pass.bpf.c -o "$dir/pass.o"
ip -n $P-br link set dev p1 xdpdrv obj "$dir/pass.o" sec xdp
ip netns exec $P-c ethtool -K eth0 tx off >/dev/null
ip netns exec $P-d ./target/release/rvs run -C -f "$dir/xdp.conf" --dataplane xdp --xdp-iface eth0 \
  --xdp-mode native --control "$dir/d.sock" --pid-file "$dir/d.pid" --log-level warn > "$dir/rvs.log" 2>&1 &
pids+=($!)
sleep 3
results+=("$(measure rvs-xdp-native 198.18.0.50:9 rs1 rs2)")
echo
echo "## Packets per second through the director (${secs} s per case, UDP 64-byte frames)"
echo
echo "| path | received pps | sent pps |"
echo "|---|---|---|"
for r in "${results[@]}"; do set -- $r; echo "| $1 | $2 | $3 |"; done
for mine in rvs-xdp rvs-xdp-native; do
  xdp=$(printf '%s\n' "${results[@]}" | awk -v m=$mine '$1==m{print $2}')
  for peer in forward nftables fabric; do
    v=$(printf '%s\n' "${results[@]}" | awk -v p=$peer '$1==p{print $2}')
    awk -v a="$xdp" -v b="$v" -v p="$peer" -v m="$mine" 'BEGIN{ if (b>0) printf "%s / %s: %.2f\n", m, p, a/b }'
  done
done
