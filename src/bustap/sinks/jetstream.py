"""``jetstream://host[:4222]/STREAM?subject=TEMPLATE[&create=true]``: records into a
JetStream stream, each acknowledged by the server.

Every record is published with a ``Nats-Msg-Id`` of ``writer_id:seq``: a
record sent again (a batch replayed from the spool after a failure, the same
capture file replayed) is dropped by the server's de-duplication inside the
stream's duplicate window (two minutes by default) and counted here as
``duplicates``. ``write()`` returns only once the server has acknowledged
every record of the batch (the pipeline acknowledges the source after it).
``create=true`` creates the stream when it does not exist, for the subjects
of the template (``bustap.{kind}.{device}`` -> ``bustap.*.*``), with
``replicas`` (default 1) and ``storage`` (file or memory); an existing stream
is used as it is. Without ``create`` a missing stream is an error at start.
A replicated stream is written once it has a leader. On a cluster, list its
servers (``jetstream://n1:4222,n2:4222,n3:4222/STREAM``): when the server
this sink is on goes away it goes on from the next; when the stream's leader
goes away, the batch in flight waits out ``timeout_secs`` (10) for acks that
cannot come and is sent again from the spool once a new leader is elected
(the de-duplication drops what had been stored after all).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import ConfigError, SinkError
from ..urls import Url
from . import register_sink
from ._bus import choice_param, flag_param, message_id, messages
from .base import RecordBatch
from .nats import NatsSink, _reason


@register_sink("jetstream")
class JetStreamSink(NatsSink):
    PARAMS = NatsSink.PARAMS | {"create", "replicas", "storage"}

    def __init__(self, url: Url) -> None:
        super().__init__(url)
        self.stream = url.path.strip("/")
        if not self.stream or any(c in self.stream for c in " .*>/\t"):
            raise ConfigError(f"sink {url.redacted}: needs a stream name: "
                              "jetstream://HOST:4222/STREAM?subject=...", value=self.stream)
        self.create = flag_param(url, "create")
        raw = url.param("replicas") or "1"
        if not raw.isdigit() or not 1 <= int(raw) <= 5:
            raise ConfigError(f"sink {url.redacted}: replicas must be 1..5, not {raw!r}",
                              value=raw)
        self.replicas = int(raw)
        self.storage = choice_param(url, "storage", ("file", "memory"), "file")
        self.duplicates = 0
        self._js: Any = None

    async def _connect(self) -> None:
        await super()._connect()
        from nats.js import api
        from nats.js.errors import NotFoundError

        js = self._nc.jetstream(timeout=self.timeout)
        try:
            try:
                info = await js.stream_info(self.stream)
            except NotFoundError:
                if not self.create:
                    raise SinkError(self.name, f"no stream {self.stream!r} (add create=true to "
                                    "create it)") from None
                info = await js.add_stream(api.StreamConfig(
                    name=self.stream, subjects=[self.subject.pattern()],
                    num_replicas=self.replicas, storage=api.StorageType(self.storage)))
            await self._led(js, info)
        except SinkError:
            await self._drop()
            raise
        except Exception as exc:
            await self._drop()
            raise SinkError(self.name, _reason(exc, self.url)) from None
        self._js = js

    async def _led(self, js: Any, info: Any) -> None:
        """Until the stream has a leader. A replicated stream has none for a
        moment after it is created (another collector may just have) and while
        one is elected after its leader went away: what is published to it
        then gets no ack, and each batch would wait out the timeout."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        while info.cluster is not None and not info.cluster.leader:
            if asyncio.get_running_loop().time() > deadline:
                raise SinkError(self.name, f"stream {self.stream!r} has no leader")
            await asyncio.sleep(0.1)
            info = await js.stream_info(self.stream)

    async def write(self, batch: RecordBatch) -> None:
        await self._ensure()
        js = self._js
        subject = self.subject
        static = subject.render({}) if subject.static else None
        futures: list[asyncio.Future[Any]] = []
        try:
            for record, body in messages(batch):
                futures.append(await js.publish_async(
                    static or subject.render(record), body, stream=self.stream,
                    headers={"Nats-Msg-Id": message_id(record)}))
            acks = await self._confirmed(asyncio.gather(*futures))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            for fut in futures:
                fut.cancel()
            await self._drop()
            raise SinkError(self.name, _reason(exc, self.url)) from None
        dup = sum(1 for a in acks if getattr(a, "duplicate", False))
        self.duplicates += dup
        self.published += len(acks) - dup
