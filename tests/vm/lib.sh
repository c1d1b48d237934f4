# Shell helpers the VM scenarios share. tests/vm/run.sh copies this file into the guest
# beside each scenario's run.sh (/scenario/lib.sh); a scenario sources it: `. ./lib.sh`.

# node NAME ADDRESS: a namespace NAME on the bridge br1 (which the scenario made), with
# ADDRESS/24 on its eth0 and the bridge port pNAME.
node() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip link add "p$1" type veth peer name eth0 netns "$1"
  ip link set "p$1" master br1 up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
}
