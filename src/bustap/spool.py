"""Spool to disk when a sink is down, replay in order when it is back.

Every sink but stdout writes through a :class:`Spool`. While the sink works
the spool is a pass-through. When a write fails, the batch is appended to a
JSON lines file on local disk (``$BUSTAP_SPOOL_DIR`` or
``~/.local/state/bustap/spool``) and a background task retries the sink with
backoff, replaying the file from its head; batches that arrive meanwhile are
appended behind it, so the sink sees records in their original order. A
spooled batch counts as stored (it is on disk), so brokers are acknowledged
and capture goes on. A store that wrote the head of a replayed batch before
it failed again is not sent that head twice. What is left at exit (after
the replay under way, if any, is done) is replayed at the next start. A
spool over ``max_bytes`` drops new batches and counts them
(``dropped["spool_full"]``): bounded disk, nothing lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections import Counter
from pathlib import Path

import orjson

from .backoff import backoff
from .errors import ConfigError, SinkError
from .record import loads
from .sinks import RecordBatch, Sink
from .telemetry import ComponentCounters

log = logging.getLogger("bustap.spool")

DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_RETRY_MAX_SECS = 30.0
REPLAY_BATCH = 2_000


def spool_dir() -> Path:
    env = os.environ.get("BUSTAP_SPOOL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bustap" / "spool"


def retry_max_secs() -> float:
    """``$BUSTAP_SPOOL_RETRY_MAX_SECS``: the longest wait between two tries of a
    sink that is down (default 30; lower it to catch up sooner after an outage)."""
    raw = os.environ.get("BUSTAP_SPOOL_RETRY_MAX_SECS")
    if raw is None:
        return DEFAULT_RETRY_MAX_SECS
    try:
        secs = float(raw)
    except ValueError:
        secs = 0.0
    if not 0.5 <= secs <= 3600:
        raise ConfigError(f"BUSTAP_SPOOL_RETRY_MAX_SECS must be 0.5..3600 seconds, not {raw!r}",
                          value=raw)
    return secs


class Spool:
    def __init__(self, sink: Sink, *, directory: Path | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, dropped: Counter[str] | None = None,
                 stats: ComponentCounters | None = None,
                 backoff_initial_secs: float = 0.5,
                 backoff_max_secs: float | None = None) -> None:
        self.sink = sink
        key = hashlib.sha256(sink.name.encode()).hexdigest()[:16]
        self.dir = directory or spool_dir()
        self.path = self.dir / f"{key}.jsonl"
        self.offset_path = self.dir / f"{key}.offset"
        self.max_bytes = max_bytes
        self.dropped = dropped if dropped is not None else Counter()
        #: this sink's self-metrics (received, sent, spooled, dropped, errors)
        self.stats = stats if stats is not None else ComponentCounters()
        self.replayed = 0
        self._initial = backoff_initial_secs
        self._max = retry_max_secs() if backoff_max_secs is None else backoff_max_secs
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._draining = False  # the replay task is sending the spool (not waiting)
        # In memory, so that the pass-through path costs no system call.
        self._backlog = False

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def spooled(self) -> int:
        return self.stats.spooled

    @property
    def backlog_bytes(self) -> int:
        try:
            return self.path.stat().st_size - self._offset()
        except OSError:
            return 0

    async def open(self) -> None:
        await self.sink.open()
        self._backlog = self.backlog_bytes > 0
        if self._backlog:
            log.warning("%s: replaying %d bytes spooled by an earlier run", self.name,
                        self.backlog_bytes)
            self._kick()

    async def write(self, batch: RecordBatch, *, durable: bool = True) -> None:
        self.stats.received += len(batch)
        if self._task is not None or self._backlog:
            self._append(batch)
            self._kick()
            return
        accepted = False
        try:
            await self.sink.write(batch)
            accepted = True
            self.stats.sent += len(batch)
            if durable:
                await self.sink.flush()
        except SinkError as exc:
            self.stats.errors += 1
            log.warning("%s: %s; spooling to %s until it is back", self.name, exc.reason,
                        self.path)
            # A buffering sink reports an earlier chunk that failed with the
            # records it could not write: they go to the spool first.
            lost = getattr(exc, "records", None)
            if lost:
                self.stats.sent -= len(lost)  # accepted into its buffer, never written
                self._append(RecordBatch(list(lost)))
            if not accepted:
                self._append(batch)
            self._kick()

    async def flush(self) -> None:
        if self._task is None:
            await self.sink.flush()

    def _append(self, batch: RecordBatch) -> None:
        data = batch.lines
        size = self.path.stat().st_size if self.path.exists() else 0
        if size + len(data) > self.max_bytes:
            self.dropped["spool_full"] += len(batch)
            self.stats.dropped["spool_full"] += len(batch)
            log.error("%s: spool full (%d bytes): %d records dropped", self.name, size,
                      len(batch))
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            self.dropped["spool_error"] += len(batch)
            self.stats.dropped["spool_error"] += len(batch)
            log.error("%s: cannot spool to %s (%s): %d records dropped", self.name, self.path,
                      exc.strerror or exc, len(batch))
            return
        self._backlog = True
        self.stats.spooled += len(batch)
        self.stats.queue_depth += len(batch)

    def _kick(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.create_task(self._replay(), name=f"spool {self.name}")

    def _offset(self) -> int:
        try:
            return int(self.offset_path.read_text() or 0)
        except (OSError, ValueError):
            return 0

    async def _replay(self) -> None:
        attempt = 0
        try:
            while not self._closing:
                await asyncio.sleep(backoff(attempt, self._initial, self._max))
                self._draining = True
                try:
                    await self._drain()
                    return
                except SinkError as exc:
                    attempt += 1
                    self.stats.errors += 1
                    log.info("%s: still down (%s)", self.name, exc.reason)
                finally:
                    self._draining = False
        finally:
            self._task = None

    async def _drain(self) -> None:
        """Send the spool from the saved offset; when it is all sent, empty it."""
        offset = self._offset()
        while True:
            with self.path.open("rb") as f:
                f.seek(offset)
                lines = [line for _, line in zip(range(REPLAY_BATCH), f, strict=False)]
            if not lines:
                break
            records = []
            ends = []  # the offset after each record's line
            end = offset
            for line in lines:
                end += len(line)
                with contextlib.suppress(orjson.JSONDecodeError, ValueError):
                    records.append(loads(line))
                    ends.append(end)
            try:
                await self.sink.write(RecordBatch(records))
                await self.sink.flush()
            except SinkError as exc:
                # A buffering sink that wrote the head of the batch names the
                # tail it could not: the head is not sent again (a store has no
                # de-duplication; it would hold those records twice).
                lost = getattr(exc, "records", None) or records
                done = len(records) - len(lost)
                if done > 0 and all(a is b for a, b in zip(lost, records[done:], strict=True)):
                    self._advance(ends[done - 1], done)
                raise
            self._advance(end, len(records))
            offset = end
        # Nothing was appended since the last read (no await in between): empty it.
        self._backlog = False
        self.stats.queue_depth = 0
        self.path.unlink(missing_ok=True)
        self.offset_path.unlink(missing_ok=True)
        log.warning("%s: back; %d spooled records replayed", self.name, self.replayed)

    def _advance(self, offset: int, sent: int) -> None:
        """``sent`` records up to ``offset`` of the spool file are in the sink."""
        self.replayed += sent
        self.stats.sent += sent
        # (a backlog of an earlier run was not counted in)
        self.stats.queue_depth = max(0, self.stats.queue_depth - sent)
        self.offset_path.write_text(str(offset))

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None:
            # A replay under way is let finish: cancelled, it would leave its
            # batch in a buffering sink, which writes it while the drain below
            # sends it again from the same offset (twice in the store), or fails
            # and makes the drain below give up on a server that is back.
            if not self._draining:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.backlog_bytes > 0:
            with contextlib.suppress(SinkError):
                await self._drain()
        if self.backlog_bytes > 0:
            log.warning("%s: %d bytes left in %s, replayed at the next start", self.name,
                        self.backlog_bytes, self.path)
        try:
            await self.sink.aclose()
        except SinkError as exc:
            # the last inserts failed as the sink closed: keep them for the next start
            lost = getattr(exc, "records", None)
            if lost:
                self.stats.sent -= len(lost)
                self._append(RecordBatch(list(lost)))
                log.warning("%s: %d records spooled to %s, replayed at the next start",
                            self.name, len(lost), self.path)
            raise
