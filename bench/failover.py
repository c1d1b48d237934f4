"""Driver of bench/failover.sh (see there). Every process it starts is killed by PID and
every namespace it creates is deleted, also on Ctrl-C."""

import argparse
import datetime
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

VIP = "198.18.0.50"
A, B = "198.18.0.1", "198.18.0.2"
PREFIX = f"rvsfo{os.getpid() % 100000}"
SEQ = [0]  # file names never repeat across cases: keepalived refuses a live-looking pid file


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


def ns(n):
    return f"{PREFIX}-{n}"


def lab_up():
    sh("ip", "netns", "add", ns("br"))
    sh("ip", "-n", ns("br"), "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns("br"), "link", "set", "br0", "up")
    for i, (n, host) in enumerate([("a", 1), ("b", 2), ("c", 100)]):
        sh("ip", "netns", "add", ns(n))
        sh("ip", "-n", ns("br"), "link", "add", f"p{i}", "type", "veth", "peer", "name",
           "eth0", "netns", ns(n))
        sh("ip", "-n", ns("br"), "link", "set", f"p{i}", "master", "br0", "up")
        sh("ip", "-n", ns(n), "link", "set", "lo", "up")
        sh("ip", "-n", ns(n), "addr", "add", f"198.18.0.{host}/24", "dev", "eth0")
        sh("ip", "-n", ns(n), "link", "set", "eth0", "up")


def lab_down():
    for n in ["a", "b", "c", "br"]:
        sh("ip", "netns", "del", ns(n), check=False)


def conf(state, prio, version, adv):
    return (
        "global_defs {\n  vrrp_garp_master_delay 1\n}\n"
        f"vrrp_instance VI_1 {{\n  state {state}\n  interface eth0\n  virtual_router_id 51\n"
        f"  priority {prio}\n  advert_int {adv}\n  version {version}\n"
        f"  virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
    )


class Procs:
    def __init__(self, d, rvs):
        self.d, self.rvs, self.procs, self.n, self.children = d, rvs, [], 0, []

    def spawn(self, node, argv, log):
        p = subprocess.Popen(["ip", "netns", "exec", ns(node)] + argv,
                             stdout=open(log, "w"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def daemon(self, kind, node, text):
        SEQ[0] += 1
        self.n = SEQ[0]
        c = f"{self.d}/{node}{self.n}.conf"
        open(c, "w").write(text)
        log = f"{self.d}/{node}{self.n}.log"
        if kind == "rvs":
            p = self.spawn(node, [self.rvs, "run", "-P", "-f", c, "--control",
                                  f"{self.d}/{node}{self.n}.sock", "--pid-file",
                                  f"{self.d}/{node}{self.n}.pid"], log)
            return [p.pid]
        pid = lambda s: f"{self.d}/{node}{self.n}-{s}.pid"
        p = self.spawn(node, ["keepalived", "-P", "-n", "-l", "-D", "-f", c, "-p", pid("m"),
                              "-r", pid("r"), "-c", pid("c"), "-b", pid("b")], log)
        for _ in range(500):
            try:
                child = int(open(pid("r")).read())
                self.children.append(child)
                return [p.pid, child]
            except (OSError, ValueError):
                time.sleep(0.01)
        raise RuntimeError("keepalived did not start")

    def logs(self):
        out = []
        for f in sorted(os.listdir(self.d)):
            if f.endswith(".log"):
                out.append(f"--- {f}\n" + "".join(open(f"{self.d}/{f}").readlines()[-15:]))
        return "\n".join(out)

    def kill_all(self):
        # keepalived's VRRP child first (only if it still is ours: pids are reused).
        for c in self.children:
            try:
                if open(f"/proc/{c}/comm").read().strip() == "keepalived":
                    os.kill(c, signal.SIGKILL)
            except OSError:
                pass
        self.children = []
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.procs = []


def has_vip(node):
    return f" {VIP}/" in sh("ip", "-n", ns(node), "-o", "addr", "show", "dev", "eth0")


def wait_for(f, limit):
    t0 = time.time()
    while time.time() - t0 < limit:
        if f():
            return True
        time.sleep(0.01)
    return False


def exited(pid):
    try:
        return " Z " in open(f"/proc/{pid}/stat").read().split(")", 1)[1][:3]
    except OSError:
        return True


def parse_ts(s):
    return datetime.datetime.fromisoformat(s).timestamp()


def one(d, rvs, kinds, version, adv, fault):
    pr = Procs(d, rvs)
    try:
        down = 3 * float(adv)
        kb = pr.daemon(kinds[1], "b", conf("BACKUP", 100, version, adv))
        ka = pr.daemon(kinds[0], "a", conf("MASTER", 150, version, adv))
        if not wait_for(lambda: has_vip("a") and not has_vip("b"), 2 * down + 3):
            raise RuntimeError("no election: a %s, b %s\n%s" % (has_vip("a"), has_vip("b"), pr.logs()))
        time.sleep(float(adv) * 2 + 0.3)
        cap = f"{d}/cap.txt"
        mon = f"{d}/mon.txt"
        png = f"{d}/ping.txt"
        tcpd = pr.spawn("br", ["tcpdump", "-tt", "-n", "-l", "-i", "br0", "ip proto 112"], cap)
        monp = pr.spawn("b", ["ip", "-ts", "monitor", "address"], mon)
        ping = pr.spawn("c", ["ping", "-D", "-n", "-i", "0.01", VIP], png)
        time.sleep(0.5 + float(adv))
        t0 = time.time()
        if fault == "SIGTERM":
            os.kill(ka[0], signal.SIGTERM)
        elif fault == "SIGKILL":
            for p in ka:
                os.kill(p, signal.SIGKILL)
        else:
            sh("ip", "-n", ns("a"), "link", "set", "eth0", "down")
        if not wait_for(lambda: has_vip("b"), 2 * down + 3):
            raise RuntimeError("no takeover")
        time.sleep(0.5)
        for p in (ping, tcpd, monp):
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
        # VIP on the new master.
        vip_t = None
        for line in open(mon):
            m = re.match(r"\[([^\]]+)\].*inet " + re.escape(VIP) + "/", line)
            if m and "Deleted" not in line:
                t = parse_ts(m.group(1))
                if t >= t0:
                    vip_t = t - t0
                    break
        # Wire gap: last advert from A before the first from B (after the fault).
        adverts = []
        for line in open(cap):
            m = re.match(r"(\d+\.\d+) IP (\S+) > 224\.0\.0\.18: VRRPv\d, Advertisement, vrid 51, prio (\d+)", line)
            if m:
                adverts.append((float(m.group(1)), m.group(2), int(m.group(3))))
        first_b = next((t for t, s, _ in adverts if s == B), None)
        last_a = max((t for t, s, _ in adverts if s == A and (first_b is None or t < first_b)), default=None)
        last_a_prio = next((p for t, s, p in adverts if s == A and t == last_a), None)
        wire = first_b - last_a if first_b and last_a else None
        if version == 3:
            skew = ((256 - 100) * int(float(adv) * 100) * 625 // 16) / 1e6
        else:
            skew = (256 - 100) * 1_000_000 // 256 / 1e6
        bound = skew if last_a_prio == 0 else 3 * float(adv) + skew
        # Outage: the longest gap between ping replies around the fault.
        replies = [float(m.group(1)) for m in
                   (re.match(r"\[(\d+\.\d+)\] \d+ bytes from", l) for l in open(png)) if m]
        gaps = [b - a for a, b in zip(replies, replies[1:]) if b > t0 - 0.5]
        outage = max(gaps) if gaps else None
        return vip_t, wire, bound, outage
    finally:
        pr.kill_all()
        sh("ip", "-n", ns("a"), "link", "set", "eth0", "up", check=False)
        # Stale VIPs of a killed daemon, so the next case starts clean.
        for n in ("a", "b"):
            sh("ip", "-n", ns(n), "addr", "del", f"{VIP}/24", "dev", "eth0", check=False)


def fmt(v):
    return "-" if v is None else f"{v * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rvs", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=["v2", "v3"])
    a = ap.parse_args()
    pairs = [("keepalived", "keepalived"), ("rvs", "rvs"), ("rvs", "keepalived"),
             ("keepalived", "rvs")]
    versions = [(2, "1"), (3, "0.1")]
    if a.only:
        versions = [v for v in versions if f"v{v[0]}" == a.only]
    d = tempfile.mkdtemp(prefix="rvs-failover-")
    lab_up()
    try:
        print("| protocol | master -> backup | fault | VIP on new master | wire gap (bound) | client outage (10 ms ping) |")
        print("|---|---|---|---|---|---|")
        for version, adv in versions:
            for fault in ["SIGTERM", "SIGKILL", "link down"]:
                for kinds in pairs:
                    res = [one(d, a.rvs, kinds, version, adv, fault) for _ in range(a.runs)]
                    med = lambda i: statistics.median([r[i] for r in res if r[i] is not None]) if any(r[i] is not None for r in res) else None
                    print(f"| VRRPv{version} advert_int {adv} | {kinds[0]} -> {kinds[1]} | {fault} | "
                          f"{fmt(med(0))} | {fmt(med(1))} ({fmt(res[0][2])}) | {fmt(med(3))} |", flush=True)
    finally:
        lab_down()
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
