# The VM works: IPVS is there, ipvsadm and rvs run.
set -e
ipvsadm -A -t 198.18.0.50:80 -s rr
ipvsadm -a -t 198.18.0.50:80 -r 198.18.0.11:80 -m
ipvsadm -Ln
./rvs --version
