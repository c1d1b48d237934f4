# rvs run --dataplane ipvs against the kernel's IPVS: the table it programs lists the same
# in ipvsadm and rvs adm; NAT forwarding works end to end; a failed check removes the real
# server from the kernel and recovery restores it; a reload changes other real servers
# without touching an unchanged one (its kernel counters keep counting); stop removes
# what rvs added. Topology: NAT client 198.18.1.100 on br0 (director 198.18.1.1, VIP
# 198.18.1.50); real servers 198.18.0.11-12 on br1 (director 198.18.0.1, their gateway);
# DR: VIP 198.18.0.51 on br1, a second client 198.18.0.100 on br1, the real servers hold
# the VIP on lo with arp_ignore/arp_announce (as the seed articles configure them) and
# answer that client directly.
set -e
ip() { /sbin/ip "$@"; }
R=$(pwd)/rvs
fail() { echo "FAIL: $*"; echo "--- rvs log"; tail -20 /tmp/rvs.log; ipvsadm -Ln; exit 1; }
ip link add br0 type bridge; ip link set br0 up
ip link add br1 type bridge; ip link set br1 up
ip addr add 198.18.1.1/24 dev br0
ip addr add 198.18.1.50/32 dev br0
ip addr add 198.18.0.51/32 dev br1
ip addr add 198.18.0.1/24 dev br1
echo 1 > /proc/sys/net/ipv4/ip_forward
ip netns add c
ip link add vc type veth peer name eth0 netns c
ip link set vc master br0 up
ip -n c link set lo up; ip -n c link set eth0 up
ip -n c addr add 198.18.1.100/24 dev eth0
ip netns add c2
ip link add vc2 type veth peer name eth0 netns c2
ip link set vc2 master br1 up
ip -n c2 link set lo up; ip -n c2 link set eth0 up
ip -n c2 addr add 198.18.0.100/24 dev eth0
for k in 1 2; do
  ip netns add rs$k
  ip link add vr$k type veth peer name eth0 netns rs$k
  ip link set vr$k master br1 up
  ip -n rs$k link set lo up; ip -n rs$k link set eth0 up
  ip -n rs$k addr add 198.18.0.1$k/24 dev eth0
  ip -n rs$k route add default via 198.18.0.1
  ip -n rs$k addr add 198.18.0.51/32 dev lo
  for s in all.arp_ignore=1 all.arp_announce=2 lo.arp_ignore=1 lo.arp_announce=2; do
    ip netns exec rs$k sysctl -qw net.ipv4.conf.$s
  done
  mkdir -p /www/rs$k && echo rs$k > /www/rs$k/index.html
  ip netns exec rs$k httpd -p 80 -h /www/rs$k
done
serve() { ip netns exec rs$1 httpd -p 8080 -h /www/rs$1; }
get() { printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec ${2:-c} nc ${1:-198.18.1.50} 80 | tail -1; }
serve 1; serve 2
conf=/tmp/k.conf
write_conf() { # $1: the real servers of the port-80 service
  {
    echo "global_defs {"
    echo "    lvs_timeouts tcp 7200 udp 60"
    echo "}"
    echo "virtual_server 198.18.1.50 80 {"
    echo "    delay_loop 1"
    echo "    lvs_sched rr"
    echo "    lvs_method NAT"
    echo "    protocol TCP"
    for rs in $1; do
      echo "    real_server $rs 8080 {"
      echo "        weight 1"
      echo "        TCP_CHECK {"
      echo "            connect_timeout 1"
      echo "        }"
      echo "    }"
    done
    echo "}"
    echo "virtual_server 198.18.0.51 80 {"
    echo "    lvs_sched rr"
    echo "    lvs_method DR"
    echo "    protocol TCP"
    for rs in 198.18.0.11 198.18.0.12; do
      echo "    real_server $rs 80 {"
      echo "        weight 1"
      echo "    }"
    done
    echo "}"
    echo "virtual_server 198.18.1.50 443 {"
    echo "    lvs_sched wlc"
    echo "    persistence_timeout 300"
    echo "    lvs_method NAT"
    echo "    protocol TCP"
    echo "    real_server 198.18.0.11 8443 {"
    echo "        weight 3"
    echo "    }"
    echo "}"
  } > $conf
}
write_conf "198.18.0.11 198.18.0.12"
"$R" run -C -f $conf --dataplane ipvs --control /tmp/c.sock --pid-file /tmp/rvs.pid --log-level info 2> /tmp/rvs.log &
export RVS_CONTROL=/tmp/c.sock
t=0; while ! ipvsadm -Ln | grep -q "198.18.0.12:8080"; do t=$((t+1)); [ $t -lt 100 ] || { cat /tmp/rvs.log; fail "no table"; }; usleep 100000; done

