#!/usr/bin/env bash
# gossip_vs_serf.sh - the webgw daemon's gossip against Serf agents (the anchor), same machine,
# same run, each system alone in its own network namespace so iptables counts its bytes.
#
# For each configuration (CONFIGS) and size (SIZES, default 5 20 50), n real `webgw` daemons
# (their own 32-hex node ids, their real metadata, encrypted with a cluster key) and then n
# `serf agent -profile=lan` (32-hex node names, encrypted with -encrypt) run on 127.0.1.x in a
# fresh namespace; every line they log is timestamped on arrival. Measured:
#   join     from starting the joiners until every member logs every other alive
#   bytes    UDP and TCP bytes on the gossip port per member per second in the steady state
#            (iptables OUTPUT counters in the namespace: whole IP packets, headers included),
#            over MEASURE seconds after SETTLE seconds of quiet
#   cpu      CPU ms per member per second over the same window (/proc/PID/stat)
#   kill     from kill -9 of one member until every survivor logs it dead (webgw "is dead",
#            Serf EventMemberFailed)
#   false    deaths of anyone but the victim logged by anyone; suspicions of anyone but the
#            victim logged (the "suspect" column)
# Configurations:
#   shipped  webgw defaults (probe 600ms, timeout 300ms) against Serf LAN (probe 1s, 500ms)
#   equal    webgw with Serf's probe settings (--gossip-probe-interval 1s
#            --gossip-probe-timeout 500ms); every other timing already matches memberlist LAN
# The settings of both sides are printed first.
#
#   tests/bench/gossip_vs_serf.sh [BUILD_DIR]
#     SIZES="5 20 50" CONFIGS="shipped equal" REPEAT=1 SETTLE=35 MEASURE=60 LOSS=0
#     SYSTEMS="serf webgw" (one of them alone: no ratios; for looking into one side)
# Each run prints its kill timeline: the first survivor's suspicion, the first death, the last.
# LOSS=10 drops 10% of every packet arriving in the namespace (iptables INPUT, statistic
# match; both systems alike, TCP and UDP) for the whole run: suspicions and false deaths under
# loss. Bytes are counted on OUTPUT, before the drop.
# Needs root (namespaces, iptables), serf (scripts/install-deps.sh) and a built webgw. A full
# run takes about (SETTLE + MEASURE + 30) s x sizes x configs x 2 x REPEAT: run it on a quiet
# machine. Smoke run: SIZES=5 CONFIGS=equal SETTLE=2 MEASURE=10.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
WEBGW=$BUILD/bin/webgw
[ -x "$WEBGW" ] || { echo "gossip_vs_serf: build first: $WEBGW missing" >&2; exit 1; }
command -v serf >/dev/null || { echo "gossip_vs_serf: serf missing: scripts/install-deps.sh installs it" >&2; exit 1; }
command -v iptables >/dev/null || { echo "gossip_vs_serf: iptables missing" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "gossip_vs_serf: needs root (network namespaces and iptables)" >&2; exit 1; }
export WEBGW SIZES=${SIZES:-"5 20 50"} CONFIGS=${CONFIGS:-"shipped equal"} REPEAT=${REPEAT:-1} \
    SETTLE=${SETTLE:-35} MEASURE=${MEASURE:-60} LOSS=${LOSS:-0} SYSTEMS=${SYSTEMS:-"serf webgw"}

exec python3 - <<'PY'
import base64, os, re, shutil, signal, statistics, subprocess, tempfile, threading, time

WEBGW = os.path.abspath(os.environ["WEBGW"])
SIZES = [int(x) for x in os.environ["SIZES"].split()]
CONFIGS = os.environ["CONFIGS"].split()
REPEAT = int(os.environ["REPEAT"])
SETTLE = float(os.environ["SETTLE"])
MEASURE = float(os.environ["MEASURE"])
LOSS = float(os.environ["LOSS"])
SYSTEMS = os.environ["SYSTEMS"].split()
for what, given, known in (("SYSTEMS", SYSTEMS, ("serf", "webgw")),
                           ("CONFIGS", CONFIGS, ("shipped", "equal"))):
    if not given or any(v not in known for v in given):
        raise SystemExit("gossip_vs_serf: %s takes %s, not %r" % (what, " and/or ".join(known),
                                                                 " ".join(given)))
