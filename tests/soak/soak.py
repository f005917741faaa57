#!/usr/bin/env python3
"""soak.py - starts the soak fleet (5 gateways, 4 backends, load clients) in network
namespaces, drives traffic, record churn and a schedule of faults for a profile's duration,
samples every gateway while it runs, then judges the invariants (verdict.py) and writes
report.md with gnuplot SVGs into the output folder. Exit status 0 when every invariant
holds, 1 when one fails, 2 when the fleet could not be set up. Run it through run.sh.
"""
import argparse
import asyncio
import base64
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleet  # noqa: E402
import verdict  # noqa: E402

DOMAIN = "soak.test"
PT_NAME = "passthru"
CHURN_SETTLE_S = 5  # a churn name is touched again through any gateway only this long after its last change
GATEWAYS = [f"gw{i}" for i in range(1, 6)]
# backend -> (mode, extra args): the four kinds a gateway meets
BACKENDS = {
    "b1": ("keepalive", ["--tls-port", "8443"]),
    "b2": ("close", ["--reset-rate", "0.01"]),
    "b3": ("slow", ["--tls-port", "8443"]),
    "b4": ("idleclose", []),
}
# issue 9's mixed traffic: each name on one kind of backend, so an upload's backend connection
# is known to be pooled (keep-alive) or fresh (Connection: close), GETs meet a backend that
# closes idle connections, and the killed one's name has a second backend
MIXED_BACKENDS = {
    "b1": ("keepalive", []),
    "b2": ("close", []),
    "b3": ("keepalive", []),
    "b4": ("idleclose", []),
}
MIXED_NAMES = {"pooled": ["b1"], "fresh": ["b2"], "idle": ["b4"], "killed": ["b3", "b1"]}
SKEWED = "gw4"  # runs with its wall clock 2 minutes behind
HEALTH_INTERVAL_S = 1
HEALTH_FALL = 3
HEALTH_RISE = 2


ALL_KINDS = ["get", "upload", "download", "sse", "ws", "https", "passthrough"]


