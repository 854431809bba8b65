#!/usr/bin/env python3
"""A local server that speaks Have I Been Pwned's range API, for resetgate's tests.

    range_api.py [--listed SHA1HEX ...] [--hang]

GET /range/<5 hex digits> answers, as the real API with "Add-Padding: true" does, the
suffixes of the listed hashes under that prefix with a count, and padding lines with count
0. It prints "PORT <n>" once it listens, then one JSON line per request: {"path",
"padding" (the Add-Padding header), "prefix_ok" (the path is /range/ and 5 upper-case hex
digits and nothing else), "body_bytes" (what the request carried besides its head)}. With
--hang it accepts connections and never answers. It exits when its standard input closes.
"""
import argparse
import json
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = re.compile(r"^/range/[0-9A-F]{5}$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        line = {
            "path": self.path,
            "padding": self.headers.get("Add-Padding", ""),
            "prefix_ok": bool(PREFIX.match(self.path)),
            "body_bytes": len(body),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        prefix = self.path.rsplit("/", 1)[-1].upper()
        lines = [f"{h[5:]}:{42}" for h in self.server.listed if h.startswith(prefix)]
        lines += [f"{i:035X}:0" for i in range(800)]  # padding
        answer = "\r\n".join(lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):
        pass


def hang(listener):
    held = []
    while True:
        conn, _ = listener.accept()
        held.append(conn)  # never read, never answered, never closed
        sys.stdout.write(json.dumps({"path": None, "hung": True}) + "\n")
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listed", action="append", default=[])
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    if args.hang:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        threading.Thread(target=hang, args=(listener,), daemon=True).start()
        sys.stdout.write(f"PORT {listener.getsockname()[1]}\n")
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.listed = [h.upper() for h in args.listed]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sys.stdout.write(f"PORT {server.server_address[1]}\n")
    sys.stdout.flush()
    sys.stdin.buffer.read()


if __name__ == "__main__":
    main()