PORT = 7946
TICK = os.sysconf("SC_CLK_TCK")

def now():
    return time.time()

def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

class Netns:
    """A fresh namespace with lo up and iptables counters on the gossip port (OUTPUT sees
    every packet once on loopback)."""
    RULES = [["-p", "udp", "--dport", str(PORT)], ["-p", "tcp", "--dport", str(PORT)],
             ["-p", "tcp", "--sport", str(PORT)]]
    def __init__(self, name):
        self.name = name
        sh("ip", "netns", "add", name)
        try:
            sh("ip", "-n", name, "link", "set", "lo", "up")
            self.ipt("-N", "GVS")
            self.ipt("-A", "OUTPUT", "-j", "GVS")
            for r in self.RULES:
                self.ipt("-A", "GVS", *r)
            if LOSS > 0:
                self.ipt("-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability",
                         "%g" % (LOSS / 100.0), "-j", "DROP")
        except Exception:
            self.close()
            raise
    def ipt(self, *args):
        sh("ip", "netns", "exec", self.name, "iptables", "-w", *args)
    def counters(self):
        """(udp bytes, udp packets, tcp bytes, tcp packets) so far."""
        out = subprocess.run(["ip", "netns", "exec", self.name, "iptables", "-w", "-L", "GVS",
                              "-v", "-x", "-n"], check=True, capture_output=True,
                             text=True).stdout
        ub = up = tb = tp = 0
        for line in out.splitlines():
            f = line.split()
            if len(f) < 4 or not f[0].isdigit():
                continue
            pkts, byts = int(f[0]), int(f[1])
            if "udp" in f and "dpt:%d" % PORT in line:
                ub, up = ub + byts, up + pkts
            elif "tcp" in f:
                tb, tp = tb + byts, tp + pkts
        return ub, up, tb, tp
    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