def profile(name, duration):
    """(duration, schedule, churn stop, fleet): the schedule is a list of (not before t, action,
    target, hold), run in order; a fault with a hold is undone hold seconds after it began
    (kill9 -> start, backend_kill -> backend_start, backend_stall -> backend_unstall,
    partition -> heal, udp_loss -> udp_loss_end), so a slow step (a rolling restart waits for
    drains) shifts what follows instead of squeezing it. fleet: gateways, backends, the skewed
    gateway, whether churn runs, the traffic names (None: the 12 pairs and passthrough), the
    kinds of traffic that must complete, extra load.py arguments."""
    fleet_ = {"gateways": GATEWAYS, "backends": BACKENDS, "skewed": SKEWED, "churn": True, "names": None,
              "kinds": ALL_KINDS, "load": []}
    if name == "mixed10":
        # issue 9: 10 minutes of mixed traffic on 3 gateways, one backend killed and revived
        # (twice); uploads of every edge size and 100 MiB, chunked and Content-Length, on
        # pooled and fresh backend connections; GETs on every name, one of them idle-closing
        d = duration or 600
        hold = min(30, d / 6)  # a short --duration keeps the two kills apart
        s = [(d / 4, "backend_kill", "b3", hold), (d * 2 / 3, "backend_kill", "b3", hold)]
        fleet_.update(gateways=GATEWAYS[:3], backends=MIXED_BACKENDS, skewed=None, churn=False,
                      names=MIXED_NAMES, kinds=["get", "upload"],
                      load=["--download-workers", "0", "--sse-workers", "0", "--ws-workers", "0",
                            "--https-workers", "0", "--passthrough-workers", "0", "--upload-workers", "2",
                            "--upload-names", "pooled,fresh", "--big-upload", str(100 << 20),
                            "--big-every", "8"])
        return d, s, d - 60, fleet_
    if name == "ci":
        d = duration or 180
        s = [
            (10, "kill9", "gw2", 5),
            (20, "rolling_restart", None, 0),
            (60, "backend_kill", "b1", 15),
            (75, "backend_stall", "b3", 15),
            (92, "partition", "gw5", 18),
            (112, "udp_loss", 0.15, 20),
            (117, "rotate_key", None, 0),
        ]
        return d, s, d - 28, fleet_
    # the hour: the same faults, each cycle on other targets, one cycle every 10 minutes
    d = duration or 3600
    s = []
    cycle = 600
    for c in range(int((d - 90) // cycle)):
        b = c * cycle
        s += [
            (b + 30, "kill9", GATEWAYS[(c + 1) % 5], 10),
            (b + 90, "backend_kill", ["b1", "b2", "b3", "b4"][c % 4], 30),
            (b + 150, "backend_stall", ["b3", "b4", "b1", "b2"][c % 4], 30),
            (b + 210, "partition", GATEWAYS[(c + 3) % 5], 60),
            (b + 300, "udp_loss", round(0.10 + 0.05 * (c % 3), 2), 90),
            (b + 330, "rotate_key", None, 0),
        ]
        if c < 2:  # restarts of all only in the first third: the last two thirds judge growth
            s.append((b + 420, "rolling_restart", None, 0))
    return d, s, d - 60, fleet_


UNDO = {"kill9": "start", "backend_kill": "backend_start", "backend_stall": "backend_unstall",
        "partition": "heal", "udp_loss": "udp_loss_end"}


class Soak:
    def __init__(self, a):
        self.a = a
        self.fl = a.fleet
        self.gws, self.bes, self.skewed = a.fleet["gateways"], a.fleet["backends"], a.fleet["skewed"]
        self.pt_name = PT_NAME if a.fleet["names"] is None else None
        self.out = a.out
        self.bindir = os.path.abspath(os.path.join(a.build, "bin"))
        self.ctlbin = os.path.abspath(os.path.join(a.ctl_build or a.build, "bin", "webgwctl"))
        self.net = fleet.Net(os.getpid())
        self.gw = {}
        self.be = {}
        self.load = None
        self.t0 = None
        self.faults = []  # {"t","action","target","end"?}
        self.samples = open(os.path.join(self.out, "samples.jsonl"), "a", buffering=1)
        self.churnlog = open(os.path.join(self.out, "churn.jsonl"), "a", buffering=1)
        self.rng = random.Random(a.seed)
        self.names = {}  # churn client's view: name -> backends (live), None when released
        self.changed_at = {}  # name -> when the churn client's last change to it was acknowledged
        self.traffic_names = {}
        self.next_name = 0
        self.keys = []
        self.churning = True
        self.stopping = False
        self.convergence = None
        self.schedule_done = False
        self.churn_stop_at = None
        self.env = {}
        self.fd_breakdowns = {}  # "end of load" / "after the load": gateway -> fd_snapshot()

    # ---- setup -------------------------------------------------------------------------

    def log(self, msg):
        t = "" if self.t0 is None else f"t={time.time() - self.t0:6.1f} "
        print(f"soak: {t}{msg}", flush=True)

    def be_url(self, b, port=8000):
        return f"http://{self.net.ip(b)}:{port}"

    def setup(self):
        hosts = [(g, 10 + i) for i, g in enumerate(self.gws, 1)] + [(b, 20 + i) for i, b in enumerate(self.bes, 1)]
        hosts.append(("cl", 100))
        self.net.create(hosts)
        d = self.out
        # Data dirs on tmpfs: each acknowledged record is fdatasync'd by all 5 gateways, and a
        # shared CI disk would make setup, not the fleet, the thing measured.
        for old in os.listdir("/dev/shm"):
            m = re.match(r"wgsoak-(\d+)$", old)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(f"/dev/shm/{old}", ignore_errors=True)
        self.datadir = f"/dev/shm/wgsoak-{os.getpid()}"
        os.makedirs(self.datadir, exist_ok=True)
        self.ca, certs = fleet.make_certs(d, DOMAIN, f"{PT_NAME}.{DOMAIN}")
        self.gw_cert, self.pt_cert = certs["gw"], certs["pt"]
        key = base64.b64encode(os.urandom(32)).decode()
        self.keys = [key]
        with open(f"{d}/admin.token", "w") as f:
            f.write("soak-admin-token-" + os.urandom(8).hex() + "\n")
        self.token = open(f"{d}/admin.token").read().strip()
        for g in self.gws:
            path = f"{d}/{g}.clusterkey"
            with open(path, "w") as f:
                f.write(key + "\n")
            os.chmod(path, 0o600)
        # the fleet roster: each gateway's node key, made before it first runs (gossip binds the
        # namespaces' veth addresses, so an open roster would need --fleet-open)
        with open(f"{d}/fleet.keys", "w") as f:
            for g in self.gws:
                key = subprocess.run([f"{self.bindir}/webgw", "identity", "--data-dir", f"{self.datadir}/{g}"],
                                     check=True, capture_output=True, text=True).stdout.strip()
                f.write(f"{key} {g}\n")
        for b, (mode, extra) in self.bes.items():
            argv = [sys.executable, f"{HERE}/backend.py", "--name", b, "--addr", self.net.ip(b), "--mode", mode,
                    "--log", f"{d}/{b}.events.jsonl", "--cert", self.pt_cert[0], "--key", self.pt_cert[1]] + extra
            self.be[b] = fleet.Proc(b, argv, self.net.hosts[b][0], f"{d}/{b}.log")
            self.be[b].start()
        san = {
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:quarantine_size_mb=16:verify_asan_link_order=0"
            f":log_path={d}/asan",
            "UBSAN_OPTIONS": f"print_stacktrace=1:log_path={d}/ubsan",
        }
        for g in self.gws:
            ip = self.net.ip(g)
            joins = []
            for o in self.gws:
                if o != g:
                    joins += ["--join", f"{self.net.ip(o)}:7946"]
            argv = [
                f"{self.bindir}/webgw", "--node-name", g, "--data-dir", f"{self.datadir}/{g}", "--domain", DOMAIN,
                "--http", f"{ip}:8080", "--https", f"{ip}:8443", "--gossip", f"{ip}:7946", "--api", f"{ip}:9080",
                "--cluster-key", f"{d}/{g}.clusterkey", "--fleet-keys", f"{d}/fleet.keys",
                "--admin-token-file", f"{d}/admin.token",
                "--tls-cert", self.gw_cert[0], "--tls-key", self.gw_cert[1], "--workers", "2",
                "--health-check", "http", "--health-path", "/health", "--health-interval", f"{HEALTH_INTERVAL_S}s",
                "--health-fall", str(HEALTH_FALL), "--health-rise", str(HEALTH_RISE),
                "--connect-timeout", "1s", "--response-timeout", "8s", "--api-rate-limit", "2000",
                "--drain-timeout", "15",
                # one owner holds the 1,000 names and churn reserves one more before an earlier
                # release has reached every gateway: the default limit (1,000) would refuse it
                "--max-names-per-owner", "2000",
            ] + joins
            env = dict(san)
            if g == self.skewed:
                env.update(fleet.faketime_env("-120s"))
            self.gw[g] = fleet.Proc(g, argv, self.net.hosts[g][0], f"{d}/{g}.log", env)
            self.gw[g].start()
        self.net.enter("cl")
        for g in self.gws:
            self.wait_healthy(g, 30)
        self.wait_members(len(self.gws), 60)
        self.log(f"{len(self.gws)} gateways alive on every member")
        for b in self.bes:
            self.wait_url(self.be_url(b) + "/health", 20)
        self.env = dict(os.environ, WEBGW_KEY=f"{d}/owner.key")
        subprocess.run([self.ctlbin, "keygen"], env=self.env, check=True, capture_output=True)
        self.make_names()

    def api(self, g, path, timeout=3, data=None, auth=False):
        req = urllib.request.Request(f"http://{self.net.ip(g)}:9080{path}", data=data)
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return json.loads(body) if path != "/metrics" else body.decode()

    def wait_url(self, url, timeout):
        end = time.time() + timeout
        while time.time() < end:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer in {timeout} s")

    def wait_healthy(self, g, timeout):
        self.wait_url(f"http://{self.net.ip(g)}:9080/healthz", timeout)

    def alive_seen(self, g):
        return sum(1 for m in self.api(g, "/api/v1/members") if m.get("state") == "alive")

    def wait_members(self, n, timeout):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if all(self.alive_seen(g) == n for g in self.gws):
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"members did not converge to {n} alive in {timeout} s")

    def ctl(self, g, *args):
        return subprocess.run(
            [self.ctlbin, "--api", f"http://{self.net.ip(g)}:9080"] + list(args),
            env=self.env, capture_output=True, text=True, timeout=30,
        )

    def make_names(self):
        """The 12 traffic names (every pair of backends, twice), the passthrough name and
        churn names up to --names in total, exposed through the gateways in turn."""
        if self.fl["names"] is not None:
            for n, bs in self.fl["names"].items():
                self.traffic_names[n] = [self.be_url(b) for b in bs]
        else:
            pairs = [(a, b) for i, a in enumerate(self.bes) for b in list(self.bes)[i + 1 :]]
            for i in range(12):
                a, b = pairs[i % len(pairs)]
                self.traffic_names[f"t{i:02d}"] = [self.be_url(a), self.be_url(b)]
        jobs = [(n, bs, False) for n, bs in self.traffic_names.items()]
        if self.pt_name:
            jobs.append((self.pt_name, [f"{self.net.ip('b1')}:8443", f"{self.net.ip('b3')}:8443"], True))
        while self.fl["churn"] and len(jobs) < self.a.names:
            jobs.append((self.new_churn_name(), self.random_backends(), False))
        t = time.time()

        def expose(i, job):
            name, bs, pt = job
            g = self.gws[i % len(self.gws)]
            args = []
            for b in bs:
                args += ["--backend", b]
            if pt:
                args.append("--tls-passthrough")
            for cmd in (["reserve", name], ["expose", name] + args):
                r = self.ctl(g, *cmd)
                if r.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} on {g}: {r.stderr.strip()}")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(expose, i, job) for i, job in enumerate(jobs)]:
                f.result()
        for name, bs, pt in jobs:
            self.names[name] = bs
        self.log(f"{len(jobs)} names exposed in {time.time() - t:.1f} s")
        end = time.time() + 60
        while time.time() < end:
            counts = [self.api(g, "/healthz").get("names", 0) for g in self.gws]
            if all(c >= len(jobs) for c in counts):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"names did not reach every gateway: {counts}")
        self.log(f"every gateway holds {len(jobs)} names")

    def new_churn_name(self):
        self.next_name += 1
        return f"c{self.next_name:05d}"

    def random_backends(self):
        bs = self.rng.sample(list(self.bes), self.rng.choice([1, 2, 2, 3]))
        return [self.be_url(b) for b in bs]

    # ---- running -----------------------------------------------------------------------

    def rel(self):
        return time.time() - self.t0

    def start_load(self):
        a = self.a
        argv = [
            sys.executable, f"{HERE}/load.py", "--gateways", ",".join(self.net.ip(g) for g in self.gws),
            "--names", ",".join(self.traffic_names), "--pt-name", self.pt_name or "", "--domain", DOMAIN,
            "--ca", self.ca, "--out", self.out, "--duration", str(a.duration), "--seed", str(a.seed),
            "--get-rate", str(a.get_rate), "--upload-max", str(a.upload_max),
        ] + self.fl["load"]
        self.load = subprocess.Popen(argv, stdout=open(f"{self.out}/load.log", "ab"), stderr=subprocess.STDOUT)

    def fault(self, action, target, **kw):
        ev = {"t": time.time(), "action": action, "target": target}
        ev.update(kw)
        self.faults.append(ev)
        self.log(f"fault {action} {target if target is not None else ''}")
        return ev

    async def run_schedule(self, schedule):
        """Faults in order; an undo overlaps the next fault only when that one starts during
        the hold (the key rotation under UDP loss)."""
        undo = []
        for at, action, target, hold in schedule:
            delay = self.t0 + at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            while undo and undo[0][0] <= time.time() + 0.01:
                await self.apply(*undo.pop(0)[1:])
            if self.stopping:
                return
            await self.apply(action, target)
            if hold:
                undo.append((time.time() + hold, UNDO[action], target))
                undo.sort(key=lambda u: u[0])
                nxt = [s for s in schedule if s[0] > at]
                if not nxt or self.t0 + nxt[0][0] >= undo[0][0]:
                    await asyncio.sleep(max(0, undo[0][0] - time.time()))
                    await self.apply(*undo.pop(0)[1:])
        for when, action, target in undo:
            await asyncio.sleep(max(0, when - time.time()))
            await self.apply(action, target)
        self.schedule_done = True

    async def apply(self, action, target):
        try:
            await self.do(action, target)
        except Exception as e:  # a fault that could not be applied is itself reported
            self.fault("error", f"{action} {target}: {e}")

    async def do(self, action, target):
        loop = asyncio.get_running_loop()
        if action == "kill9":
            self.fault(action, target)
            self.gw[target].signal(signal.SIGKILL)
            await loop.run_in_executor(None, self.gw[target].wait, 5)
        elif action == "start":
            self.gw[target].start()
            self.fault("gw_start", target)
        elif action == "rolling_restart":
            ev = self.fault(action, None)
            for g in self.gws:
                p = self.gw[g]
                t = time.time()
                p.signal(signal.SIGTERM)
                rc = await loop.run_in_executor(None, p.wait, 30)
                self.fault("sigterm", g, rc=rc, stop_s=round(time.time() - t, 2))
                if rc is None:
                    p.signal(signal.SIGKILL)
                    await loop.run_in_executor(None, p.wait, 5)
                p.start()
                try:
                    await loop.run_in_executor(None, self.wait_healthy, g, 30)
                except RuntimeError as e:
                    self.fault("error", str(e))
                await asyncio.sleep(2)  # let it rejoin before the next one goes
            ev["end"] = time.time()
        elif action == "backend_kill":
            self.fault(action, target)
            self.be[target].signal(signal.SIGKILL)
        elif action == "backend_start":
            self.be[target].start()
            self.fault(action, target)
        elif action == "backend_stall":
            self.fault(action, target)
            self.be[target].signal(signal.SIGUSR1, expected=False)
        elif action == "backend_unstall":
            self.be[target].signal(signal.SIGUSR2, expected=False)
            self.fault(action, target)
        elif action == "partition":
            # target loses gossip (UDP and TCP) with every other gateway, both ways; HTTP stays
            for rule in (["-I", "INPUT", "-p", "udp", "--dport", "7946"], ["-I", "INPUT", "-p", "tcp", "--dport", "7946"],
                         ["-I", "INPUT", "-p", "udp", "--sport", "7946"], ["-I", "INPUT", "-p", "tcp", "--sport", "7946"]):
                self.net.iptables(target, *rule, "-j", "DROP")
            self.fault(action, target)
        elif action == "heal":
            self.net.iptables(target, "-F", "INPUT")
            self.fault(action, target)
        elif action == "udp_loss":
            for g in self.gws:
                self.net.iptables(g, "-I", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "random",
                                  "--probability", str(target), "-j", "DROP")
            self.fault(action, target)
        elif action == "udp_loss_end":
            for g in self.gws:
                self.net.iptables(g, "-F", "INPUT")
            self.fault(action, None)
        elif action == "rotate_key":
            ev = self.fault(action, None)
            new = base64.b64encode(os.urandom(32)).decode()
            old = self.keys[0]
            for op in ("install", "use", "remove"):
                k = old if op == "remove" else new
                for g in self.gws:
                    ok = await loop.run_in_executor(None, self.key_op, g, op, k)
                    if not ok:
                        self.fault("error", f"key {op} on {g} failed")
                await asyncio.sleep(1)
            self.keys = [new]
            ev["end"] = time.time()

    def key_op(self, g, op, key):
        for _ in range(10):
            try:
                self.api(g, "/api/v1/admin/keys", data=json.dumps({op: key}).encode(), auth=True)
                return True
            except urllib.error.HTTPError as e:
                self.log(f"key {op} on {g}: {e.code} {e.read()[:200]!r}")
                return False
            except (urllib.error.URLError, OSError):
                time.sleep(1)  # restarting: try again
        return False

    async def churn(self):
        """Every second: release one churn name, claim a new one, re-expose another."""
        while self.fl["churn"] and self.churn_stop_at is None and not self.stopping:
            t = time.time()
            # A name changed through one gateway a moment ago may not have reached the gateway
            # the next operation picks (it would answer "not reserved", as any eventually
            # consistent store does): a user reserves and exposes through one gateway, and
            # touches the name elsewhere later. So release or re-expose only names whose last
            # change is CHURN_SETTLE_S old (records spread in about a second, even under loss).
            live = [n for n, bs in self.names.items()
                    if bs is not None and n not in self.traffic_names and n != self.pt_name
                    and t - self.changed_at.get(n, 0) >= CHURN_SETTLE_S]
            ops = []
            if live:
                gone = self.rng.choice(live)
                ops.append(("release", gone, None))
                rest = [n for n in live if n != gone]  # never re-expose what this tick releases
                if rest:
                    ops.append(("expose", self.rng.choice(rest), self.random_backends()))
            ops.append(("reserve+expose", self.new_churn_name(), self.random_backends()))
            for op, name, bs in ops:
                await self.churn_op(op, name, bs)
            await asyncio.sleep(max(0, 1 - (time.time() - t)))
        self.churning = False

    async def churn_op(self, op, name, bs, first=None):
        if op == "reserve+expose":
            g = await self.churn_op("reserve", name, None)
            if g is not None:
                await self.churn_op("expose", name, bs, g)
            return
        args = [op, name]
        for b in bs or []:
            args += ["--backend", b]
        order = list(self.gws)
        self.rng.shuffle(order)
        if first:
            order.remove(first)
            order.insert(0, first)
        t = time.time()
        for g in order:
            p = await asyncio.create_subprocess_exec(
                self.ctlbin, "--api", f"http://{self.net.ip(g)}:9080", *args, env=self.env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            try:
                _, err = await asyncio.wait_for(p.communicate(), 20)
            except asyncio.TimeoutError:
                p.kill()
                await p.wait()
                err, p.returncode = b"timeout", 99
            ev = {"t": t, "end": time.time(), "op": op, "name": name, "gateway": g, "rc": p.returncode,
                  "err": err.decode(errors="replace").strip()[:200]}
            self.churnlog.write(json.dumps(ev) + "\n")
            if p.returncode == 0:
                if op != "reserve":
                    self.names[name] = None if op == "release" else bs
                    self.changed_at[name] = time.time()
                return g
            if p.returncode != 3:  # refused (not unreachable): a real answer, not a retry case
                return None
        return None

    def proc_sample(self, p):
        if not p.alive():
            return None
        pid = p.pid
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            kinds = fleet.fd_kinds(pid)
        except (OSError, AttributeError):
            return None
        return {"pid": pid, "rss_kb": rss, "fds": sum(kinds.values()), "fd_kinds": kinds}

    def gw_role(self, local, remote, state):
        """What a gateway's TCP socket is for, from its addresses (the ports setup() gives)."""
        if state == "LISTEN":
            return "listen"
        if local[1] in (8080, 8443):
            return "client"
        if local[1] == 9080:
            return "api"
        be = {self.net.ip(b): b for b in self.bes}.get(remote[0])
        if be:
            return f"to {be}:{remote[1]}"
        if 7946 in (local[1], remote[1]):
            return "gossip"
        return "other"

    def fd_snapshot(self, g):
        """One gateway's descriptors by kind and its TCP sockets by role and state, with the
        pooled idle backend connections it reported at the same moment."""
        p = self.gw[g]
        if not p.alive():
            return None
        try:
            b = fleet.fd_breakdown(p.pid, self.gw_role)
        except OSError as e:
            return {"error": str(e)[:100]}
        try:
            m = self.api(g, "/metrics")
            pool = re.search(r"^webgw_backend_pool_idle\s+(\d+)", m, re.M)
            b["pool_idle"] = int(pool.group(1)) if pool else None
            conns = re.search(r"^webgw_http_connections\s+(\d+)", m, re.M)
            b["sessions"] = int(conns.group(1)) if conns else None
        except (urllib.error.URLError, OSError, ValueError) as e:
            b["api_error"] = str(e)[:100]
        b["t"] = time.time()
        return b

    def fd_snapshots(self, label):
        with concurrent.futures.ThreadPoolExecutor(len(self.gws)) as ex:
            self.fd_breakdowns[label] = dict(zip(self.gws, ex.map(self.fd_snapshot, self.gws)))

    async def monitor(self):
        loop = asyncio.get_running_loop()
        while not self.stopping:
            t = time.time()
            rows = await asyncio.gather(*(loop.run_in_executor(None, self.sample_gw, g) for g in self.gws))
            self.samples.write(json.dumps({"t": t, "gw": dict(zip(self.gws, rows))}) + "\n")
            for g in self.gws:
                r = self.gw[g].reap()
                if r is not None:
                    rc, expected = r
                    if not expected:
                        self.fault("crash", g, rc=rc)
            await asyncio.sleep(max(0.2, self.a.sample_s - (time.time() - t)))

    def sample_gw(self, g):
        s = self.proc_sample(self.gw[g]) or {}
        if not s:
            return s
        try:
            s["alive"] = self.alive_seen(g)
            m = self.api(g, "/metrics")
            conns = re.search(r"^webgw_http_connections\s+(\d+)", m, re.M)
            s["sessions"] = int(conns.group(1)) if conns else None
            # idle pooled backend connections: open descriptors the FD invariant nets out
            pool = re.search(r"^webgw_backend_pool_idle\s+(\d+)", m, re.M)
            s["pool_idle"] = int(pool.group(1)) if pool else None
            # active libuv timers and handles, control loop plus workers and probes (each too)
            for key, fam in (("timers", "webgw_loop_timers"), ("handles", "webgw_loop_handles")):
                vals = re.findall(rf'^{fam}\{{loop="([^"]*)"\}}\s+(\d+)', m, re.M)
                s[key] = sum(int(v) for _, v in vals) if vals else None
                s[key + "_by_loop"] = {loop: int(v) for loop, v in vals}
            # gossip's drops by reason and its queues, and the kernel's UDP receive-buffer drops
            # in the gateway's namespace: what a late record or verdict is read against
            s["gossip_drops"] = {r: int(v) for r, v in re.findall(
                r'^webgw_gossip_drops_total\{reason="([^"]*)"\}\s+(\d+)', m, re.M) if int(v)}
            s["gossip_queue"] = {c: int(v) for c, v in re.findall(
                r'^webgw_gossip_queue\{class="([^"]*)"\}\s+(\d+)', m, re.M)}
            s["udp_rcvbuf_errors"] = self.udp_rcvbuf_errors(self.gw[g])
            health = {}
            for e in self.api(g, "/api/v1/backends", timeout=5):
                key = e.get("key") or e.get("backend")
                health.setdefault(key, e.get("health"))
            s["health"] = health
        except (urllib.error.URLError, OSError, ValueError) as e:
            s["api_error"] = str(e)[:100]
        return s

    @staticmethod
    def udp_rcvbuf_errors(proc):
        """Udp RcvbufErrors of the process's network namespace (/proc/PID/net/snmp), or None."""
        try:
            with open(f"/proc/{proc.pid}/net/snmp") as f:
                rows = [line.split() for line in f if line.startswith("Udp:")]
            return int(rows[1][rows[0].index("RcvbufErrors")])
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    async def converge(self, bound):
        """After churn: the time until every gateway lists the same records, or None."""
        loop = asyncio.get_running_loop()
        t = time.time()
        last = None
        self.convergence_polls = []
        while time.time() - t < bound:
            t_poll = time.time()
            views = await asyncio.gather(*(loop.run_in_executor(None, self.names_view, g) for g in self.gws))
            last = views
            if all(v is not None for v in views) and all(v == views[0] for v in views):
                return time.time() - t, views
            self.convergence_polls.append(self.views_differ(t_poll - t, time.time() - t_poll, views))
            await asyncio.sleep(1)
        return None, last

    def views_differ(self, at, took, views):
        """One poll that found the gateways apart: per gateway, the names where it differs from
        the view most gateways hold (missing, extra or other contents), or None if it did not answer."""
        keys = set().union(*(v.keys() for v in views if v is not None))
        majority = {}
        for n in keys:
            votes = {}
            for v in views:
                if v is not None and n in v:
                    votes[v[n]] = votes.get(v[n], 0) + 1
            best = max(votes.values())
            majority[n] = next(x for x, c in votes.items() if c == best) if 2 * best > len(views) else None
        per_gw = {}
        for g, v in zip(self.gws, views):
            if v is None:
                per_gw[g] = None
                continue
            diff = [n for n in keys if v.get(n) != majority[n]]
            per_gw[g] = {"count": len(diff), "names": sorted(diff)[:3]}
        return {"at_s": round(at, 2), "poll_s": round(took, 2), "differ": per_gw}

    def names_view(self, g):
        try:
            out = {}
            for n in self.api(g, "/api/v1/names", timeout=10):
                if n["name"] in out:
                    out[n["name"]] = ("DUPLICATE",)
                else:
                    out[n["name"]] = (n.get("owner"), n.get("version"), tuple(sorted(n.get("backends") or [])))
            return out
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return None

    async def main_run(self, duration, schedule, churn_stop):
        self.t0 = time.time()
        self.start_load()
        tasks = [
            asyncio.create_task(self.monitor()),
            asyncio.create_task(self.run_schedule(schedule)),
            asyncio.create_task(self.churn()),
        ]
        await asyncio.sleep(max(0, self.t0 + churn_stop - time.time()))
        while not self.schedule_done:  # a late schedule delays the churn stop, never cuts a fault
            await asyncio.sleep(0.5)
        self.churn_stop_at = time.time()
        while self.churning:
            await asyncio.sleep(0.2)
        self.log("churn stopped; checking convergence")
        self.fault("churn_stop", None)
        took, views = await self.converge(self.a.converge_bound)
        self.convergence = {"took_s": took, "bound_s": self.a.converge_bound, "views": views,
                            "polls_apart": self.convergence_polls,
                            "expected": {n: bs for n, bs in self.names.items() if bs is not None}}
        self.log(f"records converged in {took:.1f} s" if took is not None else "records did NOT converge")
        await asyncio.sleep(max(0, self.t0 + duration - time.time()))
        await asyncio.get_running_loop().run_in_executor(None, self.fd_snapshots, "end of load")
        self.stopping = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def finish(self):
        if self.load:
            try:
                self.load.wait(60)
            except subprocess.TimeoutExpired:
                self.load.kill()
        self.fd_snapshots("after the load")
        self.fault("stop", None)
        for g in self.gws:
            p = self.gw[g]
            if p.alive():
                t = time.time()
                p.stop(30)
                self.fault("sigterm", g, rc=p.exits[-1][1] if p.exits else None, stop_s=round(time.time() - t, 2))
            else:
                r = p.reap()
                if r is not None and not r[1]:
                    self.fault("crash", g, rc=r[0])
        for b in self.be.values():
            b.stop(5)

    def cleanup(self):
        for p in list(self.gw.values()) + list(self.be.values()):
            if p.alive():
                p.signal(signal.SIGKILL)
                p.wait(5)
        if self.load and self.load.poll() is None:
            self.load.kill()
        if not self.a.keep_netns:
            self.net.destroy()
        if getattr(self, "datadir", None):
            shutil.rmtree(self.datadir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="ci", choices=["ci", "hour", "mixed10"],
                    help="ci: 3 minutes, 5 gateways, every fault; hour: 60 minutes of the same; mixed10: "
                         "issue 9's 10 minutes of mixed uploads and GETs on 3 gateways, a backend killed twice")
    ap.add_argument("--duration", type=float, default=0, help="seconds of load (default: the profile's)")
    ap.add_argument("--build", default="build", help="build dir holding bin/webgw (build-asan for ASan)")
    ap.add_argument("--ctl-build", default="",
                    help="build dir of the webgwctl the churn uses (default --build; a release one "
                         "keeps 2,000 setup calls fast when the gateways run under ASan)")
    ap.add_argument("--out", default="", help="output folder (default BUILD/soak-PROFILE)")
    ap.add_argument("--names", type=int, default=1000)
    ap.add_argument("--get-rate", type=float, default=100)
    ap.add_argument("--upload-max", type=int, default=20 << 20)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--sample-s", type=float, default=2)
    ap.add_argument("--converge-bound", type=float, default=30)
    ap.add_argument("--health-bound", type=float, default=15,
                    help="seconds within which a backend's verdict must be right after it changes")
    ap.add_argument("--keep-netns", action="store_true")
    a = ap.parse_args()
    duration, schedule, churn_stop, a.fleet = profile(a.profile, a.duration)
    a.duration = duration
    a.out = os.path.abspath(a.out or os.path.join(a.build, f"soak-{a.profile}"))
    if os.path.isdir(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)
    s = Soak(a)

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    rc = 2
    try:
        try:
            s.setup()
        except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
            print(f"soak: setup failed: {e}", file=sys.stderr)
            verdict.setup_failed(a.out, a.profile, a.build, str(e))
            for g in s.gws:
                if g in s.gw:
                    print(f"--- {g} log tail", file=sys.stderr)
                    os.system(f"tail -n 5 {a.out}/{g}.log >&2")
            return 2
        s.log(f"profile {a.profile}: {duration:.0f} s, seed {a.seed}, build {a.build}, output {a.out}")
        asyncio.run(s.main_run(duration, schedule, churn_stop))
        s.finish()
        meta = {
            "profile": a.profile, "duration": duration, "t0": s.t0, "seed": a.seed, "build": a.build,
            "gateways": {g: s.net.ip(g) for g in s.gws}, "backends": {b: s.net.ip(b) for b in s.bes},
            "backend_modes": {b: m for b, (m, _) in s.bes.items()},
            "traffic_names": s.traffic_names, "pt_name": s.pt_name, "pt_backends": ["b1", "b3"], "skewed": s.skewed,
            "kinds": s.fl["kinds"], "upload_names": s.fl["names"] and ["pooled", "fresh"],
            "health_bound": a.health_bound, "gw_starts": {g: s.gw[g].starts for g in s.gws},
            "gw_exits": {g: s.gw[g].exits for g in s.gws}, "convergence": s.convergence, "faults": s.faults,
            "asan": "asan" in os.path.basename(os.path.normpath(a.build)),
            "fd_breakdowns": s.fd_breakdowns,
        }
        with open(os.path.join(a.out, "meta.json"), "w") as f:
            json.dump(meta, f, default=str)
        rc = verdict.judge(a.out, meta)
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        rc = 130
    finally:
        s.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
