#!/usr/bin/env python3
"""A real DNS server (dnslib) for resetgate's mail-authentication tests.

Usage: dns_server.py ZONE_FILE. It answers on 127.0.0.1, over UDP and TCP on one port, from
ZONE_FILE: zone file lines ('s1._domainkey.example.com. IN TXT "v=DKIM1; ..." "..."'), read
anew for every query, so a test changes its zones by rewriting the file between two runs.
A name with no record at all is NXDOMAIN; a name with records of other types only answers
NOERROR with no answer (NODATA), as a real server does. It prints "PORT <n>" once both
sockets listen, and stops when its standard input closes.
"""
import sys

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class ZoneFile(BaseResolver):
    def __init__(self, path):
        self.path = path

    def resolve(self, request, handler):
        reply = request.reply()
        with open(self.path, encoding="utf-8") as f:
            records = RR.fromZone(f.read())
        question = request.q
        named = [rr for rr in records if rr.rname == question.qname]
        if not named:
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in named:
            if rr.rtype == question.qtype or question.qtype == QTYPE.ANY:
                reply.add_answer(rr)
        return reply


def main():
    resolver = ZoneFile(sys.argv[1])
    quiet = DNSLogger(logf=lambda _: None)
    udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=quiet)
    port = udp.server.server_address[1]
    tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=quiet)
    udp.start_thread()
    tcp.start_thread()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
