#!/usr/bin/env bash
# Health-check load: N real servers with TCP_CHECK (and M with HTTP_GET) at delay_loop 1
# against loopback listeners (one nginx on 0.0.0.0 answers every 127.51.x.y address).
# Reports the CPU the rvs daemon uses (% of one core, from /proc over MEASURE s) and the
# detection time of a downed server (its listener is stopped; the time until rvs logs
# "Removing service"). keepalived's checker cannot run here (no ip_vs), so these are
# rvs's absolute figures, next to the kernel's floor for the same TCP connects: a
# blocking connect+close loop (crates/rvs-check/examples/connect_floor.rs) at the same
# rate against the same addresses, whose CPU is measured the same way.
# Usage: bench/checks.sh   (needs nginx, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
M=${M:-1000}
MEASURE=${MEASURE:-20}
cargo build --release -q -p rvs
cargo build --release -q -p rvs-check --example connect_floor
W=$(mktemp -d)
chmod 755 "$W"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT
ulimit -n 20000
cat > "$W/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $W/n.pid; error_log $W/n.err; worker_rlimit_nofile 20000;
events { worker_connections 16000; }
http { access_log off; server { listen 19000 backlog=16384; location / { return 200 "ok\n"; } } }
NGX
nginx -c "$W/nginx.conf" -p "$W" & pids+=($!)
run_case() { # kind count
  local kind=$1 n=$2 conf="$W/$1.conf"
  python3 - "$kind" "$n" > "$conf" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
chk = {"tcp": "TCP_CHECK {\n            connect_timeout 1\n        }",
       "http": "HTTP_GET {\n            url {\n                path /\n            }\n            connect_timeout 1\n        }"}[kind]
out = ["global_defs {\n    router_id bench\n}\n",
       "virtual_server 127.50.1.1 8080 {\n    delay_loop 1\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n"]
for i in range(n):
    out.append(f"    real_server 127.51.{i // 250}.{i % 250 + 1} 19000 {{\n        {chk}\n    }}\n")
out.append(f"    real_server 127.52.0.1 19001 {{\n        {chk}\n    }}\n}}\n")
sys.stdout.write("".join(out))
PY
  # The server that will go down, with its own listener.
  python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.52.0.1", 19001)); s.listen(1024)
while True:
    c, _ = s.accept()
    try:
        c.recv(4096); c.sendall(b"HTTP/1.0 200 OK\r\n\r\nok\n")
    except OSError:
        pass
    c.close()
' & local victim=$!
  ./target/release/rvs run -f "$conf" --pid-file "$W/rvs.pid" --threads 1 > "$W/$kind.log" 2>&1 & local rvs=$!
  pids+=($rvs $victim)
  sleep 8   # start-up and the first (warmup-spread) round of checks
  local clk; clk=$(getconf CLK_TCK)
  local t0; t0=$(awk '{print $14+$15}' "/proc/$rvs/stat")
  sleep "$MEASURE"
  local t1; t1=$(awk '{print $14+$15}' "/proc/$rvs/stat")
  local cpu; cpu=$(echo "$t0 $t1 $clk $MEASURE" | awk '{printf "%.1f", 100*($2-$1)/$3/$4}')
  local down; down=$(date +%s.%N)
  kill $victim
  local removed=""
  for _ in $(seq 100); do
    removed=$(grep -m1 'Removing service \[127.52.0.1\]:tcp:19001' "$W/$kind.log" | awk '{print $1}' || true)
    [ -n "$removed" ] && break
    sleep 0.1
  done
  local det; det=$(python3 -c '
import sys, datetime
down = float(sys.argv[1]); s = sys.argv[2]
s = s.replace("\x1b[2m", "").replace("\x1b[0m", "")
t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() if s else float("nan")
print(f"{(t - down) * 1000:.0f}")' "$down" "$removed")
  echo "| $kind | $n | $cpu % | $(echo "$cpu $n" | awk '{printf "%.2f", $1*10000/$2}') µs | $det ms |"
  kill $rvs; wait $rvs 2>/dev/null || true
}
floor() { # the same TCP connects with nothing but the syscalls
  ./target/release/examples/connect_floor "$N" 19000 "$N" $((MEASURE + 6)) > "$W/floor.log" & local p=$!
  pids+=($p)
  sleep 3
  local clk; clk=$(getconf CLK_TCK)
  local t0; t0=$(awk '{print $14+$15}' "/proc/$p/stat")
  sleep "$MEASURE"
  local t1; t1=$(awk '{print $14+$15}' "/proc/$p/stat")
  local cpu; cpu=$(echo "$t0 $t1 $clk $MEASURE" | awk '{printf "%.1f", 100*($2-$1)/$3/$4}')
  wait $p
  echo "| floor: blocking connect+close, $N/s | $N | $cpu % | $(echo "$cpu $N" | awk '{printf "%.2f", $1*10000/$2}') µs | – |"
}
echo "| checker | real servers | CPU (one core) | CPU per check | downed server removed after |"
echo "|---|---|---|---|---|"
run_case tcp "$N"
floor
run_case http "$M"
