#!/usr/bin/env bash
# CPU per proxied request, rvs (proxy data plane, one worker) beside haproxy 2.6 (mode tcp,
# nbthread 1), on loopback in front of one nginx worker serving a 612-byte file:
# wrk -t1 -c32 keep-alive for DUR seconds per target, the targets alternated ROUNDS times.
# The CPU of each proxy process (all its threads) comes from /proc/PID/stat (user and
# system apart), so the figure does not depend on how the two cores are shared between
# wrk, nginx and the proxy — what the req/s of bench/proxy.sh does.
# Usage: sudo bench/proxy-cpu.sh   (needs nginx, haproxy, wrk; ROUNDS, DUR)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-4}
DUR=${DUR:-8}
for c in nginx haproxy wrk; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done
cargo build --release -q -p rvs
RVS=$PWD/target/release/rvs
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/www"
head -c 612 /dev/zero | tr '\0' x > "$W/www/index.html"
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
done
tck=$(getconf CLK_TCK)
echo "| round | target | requests | req/s | user µs/request | system µs/request | CPU µs/request |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for t in rvs:18181:${pids[1]} haproxy:18182:${pids[2]}; do
    IFS=: read -r name port pid <<<"$t"
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    wrk -t1 -c32 -d"${DUR}s" "http://127.0.0.1:$port/" > "$W/wrk"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    req=$(awk '/requests in/{print $1}' "$W/wrk")
    rps=$(awk '/Requests\/sec/{print $2}' "$W/wrk")
    awk -v r="$round" -v n="$name" -v q="$req" -v rps="$rps" -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v t="$tck" \
      'BEGIN { us = 1e6 / t / q; printf "| %d | %s | %d | %.0f | %.2f | %.2f | %.2f |\n", r, n, q, rps, u * us, s * us, (u + s) * us }'
  done
done
