"""Syslog receivers: ``syslog+udp://127.0.0.1:5514``, ``syslog+tcp://127.0.0.1:5514``.

For brokers that log to syslog (Mosquitto ``log_dest syslog`` forwarded by
rsyslog, nats-server ``-r udp://host:port``). RFC 3164 and RFC 5424
messages; over TCP both octet-counted framing (RFC 6587, ``LEN SP MSG``) and
newline framing, told apart per message. The broker is chosen per sender
from the syslog tag (``mosquitto``, ``nats-server``), else ``?format=``, else
from the message itself; each sender host and tag keeps its own parser
state. A datagram that arrives while the queue is full is counted as
dropped (reason ``queue_full``); TCP senders are slowed down instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ConfigError, ConnectError
from ..logparse import FORMATS, LogParser, make_parser
from ..logparse.nats import NatsParser
from ..logparse.syslog import parse_syslog
from . import register_source
from .base import Batch, Source

MAX_FRAME = 64 * 1024
QUEUE = 50_000


@register_source("syslog+udp", "syslog+tcp")
class SyslogSource(Source):
    protocol = "syslog"

    def __init__(self, url: Any, options: Any) -> None:
        super().__init__(url, options)
        self.format = (url.param("format") or "auto").lower()
        if self.format != "auto" and self.format not in FORMATS:
            raise ConfigError(f"{url.redacted}: format must be auto, {', '.join(FORMATS)}; "
                              f"not {self.format!r}", value=self.format)
        if url.port is None:
            raise ConfigError(f"{url.redacted}: a port is needed (e.g. :5514)",
                              value=url.redacted)
        self.host = url.host or "127.0.0.1"
        self.port = url.port

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_Receiver]:
        rx = _Receiver(self)
        loop = asyncio.get_running_loop()
        try:
            if self.url.scheme == "syslog+udp":
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(rx), local_addr=(self.host, self.port))
                rx.closers.append(transport.close)
                port = transport.get_extra_info("sockname")[1]
            else:
                server = await asyncio.start_server(rx.tcp_client, self.host, self.port,
                                                    limit=MAX_FRAME * 2)
                rx.closers.append(server.close)
                port = server.sockets[0].getsockname()[1]
        except OSError as exc:
            raise ConnectError(self.name, f"cannot listen on {self.host}:{self.port}: "
                               f"{exc.strerror or exc}", fatal=True) from exc
        rx.info = {"listen": f"{self.host}:{port}", "transport": self.url.scheme[7:]}
        try:
            yield rx
        finally:
            rx.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, rx: _Receiver) -> None:
        self.rx = rx

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        for part in data.split(b"\n"):
            if part.strip():
                self.rx.put_nowait(part, addr[0])


class _Receiver:
    def __init__(self, source: SyslogSource) -> None:
        self.source = source
        self.queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue(QUEUE)
        self.parsers: dict[tuple[str, str], LogParser] = {}
        self.info: dict[str, Any] = {}
        self.closers: list[Any] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def put_nowait(self, data: bytes, peer: str) -> None:
        try:
            self.queue.put_nowait((data, peer))
        except asyncio.QueueFull:
            self.dropped += 1

    async def tcp_client(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        try:
            while True:
                first = await reader.read(1)
                if not first:
                    return
                if first.isdigit():
                    head = first + await reader.readuntil(b" ")
                    length = int(head[:-1])
                    if length > MAX_FRAME:
                        return
                    frame = await reader.readexactly(length)
                else:
                    frame = first + await reader.readuntil(b"\n")
                frame = frame.rstrip(b"\r\n")
                if frame:
                    await self.queue.put((frame, peer))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                ConnectionError):
            return
        finally:
            writer.close()

    def parser_for(self, peer: str, text: str) -> tuple[LogParser, str | None]:
        sm = parse_syslog(text)
        host = (sm.host if sm else None) or peer
        app = (sm.app if sm else None) or ""
        key = (host, app)
        parser = self.parsers.get(key)
        if parser is None:
            fmt = self.source.format
            low = app.lower()
            if "mosquitto" in low:
                fmt = "mosquitto"
            elif "nats" in low:
                fmt = "nats"
            elif fmt == "auto":
                fmt = "nats" if NatsParser.sniff(text) else "mosquitto"
            parser = self.parsers[key] = make_parser(fmt)
            if len(self.parsers) > 10_000:
                del self.parsers[next(iter(self.parsers))]
        return parser, (host if sm is None or sm.host is None else None)

    async def __aiter__(self) -> AsyncIterator[Batch]:
        q = self.queue
        while True:
            items = [await q.get()]
            while not q.empty() and len(items) < 5000:
                items.append(q.get_nowait())
            records: list[Any] = []
            for data, peer in items:
                text = data.decode("utf-8", "replace")
                parser, host = self.parser_for(peer, text)
                for rec in parser.feed(text):
                    if host is not None:
                        rec.setdefault("host", host)
                    rec["peer"] = peer
                    records.append(rec)
            if self.dropped:
                records.append({"kind": "stats", "event": "dropped", "reason": "queue_full",
                                "count": self.dropped})
                self.dropped = 0
            yield Batch(records)

    def close(self) -> None:
        for close in self.closers:
            with contextlib.suppress(Exception):
                close()
