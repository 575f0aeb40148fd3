"""NATS capture: ``nats://host[:4222]``, ``tls://host:4222`` (client certificates).

Subjects come from ``-t`` and ``?t=`` (default ``>``), ``--queue GROUP`` joins
a queue group. Core NATS has no flow control and nats-py reads whatever
arrives, so bustap stops reading the socket while many messages wait for the
pipeline (TCP then pushes back on the server, which buffers up to its
``max_pending`` for a client before it cuts it off as a slow consumer) and
reads again once they are taken. Should nats-py's own buffer still fill, it
drops messages as a slow consumer; each drop is counted (``dropped``, reason
``slow_consumer``), never silent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ConnectError
from ..message import Message
from ..net.nats import connect, error_text, options_kwargs
from ..topics import TopicSet, validate_nats_subject
from . import register_source
from .base import Batch, Source

# nats-py reads the socket as fast as it can whatever we do with the messages
# (core NATS has no flow control), so this is where memory is bounded; beyond
# it messages are dropped as a slow consumer, and counted. Telegraf's defaults.
PENDING_MSGS = 65_536
PENDING_BYTES = 64 * 1024 * 1024
# ... but it is read only while less than this waits (a quarter of the limits)
PAUSE_MSGS = PENDING_MSGS // 4
PAUSE_BYTES = PENDING_BYTES // 4


class _FlowQueue(asyncio.Queue[Any]):
    """nats-py's per-subscription queue, with reading paused above the
    PAUSE marks (checked as nats-py puts each message) and resumed when
    taking brings it under a quarter of them."""

    def __init__(self, sub: Any, conn: _Connection) -> None:
        super().__init__(maxsize=PENDING_MSGS)
        self._sub = sub
        self._conn = conn

    def put_nowait(self, item: Any) -> None:
        super().put_nowait(item)
        if self.qsize() >= PAUSE_MSGS or self._sub._pending_size >= PAUSE_BYTES:
            self._conn.pause()

    def get_nowait(self) -> Any:
        item = super().get_nowait()
        if self._conn.paused and self.qsize() <= PAUSE_MSGS // 4:
            self._conn.resume()
        return item


@register_source("nats", "tls")
class NatsSource(Source):
    protocol = "nats"

    def subjects(self) -> list[str]:
        given = [s for s in self.options.filters if _is_nats(s)]
        subjects = self.url.params("t") + given or [">"]
        for s in subjects:
            validate_nats_subject(s)
        return subjects

    #: built once and kept: connect() rotates its server list past the server a
    #: lost connection was on, so the reconnect tries the others first
    _kwargs: dict[str, Any] | None = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_Connection]:
        o = self.options
        subjects = self.subjects()
        queue = self.url.param("queue") or o.queue or ""
        if queue:
            validate_nats_subject(queue, wildcards=False)
        kwargs = self._kwargs = self._kwargs or options_kwargs(self.url, o)
        conn = _Connection(self, subjects)
        nc = await connect(self.url, kwargs, error_cb=conn.on_error, closed_cb=conn.on_closed)
        conn.nc = nc
        try:
            for subject in subjects:
                sub = await nc.subscribe(subject, queue=queue, pending_msgs_limit=PENDING_MSGS,
                                         pending_bytes_limit=PENDING_BYTES)
                conn.flow_control(sub)
                conn.subs.append(sub)
            # A subscription the server refuses comes back as an async -ERR:
            # a round trip makes sure it has arrived before we report success.
            await nc.flush(timeout=o.connect_timeout_secs)
            if conn.error:
                raise ConnectError(self.name, conn.error, fatal=True)
            info = getattr(nc, "_server_info", {}) or {}
            conn.info = {
                "server_id": info.get("server_id"), "server_name": info.get("server_name"),
                "version": info.get("version"), "tls": bool(kwargs.get("tls")),
                "jetstream": bool(info.get("jetstream")), "subjects": subjects,
                "queue": queue or None, "max_payload": info.get("max_payload"),
            }
            yield conn
        finally:
            if not nc.is_closed:
                await nc.close()


def _is_nats(pattern: str) -> bool:
    # MQTT-only filters ('#', '+', '/') are left to MQTT sources.
    return "#" not in pattern and "/" not in pattern and pattern != "+"


class _Connection:
    def __init__(self, source: NatsSource, subjects: list[str]) -> None:
        self.source = source
        self.exclude = TopicSet("nats", source.url.params("T") + source.options.exclude)
        self.subs: list[Any] = []
        self.nc: Any = None
        self.info: dict[str, Any] = {}
        self.error: str | None = None
        self.dropped = 0
        self.wakeup = asyncio.Event()
        self.closed = False
        self.paused = False

    def flow_control(self, sub: Any) -> None:
        """Give a subscription a _FlowQueue, when this nats-py's internals are
        the ones it was written for (else it keeps nats-py's plain queue)."""
        old = getattr(sub, "_pending_queue", None)
        if not isinstance(old, asyncio.Queue) or self._socket() is None:
            return
        queue = _FlowQueue(sub, self)
        while not old.empty():
            queue.put_nowait(old.get_nowait())
        sub._pending_queue = queue

    def _socket(self) -> asyncio.Transport | None:
        writer = getattr(getattr(self.nc, "_transport", None), "_io_writer", None)
        transport = getattr(writer, "transport", None)
        return transport if hasattr(transport, "pause_reading") else None

    def pause(self) -> None:
        # asyncio's StreamReader under nats-py resumes reading when its own
        # buffer drains, so this is checked again on every message put
        transport = self._socket()
        if transport is not None and not transport.is_closing() and transport.is_reading():
            transport.pause_reading()
            self.paused = True

    def resume(self) -> None:
        """Read again once every subscription's queue is low."""
        if any(q.qsize() > PAUSE_MSGS // 4 for q in self._queues()):
            return
        transport = self._socket()
        self.paused = False
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _queues(self) -> list[asyncio.Queue[Any]]:
        return [sub._pending_queue for sub in self.subs]

    async def on_error(self, exc: Exception) -> None:
        from nats.errors import SlowConsumerError

        if isinstance(exc, SlowConsumerError):
            self.dropped += 1
            return
        text = error_text(exc)
        if "permissions violation" in text.lower():
            self.error = text
        self.wakeup.set()

    async def on_closed(self) -> None:
        self.closed = True
        self.wakeup.set()

    async def __aiter__(self) -> AsyncIterator[Batch]:
        queues = self._queues()
        exclude = self.exclude
        first: list[Any] = []
        limit = self.source.options.batch_max
        while True:
            items: list[Any] = []
            # Draining nats-py's per-subscription queue in bulk avoids the task
            # switch per message that its callback API costs (see bench/).
            for sub, q in zip(self.subs, queues, strict=True):
                got = [m for m in first if m._sid == sub._id]
                while len(got) < limit and not q.empty():
                    got.append(q.get_nowait())
                    q.task_done()
                size = 0
                for m in got:
                    size += len(m.data)
                    if m.subject in exclude:
                        continue
                    items.append(Message("nats", m.subject, m.data, time.time(),
                                         reply=m.reply or None,
                                         headers=dict(m.headers) if m.headers else None))
                sub._pending_size -= size
            first = []
            if self.dropped:
                items.append({"event_type": "log", "kind": "stats", "event": "dropped",
                              "reason": "slow_consumer", "count": self.dropped})
                self.dropped = 0
            if items:
                yield Batch(items)
                continue
            if self.error:
                # nats-server may send a subscription's -ERR after the PONG
                # that flush() waited for: it lands here.
                raise ConnectError(self.source.name, self.error, fatal=True)
            if self.closed or (self.nc is not None and self.nc.is_closed):
                raise ConnectError(self.source.name, self.error or "connection closed by server")
            first = await self._wait(queues)

    async def _wait(self, queues: list[asyncio.Queue[Any]]) -> list[Any]:
        """Wait for the first message on any subscription, or for the
        connection to close; return the messages taken while waiting."""
        self.wakeup.clear()
        getters = [asyncio.ensure_future(q.get()) for q in queues]
        waker = asyncio.ensure_future(self.wakeup.wait())
        try:
            await asyncio.wait([*getters, waker], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in [*getters, waker]:
                f.cancel()
        taken = []
        for q, g in zip(queues, getters, strict=True):
            if g.done() and not g.cancelled():
                taken.append(g.result())
                q.task_done()
        return taken
