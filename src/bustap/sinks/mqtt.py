"""``mqtt://[user:pass@]host[:1883]/?topic=TEMPLATE&qos=1``: one MQTT message per record.

The topic is a template of record fields (``bustap/{kind}/{device}``,
``mirror/{topic}``; default ``bustap/{event_type}``), the payload the
record's JSON. At QoS 1 (the default) and 2 ``write()`` returns once the
broker has acknowledged every record (PUBACK / PUBCOMP), with no more in
flight than the broker's Receive Maximum. The connection takes the MQTT
source's options, from the URL: ``mqtts://`` or ``tls_ca``/``tls_cert``/
``tls_key``/``insecure`` for TLS, ``version`` (5, 311 or auto),
``client_id``, ``keepalive_secs``; ``retain=true`` publishes retained.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import ConfigError, ConnectError, SinkError
from ..net.mqtt import MqttClient
from ..sources.base import SourceOptions
from ..sources.mqtt import connect_client
from ..urls import Url
from . import register_sink
from ._bus import TLS_PARAMS, check_params, describe, flag_param, messages
from ._template import Template
from .base import RecordBatch, Sink

DEFAULT_TOPIC = "bustap/{event_type}"
#: QoS 1/2 publishes awaiting their acknowledgement at once, at most
MAX_IN_FLIGHT = 1_000
PARAMS = {"topic", "qos", "retain", "version", "client_id", "keepalive_secs"} | TLS_PARAMS


@register_sink("mqtt", "mqtts")
class MqttSink(Sink):
    def __init__(self, url: Url) -> None:
        super().__init__(url)
        check_params(url, PARAMS)
        self.topic = Template(url.param("topic") or DEFAULT_TOPIC, "mqtt",
                              what=f"sink {url.redacted}: topic")
        raw = url.param("qos") or "1"
        if raw not in ("0", "1", "2"):
            raise ConfigError(f"sink {url.redacted}: qos must be 0, 1 or 2, not {raw!r}",
                              value=raw)
        self.qos = int(raw)
        self.retain = flag_param(url, "retain")
        keepalive = url.param("keepalive_secs") or "60"
        if not keepalive.isdigit() or not 0 < int(keepalive) <= 65535:
            raise ConfigError(f"sink {url.redacted}: keepalive_secs must be 1..65535, "
                              f"not {keepalive!r}", value=keepalive)
        # the MQTT source's settings (connect_options reads version and client_id
        # from the URL itself)
        self.options = SourceOptions(
            tls_ca=url.param("tls_ca"), tls_cert=url.param("tls_cert"),
            tls_key=url.param("tls_key"), insecure=flag_param(url, "insecure"),
            keepalive_secs=int(keepalive))
        self.published = 0
        self._client: MqttClient | None = None

    async def open(self) -> None:
        await self._connect()

    async def _connect(self) -> None:
        try:
            self._client = await connect_client(self)
        except ConnectError as exc:
            raise SinkError(self.name, exc.reason) from None

    def _alive(self) -> bool:
        proto = self._client.proto if self._client is not None else None
        return proto is not None and not proto.closed.done()

    async def write(self, batch: RecordBatch) -> None:
        if not self._alive():
            await self._drop()
            await self._connect()
        client = self._client
        assert client is not None
        topic = self.topic
        static = topic.render({}) if topic.static else None
        qos, retain = self.qos, self.retain
        limit = asyncio.Semaphore(min(int(client.info.get("receive_maximum", 65_535)),
                                      MAX_IN_FLIGHT))

        async def publish(name: str, body: bytes) -> None:
            async with limit:
                await client.publish(name, body, qos=qos, retain=retain)

        try:
            if qos:
                tasks = [asyncio.ensure_future(publish(static or topic.render(r), body))
                         for r, body in messages(batch)]
                try:
                    await asyncio.gather(*tasks)
                finally:
                    for t in tasks:
                        t.cancel()
            else:
                for record, body in messages(batch):
                    await client.publish(static or topic.render(record), body, retain=retain)
                if not self._alive():
                    raise ConnectError(self.name, "connection closed by broker")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._drop()
            reason = exc.reason if isinstance(exc, ConnectError) else (
                "timed out waiting for the broker's acknowledgement"
                if isinstance(exc, TimeoutError) else describe(exc, self.url))
            raise SinkError(self.name, reason) from None
        self.published += len(batch)

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def aclose(self) -> None:
        await self._drop()
