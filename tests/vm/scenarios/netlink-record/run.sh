# Records rvs's netlink exchanges with a real IPVS kernel (for the codec's fixtures):
# one NAT service with two real servers, then the listing rvs adm reads.
set -e
printf 'virtual_server 198.18.1.50 80 {\n    lvs_sched wrr\n    lvs_method NAT\n    protocol TCP\n    persistence_timeout 300\n    real_server 198.18.0.11 8080 {\n        weight 2\n    }\n    real_server 198.18.0.12 8080 {\n        weight 1\n    }\n}\n' > /tmp/k.conf
RVS_IPVS_TRACE=/tmp/trace ./rvs run -C -f /tmp/k.conf --dataplane ipvs --control /tmp/c.sock --pid-file /tmp/p --log-level error &
t=0; while ! ipvsadm -Ln | grep -q 198.18.0.12; do t=$((t+1)); [ $t -lt 100 ] || exit 1; usleep 100000; done
sleep 1
kill $(head -1 /tmp/p); sleep 1
ipvsadm -Ln
cat /tmp/trace
