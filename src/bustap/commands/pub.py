"""``bustap pub URL -t TOPIC (-m MSG | -f FILE | -l | -n | -s)``: publish,
like ``mosquitto_pub`` and ``nats pub``, with capture's connection flags."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..publish import PUBLISH_PROPERTIES, Publication, property_value, publish
from ._common import add_connection_flags, run_async, source_options

HELP = "publish messages to an MQTT topic or a NATS subject"


def register(sub: Any) -> None:
    props = ", ".join(k.replace("_", "-") for k in PUBLISH_PROPERTIES)
    p = sub.add_parser(
        "pub", help=HELP, description=HELP + " (mosquitto_pub / nats pub).",
        epilog="examples:\n"
        "  bustap pub mqtt://127.0.0.1:1883 -t sensors/t1 -m 21.5 -q 1 -r\n"
        "  bustap pub mqtt://broker -t cmd/x -m '{}' -D content-type application/json "
        "-H origin:ops\n"
        "  tail -f events.log | bustap pub mqtt://broker -t logs/host1 -l\n"
        "  bustap pub mqtt://broker -t config/db -n -r        # clear a retained message\n"
        "  bustap pub nats://127.0.0.1:4222 -t hm.agent.alert.x -m '{...}' "
        "-H Nats-Msg-Id:1 --reply _INBOX.me",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", metavar="URL", help="mqtt://, mqtts://, nats:// or tls://")
    p.add_argument("-t", "--topic", dest="pub_topic", required=True, metavar="TOPIC",
                   help="MQTT topic or NATS subject (no wildcards)")
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("-m", "--message", metavar="MSG", help="the payload")
    body.add_argument("-f", "--file", metavar="FILE", help="the whole file is the payload")
    body.add_argument("-l", "--stdin-line", action="store_true",
                      help="one message per line read from stdin, sent as lines arrive")
    body.add_argument("-s", "--stdin-file", action="store_true",
                      help="all of stdin is one payload")
    body.add_argument("-n", "--null-message", action="store_true",
                      help="an empty payload (with -r: clears the retained message)")
    p.add_argument("-q", "--qos", type=int, default=0, choices=[0, 1, 2],
                   help="MQTT QoS (default 0); 1 and 2 wait for the broker's acknowledgement")
    p.add_argument("-r", "--retain", action="store_true", help="MQTT retained message")
    p.add_argument("-H", "--header", action="append", default=[], metavar="KEY:VALUE",
                   help="NATS header, or MQTT 5 user property (repeatable)")
    p.add_argument("--user-property", action="append", nargs=2, default=[],
                   metavar=("KEY", "VALUE"), help="MQTT 5 user property (as mosquitto_pub "
                   "-D publish user-property)")
    p.add_argument("-D", "--property", action="append", nargs=2, default=[],
                   metavar=("NAME", "VALUE"), help=f"MQTT 5 PUBLISH property: {props}")
    p.add_argument("--reply", metavar="SUBJECT", help="NATS reply subject")
    add_connection_flags(p)
    p.set_defaults(func=run)


def parse_headers(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise ConfigError(f"-H {item!r}: expected KEY:VALUE", value=item)
        out.append((key.strip(), value.lstrip()))
    return out


def run(args: argparse.Namespace) -> int:
    headers = parse_headers(args.header) + [(k, v) for k, v in args.user_property]
    properties = dict(property_value(name, value) for name, value in args.property)
    pub = Publication(args.pub_topic, qos=args.qos, retain=args.retain, headers=headers,
                      properties=properties, reply=args.reply)
    payloads: Any
    if args.message is not None:
        payloads = [args.message.encode("utf-8")]
    elif args.file is not None:
        try:
            payloads = [Path(args.file).read_bytes()]
        except OSError as exc:
            raise ConfigError(f"-f {args.file}: {exc.strerror or exc}",
                              value=args.file) from exc
    elif args.null_message:
        payloads = [b""]
    elif args.stdin_file:
        payloads = [sys.stdin.buffer.read()]
    else:
        payloads = _lines()
    run_async(publish(args.url, source_options(args), pub, payloads))
    return 0


async def _lines() -> AsyncIterator[bytes]:
    """stdin line by line as it arrives (``tail -f | bustap pub -l``)."""
    stdin = sys.stdin.buffer
    while True:
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            return
        yield line.rstrip(b"\n").removesuffix(b"\r")
