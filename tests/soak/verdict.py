"""verdict.py - judges a finished soak run from the files it left (load counters and
failures, gateway samples, backend events, churn log, faults) and writes report.md with
one verdict per invariant and gnuplot SVGs over time with the faults marked.

A failure is *explained* only by a fault that makes it unavoidable for a DNS round-robin
client: a backend that stalls (every gateway waits on the same backend), and, for requests
that are not idempotent, a backend that dies, resets or closes the connection under the
request, or the gateway that held it being killed. Everything else is a gateway defect.
"""
import glob
import json
import os
import re
import statistics
import subprocess

IDLE_CLOSE = "backend closed the idle keep-alive connection as the request arrived"
GRACE_S = 20  # a (re)started gateway learns the fleet's health verdicts within this

# the invariants, as the report names them
T_TRAFFIC = "Every kind of traffic was served"
T_IDEM = "No idempotent request failed that a DNS round-robin client could have avoided"
T_NONIDEM = "A non-idempotent request failed only when its backend (or its gateway) died under it"
T_HEALTH = "Every probed backend's verdict is right within the bound, never unknown"
T_RECORDS = "After churn, records identical on every gateway within the bound, one holder per name"
T_RES = "RSS, open FDs, sessions and timers flat over the last two thirds"
T_UPLOADS = "Every upload size, chunked and Content-Length, on fresh and pooled backend connections"
T_CRASH = "No crash, clean SIGTERM exits, no sanitizer report"


