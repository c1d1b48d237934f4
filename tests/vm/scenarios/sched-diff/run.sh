# Differential scheduling: the same new connections through the kernel's IPVS and through
# `rvs sim`, scheduler by scheduler; prints one line per scheduler and every difference.
# Topology (inside the VM): the root namespace is the LVS-DR director (br0 198.18.0.1/16);
# namespace c holds the client addresses 198.18.1.N; rs1..rs3 (198.18.0.11-13, weights 1,
# 2, 3) hold the VIPs on lo and answer with busybox httpd. Each scheduler gets its own VIP
# 198.18.2.R: the kernel revives a deleted real server of the same service from its trash,
# with its connection counts, so rounds must not share a service.
set -e
# busybox sh runs its own applets before PATH: iproute2 by its full path.
ip() { /sbin/ip "$@"; }
R=$(pwd)/rvs
N=${N:-40}
ip link add br0 type bridge
ip link set br0 up
ip addr add 198.18.0.1/16 dev br0
r=1
while [ $r -le 13 ]; do ip addr add 198.18.2.$r/32 dev br0; r=$((r+1)); done
for n in c rs1 rs2 rs3; do
  ip netns add $n
  ip link add v$n type veth peer name eth0 netns $n
  ip link set v$n master br0 up
  ip -n $n link set lo up
  ip -n $n link set eth0 up
done
for k in 1 2 3; do
  ip -n rs$k addr add 198.18.0.1$k/16 dev eth0
  r=1
  while [ $r -le 13 ]; do ip -n rs$k addr add 198.18.2.$r/32 dev lo; r=$((r+1)); done
  for s in all.arp_ignore=1 all.arp_announce=2 lo.arp_ignore=1 lo.arp_announce=2; do
    ip netns exec rs$k sysctl -qw net.ipv4.conf.$s
  done
  mkdir -p /www/rs$k && echo rs$k > /www/rs$k/index.html
  ip netns exec rs$k httpd -p 80 -h /www/rs$k
done
i=1
while [ $i -le $N ]; do ip -n c addr add 198.18.1.$i/16 dev eth0; i=$((i+1)); done

round=0
fail=0
for S in rr wrr lc wlc sed nq sh dh mh lblc lblcr fo ovf; do
  round=$((round+1))
  vip=198.18.2.$round
  ipvsadm -A -t $vip:80 -s $S
  conf=conf.$S
  printf 'virtual_server %s 80 {\n    lvs_sched %s\n    lvs_method DR\n    protocol TCP\n' $vip $S > $conf
  for k in 1 2 3; do
    ipvsadm -a -t $vip:80 -r 198.18.0.1$k:80 -g -w $k
    printf '    real_server 198.18.0.1%s 80 {\n        weight %s\n    }\n' $k $k >> $conf
  done
  echo '}' >> $conf
  flows=flows.$S
  : > $flows
  i=1
  while [ $i -le $N ]; do
    echo "tcp 198.18.1.$i:$((20000 + round * 100 + i % 7)) $vip:80" >> $flows
    i=$((i+1))
  done
  rm -f ready.$S
  ip netns exec c "$R" lab flows $flows --gap-ms 30 --hold 3 --ready ready.$S 2> flows.log.$S &
  pid=$!
  t=0
  while [ ! -f ready.$S ] && [ $t -lt 600 ]; do usleep 100000; t=$((t+1)); done
  ipvsadm -Lnc > conns.$S
  # A refused connection (ovf with every server overflowing) is a decision too: rvs sim
  # must say "none" for it, which the comparison checks.
  wait $pid || true
  # kernel: "TCP 14:59 ESTABLISHED SRC VIP DEST"; rvs sim: "tcp SRC VIP -> DEST"
  awk -v lo=$((20000 + round * 100)) '$1=="TCP" { split($4, a, ":"); if (a[2] >= lo && a[2] < lo + 100) print $4, $6 }' conns.$S | sort > kernel.$S
  "$R" sim -f $conf --flows $flows | awk '{print $2, $5}' > sim.$S
  # Compare flow by flow; a connection the kernel refused (no entry) is "none", as rvs sim says.
  out=$(awk 'NR == FNR { k[$1] = $2; next } { d = ($1 in k) ? k[$1] : "none"; n++; if (d == $2) same++; else diff = diff " " $1 ":kernel=" d ",rvs=" $2 } END { printf "%d %d%s", same, n, diff }' kernel.$S sim.$S)
  same=${out%% *}; rest=${out#* }; total=${rest%% *}; diffs=${rest#"$total"}
  echo "$S: $same of $total connections scheduled identically"
  if [ "$same" != "$total" ]; then
    fail=1
    echo "  differences:$(echo "$diffs" | cut -c1-400)"
  fi
done
echo "kernel $(uname -r)"
exit $fail
