"""JetStream capture: ``jetstream://host[:4222]/STREAM?durable=NAME``, a pull consumer.

With ``durable`` (or ``--session NAME``) the consumer is durable: created on
first use (every message of the stream, explicit acks, ``filter_subject``
from ``-t``/``?t=``, at most one), re-used after a restart, shared by every
collector that names it (they split the stream's messages between them).
A message is acknowledged only after the pipeline has the records on the
sinks (the batch's ``ack``), so a collector killed mid-stream gets what it
had not acknowledged again at its restart (or another collector does, after
the consumer's ``ack_wait``): at-least-once, nothing lost. Records carry
the stream sequence and the delivery count in ``properties``
(``num_delivered`` > 1 marks a redelivery). ``ack_wait_secs`` (default 30,
set when the consumer is created) is how long the server waits for an ack
before it redelivers. Without a durable name the consumer is ephemeral and
starts with new messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from ..errors import ConfigError, ConnectError
from ..message import Message
from ..net.nats import connect, error_text, options_kwargs
from ..topics import validate_nats_subject
from . import register_source
from .base import Batch, Source
from .nats import _is_nats  # which -t patterns are NATS subjects

#: how long one pull waits for messages before it looks at the connection again
FETCH_WAIT_SECS = 1.0
#: seconds the server waits for an ack before it redelivers to a consumer
ACK_WAIT_SECS = 30.0


@register_source("jetstream")
class JetStreamSource(Source):
    protocol = "jetstream"

    @property
    def stream_name(self) -> str:
        name = self.url.path.strip("/")
        if not name or any(c in name for c in " .*>/\t"):
            raise ConfigError(f"{self.name}: needs a stream: jetstream://HOST:4222/STREAM"
                              "?durable=NAME", value=name)
        return name

    @property
    def durable(self) -> str | None:
        name = self.url.param("durable") or self.options.session
        if name is not None and (not name or any(c in name for c in " .*>/\t")):
            raise ConfigError(f"{self.name}: invalid durable name {name!r}", value=name)
        return name

    @property
    def ack_wait(self) -> float:
        raw = self.url.param("ack_wait_secs")
        if raw is None:
            return ACK_WAIT_SECS
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise ConfigError(f"{self.name}: ack_wait_secs must be a positive number of "
                              f"seconds, not {raw!r}", value=raw)
        return value

    def subjects(self) -> list[str]:
        """The consumer's filter: one subject (default: the whole stream)."""
        given = [s for s in self.options.filters if _is_nats(s)]
        subjects = self.url.params("t") + given
        for s in subjects:
            validate_nats_subject(s)
        if len(subjects) > 1:
            raise ConfigError(f"{self.name}: a JetStream consumer takes one filter subject, "
                              f"not {len(subjects)} ({', '.join(subjects)})",
                              value=subjects[1])
        return subjects

    #: built once and kept: connect() rotates its server list past the server a
    #: lost connection was on, so the reconnect tries the others first
    _kwargs: dict[str, Any] | None = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_Connection]:
        from nats.js import api
        from nats.js.errors import NotFoundError

        o = self.options
        stream, durable, subjects = self.stream_name, self.durable, self.subjects()
        kwargs = self._kwargs = self._kwargs or options_kwargs(self.url, o)
        conn = _Connection(self)
        nc = await connect(self.url, kwargs, closed_cb=conn.on_closed)
        conn.nc = nc
        try:
            js = nc.jetstream(timeout=o.connect_timeout_secs)
            try:
                info = await js.stream_info(stream)
                if durable:
                    try:
                        await js.consumer_info(stream, durable)
                    except NotFoundError:
                        await js.add_consumer(stream, api.ConsumerConfig(
                            durable_name=durable, ack_policy=api.AckPolicy.EXPLICIT,
                            deliver_policy=api.DeliverPolicy.ALL, ack_wait=self.ack_wait,
                            filter_subject=subjects[0] if subjects else None))
                    conn.sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
                else:
                    conn.sub = await js.pull_subscribe(
                        subjects[0] if subjects else "", stream=stream,
                        config=api.ConsumerConfig(ack_policy=api.AckPolicy.EXPLICIT,
                                                  deliver_policy=api.DeliverPolicy.NEW,
                                                  ack_wait=self.ack_wait))
            except NotFoundError:
                raise ConnectError(self.name, f"no stream {stream!r} on this server",
                                   fatal=True) from None
            except ConnectError:
                raise
            except Exception as exc:
                raise ConnectError(self.name, f"JetStream: {error_text(exc)}") from None
            server = getattr(nc, "_server_info", {}) or {}
            conn.info = {
                "server_id": server.get("server_id"), "server_name": server.get("server_name"),
                "version": server.get("version"), "tls": bool(kwargs.get("tls")),
                "stream": stream, "durable": durable, "subjects": subjects or None,
                "stream_messages": info.state.messages,
            }
            yield conn
        finally:
            await conn.finish_acks()
            if not nc.is_closed:
                with contextlib.suppress(Exception):
                    await nc.close()


class _Connection:
    def __init__(self, source: JetStreamSource) -> None:
        self.source = source
        self.nc: Any = None
        self.sub: Any = None
        self.info: dict[str, Any] = {}
        self.closed = False
        self._acking: set[asyncio.Task[None]] = set()

    async def on_closed(self) -> None:
        self.closed = True

    def ack_later(self, msgs: list[Any]) -> None:
        """The batch's ``ack``: the records are on the sinks, the server may forget them."""
        task = asyncio.get_running_loop().create_task(self._ack(msgs))
        self._acking.add(task)
        task.add_done_callback(self._acking.discard)

    async def _ack(self, msgs: list[Any]) -> None:
        nc = self.nc
        try:
            for m in msgs:
                await nc.publish(m.reply, b"+ACK")
        except Exception:
            pass

    async def finish_acks(self) -> None:
        if self._acking:
            await asyncio.gather(*self._acking, return_exceptions=True)
        if self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)

    async def __aiter__(self) -> AsyncIterator[Batch]:
        from nats.errors import TimeoutError as NatsTimeout

        limit = self.source.options.batch_max
        name = self.source.name
        while True:
            if self.closed or self.nc.is_closed:
                raise ConnectError(name, "connection closed by server")
            try:
                msgs = await self.sub.fetch(limit, timeout=FETCH_WAIT_SECS)
            except (TimeoutError, NatsTimeout):
                continue
            except Exception as exc:
                raise ConnectError(name, error_text(exc)) from None
            now = time.time()
            items: list[Any] = []
            for m in msgs:
                meta = m.metadata
                items.append(Message(
                    "jetstream", m.subject, m.data, now, reply=None,
                    headers=dict(m.headers) if m.headers else None,
                    properties={"stream": meta.stream, "stream_seq": meta.sequence.stream,
                                "num_delivered": meta.num_delivered}))
            if items:
                yield Batch(items, partial(self.ack_later, msgs))
