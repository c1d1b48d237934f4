# The classic LVS pair, keepalived beside rvs on the same kernel IPVS (issue #21's
# comparison): two directors d1 (MASTER) and d2 (BACKUP) hold the VIP by VRRP
# (advert_int 1) and balance it with IPVS (LVS-DR, rr) over two real servers; the same
# keepalived.conf runs under keepalived 2.2.7 and under `rvs run --dataplane ipvs`, with
# and without `lvs_sync_daemon`. 40 long-lived connections are held through d1's link
# going down (a director lost): broken ones are counted (a connection that gets no echo
# within 10 s), with the longest wait for an echo, the VIP's move to d2 and the outage new
# connections see (`rvs lab probe`). Expected of both: with sync none breaks, without it
# every one does (d2 has no entry for them: its IPVS hands their packets to its own
# stack, which resets them).
set -e
ip() { /sbin/ip "$@"; }
R=$(pwd)/rvs
VIP=198.18.0.60
N=40
fail() {
  echo "FAIL: $*"
  for f in /tmp/d1.log /tmp/d2.log /tmp/hold.out /tmp/probe.out; do echo "--- $f"; tail -20 "$f" 2>/dev/null; done
  for d in d1 d2; do echo "--- $d"; ip netns exec $d ipvsadm -Ln 2>&1; ip netns exec $d ipvsadm -L --daemon 2>&1; ip -n $d addr show eth0 2>&1; done
  exit 1
}
ip link add br1 type bridge
ip link set br1 up
. ./lib.sh
node c 198.18.0.100
node rs1 198.18.0.11
node rs2 198.18.0.12
for r in rs1 rs2; do
  ip -n $r addr add $VIP/32 dev lo
  ip netns exec $r sysctl -qw net.ipv4.conf.all.arp_ignore=1
  ip netns exec $r sysctl -qw net.ipv4.conf.all.arp_announce=2
  ip netns exec $r "$R" lab echo $r 0.0.0.0:7 > /dev/null 2>&1 &
done
conf() { # director state priority sync(on|off)
  {
    echo "global_defs {"
    echo "    router_id $1"
    [ "$4" = on ] && echo "    lvs_sync_daemon eth0 VI_1"
    echo "}"
    cat <<CONF
vrrp_instance VI_1 {
    state $2
    interface eth0
    virtual_router_id 51
    priority $3
    advert_int 1
    virtual_ipaddress {
        $VIP/32
    }
}
virtual_server $VIP 7 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 7 {
    }
    real_server 198.18.0.12 7 {
    }
}
CONF
  } > "/tmp/$1.conf"
}
start() { # impl director
  case "$1" in
    keepalived) ip netns exec "$2" keepalived -n -l -D -f "/tmp/$2.conf" -p "/tmp/$2.pid" \
                  -r "/tmp/$2-vrrp.pid" -c "/tmp/$2-check.pid" > "/tmp/$2.log" 2>&1 & ;;
    rvs) ip netns exec "$2" "$R" run -f "/tmp/$2.conf" --dataplane ipvs --control "/tmp/$2.sock" \
           --pid-file "/tmp/$2.pid" --log-level info > "/tmp/$2.log" 2>&1 & ;;
  esac
}
has_vip() { ip -n "$1" addr show eth0 | grep -q " $VIP/32"; }
wait_for() { # tenths-of-a-second what command...
  local n=$1 what=$2 t=0; shift 2
  while ! "$@"; do t=$((t + 1)); [ $t -lt "$n" ] || fail "$what"; usleep 100000; done
}
service_in() { ip netns exec "$1" ipvsadm -Ln | grep -q "TCP  $VIP:7 rr"; }
daemon_in() { ip netns exec "$1" ipvsadm -L --daemon | grep -q "$2 sync daemon"; }
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; } # 10 ms steps

run() { # impl sync
  local impl=$1 sync=$2 t0 moved broken wait span
  for d in d1 d2; do ip netns del $d 2>/dev/null || true; done
  node d1 198.18.0.1
  node d2 198.18.0.2
  conf d1 MASTER 150 "$sync"
  conf d2 BACKUP 100 "$sync"
  start "$impl" d1
  start "$impl" d2
  wait_for 300 "$impl: d1 never held the VIP" has_vip d1
  wait_for 100 "$impl: d1 has no IPVS service" service_in d1
  wait_for 100 "$impl: d2 has no IPVS service" service_in d2
  if [ "$sync" = on ]; then
    wait_for 100 "$impl: no master sync daemon on d1" daemon_in d1 master
    wait_for 100 "$impl: no backup sync daemon on d2" daemon_in d2 backup
  fi
  has_vip d2 && fail "$impl: both directors hold the VIP"
  ip -n c neigh flush dev eth0
  rm -f /tmp/ready
  ip netns exec c "$R" lab hold $VIP:7 --connections $N --seconds 16 --timeout 10 --ready /tmp/ready > /tmp/hold.out 2>&1 &
  local hold=$!
  wait_for 300 "$impl: the connections did not open" test -f /tmp/ready
  ip netns exec c "$R" lab probe $VIP:7 --seconds 10 > /tmp/probe.out 2>&1 &
  local probe=$!
  # The kernel's sync master sends a connection after its third packet, in batches.
  sleep 3
  t0=$(ms)
  ip -n d1 link set eth0 down
  t=0; while ! has_vip d2; do t=$((t + 1)); [ $t -lt 2000 ] || fail "$impl: d2 never took the VIP"; usleep 10000; done
  moved=$(( $(ms) - t0 ))
  wait $hold || true
  wait $probe || true
  broken=$(sed -n 's/.*: \([0-9]*\) broken/\1/p' /tmp/hold.out)
  wait=$(sed -n 's/longest wait for an echo: \([0-9]*\) ms/\1/p' /tmp/hold.out)
  span=$(sed -n 's/.*started within a span of \([0-9]*\) ms/\1/p' /tmp/probe.out)
  echo "RESULT $impl sync=$sync: broken $broken of $N, VIP on d2 after $moved ms, longest wait for an echo $wait ms, new connections not answered within 500 ms started within $span ms"
  for d in d1 d2; do kill "$(head -1 /tmp/$d.pid)" 2>/dev/null || true; done
  for d in d1 d2; do
    t=0; while [ -e "/proc/$(head -1 /tmp/$d.pid 2>/dev/null || echo 0)" ] && [ $t -lt 100 ]; do t=$((t + 1)); usleep 100000; done
  done
  rm -f /tmp/d1.pid /tmp/d2.pid
  eval "broken_${impl}_$sync=$broken"
}
for impl in keepalived rvs; do
  for sync in on off; do run $impl $sync; done
done
[ "$broken_keepalived_on" = 0 ] || fail "keepalived with sync: $broken_keepalived_on broken"
echo "PASS keepalived + IPVS with lvs_sync_daemon: no connection broken by the failover"
[ "$broken_keepalived_off" = $N ] || fail "keepalived without sync: $broken_keepalived_off broken, expected $N"
echo "PASS keepalived + IPVS without sync: every connection broken by the failover"
[ "$broken_rvs_on" = 0 ] && [ "$broken_rvs_off" = $N ] \
  || fail "rvs: $broken_rvs_on broken with sync, $broken_rvs_off without (keepalived: 0 and $N)"
echo "PASS rvs on the same file and kernel: the same (0 with sync, $N without)"
