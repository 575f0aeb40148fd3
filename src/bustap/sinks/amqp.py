"""``amqp://user:pass@host[:5672]/vhost?exchange=X&routing_key=TEMPLATE``: RabbitMQ.

One message per record, its body the record's JSON with ``seq`` and
``writer_id`` (the layout of pmacct's amqp output, seed 004), published
persistent (delivery mode 2) to a durable exchange (``exchange_type`` topic
by default) on a channel with publisher confirms: ``write()`` returns once
RabbitMQ has confirmed every record. ``message_id`` is ``writer_id:seq``, so a
consumer can drop a record delivered twice (a batch is re-sent whole after a
failure). A record that no queue is bound for is returned by RabbitMQ; it is
counted (``unroutable``) and logged, not silently lost. ``amqps://`` (or a
``tls_ca`` parameter) for TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..errors import ConfigError, SinkError
from ..urls import Url
from . import register_sink
from ._bus import (
    TLS_PARAMS,
    check_params,
    choice_param,
    describe,
    flag_param,
    message_id,
    messages,
    tls_context,
)
from ._template import Template
from .base import RecordBatch, Sink, seconds_param

log = logging.getLogger("bustap.sinks.amqp")

DEFAULT_EXCHANGE = "bustap"
DEFAULT_ROUTING_KEY = "bustap.{event_type}"
TIMEOUT_SECS = 10.0
#: publishes awaiting a confirm at once (RabbitMQ confirms in bulk)
MAX_IN_FLIGHT = 1_000
PARAMS = {"exchange", "exchange_type", "routing_key", "declare", "timeout_secs"} | TLS_PARAMS


@register_sink("amqp", "amqps")
class AmqpSink(Sink):
    def __init__(self, url: Url) -> None:
        super().__init__(url)
        check_params(url, PARAMS)
        self.exchange_name = url.param("exchange") or DEFAULT_EXCHANGE
        self.exchange_type = choice_param(url, "exchange_type",
                                          ("topic", "direct", "fanout", "headers"), "topic")
        self.routing_key = Template(url.param("routing_key") or DEFAULT_ROUTING_KEY, "amqp",
                                   what=f"sink {url.redacted}: routing_key")
        #: declare the exchange (durable); false when it is managed elsewhere
        self.declare = flag_param(url, "declare", True)
        self.timeout = seconds_param(url, "timeout_secs", TIMEOUT_SECS)
        self.ssl = tls_context(url, tls_scheme=url.scheme == "amqps")
        vhost = url.path[1:] if url.path.startswith("/") else url.path
        self.vhost = vhost or "/"
        self.published = 0
        self.unroutable = 0
        self._conn: Any = None
        self._exchange: Any = None

    async def open(self) -> None:
        try:
            import aio_pika  # noqa: F401
        except ImportError:
            raise ConfigError("the amqp sink needs aio-pika: install `bustap[amqp]`",
                              value=self.name) from None
        await self._connect()

    async def _connect(self) -> None:
        import aio_pika

        url = self.url
        try:
            self._conn = await aio_pika.connect(
                host=url.host or "127.0.0.1", port=url.port or (5671 if self.ssl else 5672),
                login=url.username if url.username is not None else "guest",
                password=url.password if url.password is not None else "guest",
                virtualhost=self.vhost, ssl=self.ssl is not None, ssl_context=self.ssl,
                timeout=self.timeout,
                client_properties={"connection_name": f"bustap {self.name}"})
            channel = await self._conn.channel(publisher_confirms=True)
            if self.declare:
                self._exchange = await channel.declare_exchange(
                    self.exchange_name, self.exchange_type, durable=True,
                    timeout=self.timeout)
            else:
                self._exchange = await channel.get_exchange(self.exchange_name, ensure=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._drop()
            raise SinkError(self.name, _reason(exc, url, self.vhost)) from None

    async def write(self, batch: RecordBatch) -> None:
        import aio_pika

        if self._exchange is None or self._conn is None or self._conn.is_closed:
            await self._drop()
            await self._connect()
        exchange = self._exchange
        key = self.routing_key
        static = key.render({}) if key.static else None
        pending: list[Any] = []
        try:
            for record, body in messages(batch):
                msg = aio_pika.Message(body, content_type="application/json",
                                       delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                       message_id=message_id(record), app_id="bustap")
                pending.append(exchange.publish(msg, static or key.render(record),
                                                timeout=self.timeout))
                if len(pending) >= MAX_IN_FLIGHT:
                    await self._confirm(pending)
                    pending = []
            await self._confirm(pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            for coro in pending:
                coro.close()
            await self._drop()
            raise SinkError(self.name, _reason(exc, self.url, self.vhost)) from None

    async def _confirm(self, pending: list[Any]) -> None:
        from aiormq.abc import DeliveredMessage

        results = await asyncio.gather(*pending)
        # a confirm is Basic.Ack; a record RabbitMQ could not route comes back
        returned = sum(1 for r in results if isinstance(r, DeliveredMessage))
        self.published += len(results) - returned
        if returned:
            if not self.unroutable:
                log.warning("%s: %d records returned by RabbitMQ: no queue is bound to exchange "
                            "%r for their routing key", self.name, returned, self.exchange_name)
            self.unroutable += returned

    async def _drop(self) -> None:
        conn, self._conn, self._exchange = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)

    async def aclose(self) -> None:
        await self._drop()


def _reason(exc: BaseException, url: Url, vhost: str) -> str:
    """aio-pika's errors in one short line."""
    if isinstance(exc, TimeoutError):
        return "timed out waiting for RabbitMQ"
    name = type(exc).__name__
    text = describe(exc, url)
    if name in ("ProbableAuthenticationError", "AuthenticationError"):
        return "connection refused: authentication failed"
    if "Connection.OpenOk" in text and "Connection.Close" in text:
        # RabbitMQ closes at Connection.Open: the vhost is missing or not ours
        return f"connection refused: no access to vhost {vhost!r}"
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code is not None:
        import os

        return f"cannot connect: {os.strerror(code)}"
    return f"{name}: {text}" if text != name else name