def jsonl(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    return out


class Run:
    def __init__(self, out, meta):
        self.out, self.meta = out, meta
        self.t0 = meta["t0"]
        self.ip2be = {ip: b for b, ip in meta["backends"].items()}
        self.ip2gw = {ip: g for g, ip in meta["gateways"].items()}
        self.faults = meta["faults"]
        self.stats = jsonl(f"{out}/stats.jsonl")
        self.failures = jsonl(f"{out}/failures.jsonl")
        self.retries = jsonl(f"{out}/retries.jsonl")
        self.samples = jsonl(f"{out}/samples.jsonl")
        self.churn = jsonl(f"{out}/churn.jsonl")
        self.be_events = []
        for b in meta["backends"]:
            self.be_events += jsonl(f"{out}/{b}.events.jsonl")
        self.be_ids = {}
        self.idle_closes = {}  # (backend, "gateway ip:port") -> times the backend closed it idle
        for e in self.be_events:
            if e.get("id"):
                self.be_ids[e["id"]] = e
            if e.get("event") == "idle_close" and e.get("peer"):
                self.idle_closes.setdefault((e["backend"], e["peer"]), []).append(e["t"])
        self.windows = self.fault_windows()

    def rel(self, t):
        return t - self.t0

    def fault_windows(self):
        """(kind, target, start, end) for backend death, backend stall and gateway kills."""
        w = []
        open_ = {}
        for f in self.faults:
            a, tg, t = f["action"], f.get("target"), f["t"]
            if a in ("backend_kill", "backend_stall", "kill9", "partition", "udp_loss"):
                # a second fault on a target already down keeps the first one's start
                open_.setdefault((a, tg if a != "udp_loss" else None), t)
            elif a in ("backend_start", "backend_unstall", "gw_start", "heal", "udp_loss_end"):
                start_kind = {"backend_start": "backend_kill", "backend_unstall": "backend_stall", "gw_start": "kill9",
                              "heal": "partition", "udp_loss_end": "udp_loss"}[a]
                key = (start_kind, tg if a != "udp_loss_end" else None)
                if key in open_:
                    w.append((start_kind, key[1], open_.pop(key), t))
            elif a == "sigterm":
                w.append(("sigterm", tg, t - f.get("stop_s", 0), t))
        end = self.t0 + self.meta["duration"] + 60
        for (k, tg), t in open_.items():
            w.append((k, tg, t, end))
        return w

    def name_backends(self, name):
        if name == self.meta.get("pt_name"):
            return set(self.meta["pt_backends"])
        out = set()
        for url in self.meta["traffic_names"].get(name, []):
            ip = re.sub(r"^\w+://", "", url).split(":")[0]
            out.add(self.ip2be.get(ip))
        return out

    def overlaps(self, kind, start, end, targets, slack=0.0):
        for k, tg, ws, we in self.windows:
            if k == kind and (targets is None or tg in targets) and start <= we + slack and end >= ws:
                return (k, tg, ws, we)
        return None

    def explain(self, f):
        """Why a failure was unavoidable, or None."""
        bound = self.meta["health_bound"]
        bes = self.name_backends(f.get("name"))
        st, en = f.get("start", f["t"]), f["t"]
        w = self.overlaps("backend_stall", st, en, bes, slack=bound)
        if w and re.match(r"(http_504|timeout|stall|all_gateways|reset)", f["cause"]):
            return f"backend {w[1]} stalled at t={self.rel(w[2]):.0f}s"
        detail = f.get("detail", "")
        if (f["cause"] == "http_503" and "no healthy backend" in detail) or (
            f["cause"] == "http_502" and "connect" in detail):
            # One backend of the name dead, and every other one failed a request just before
            # (a reset or an idle close): passive health (down on a reset, backoff 1-30 s) has
            # them all down, and the documented answer is 503 (or 502 after the dead one's
            # refused connect).
            for k in ("backend_kill", "backend_stall"):
                w = self.overlaps(k, st, en, bes, slack=bound)
                if w and (f["cause"] == "http_503" or self.meta["backends"][w[1]] + ":" in detail):
                    others = bes - {w[1]}
                    if others and all(self.failed_recently(b, st - 30, en) for b in others):
                        return (f"backend {w[1]} down since t={self.rel(w[2]):.0f}s and "
                                f"{', '.join(sorted(others))} passively down after a reset")
        ev = self.be_ids.get(f.get("id"))
        if f["cause"] == "http_502" and ev and ev.get("event") in ("reset", "idle_close_race"):
            # the backend it went to reset it before answering, and no other backend of the
            # name was there to retry on
            others = bes - {ev["backend"]}
            if self.meta["backends"][ev["backend"]] + ":" in detail and others and all(
                    self.overlaps("backend_kill", st, en, {b}, slack=bound)
                    or self.overlaps("backend_stall", st, en, {b}, slack=bound) for b in others):
                return f"backend {ev['backend']} {ev['event']} before answering, {', '.join(sorted(others))} down"
        if f.get("idempotent"):
            return None
        why = self.idle_close_under(f)
        if why:
            return why
        if ev and ev.get("event") in ("reset", "idle_close_race"):
            # only when the gateway's answer names that backend: a retry that then fails on
            # another backend is the gateway's own failure
            ip = self.meta["backends"][ev["backend"]]
            if f["cause"].startswith("http_") and ip + ":" not in f.get("detail", ""):
                return None
            return f"backend {ev['backend']} {ev['event']} under the request"
        w = self.overlaps("backend_kill", st, en, bes)
        if w:
            return f"backend {w[1]} killed at t={self.rel(w[2]):.0f}s mid-request"
        gws = {self.ip2gw.get(g) for g in f.get("gateways", [])[-1:]}
        w = self.overlaps("kill9", st, en, gws)
        if w:
            return f"gateway {w[1]} killed at t={self.rel(w[2]):.0f}s mid-request"
        return None

    def idle_close_under(self, f):
        """A 502 for a request on a kept-alive connection that the backend logged closing as
        idle during the request (its idle timeout fired as the request arrived), or None. The
        gateway names the connection by its local port; the backend logs its peer."""
        m = re.search(r"backend ([\d.]+):\d+: .* before answering \(kept-alive connection from port "
                      r"(\d+), idle (\d+) ms\)", f.get("detail", ""))
        if f["cause"] != "http_502" or not m or not f.get("gateways"):
            return None
        b, gw = self.ip2be.get(m.group(1)), f["gateways"][-1]
        for t in self.idle_closes.get((b, f"{gw}:{m.group(2)}"), []):
            if f.get("start", f["t"]) - 1 <= t <= f["t"] + 1:
                return (f"{IDLE_CLOSE}: {b} closed its connection from {self.ip2gw.get(gw, gw)} port "
                        f"{m.group(2)} (idle {m.group(3)} ms at reuse) at t={self.rel(t):.1f}s")
        return None

    def failed_recently(self, b, t0, t1):
        return any(e["backend"] == b and e.get("event") in ("reset", "idle_close_race") and t0 <= e["t"] <= t1
                   for e in self.be_events)

    def truth(self, b, t):
        """A backend's real state at t: down while killed or stalled."""
        for k, tg, ws, we in self.windows:
            if tg == b and k in ("backend_kill", "backend_stall") and ws <= t < we:
                return "down"
        return "up"

    def gw_start_before(self, g, t):
        starts = [s for s in self.meta["gw_starts"][g] if s <= t]
        return max(starts) if starts else None


def inv_traffic(r):
    ok = {}
    for s in r.stats:
        for k, v in s["ok"].items():
            ok[k] = ok.get(k, 0) + v
    kinds = r.meta.get("kinds") or ["get", "upload", "download", "sse", "ws", "https", "passthrough"]
    missing = [k for k in kinds if ok.get(k, 0) == 0]
    detail = ", ".join(f"{k} {ok.get(k, 0)}" for k in kinds)
    return not missing, f"completed: {detail}" + (f"; none of: {', '.join(missing)}" if missing else ""), ok


UPLOAD_CLASS_SIZES = [0, 1, 65535, 65536, 65537, 1 << 20, 100 << 20]


def upload_classes(r):
    """Completed uploads per (size, encoding, backend connection) class, the connection as the
    backend saw it (its first request: fresh; a later one: pooled)."""
    got = {}
    for u in jsonl(f"{r.out}/uploads.jsonl"):
        k = (u["size"], "chunked" if u["chunked"] else "content-length", u["pool"])
        got[k] = got.get(k, 0) + 1
    return got


def inv_upload_classes(r):
    got = upload_classes(r)
    want = [(s, e, p) for s in UPLOAD_CLASS_SIZES for e in ("content-length", "chunked") for p in ("fresh", "pooled")]
    missing = [k for k in want if not got.get(k)]
    n = sum(got.values())
    detail = (f"{n} uploads checked by hash; {len(want) - len(missing)} of {len(want)} classes (7 sizes x "
              f"chunked/Content-Length x fresh/pooled backend connection) completed at least once")
    if missing:
        detail += "; never: " + ", ".join(f"{s} B {e} {p}" for s, e, p in missing[:8])
    return not missing, detail, got


def inv_failures(r, idempotent):
    fs = [f for f in r.failures if bool(f.get("idempotent")) == idempotent]
    unexplained, explained = [], []
    for f in fs:
        why = r.explain(f)
        (explained if why else unexplained).append((f, why))
    by = {}
    for f, _ in unexplained:
        by[f["cause"]] = by.get(f["cause"], 0) + 1
    detail = f"{len(fs)} failed, {len(explained)} explained by faults, {len(unexplained)} unexplained"
    races = sum(1 for _, why in explained if why.startswith(IDLE_CLOSE))
    if races:
        detail += f"; of the explained, {races}: {IDLE_CLOSE} (the keep-alive race, not retried: RFC 9110 9.2.2)"
    if by:
        detail += " (" + ", ".join(f"{k} {v}" for k, v in sorted(by.items(), key=lambda x: -x[1])) + ")"
    return not unexplained, detail, unexplained, explained


def inv_health(r):
    bound = r.meta["health_bound"]
    bad = {}
    checked = 0
    for s in r.samples:
        t = s["t"]
        for g, row in s["gw"].items():
            h = row.get("health")
            if not h:
                continue
            start = r.gw_start_before(g, t)
            if start is None or t - start < GRACE_S:
                continue
            if t < r.t0 + bound:
                continue  # the traffic names were exposed just before t0: a first verdict takes
                # rise probes, within the documented bound of their exposure
            if r.overlaps("partition", t, t, {g}, slack=bound):
                continue  # cut off from the fleet's reports: judged again a bound after the heal
            for key, v in h.items():
                ip = key.split(":")[0]
                b = r.ip2be.get(ip)
                if b is None:
                    continue
                checked += 1
                now, before = r.truth(b, t), r.truth(b, t - bound)
                if v == "unknown":
                    kind = "unknown"
                elif now == before and v != now and all(r.truth(b, t - x) == now for x in range(0, int(bound) + 1)):
                    kind = f"{v} but {now}"
                else:
                    continue
                k = (g, key, kind)
                e = bad.setdefault(k, [t, t, 0])
                e[1] = t
                e[2] += 1
    rows = sorted(bad.items(), key=lambda x: x[1][0])
    detail = f"{checked} verdicts checked (bound {bound:.0f} s, {GRACE_S} s grace after a gateway start)"
    if rows:
        n = sum(v[2] for _, v in rows)
        detail += f"; {n} wrong: " + "; ".join(
            f"{g} {key} {kind} t={r.rel(a):.0f}..{r.rel(b):.0f}s" for (g, key, kind), (a, b, _) in rows[:6])
    return not rows and checked > 0, detail, rows


def inv_records(r):
    c = r.meta.get("convergence") or {}
    took, views, expected = c.get("took_s"), c.get("views"), c.get("expected") or {}
    problems = []
    if took is None:
        problems.append(f"gateways still differ after {c.get('bound_s')} s")
    apart = c.get("polls_apart") or []
    if views:
        for g, v in zip(r.meta["gateways"], views):
            if v is None:
                problems.append(f"{g} did not answer")
                continue
            dup = [n for n, x in v.items() if x == ["DUPLICATE"]]
            if dup:
                problems.append(f"{g}: {len(dup)} names listed twice")
        v0 = views[0] or {}
        exp = {n: sorted(re.sub(r"^\w+://", "", b) for b in bs) for n, bs in expected.items()}
        got = {n: sorted(re.sub(r"^\w+://", "", b) for b in x[2]) for n, x in v0.items() if x != ["DUPLICATE"]}
        missing = [n for n in exp if n not in got]
        extra = [n for n in got if n not in exp]
        differ = [n for n in exp if n in got and got[n] != exp[n]]
        if missing or extra or differ:
            problems.append(f"vs the churn client: {len(missing)} missing ({', '.join(missing[:3])}), "
                            f"{len(extra)} unexpected ({', '.join(extra[:3])}), {len(differ)} with other backends "
                            f"({', '.join(differ[:3])})")
        size = len(v0)
    else:
        size = 0
    okops = sum(1 for c_ in r.churn if c_["rc"] == 0)
    # A gateway cut off from the fleet (partitioned, or just restarted and catching up) may not
    # have seen a claim made elsewhere a moment ago, and refuses to release or expose it: the
    # answer an available-under-partition store gives. Explained while the fault lasts and for
    # the records bound after it; any other refusal is a failure.
    settle = c.get("bound_s") or 30
    refusals = [c_ for c_ in r.churn if c_["rc"] not in (0, 3)]
    explained = [c_ for c_ in refusals if c_.get("gateway") in r.meta["gateways"] and any(
        r.overlaps(k, c_["t"], c_.get("end", c_["t"]), {c_["gateway"]}, slack=settle)
        for k in ("partition", "kill9", "sigterm"))]
    refused = len(refusals) - len(explained)
    unreach = sum(1 for c_ in r.churn if c_["rc"] == 3)
    ops = (f"{okops} churn operations accepted, {refused} refused, {len(explained)} refused by a gateway "
           f"cut off or restarting at the time, {unreach} tries on a gateway that was down")
    detail = (f"{ops}; after churn stopped, {size} names identical on every gateway in {took:.1f} s "
              f"(bound {c.get('bound_s'):.0f} s)" if took is not None else ops)
    if refused:
        problems.append(f"{refused} churn operations refused")
    if apart:
        detail += "; apart at " + ", ".join(
            f"t+{p['at_s']:.1f} s (poll {p['poll_s']:.1f} s: "
            + " ".join(f"{g} {'no answer' if d is None else d['count']}" for g, d in p["differ"].items()
                       if d is None or d["count"]) + ")" for p in apart[:4])
    if problems:
        detail += "; " + "; ".join(problems)
    return not problems, detail


def inv_resources(r):
    """RSS, FDs, sessions and timers flat. FDs are judged net of the idle pooled backend
    connections the gateway reports (webgw_backend_pool_idle): the pool keeps the last
    minute's peak backend concurrency open, which fault bursts raise, and that is not a leak."""
    d = r.meta["duration"]
    w0 = r.t0 + d / 3
    out, ok, rows, raw_fds = [], True, {}, []
    for g in r.meta["gateways"]:
        last_start = max(r.meta["gw_starts"][g])
        start = max(w0, last_start + GRACE_S)
        pts = [(s["t"], s["gw"][g]) for s in r.samples if s["t"] >= start and s["gw"].get(g, {}).get("rss_kb")]
        if len(pts) < 8 or r.t0 + d - start < d / 3:
            out.append(f"{g}: not judged (last start at t={r.rel(last_start):.0f}s)")
            continue
        q = max(2, len(pts) // 4)
        first, last = pts[:q], pts[-q:]
        med = lambda xs, k: statistics.median(x[1].get(k) or 0 for x in xs)
        rss0, rss1 = med(first, "rss_kb"), med(last, "rss_kb")
        raw0, raw1 = med(first, "fds"), med(last, "fds")
        # net of the pool, per sample (a gateway whose /metrics lacks the gauge: raw FDs)
        have_pool = all(x[1].get("pool_idle") is not None for x in first + last)
        if have_pool:
            pool0, pool1 = med(first, "pool_idle"), med(last, "pool_idle")
            net = lambda xs: statistics.median(x[1]["fds"] - x[1]["pool_idle"] for x in xs)
            fd0, fd1 = net(first), net(last)
        else:
            pool0 = pool1 = None
            fd0, fd1 = raw0, raw1
            raw_fds.append(g)
        se0, se1 = med(first, "sessions"), med(last, "sessions")
        # libuv timers (control loop and workers): a session holds one, so they follow sessions
        have_timers = all(x[1].get("timers") is not None for x in first + last)
        ti0, ti1 = (med(first, "timers"), med(last, "timers")) if have_timers else (None, None)
        grow_rss = rss1 > rss0 * 1.25 + 8192
        grow_fd = fd1 > fd0 + 32
        grow_se = se1 > se0 + 32
        grow_ti = not have_timers or ti1 > ti0 + 32
        rows[g] = {"rss": (rss0, rss1), "fds": (fd0, fd1), "raw_fds": (raw0, raw1), "pool": (pool0, pool1),
                   "sessions": (se0, se1), "from": r.rel(start), "timers": (ti0, ti1)}
        if grow_rss or grow_fd or grow_se or grow_ti:
            ok = False
            timers = f"{ti0:.0f}->{ti1:.0f}" if have_timers else "not reported by /metrics"
            fds = (f"FDs net of pooled {fd0:.0f}->{fd1:.0f} (raw {raw0:.0f}->{raw1:.0f}, pooled idle "
                   f"{pool0:.0f}->{pool1:.0f})" if have_pool else f"FDs {fd0:.0f}->{fd1:.0f} (raw)")
            out.append(f"{g} grew: RSS {rss0 / 1024:.1f}->{rss1 / 1024:.1f} MiB, {fds}, "
                       f"sessions {se0:.0f}->{se1:.0f}, timers {timers}")
    judged = len(rows)
    how = ("FDs net of idle pooled backend connections (webgw_backend_pool_idle)"
           + (f", raw for {', '.join(raw_fds)} (no such gauge in /metrics)" if raw_fds else ""))
    if raw_fds and len(raw_fds) == judged:
        how = "FDs raw (no webgw_backend_pool_idle in /metrics)"
    detail = (f"{judged} gateways judged from t={min((v['from'] for v in rows.values()), default=0):.0f}s, "
              f"{how} (allowed: RSS +25%+8 MiB, FDs +32, sessions +32, timers +32)")
    if out:
        detail += "; " + "; ".join(out)
    return ok and judged >= min(3, len(r.meta["gateways"])), detail, rows


def fd_sections(meta):
    """Report lines: what each gateway's descriptors were at the end of the load and after it."""
    snaps = meta.get("fd_breakdowns") or {}
    if not snaps:
        return []
    lines = ["## Descriptors at the end", "",
             "From `/proc/PID/fd` and the gateway's network namespace (`/proc/PID/net/tcp`), with "
             "`webgw_backend_pool_idle` and `webgw_http_connections` read at the same moment. TCP sockets by role "
             "(client: on the HTTP/HTTPS listeners, api, to bN:port: a backend, gossip) and state.", ""]
    for label, per_gw in snaps.items():
        lines += [f"**{label}**", "",
                  "| gateway | total | sockets | files | pipes | anon | other | pooled idle | sessions "
                  "| TCP sockets by role and state | files |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for g, b in per_gw.items():
            if not b or "kinds" not in b:
                lines.append(f"| {g} | not running{(': ' + b['error']) if b and b.get('error') else ''} "
                             "| | | | | | | | | |")
                continue
            k = b["kinds"]
            tcp = ", ".join(f"{name[4:] if name.startswith('tcp ') else name} {n}"
                            for name, n in sorted(b["sockets"].items(), key=lambda x: (-x[1], x[0])))
            files = ", ".join(f"{p} {n}" if n > 1 else p for p, n in sorted(b["files"].items()))
            na = lambda v: "n/a" if v is None else str(v)
            lines.append(f"| {g} | {b['total']} | {k['sockets']} | {k['files']} | {k['pipes']} | {k['anon']} "
                         f"| {k['other']} | {na(b.get('pool_idle'))} | {na(b.get('sessions'))} | {tcp} | {files} |")
        lines.append("")
    return lines


def inv_crashes(r):
    problems = []
    for f in r.faults:
        if f["action"] == "crash":
            problems.append(f"{f['target']} exited on its own (status {f.get('rc')}) at t={r.rel(f['t']):.0f}s")
        if f["action"] == "sigterm" and f.get("rc") != 0:
            problems.append(f"{f['target']} SIGTERM exit status {f.get('rc')}")
    reports = []
    for path in glob.glob(f"{r.out}/asan*") + glob.glob(f"{r.out}/ubsan*"):
        reports.append(os.path.basename(path))
    pat = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer")
    for g in r.meta["gateways"]:
        p = f"{r.out}/{g}.log"
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                for line in f:
                    if pat.search(line):
                        reports.append(f"{g}.log: {line.strip()[:120]}")
                        break
    if reports:
        problems.append("sanitizer reports: " + ", ".join(reports[:5]))
    mode = "ASan+UBSan build" if r.meta.get("asan") else "release build (sanitizers off)"
    n_stop = sum(1 for f in r.faults if f["action"] == "sigterm")
    detail = f"{mode}; {n_stop} SIGTERM stops" + ("; " + "; ".join(problems) if problems else ", all exit 0")
    return not problems, detail


# ---- plots -------------------------------------------------------------------------------

def write_plots(r, out):
    t0 = r.t0
    with open(f"{out}/load.tsv", "w") as f:
        f.write("# t ok_per_s fail_per_s p50_ms p99_ms retries_per_s\n")
        for s in r.stats:
            f.write(f"{s['t'] - t0:.0f}\t{sum(s['ok'].values())}\t{sum(s['fail'].values())}\t"
                    f"{s['p50_ms'] if s['p50_ms'] is not None else '-'}\t"
                    f"{s['p99_ms'] if s['p99_ms'] is not None else '-'}\t{sum(s['retry'].values())}\n")
    causes = sorted({c for s in r.stats for c in s["fail"]} | {"retry:" + c for s in r.stats for c in s["retry"]})
    with open(f"{out}/causes.tsv", "w") as f:
        f.write("# t " + " ".join(causes) + "\n")
        for s in r.stats:
            vals = [s["fail"].get(c, 0) if not c.startswith("retry:") else s["retry"].get(c[6:], 0) for c in causes]
            f.write(f"{s['t'] - t0:.0f}\t" + "\t".join(str(v) for v in vals) + "\n")
    gws = list(r.meta["gateways"])
    with open(f"{out}/gw.tsv", "w") as f:
        f.write("# t " + " ".join(f"rss_{g} fds_{g} alive_{g} pool_{g}" for g in gws) + "\n")
        for s in r.samples:
            cols = []
            for g in gws:
                row = s["gw"].get(g) or {}
                pool = row.get("pool_idle")
                cols += [f"{row['rss_kb'] / 1024:.1f}" if row.get("rss_kb") else "-", str(row.get("fds", "-")),
                         str(row.get("alive", "-")), "-" if pool is None else str(pool)]
            f.write(f"{s['t'] - t0:.1f}\t" + "\t".join(cols) + "\n")
    marks = []
    for f_ in r.faults:
        if f_["action"] in ("sigterm", "error", "gw_start", "stop"):
            continue
        label = f_["action"] + (f" {f_['target']}" if f_.get("target") is not None else "")
        marks.append((f_["t"] - t0, label))
    markers = "".join(
        f'set arrow from {x:.1f}, graph 0 to {x:.1f}, graph 1 nohead lc rgb "#c0c0c0" dt 2\n'
        f'set label "{lab}" at {x:.1f}, graph 0.98 rotate by 90 right font ",8" tc rgb "#808080"\n'
        for x, lab in marks)
    head = ('set terminal svg size 900,360 dynamic font "sans,10" background rgb "white"\n'
            'set termoption noenhanced\nset datafile missing "-"\nset key outside right top\nset grid\n'
            'set xlabel "seconds since the load started"\n'
            f"set xrange [0:{r.meta['duration']:.0f}]\n")
    plots = {
        "reqs": ("requests completed per second", "set ylabel 'per s'\n",
                 "plot 'load.tsv' u 1:2 w l lw 1.5 t 'ok', '' u 1:3 w impulses lw 2 t 'failed', "
                 "'' u 1:6 w impulses t 'retried on next gateway'"),
        "p99": ("small GET latency (ms)", "set ylabel 'ms'\nset logscale y\n",
                "plot 'load.tsv' u 1:5 w l t 'p99', '' u 1:4 w l t 'p50'"),
        "rss": ("gateway RSS (MiB)", "set ylabel 'MiB'\n",
                "plot " + ", ".join(f"'gw.tsv' u 1:{2 + 4 * i} w l t '{g}'" for i, g in enumerate(gws))),
        "fds": ("gateway open file descriptors (dashed: net of idle pooled backend connections)",
                "set ylabel 'FDs'\n",
                "plot " + ", ".join(f"'gw.tsv' u 1:{3 + 4 * i} w l lc {i + 1} t '{g}', "
                                    f"'' u 1:(${3 + 4 * i}-${5 + 4 * i}) w l lc {i + 1} dt 2 t '{g} net'"
                                    for i, g in enumerate(gws))),
        "members": ("members alive, as each gateway sees them", "set ylabel 'alive'\nset yrange [0:6]\n",
                    "plot " + ", ".join(f"'gw.tsv' u 1:{4 + 4 * i} w steps t '{g}'" for i, g in enumerate(gws))),
    }
    if causes:
        plots["causes"] = ("failures and retries by cause, per second", "set ylabel 'per s'\n",
                           "plot " + ", ".join(f"'causes.tsv' u 1:{2 + i} w impulses lw 2 t '{c.replace('_', '-')}'"
                                               for i, c in enumerate(causes)))
    made = []
    for name, (title, extra, cmd) in plots.items():
        script = head + f'set title "{title}"\nset output "{name}.svg"\n' + extra + markers + cmd + "\n"
        with open(f"{out}/{name}.gp", "w") as f:
            f.write(script)
        rc = subprocess.run(["gnuplot", f"{name}.gp"], cwd=out, capture_output=True, text=True)
        if rc.returncode == 0:
            made.append((name, title))
        else:
            print(f"soak: gnuplot {name}: {rc.stderr.strip()[:300]}")
    # one overview (the README's picture): requests, failures, members, RSS
    ov = head.replace("size 900,360", "size 1000,900") + 'set output "overview.svg"\nset multiplot layout 3,1\n'
    ov += 'set title "requests/s (ok, failed, retried)"\n' + markers + plots["reqs"][2] + "\n"
    ov += 'set title "members alive as each gateway sees them"\nset yrange [0:6]\n' + plots["members"][2] + "\n"
    ov += 'set title "gateway RSS (MiB)"\nset autoscale y\n' + plots["rss"][2] + "\nunset multiplot\n"
    with open(f"{out}/overview.gp", "w") as f:
        f.write(ov)
    if subprocess.run(["gnuplot", "overview.gp"], cwd=out, capture_output=True).returncode == 0:
        made.insert(0, ("overview", "overview"))
    # the same as a PNG, for places that show no SVG
    png = ov.replace('set terminal svg size 1000,900 dynamic font "sans,10"', 'set terminal pngcairo size 1000,900 font "sans,9"')
    with open(f"{out}/overview-png.gp", "w") as f:
        f.write(png.replace('"overview.svg"', '"overview.png"'))
    subprocess.run(["gnuplot", "overview-png.gp"], cwd=out, capture_output=True)
    return made


def judge(out, meta):
    r = Run(out, meta)
    res = []
    ok, d, okcounts = inv_traffic(r)
    res.append((T_TRAFFIC, ok, d))
    ok, d, unexp_i, expl_i = inv_failures(r, True)
    res.append((T_IDEM, ok, d))
    ok, d, unexp_n, expl_n = inv_failures(r, False)
    res.append((T_NONIDEM, ok, d))
    ok, d, hrows = inv_health(r)
    res.append((T_HEALTH, ok, d))
    ok, d = inv_records(r)
    res.append((T_RECORDS, ok, d))
    ok, d, rrows = inv_resources(r)
    res.append((T_RES, ok, d))
    classes = None
    if meta.get("upload_names"):
        ok, d, classes = inv_upload_classes(r)
        res.append((T_UPLOADS, ok, d))
    ok, d = inv_crashes(r)
    res.append((T_CRASH, ok, d))
    plots = write_plots(r, out)

    lines = [f"# webgw soak report: profile {meta['profile']}, {meta['duration']:.0f} s", ""]
    skew = f" ({meta['skewed']} with its clock 2 minutes behind)" if meta.get("skewed") else ""
    lines.append(f"Build `{meta['build']}`, seed {meta['seed']}, {len(meta['gateways'])} gateways{skew}, "
                 f"{len(meta['backends'])} backends (" + ", ".join(f"{b} {m}" for b, m in meta["backend_modes"].items())
                 + "), cluster key on.")
    lines += ["", "| invariant | verdict | detail |", "|---|---|---|"]
    for name, ok, d in res:
        lines.append(f"| {name} | {'PASS' if ok else '**FAIL**'} | {d} |")
    lines += ["", "## Faults", "", "| t (s) | fault | target | note |", "|---|---|---|---|"]
    for f in meta["faults"]:
        note = ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("t", "action", "target"))
        lines.append(f"| {r.rel(f['t']):.1f} | {f['action']} | {f.get('target') if f.get('target') is not None else ''}"
                     f" | {note} |")
    lines += ["", "## Failures", ""]
    for title, rows in (("Unexplained", unexp_i + unexp_n), ("Explained by a fault", expl_i + expl_n)):
        lines += [f"{title}: {len(rows)}", ""]
        if rows:
            lines += ["| t (s) | kind | name | cause | gateways | detail / explanation |", "|---|---|---|---|---|---|"]
            for f, why in rows[:40]:
                gws = ",".join(r.ip2gw.get(g, g) for g in f.get("gateways", []))
                lines.append(f"| {r.rel(f['t']):.1f} | {f['kind']} | {f.get('name')} | {f['cause']} | {gws} | "
                             f"{(why or f.get('detail', '')).replace('|', '/').strip().replace(chr(10), ' ')[:140]} |")
            if len(rows) > 40:
                lines.append(f"| … | {len(rows) - 40} more in failures.jsonl | | | | |")
            lines.append("")
    by_name = {}
    if os.path.exists(f"{out}/by_name.json"):
        with open(f"{out}/by_name.json") as f:
            by_name = json.load(f)
    if by_name:
        lines += ["Completed by kind and name: " + ", ".join(f"{k} {v}" for k, v in sorted(by_name.items())), ""]
    rc = {}
    for x in r.retries:
        rc[x["cause"]] = rc.get(x["cause"], 0) + 1
    lines += ["Retried on the next gateway (client-side, not failures): "
              + (", ".join(f"{k} {v}" for k, v in sorted(rc.items(), key=lambda x: -x[1])) or "none"), ""]
    if hrows:
        lines += ["## Wrong health verdicts", "", "| gateway | backend | wrong as | from t | to t | samples |",
                  "|---|---|---|---|---|---|"]
        for (g, key, kind), (a, b, n) in hrows[:30]:
            lines.append(f"| {g} | {key} | {kind} | {r.rel(a):.0f} | {r.rel(b):.0f} | {n} |")
        lines.append("")
    if rrows:
        lines += ["## Resources (medians of the first and last quarter of the judged window)", "",
                  "| gateway | RSS MiB | FDs judged (net of pooled when reported) | FDs | pooled idle backend connections "
                  "| sessions | libuv timers |", "|---|---|---|---|---|---|---|"]
        arrow = lambda v, f="{:.0f}": "n/a" if v[0] is None else f"{f.format(v[0])} → {f.format(v[1])}"
        for g, v in rrows.items():
            lines.append(f"| {g} | {v['rss'][0] / 1024:.1f} → {v['rss'][1] / 1024:.1f} | {arrow(v['fds'])} "
                         f"| {arrow(v['raw_fds'])} | {arrow(v['pool'])} | {arrow(v['sessions'])} "
                         f"| {arrow(v['timers'])} |")
        lines.append("")
    lines += fd_sections(meta)
    if classes is not None:
        lines += ["## Uploads by class (completed, body hash checked by the backend)", "",
                  "| size (bytes) | Content-Length fresh | Content-Length pooled | chunked fresh | chunked pooled |",
                  "|---|---|---|---|---|"]
        for sz in UPLOAD_CLASS_SIZES:
            cells = [str(classes.get((sz, e, p), 0)) for e in ("content-length", "chunked") for p in ("fresh", "pooled")]
            lines.append(f"| {sz} | " + " | ".join(cells) + " |")
        other = sum(v for k, v in classes.items() if k[0] not in UPLOAD_CLASS_SIZES)
        lines += ["", f"Other (random) sizes: {other} completed.", ""]
    lines += ["## Plots", ""]
    for name, title in plots:
        lines.append(f"![{title}]({name}.svg)")
        lines.append("")
    lines += ["Raw data: `stats.jsonl` (per second), `failures.jsonl`, `retries.jsonl`, `samples.jsonl` (per gateway),",
              "`b*.events.jsonl` (backend resets and stalls), `churn.jsonl`, `meta.json`, gateway logs `gw*.log`.", ""]
    with open(f"{out}/report.md", "w") as f:
        f.write("\n".join(lines))
    failed = [name for name, ok, _ in res if not ok]
    for name, ok, d in res:
        print(f"soak: {'PASS' if ok else 'FAIL'}: {name}: {d}")
    print(f"soak: report {out}/report.md")
    return 1 if failed else 0


def setup_failed(out, profile, build, reason):
    """The report of a run whose fleet never got going: why, and no invariant judged."""
    lines = [f"# webgw soak report: profile {profile}: SETUP FAILED", "",
             f"Build `{build}`. The fleet could not be set up, so nothing ran and no invariant was judged:", "",
             f"    {reason}", "", "Gateway logs: `gw*.log` in this folder.", "",
             "| invariant | verdict | detail |", "|---|---|---|"]
    for t in (T_TRAFFIC, T_IDEM, T_NONIDEM, T_HEALTH, T_RECORDS, T_RES, T_CRASH):
        lines.append(f"| {t} | **NOT JUDGED** | setup failed |")
    with open(f"{out}/report.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"soak: report {out}/report.md")
