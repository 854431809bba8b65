#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for resetgate's integration tests.

It listens on 127.0.0.1, prints "PORT <n>" once it accepts connections, then one JSON line
per accepted message: {"mail_from", "rcpt_tos", "data"}. With --fail-first N it answers the
first N commands named by --fail-at (MAIL, RCPT or DATA) with --fail-reply. With --stall it
accepts connections, prints {"event": "connected"} for each, and never says a word. With
--drop-data N it drops the connection instead of answering the first N messages' final dot.
With --accept-then-drop N (repeatable) it records the N-th message, then drops the connection
without answering its final dot: a relay that took the message but whose answer was lost.
With --tls-cert/--tls-key it offers STARTTLS (and requires it), or with --implicit-tls speaks
TLS from the first byte. With --pipelining it offers PIPELINING (RFC 2920), and each message's
line says whether its RCPT and DATA commands had arrived with its MAIL command ("pipelined").
"""
import argparse
import asyncio
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, fail_first, fail_reply, fail_at, drop_data, slow, pipelining,
                 accept_then_drop=()):
        self.accept_then_drop = set(accept_then_drop)
        self.slow = slow
        self.pipelining = pipelining
        self.pipelined = False
        self.data_seen = 0
        self.fail_left = fail_first
        self.fail_reply = fail_reply
        self.fail_at = fail_at
        self.drop_left = drop_data

    def failing(self, command):
        if self.fail_at == command and self.fail_left > 0:
            self.fail_left -= 1
            return True
        return False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        offered = ["250-PIPELINING"] if self.pipelining else []
        # The last line ("250 HELP") ends the reply.
        return responses[:-1] + offered + responses[-1:]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # What the client sent after MAIL without waiting for its reply.
        waiting = bytes(server._reader._buffer)
        self.pipelined = b"RCPT TO:" in waiting and b"DATA\r\n" in waiting
        if self.failing("MAIL"):
            return self.fail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.failing("RCPT"):
            return self.fail_reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_seen += 1
        delay = self.slow.get(self.data_seen) or self.slow.get(0)
        if delay:
            await asyncio.sleep(delay)
        if self.drop_left > 0:
            self.drop_left -= 1
            server.transport.abort()
            return "451 never seen"
        if self.failing("DATA"):
            return self.fail_reply
        line = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "pipelined": self.pipelined,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        if self.data_seen in self.accept_then_drop:
            server.transport.abort()
            return "451 never seen"
        return "250 2.0.0 OK queued"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-reply", default="451 4.3.0 try again later")
    parser.add_argument("--fail-at", default="DATA", choices=["MAIL", "RCPT", "DATA"])
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--drop-data", type=int, default=0)
    parser.add_argument("--slow-data", action="append", default=[],
                        help="N:SECONDS: wait before answering the N-th message's final dot (0: every one)")
    parser.add_argument("--accept-then-drop", type=int, action="append", default=[],
                        help="N: record the N-th message, then drop the connection unanswered")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--pipelining", action="store_true")
    args = parser.parse_args()
    slow = {int(n): float(secs) for n, secs in (item.split(":") for item in args.slow_data)}
    handler = Recorder(args.fail_first, args.fail_reply, args.fail_at, args.drop_data, slow,
                       args.pipelining, args.accept_then_drop)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    loop = asyncio.get_running_loop()
    if args.stall:
        async def silent(reader, writer):
            sys.stdout.write(json.dumps({"event": "connected"}) + "\n")
            sys.stdout.flush()
            await reader.read()
        server = await asyncio.start_server(silent, host="127.0.0.1", port=args.port)
    elif context is not None and args.implicit_tls:
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.test"),
            host="127.0.0.1", port=args.port, ssl=context,
        )
    elif context is not None:
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.test", tls_context=context, require_starttls=True),
            host="127.0.0.1", port=args.port,
        )
    else:
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.test"), host="127.0.0.1", port=args.port
        )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    # Stop when the test closes our stdin (or dies).
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
