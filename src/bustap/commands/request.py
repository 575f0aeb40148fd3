"""``bustap request nats://... SUBJECT [DATA]``: one NATS request, the reply
on stdout (``nats request``; the BOSH director's request/reply)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..decode import DecoderChain
from ..encode import message_record
from ..publish import request
from ..record import Writer
from ..urls import redact
from ._common import add_connection_flags, run_async, source_options
from .pub import parse_headers

HELP = "send a NATS request and print the reply"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "request", help=HELP, description=HELP + " (the payload; --jsonl: the reply as a "
        "decoded bustap record). Exit 2 when nobody answers.",
        epilog="examples:\n"
        "  bustap request nats://127.0.0.1:4222 time.now ''\n"
        "  bustap request tls://director:4222 agent.9c1d '{\"method\":\"get_state\","
        "\"arguments\":[],\"reply_to\":\"director.x.9c1d\"}' --tls-ca ca.pem --jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", metavar="URL", help="nats:// or tls://")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("data", metavar="DATA", nargs="?", default="",
                   help="request payload (default empty)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECS",
                   help="wait this long for the reply (default 5)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="KEY:VALUE",
                   help="NATS header (repeatable)")
    p.add_argument("--jsonl", action="store_true",
                   help="print the reply as a bustap record (decoded, like capture)")
    add_connection_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    opts = source_options(args)
    reply = run_async(request(args.url, opts, args.subject, args.data.encode("utf-8"),
                              timeout=args.timeout, headers=parse_headers(args.header)))
    if args.jsonl:
        writer = Writer()
        rec = message_record(reply, 0, writer.writer_id, redact(args.url), writer.clock,
                             DecoderChain().decode)
        sys.stdout.buffer.write(orjson.dumps(rec) + b"\n")
    else:
        sys.stdout.buffer.write(reply.payload)
        if not reply.payload.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    return 0
