#!/usr/bin/env bash
# Scale-out behind ECMP (issue #21, docs/cluster.md), measured in `rvs lab cluster`:
# a router with BIRD (ECMP, BFD), three directors (XDP, LVS-DR mh, rvs_bgp), three real
# servers. Each scenario starts a fresh lab, holds CONNS long-lived connections to the
# echo service (each checked every 100 ms: `rvs lab hold`) and probes new connections
# every 10 ms (`rvs lab probe`, each started on time: the longest gap without an answer,
# and the span of start times of the connections not answered within 500 ms — the
# outage new clients see), then:
#   spread      where the held connections went (per director, from their flow tables)
#   kill        SIGKILL of director d2
#   linkdown    d2's link down (only the router's BFD notices)
#   drain       `rvs bgp drain` on d2
#   add         d3 starts drained ("not yet in the cluster"), then is undrained
#   rs+kill     real server rs3's echo server killed while d2 is killed: broken
#               connections to rs1/rs2 counted apart
# FNAT=1: the same lab with FULLNAT (`rvs lab cluster up --fnat`: each director's local
# address held by VRRP, connection sync between all directors); spread is then skipped
# (every director lists every synced flow).
# Usage: sudo bench/cluster.sh   (needs bird2, clang at build time; CONNS, HOLD, FNAT)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-1000}
HOLD=${HOLD:-12}
FNAT=${FNAT:-0}
UP=()
[ "$FNAT" = 1 ] && UP=(--fnat)
command -v bird >/dev/null || { echo "missing bird (apt-get install bird2)"; exit 1; }
cargo build --release -q -p rvs
RVS=$PWD/target/release/rvs
P=rvsbench
NS=${P}c
D=/tmp/rvs-lab-$NS
W=$(mktemp -d)
cleanup() { "$RVS" lab cluster down --prefix $P >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT

up() {
  "$RVS" lab cluster down --prefix $P >/dev/null 2>&1 || true
  "$RVS" lab cluster up --prefix $P "${UP[@]}" >/dev/null
  for _ in $(seq 300); do
    [ "$(ip -n $NS-router route show 198.18.0.60 | grep -c ' via ')" = 3 ] && return 0
    sleep 0.1
  done
  echo "the router never had three next hops"; exit 1
}
# hold + probe in the background; $1: seconds before the event, then the event ($2...).
run() {
  local before=$1; shift
  rm -f "$W/ready"
  "$RVS" lab exec --prefix $NS client "$RVS" lab hold 198.18.0.60:7 --connections "$CONNS" \
    --seconds "$HOLD" --ready "$W/ready" > "$W/hold" 2>&1 &
  local hold=$!
  for _ in $(seq 600); do [ -f "$W/ready" ] && break; sleep 0.1; done
  "$RVS" lab exec --prefix $NS client "$RVS" lab probe 198.18.0.60:80 --seconds $((HOLD - 2)) > "$W/probe" 2>&1 &
  local probe=$!
  sleep "$before"
  "$@"
  wait $hold || true
  wait $probe || true
}
pid_of() { head -1 "$D/$1-rvs.pid"; }
flows() { # held flows per director
  "$RVS" lab cluster status --prefix $P | awk '/^d[0-9] /{d=$1} /ESTABLISHED/ && / 198.18.0.60:7 /{n[d]++} END{for (k in n) printf "%s %d  ", k, n[k]}'
}
# The event ($@), then how long until the router's route has $WANT next hops (ms).
timed() {
  local t0 t1
  t0=$(date +%s%N)
  "$@"
  for _ in $(seq 1000); do
    [ "$(ip -n $NS-router route show 198.18.0.60 | grep -c ' via ')" = "$WANT" ] && break
    sleep 0.005
  done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 )) > "$W/route"
}
report() { # scenario, notes
  local broken wait gap slow span
  broken=$(sed -n 's/.*: \([0-9]*\) broken/\1/p' "$W/hold")
  wait=$(sed -n 's/longest wait for an echo: \([0-9]*\) ms/\1/p' "$W/hold")
  gap=$(sed -n 's/.*longest gap between answers \([0-9]*\) ms.*/\1/p' "$W/probe")
  slow=$(sed -n 's/.* \([0-9]*\) not answered within.*/\1/p' "$W/probe")
  span=$(sed -n 's/.*started within a span of \([0-9]*\) ms/\1/p' "$W/probe")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(cat "$W/route" 2>/dev/null || echo -)" "$broken" "${wait:-?}" "${gap:-?}" "${slow:-?}" "${span:-?}" "$2"
  rm -f "$W/route"
}

echo "| scenario | route changed at the router after (ms) | broken of $CONNS held | held: longest wait for an echo (ms) | new: longest gap between answers (ms) | new: not answered within 500 ms | new: their start times span (ms) | notes |"
echo "|---|---|---|---|---|---|---|---|"

if [ "$FNAT" != 1 ]; then
up
rm -f "$W/ready"
"$RVS" lab exec --prefix $NS client "$RVS" lab hold 198.18.0.60:7 --connections "$CONNS" \
  --seconds 6 --ready "$W/ready" > "$W/hold" 2>&1 &
h=$!
for _ in $(seq 600); do [ -f "$W/ready" ] && break; sleep 0.1; done
sleep 2
spread=$(flows)
wait $h || true
printf '| spread | - | %s | - | - | - | - | held connections per director: %s|\n' "$(sed -n 's/.*: \([0-9]*\) broken/\1/p' "$W/hold")" "$spread"
fi

up
WANT=2 run 3 timed kill -KILL "$(pid_of d2)"
report "director SIGKILL" "d2 killed 3 s in"

up
WANT=2 run 3 timed ip -n $NS-d2 link set eth0 down
report "director link down" "BFD 100 ms × 3 at the router"

up
WANT=2 run 3 timed "$RVS" bgp drain --control "$D/d2.sock"
report "drain" "rvs bgp drain on d2"

up
"$RVS" bgp drain --control "$D/d3.sock"
for _ in $(seq 100); do [ "$(ip -n $NS-router route show 198.18.0.60 | grep -c ' via ')" = 2 ] && break; sleep 0.1; done
WANT=3 run 3 timed "$RVS" bgp undrain --control "$D/d3.sock"
report "director added" "d3 undrained 3 s in"

up
rs3() { kill "$(head -1 "$D/rs3-echo.pid")"; kill -KILL "$(pid_of d2)"; }
WANT=2 run 3 timed rs3
other=$(grep -c 'to rs[12])' "$W/hold" || true)
report "real server removed + director killed" "rs3's echo server and d2 killed together; broken to rs1/rs2: $other"
