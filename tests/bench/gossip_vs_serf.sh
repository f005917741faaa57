#!/usr/bin/env bash
# gossip_vs_serf.sh - webgw gossip against Serf (the anchor) on one machine, same run.
#
# For 5, 20 and 50 processes of each (webgw: build/bench/bench_gossip_member; Serf: `serf
# agent -profile=lan`), all on loopback addresses 127.0.1.x / 127.0.2.x:
#   join    time from starting the joiners until every member sees every other alive
#   record  time for a new record (Serf: a user event, not coalesced) to reach every member
#   kill    time from kill -9 of one member until every survivor reports it failed/dead
# Each process's stdout is read live and each line timestamped on arrival, for both systems.
# Then a quiet run (QUIET_SECONDS, default 600) of 50 webgw members counts false deaths.
#
#   tests/bench/gossip_vs_serf.sh [BUILD_DIR]      (SIZES="5 20 50" QUIET_SECONDS=600 REPEAT=1)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
MEMBER=$BUILD/bench/bench_gossip_member
[ -x "$MEMBER" ] || { echo "build first: $MEMBER missing"; exit 1; }
command -v serf >/dev/null || { echo "serf missing: scripts/install-deps.sh installs it"; exit 1; }
export MEMBER SIZES=${SIZES:-"5 20 50"} QUIET_SECONDS=${QUIET_SECONDS:-600} REPEAT=${REPEAT:-1}

exec python3 - <<'PY'
import os, subprocess, threading, time, signal, statistics

MEMBER = os.environ["MEMBER"]
SIZES = [int(x) for x in os.environ["SIZES"].split()]
QUIET = int(os.environ["QUIET_SECONDS"])
REPEAT = int(os.environ["REPEAT"])

def now():
    return time.time()

class Proc:
    """One member process; lines of its stdout are kept with their arrival time."""
    def __init__(self, argv, name):
        self.name = name
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()
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
    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

class Webgw:
    label = "webgw"
    def addr(self, i): return "127.0.1.%d:7946" % (i + 1)
    def name(self, i): return "w%d" % i
    def start(self, i, join):
        argv = [MEMBER, "--id", self.name(i), "--bind", self.addr(i)]
        if join is not None:
            argv += ["--join", self.addr(join)]
        return Proc(argv, self.name(i))
    def is_alive(self, line, name): return line.endswith(" alive " + name)
    def is_dead(self, line, name): return line.endswith(" dead " + name)
    def any_dead(self, line): return " dead " in line
    def is_record(self, line, key): return (" item %s " % key) in line
    def send_record(self, procs, key):
        procs[0].p.stdin.write("broadcast %s 1\n" % key)
        procs[0].p.stdin.flush()
    def record_at_origin(self): return False  # the origin does not report its own item

