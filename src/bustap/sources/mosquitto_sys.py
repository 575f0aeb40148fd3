"""Mosquitto broker health: ``mosquitto-sys://host:1883`` subscribes to ``$SYS/#``.

Mosquitto publishes its counters under ``$SYS/broker/...`` every
``sys_interval`` seconds, all at once. When a burst has arrived (no ``$SYS``
message for ``?quiet_secs=``, default 0.3 s) one ``kind: stats`` record is
emitted with every value as a flat field (``$SYS/broker/clients/connected``
-> ``clients_connected``; ``uptime`` -> ``uptime_secs``), plus message and
byte rates computed from the totals. The first time the version is seen a
``broker_event`` ``broker_info`` carries it. The broker's own log lines
published on ``$SYS/broker/log/#`` (everything but debug) are parsed into
``broker_event`` records like a log file. Credentials and TLS come from the
URL and the usual flags, as for ``mqtt://``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ConfigError, ConnectError
from ..logparse.mosquitto import MosquittoParser
from ..net.mqtt import MqttClient
from . import register_source
from .base import Batch, Source
from .mqtt import connect_client

_RATES = (("messages_received", "messages_received_per_sec"),
          ("messages_sent", "messages_sent_per_sec"),
          ("bytes_received", "bytes_received_per_sec"),
          ("bytes_sent", "bytes_sent_per_sec"))


def sys_field(topic: str) -> str:
    name = topic.removeprefix("$SYS/broker/")
    return name.replace("/", "_").replace(" ", "_").replace("-", "_").lower()


def sys_value(field: str, raw: str) -> tuple[str, Any]:
    text = raw.strip()
    if text.endswith(" seconds"):
        text = text[:-8]
        field += "_secs"
    try:
        return field, int(text)
    except ValueError:
        pass
    try:
        return field, float(text)
    except ValueError:
        return field, raw


@register_source("mosquitto-sys")
class MosquittoSysSource(Source):
    protocol = "mqtt"

    def __init__(self, url: Any, options: Any) -> None:
        super().__init__(url, options)
        try:
            self.quiet_secs = float(url.param("quiet_secs") or 0.3)
        except ValueError as exc:
            raise ConfigError(f"{url.redacted}: quiet_secs must be a number",
                              value=url.param("quiet_secs")) from exc

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_SysConnection]:
        client = await connect_client(self)
        try:
            codes = await client.subscribe([("$SYS/#", 0)])
            if codes and codes[0] >= 0x80:
                raise ConnectError(self.name, "subscription to $SYS/# refused", fatal=True)
            yield _SysConnection(self, client)
        finally:
            await client.close()


class _SysConnection:
    def __init__(self, source: MosquittoSysSource, client: MqttClient) -> None:
        self.source = source
        self.client = client
        self.info: dict[str, Any] = dict(client.info, filters=["$SYS/#"])
        self.values: dict[str, Any] = {}
        self.parser = MosquittoParser()
        self.version: str | None = None
        self.last: tuple[float, dict[str, Any]] | None = None

    async def __aiter__(self) -> AsyncIterator[Batch]:
        client = self.client
        dirty = False
        while True:
            try:
                msgs = await asyncio.wait_for(client.__anext__(), self.source.quiet_secs)
            except TimeoutError:
                if dirty:
                    dirty = False
                    yield Batch([self.snapshot()])
                continue
            records: list[Any] = []
            for m in msgs:
                topic = m.topic
                text = m.payload.decode("utf-8", "replace")
                if topic.startswith("$SYS/broker/log/"):
                    for line in text.splitlines() or [""]:
                        for rec in self.parser.feed(line):
                            rec["sys_topic"] = topic
                            records.append(rec)
                    continue
                field, value = sys_value(sys_field(topic), text)
                self.values[field] = value
                dirty = True
                if field == "version" and value != self.version:
                    self.version = str(value)
                    version = self.version.removeprefix("mosquitto version ")
                    records.append({"kind": "broker_event", "broker": "mosquitto",
                                    "event": "broker_info", "version": version})
            if records:
                yield Batch(records)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        rec: dict[str, Any] = {"kind": "stats", "broker": "mosquitto", "event": "broker_stats"}
        rec.update(self.values)
        if isinstance(rec.get("version"), str):
            rec["version"] = rec["version"].removeprefix("mosquitto version ")
        if self.last is not None:
            then, old = self.last
            elapsed = now - then
            for total, rate in _RATES:
                a, b = old.get(total), self.values.get(total)
                if isinstance(a, int) and isinstance(b, int) and elapsed > 0 and b >= a:
                    rec[rate] = round((b - a) / elapsed, 3)
        self.last = (now, dict(self.values))
        return rec
