"""Timing-true replay: the ``kind: message`` records of a capture file (or of a
store, chosen by bustap query's filters) published again, with their
original spacing divided by ``speed``.

A message record holds what is needed to publish it again: ``topic``,
``qos``, ``retain``, ``headers`` (NATS headers / MQTT 5 user properties),
``properties`` (MQTT 5: content type, payload format, expiry, response
topic, correlation data) and the payload, which is restored from the
record: base64 for ``binary``, UTF-8 for ``text``, ``payload_raw`` for JSON
that its publisher did not write as bustap would (capture keeps those
bytes), the JSON value encoded compactly otherwise. A record whose payload
comes back with another ``size`` (a capture file from before
``payload_raw``, a payload a decoder redacted) is counted as ``inexact``,
never hidden.

The pace follows the records' ``timestamp`` (the time bustap received each
message): message *i* is published ``(t_i - t_0) / speed`` seconds after
the first; ``speed=None`` publishes as fast as the broker takes them. QoS 1/2
publishes are not awaited one by one (that would stretch the gaps by a round
trip each): up to the broker's Receive Maximum are in flight, in order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import orjson

from .errors import ConfigError, ConnectError
from .net.mqtt import MqttClient
from .publish import PUBLISH_PROPERTIES  # the ones a client may set
from .record import Record, parse_timestamp
from .sources.base import SourceOptions
from .sources.mqtt import MqttSource, connect_client
from .store.query import Filters
from .topics import is_nats_subject_valid, validate_mqtt_topic
from .urls import Url, parse_url

MAX_IN_FLIGHT = 1_000


@dataclass
class ReplayStats:
    published: int = 0
    bytes: int = 0
    inexact: int = 0  # payload restored with another size than received
    skipped: Counter[str] = field(default_factory=Counter)
    max_late_secs: float = 0.0  # the most a publish came after its due time
    started: float = field(default_factory=time.monotonic)
    first_time: float | None = None
    last_time: float | None = None

    @property
    def elapsed_secs(self) -> float:
        return time.monotonic() - self.started


@dataclass(slots=True)
class Outgoing:
    topic: str
    payload: bytes
    at: float  # receive time, epoch seconds
    qos: int
    retain: bool
    headers: dict[str, Any] | None
    properties: dict[str, Any] | None
    exact: bool


def open_records(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise ConfigError(f"no such file: {path}", value=str(path))
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile is IO[bytes]
    return path.open("rb")


def outgoing(lines: Iterator[bytes], stats: ReplayStats) -> Iterator[Outgoing]:
    """The message records of a JSON lines stream, ready to publish."""

    def records() -> Iterator[Any]:
        for line in lines:
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                stats.skipped["bad_line"] += 1

    return outgoing_records(records(), stats)


def outgoing_records(records: Iterable[Any], stats: ReplayStats) -> Iterator[Outgoing]:
    """The message records among ``records`` (a file's, a store's), ready to publish."""
    for rec in records:
        if not isinstance(rec, dict) or rec.get("kind") != "message":
            continue
        try:
            yield _outgoing(rec)
        except (ValueError, TypeError, KeyError):
            stats.skipped["bad_record"] += 1


def file_messages(path: Path, stats: ReplayStats) -> Generator[Outgoing, None, None]:
    """The messages of a capture file (.jsonl or .jsonl.gz)."""
    with open_records(path) as f:
        yield from outgoing(iter(f), stats)


def store_messages(target: str, filters: Filters, stats: ReplayStats
                   ) -> Generator[Outgoing, None, None]:
    """The messages of a store that match ``filters`` (bustap query's), in time order."""
    from .store.backend import open_store
    from .store.search import iterate

    with open_store(target) as store:
        for chunk in iterate(store, replace(filters, kinds=["message"])):
            yield from outgoing_records(chunk, stats)


def _outgoing(rec: Record) -> Outgoing:
    topic = rec["topic"]
    if not isinstance(topic, str):
        raise TypeError("topic")
    fmt, value, raw = rec.get("format"), rec.get("payload"), rec.get("payload_raw")
    if isinstance(raw, str):
        payload = raw.encode("utf-8")
    elif fmt == "binary" and isinstance(value, str):
        payload = base64.b64decode(value)
    elif fmt == "text" and isinstance(value, str):
        payload = value.encode("utf-8")
    elif value is None and not rec.get("size"):
        payload = b""
    else:
        payload = orjson.dumps(value)
    size = rec.get("size")
    props = rec.get("properties") if rec.get("protocol") == "mqtt" else None
    return Outgoing(topic, payload, parse_timestamp(rec["timestamp"]).timestamp(),
                    int(rec.get("qos") or 0), bool(rec.get("retain")),
                    rec.get("headers") or None, props or None,
                    size is None or size == len(payload))


class Publisher:
    """One connection to the target broker."""

    async def publish(self, msg: Outgoing) -> bool:
        """Send one message; False when it cannot be (counted in ``skipped``)."""
        raise NotImplementedError

    async def drain(self) -> None:
        """Wait until the broker has everything published so far."""

    async def close(self) -> None:
        raise NotImplementedError


class MqttPublisher(Publisher):
    def __init__(self, url: Url, options: SourceOptions, qos: int | None,
                 stats: ReplayStats) -> None:
        # the MQTT source's connection settings (URL forms, credentials, TLS)
        self.endpoint = MqttSource(url, options)
        self.qos = qos
        self.stats = stats
        self.client: MqttClient | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._error: BaseException | None = None

    async def connect(self) -> None:
        self.client = await connect_client(self.endpoint)
        self._limit = asyncio.Semaphore(min(int(self.client.info.get("receive_maximum",
                                                                     65_535)), MAX_IN_FLIGHT))

    async def publish(self, msg: Outgoing) -> bool:
        client = self.client
        assert client is not None
        if self._error is not None:
            raise self._error
        try:
            validate_mqtt_topic(msg.topic)
        except ConfigError:
            self.stats.skipped["invalid_topic"] += 1
            return False
        qos = msg.qos if self.qos is None else self.qos
        props, user = _mqtt_properties(msg) if client.opts.version == 5 else (None, [])
        if not qos:
            await client.publish(msg.topic, msg.payload, retain=msg.retain, properties=props,
                                 user_properties=user)
            return True
        await self._limit.acquire()
        # a task per QoS 1/2 message, started in order: the packet goes out at its
        # time, the acknowledgement is awaited beside the next ones
        task = asyncio.get_running_loop().create_task(client.publish(
            msg.topic, msg.payload, qos=qos, retain=msg.retain, properties=props,
            user_properties=user))
        self._inflight.add(task)
        task.add_done_callback(self._done)
        return True

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._limit.release()
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    async def drain(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._error is not None:
            raise self._error

    async def close(self) -> None:
        for task in self._inflight:
            task.cancel()
        if self.client is not None:
            await self.client.close()


def _mqtt_properties(msg: Outgoing) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    props = None
    if msg.properties:
        props = {k: msg.properties[k] for k in PUBLISH_PROPERTIES if k in msg.properties}
        if isinstance(props.get("correlation_data"), str):  # base64 in the record
            props["correlation_data"] = base64.b64decode(props["correlation_data"])
    user: list[tuple[str, str]] = []
    for key, value in (msg.headers or {}).items():
        for v in value if isinstance(value, list) else [value]:
            user.append((str(key), v if isinstance(v, str) else orjson.dumps(v).decode()))
    return props or None, user


class NatsPublisher(Publisher):
    def __init__(self, url: Url, options: SourceOptions, stats: ReplayStats) -> None:
        self.url = url
        self.options = options
        self.stats = stats
        self.nc: Any = None

    async def connect(self) -> None:
        from .net.nats import connect, options_kwargs

        self.nc = await connect(self.url, options_kwargs(self.url, self.options,
                                                         name="bustap replay"))

    async def publish(self, msg: Outgoing) -> bool:
        if not is_nats_subject_valid(msg.topic, wildcards=False):
            self.stats.skipped["invalid_subject"] += 1
            return False
        headers = None
        if msg.headers:
            headers = {str(k): ",".join(map(str, v)) if isinstance(v, list) else str(v)
                       for k, v in msg.headers.items()}
        try:
            await self.nc.publish(msg.topic, msg.payload, headers=headers)
        except Exception as exc:
            raise ConnectError(self.url.redacted, f"publish failed: {exc}") from None
        return True

    async def drain(self) -> None:
        try:
            await self.nc.flush(timeout=10)
        except Exception as exc:
            raise ConnectError(self.url.redacted, f"flush failed: {exc}") from None

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.close()


async def connect_publisher(target: str, options: SourceOptions, *, qos: int | None,
                            stats: ReplayStats) -> Publisher:
    url = parse_url(target)
    if url.scheme in ("mqtt", "mqtts"):
        mqtt = MqttPublisher(url, options, qos, stats)
        await mqtt.connect()
        return mqtt
    if url.scheme in ("nats", "tls"):
        nats = NatsPublisher(url, options, stats)
        await nats.connect()
        return nats
    raise ConfigError(f"--to {url.redacted}: replay publishes to mqtt://, mqtts://, nats:// "
                      "or tls://", value=url.redacted)


async def replay(messages: Callable[[], Generator[Outgoing, None, None]], publisher: Publisher, *,
                 speed: float | None, stats: ReplayStats, loop: bool = False,
                 progress: Callable[[int], None] | None = None) -> None:
    """Publish the messages at their pace (``speed`` None: as fast as possible);
    ``messages()`` is called again for each pass of a loop."""
    clock = asyncio.get_running_loop().time
    while True:
        start = clock()
        t0: float | None = None
        with contextlib.closing(messages()) as stream:
            for msg in stream:
                if t0 is None:
                    # the clock starts with the first message, not before the
                    # store's query or the file's first lines were read
                    start = clock()
                    t0 = msg.at
                    stats.first_time = stats.first_time or msg.at
                if speed is not None:
                    due = start + max(0.0, msg.at - t0) / speed
                    delay = due - clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        stats.max_late_secs = max(stats.max_late_secs, -delay)
                if not await publisher.publish(msg):
                    continue
                stats.published += 1
                stats.bytes += len(msg.payload)
                stats.inexact += not msg.exact
                stats.last_time = msg.at
                if progress is not None:
                    progress(len(msg.payload))
        await publisher.drain()
        if not loop or t0 is None:
            return
