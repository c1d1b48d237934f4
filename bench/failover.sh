#!/usr/bin/env bash
# VRRP failover: keepalived<->keepalived, rvs<->rvs and both mixed pairs, VRRPv2 with
# advert_int 1 and VRRPv3 with advert_int 0.1, for SIGTERM, SIGKILL and link down on the
# MASTER. Two directors and a client on a bridge, all in network namespaces this script
# creates (198.18.0.0/24) and deletes. For each case it reports:
#   vip   time from the fault to the VIP on the new MASTER (`ip -ts monitor address`)
#   wire  gap on the bridge between the old MASTER's last advert and the new one's first
#         (tcpdump), and the protocol bound for it (skew after a priority-0 advert,
#         3 x advert_int + skew otherwise)
#   out   the client-visible outage: the longest gap between replies of a 10 ms ping to
#         the VIP
# Medians of --runs N (default 3). Needs root, keepalived, tcpdump, ping, python3.
# Usage: bench/failover.sh [--runs N] [--only v2|v3]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rvs
exec python3 bench/failover.py --rvs "$PWD/target/release/rvs" "$@"