class Proc:
    """One member process in the namespace; its output lines kept with their arrival time."""
    def __init__(self, ns, argv):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns.name] + argv,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()
    def read(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append((now(), line.rstrip("\n")))
    def first(self, pred, after=0.0):
        with self.lock:
            for t, l in self.lines:
                if t >= after and pred(l):
                    return t
        return None
    def count(self, pred):
        with self.lock:
            return sum(1 for _, l in self.lines if pred(l))
    def cpu_ticks(self):
        try:
            with open("/proc/%d/stat" % self.p.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            return 0
    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
    def terminate(self):
        if self.p.poll() is None:
            self.p.terminate()
    def stop(self):
        if self.p.poll() is None:
            self.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

def hexname(prefix, i):
    """A 32-hex name of the daemon's size (webgw makes its own; Serf gets one like it)."""
    return ("%s%030x" % (prefix, 0x5eed0000 + i))[:32]

WEBGW_TIMING = {
    "shipped": [],
    "equal": ["--gossip-probe-interval", "1s", "--gossip-probe-timeout", "500ms"],
}
WEBGW_SETTINGS = {
    "shipped": "probe 600ms, probe timeout 300ms, gossip 200ms, fanout 3, suspicion mult 2 "
               "with 3 confirmations (max 6x), push-pull 30s, indirect 3, retransmit mult 4 "
               "(webgw defaults)",
    "equal": "probe 1s, probe timeout 500ms, gossip 200ms, fanout 3, suspicion mult 2 "
             "with 3 confirmations (max 6x), push-pull 30s, indirect 3, retransmit mult 4 "
             "(--gossip-probe-interval 1s --gossip-probe-timeout 500ms)",
}
SERF_SETTINGS = ("serf agent -profile=lan: memberlist DefaultLANConfig: probe 1s, probe timeout "
                 "500ms, gossip 200ms, fanout 3, suspicion mult 4, push-pull 30s, indirect 3, "
                 "retransmit mult 4; -encrypt with a 32-byte key; 32-hex node names")

class Webgw:
    label = "webgw"
    def __init__(self, config, tmp):
        self.timing = WEBGW_TIMING[config]
        self.tmp = tmp
        self.key = os.path.join(tmp, "cluster.key")
        with open(self.key, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    def ip(self, i): return "127.0.1.%d" % (i + 1)
    def name(self, i): return "w%d" % i
    def start(self, ns, i, join):
        ip = self.ip(i)
        argv = [WEBGW, "--node-name", self.name(i), "--data-dir",
                os.path.join(self.tmp, self.name(i)), "--gossip", "%s:%d" % (ip, PORT),
                "--api", ip + ":9080", "--http", ip + ":8080", "--https", ip + ":8443",
                "--cluster-key", self.key, "--workers", "1", "--access-log", "off",
                "--log-level", "info"] + self.timing
        if join is not None:
            argv += ["--join", "%s:%d" % (self.ip(join), PORT)]
        return Proc(ns, argv)
    # node_event: "member: NAME (ADDR) is STATE"
    def is_state(self, line, name, state): return (" %s (" % name) in line and line.endswith(" is " + state)
    def is_alive(self, line, name): return "member:" in line and self.is_state(line, name, "alive")
    def is_dead(self, line, name): return "member:" in line and self.is_state(line, name, "dead")
    def any_dead(self, line): return "member:" in line and line.endswith(" is dead")
    def is_suspect(self, line): return "member:" in line and line.endswith(" is suspect")

class Serf:
    label = "serf"
    def __init__(self, config, tmp):
        self.key = base64.b64encode(os.urandom(32)).decode()
    def ip(self, i): return "127.0.1.%d" % (i + 1)
    def name(self, i): return hexname("5e", i)
    def start(self, ns, i, join):
        ip = self.ip(i)
        argv = ["serf", "agent", "-node=" + self.name(i), "-bind=%s:%d" % (ip, PORT),
                "-rpc-addr=%s:7373" % ip, "-profile=lan", "-encrypt=" + self.key,
                "-log-level=info"]
        if join is not None:
            argv.append("-join=%s:%d" % (self.ip(join), PORT))
        return Proc(ns, argv)
    def is_alive(self, line, name): return ("EventMemberJoin: %s " % name) in line
    def is_dead(self, line, name): return ("EventMemberFailed: %s " % name) in line
    def any_dead(self, line): return "EventMemberFailed" in line
    def is_suspect(self, line): return "Suspect" in line

def wait_all(cond, limit):
    end = now() + limit
    while now() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()

def run(cls, config, n):
    tmp = tempfile.mkdtemp(prefix="gvs-")
    ns = Netns("gvs%d-%s-%d" % (os.getpid(), cls.label, n))
    sysm = cls(config, tmp)
    procs = []
    res = {}
    try:
        procs.append(sysm.start(ns, 0, None))
        time.sleep(1.0)
        t_join = now()
        for i in range(1, n):
            procs.append(sysm.start(ns, i, 0))
        def seen(i, j):
            return procs[i].first(lambda l: sysm.is_alive(l, sysm.name(j)))
        if wait_all(lambda: all(seen(i, j) is not None for i in range(n) for j in range(n)
                                if i != j), 120):
            res["join"] = max(seen(i, j) for i in range(n) for j in range(n) if i != j) - t_join
        else:
            res["join"] = None
        time.sleep(SETTLE)
        c0, cpu0, t0 = ns.counters(), sum(p.cpu_ticks() for p in procs), now()
        time.sleep(MEASURE)
        c1, cpu1, t1 = ns.counters(), sum(p.cpu_ticks() for p in procs), now()
        secs = t1 - t0
        res["udp"] = (c1[0] - c0[0]) / n / secs
        res["udp_pkts"] = (c1[1] - c0[1]) / n / secs
        res["tcp"] = (c1[2] - c0[2]) / n / secs
        res["cpu"] = (cpu1 - cpu0) * 1000.0 / TICK / n / secs
        victim = n - 1
        vname = sysm.name(victim)
        t_kill = now()
        procs[victim].kill9()
        surv = range(0, n - 1)
        dead_at = lambda i: procs[i].first(lambda l: sysm.is_dead(l, vname), t_kill)
        if wait_all(lambda: all(dead_at(i) is not None for i in surv), 120):
            res["kill"] = max(dead_at(i) for i in surv) - t_kill
            res["kill_first"] = min(dead_at(i) for i in surv) - t_kill
        else:
            res["kill"] = res["kill_first"] = None
        # when the first survivor suspected the victim (Serf logs the accuser's "Suspect")
        sus = [procs[i].first(lambda l: sysm.is_suspect(l) and vname in l, t_kill) for i in surv]
        sus = [t for t in sus if t is not None]
        res["kill_suspect"] = min(sus) - t_kill if sus else None
        res["false"] = sum(procs[i].count(lambda l: sysm.any_dead(l) and vname not in l)
                           for i in surv)
        res["suspect"] = sum(p.count(lambda l: sysm.is_suspect(l) and vname not in l)
                             for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.stop()
        ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return res

def fmt(v, unit="s", width=8):
    return ("%*s" % (width, "fail")) if v is None else ("%*.2f%s" % (width - 1, v, unit))

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

print("settings:")
for c in CONFIGS:
    print("  %-8s webgw: %s" % (c, WEBGW_SETTINGS[c]))
    print("  %-8s webgw daemons: `webgw --workers 1 --cluster-key FILE` on 127.0.1.x, own "
          "32-hex ids, real metadata (HTTP, HTTPS, API, public address, witness key)" % "")
print("  serf:    %s" % SERF_SETTINGS)
print("  bytes: iptables OUTPUT on port %d in the system's own namespace, whole IP packets; "
      "SETTLE=%gs MEASURE=%gs REPEAT=%d LOSS=%g%%" % (PORT, SETTLE, MEASURE, REPEAT, LOSS))
print(flush=True)

results = {}
for config in CONFIGS:
    for n in SIZES:
        for cls in (Serf, Webgw):
            if cls.label not in SYSTEMS:
                continue
            results[(config, cls.label, n)] = []
            for _ in range(REPEAT):
                r = run(cls, config, n)
                results[(config, cls.label, n)].append(r)
                print("  done %s %s n=%d: join %s kill %s (first suspect %s, first dead %s) "
                      "udp %.0f B/s tcp %.0f B/s" % (
                          config, cls.label, n, fmt(r["join"]), fmt(r["kill"]),
                          fmt(r["kill_suspect"]), fmt(r["kill_first"]), r["udp"], r["tcp"]),
                      flush=True)

for config in CONFIGS:
    print()
    print("configuration %s (medians over %d run(s); bytes per member per second on the wire)"
          % (config, REPEAT))
    print("%-4s %-6s %8s %8s %9s %9s %9s %8s %9s %6s %8s" % (
        "n", "system", "join", "kill -9", "UDP B/s", "TCP B/s", "total B/s", "pkt/s",
        "CPU ms/s", "false", "suspect"))
    for n in SIZES:
        for lab in ("serf", "webgw"):
            if lab not in SYSTEMS:
                continue
            rs = results[(config, lab, n)]
            udp, tcp = med([r["udp"] for r in rs]), med([r["tcp"] for r in rs])
            print("%-4d %-6s %8s %8s %9.1f %9.1f %9.1f %8.2f %9.2f %6d %8d" % (
                n, lab, fmt(med([r["join"] for r in rs])), fmt(med([r["kill"] for r in rs])),
                udp, tcp, udp + tcp, med([r["udp_pkts"] for r in rs]),
                med([r["cpu"] for r in rs]), sum(r["false"] for r in rs),
                sum(r["suspect"] for r in rs)))
    if len(SYSTEMS) < 2:
        continue
    print("ratios, webgw / serf (kill -9 detection time: below 1 is faster; bytes: below 1 is "
          "cheaper):")
    for n in SIZES:
        s, w = results[(config, "serf", n)], results[(config, "webgw", n)]
        ks, kw = med([r["kill"] for r in s]), med([r["kill"] for r in w])
        bs = med([r["udp"] + r["tcp"] for r in s])
        bw = med([r["udp"] + r["tcp"] for r in w])
        kill = "%.2fx" % (kw / ks) if ks and kw else "n/a"
        byts = "%.2fx" % (bw / bs) if bs and bw else "n/a"
        print("  n=%-3d detection %s   bytes per member %s" % (n, kill, byts))
PY
