#!/usr/bin/python3
"""dns_probe.py - dnspython side of tests/node/test_dns.c: asks a gateway's DNS and prints
what it saw in one line, so the C test compares plain text.

  dns_probe.py answer IP PORT NAME TYPE [tcp|noedns]  -> "RCODE flags=.. an=N ns=N ar=N | sorted rdata | glue"
  dns_probe.py answers MODE NAME:TYPE,... IP:PORT ... -> one such line per server and query
  dns_probe.py garbage IP PORT                        -> "answered=N" for malformed/oversized input
  dns_probe.py rrl IP PORT NAME COUNT                 -> "full=N slipped=N none=N" for COUNT rapid queries
"""
import socket
import sys

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype


def answer(ip, port, name, rtype, mode):
    q = dns.message.make_query(name, rtype, use_edns=(-1 if mode == "noedns" else 0), payload=1232)
    if mode == "tcp":
        r = dns.query.tcp(q, ip, port=port, timeout=3)
    else:
        r = dns.query.udp(q, ip, port=port, timeout=3, ignore_trailing=True)
    flags = dns.flags.to_text(r.flags).lower().replace(" ", ",")
    rdata = sorted(rd.to_text() for rr in r.answer for rd in rr)
    glue = sorted("%s=%s" % (rr.name.to_text(), rd.to_text()) for rr in r.additional for rd in rr)
    ttls = sorted({rr.ttl for rr in r.answer})
    print("%s flags=%s an=%d ns=%d ttl=%s | %s | %s" % (
        dns.rcode.to_text(r.rcode()), flags, sum(len(rr) for rr in r.answer),
        sum(len(rr) for rr in r.authority), ",".join(map(str, ttls)), " ".join(rdata), " ".join(glue)))


def garbage(ip, port):
    """Malformed and oversized datagrams: the short ones get nothing, a readable header with a
    broken body gets FORMERR, oversized gets nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    good = dns.message.make_query("demo.example", "A").to_wire()
    cases = [b"", b"\x00", good[:11], good[:12] + b"\xc0\x0c\x00\x01\x00\x01",  # compression loop
             good[:-3], b"\xff" * 600, good + b"\x00" * 5000, bytes(b"\x12\x34\x81\x00") + good[4:]]
    answered = []
    for i, c in enumerate(cases):
        s.sendto(c, (ip, port))
        try:
            data, _ = s.recvfrom(65535)
            answered.append("%d:%d" % (i, data[3] & 0x0f))
        except socket.timeout:
            pass
    print("answered=" + ",".join(answered))


def rrl(ip, port, name, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    q = dns.message.make_query(name, "A").to_wire()
    for _ in range(count):
        s.sendto(q, (ip, port))
    full = slipped = 0
    while True:
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            break
        r = dns.message.from_wire(data)
        if r.flags & dns.flags.TC:
            slipped += 1
        else:
            full += 1
    print("full=%d slipped=%d none=%d" % (full, slipped, count - full - slipped))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "answers":  # several servers and queries in one process (python starts slowly)
        for server in sys.argv[4:]:
            sip, sport = server.rsplit(":", 1)
            for q in sys.argv[3].split(","):
                qname, qtype = q.split(":")
                answer(sip, int(sport), qname, qtype, sys.argv[2])
        sys.exit(0)
    cmd, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "answer":
        answer(ip, port, sys.argv[4], sys.argv[5], sys.argv[6] if len(sys.argv) > 6 else "udp")
    elif cmd == "garbage":
        garbage(ip, port)
    elif cmd == "rrl":
        rrl(ip, port, sys.argv[4], int(sys.argv[5]))
