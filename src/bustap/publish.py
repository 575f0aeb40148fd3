"""Sending to a bus: publish to MQTT or NATS, and NATS request/reply.

What ``bustap pub`` and ``bustap request`` call. The connection settings are
capture's (:class:`~bustap.sources.SourceOptions`, the same URL forms and
credentials), so a broker that can be tapped can be written to with the
same flags. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConfigError, ConnectError
from .message import Message
from .sources import SourceOptions, make_source
from .topics import validate_nats_subject

#: MQTT 5 PUBLISH properties a publisher may set (``-D NAME VALUE``), with how
#: the command-line text becomes the property's value.
PUBLISH_PROPERTIES: dict[str, type] = {
    "content_type": str,
    "response_topic": str,
    "correlation_data": bytes,
    "message_expiry_interval": int,
    "payload_format_indicator": int,
}


@dataclass
class Publication:
    """What to send: the topic or subject, and per message the same flags.

    ``headers`` are NATS headers, or MQTT 5 user properties (in order, a key
    may repeat); ``properties`` the other MQTT 5 properties; ``reply`` the
    NATS reply subject."""

    topic: str
    qos: int = 0
    retain: bool = False
    headers: list[tuple[str, str]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    reply: str | None = None


def property_value(name: str, text: str) -> tuple[str, Any]:
    """``content-type`` / ``content_type`` and its text -> (property, value);
    a ConfigError naming the property when either is wrong."""
    key = name.strip().lower().replace("-", "_")
    kind = PUBLISH_PROPERTIES.get(key)
    if kind is None:
        raise ConfigError(f"unknown MQTT 5 PUBLISH property {name!r} (known: "
                          f"{', '.join(k.replace('_', '-') for k in PUBLISH_PROPERTIES)}, "
                          "and user properties with -H KEY:VALUE)", value=name)
    if kind is bytes:
        return key, text.encode("utf-8")
    if kind is int:
        try:
            number = int(text)
        except ValueError:
            number = -1
        limit = 1 if key == "payload_format_indicator" else 2**32 - 1
        if not 0 <= number <= limit:
            raise ConfigError(f"MQTT 5 property {name}: {text!r} is not an integer "
                              f"0..{limit}", value=text)
        return key, number
    return key, text


def _is_nats(scheme: str) -> bool:
    return scheme in ("nats", "tls")


async def publish(url: str, options: SourceOptions, pub: Publication,
                  payloads: AsyncIterable[bytes] | Iterable[bytes]) -> int:
    """Connect once, send every payload, wait for the broker's acks (MQTT
    QoS 1/2; a NATS flush), disconnect. Returns how many were sent."""
    source = make_source(url, options)
    if _is_nats(source.url.scheme):
        return await _publish_nats(source, pub, payloads)
    if source.url.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"cannot publish to {source.name}: use mqtt://, mqtts://, nats:// "
                          "or tls://", value=source.name)
    return await _publish_mqtt(source, pub, payloads)


async def _each(payloads: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(payloads, AsyncIterable):
        async for p in payloads:
            yield p
    else:
        for p in payloads:
            yield p


async def _publish_mqtt(source: Any, pub: Publication,
                        payloads: AsyncIterable[bytes] | Iterable[bytes]) -> int:
    from .sources.mqtt import connect_client
    from .topics import validate_mqtt_topic

    validate_mqtt_topic(pub.topic)
    if pub.reply is not None:
        raise ConfigError("--reply is a NATS reply subject; for MQTT 5 use "
                          "-D response-topic TOPIC", value=pub.reply)
    if (pub.properties or pub.headers) and source.options.protocol_version == "auto":
        # properties are MQTT 5 only: do not fall back to 3.1.1 and lose them
        source.options = replace(source.options, protocol_version="5")
    client = await connect_client(source)
    sent = 0
    try:
        async for payload in _each(payloads):
            try:
                await client.publish(pub.topic, payload, qos=pub.qos, retain=pub.retain,
                                     properties=pub.properties or None,
                                     user_properties=pub.headers)
            except TimeoutError as exc:
                raise ConnectError(source.name, f"no acknowledgement for QoS {pub.qos} "
                                   "publish") from exc
            sent += 1
            proto = client.proto
            if proto is not None and proto.closed.done():
                raise ConnectError(source.name, proto.closed.result())
    finally:
        await client.close()
    return sent


async def _nats(source: Any) -> Any:
    from .net.nats import connect, options_kwargs

    return await connect(source.url, options_kwargs(source.url, source.options))


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    # nats-py takes one value per key: a repeated key keeps the last
    return dict(pairs) if pairs else None


async def _publish_nats(source: Any, pub: Publication,
                        payloads: AsyncIterable[bytes] | Iterable[bytes]) -> int:
    validate_nats_subject(pub.topic, wildcards=False)
    if pub.reply is not None:
        validate_nats_subject(pub.reply, wildcards=False)
    if pub.properties:
        raise ConfigError(f"MQTT 5 properties ({', '.join(pub.properties)}) do not apply to "
                          "NATS; use -H KEY:VALUE for headers", value=", ".join(pub.properties))
    if pub.qos or pub.retain:
        raise ConfigError("--qos and --retain are MQTT flags; core NATS has neither",
                          value=pub.topic)
    nc = await _nats(source)
    sent = 0
    headers = _headers(pub.headers)
    try:
        async for payload in _each(payloads):
            await nc.publish(pub.topic, payload, reply=pub.reply or "", headers=headers)
            sent += 1
        await _flush(nc, source)
    finally:
        await nc.close()
    return sent


async def _flush(nc: Any, source: Any) -> None:
    try:
        await nc.flush(timeout=source.options.connect_timeout_secs)
    except Exception as exc:
        raise ConnectError(source.name, f"server did not confirm the messages: "
                           f"{type(exc).__name__}") from exc


async def request(url: str, options: SourceOptions, subject: str, data: bytes, *,
                  timeout: float = 5.0, headers: list[tuple[str, str]] | None = None
                  ) -> Message:
    """Send one NATS request and return the first reply as a Message
    (``topic`` is the inbox it came to). ConnectError on no responders or
    timeout, naming the subject."""
    source = make_source(url, options)
    if not _is_nats(source.url.scheme):
        raise ConfigError(f"request/reply needs a NATS URL (nats://, tls://), not "
                          f"{source.name}", value=source.name)
    validate_nats_subject(subject, wildcards=False)
    if timeout <= 0:
        raise ConfigError(f"--timeout must be positive, not {timeout}", value=timeout)
    from nats import errors as nerr

    nc = await _nats(source)
    try:
        try:
            reply = await nc.request(subject, data, timeout=timeout,
                                     headers=_headers(headers or []))
        except nerr.NoRespondersError as exc:
            raise ConnectError(source.name, f"no responders on {subject!r}") from exc
        except (TimeoutError, nerr.TimeoutError) as exc:
            raise ConnectError(source.name, f"no reply on {subject!r} within "
                               f"{timeout:g}s") from exc
    finally:
        await nc.close()
    hdrs: dict[str, Any] | None = dict(reply.headers) if reply.headers else None
    return Message("nats", reply.subject, reply.data, time.time(), reply=reply.reply or None,
                   headers=hdrs)
