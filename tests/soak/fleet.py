"""fleet.py - the soak fleet's network and processes: one network namespace per gateway,
backend and client, each joined by a veth pair to a bridge that lives in its own hub
namespace, so nothing touches the host's interfaces or firewall (the host's br_netfilter and
Docker's FORWARD policy never see the bridge). Addresses are 10.231.0.0/24 inside these
namespaces only; no namespace has a route out. Names carry the runner's pid
(wgsoak-PID-...), so parallel runs never collide, and a run removes namespaces left by a
runner that no longer exists.

Also: the run's certificates (a CA, the gateways' wildcard, the passthrough backend's own),
and the start, signal and exit bookkeeping of every process.
"""
import ctypes
import os
import signal
import subprocess
import time

SUBNET = "10.231.0"
PREFIX = "wgsoak"
FAKETIME_LIBS = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
]
CLONE_NEWNET = 0x40000000


def sh(*cmd, check=True, ns=None, quiet=False):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def stale_runs():
    """Namespaces of soak runs whose runner process is gone (killed before its cleanup)."""
    out = sh("ip", "netns", "list", check=False).stdout.split("\n")
    stale = []
    for line in out:
        name = line.split(" ")[0]
        if not name.startswith(PREFIX + "-"):
            continue
        try:
            pid = int(name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not os.path.exists(f"/proc/{pid}"):
            stale.append(name)
    return stale


class Net:
    """hub (bridge) + one namespace per host; host(name) -> (namespace, address)."""

    def __init__(self, pid):
        self.pid = pid
        self.hub = f"{PREFIX}-{pid}-hub"
        self.hosts = {}  # name -> (ns, ip)
        self.made = []

    def ns(self, name):
        return f"{PREFIX}-{self.pid}-{name}"

    def create(self, hosts):
        """hosts: list of (name, last octet)."""
        for n in stale_runs():
            sh("ip", "netns", "del", n, check=False)
        sh("ip", "netns", "add", self.hub)
        self.made.append(self.hub)
        sh("ip", "link", "set", "lo", "up", ns=self.hub)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.hub)
        sh("ip", "link", "set", "br0", "up", ns=self.hub)
        for i, (name, octet) in enumerate(hosts):
            ns = self.ns(name)
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            a, b = f"ws{self.pid}a{i}"[-15:], f"ws{self.pid}b{i}"[-15:]
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", self.hub)
            sh("ip", "link", "set", b, "netns", ns)
            sh("ip", "link", "set", a, "master", "br0", "up", ns=self.hub)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "link", "set", b, "name", "eth0", ns=ns)
            ip = f"{SUBNET}.{octet}"
            sh("ip", "addr", "add", f"{ip}/24", "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            self.hosts[name] = (ns, ip)

    def ip(self, name):
        return self.hosts[name][1]

    def enter(self, name):
        """Moves this process (single-threaded at this point) into a host's namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.hosts[name][0]}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def iptables(self, name, *rule):
        sh("iptables", "-w", *rule, ns=self.hosts[name][0])

    def destroy(self):
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made = []


class Proc:
    """One process started in a namespace; remembers why it ended."""

    def __init__(self, name, argv, ns, log, env=None):
        self.name, self.argv, self.ns, self.logpath, self.env = name, argv, ns, log, env
        self.p = None
        self.expected_exit = False
        self.exits = []  # (t, returncode, expected)
        self.starts = []

    def start(self):
        self.reap()  # an exit not yet seen by the monitor is still recorded
        logf = open(self.logpath, "ab")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        # ip netns exec execs the command: the pid we hold is the program's own.
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", self.ns] + self.argv,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        logf.close()
        self.expected_exit = False
        self.starts.append(time.time())

    @property
    def pid(self):
        return self.p.pid if self.p else None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig, expected=True):
        if self.alive():
            self.expected_exit = expected
            os.kill(self.p.pid, sig)

    def wait(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return rc

    def reap(self):
        """Records an exit once; returns (returncode, expected) when it just ended."""
        if self.p is not None and self.p.poll() is not None and (not self.exits or self.exits[-1][3] != self.p.pid):
            self.exits.append((time.time(), self.p.returncode, self.expected_exit, self.p.pid))
            return self.p.returncode, self.expected_exit
        return None

    def stop(self, timeout=15):
        if self.alive():
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.signal(signal.SIGKILL)
                self.wait(5)
        self.reap()


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def fd_targets(pid):
    """What each open descriptor of pid is: readlink of /proc/PID/fd/* ("socket:[123]",
    "pipe:[45]", "anon_inode:[eventfd]", a path)."""
    out = []
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            out.append(os.readlink(f"{d}/{fd}"))
        except OSError:  # closed while we looked
            pass
    return out


def fd_kind(target):
    if target.startswith("socket:"):
        return "sockets"
    if target.startswith("pipe:"):
        return "pipes"
    if target.startswith("anon_inode:"):
        return "anon"  # epoll, eventfd, timerfd, signalfd: libuv's own
    if target.startswith("/") and not target.startswith(("/dev/", "/proc/", "/sys/")):
        return "files"
    return "other"  # /dev/null, /dev/urandom, ...


def fd_kinds(pid):
    """{"sockets": n, "pipes": n, "anon": n, "files": n, "other": n} of pid's descriptors."""
    counts = dict.fromkeys(("sockets", "pipes", "anon", "files", "other"), 0)
    for t in fd_targets(pid):
        counts[fd_kind(t)] += 1
    return counts


def _hexaddr(h):
    """ "0100007F:1F90" of /proc/net/tcp (or its 32-digit IPv6 form) -> ("127.0.0.1", 8080)."""
    ip, port = h.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1]), int(port, 16)
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]  # each 32-bit word in host order
    b = b"".join(words)
    if b[:12] == b"\0" * 10 + b"\xff\xff":
        return ".".join(str(x) for x in b[12:]), int(port, 16)
    return ":".join(b[i:i + 2].hex() for i in range(0, 16, 2)), int(port, 16)


def _sockets(pid):
    """inode -> (protocol, local (ip, port), remote (ip, port), TCP state) for the sockets of
    pid's network namespace (/proc/PID/net/*); unix sockets without addresses."""
    socks = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/{pid}/net/{proto}") as f:
                next(f)
                for line in f:
                    c = line.split()
                    state = TCP_STATES.get(int(c[3], 16), c[3]) if proto.startswith("tcp") else ""
                    socks[c[9]] = (proto.rstrip("6"), _hexaddr(c[1]), _hexaddr(c[2]), state)
        except (OSError, ValueError, StopIteration):
            pass
    try:
        with open(f"/proc/{pid}/net/unix") as f:
            next(f)
            for line in f:
                c = line.split()
                socks[c[6]] = ("unix", None, None, "")
    except (OSError, StopIteration):
        pass
    return socks


def fd_breakdown(pid, role_of):
    """What pid's descriptors are: counts by kind, its TCP sockets by role and state (role_of
    maps (local, remote) to a role name such as "backend"), other sockets by protocol, and the
    paths of its regular files. For a report that must say what the descriptors were."""
    targets = fd_targets(pid)
    socks = _sockets(pid)
    kinds = dict.fromkeys(("sockets", "pipes", "anon", "files", "other"), 0)
    sockets, files = {}, {}
    for t in targets:
        k = fd_kind(t)
        kinds[k] += 1
        if k == "files":
            files[t] = files.get(t, 0) + 1
        elif k == "sockets":
            s = socks.get(t[len("socket:["):-1])
            if s is None:
                key = "unknown"
            elif s[0] == "tcp":
                key = "tcp " + role_of(s[1], s[2], s[3]) + " " + s[3]
            else:
                key = s[0]
            sockets[key] = sockets.get(key, 0) + 1
    return {"total": len(targets), "kinds": kinds, "sockets": sockets, "files": files}


def faketime_env(offset):
    for lib in FAKETIME_LIBS:
        if os.path.exists(lib):
            # The wall clock only: monotonic time (timers, libuv) is not what a wrong NTP changes.
            return {"LD_PRELOAD": lib, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}
    raise RuntimeError("libfaketime not found (apt-get install faketime)")


def make_certs(d, domain, pt_host):
    """A CA, the gateways' *.DOMAIN certificate and the passthrough backend's own."""
    def run(*a):
        sh("openssl", *a)

    ca_key, ca = f"{d}/ca.key", f"{d}/ca.pem"
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
        "-out", ca, "-subj", "/CN=webgw soak CA", "-days", "3", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")
    out = {}
    for tag, cn in (("gw", f"*.{domain}"), ("pt", pt_host)):
        key, csr, crt, ext = f"{d}/{tag}.key", f"{d}/{tag}.csr", f"{d}/{tag}.pem", f"{d}/{tag}.ext"
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{cn}\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/CN={cn}")
        run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
            "-days", "3", "-extfile", ext)
        out[tag] = (crt, key)
    return ca, out
