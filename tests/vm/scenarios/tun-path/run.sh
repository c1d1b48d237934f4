# LVS-TUN along its forwarding path, against real IP-in-IP real servers (this host's
# kernel has no ipip; the VM's has): `rvs doctor` probes each real server with a SYN for
# the VIP inside IP-in-IP, and `rvs_forwarding_path_check` takes out, with the reason,
# the real servers that pass a plain TCP_CHECK but cannot take tunnelled clients.
# Topology (one bridge, br1): director 198.18.0.1 with the VIP 198.18.0.52; a client
# 198.18.0.100; rs1 198.18.0.11 set up right (VIP on tunl0, rp_filter 0, ARP silenced);
# rs2 without the VIP on tunl0; rs3 with it but strict reverse-path filtering (the
# decapsulated packet arrives on tunl0 from an address routed by eth0: dropped).
set -e
ip() { /sbin/ip "$@"; }
R=$(pwd)/rvs
VIP=198.18.0.52
fail() { echo "FAIL: $*"; echo "--- rvs log"; tail -20 /tmp/rvs.log 2>/dev/null; ipvsadm -Ln; exit 1; }
ip link add br1 type bridge; ip link set br1 up
ip addr add 198.18.0.1/24 dev br1
ip addr add $VIP/32 dev br1
ip netns add c
ip link add vc type veth peer name eth0 netns c
ip link set vc master br1 up
ip -n c link set lo up; ip -n c link set eth0 up
ip -n c addr add 198.18.0.100/24 dev eth0
for k in 1 2 3; do
  ip netns add rs$k
  ip link add vr$k type veth peer name eth0 netns rs$k
  ip link set vr$k master br1 up
  ip -n rs$k link set lo up; ip -n rs$k link set eth0 up
  ip -n rs$k addr add 198.18.0.1$k/24 dev eth0
  ip -n rs$k link set tunl0 up || fail "no tunl0 in rs$k (ipip module)"
  for s in all.arp_ignore=1 all.arp_announce=2 all.rp_filter=0 tunl0.rp_filter=0; do
    ip netns exec rs$k sysctl -qw net.ipv4.conf.$s
  done
  mkdir -p /www/rs$k && echo rs$k > /www/rs$k/index.html
  ip netns exec rs$k httpd -p 80 -h /www/rs$k
done
ip -n rs1 addr add $VIP/32 dev tunl0
ip -n rs3 addr add $VIP/32 dev tunl0
ip netns exec rs3 sysctl -qw net.ipv4.conf.all.rp_filter=1
ip netns exec rs3 sysctl -qw net.ipv4.conf.tunl0.rp_filter=1
conf=/tmp/k.conf
{
  echo "global_defs {"
  echo "    rvs_forwarding_path_check"
  echo "}"
  echo "virtual_server $VIP 80 {"
  echo "    delay_loop 1"
  echo "    lvs_sched rr"
  echo "    lvs_method TUN"
  echo "    protocol TCP"
  for k in 1 2 3; do
    echo "    real_server 198.18.0.1$k 80 {"
    echo "        weight 1"
    echo "        TCP_CHECK {"
    echo "            connect_timeout 1"
    echo "        }"
    echo "    }"
  done
  echo "}"
} > $conf

"$R" doctor --json --listen 0 --wait 1 -f $conf > /tmp/doctor.json && fail "doctor found no problem"
cat /tmp/doctor.json
"$R" doctor --listen 0 --wait 1 -f $conf > /tmp/doctor.txt || true
cat /tmp/doctor.txt
grep -q "ok       real server 198.18.0.11:80 of $VIP:80: answers on the VIP $VIP:80 through an IP-in-IP tunnel" /tmp/doctor.txt || fail "rs1 not found right"
grep -q "PROBLEM  real server 198.18.0.12:80 of $VIP:80: forwarding path check: .* inside IP-in-IP" /tmp/doctor.txt || fail "rs2 without the VIP not found"
grep -q "PROBLEM  real server 198.18.0.13:80 of $VIP:80: forwarding path check: .* inside IP-in-IP" /tmp/doctor.txt || fail "rs3 with rp_filter not found"
grep -q "fix: on 198.18.0.12: modprobe ipip; ip link set tunl0 up; ip addr add $VIP/32 dev tunl0" /tmp/doctor.txt || fail "no fix for rs2"
grep -q "^2 problems" /tmp/doctor.txt || fail "not exactly 2 problems"
echo "PASS rvs doctor probes LVS-TUN real servers through IP-in-IP"
grep -q "warning  real server 198.18.0.11:80 of $VIP:80: tunnelled packets are 20 bytes longer: the clients' 1500-byte packets" /tmp/doctor.txt || fail "no MTU warning"
echo "PASS rvs doctor warns that full-size packets do not fit the tunnel"

"$R" run -C -f $conf --dataplane ipvs --control /tmp/c.sock --pid-file /tmp/rvs.pid --log-level info 2> /tmp/rvs.log &
t=0; while ! ipvsadm -Ln | grep -q "198.18.0.11:80"; do t=$((t+1)); [ $t -lt 150 ] || fail "rs1 not in the table"; usleep 100000; done
sleep 3
ipvsadm -Ln
ipvsadm -Ln | grep -q "198.18.0.12:80" && fail "rs2 (no VIP on tunl0) is in the table"
ipvsadm -Ln | grep -q "198.18.0.13:80" && fail "rs3 (rp_filter) is in the table"
grep -q "198.18.0.12.*inside IP-in-IP" /tmp/rvs.log || fail "no reason logged for rs2"
echo "PASS rvs_forwarding_path_check keeps out the TUN real servers that cannot take tunnelled clients"
seen=""
for i in 1 2 3; do seen="$seen $(printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec c nc $VIP 80 | tail -1)"; done
[ "$seen" = " rs1 rs1 rs1" ] || fail "through kernel IPVS TUN:$seen"
echo "PASS clients reach rs1 through kernel IPVS TUN:$seen"
kill $(head -1 /tmp/rvs.pid)
wait
