# The IPVS connection sync protocol between the kernel's sync daemon and rvs's (XDP data
# plane), both ways: a kernel IPVS director (namespace k) is master, an rvs XDP director
# (namespace x) backup; the client's 20 long-lived connections go through k, rvs learns
# each with the kernel's real server, and when the client's traffic moves to x none
# breaks (rr, which alone would disagree). Then rvs is master and the kernel backup:
# the kernel's table lists rvs's connections with the same real servers.
set -e
ip() { /sbin/ip "$@"; }
R=$(pwd)/rvs
VIP=198.18.0.60
X="env RVS_CONTROL=/tmp/x.sock $R"
fail() {
  echo "FAIL: $*"
  tail -20 /tmp/rvs.log
  echo "--- kernel"; ip netns exec k ipvsadm -Lcn; ip netns exec k ipvsadm -L --daemon
  echo "--- rvs"; $X adm -Lcn; $X adm -L --daemon
  cat /tmp/hold.out 2>/dev/null
  exit 1
}
ip link add br1 type bridge
ip link set br1 up
. ./lib.sh
node c 198.18.0.100
node k 198.18.0.1
node x 198.18.0.2
node rs1 198.18.0.11
node rs2 198.18.0.12
for r in rs1 rs2; do
  ip -n $r addr add $VIP/32 dev lo
  ip netns exec $r sysctl -qw net.ipv4.conf.all.arp_ignore=1
  ip netns exec $r sysctl -qw net.ipv4.conf.all.arp_announce=2
  ip netns exec $r "$R" lab echo $r 0.0.0.0:7 > /dev/null 2>&1 &
done
# The kernel's director: IPVS, LVS-DR, rr.
ip -n k addr add $VIP/32 dev lo
ip netns exec k ipvsadm -A -t $VIP:7 -s rr
ip netns exec k ipvsadm -a -t $VIP:7 -r 198.18.0.11 -g
ip netns exec k ipvsadm -a -t $VIP:7 -r 198.18.0.12 -g
# rvs's: the XDP data plane, the same service.
cat > /tmp/x.conf <<CONF
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
ip netns exec x "$R" run -C -f /tmp/x.conf --dataplane xdp --xdp-iface eth0 \
  --control /tmp/x.sock --pid-file /tmp/x.pid --log-level info > /tmp/rvs.log 2>&1 &
t=0; while ! $X adm -Ln 2>/dev/null | grep -q "$VIP:7"; do t=$((t+1)); [ $t -lt 300 ] || fail "rvs did not start"; usleep 100000; done
ip netns exec k ipvsadm --start-daemon master --mcast-interface eth0 --syncid 7
$X adm --start-daemon backup --mcast-interface eth0 --syncid 7 || fail "rvs refused the backup daemon"
$X adm -L --daemon | grep -q "backup sync daemon (mcast=eth0, syncid=7" || fail "no backup daemon listed"
ip -n c route add $VIP/32 dev eth0
mac() { ip -n "$1" link show eth0 | awk '/link\/ether/{print $2}'; }
via() { ip -n c neigh replace $VIP lladdr "$(mac "$1")" dev eth0 nud permanent; }
conns() { awk '/ESTABLISHED/{print $4, $6}' | sort; }

# 1. kernel master -> rvs backup.
via k
rm -f /tmp/ready
ip netns exec c "$R" lab hold $VIP:7 --connections 20 --seconds 14 --ready /tmp/ready > /tmp/hold.out 2>&1 &
hold=$!
t=0; while [ ! -f /tmp/ready ]; do t=$((t+1)); [ $t -lt 200 ] || fail "the connections did not open"; usleep 100000; done
t=0
while :; do
  k=$(ip netns exec k ipvsadm -Lcn | conns)
  r=$($X adm -Lcn | conns)
  [ "$(echo "$k" | grep -c .)" = 20 ] && [ "$k" = "$r" ] && break
  t=$((t+1)); [ $t -lt 100 ] || fail "rvs did not learn the kernel's 20 connections"
  usleep 100000
done
echo "PASS rvs (backup) learns the kernel master's 20 connections with their real servers"
via x
wait $hold || fail "connections broke after the failover to rvs"
grep -q ": 0 broken" /tmp/hold.out || fail "connections broke after the failover to rvs"
echo "PASS the 20 connections go on through rvs after the failover"

# 2. rvs master -> kernel backup.
ip netns exec k ipvsadm --stop-daemon master
$X adm --stop-daemon backup
$X adm --start-daemon master --mcast-interface eth0 --syncid 7 || fail "rvs refused the master daemon"
ip netns exec k ipvsadm --start-daemon backup --mcast-interface eth0 --syncid 7
rm -f /tmp/ready
# (rvs walks its flow table every second or more — more under TCG — before it sends.)
ip netns exec c "$R" lab hold $VIP:7 --connections 20 --seconds 40 --ready /tmp/ready > /tmp/hold.out 2>&1 &
hold=$!
t=0; while [ ! -f /tmp/ready ]; do t=$((t+1)); [ $t -lt 200 ] || fail "the connections did not open"; usleep 100000; done
t=0
while :; do
  r=$($X adm -Lcn | conns)
  k=$(ip netns exec k ipvsadm -Lcn | conns)
  [ "$(echo "$r" | grep -c .)" = 20 ] && [ "$k" = "$r" ] && break
  t=$((t+1)); [ $t -lt 350 ] || fail "the kernel did not learn rvs's 20 connections"
  usleep 100000
done
echo "PASS the kernel (backup) learns rvs master's 20 connections with their real servers"
kill $hold 2>/dev/null || true
kill "$(head -1 /tmp/x.pid)"
