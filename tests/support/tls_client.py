#!/usr/bin/env python3
"""HTTPS requests to resetgate's admin listener, as an application on another host makes
them: Python's ssl and http.client, trusting only the CA file given, with the host name (an
IP address here) checked against the certificate.

    tls_client.py CA_FILE HOST PORT

Each line of standard input is one request as JSON: {"method", "path", "token"? (sent as
"Authorization: Bearer <token>"), "body"?, "source"? (the local address to connect from),
"version"? ("1.2" or "1.1": offer that TLS version only; 1.1 with OpenSSL's security level
lowered so that the client really offers it)}. Each goes on a fresh connection, and its answer is
one JSON line on standard output: {"status", "headers" (names in lower case), "body",
"version" (the negotiated TLS version)}, or {"error"} when no answer came.
"""
import http.client
import json
import ssl
import sys
import warnings

# Offering TLS 1.1 is the point of one test: Python warns that the setting is deprecated.
warnings.filterwarnings("ignore", category=DeprecationWarning)
VERSIONS = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2}


def one(ca, host, port, call):
    context = ssl.create_default_context(cafile=ca)
    if call.get("version"):
        if call["version"] == "1.1":
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = VERSIONS[call["version"]]
        context.maximum_version = VERSIONS[call["version"]]
    source = (call["source"], 0) if call.get("source") else None
    conn = http.client.HTTPSConnection(
        host, port, context=context, source_address=source, timeout=60
    )
    try:
        conn.connect()
        version = conn.sock.version()
        headers = {"Content-Type": "application/json"}
        if call.get("token"):
            headers["Authorization"] = "Bearer " + call["token"]
        body = call.get("body")
        conn.request(
            call["method"],
            call["path"],
            body=body.encode() if body else None,
            headers=headers,
        )
        answer = conn.getresponse()
        return {
            "status": answer.status,
            "headers": {k.lower(): v for k, v in answer.getheaders()},
            "body": answer.read().decode(),
            "version": version,
        }
    except (OSError, http.client.HTTPException) as e:
        return {"error": repr(e)}
    finally:
        conn.close()


def main():
    ca, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(one(ca, host, port, json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
