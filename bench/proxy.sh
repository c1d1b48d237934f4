#!/usr/bin/env bash
# Proxy data plane against its peers, side by side in one run, on the same nginx backend
# (all on loopback): direct, rvs (proxy), haproxy 2.6 (mode tcp) and nginx stream.
# Each proxy gets THREADS worker threads (default 1, like the LAB-NOTES figures; THREADS=2:
# rvs --threads 2, haproxy nbthread 2, nginx 2 workers, wrk -t2, the backend 2 workers).
#   wrk -t1 -c32 keep-alive and with "Connection: close" (DUR seconds each, median of RUNS),
#   bulk: one 1 GiB download through each (curl), memory per idle connection (RSS delta
#   over IDLE connections).
#   UDP: DNS-sized datagrams (dnsperf, 32 clients, DUR seconds, median of RUNS) to dnsmasq
#   directly, through rvs (protocol UDP) and through nginx stream (`listen ... udp`);
#   haproxy has no UDP proxy.
# Usage: sudo [THREADS=2] bench/proxy.sh
#   (needs nginx-light, libnginx-mod-stream, haproxy, wrk, curl, dnsperf, dnsmasq-base)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-8}
RUNS=${RUNS:-3}
IDLE=${IDLE:-2000}
THREADS=${THREADS:-1}
for c in nginx haproxy wrk curl python3 dnsperf dnsmasq; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done
cargo build --release -q -p rvs
W=$(mktemp -d)
pids=()
cleanup() { # stop what this run started, by PID, and wait (bounded) for it to exit
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/www" "$W/ngx"
chmod 755 "$W" "$W/www"   # nginx workers run as www-data
head -c 612 /dev/zero | tr '\0' 'x' > "$W/www/index.html"
head -c 1073741824 /dev/zero > "$W/www/big"
chmod 644 "$W/www/index.html" "$W/www/big"
STREAM_MOD=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null || true)
[ -n "$STREAM_MOD" ] || { echo "missing nginx's stream module (apt-get install libnginx-mod-stream)"; exit 1; }
cat > "$W/backend.conf" <<NGX
worker_processes $THREADS; daemon off; pid $W/ngx/b.pid; error_log $W/ngx/b.err;
events { worker_connections 4096; }
http { access_log off; sendfile on; keepalive_requests 1000000;
  server { listen 127.0.0.1:18080; root $W/www; } }
NGX
cat > "$W/stream.conf" <<NGX
load_module $STREAM_MOD;
worker_processes $THREADS; daemon off; pid $W/ngx/s.pid; error_log $W/ngx/s.err; worker_rlimit_nofile 20000;
events { worker_connections 9000; }
stream { server { listen 127.0.0.1:18083; proxy_pass 127.0.0.1:18080; }
  server { listen 127.0.0.1:18093 udp; proxy_pass 127.0.0.1:15353; proxy_responses 1; proxy_timeout 2s; } }
NGX
cat > "$W/haproxy.cfg" <<HAP
global
  nbthread $THREADS
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 900s
  timeout server 900s
listen bench
  bind 127.0.0.1:18082
  server b1 127.0.0.1:18080
HAP
cat > "$W/rvs.conf" <<RVS
virtual_server 127.0.0.1 18081 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 127.0.0.1 18080 {
        weight 1
    }
}
virtual_server 127.0.0.1 18091 {
    lvs_sched rr
    lvs_method NAT
    protocol UDP
    real_server 127.0.0.1 15353 {
        weight 1
    }
}
RVS
ulimit -n 20000
nginx -c "$W/backend.conf" -p "$W/ngx" & pids+=($!)
nginx -c "$W/stream.conf" -p "$W/ngx" & pids+=($!)
haproxy -f "$W/haproxy.cfg" -db >/dev/null 2>&1 & pids+=($!)
dnsmasq -k --no-resolv --no-hosts --port=15353 --listen-address=127.0.0.1 --bind-interfaces \
  --address=/bench.test/198.18.0.9 --pid-file="$W/dnsmasq.pid" --user=root & pids+=($!)
./target/release/rvs run -f "$W/rvs.conf" --pid-file "$W/rvs.pid" --control "$W/rvs.sock" \
  --threads "$THREADS" --log-level warn & pids+=($!)
