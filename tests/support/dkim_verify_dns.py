#!/usr/bin/env python3
"""Verifies a message's DKIM signature with dkimpy, resolving the key through a DNS server.

Usage: dkim_verify_dns.py PORT < message; dkimpy's dnsfunc asks the DNS server on
127.0.0.1:PORT (tests/support/dns_server.py) with dnslib. Prints "pass" or "fail: <reason>".
"""
import sys

import dkim
from dnslib import QTYPE, DNSRecord

port = int(sys.argv[1])
message = sys.stdin.buffer.read()


def dns(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    reply = DNSRecord.parse(DNSRecord.question(name, "TXT").send("127.0.0.1", port, timeout=timeout))
    # One TXT record's strings are joined (RFC 6376 §3.6.2.2).
    for rr in reply.rr:
        if rr.rtype == QTYPE.TXT:
            return b"".join(rr.rdata.data)
    return None


try:
    ok = dkim.DKIM(message).verify(dnsfunc=dns)
    print("pass" if ok else "fail: signature does not verify")
except Exception as e:  # noqa: BLE001 - any error is a failure to report
    print(f"fail: {e}")
