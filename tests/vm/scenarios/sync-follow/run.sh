# lvs_sync_daemon: the kernel's connection sync daemon follows a VRRP instance — backup
# while it is BACKUP, master once it is MASTER (alone on its link it takes over after
# Master_Down_Interval); stopping rvs stops the daemon.
set -e
ip() { /sbin/ip "$@"; }
R=$(pwd)/rvs
fail() { echo "FAIL: $*"; tail -20 /tmp/rvs.log; ipvsadm -L --daemon; exit 1; }
ip link add br1 type bridge
ip link set br1 up
ip addr add 198.18.0.1/24 dev br1
# A port on the bridge, so that br1 has carrier (VRRP tracks its interface).
ip netns add rs1
ip link add vr1 type veth peer name eth0 netns rs1
ip link set vr1 master br1 up
ip -n rs1 link set eth0 up
cat > /tmp/k.conf <<'CONF'
global_defs {
    lvs_sync_daemon br1 VI_1
}
vrrp_instance VI_1 {
    state BACKUP
    interface br1
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.18.0.60/32
    }
}
virtual_server 198.18.0.60 80 {
    lvs_sched rr
    lvs_method DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
    }
}
CONF
"$R" run -f /tmp/k.conf --dataplane ipvs --control /tmp/c.sock --pid-file /tmp/rvs.pid --log-level info 2> /tmp/rvs.log &
t=0; while ! ipvsadm -L --daemon | grep -q "backup sync daemon (mcast=br1, syncid=51"; do t=$((t+1)); [ $t -lt 40 ] || fail "no backup daemon while BACKUP"; usleep 100000; done
echo "PASS backup sync daemon while the instance is BACKUP"
t=0; while ! ipvsadm -L --daemon | grep -q "master sync daemon (mcast=br1, syncid=51"; do t=$((t+1)); [ $t -lt 100 ] || fail "no master daemon after MASTER"; usleep 100000; done
ipvsadm -L --daemon | grep -q backup && fail "the backup daemon still runs next to the master"
ip addr show dev br1 | grep -q "198.18.0.60/32" || fail "the VIP is not on br1"
echo "PASS master sync daemon once the instance is MASTER (VIP on br1)"
kill $(head -1 /tmp/rvs.pid)
t=0; while [ -n "$(ipvsadm -L --daemon)" ]; do t=$((t+1)); [ $t -lt 50 ] || fail "daemon left after stop"; usleep 100000; done
echo "PASS stopping rvs stops the sync daemon"
