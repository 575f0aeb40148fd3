"""MQTT 3.1.1 / 5.0 capture: ``mqtt://[user[:pass]@]host[:1883]``, ``mqtts://host[:8883]``.

Filters come from ``-t`` and from ``?t=`` in the URL; ``-T`` / ``?T=`` leave
topics out. QoS 1/2 messages are acknowledged only after they are written
(the pipeline calls the batch's ``ack``). ``--session NAME`` makes a
persistent session (clean off), so the broker keeps messages while we are away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Protocol

from ..errors import ConfigError, ConnectError
from ..message import Message
from ..net.mqtt import REASONS_V5, ConnectOptions, MqttClient, random_client_id
from ..net.mqtt import connect_client as mqtt_connect
from ..net.tls import client_context
from ..topics import TopicSet, validate_mqtt_filter
from ..urls import Url
from . import register_source
from .base import Batch, Source, SourceOptions

SESSION_EXPIRY_SECS = 7 * 24 * 3600
_VERSIONS = {"auto": 5, "5": 5, "mqttv5": 5, "5.0": 5, "311": 4, "3.1.1": 4, "mqttv311": 4,
             "4": 4}


class Endpoint(Protocol):
    """What the connection settings are made from: a source, or the MQTT sink."""

    url: Url
    options: SourceOptions

    @property
    def name(self) -> str: ...


def connect_options(source: Endpoint, *, default_client_id: str = "") -> ConnectOptions:
    """Connection settings from a URL and options: shared by the MQTT sink."""
    url, o = source.url, source.options
    tls = url.scheme == "mqtts" or bool(o.tls_ca or o.tls_cert or o.insecure)
    version = _VERSIONS.get((url.param("version") or o.protocol_version).lower())
    if version is None:
        raise ConfigError(f"unknown MQTT protocol version {o.protocol_version!r} "
                          "(use 5 or 311)", value=o.protocol_version)
    client_id = url.param("client_id") or o.client_id or o.session or default_client_id
    return ConnectOptions(
        host=url.host or "127.0.0.1",
        port=url.port or (8883 if tls else 1883),
        client_id=client_id or random_client_id(),
        clean=o.session is None,
        username=url.username if url.username is not None else o.username,
        password=url.password if url.password is not None else o.password,
        keepalive=o.keepalive_secs,
        version=version,
        ssl=client_context(ca=o.tls_ca, cert=o.tls_cert, key=o.tls_key,
                           insecure=o.insecure) if tls else None,
        session_expiry=SESSION_EXPIRY_SECS if o.session else 0,
        connect_timeout=o.connect_timeout_secs,
        max_pending=o.max_pending,
        batch_max=o.batch_max,
        name=source.name,
    )


async def connect_client(source: Endpoint) -> MqttClient:
    """Connect, falling back from MQTT 5 to 3.1.1 when the version is ``auto``
    and the broker does not speak 5 (see :func:`bustap.net.mqtt.connect_client`)."""
    opts = connect_options(source)
    auto = (source.url.param("version") or source.options.protocol_version).lower() == "auto"
    return await mqtt_connect(opts, auto=auto)


@register_source("mqtt", "mqtts")
class MqttSource(Source):
    protocol = "mqtt"

    def filters(self) -> list[str]:
        own = self.url.params("t")
        given = [f for f in self.options.filters if _is_mqtt(f)]
        filters = own + given or ["#"]
        for f in filters:
            validate_mqtt_filter(f)
        return filters

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_Connection]:
        filters = self.filters()
        exclude = TopicSet("mqtt", self.url.params("T") + self.options.exclude)
        qos = int(self.url.param("qos") or self.options.qos)
        if qos not in (0, 1, 2):
            raise ConfigError(f"--qos must be 0, 1 or 2, not {qos}", value=qos)
        client = await connect_client(self)
        try:
            codes = await client.subscribe([(f, qos) for f in filters])
            for flt, code in zip(filters, codes, strict=False):
                if code >= 0x80:
                    reason = REASONS_V5.get(code, "refused") if code != 0x80 else "refused"
                    raise ConnectError(self.name, f"subscription to {flt!r} refused: {reason}",
                                       fatal=True)
            info = dict(client.info, filters=filters,
                        granted_qos=[c for c in codes if c < 0x80])
            yield _Connection(client, info, exclude)
        finally:
            await client.close()


def _is_mqtt(pattern: str) -> bool:
    # With sources of several protocols, a -t applies where it is valid: NATS
    # subjects with '.' tokens and '*'/'>' wildcards are left to NATS sources.
    return not (pattern == ">" or pattern.endswith(".>") or ".*" in pattern
                or pattern.startswith("*."))


class _Connection:
    def __init__(self, client: MqttClient, info: dict[str, Any], exclude: TopicSet) -> None:
        self.client = client
        self.info = info
        self.exclude = exclude

    async def __aiter__(self) -> AsyncIterator[Batch]:
        client = self.client
        exclude = self.exclude
        async for messages in client:
            items: list[Message] = messages
            if exclude:
                items = [m for m in messages if m.topic not in exclude]
            for m in items:
                if m.properties is not None:
                    _split_user_properties(m)
            acked = [m for m in messages if m.qos]
            yield Batch(list(items), partial(client.ack, acked) if acked else None)


def _split_user_properties(m: Message) -> None:
    """MQTT 5 user properties become ``headers`` (like NATS headers); a key
    given twice keeps every value, as a list."""
    assert m.properties is not None
    pairs = m.properties.pop("user_property", None)
    if pairs:
        headers: dict[str, Any] = {}
        for key, value in pairs:
            if key in headers:
                prev = headers[key]
                headers[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                headers[key] = value
        m.headers = headers
    if "correlation_data" in m.properties:
        import base64

        m.properties["correlation_data"] = base64.b64encode(
            m.properties["correlation_data"]).decode("ascii")
    if not m.properties:
        m.properties = None
