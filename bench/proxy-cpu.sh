#!/usr/bin/env bash
# CPU per proxied request, rvs (proxy data plane, one worker) beside haproxy 2.6 (mode tcp,
# nbthread 1), on loopback in front of one nginx worker serving a 612-byte file:
# wrk -t1 -c32 for DUR seconds per target, keep-alive and with "Connection: close"
# (MODES), the targets alternated ROUNDS times; p99 from wrk --latency.
# The CPU of each proxy process (all its threads) comes from /proc/PID/stat (user and
# system apart), so the figure does not depend on how the two cores are shared between
# wrk, nginx and the proxy — what the req/s of bench/proxy.sh does.
# Ends with the means of each mode and the ratios rvs / haproxy (req/s, CPU per request,
# p99): alternating the targets in one run is what makes them comparable here.
# Usage: sudo bench/proxy-cpu.sh   (needs nginx, haproxy, wrk; ROUNDS, DUR, MODES)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-4}
DUR=${DUR:-8}
MODES=${MODES:-keep-alive close}
for c in nginx haproxy wrk; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done
cargo build --release -q -p rvs
RVS=$PWD/target/release/rvs
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/www"
head -c 612 /dev/zero | tr '\0' x > "$W/www/index.html"
chmod 755 "$W" "$W/www"   # nginx workers run as www-data
chmod 644 "$W/www/index.html"
cat > "$W/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18180; root $W/www; } }
CONF
cat > "$W/rvs.conf" <<CONF
virtual_server 127.0.0.1 18181 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 18180 {
    }
}
CONF
cat > "$W/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend f
    bind 127.0.0.1:18182
    default_backend b
backend b
    server s1 127.0.0.1:18180
CONF
nginx -c "$W/nginx.conf" & pids+=($!)
"$RVS" run -f "$W/rvs.conf" --threads 1 --control "$W/rvs.sock" --pid-file "$W/rvs.pid" \
  --log-level warn > "$W/rvs.log" 2>&1 & pids+=($!)
haproxy -f "$W/haproxy.cfg" -db > "$W/haproxy.log" 2>&1 & pids+=($!)
for port in 18180 18181 18182; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  [ "$(curl -sf "http://127.0.0.1:$port/" | wc -c)" = 612 ] || { echo "port $port does not serve the 612-byte file" >&2; exit 1; }
done
tck=$(getconf CLK_TCK)
echo "| mode | round | target | requests | req/s | p99 ms | user µs/request | system µs/request | CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|---|"
for mode in $MODES; do
  hdr=()
  [ "$mode" = close ] && hdr=(-H "Connection: close")
  for round in $(seq "$ROUNDS"); do
    for t in rvs:18181:${pids[1]} haproxy:18182:${pids[2]}; do
      IFS=: read -r name port pid <<<"$t"
      read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
      wrk -t1 -c32 -d"${DUR}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/" > "$W/wrk"
      read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
      if grep -q 'Non-2xx\|Socket errors' "$W/wrk"; then echo "errors from $name:" >&2; cat "$W/wrk" >&2; exit 1; fi
      req=$(awk '/requests in/{print $1}' "$W/wrk")
      rps=$(awk '/Requests\/sec/{print $2}' "$W/wrk")
      p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$W/wrk")
      awk -v m="$mode" -v r="$round" -v n="$name" -v q="$req" -v rps="$rps" -v p="$p99" -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v t="$tck" \
        'BEGIN { us = 1e6 / t / q; printf "| %s | %d | %s | %d | %.0f | %.2f | %.2f | %.2f | %.2f |\n", m, r, n, q, rps, p, u * us, s * us, (u + s) * us }' \
        | tee -a "$W/rows"
    done
  done
done
echo
# Means per mode and target, and the ratios (rows: | mode | round | target | requests |
# req/s | p99 | user | system | CPU |).
awk -F'|' '{ m=$2; t=$4; gsub(/ /,"",m); gsub(/ /,"",t); k=m SUBSEP t; n[k]++; rps[k]+=$6; p99[k]+=$7; cpu[k]+=$10; modes[m]=1 }
  END { for (m in modes) { r=m SUBSEP "rvs"; h=m SUBSEP "haproxy";
    printf "%s: rvs %.0f req/s, p99 %.2f ms, %.2f µs CPU/request; haproxy %.0f req/s, p99 %.2f ms, %.2f µs; rvs / haproxy: req/s %.2f, CPU %.2f, p99 %.2f\n",
      m, rps[r]/n[r], p99[r]/n[r], cpu[r]/n[r], rps[h]/n[h], p99[h]/n[h], cpu[h]/n[h], rps[r]/rps[h], cpu[r]/cpu[h], p99[r]/p99[h] } }' "$W/rows" | sort
