"""``nats://host[:4222]/?subject=TEMPLATE``: one NATS message per record.

The subject is a template of record fields (``bustap.{kind}.{device}``,
default ``bustap.{event_type}``), the payload the record's JSON. Core NATS
has no acknowledgements: ``write()`` returns after a round trip to the
server (PING/PONG), which proves the server has read every record before it
(what it does with them depends on its subscribers). For records that must
survive, use ``jetstream://`` (sinks/jetstream.py). ``tls://`` or a
``tls_ca`` parameter for TLS, ``creds=FILE`` for a NATS credentials file,
``nats://TOKEN@host`` or ``nats://user:pass@host`` for the other auths.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..errors import ConnectError, SinkError
from ..net.nats import connect, connect_kwargs, error_text
from ..urls import Url
from . import register_sink
from ._bus import TLS_PARAMS, check_params, describe, flag_param, messages
from ._template import Template
from .base import RecordBatch, Sink, seconds_param

T = TypeVar("T")

DEFAULT_SUBJECT = "bustap.{event_type}"
TIMEOUT_SECS = 10.0


@register_sink("nats", "tls")
class NatsSink(Sink):
    PARAMS: frozenset[str] = frozenset({"subject", "creds", "nkey", "timeout_secs"}
                                       | TLS_PARAMS)

    def __init__(self, url: Url) -> None:
        super().__init__(url)
        check_params(url, set(self.PARAMS))
        self.subject = Template(url.param("subject") or DEFAULT_SUBJECT, "nats",
                                what=f"sink {url.redacted}: subject")
        self.timeout = seconds_param(url, "timeout_secs", TIMEOUT_SECS)
        self._kwargs = connect_kwargs(
            url, creds=url.param("creds"), nkey=url.param("nkey"), tls_ca=url.param("tls_ca"),
            tls_cert=url.param("tls_cert"), tls_key=url.param("tls_key"),
            insecure=flag_param(url, "insecure"), connect_timeout=self.timeout,
            name=f"bustap sink {url.redacted}")
        self.published = 0
        self._nc: Any = None
        self._closed = asyncio.Event()

    async def open(self) -> None:
        await self._connect()

    async def _connect(self) -> None:
        closed = asyncio.Event()

        async def on_closed() -> None:
            closed.set()

        try:
            self._nc = await connect(self.url, self._kwargs, closed_cb=on_closed)
        except ConnectError as exc:
            raise SinkError(self.name, exc.reason) from None
        self._closed = closed

    async def _confirmed(self, confirmation: Awaitable[T]) -> T:
        """``confirmation`` (a flush, the acks of a batch) within the timeout, or
        ConnectionLost as soon as the connection closes: nats-py leaves what
        waits for the server waiting out its timeout when the server goes away,
        and the failover to the next server would wait as long."""
        task = asyncio.ensure_future(confirmation)
        lost = asyncio.ensure_future(self._closed.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
                # a cancelled gather() ends with an exception nobody else reads
                task.add_done_callback(_consume)
        if task in done:
            return task.result()
        if lost in done:
            raise ConnectionLost
        raise TimeoutError

    async def _ensure(self) -> Any:
        if self._nc is None or self._nc.is_closed or not self._nc.is_connected:
            await self._drop()
            await self._connect()
        return self._nc

    async def write(self, batch: RecordBatch) -> None:
        nc = await self._ensure()
        subject = self.subject
        static = subject.render({}) if subject.static else None
        try:
            for record, body in messages(batch):
                await nc.publish(static or subject.render(record), body)
            await self._confirmed(nc.flush(timeout=self.timeout))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._drop()
            raise SinkError(self.name, _reason(exc, self.url)) from None
        self.published += len(batch)

    async def _drop(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 2)

    async def aclose(self) -> None:
        await self._drop()


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class ConnectionLost(Exception):
    """The connection closed while a write waited for the server."""


def _reason(exc: BaseException, url: Url) -> str:
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError":
        return "timed out waiting for the NATS server"
    if isinstance(exc, ConnectionLost):
        return "connection to the NATS server lost"
    text = error_text(exc)
    return describe(Exception(text), url) if text else type(exc).__name__
