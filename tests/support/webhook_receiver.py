#!/usr/bin/env python3
"""A real HTTP webhook receiver for resetgate's integration tests.

It listens on 127.0.0.1, prints "PORT <n>" once it accepts connections, then one JSON line
per POST request: {"id", "timestamp" (the webhook-id and webhook-timestamp headers),
"verified" (the reference `standardwebhooks` library accepted it with --secret),
"tamper_rejected" (the library rejects the same headers with the body altered by one byte),
"unsigned_rejected" (it rejects the body without the webhook-signature header), "duplicate"
(this webhook-id was answered 2xx before), "status" (the answer), "body" (the parsed JSON or
null), "path", "content_type"}. A delivery that fails verification is answered 401. With
--fail-first N the first N verified deliveries are answered --fail-status (default 500), then
200. With --tls-cert/--tls-key it speaks https. With --close-after-answer it closes each
connection after its answer, without saying so (no "Connection: close"), as a server whose
idle keep-alive timeout ran out does. It exits when its standard input closes.
"""
import argparse
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def accepts(webhook, body, headers):
    try:
        webhook.verify(body, headers, json_parse=False)
        return True
    except Exception:  # the library raises more than WebhookVerificationError on bad input
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a client may reuse its connection

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return body
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):
        server = self.server
        body = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        tampered = bytes([body[0] ^ 1]) + body[1:] if body else b"x"
        unsigned = {k: v for k, v in headers.items() if k != "webhook-signature"}
        verified = accepts(server.webhook, body, headers)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        msg_id = headers.get("webhook-id", "")
        with server.lock:
            status = 401
            if verified:
                status = 200
                if server.fail_left > 0:
                    server.fail_left -= 1
                    status = server.fail_status
            duplicate = msg_id in server.delivered
            if 200 <= status < 300:
                server.delivered.add(msg_id)
            line = {
                "id": msg_id,
                "timestamp": headers.get("webhook-timestamp", ""),
                "verified": verified,
                "tamper_rejected": not accepts(server.webhook, tampered, headers),
                "unsigned_rejected": not accepts(server.webhook, body, unsigned),
                "duplicate": duplicate,
                "status": status,
                "body": parsed,
                "path": self.path,
                "content_type": headers.get("content-type", ""),
            }
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
        answer = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        if self.server.close_after_answer:
            self.close_connection = True

    def log_message(self, format, *args):
        pass  # stdout is for the JSON lines; the test's output needs no access log


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that gives up (say on an untrusted certificate) is no traceback.
        sys.stderr.write(f"webhook receiver: {sys.exc_info()[1]!r}\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", required=True, help="whsec_...: verifies every delivery")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=500)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--close-after-answer", action="store_true")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.webhook = Webhook(args.secret)
    server.lock = threading.Lock()
    server.fail_left = args.fail_first
    server.fail_status = args.fail_status
    server.delivered = set()
    server.close_after_answer = args.close_after_answer
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake happens in the request's thread, so a stalled client blocks no other.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write(f"PORT {server.server_address[1]}\n")
    sys.stdout.flush()
    # Stop when the test closes our stdin (or dies).
    sys.stdin.buffer.read()
    server.shutdown()


if __name__ == "__main__":
    main()
