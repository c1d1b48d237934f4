# IPv6 through the kernel's IPVS programmed by rvs (--dataplane ipvs): the IPv6 service and
# real servers list byte-identically in ipvsadm and rvs adm, NAT forwards a client's
# requests to both real servers, the connection table agrees, a failed TCP_CHECK over
# IPv6 removes a real server, and stop removes the service. Topology: client
# fd00:198:18:1::100 on br0 (director fd00:198:18:1::1, VIP fd00:198:18:1::50); real
# servers fd00:198:18::11-12 on br1 (director fd00:198:18::1, their gateway).
set -e
ip() { /sbin/ip "$@"; }
R=$(pwd)/rvs
fail() { echo "FAIL: $*"; echo "--- rvs log"; tail -20 /tmp/rvs.log; ipvsadm -Ln; exit 1; }
echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
ip link add br0 type bridge; ip link set br0 up
ip link add br1 type bridge; ip link set br1 up
ip addr add fd00:198:18:1::1/64 dev br0 nodad
ip addr add fd00:198:18:1::50/128 dev br0 nodad
ip addr add fd00:198:18::1/64 dev br1 nodad
ip netns add c
ip link add vc type veth peer name eth0 netns c
ip link set vc master br0 up
ip -n c link set lo up; ip -n c link set eth0 up
ip -n c addr add fd00:198:18:1::100/64 dev eth0 nodad
for k in 1 2; do
  ip netns add rs$k
  ip link add vr$k type veth peer name eth0 netns rs$k
  ip link set vr$k master br1 up
  ip -n rs$k link set lo up; ip -n rs$k link set eth0 up
  ip -n rs$k addr add fd00:198:18::1$k/64 dev eth0 nodad
  ip -n rs$k -6 route add default via fd00:198:18::1
  mkdir -p /www/rs$k && echo rs$k > /www/rs$k/index.html
done
serve() { ip netns exec rs$1 httpd -p "[::]:8080" -h /www/rs$1; }
get() { printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec c nc fd00:198:18:1::50 80 | tail -1; }
serve 1; serve 2
cat > /tmp/k.conf <<'CONF'
virtual_server fd00:198:18:1::50 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server fd00:198:18::11 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server fd00:198:18::12 8080 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
CONF
"$R" run -C -f /tmp/k.conf --dataplane ipvs --control /tmp/c.sock --pid-file /tmp/rvs.pid --log-level info 2> /tmp/rvs.log &
export RVS_CONTROL=/tmp/c.sock
t=0; while ! ipvsadm -Ln | grep -q "fd00:198:18::12\]:8080"; do t=$((t+1)); [ $t -lt 100 ] || fail "no table"; usleep 100000; done
ipvsadm -Ln > /tmp/kernel.txt
"$R" adm -Ln > /tmp/rvs.txt
cat /tmp/kernel.txt
cmp -s /tmp/kernel.txt /tmp/rvs.txt || { echo "--- rvs adm -Ln:"; cat /tmp/rvs.txt; fail "ipvsadm -Ln and rvs adm -Ln differ (IPv6)"; }
echo "PASS ipvsadm -Ln equals rvs adm -Ln for an IPv6 service"
seen=""
for i in 1 2 3; do seen="$seen $(get)"; done
case "$seen" in *rs1*rs2*|*rs2*rs1*) echo "PASS IPv6 NAT through kernel IPVS:$seen" ;; *) fail "IPv6 NAT answers:$seen" ;; esac
sleep 2
ipvsadm -Lnc | awk '{$2=""; print}' | sort > /tmp/kc.txt
"$R" adm -Lnc | awk '{$2=""; print}' | sort > /tmp/rc.txt
cmp -s /tmp/kc.txt /tmp/rc.txt || { cat /tmp/kc.txt; echo ---; cat /tmp/rc.txt; fail "-Lnc differs (IPv6)"; }
ipvsadm -Ln > /tmp/kernel.txt
"$R" adm -Ln > /tmp/rvs.txt
cmp -s /tmp/kernel.txt /tmp/rvs.txt || { cat /tmp/kernel.txt; echo ---; cat /tmp/rvs.txt; fail "-Ln with counts differs (IPv6)"; }
echo "PASS rvs adm -Ln and -Lnc show the kernel's IPv6 counts and connections"
kill $(ip netns pids rs1 | head -1)
t=0; while ipvsadm -Ln | grep -q "fd00:198:18::11\]:8080"; do t=$((t+1)); [ $t -lt 100 ] || fail "rs1 not removed after its IPv6 check failed"; usleep 100000; done
echo "PASS a failed TCP_CHECK over IPv6 removed [fd00:198:18::11]:8080"
kill $(head -1 /tmp/rvs.pid)
t=0; while ipvsadm -Ln | grep -q "fd00:198:18:1::50"; do t=$((t+1)); [ $t -lt 100 ] || fail "service left after stop"; usleep 100000; done
echo "PASS stop removed the IPv6 service"
