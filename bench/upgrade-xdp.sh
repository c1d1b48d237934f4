#!/usr/bin/env bash
# What clients see when an XDP director is replaced under load, side by side in one run:
# `rvs upgrade` (the successor loads its program on the running one's pinned maps and
# swaps it into the link) against a restart (SIGTERM, wait for the exit, start the same
# command again: what `systemctl restart` does). In `rvs lab` (the seed articles' LVS-DR:
# two directors with VRRP, two real servers, rr), from the client namespace:
#   - wrk -t1 -c32 for DUR seconds through the VIP (the lab's real servers close every
#     connection after its answer, so every request is a new flow), the replacement AT
#     seconds into the run;
#   - HELD connections opened before the replacement, each halfway through its request,
#     finished after it: a flow the director forgets is rescheduled (rr) and reset.
# Usage: sudo bench/upgrade-xdp.sh   (needs root, clang at build time, wrk, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
AT=${AT:-3}
HELD=${HELD:-200}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, XDP)"; exit 1; }
for c in wrk python3; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done
cargo build --release -q -p rvs
RVS=$PWD/target/release/rvs
P=rvsbu$$
D=/tmp/rvs-lab-$P
VIP=198.18.0.50
cleanup() { "$RVS" lab down --prefix "$P" > /dev/null 2>&1 || true; }
trap cleanup EXIT
"$RVS" lab up --prefix "$P" > /dev/null
for _ in $(seq 100); do
  ip netns exec "$P-client" curl -s -m 1 -o /dev/null "http://$VIP/" && break
  sleep 0.2
done
# Opens $HELD connections with half a request, says "held", waits for $1 to exist, then
# finishes them; prints "finished broken".
cat > "$D/hold.py" <<'PY'
import os, socket, sys, time
go, n = sys.argv[1], int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.create_connection(("198.18.0.50", 80), timeout=3)
    s.sendall(b"GET / HTTP/1.0\r\n")
    conns.append(s)
print("held", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
ok = bad = 0
for s in conns:
    try:
        s.sendall(b"Host: lab\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        ok += data.startswith(b"HTTP/1.1 200")
        bad += not data.startswith(b"HTTP/1.1 200")
    except OSError:
        bad += 1
print(ok, bad, flush=True)
PY
pid_of() { head -1 "$D/dir1.rvs-pid"; }
# One run: prints "requests failed held_ok held_broken".
measure() { # $1: upgrade|restart
  rm -f "$D/go"
  ip netns exec "$P-client" python3 "$D/hold.py" "$D/go" "$HELD" > "$D/hold.out" &
  local h=$!
  for _ in $(seq 100); do grep -q held "$D/hold.out" 2>/dev/null && break; sleep 0.1; done
  ip netns exec "$P-client" wrk -t1 -c32 -d"${DUR}s" "http://$VIP/" > "$D/wrk.out" 2>&1 &
  local w=$!
  sleep "$AT"
  if [ "$1" = upgrade ]; then
    "$RVS" upgrade --control "$D/dir1.sock" > /dev/null
  else
    local p; p=$(pid_of)
    local -a argv; mapfile -d '' argv < "/proc/$p/cmdline"
    kill "$p"
    while kill -0 "$p" 2>/dev/null; do sleep 0.02; done
    setsid ip netns exec "$P-dir1" "${argv[@]}" >> "$D/dir1-rvs.log" 2>&1 < /dev/null &
  fi
  wait $w
  touch "$D/go"
  wait $h
  local req err
  req=$(awk '/requests in/ {print $1}' "$D/wrk.out")
  err=$(awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10} /Non-2xx/ {print $NF}' "$D/wrk.out" | paste -sd+ | bc)
  echo "${req:-0} ${err:-0} $(tail -1 "$D/hold.out")"
  # The next run starts with dir1 MASTER again and serving.
  for _ in $(seq 100); do
    [ -S "$D/dir1.sock" ] && ip netns exec "$P-client" curl -s -m 1 -o /dev/null "http://$VIP/" && break
    sleep 0.2
  done
  sleep 3
}
printf '| replaced by | wrk requests | failed | failed %% | held connections finished | broken |\n|---|---|---|---|---|---|\n'
for how in upgrade restart; do
  read -r req err hok hbad < <(measure "$how")
  pct=$(awk -v e="$err" -v r="$req" 'BEGIN { if (r + e > 0) printf "%.3f", 100 * e / (r + e); else print "-" }')
  printf '| %s | %s | %s | %s | %s | %s |\n' "$how" "$req" "$err" "$pct" "$hok" "$hbad"
done