RVS_PID=$!
sleep 1
declare -A PORT=([direct]=18080 [rvs]=18081 [haproxy]=18082 [nginx-stream]=18083)
TARGETS="direct rvs haproxy nginx-stream"
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
runwrk() { # target mode -> "reqs p99ms"
  local port=${PORT[$1]} hdr=()
  [ "$2" = close ] && hdr=(-H "Connection: close")
  local rs=() ps=()
  for i in $(seq "$RUNS"); do
    out=$(wrk -t"$THREADS" -c32 -d"${DUR}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/index.html")
    if echo "$out" | grep -q 'Non-2xx'; then echo "error responses from $1:" >&2; echo "$out" >&2; exit 1; fi
    rs+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
    ps+=("$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}')")
    [ "$2" = close ] && sleep 2
  done
  echo "$(printf '%s\n' "${rs[@]}" | median) $(printf '%s\n' "${ps[@]}" | median)"
}
echo "| target | keep-alive req/s | p99 ms | close req/s | p99 ms | bulk 1 GiB MB/s |"
echo "|---|---|---|---|---|---|"
declare -A KA CL BK
for t in $TARGETS; do
  read -r ka kap < <(runwrk "$t" keepalive)
  read -r cl clp < <(runwrk "$t" close)
  bk=$(curl -sS -o /dev/null -w "%{speed_download}" "http://127.0.0.1:${PORT[$t]}/big" | awk "{printf \"%.0f\", \$1/1e6}")
  KA[$t]=$ka; CL[$t]=$cl; BK[$t]=$bk
  echo "| $t | $ka | $kap | $cl | $clp | $bk |"
done
echo
echo "Ratios rvs / peer: keep-alive vs haproxy $(echo "${KA[rvs]} ${KA[haproxy]}" | awk '{printf "%.2f", $1/$2}'), \
close vs nginx-stream $(echo "${CL[rvs]} ${CL[nginx-stream]}" | awk '{printf "%.2f", $1/$2}'), \
bulk vs haproxy $(echo "${BK[rvs]} ${BK[haproxy]}" | awk '{printf "%.2f", $1/$2}'), \
keep-alive vs direct $(echo "${KA[rvs]} ${KA[direct]}" | awk '{printf "%.2f", $1/$2}')"
# Memory per idle connection: RSS delta of rvs and haproxy over IDLE open connections.
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
HAP_PID=$(pgrep -f "haproxy -f $W/haproxy.cfg" | head -1)
idle() { # port pid -> KiB per connection
  local before after
  before=$(rss "$2")
  python3 - "$1" "$IDLE" <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(3)
PY
  local py=$!
  sleep 2
  after=$(rss "$2")
  wait $py
  echo "$before $after $IDLE" | awk '{printf "%.1f", ($2-$1)/$3}'
}
echo "Memory per idle connection (KiB, RSS delta over $IDLE connections): rvs $(idle 18081 $RVS_PID), haproxy $(idle 18082 $HAP_PID)"
# UDP: DNS queries (about 40-byte datagrams, 90-byte answers).
printf 'bench.test A\n%.0s' $(seq 100) > "$W/queries"
declare -A UPORT=([direct]=15353 [rvs]=18091 [nginx-stream]=18093)
declare -A UQ
echo
echo "| UDP target | DNS queries/s | avg latency ms | lost |"
echo "|---|---|---|---|"
for t in direct rvs nginx-stream; do
  qs=() lat=() lost=()
  for i in $(seq "$RUNS"); do
    out=$(dnsperf -s 127.0.0.1 -p "${UPORT[$t]}" -d "$W/queries" -l "$DUR" -c 32 -T "$THREADS" -q 256 2>&1)
    qs+=("$(echo "$out" | awk '/Queries per second/ {print $4}')")
    lat+=("$(echo "$out" | awk '/Average Latency/ {printf "%.3f", $4*1000}')")
    lost+=("$(echo "$out" | awk '/Queries lost/ {print $3}')")
  done
  UQ[$t]=$(printf '%s\n' "${qs[@]}" | median)
  echo "| $t | ${UQ[$t]} | $(printf '%s\n' "${lat[@]}" | median) | $(printf '%s\n' "${lost[@]}" | median) |"
done
echo
echo "Ratio rvs / nginx-stream (UDP): $(echo "${UQ[rvs]} ${UQ[nginx-stream]}" | awk '{printf "%.2f", $1/$2}'), rvs / direct $(echo "${UQ[rvs]} ${UQ[direct]}" | awk '{printf "%.2f", $1/$2}')"