ipvsadm -Ln > /tmp/kernel.txt
"$R" adm -Ln > /tmp/rvs.txt
cat /tmp/kernel.txt
if ! cmp -s /tmp/kernel.txt /tmp/rvs.txt; then echo "--- rvs adm -Ln:"; cat /tmp/rvs.txt; fail "ipvsadm -Ln and rvs adm -Ln differ"; fi
echo "PASS ipvsadm -Ln equals rvs adm -Ln"
[ "$(ipvsadm -L --timeout)" = "Timeout (tcp tcpfin udp): 7200 120 60" ] || fail "lvs_timeouts: $(ipvsadm -L --timeout)"
echo "PASS lvs_timeouts written to the kernel"

seen=""
for i in 1 2 3 4; do seen="$seen $(get)"; done
case "$seen" in *rs1*rs2*|*rs2*rs1*) echo "PASS NAT through kernel IPVS:$seen" ;; *) fail "NAT answers:$seen" ;; esac
seen=""
for i in 1 2 3 4; do seen="$seen $(get 198.18.0.51 c2)"; done
case "$seen" in *rs1*rs2*|*rs2*rs1*) echo "PASS DR through kernel IPVS:$seen" ;; *) fail "DR answers:$seen" ;; esac

# The kernel's connection counts and connection table, through rvs adm (copied each second).
sleep 2
ipvsadm -Ln > /tmp/kernel.txt
"$R" adm -Ln > /tmp/rvs.txt
cmp -s /tmp/kernel.txt /tmp/rvs.txt || { cat /tmp/kernel.txt; echo ---; cat /tmp/rvs.txt; fail "-Ln with connection counts differs"; }
grep -q "Masq    1      0          [1-9]" /tmp/rvs.txt || { cat /tmp/rvs.txt; fail "no inactive connections shown"; }
ipvsadm -Lnc | awk '{$2=""; print}' | sort > /tmp/kc.txt
"$R" adm -Lnc | awk '{$2=""; print}' | sort > /tmp/rc.txt
cmp -s /tmp/kc.txt /tmp/rc.txt || { cat /tmp/kc.txt; echo ---; cat /tmp/rc.txt; fail "-Lnc differs"; }
# --persistent-conn: the title lines byte for byte (no persistence engine: entries as above).
ipvsadm -Lnc --persistent-conn | head -2 > /tmp/kp.txt
"$R" adm -Lnc --persistent-conn | head -2 > /tmp/rp.txt
cmp -s /tmp/kp.txt /tmp/rp.txt || { cat -A /tmp/kp.txt; echo ---; cat -A /tmp/rp.txt; fail "-Lnc --persistent-conn title differs"; }
echo "PASS rvs adm -Ln and -Lnc show the kernel's counts and connections"

# Take both servers down and bring rs2 back: rs1's check fails.
for p in $(pidof httpd); do kill $p; done
serve 2
t=0; while ipvsadm -Ln | grep -q "198.18.0.11:8080"; do t=$((t+1)); [ $t -lt 100 ] || fail "rs1 not removed after its check failed"; usleep 100000; done
echo "PASS a failed TCP_CHECK removed 198.18.0.11:8080 from the kernel"
serve 1
t=0; while ! ipvsadm -Ln | grep -q "198.18.0.11:8080"; do t=$((t+1)); [ $t -lt 100 ] || fail "rs1 not restored"; usleep 100000; done
echo "PASS recovery restored it"

for i in 1 2 3 4; do get > /dev/null; done
before=$(ipvsadm -Ln --stats --exact | awk '$2 == "198.18.0.11:8080" {print $3}')
write_conf "198.18.0.11 198.18.0.13"
kill -HUP $(head -1 /tmp/rvs.pid)
t=0; while ipvsadm -Ln | grep -q "198.18.0.12:8080"; do t=$((t+1)); [ $t -lt 100 ] || fail "reload did not remove rs2"; usleep 100000; done
after=$(ipvsadm -Ln --stats --exact | awk '$2 == "198.18.0.11:8080" {print $3}')
ipvsadm -Ln | grep -q "198.18.0.13:8080" || echo "(198.18.0.13 was added and its check has not passed: out of the pool)"
[ -n "$before" ] && [ "$after" -ge "$before" ] && [ "$before" -gt 0 ] || fail "unchanged rs1 counters went from $before to $after"
echo "PASS reload removed rs2 and kept rs1 untouched (its kernel Conns $before -> $after, not reset)"

# -Z zeroes the kernel's counters. The kernel folds its per-CPU counters into the figures
# it zeroes every 2 s (estimator), so let the last traffic settle first.
sleep 3
"$R" adm -Z -t 198.18.1.50:80 || fail "-Z refused"
z=$(ipvsadm -Ln --stats --exact | awk '$1 == "TCP" && $2 == "198.18.1.50:80" {print $3}')
[ "$z" = "0" ] || fail "kernel counters not zeroed: $z"
echo "PASS rvs adm -Z zeroes the kernel's counters"

