#!/usr/bin/env python3
"""backend.py - one soak backend: a small HTTP/1.1 server (python3 stdlib, asyncio) whose
behaviour is chosen per process, so the fleet has the kinds of backend a gateway meets:

  --mode keepalive   answers and keeps the connection (the ordinary case)
  --mode close       answers with Connection: close and closes (no keep-alive)
  --mode slow        waits 50-250 ms before each answer
  --mode idleclose   closes a kept-alive connection after 100-500 ms idle; like Node's
                     keepAliveTimeout it may close a connection whose next request has just
                     arrived (a request seen within 30 ms of the deadline is dropped unanswered),
                     which is the race that makes a gateway's pooled connection die under a GET;
                     every idle close is logged (idle_close, with the gateway's address:port)
  --reset-rate P     resets (RST) a connection after reading a request, before any answer

Signals: SIGUSR1 starts a stall (connections are accepted, nothing is read or answered),
SIGUSR2 ends it. Every reset and stall is logged as JSONL (--log) with the request's
X-Soak-Id, so the invariant checker can tell a failure the backend caused from one the
gateway caused.

Endpoints: /health; /get (small body); /bytes?n=N&rate=BYTES_PER_S (deterministic body, see
pattern_block); POST|PUT /upload (answers {"len","sha256"} of the body, chunked or
Content-Length, and the request's number on its connection: 1 fresh, more pooled);
/sse?n=N&ms=M (server-sent events id 0..N-1, chunked); /ws (WebSocket echo).
With --tls-port it serves the same over TLS (the passthrough backend's own certificate).
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import time

MAX_HEAD = 65536
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B57"


def pattern_block():
    """The 64 KiB block that /bytes repeats; load.py builds the same one to check hashes."""
    out = bytearray()
    seed = b"webgw-soak"
    while len(out) < 65536:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:65536])


BLOCK = pattern_block()


class Backend:
    def __init__(self, args):
        self.args = args
        self.stalled = False
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.rng = random.Random(args.name)

    def log(self, **ev):
        if self.logf:
            ev.setdefault("t", time.time())
            ev["backend"] = self.args.name
            self.logf.write(json.dumps(ev) + "\n")

    @staticmethod
    def peer(writer):
        p = writer.get_extra_info("peername")
        return f"{p[0]}:{p[1]}" if p else ""

    async def stall_forever(self, writer):
        # Accepted, never read or answered: the connection just hangs until the peer gives up.
        while True:
            await asyncio.sleep(3600)

    async def handle(self, reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.stalled:
            self.log(event="stall_accept")
            await self.stall_forever(writer)
        buf = b""
        deadline = None  # idle deadline of the idleclose mode
        nreq = 0  # requests seen on this connection: 1 = a fresh connection, more = reused
        try:
            while True:
                if b"\r\n\r\n" not in buf:
                    try:
                        more = await self.read_head_into(reader, buf, deadline)
                    except asyncio.TimeoutError:
                        # idle deadline: close. Logged with the connection (the gateway's
                        # address and port) so a 502 for a request that reached this
                        # connection just as it closed can be told from a gateway fault.
                        self.log(event="idle_close", peer=self.peer(writer), requests=nreq)
                        return
                    if more is None:
                        return
                    buf = more
                if self.args.mode == "idleclose" and deadline is not None:
                    await asyncio.sleep(0.03)  # a busy loop notices the request late
                    if time.monotonic() >= deadline:
                        m = re.search(rb"(?im)^x-soak-id:\s*(\S+)", buf)
                        self.log(event="idle_close_race", id=m.group(1).decode() if m else "",
                                 peer=self.peer(writer))
                        return
                if self.stalled:
                    self.log(event="stall_request")
                    await self.stall_forever(writer)
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                nreq += 1
                keep = await self.serve(method, target, headers, reader, writer, buf, nreq)
                if keep is None:
                    return
                buf = keep
                if self.args.mode == "idleclose":
                    deadline = time.monotonic() + self.rng.uniform(0.1, 0.5)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, ssl.SSLError):
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def read_head_into(self, reader, buf, deadline):
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEAD:
                raise ValueError("head too large")
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                return None
            buf += chunk
        return buf

    async def read_body(self, reader, headers, buf):
        """Reads the request body; returns (length, sha256 hex, leftover bytes)."""
        h = hashlib.sha256()
        n = 0
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in buf:
                    more = await reader.read(65536)
                    if not more:
                        raise ConnectionError("eof in chunk size")
                    buf += more
                line, _, buf = buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while b"\r\n" not in buf:  # no trailers expected: just the final CRLF
                        more = await reader.read(65536)
                        if not more:
                            raise ConnectionError("eof in last chunk")
                        buf += more
                    _, _, buf = buf.partition(b"\r\n")
                    return n, h.hexdigest(), buf
                while len(buf) < size + 2:
                    more = await reader.read(max(65536, size + 2 - len(buf)))
                    if not more:
                        raise ConnectionError("eof in chunk")
                    buf += more
                h.update(buf[:size])
                n += size
                buf = buf[size + 2 :]
        length = int(headers.get("content-length", "0"))
        take = buf[:length]
        h.update(take)
        n = len(take)
        buf = buf[length:] if len(take) == length else b""
        while n < length:
            more = await reader.read(min(1 << 20, length - n))
            if not more:
                raise ConnectionError("eof in body")
            h.update(more)
            n += len(more)
        return n, h.hexdigest(), buf

    def reset(self, writer, rid, why):
        self.log(event="reset", id=rid, why=why)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def serve(self, method, target, headers, reader, writer, buf, nreq=1):
        """Answers one request (the nreq-th on its connection); returns the leftover bytes to
        keep the connection, or None."""
        path, _, query = target.partition("?")
        q = dict(p.partition("=")[::2] for p in query.split("&") if p)
        rid = headers.get("x-soak-id", "")
        close = self.args.mode == "close" or headers.get("connection", "").lower() == "close"
        body_len, body_hash = 0, None
        if method in ("POST", "PUT"):
            body_len, body_hash, buf = await self.read_body(reader, headers, buf)
        if path != "/health" and self.args.reset_rate and self.rng.random() < self.args.reset_rate:
            self.reset(writer, rid, "reset-rate")
            return None
        if self.args.mode == "slow" and path != "/health":
            await asyncio.sleep(self.rng.uniform(0.05, 0.25))
        if path == "/ws" and headers.get("upgrade", "").lower() == "websocket":
            await self.websocket(headers, reader, writer, buf)
            return None
        extra = "Connection: close\r\n" if close else ""
        if path == "/sse":
            n, ms = int(q.get("n", "10")), int(q.get("ms", "200"))
            writer.write(
                (
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                    f"Transfer-Encoding: chunked\r\nX-Backend: {self.args.name}\r\n{extra}\r\n"
                ).encode()
            )
            for i in range(n):
                ev = f"id: {i}\ndata: {i}\n\n".encode()
                writer.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                await writer.drain()
                await asyncio.sleep(ms / 1000)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return None if close else buf
        if path == "/bytes":
            n, rate = int(q.get("n", "0")), int(q.get("rate", "0"))
            writer.write(
                (
                    f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nContent-Type: application/octet-stream\r\n"
                    f"X-Backend: {self.args.name}\r\n{extra}\r\n"
                ).encode()
            )
            sent, t0 = 0, time.monotonic()
            while sent < n:
                part = BLOCK[: min(len(BLOCK), n - sent)]
                writer.write(part)
                sent += len(part)
                await writer.drain()
                if rate:
                    ahead = sent / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            return None if close else buf
        if path == "/upload" and method in ("POST", "PUT"):
            # conn_req tells the client whether the gateway sent the body on a fresh backend
            # connection (1) or a pooled one (more)
            body = json.dumps({"len": body_len, "sha256": body_hash, "backend": self.args.name,
                               "conn_req": nreq}).encode()
        elif path in ("/health", "/get", "/"):
            body = f"{self.args.name} {method} {path}\n".encode()
        else:
            status = "404 Not Found"
            body = b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body
            )
            await writer.drain()
            return None if close else buf
        writer.write(
            (
                f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n"
                f"X-Backend: {self.args.name}\r\n{extra}\r\n"
            ).encode()
            + body
        )
        await writer.drain()
        return None if close else buf

    async def websocket(self, headers, reader, writer, buf):
        key = headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nX-Backend: {self.args.name}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        rd = BufReader(reader, buf)
        while True:
            b0, b1 = await rd.exactly(2)
            op = b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await rd.exactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await rd.exactly(8))
            mask = await rd.exactly(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytearray(await rd.exactly(n))
            for i in range(n):
                data[i] ^= mask[i & 3]
            writer.write(ws_frame(op, bytes(data)))
            await writer.drain()
            if op == 8:
                return


def ws_frame(op, data, mask=None):
    """One final WebSocket frame (server frames unmasked; load.py passes a mask)."""
    n = len(data)
    head = bytes([0x80 | op])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        data = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        head += mask
    return head + data


class BufReader:
    """Exact reads over an asyncio reader with bytes already buffered."""

    def __init__(self, reader, buf=b""):
        self.reader, self.buf = reader, buf

    async def exactly(self, n):
        while len(self.buf) < n:
            more = await self.reader.read(65536)
            if not more:
                raise ConnectionError("eof")
            self.buf += more
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


async def sniffing_server(be, addr, port, ctx):
    """The passthrough port: TLS when the first byte is a handshake record (0x16), plain HTTP
    otherwise, so the gateways' plain HTTP health checks reach the same port the names use."""
    loop = asyncio.get_running_loop()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, port))
    lsock.listen(1024)
    lsock.setblocking(False)

    async def one(sock):
        try:
            ready = loop.create_future()
            loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
            try:
                await asyncio.wait_for(ready, 30)
            finally:
                loop.remove_reader(sock.fileno())
            first = sock.recv(1, socket.MSG_PEEK)
            reader = asyncio.StreamReader(limit=MAX_HEAD)
            proto = asyncio.StreamReaderProtocol(reader)
            transport, _ = await loop.connect_accepted_socket(
                lambda: proto, sock, ssl=ctx if first == b"\x16" else None
            )
            writer = asyncio.StreamWriter(transport, proto, reader, loop)
            await be.handle(reader, writer)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError):
            sock.close()

    async def accept_loop():
        while True:
            sock, _ = await loop.sock_accept(lsock)
            asyncio.ensure_future(one(sock))

    task = asyncio.ensure_future(accept_loop())

    class Server:
        def close(self):
            task.cancel()
            lsock.close()

    return Server()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--tls-port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--mode", default="keepalive", choices=["keepalive", "close", "slow", "idleclose"])
    ap.add_argument("--reset-rate", type=float, default=0.0)
    ap.add_argument("--log")
    args = ap.parse_args()
    be = Backend(args)
    loop = asyncio.get_running_loop()

    def stall(on):
        be.stalled = on
        be.log(event="stall" if on else "unstall")

    loop.add_signal_handler(signal.SIGUSR1, stall, True)
    loop.add_signal_handler(signal.SIGUSR2, stall, False)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    servers = [await asyncio.start_server(be.handle, args.addr, args.port, backlog=1024, reuse_address=True)]
    if args.tls_port:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        servers.append(await sniffing_server(be, args.addr, args.tls_port, ctx))
    be.log(event="start", pid=os.getpid())
    print(f"backend {args.name} on {args.addr}:{args.port} mode {args.mode}", file=sys.stderr, flush=True)
    await stop
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
