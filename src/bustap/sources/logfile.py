"""Broker log files: ``file:///var/log/mosquitto/mosquitto.log?format=mosquitto``.

Tails the file like ``tail -F`` and turns each line into a ``broker_event``
record (:mod:`bustap.logparse`). Rotation by rename (logrotate's default,
``create``) and by ``copytruncate`` are both followed: after a rename the
rest of the old file is read before the new one; after a truncation reading
starts again at 0.

The offset of the last line written to the sinks is kept in a small JSON
state file (``?state=PATH``; default ``$BUSTAP_STATE_DIR`` or
``~/.local/state/bustap/logfile-<hash>.json``), saved only when the pipeline
acknowledges a batch, so a restart neither loses nor repeats a line. If the
file was rotated while bustap was away, the rotated file (same directory,
same inode) is finished first. Without a state, reading starts at the end,
or at the start with ``--from-start`` / ``?from_start=true``.

``?follow=false`` reads to the end once and stops (``bustap logs``).
Parameters: ``format`` (auto|mosquitto|nats), ``follow``, ``from_start``,
``state`` (a path, or ``none``), ``poll_secs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ConfigError
from ..logparse import FORMATS, LogParser, detect_format, make_parser
from . import register_source
from .base import Batch, Lifecycle, Source

CHUNK = 1 << 20
_TRUE = ("1", "true", "yes", "on")


def state_dir() -> Path:
    env = os.environ.get("BUSTAP_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bustap"


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    low = value.lower()
    if low in _TRUE:
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected true or false, not {value!r}", value=value)


@register_source("file")
class LogFileSource(Source):
    protocol = "log"

    def __init__(self, url: Any, options: Any) -> None:
        super().__init__(url, options)
        raw_path = url.path or url.raw.split(":", 1)[1].split("?", 1)[0]
        if not raw_path:
            raise ConfigError(f"{url.redacted}: no file path", value=url.redacted)
        self.path = Path(raw_path).absolute()
        self.format = (url.param("format") or "auto").lower()
        if self.format != "auto" and self.format not in FORMATS:
            raise ConfigError(f"{url.redacted}: format must be auto, {', '.join(FORMATS)}; "
                              f"not {self.format!r}", value=self.format)
        self.follow = _flag(url.param("follow"), True)
        self.from_start = _flag(url.param("from_start"), options.from_start)
        try:
            self.poll_secs = float(url.param("poll_secs") or 0.25)
        except ValueError as exc:
            raise ConfigError(f"{url.redacted}: poll_secs must be a number",
                              value=url.param("poll_secs")) from exc
        state = url.param("state")
        if state == "none":
            self.state_path: Path | None = None
        elif state:
            self.state_path = Path(state)
        else:
            digest = hashlib.sha1(str(self.path).encode()).hexdigest()[:16]
            self.state_path = state_dir() / f"logfile-{digest}.json"
        self.bytes_read = 0  # for progress bars
        self.parser: LogParser | None = None  # the last parser used (its line counts)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_Tail]:
        if not self.follow and not self.path.exists():
            raise ConfigError(f"no such file: {self.path}", value=str(self.path))
        tail = _Tail(self)
        try:
            yield tail
        finally:
            tail.close()

    async def stream(self) -> AsyncIterator[Batch]:
        # A file does not need the reconnect supervisor: it is waited for.
        async with self.connect() as tail:
            yield Batch([Lifecycle("init", dict(tail.info))])
            async for batch in tail:
                yield batch
            yield Batch([Lifecycle("close", {"reason": "end of file"})])

    # --- state ---------------------------------------------------------------------

    def load_state(self) -> dict[str, Any] | None:
        if self.state_path is None:
            return None
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("path") == str(self.path) else None

    def save_state(self, dev: int, ino: int, offset: int) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"path": str(self.path), "dev": dev, "ino": ino,
                                   "offset": offset}))
        os.replace(tmp, self.state_path)


class _Tail:
    def __init__(self, source: LogFileSource) -> None:
        self.source = source
        self.path = source.path
        self.parser: LogParser | None = None
        if source.format != "auto":
            self.parser = make_parser(source.format)
            source.parser = self.parser
        self.info: dict[str, Any] = {"path": str(self.path), "format": source.format,
                                     "follow": source.follow}
        self.f: BinaryIO | None = None
        self.dev = self.ino = 0
        self.offset = 0  # end of the last complete line handed out
        self.buf = b""
        self.backlog: list[tuple[Path, int]] = []  # rotated files to finish first
        self._plan()

    def _plan(self) -> None:
        """Where to start: the saved offset, a rotated file's rest, or an end."""
        src = self.source
        state = src.load_state()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        self.start_offset = 0
        if state is not None:
            dev, ino, offset = int(state["dev"]), int(state["ino"]), int(state["offset"])
            if st is not None and (st.st_dev, st.st_ino) == (dev, ino):
                self.start_offset = offset if st.st_size >= offset else 0
                return
            rotated = self._find_inode(dev, ino)
            if rotated is not None:
                self.backlog.append((rotated, offset))
            return
        if st is not None and not src.from_start:
            self.start_offset = st.st_size

    def _find_inode(self, dev: int, ino: int) -> Path | None:
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                if entry.name.startswith(self.path.name) and entry.path != str(self.path):
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) == (dev, ino):
                        return Path(entry.path)
        return None

    def _open(self, path: Path, offset: int) -> bool:
        try:
            f = open(path, "rb")  # noqa: SIM115 - kept open across iterations
        except FileNotFoundError:
            return False
        st = os.fstat(f.fileno())
        if st.st_size < offset:
            offset = 0
        f.seek(offset)
        self.close()
        self.f, self.dev, self.ino, self.offset, self.buf = f, st.st_dev, st.st_ino, offset, b""
        return True

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None

    def _records(self, lines: list[bytes], final: bool = False) -> list[Any]:
        text = [ln.decode("utf-8", "replace").removesuffix("\r") for ln in lines]
        if self.parser is None:
            fmt = detect_format(text) or "mosquitto"
            self.parser = make_parser(fmt)
            self.info["format"] = fmt
        self.source.parser = self.parser
        records: list[Any] = self.parser.feed_many(text)
        if final:
            records += self.parser.flush()
        return records

    def _batch(self, records: list[Any]) -> Batch:
        dev, ino, offset = self.dev, self.ino, self.offset
        save = self.source.save_state
        return Batch(records, ack=lambda: save(dev, ino, offset))

    def _take(self, data: bytes) -> list[bytes]:
        buf = self.buf + data if self.buf else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self.buf = buf
            return []
        self.buf = buf[cut + 1:]
        self.offset += cut + 1
        return buf[:cut].split(b"\n")

    async def __aiter__(self) -> AsyncIterator[Batch]:
        src = self.source
        for path, offset in self.backlog:
            if self._open(path, offset):
                async for batch in self._drain(final=True):
                    yield batch
        self.backlog.clear()
        first = True
        while not self._open(self.path, self.start_offset if first else 0):
            if not src.follow:
                return
            await asyncio.sleep(src.poll_secs)
        first = False
        while True:
            async for batch in self._drain(final=not src.follow):
                yield batch
            if not src.follow:
                return
            rotated = await self._wait_change()
            if rotated == "renamed":
                # Whatever the writer put in the old file before reopening.
                async for batch in self._drain(final=True):
                    yield batch
                while not self._open(self.path, 0):
                    await asyncio.sleep(src.poll_secs)
            elif rotated == "truncated":
                if self.buf:
                    yield self._batch(self._records([self.buf]))
                assert self.f is not None
                self.f.seek(0)
                self.offset, self.buf = 0, b""

    async def _drain(self, *, final: bool) -> AsyncIterator[Batch]:
        """Read to the end of the open file, a batch per chunk."""
        assert self.f is not None
        while True:
            data = self.f.read(CHUNK)
            if not data:
                break
            self.source.bytes_read += len(data)
            lines = self._take(data)
            if lines:
                yield self._batch(self._records(lines))
                await asyncio.sleep(0)
        if final:
            tail = [self.buf] if self.buf else []
            self.offset += len(self.buf)
            self.buf = b""
            records = self._records(tail, final=True)
            if records or tail:
                yield self._batch(records)

    async def _wait_change(self) -> str:
        """Sleep until the file grew ("grew"), was replaced ("renamed") or
        shrank ("truncated")."""
        assert self.f is not None
        while True:
            await asyncio.sleep(self.source.poll_secs)
            own = os.fstat(self.f.fileno())
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                # Renamed away and not yet recreated: the writer may still
                # be appending to the file we hold.
                if own.st_size > self.f.tell():
                    return "grew"
                continue
            if (st.st_dev, st.st_ino) != (self.dev, self.ino):
                return "renamed"
            if st.st_size < self.offset + len(self.buf):
                return "truncated"
            if own.st_size > self.f.tell():
                return "grew"