# The connection sync daemon, started and stopped through rvs adm.
"$R" adm --start-daemon master --mcast-interface br1 --syncid 5 || fail "start-daemon refused"
ipvsadm -L --daemon > /tmp/kd.txt
"$R" adm -L --daemon > /tmp/rd.txt
cat /tmp/kd.txt
grep -q "master sync daemon (mcast=br1, syncid=5" /tmp/kd.txt || fail "no master sync daemon in the kernel"
cmp -s /tmp/kd.txt /tmp/rd.txt || { cat /tmp/rd.txt; fail "-L --daemon differs"; }
out=$("$R" adm --start-daemon master --mcast-interface br1 2>&1) && fail "a second master started"
[ "$out" = "Daemon has already run" ] || fail "second start said: $out"
"$R" adm --stop-daemon master || fail "stop-daemon refused"
[ -z "$(ipvsadm -L --daemon)" ] || fail "sync daemon still running"
echo "PASS the sync daemon starts, lists as ipvsadm lists it, refuses a second start, stops"

kill $(head -1 /tmp/rvs.pid)
t=0; while ipvsadm -Ln | grep -q "198.18.1.50"; do t=$((t+1)); [ $t -lt 100 ] || fail "services left after stop"; usleep 100000; done
echo "PASS stop removed rvs's services"


# The keepalived personality programs the kernel's IPVS, as keepalived does.
ln -s "$R" /tmp/keepalived
/tmp/keepalived -n -C -f $conf -p /tmp/ka.pid 2> /tmp/ka.log &
# The services reach the kernel before the pid file is written: wait for both.
t=0; while ! ipvsadm -Ln | grep -q "198.18.1.50:80" || [ ! -s /tmp/ka.pid ]; do t=$((t+1)); [ $t -lt 100 ] || { cat /tmp/ka.log; fail "keepalived personality did not program IPVS"; }; usleep 100000; done
kill $(head -1 /tmp/ka.pid)
t=0; while ipvsadm -Ln | grep -q "198.18.1.50"; do t=$((t+1)); [ $t -lt 100 ] || fail "keepalived personality left services"; usleep 100000; done
echo "PASS keepalived -n -f programs kernel IPVS and cleans up at stop"

# lvs_flush empties the kernel's table at start (a service rvs did not make goes too);
# lvs_flush_on_stop empties it at stop (one added by hand meanwhile goes too). Without
# them, as above, rvs touches only its own services.
ipvsadm -A -t 198.18.9.9:99 -s rr
write_conf "198.18.0.11"
{ printf 'global_defs {\n    lvs_flush\n    lvs_flush_on_stop\n}\n'; sed '1,3d' $conf; } > /tmp/kf.conf
"$R" run -C -f /tmp/kf.conf --dataplane ipvs --control /tmp/c2.sock --pid-file /tmp/rvs2.pid --log-level info 2> /tmp/rvs2.log &
t=0; while ! ipvsadm -Ln | grep -q "198.18.1.50:80" || [ ! -s /tmp/rvs2.pid ]; do t=$((t+1)); [ $t -lt 100 ] || { cat /tmp/rvs2.log; fail "lvs_flush: no table"; }; usleep 100000; done
ipvsadm -Ln | grep -q "198.18.9.9:99" && { cat /tmp/rvs2.log; fail "lvs_flush left a service rvs did not make"; }
echo "PASS lvs_flush emptied the kernel's table at start"
ipvsadm -A -t 198.18.9.10:99 -s rr
kill $(head -1 /tmp/rvs2.pid)
t=0; while [ -n "$(ipvsadm -Ln | grep -E '^(TCP|UDP)')" ]; do t=$((t+1)); [ $t -lt 100 ] || { cat /tmp/rvs2.log; fail "lvs_flush_on_stop left services"; }; usleep 100000; done
echo "PASS lvs_flush_on_stop emptied the kernel's table at stop"

# net_namespace_ipvs: rvs runs here and programs the IPVS tables of another namespace
# (keepalived's keyword); this namespace's table stays empty.
ip netns add ipvsns || fail "ip netns add"
# (the kernel refuses real servers while the namespace has no local routing table yet)
ip -n ipvsns link set lo up
{ printf 'global_defs {\n    net_namespace_ipvs ipvsns\n}\n'; sed '1,3d' $conf; } > /tmp/kn.conf
"$R" run -C -f /tmp/kn.conf --dataplane ipvs --control /tmp/c3.sock --pid-file /tmp/rvs3.pid --log-level info 2> /tmp/rvs3.log &
t=0; while ! ip netns exec ipvsns ipvsadm -Ln | grep -q "198.18.1.50:80" || [ ! -s /tmp/rvs3.pid ]; do t=$((t+1)); [ $t -lt 100 ] || { cat /tmp/rvs3.log; fail "net_namespace_ipvs: no service in the namespace"; }; usleep 100000; done
ipvsadm -Ln | grep -q "198.18.1.50" && { cat /tmp/rvs3.log; fail "net_namespace_ipvs: the service is in the daemon's own table"; }
kill $(head -1 /tmp/rvs3.pid)
t=0; while ip netns exec ipvsns ipvsadm -Ln | grep -q "198.18.1.50"; do t=$((t+1)); [ $t -lt 100 ] || { cat /tmp/rvs3.log; fail "net_namespace_ipvs: services left at stop"; }; usleep 100000; done
echo "PASS net_namespace_ipvs programs another namespace's IPVS and cleans up there"
