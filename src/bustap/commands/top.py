"""``bustap top URL...``: live msgs/s and bytes/s per topic and per client,
MQTT and NATS at once (like nats-top). ``q`` quits, ``s`` changes the sort."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..decode import DecoderChain
from ..errors import ConfigError
from ..message import Message
from ..ratetable import SORT_KEYS, RateTable, Row
from ..record import Record
from ._common import add_connection_flags, source_options

HELP = "live rates per topic and per client in the terminal (MQTT and NATS at once)"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "top", help=HELP, description=HELP + ". Topics and subjects from the bus URLs; "
        "clients from nats-monitor:// (the server's per-connection counters, by connection "
        "name) and from a Mosquitto log tail (PUBLISH lines, log_type all).",
        epilog="keys: q quits, s changes the sort (" + ", ".join(SORT_KEYS) + ")\n"
        "examples:\n"
        "  bustap top mqtt://127.0.0.1:1883 nats://127.0.0.1:4222\n"
        "  bustap top nats://127.0.0.1:4222 nats-monitor://127.0.0.1:8222 --sort total\n"
        "  bustap top mqtt://broker:1883 'file:///var/log/mosquitto/mosquitto.log?"
        "format=mosquitto' -t 'sensors/#'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("urls", nargs="+", metavar="URL")
    p.add_argument("-t", "--topic", action="append", metavar="FILTER",
                   help="topic filter or subject (repeatable; default everything)")
    p.add_argument("--sort", default="msgs", choices=SORT_KEYS,
                   help="sort by msgs/s (default), bytes/s, total, name or last seen")
    p.add_argument("-n", "--rows", type=int, default=0, metavar="N",
                   help="rows per table (default: what fits the terminal)")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECS",
                   help="refresh every SECS (default 1)")
    p.add_argument("-W", "--timeout", type=float, metavar="SECS", help="stop after SECS")
    add_connection_flags(p)
    p.set_defaults(func=run)


class _Undecoded(DecoderChain):
    """No payload decoding: the rate table counts messages and bytes per
    topic from the envelope alone (the size is set before decoding), and
    decoding would cost several times the counting on a busy bus."""

    def decode(self, msg: Message, rec: Record) -> None:
        return None


def run(args: argparse.Namespace) -> int:
    from ..sources import make_source
    from ..urls import parse_url
    from ._common import run_async

    if args.interval <= 0:
        raise ConfigError(f"--interval must be positive, not {args.interval}",
                          value=args.interval)
    opts = source_options(args)
    sources, monitors = [], []
    for raw in args.urls:
        url = parse_url(raw)
        if url.scheme == "nats-monitor":
            monitors.append((url.host or "127.0.0.1", url.port or 8222))
        else:
            sources.append(make_source(raw, opts))
    run_async(_top(args, sources, monitors))
    return 0


async def _top(args: argparse.Namespace, sources: list[Any],
               monitors: list[tuple[str, int]]) -> None:
    from rich.console import Console
    from rich.live import Live

    from ..pipeline import Pipeline
    from ..record import Writer
    from ..sources.nats_monitor import http_get_json
    from ._common import run_pipeline

    table = RateTable()
    sort = [args.sort]
    done = asyncio.Event()
    pipeline = Pipeline(sources, [], writer=Writer("top"), decoders=_Undecoded([]),
                        processors=[table], spool=False,
                        timeout=args.timeout) if sources else None
    console = Console()
    started = time.monotonic()

    def quit_() -> None:
        done.set()
        if pipeline is not None:
            pipeline.stop()

    def key(ch: str) -> None:
        if ch in ("q", "Q", "\x03"):
            quit_()
        elif ch in ("s", "S"):
            sort[0] = SORT_KEYS[(SORT_KEYS.index(sort[0]) + 1) % len(SORT_KEYS)]

    async def refresh() -> None:
        with _keys(key), Live(console=console, auto_refresh=False, screen=console.is_terminal,
                              transient=False) as live:
            while not done.is_set():
                for host, port in monitors:
                    with contextlib.suppress(Exception):
                        table.connz(f"{host}:{port}", await http_get_json(
                            host, port, "/connz?limit=1024", args.connect_timeout))
                table.snapshot()
                live.update(_render(table, sort[0], args, console.size.height,
                                    time.monotonic() - started), refresh=True)
                if args.timeout and time.monotonic() - started >= args.timeout:
                    quit_()
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), args.interval)

    if pipeline is None:
        await refresh()
        return
    await run_pipeline(pipeline, refresh())


@contextlib.contextmanager
def _keys(handler: Any) -> Iterator[None]:
    """Single keys from a terminal without Enter (cbreak), restored at the end."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        with contextlib.suppress(OSError):
            import os

            for ch in os.read(fd, 32).decode(errors="replace"):
                handler(ch)

    tty.setcbreak(fd)
    loop.add_reader(fd, readable)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _rate(v: float) -> str:
    return f"{v:,.1f}" if v else "0"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _ago(ts: float) -> str:
    if not ts:
        return "-"
    secs = max(0.0, time.time() - ts)
    return f"{secs:.0f}s ago" if secs < 120 else f"{secs / 60:.0f}m ago"


def _render(table: RateTable, sort: str, args: argparse.Namespace, height: int,
            elapsed: float) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    total_rate = sum(r.msgs_per_sec for r in table.topics.values())
    total_bytes = sum(r.bytes_per_sec for r in table.topics.values())
    head = Text.assemble(("bustap top", "bold"), f"  {', '.join(args.urls)}\n",
                         f"{len(table.topics)} topics  {len(table.clients)} clients  "
                         f"{_rate(total_rate)} msgs/s  {_size(total_bytes)}/s  "
                         f"up {elapsed:.0f}s  sort: {sort}   (q quit, s sort)")
    rows = args.rows or max(3, (height - 10) // 2)

    def grid(title: str, data: dict[str, Row], what: str) -> Table:
        t = Table(title=title, title_justify="left", box=None, pad_edge=False, expand=True,
                  header_style="bold")
        t.add_column(what, overflow="ellipsis", no_wrap=True, ratio=1)
        t.add_column("", no_wrap=True)
        for name in ("msgs/s", "bytes/s", "total", "bytes"):
            t.add_column(name, justify="right", no_wrap=True)
        t.add_column("last seen", justify="right", no_wrap=True)
        for r in RateTable.sorted(data, sort, rows):
            t.add_row(r.name, r.kind, _rate(r.msgs_per_sec), _size(r.bytes_per_sec),
                      f"{r.total:,}", _size(r.bytes), _ago(r.last_seen))
        if len(data) > rows:
            t.add_row(f"... {len(data) - rows} more", "", "", "", "", "", "")
        return t

    parts: list[Any] = [head, grid("topics and subjects", table.topics, "topic")]
    if table.clients:
        parts.append(grid("clients (publishing)", table.clients, "client"))
    return Group(*parts)
