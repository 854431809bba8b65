#!/usr/bin/env python3
"""Verifies a message's DKIM signature with dkimpy, an independent implementation.

Usage: dkim_verify.py TXT-RECORD < message; the TXT record stands in for DNS. Prints
"pass" or "fail: <reason>".
"""
import sys

import dkim

record = sys.argv[1].encode()
message = sys.stdin.buffer.read()


def dns(name, timeout=5):
    return record


try:
    verifier = dkim.DKIM(message)
    ok = verifier.verify(dnsfunc=dns)
    print("pass" if ok else "fail: signature does not verify")
except Exception as e:  # noqa: BLE001 - any error is a failure to report
    print(f"fail: {e}")
