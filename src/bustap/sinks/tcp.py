"""``tcp://host:port``: JSON lines over TCP, for Logstash's ``json_lines``
codec (the Flex4Apps / ELK pipeline of seed 003), Vector or Fluent Bit.

A write that fails (peer gone, connection reset) raises SinkError; the
pipeline then spools to disk and replays in order when the peer is back.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import ConfigError, SinkError
from . import register_sink
from .base import RecordBatch, Sink

CONNECT_TIMEOUT_SECS = 5.0
# A peer that stops reading: give up on a flush after this long.
WRITE_TIMEOUT_SECS = 30.0


@register_sink("tcp")
class TcpSink(Sink):
    _writer: asyncio.StreamWriter | None = None
    _reader: asyncio.StreamReader | None = None

    async def open(self) -> None:
        if not self.url.host or not self.url.port:
            raise ConfigError(f"sink {self.name}: needs tcp://HOST:PORT", value=self.name)
        await self._connect()

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.url.host, self.url.port), CONNECT_TIMEOUT_SECS)
        except (OSError, TimeoutError) as exc:
            raise SinkError(self.name, getattr(exc, "strerror", None) or str(exc)
                            or "connection timed out") from exc

    async def write(self, batch: RecordBatch) -> None:
        # A peer that closed its end (Logstash restarting) is noticed before
        # writing: asyncio would otherwise drop the data of a closed transport.
        if self._reader is not None and self._reader.at_eof():
            self._drop()
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        assert self._writer is not None
        try:
            self._writer.write(batch.lines)
            await asyncio.wait_for(self._writer.drain(), WRITE_TIMEOUT_SECS)
        except (OSError, TimeoutError) as exc:
            self._drop()
            raise SinkError(self.name, getattr(exc, "strerror", None) or str(exc)
                            or "write timed out") from exc

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def aclose(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(self._writer.drain(), 5)
            self._drop()
