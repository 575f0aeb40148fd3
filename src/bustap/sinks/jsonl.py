"""JSON lines to stdout (``-``) or to a file (``FILE.jsonl``): the msglog of pmacct.

Each batch is handed to the OS in one write, so a record that was
acknowledged to the broker survives a kill -9 of bustap.

Rotation (``FILE.jsonl?max_bytes=100000000&every=1h&gzip=1&keep=24``): when
the file would pass ``max_bytes`` or is older than ``every``, it is renamed
to ``FILE.<UTC time>.jsonl`` (then gzipped in a worker thread when asked)
and a new file is started; ``keep`` bounds how many rotated files are left.
A file never splits a batch, so every line in every file is a whole record.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConfigError, SinkError
from ..urls import Url
from . import register_sink
from .base import RecordBatch, Sink

log = logging.getLogger("bustap.sinks")


@register_sink("file")
class JsonlFileSink(Sink):
    """``path.jsonl``: appends records, one JSON object per line."""

    fd: int | None = None
    PARAMS = frozenset({"max_bytes", "every", "gzip", "keep"})

    def __init__(self, url: Url) -> None:
        super().__init__(url)
        unknown = set(url.query) - self.PARAMS
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(f"sink {url.redacted}: unknown parameter {name!r} (known: "
                              f"{', '.join(sorted(self.PARAMS))})", value=name)
        self.max_bytes: int | None = None
        raw = url.param("max_bytes")
        if raw is not None:
            self.max_bytes = _size(raw)
        self.every_secs: float | None = None
        raw = url.param("every")
        if raw is not None:
            from ..store.timeparse import parse_duration

            self.every_secs = parse_duration(raw, what="every").total_seconds()
        self.gzip = (url.param("gzip") or "0").lower() in ("1", "true", "yes", "on")
        raw = url.param("keep")
        self.keep: int | None = None
        if raw is not None:
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigError(f"sink {url.redacted}: keep must be a positive integer, "
                                  f"not {raw!r}", value=raw)
            self.keep = int(raw)
        self._size = 0
        self._opened_at = 0.0
        self._compressing: set[asyncio.Task[None]] = set()

    @property
    def path(self) -> Path:
        return Path(self.url.path or self.url.raw.removeprefix("file:").partition("?")[0])

    @property
    def rotates(self) -> bool:
        return self.max_bytes is not None or self.every_secs is not None

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open_file()
        except OSError as exc:
            raise SinkError(str(self.path), exc.strerror or str(exc)) from exc

    def reopen(self) -> None:
        """A new file at the path (logrotate moved the old one): the new one is
        opened before the old one is closed, so a failure keeps writing there."""
        if self.fd is None:
            return
        old = self.fd
        try:
            self._open_file()
        except OSError as exc:
            log.error("%s: cannot reopen: %s; still writing the old file", self.path,
                      exc.strerror or exc)
            return
        os.close(old)
        log.info("%s: reopened", self.path)

    def _open_file(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        st = os.fstat(self.fd)
        self._size = st.st_size
        self._opened_at = time.time()

    async def write(self, batch: RecordBatch) -> None:
        assert self.fd is not None
        data = memoryview(batch.lines)
        if self.rotates and self._size and self._due(len(data)):
            await self.rotate()
        self._size += len(data)
        while data:
            try:
                n = os.write(self.fd, data)
            except OSError as exc:
                raise SinkError(str(self.path), exc.strerror or str(exc)) from exc
            data = data[n:]

    def _due(self, incoming: int) -> bool:
        if self.max_bytes is not None and self._size + incoming > self.max_bytes:
            return True
        return self.every_secs is not None and time.time() - self._opened_at >= self.every_secs

    async def rotate(self) -> Path | None:
        """Close the current file under a dated name and start a new one."""
        if self.fd is None or not self._size:
            return None
        os.close(self.fd)
        self.fd = None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        suffix = "".join(self.path.suffixes) or ".jsonl"
        stem = self.path.name[: -len(suffix)] if self.path.name.endswith(suffix) \
            else self.path.name
        target = self.path.with_name(f"{stem}.{stamp}{suffix}")
        try:
            os.replace(self.path, target)
            self._open_file()
        except OSError as exc:
            raise SinkError(str(self.path), exc.strerror or str(exc)) from exc
        # compressing a big file takes a while: not on the event loop
        task = asyncio.create_task(asyncio.to_thread(self._finish, target))
        self._compressing.add(task)
        task.add_done_callback(self._compressing.discard)
        return target

    def _finish(self, rotated: Path) -> None:
        # one at a time: a prune that saw a file both plain and half-gzipped
        # would count it twice and delete one file too many
        with _FINISH_LOCK:
            if self.gzip:
                _gzip_file(rotated)
            self._prune()

    def _prune(self) -> None:
        if self.keep is None:
            return
        suffix = "".join(self.path.suffixes) or ".jsonl"
        stem = self.path.name[: -len(suffix)] if self.path.name.endswith(suffix) \
            else self.path.name
        rotated = sorted(p for p in self.path.parent.glob(f"{stem}.*{suffix}*")
                         if p != self.path and not p.name.endswith(".tmp"))
        for old in rotated[: max(0, len(rotated) - self.keep)]:
            with contextlib.suppress(OSError):
                old.unlink()

    async def aclose(self) -> None:
        if self._compressing:
            await asyncio.gather(*self._compressing, return_exceptions=True)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_FINISH_LOCK = threading.Lock()


def _gzip_file(path: Path) -> None:
    tmp = path.with_name(path.name + ".gz.tmp")
    with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, path.with_name(path.name + ".gz"))
    path.unlink()


def _size(raw: str) -> int:
    units = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
             "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
    text = raw.strip().lower()
    num = text.rstrip("kmgib")
    unit = text[len(num):]
    try:
        value = int(float(num) * units[unit])
    except (ValueError, KeyError):
        value = 0
    if value < 1:
        raise ConfigError(f"invalid max_bytes {raw!r}: a size like 1000000, 100MB or 1GiB",
                          value=raw)
    return value


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
