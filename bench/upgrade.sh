#!/usr/bin/env bash
# What clients see when rvs is replaced under load, side by side in one run: `rvs upgrade`
# (the successor takes the listening sockets) against a restart (stop, then start: what
# `systemctl restart` does). wrk -t1 -c32 for DUR seconds, keep-alive and with
# "Connection: close", through rvs (proxy data plane) to an nginx backend on loopback; the
# replacement happens AT seconds into the run. Both rvs runs use --drain DRAIN.
# Usage: bench/upgrade.sh   (needs nginx, wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
AT=${AT:-3}
DRAIN=${DRAIN:-30}
for c in nginx wrk; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done
cargo build --release -q -p rvs
RVS=$PWD/target/release/rvs
W=$(mktemp -d)
chmod 755 "$W"
ngx_pid=""
cleanup() {
  [ -f "$W/pid" ] && kill "$(head -1 "$W/pid")" 2>/dev/null || true
  [ -n "$ngx_pid" ] && kill "$ngx_pid" 2>/dev/null || true
  sleep 0.5; rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/www" "$W/ngx"
head -c 612 /dev/zero | tr '\0' 'x' > "$W/www/index.html"
chmod 755 "$W/www"; chmod 644 "$W/www/index.html"
cat > "$W/backend.conf" <<NGX
worker_processes 1; daemon off; pid $W/ngx/b.pid; error_log $W/ngx/b.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18180; root $W/www; } }
NGX
nginx -c "$W/backend.conf" -p "$W/ngx" & ngx_pid=$!
cat > "$W/k.conf" <<CONF
virtual_server 127.0.0.1 18181 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 18180 {
    }
}
CONF
start() {
  "$RVS" run -f "$W/k.conf" --pid-file "$W/pid" --control "$W/ctl" --drain "$DRAIN" --log-level error &
  for _ in $(seq 100); do [ -S "$W/ctl" ] && return 0; sleep 0.05; done
  echo "rvs did not start"; exit 1
}
stop_wait() {
  local p; p=$(head -1 "$W/pid"); kill "$p"
  while kill -0 "$p" 2>/dev/null; do sleep 0.02; done
}
# One run: prints "requests errors" (errors: wrk's socket errors and non-2xx answers).
measure() { # $1: upgrade|restart  $2: keepalive|close
  local hdr=(); [ "$2" = close ] && hdr=(-H "Connection: close")
  start
  wrk -t1 -c32 -d"${DUR}s" "${hdr[@]}" http://127.0.0.1:18181/ > "$W/wrk.out" 2>&1 & local w=$!
  sleep "$AT"
  if [ "$1" = upgrade ]; then
    "$RVS" upgrade --control "$W/ctl" > /dev/null
  else
    stop_wait; start
  fi
  wait $w
  local req err
  req=$(awk '/requests in/ {print $1}' "$W/wrk.out")
  err=$(awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10} /Non-2xx/ {print $NF}' "$W/wrk.out" | paste -sd+ | bc)
  echo "${req:-0} ${err:-0}"
  stop_wait
  # The old process of an upgrade drains until wrk's connections close.
  sleep 1
}
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18180/ && break; sleep 0.1; done
printf '| client | replaced by | requests | failed | failed %% |\n|---|---|---|---|---|\n'
for mode in keepalive close; do
  for how in upgrade restart; do
    read -r req err < <(measure "$how" "$mode")
    pct=$(awk -v e="$err" -v r="$req" 'BEGIN { if (r + e > 0) printf "%.3f", 100 * e / (r + e); else print "-" }')
    printf '| wrk -t1 -c32 %s | %s | %s | %s | %s |\n' "$mode" "$how" "$req" "$err" "$pct"
  done
done
