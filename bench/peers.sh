#!/usr/bin/env bash
# Issue #20's table in one run: every row side by side with its peer, one after the other
# on this machine, then the table with the ratios and the goals.
#   proxy keep-alive and "Connection: close": bench/proxy-cpu.sh (rvs --threads 1 and
#     haproxy nbthread 1 alternated ROUNDS times: req/s, p99, CPU per request);
#   bulk 1 GiB and memory per idle connection: bench/proxy.sh (one thread each);
#   XDP program cost against Katran's balancer: bench/xdp.sh step 1 (BPF_PROG_RUN);
#   Maglev table build, M = 65537, N = 1000: criterion, rvs's fill beside the kernel's
#     loop transcribed (the published anchors: the paper 1.8 ms, Envoy 2.05–2.7 ms).
# Each step's whole output is kept in OUT (default /tmp/rvs-peers).
# Usage: sudo KATRAN_SRC=<katran checkout> bench/peers.sh
#   (needs what those scripts need: nginx, haproxy, wrk, dnsperf, dnsmasq, clang)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${KATRAN_SRC:-}" ] || { echo "KATRAN_SRC=<a checkout of github.com/facebookincubator/katran> is needed" >&2; exit 1; }
OUT=${OUT:-/tmp/rvs-peers}
mkdir -p "$OUT"
echo "rvs $(git rev-parse --short HEAD), $(date -u +%F\ %H:%M) UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== proxy: keep-alive and close, alternated (bench/proxy-cpu.sh)"
bench/proxy-cpu.sh > "$OUT/proxy-cpu.txt"
grep -E '^(keep-alive|close):' "$OUT/proxy-cpu.txt"
echo "== proxy: bulk and idle memory (bench/proxy.sh)"
RUNS=${RUNS:-3} DUR=${DUR:-5} bench/proxy.sh > "$OUT/proxy.txt"
grep -E '^\| (rvs|haproxy) |^Memory' "$OUT/proxy.txt"
echo "== XDP beside Katran (bench/xdp.sh, BPF_PROG_RUN)"
PPS=0 bench/xdp.sh > "$OUT/xdp.txt"
sed -n '/^## Side by side/,$p' "$OUT/xdp.txt"
echo "== Maglev table build (cargo bench -p rvs-sched --bench sched -- mh_build/)"
cargo bench -q -p rvs-sched --bench sched -- 'mh_build/(M|kernel_loop_M)=65537_N=1000$' > "$OUT/maglev.txt" 2>&1
grep -E '^mh_build/|time:' "$OUT/maglev.txt"

# The table. Proxy rows from proxy-cpu's means; bulk and memory from proxy.sh; XDP rows
# from progrun's side-by-side table (columns: rvs DR, rvs mh by table, Katran); Maglev
# from criterion's median.
# proxy-cpu's summary: mode: rvs R req/s, p99 P ms, C µs CPU/request; haproxy … ; ratios.
re='^([a-z-]+): rvs ([0-9]+) req/s, p99 ([0-9.]+) ms, ([0-9.]+) µs CPU/request; haproxy ([0-9]+) req/s, p99 ([0-9.]+) ms, ([0-9.]+) µs; rvs / haproxy: req/s ([0-9.]+), CPU ([0-9.]+), p99 ([0-9.]+)$'
declare -A P
while read -r line; do
  [[ $line =~ $re ]] || continue
  m=${BASH_REMATCH[1]}
  for i in 2 3 4 5 6 7 8 9 10; do P[$m,$i]=${BASH_REMATCH[$i]}; done
done < "$OUT/proxy-cpu.txt"
bulk() { awk -F'|' -v t="$1" '{gsub(/ /,"",$2)} $2==t {gsub(/ /,"",$7); print $7}' "$OUT/proxy.txt" | head -1; }
mem=$(grep '^Memory per idle' "$OUT/proxy.txt")
xdp() { awk -F'|' -v p="$1" '{x=$2; gsub(/^ +| +$/,"",x)} x==p {print $'"$2"'+0}' "$OUT/xdp.txt" | tail -1; }
crit() { # criterion's median, in ms: "NAME time: [low median high]", on one line or two
  awk -v n="mh_build/$1=65537_N=1000" '$1==n {on=1} on && /time:/ {sub(/.*\[/,""); split($0,a," "); v=a[3]; u=a[4];
    if (u=="µs") v/=1000; if (u=="ns") v/=1e6; if (u=="s") v*=1000; printf "%.3f", v; exit}' "$OUT/maglev.txt"; }
r() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }
echo
echo "| what | rvs | peer | ratio | goal |"
echo "|---|---|---|---|---|"
echo "| proxy keep-alive req/s (wrk -t1 -c32, 612 B, one worker each, alternated) | ${P[keep-alive,2]} | haproxy 2.6 mode tcp ${P[keep-alive,5]} | ${P[keep-alive,8]} | ≥ 1.2 |"
echo "| keep-alive p99, ms | ${P[keep-alive,3]} | ${P[keep-alive,6]} | ${P[keep-alive,10]} | ≤ 1 |"
echo "| keep-alive CPU per request, µs | ${P[keep-alive,4]} | ${P[keep-alive,7]} | ${P[keep-alive,9]} | — |"
echo "| proxy Connection: close req/s | ${P[close,2]} | haproxy ${P[close,5]} | ${P[close,8]} | ≥ 1.1 |"
echo "| close CPU per request, µs | ${P[close,4]} | ${P[close,7]} | ${P[close,9]} | — |"
echo "| proxy bulk 1 GiB, MB/s | $(bulk rvs) | haproxy $(bulk haproxy) | $(r "$(bulk rvs)" "$(bulk haproxy)") | keep (> 1) |"
mr=$(echo "$mem" | sed -E 's/.*rvs ([0-9.]+).*/\1/'); mh=$(echo "$mem" | sed -E 's/.*haproxy ([0-9.]+).*/\1/')
echo "| memory per idle proxied connection, KiB | $mr | haproxy $mh | $(r "$mr" "$mh") | ≤ 1 |"
for row in "hit, 1 flow:≤ 0.7" "hit, 1048576 flows:≤ 0.5" "new flow, 1048576-flow pass:≤ 0.7"; do
  p=${row%%:*}; goal=${row#*:}
  d=$(xdp "$p" 3); t=$(xdp "$p" 4); k=$(xdp "$p" 5)
  echo "| XDP $p, ns (rvs DR every flow recorded / mh by table) | $d / $t | Katran $k | $(r "$d" "$k") / $(r "$t" "$k") | $goal |"
done
mf=$(crit M); mk=$(crit kernel_loop_M)
echo "| Maglev build M=65537 N=1000, ms | $mf | the kernel's loop $mk (paper 1.8, Envoy 2.05–2.7) | $(r "$mf" "$mk") | < 1 ms |"