class Serf:
    label = "serf"
    def addr(self, i): return "127.0.2.%d:7946" % (i + 1)
    def rpc(self, i): return "127.0.2.%d:7373" % (i + 1)
    def name(self, i): return "s%d" % i
    def start(self, i, join):
        argv = ["serf", "agent", "-node=" + self.name(i), "-bind=" + self.addr(i),
                "-rpc-addr=" + self.rpc(i), "-profile=lan", "-log-level=info"]
        if join is not None:
            argv.append("-join=" + self.addr(join))
        return Proc(argv, self.name(i))
    def is_alive(self, line, name): return ("EventMemberJoin: %s " % name) in line
    def is_dead(self, line, name): return ("EventMemberFailed: %s " % name) in line
    def any_dead(self, line): return "EventMemberFailed" in line
    def is_record(self, line, key): return ("user-event: %s" % key) in line
    def send_record(self, procs, key):
        for _ in range(10):  # the RPC port can be busy right after a burst of joins
            r = subprocess.run(["serf", "event", "-rpc-addr=" + self.rpc(0), "-coalesce=false",
                                key, "x"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
            if r.returncode == 0:
                return
            err = r.stderr.strip()
            time.sleep(0.5)
        print("serf event failed: %s" % err)
    def record_at_origin(self): return True

def wait_all(cond, limit):
    end = now() + limit
    while now() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()

def run(sysm, n):
    procs = [sysm.start(0, None)]
    time.sleep(0.5)
    t_join = now()
    for i in range(1, n):
        procs.append(sysm.start(i, 0))
    res = {}
    try:
        def joined():
            return all(procs[i].first(lambda l, j=j: sysm.is_alive(l, sysm.name(j))) is not None
                       for i in range(n) for j in range(n) if i != j)
        if not wait_all(joined, 60):
            res["join"] = None
        else:
            last = max(procs[i].first(lambda l, j=j: sysm.is_alive(l, sysm.name(j)))
                       for i in range(n) for j in range(n) if i != j)
            res["join"] = last - t_join
        time.sleep(3)
        key = "rec%d" % n
        t_rec = now()
        sysm.send_record(procs, key)
        targets = range(0 if sysm.record_at_origin() else 1, n)
        if wait_all(lambda: all(procs[i].first(lambda l: sysm.is_record(l, key), t_rec)
                                is not None for i in targets), 30):
            res["record"] = max(procs[i].first(lambda l: sysm.is_record(l, key), t_rec)
                                for i in targets) - t_rec
        else:
            res["record"] = None
        time.sleep(2)
        victim = n - 1
        vname = sysm.name(victim)
        t_kill = now()
        procs[victim].kill9()
        surv = range(0, n - 1)
        if wait_all(lambda: all(procs[i].first(lambda l: sysm.is_dead(l, vname), t_kill)
                                is not None for i in surv), 90):
            res["kill"] = max(procs[i].first(lambda l: sysm.is_dead(l, vname), t_kill)
                              for i in surv) - t_kill
        else:
            res["kill"] = None
        res["false"] = sum(procs[i].count(lambda l: sysm.any_dead(l) and vname not in l)
                           for i in surv)
    finally:
        for p in procs:
            p.stop()
    time.sleep(1)
    return res

def fmt(v):
    return "   fail" if v is None else "%6.2fs" % v

results = {}
for n in SIZES:
    for sysm in (Serf(), Webgw()):
        vals = [run(sysm, n) for _ in range(REPEAT)]
        results[(sysm.label, n)] = vals

print()
print("%-6s %-6s %8s %8s %8s %6s" % ("n", "system", "join", "record", "kill -9", "false"))
for n in SIZES:
    for lab in ("serf", "webgw"):
        for r in results[(lab, n)]:
            print("%-6d %-6s %8s %8s %8s %6d" % (n, lab, fmt(r["join"]), fmt(r["record"]),
                                                fmt(r["kill"]), r["false"]))
print()
print("ratios (serf time / webgw time; > 1 means webgw is faster), medians over REPEAT:")
for n in SIZES:
    row = []
    for k in ("join", "record", "kill"):
        s = [r[k] for r in results[("serf", n)] if r[k] is not None]
        w = [r[k] for r in results[("webgw", n)] if r[k] is not None]
        row.append("%s %5.2fx" % (k, statistics.median(s) / statistics.median(w))
                   if s and w and statistics.median(w) > 0 else "%s   n/a" % k)
    print("  n=%-3d %s" % (n, "   ".join(row)))

if QUIET > 0:
    n = 50
    sysm = Webgw()
    procs = [sysm.start(0, None)]
    time.sleep(0.5)
    for i in range(1, n):
        procs.append(sysm.start(i, 0))
    time.sleep(QUIET)
    false = sum(p.count(lambda l: sysm.any_dead(l)) for p in procs)
    suspect = sum(p.count(lambda l: " suspect " in l) for p in procs)
    for p in procs:
        p.stop()
    print()
    print("quiet run: %d webgw members for %ds: %d false deaths, %d suspicions"
          % (n, QUIET, false, suspect))
PY
