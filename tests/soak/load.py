#!/usr/bin/env python3
"""load.py - the soak load client (python3 stdlib, asyncio): real-like clients behind DNS
round-robin. Every connection picks the gateways in a random rotation (what a resolver's
shuffled A records give) and, when a connect fails, tries the next address. An idempotent
request whose connection dies before its answer is complete is tried again on the next
gateway, as a careful client (or a browser on a reused connection) does; each such retry is
logged with its cause. Everything else that goes wrong is a failure, logged to
failures.jsonl with its cause, the gateways tried and start/end timestamps.

Traffic (each a group of asyncio workers): small keep-alive GETs (latency sampled), POST/PUT
uploads 0 B..--upload-max chunked and with Content-Length whose sha256 the backend echoes,
long rate-limited downloads checked against the known pattern, server-sent events checked for
gaps, WebSocket echo sessions, HTTPS termination (the gateway's wildcard certificate) and
TLS passthrough (the backend's own certificate). Per-second counters go to stats.jsonl.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backend import BLOCK, BufReader, ws_frame  # noqa: E402

UPLOAD_SIZES = [0, 1, 65535, 65536, 65537, 1 << 20]


class ConnLevel(Exception):
    """The connection failed before a complete answer: a client may try the next gateway."""

    def __init__(self, cause, detail=""):
        super().__init__(f"{cause}: {detail}")
        self.cause, self.detail = cause, detail


class Failed(Exception):
    """A failure no client retry could hide (an HTTP error, wrong bytes)."""

    def __init__(self, cause, detail=""):
        super().__init__(f"{cause}: {detail}")
        self.cause, self.detail = cause, detail


class Stats:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.reset()

    def reset(self):
        self.ok, self.fail, self.retry, self.lat = {}, {}, {}, []

    def flush(self, t):
        lat = sorted(self.lat)
        p = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else None
        self.f.write(
            json.dumps(
                {"t": t, "ok": self.ok, "fail": self.fail, "retry": self.retry, "p50_ms": p(0.5), "p99_ms": p(0.99)}
            )
            + "\n"
        )
        self.reset()


def bump(d, k):
    d[k] = d.get(k, 0) + 1


class Load:
    def __init__(self, a):
        self.a = a
        self.gws = a.gateways.split(",")
        self.names = a.names.split(",")
        self.rng = random.Random(a.seed)
        self.stats = Stats(os.path.join(a.out, "stats.jsonl"))
        self.failf = open(os.path.join(a.out, "failures.jsonl"), "a", buffering=1)
        self.retryf = open(os.path.join(a.out, "retries.jsonl"), "a", buffering=1)
        self.stop = False
        self.seq = 0
        self.uploadf = open(os.path.join(a.out, "uploads.jsonl"), "a", buffering=1)
        self.upload_names = [n for n in a.upload_names.split(",") if n] or self.names
        self.upload_data = os.urandom(max(a.upload_max, a.big_upload))
        self.ctx = ssl.create_default_context(cafile=a.ca) if a.ca else None
        self.pattern_hash = {}
        self.by_name = {}  # completed requests per (kind, name), written at the end

    def rid(self, kind):
        self.seq += 1
        return f"{kind}-{os.getpid()}-{self.seq}"

    def rotation(self):
        i = self.rng.randrange(len(self.gws))
        return self.gws[i:] + self.gws[:i]

    def fail(self, kind, rid, cause, detail, t0, tried, idempotent, name, extra=None):
        bump(self.stats.fail, cause)
        ev = {
            "t": time.time(),
            "start": t0,
            "kind": kind,
            "id": rid,
            "name": name,
            "cause": cause,
            "detail": str(detail)[:300],
            "gateways": tried,
            "idempotent": idempotent,
        }
        if extra:
            ev.update(extra)
        self.failf.write(json.dumps(ev) + "\n")

    def retried(self, kind, rid, gw, e):
        bump(self.stats.retry, e.cause)
        self.retryf.write(
            json.dumps({"t": time.time(), "kind": kind, "id": rid, "gateway": gw, "cause": e.cause, "detail": e.detail[:200]})
            + "\n"
        )

    # ---- connections and HTTP/1.1 ------------------------------------------------------

    async def connect(self, gw, port, sni=None):
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(gw, port, ssl=self.ctx if sni else None, server_hostname=sni),
                self.a.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise ConnLevel("connect_timeout", f"{gw}:{port}")
        except ssl.SSLCertVerificationError as e:
            raise Failed("tls_verify", f"{gw}: {e}")
        except (ConnectionError, OSError, ssl.SSLError) as e:
            raise ConnLevel("connect_" + type(e).__name__, f"{gw}:{port} {e}")
        return Conn(r, w, gw)

    async def first_try(self, kind, name, fn, idempotent=True, conn_holder=None):
        """Runs fn(gw) over the gateways in DNS rotation; returns its result or logs a failure."""
        rid = self.rid(kind)
        t0 = time.time()
        tried = []
        for gw in self.rotation():
            tried.append(gw)
            try:
                return await fn(gw, rid)
            except ConnLevel as e:
                if not idempotent and e.cause not in ("connect_timeout",) and not e.cause.startswith("connect_"):
                    self.fail(kind, rid, e.cause, e.detail, t0, tried, idempotent, name)
                    return None
                self.retried(kind, rid, gw, e)
                continue
            except Failed as e:
                self.fail(kind, rid, e.cause, e.detail, t0, tried, idempotent, name)
                return None
        self.fail(kind, rid, "all_gateways_failed", "", t0, tried, idempotent, name)
        return None

    # ---- traffic -------------------------------------------------------------------------

    async def get_worker(self, wid):
        """Small keep-alive GETs: one connection kept until it fails or is closed."""
        conn = None
        while not self.stop:
            name = self.rng.choice(self.names)
            host = f"{name}.{self.a.domain}"
            started = time.monotonic()

            async def attempt(gw, rid):
                nonlocal conn
                for reuse in (True, False):
                    if conn is None or not reuse:
                        if conn:
                            conn.close()
                        conn = await self.connect(gw, self.a.http_port)
                    elif conn.gw != gw:
                        continue  # a kept connection is to whatever gateway it reached first
                    try:
                        st, hd, body = await conn.request("GET", "/get", host, rid, timeout=self.a.request_timeout)
                    except ConnLevel as e:
                        conn.close()
                        conn = None
                        if reuse and e.cause in ("eof_before_response", "reset_before_response", "reset_while_sending"):
                            # A kept-alive connection closed under us: every client retries that.
                            self.retried("get", rid, gw, ConnLevel("stale_keepalive", e.detail))
                            continue
                        raise
                    if st != 200:
                        raise Failed(f"http_{st}", body[:240].decode("latin-1"))
                    if hd.get("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    return True
                return True

            # a kept connection goes first, to its own gateway
            if conn is not None:
                gw0 = conn.gw
                rot = self.rotation()
                rot.remove(gw0)
                order = [gw0] + rot
            else:
                order = None
            ok = await self.run_order("get", name, attempt, order)
            if ok:
                bump(self.stats.ok, "get")
                bump(self.by_name, f"get {name}")
                self.stats.lat.append(time.monotonic() - started)
            await asyncio.sleep(self.rng.expovariate(self.a.get_rate / self.a.get_workers))

    async def run_order(self, kind, name, fn, order=None, idempotent=True):
        if order is None:
            return await self.first_try(kind, name, fn, idempotent)
        rid = self.rid(kind)
        t0 = time.time()
        tried = []
        for gw in order:
            tried.append(gw)
            try:
                return await fn(gw, rid)
            except ConnLevel as e:
                self.retried(kind, rid, gw, e)
            except Failed as e:
                self.fail(kind, rid, e.cause, e.detail, t0, tried, idempotent, name)
                return None
        self.fail(kind, rid, "all_gateways_failed", "", t0, tried, idempotent, name)
        return None

    async def upload_worker(self, wid, big=False):
        """POST/PUT of every edge size and random sizes up to --upload-max, chunked or not, over
        the --upload-names in turn (each size with each encoding on each name). With big, only
        --big-upload bytes, one every --big-every seconds. Not idempotent: only a failed connect
        is tried on the next gateway."""
        i = wid
        while not self.stop:
            if big:
                sizes = [self.a.big_upload]
            else:
                sizes = UPLOAD_SIZES + [self.rng.randrange(0, self.a.upload_max + 1)]
            size = sizes[i % len(sizes)] if big else min(sizes[i % len(sizes)], self.a.upload_max)
            chunked = (i // len(sizes)) % 2 == 1
            method = "PUT" if i % 2 else "POST"
            name = self.upload_names[(i // (2 * len(sizes))) % len(self.upload_names)]
            i += 1
            data = memoryview(self.upload_data)[:size]
            want = hashlib.sha256(data).hexdigest()

            async def attempt(gw, rid):
                conn = await self.connect(gw, self.a.http_port)
                try:
                    st, hd, body = await conn.request(
                        method,
                        "/upload",
                        f"{name}.{self.a.domain}",
                        rid,
                        body=data,
                        chunked=chunked,
                        # the whole exchange; a body that stops moving fails sooner (stall)
                        timeout=self.a.request_timeout + size / (4 << 20),
                        stall=self.a.stall_timeout,
                    )
                finally:
                    conn.close()
                if st != 200:
                    raise Failed(f"http_{st}", body[:240].decode("latin-1"))
                got = json.loads(body)
                if got.get("len") != size or got.get("sha256") != want:
                    raise Failed("hash_mismatch", f"sent {size} got {got.get('len')} via {got.get('backend')}")
                # the backend numbers the requests of each connection: 1 means the gateway
                # opened a fresh backend connection for this body, more a pooled one
                self.uploadf.write(json.dumps({
                    "t": time.time(), "id": rid, "name": name, "size": size, "chunked": chunked,
                    "method": method, "backend": got.get("backend"),
                    "pool": "fresh" if got.get("conn_req", 1) == 1 else "pooled"}) + "\n")
                return True

            ok = await self.first_try_upload(name, attempt, size, chunked, method)
            if ok:
                bump(self.stats.ok, "upload")
                bump(self.by_name, f"upload {name}")
            await asyncio.sleep(self.a.big_every if big else self.rng.uniform(0.05, 0.3))

    async def first_try_upload(self, name, fn, size, chunked, method):
        rid = self.rid("upload")
        t0 = time.time()
        tried = []
        extra = {"size": size, "chunked": chunked, "method": method}
        for gw in self.rotation():
            tried.append(gw)
            try:
                return await fn(gw, rid)
            except ConnLevel as e:
                if e.cause.startswith("connect_"):
                    self.retried("upload", rid, gw, e)
                    continue
                self.fail("upload", rid, e.cause, e.detail, t0, tried, False, name, extra)
                return None
            except Failed as e:
                self.fail("upload", rid, e.cause, e.detail, t0, tried, False, name, extra)
                return None
        self.fail("upload", rid, "all_gateways_failed", "", t0, tried, False, name, extra)
        return None

    def expected_hash(self, n):
        if n not in self.pattern_hash:
            h = hashlib.sha256()
            left = n
            while left:
                part = BLOCK[: min(len(BLOCK), left)]
                h.update(part)
                left -= len(part)
            self.pattern_hash[n] = h.hexdigest()
        return self.pattern_hash[n]

    async def download_worker(self, wid):
        """Long downloads: --download-bytes at --download-rate, hash checked."""
        n = self.a.download_bytes
        while not self.stop:
            name = self.rng.choice(self.names)

            async def attempt(gw, rid):
                conn = await self.connect(gw, self.a.http_port)
                try:
                    st, hd, h = await conn.request(
                        "GET",
                        f"/bytes?n={n}&rate={self.a.download_rate}",
                        f"{name}.{self.a.domain}",
                        rid,
                        timeout=self.a.request_timeout,
                        stall=self.a.stall_timeout,
                        hash_body=True,
                    )
                finally:
                    conn.close()
                if st != 200:
                    raise Failed(f"http_{st}", h[:240].decode("latin-1"))
                if h != self.expected_hash(n):
                    raise Failed("hash_mismatch", f"download of {n} bytes")
                return True

            if await self.first_try("download", name, attempt):
                bump(self.stats.ok, "download")
            await asyncio.sleep(0.2)

    async def sse_worker(self, wid):
        n = self.a.sse_events
        while not self.stop:
            name = self.rng.choice(self.names)

            async def attempt(gw, rid):
                conn = await self.connect(gw, self.a.http_port)
                try:
                    st, hd, body = await conn.request(
                        "GET",
                        f"/sse?n={n}&ms=200",
                        f"{name}.{self.a.domain}",
                        rid,
                        timeout=self.a.request_timeout,
                        stall=self.a.stall_timeout,
                        extra_headers="Accept: text/event-stream\r\n",
                    )
                finally:
                    conn.close()
                if st != 200:
                    raise Failed(f"http_{st}", body[:240].decode("latin-1"))
                ids = [int(line[4:]) for line in body.decode().split("\n") if line.startswith("id: ")]
                if ids != list(range(n)):
                    raise Failed("sse_gap", f"got {len(ids)} of {n} events")
                return True

            if await self.first_try("sse", name, attempt):
                bump(self.stats.ok, "sse")

    async def ws_worker(self, wid):
        msgs = self.a.ws_messages
        while not self.stop:
            name = self.rng.choice(self.names)

            async def attempt(gw, rid):
                conn = await self.connect(gw, self.a.http_port)
                try:
                    key = base64.b64encode(os.urandom(16)).decode()
                    st, hd, _ = await conn.request(
                        "GET",
                        "/ws",
                        f"{name}.{self.a.domain}",
                        rid,
                        timeout=self.a.request_timeout,
                        extra_headers=f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n",
                        head_only=True,
                    )
                    if st != 101:
                        why = conn.buf[:160].decode("latin-1")  # the error body, when it came along
                        raise Failed(f"http_{st}", f"websocket upgrade: {why}")
                    rd = BufReader(conn.r, conn.buf)
                    for k in range(msgs):
                        payload = os.urandom(self.rng.choice([1, 125, 126, 4000, 65536, 70000]))
                        conn.w.write(ws_frame(2, payload, mask=os.urandom(4)))
                        got = await asyncio.wait_for(read_ws(rd), self.a.request_timeout)
                        if got != payload:
                            raise Failed("ws_echo_mismatch", f"message {k}")
                        await asyncio.sleep(0.1)
                    conn.w.write(ws_frame(8, b"", mask=os.urandom(4)))
                    return True
                except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
                    raise ConnLevel("ws_lost", str(e))
                except asyncio.TimeoutError:
                    raise ConnLevel("ws_timeout", "")
                finally:
                    conn.close()

            if await self.first_try("ws", name, attempt):
                bump(self.stats.ok, "ws")

    async def tls_worker(self, wid, passthrough):
        """HTTPS keep-alive GETs: termination (names, wildcard certificate) or passthrough."""
        kind = "passthrough" if passthrough else "https"
        while not self.stop:
            name = self.a.pt_name if passthrough else self.rng.choice(self.names)
            host = f"{name}.{self.a.domain}"

            async def attempt(gw, rid):
                conn = await self.connect(gw, self.a.https_port, sni=host)
                try:
                    cert = conn.w.get_extra_info("peercert") or {}
                    cn = dict(x[0] for x in cert.get("subject", ()))
                    want = host if passthrough else f"*.{self.a.domain}"
                    if cn.get("commonName") != want:
                        raise Failed("wrong_certificate", f"{cn.get('commonName')} for {host}")
                    for _ in range(5):
                        st, hd, body = await conn.request("GET", "/get", host, rid, timeout=self.a.request_timeout)
                        if st != 200:
                            raise Failed(f"http_{st}", body[:240].decode("latin-1"))
                        if hd.get("connection", "").lower() == "close":
                            break
                    return True
                finally:
                    conn.close()

            if await self.first_try(kind, name, attempt):
                bump(self.stats.ok, kind)
            await asyncio.sleep(self.rng.uniform(0.1, 0.5))

    async def ticker(self):
        while not self.stop:
            await asyncio.sleep(1 - time.time() % 1)
            self.stats.flush(int(time.time()))

    async def run(self):
        a = self.a
        tasks = [asyncio.create_task(self.ticker())]
        tasks += [asyncio.create_task(self.get_worker(i)) for i in range(a.get_workers)]
        tasks += [asyncio.create_task(self.upload_worker(i)) for i in range(a.upload_workers)]
        if a.big_upload:
            tasks.append(asyncio.create_task(self.upload_worker(0, big=True)))
        tasks += [asyncio.create_task(self.download_worker(i)) for i in range(a.download_workers)]
        tasks += [asyncio.create_task(self.sse_worker(i)) for i in range(a.sse_workers)]
        tasks += [asyncio.create_task(self.ws_worker(i)) for i in range(a.ws_workers)]
        tasks += [asyncio.create_task(self.tls_worker(i, False)) for i in range(a.https_workers)]
        if a.pt_name:
            tasks += [asyncio.create_task(self.tls_worker(i, True)) for i in range(a.passthrough_workers)]
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
        loop.add_signal_handler(signal.SIGINT, lambda: done.done() or done.set_result(None))
        try:
            await asyncio.wait_for(done, a.duration)
        except asyncio.TimeoutError:
            pass
        self.stop = True
        # let requests under way finish (bounded): a stop is not a failure
        await asyncio.sleep(0)
        _, pending = await asyncio.wait(tasks[1:], timeout=a.request_timeout + 2)
        for t in pending:
            t.cancel()
        self.stats.flush(int(time.time()))
        with open(os.path.join(a.out, "by_name.json"), "w") as f:
            json.dump(self.by_name, f)


async def read_ws(rd):
    b0, b1 = await rd.exactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await rd.exactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await rd.exactly(8), "big")
    return await rd.exactly(n)


class Conn:
    def __init__(self, r, w, gw):
        self.r, self.w, self.gw, self.buf = r, w, gw, b""

    def close(self):
        try:
            self.w.transport.abort()
        except Exception:
            pass

    async def fill(self, deadline, stall, got_any):
        timeout = max(0.01, deadline - time.monotonic())
        if stall:
            timeout = min(timeout, stall)
        try:
            more = await asyncio.wait_for(self.r.read(262144), timeout)
        except asyncio.TimeoutError:
            if time.monotonic() >= deadline:
                raise ConnLevel("timeout" if got_any else "timeout_no_response", self.gw)
            raise ConnLevel("stall" if got_any else "stall_no_response", self.gw)
        except (ConnectionError, OSError, ssl.SSLError) as e:
            raise ConnLevel("reset" if got_any else "reset_before_response", f"{self.gw} {e}")
        if not more:
            raise ConnLevel("eof_mid_body" if got_any else "eof_before_response", self.gw)
        self.buf += more

    async def request(
        self,
        method,
        path,
        host,
        rid,
        body=None,
        chunked=False,
        timeout=30,
        stall=None,
        hash_body=False,
        extra_headers="",
        head_only=False,
    ):
        """One HTTP/1.1 exchange; returns (status, headers, body or, for a 200 with hash_body,
        its sha256 hex)."""
        deadline = time.monotonic() + timeout
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Soak-Id: {rid}\r\n{extra_headers}"
        if body is not None:
            head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(body)}\r\n"
        try:
            self.w.write((head + "\r\n").encode())
            if body is not None:
                off = 0
                step = 65536 if not chunked else 50000
                while off < len(body):
                    part = body[off : off + step]
                    self.w.write(b"%x\r\n" % len(part) + part + b"\r\n" if chunked else part)
                    off += len(part)
                    await asyncio.wait_for(self.w.drain(), stall or timeout)
                if chunked:
                    self.w.write(b"0\r\n\r\n")
            await asyncio.wait_for(self.w.drain(), stall or timeout)
        except asyncio.TimeoutError:
            raise ConnLevel("upload_stall", f"{self.gw} no progress for {stall} s")
        except (ConnectionError, OSError, ssl.SSLError) as e:
            raise ConnLevel("reset_while_sending", f"{self.gw}: {e}")
        while b"\r\n\r\n" not in self.buf:
            await self.fill(deadline, stall, bool(self.buf))
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ")[1])
        except (IndexError, ValueError):
            raise Failed("bad_status_line", lines[0][:80])
        hd = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hd[k.strip().lower()] = v.strip()
        if head_only:
            return status, hd, b""
        # an error's body is kept as it is (the gateway's reason names the backend), not hashed
        h = hashlib.sha256() if hash_body and status == 200 else None
        out = bytearray()

        def take(data):
            if h:
                h.update(data)
            else:
                out.extend(data)

        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif hd.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    await self.fill(deadline, stall, True)
                line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    await self.fill(deadline, stall, True)
                take(self.buf[:size])
                self.buf = self.buf[size + 2 :]
                if size == 0:
                    break
        elif "content-length" in hd:
            left = int(hd["content-length"])
            while left:
                if not self.buf:
                    await self.fill(deadline, stall, True)
                part = self.buf[:left]
                take(part)
                left -= len(part)
                self.buf = self.buf[len(part) :]
        else:
            try:
                while True:
                    take(self.buf)
                    self.buf = b""
                    await self.fill(deadline, stall, True)
            except ConnLevel as e:
                if e.cause != "eof_mid_body":
                    raise
        return status, hd, (h.hexdigest() if h else bytes(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateways", required=True, help="comma-separated gateway IPs (the DNS answer)")
    ap.add_argument("--names", required=True, help="comma-separated served names")
    ap.add_argument("--pt-name", default="", help="the TLS passthrough name")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--ca", help="CA file that signed the gateways' and the passthrough backend's certificates")
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--http-port", type=int, default=8080)
    ap.add_argument("--https-port", type=int, default=8443)
    ap.add_argument("--get-workers", type=int, default=8)
    ap.add_argument("--get-rate", type=float, default=100, help="small GETs per second, all workers")
    ap.add_argument("--upload-workers", type=int, default=2)
    ap.add_argument("--upload-max", type=int, default=20 << 20)
    ap.add_argument("--upload-names", default="", help="comma-separated names uploads go to in turn (default --names)")
    ap.add_argument("--big-upload", type=int, default=0, help="bytes of the big uploads (one more worker; 0: none)")
    ap.add_argument("--big-every", type=float, default=10, help="seconds between big uploads")
    ap.add_argument("--download-workers", type=int, default=1)
    ap.add_argument("--download-bytes", type=int, default=16 << 20)
    ap.add_argument("--download-rate", type=int, default=4 << 20)
    ap.add_argument("--sse-workers", type=int, default=1)
    ap.add_argument("--sse-events", type=int, default=25)
    ap.add_argument("--ws-workers", type=int, default=1)
    ap.add_argument("--ws-messages", type=int, default=20)
    ap.add_argument("--https-workers", type=int, default=1)
    ap.add_argument("--passthrough-workers", type=int, default=1)
    ap.add_argument("--connect-timeout", type=float, default=2)
    ap.add_argument("--request-timeout", type=float, default=30)
    ap.add_argument("--stall-timeout", type=float, default=15)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    asyncio.run(Load(a).run())


if __name__ == "__main__":
    main()
