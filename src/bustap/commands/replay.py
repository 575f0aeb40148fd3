"""``bustap replay FILE.jsonl|--store S [filters] --to URL [--speed 1.0|N|max]``:
timing-true replay."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..replay import Outgoing, ReplayStats, connect_publisher, file_messages, replay, store_messages
from ._common import add_connection_flags, run_async, source_options
from ._store import add_filter_flags, filters_from_args

HELP = "publish the messages of a capture file or store again, with their original timing"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay", help=HELP, description=HELP + ": topic/subject, QoS, retain, MQTT 5 "
        "properties and user properties, NATS headers, and the gaps between messages "
        "divided by --speed. Reproduces an incident; load-tests a broker.",
        epilog="examples:\n"
        "  bustap replay incident.jsonl --to mqtt://127.0.0.1:1883\n"
        "  bustap replay capture.jsonl.gz --to nats://127.0.0.1:4222 --speed 10\n"
        "  bustap replay capture.jsonl --to mqtt://lab:1883 --speed max --loop\n"
        "  bustap replay --store bustap.duckdb -t 'sensors/#' --since 1h --to mqtt://lab:1883",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE.jsonl", nargs="?", help="records written by "
                   "capture (.jsonl or .jsonl.gz); its message records are published")
    p.add_argument("--store", metavar="STORE", help="instead of a file: the messages of "
                   "this store (path.duckdb, postgresql://...) that match the filters")
    p.add_argument("--to", required=True, metavar="URL",
                   help="broker to publish to: mqtt://, mqtts://, nats://, tls://")
    p.add_argument("--speed", default="1", metavar="1.0|N|max",
                   help="divide the recorded gaps by N (default 1: real time); max: no waits")
    p.add_argument("--qos", dest="replay_qos", type=int, choices=[0, 1, 2],
                   help="MQTT QoS for every message (default: the recorded one)")
    p.add_argument("--loop", action="store_true", help="start again at the end (until Ctrl-C)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway unless stderr is a terminal)")
    add_filter_flags(p)
    add_connection_flags(p)
    p.set_defaults(func=run)


def parse_speed(raw: str) -> float | None:
    if raw.lower() == "max":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"--speed must be a positive number or max, not {raw!r}", value=raw)
    return value


def run(args: argparse.Namespace) -> int:
    speed = parse_speed(args.speed)
    stats = ReplayStats()
    if (args.file is None) == (args.store is None):
        raise ConfigError("replay needs FILE.jsonl or --store STORE (one of them)",
                          value=args.file or args.store or "")
    messages: Callable[[], Generator[Outgoing, None, None]]
    if args.store is not None:
        filters, target = filters_from_args(args), args.store
        messages = lambda: store_messages(target, filters, stats)  # noqa: E731
        label = _redacted(target)
    else:
        path = Path(args.file)
        if not path.is_file():
            raise ConfigError(f"no such file: {args.file}", value=args.file)
        if any(getattr(args, f) for f in FILTERS):
            raise ConfigError("the filters choose messages of a --store; a file is "
                              "replayed whole", value=args.file)
        messages = lambda: file_messages(path, stats)  # noqa: E731
        label = path.name
    options = source_options(args)
    show = sys.stderr.isatty() and not args.no_progress

    interrupted = run_async(_run(messages, label, args, options, speed, stats, show))
    shown = "max" if speed is None else f"{speed:g}x"
    span = (stats.last_time or 0) - (stats.first_time or 0)
    parts = [f"{stats.published} messages ({stats.bytes} bytes) to {_redacted(args.to)} in "
             f"{stats.elapsed_secs:.1f}s at {shown} (recorded span {span:.1f}s)"]
    if speed is not None:
        parts.append(f"latest publish {stats.max_late_secs * 1000:.0f} ms behind its time")
    if stats.inexact:
        parts.append(f"{stats.inexact} payloads not as received (captured without "
                     "payload_raw: same value, other bytes)")
    for reason, n in sorted(stats.skipped.items()):
        parts.append(f"{n} skipped ({reason})")
    print("bustap: replayed " + "; ".join(parts), file=sys.stderr)
    return 130 if interrupted else 0


def _redacted(url: str) -> str:
    from ..urls import redact

    return redact(url)


#: the filter flags of add_filter_flags (argparse dests)
FILTERS = ("topic", "since", "until", "device", "event", "severity", "client", "kind",
           "event_type", "grep", "where")


async def _run(messages: Callable[[], Generator[Outgoing, None, None]], label: str,
               args: argparse.Namespace, options: Any, speed: float | None,
               stats: ReplayStats, show: bool) -> bool:
    publisher = await connect_publisher(args.to, options, qos=args.replay_qos, stats=stats)
    task = asyncio.ensure_future(_replay(messages, label, publisher, speed, stats, args.loop,
                                         show))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
        return False
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await publisher.drain()
        return True
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await publisher.close()


async def _replay(messages: Callable[[], Generator[Outgoing, None, None]], label: str,
                  publisher: Any, speed: float | None, stats: ReplayStats, loop: bool,
                  show: bool) -> None:
    if not show:
        await replay(messages, publisher, speed=speed, stats=stats, loop=loop)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    # one pass to count them (the bar's total); the real pass counts what it skips
    total = None if loop else sum(1 for _ in messages())
    stats.skipped.clear()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True) as progress:
        bar = progress.add_task(label, total=total)
        await replay(messages, publisher, speed=speed, stats=stats, loop=loop,
                     progress=lambda _n: progress.advance(bar))
