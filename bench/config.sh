#!/usr/bin/env bash
# Config front end: time to check a 1 MB keepalived.conf (1,100 virtual servers, 4,400 real
# servers with TCP_CHECK), rvs against keepalived 2.2.7's own `keepalived -t` on the same file.
# Usage: bench/config.sh   (needs hyperfine and keepalived; run as root for keepalived -t)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rvs
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 - "$out/big.conf" <<'PY'
import sys
n=1100
s=["global_defs {\n    router_id bench\n}\n"]
for i in range(n):
    a,b=divmod(i,250)
    s.append(f"virtual_server 198.18.{a}.{b} 80 {{\n    delay_loop 6\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n    persistence_timeout 50\n")
    for r in range(4):
        s.append(f"    real_server 198.19.{a}.{(b+r*50)%250} 80 {{\n        weight {r+1}\n        TCP_CHECK {{\n            connect_port 80\n            connect_timeout 3\n            retry 3\n            delay_before_retry 3\n        }}\n    }}\n")
    s.append("}\n")
open(sys.argv[1],"w").write("".join(s))
PY
ls -l "$out/big.conf"
./target/release/rvs check -q -f "$out/big.conf"
cmds=("./target/release/rvs check -q -f $out/big.conf")
if command -v keepalived >/dev/null; then
  cmds+=("keepalived -t -f $out/big.conf -p $out/k.pid -r $out/r.pid -c $out/c.pid")
fi
hyperfine -N --warmup 3 --runs 20 "${cmds[@]}"
