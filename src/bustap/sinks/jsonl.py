"""JSON lines to stdout (``-``) or to a file (``FILE.jsonl``): the msglog of pmacct.

Each batch is handed to the OS in one write, so a record that was
acknowledged to the broker survives a kill -9 of bustap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import SinkError
from ..urls import Url
from . import register_sink
from .base import RecordBatch, Sink


@register_sink("file")
class JsonlFileSink(Sink):
    """``path.jsonl``: appends records, one JSON object per line."""

    fd: int | None = None

    @property
    def path(self) -> Path:
        return Path(self.url.path or self.url.raw.removeprefix("file:"))

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise SinkError(str(self.path), exc.strerror or str(exc)) from exc

    async def write(self, batch: RecordBatch) -> None:
        assert self.fd is not None
        data = memoryview(batch.lines)
        while data:
            try:
                n = os.write(self.fd, data)
            except OSError as exc:
                raise SinkError(str(self.path), exc.strerror or str(exc)) from exc
            data = data[n:]

    async def aclose(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@register_sink("stdout")
class StdoutSink(Sink):
    """``-``: records to standard output. ``formatter`` (set by the CLI for
    ``--pretty`` and ``--raw``) turns a batch into bytes; default JSON lines."""

    def __init__(self, url: Url) -> None:
        super().__init__(url)
        self.formatter: Callable[[RecordBatch], bytes] | None = None
        self.out = sys.stdout.buffer

    async def write(self, batch: RecordBatch) -> None:
        data = batch.lines if self.formatter is None else self.formatter(batch)
        try:
            self.out.write(data)
            self.out.flush()
        except BrokenPipeError as exc:  # `bustap capture ... | head` is normal use
            raise SinkError("stdout", "broken pipe") from exc
