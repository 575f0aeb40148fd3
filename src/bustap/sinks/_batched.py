"""The part the database sinks share: a bounded buffer and one writer task.

``write()`` only appends to the buffer, so the event loop goes back to
reading sockets at once; a writer task inserts what has gathered (up to
``batch_rows`` at a time) in a worker thread, where the database drivers
release the GIL. ``_insert`` makes records durable (PostgreSQL commits;
DuckDB stages a file that survives a killed collector); a sink may then load
them in bigger steps (``_sync``: DuckDB loads a row group per statement), in
a second task so that loading does not stop inserting, at least every
``flush_secs``. ``flush()`` waits until everything written before it is
durable, so the pipeline can acknowledge QoS 1/2 messages after it.
When the buffer holds ``max_rows``, ``write()`` waits: memory stays bounded
and the wait pushes back to the sources. ``aclose()`` writes what is left, so
a Ctrl-C loses nothing. When an insert fails, the error raised by the next
call carries the failed chunk and everything behind it in the buffer, in
order (the buffer is emptied): the caller's spool gets all of it, and the
writer never inserts later records ahead of the ones that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import ConfigError, SinkError
from ..record import Record
from ..urls import Url
from .base import RecordBatch, Sink, seconds_param

log = logging.getLogger("bustap.sinks")


class StoreWriteError(SinkError):
    """An insert failed; ``records`` are the records that were not written
    (the pipeline may spool and replay them)."""

    def __init__(self, sink: str, reason: str, records: list[Record]) -> None:
        super().__init__(sink, reason)
        self.records = records


def _int_param(url: Url, name: str, default: int, minimum: int = 1) -> int:
    raw = url.param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(f"sink {url.redacted}: {name} must be an integer >= {minimum}, "
                          f"not {raw!r}", value=raw)
    return value


class BatchedStoreSink(Sink):
    """Base of the DuckDB and PostgreSQL sinks. Subclasses implement the
    blocking ``_connect``/``_insert``/``_prune``/``_disconnect`` (run in a
    worker thread, one at a time)."""

    #: Prune old rows at most this often when ``retain`` is set.
    prune_every_secs = 3600.0

    def __init__(self, url: Url) -> None:
        super().__init__(url)
        self.batch_rows = _int_param(url, "batch_rows", 5_000)
        self.max_rows = max(_int_param(url, "max_rows", 20_000), self.batch_rows)
        self.flush_secs = seconds_param(url, "flush_secs", 0.5)
        self.retain: timedelta | None = None
        retain = url.param("retain")
        if retain:
            from ..store.timeparse import parse_duration

            self.retain = parse_duration(retain, what="retain")
        self._pending: list[Record] = []
        self._appended = 0  # records handed to write(), ever
        self._inserted = 0  # records _insert made durable (or gave up on), ever
        self._synced = 0  # records _sync loaded (or gave up on), ever
        self._last_sync = time.monotonic()
        self._writer_done = False
        self._sync_wake = asyncio.Event()
        #: inserted but not yet synced records the writer lets gather at most
        self.max_unsynced = 1 << 62
        self._error: SinkError | None = None
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_prune = 0.0
        self._failing = False  # the last insert failed: its error is logged already
        self.rows_written = 0

    # --- what subclasses implement (blocking, called in a worker thread) ---

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _insert(self, records: list[Record]) -> None: ...

    def _sync(self) -> None:
        """Load what _insert staged into the store proper; a sink whose _insert
        commits has nothing to do. Raises StoreWriteError with the records it lost."""

    @abstractmethod
    def _prune(self, cutoff: datetime) -> int: ...

    @abstractmethod
    def _disconnect(self) -> None: ...

    def _describe(self, exc: BaseException) -> str:
        """The reason of a driver error in one line, without secrets."""
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        return text.replace(self.url.raw, self.url.redacted)

    # --- the Sink API -------------------------------------------------------

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self._connect)
        except SinkError:
            raise
        except ConfigError:
            raise
        except Exception as exc:
            raise SinkError(self.name, self._describe(exc)) from None
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        if self.retain is not None:
            await self._maybe_prune()
        self._task = asyncio.create_task(self._writer(), name=f"sink {self.name}")

    async def write(self, batch: RecordBatch) -> None:
        self._raise_error()
        assert self._wake is not None and self._progress is not None, "sink not opened"
        self._pending.extend(batch.records)
        self._appended += len(batch.records)
        if len(self._pending) >= self.batch_rows:
            self._wake.set()
        if len(self._pending) >= self.max_rows:
            # the batch is accepted: an error met while waiting for room is the
            # next call's (raised here, the caller would spool this batch twice)
            await self._wait_for(self._appended - self.max_rows + self.batch_rows,
                                 raise_error=False)

    async def flush(self) -> None:
        self._raise_error()
        if self._wake is None:
            return
        self._wake.set()
        await self._wait_for(self._appended)

    async def aclose(self) -> None:
        if self._task is None:
            return
        self._closing = True
        assert self._wake is not None
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        self._task = None
        try:
            await asyncio.to_thread(self._disconnect)
        except Exception as exc:
            log.warning("%s: closing: %s", self.name, self._describe(exc))
        self._raise_error()

    # --- internals ------------------------------------------------------------

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    async def _wait_for(self, target: int, *, synced: bool = False,
                        raise_error: bool = True) -> None:
        assert self._progress is not None
        async with self._progress:
            await self._progress.wait_for(
                lambda: (self._synced if synced else self._inserted) >= target
                or self._error is not None or self._task is None or self._task.done())
        if raise_error:
            self._raise_error()

    async def _writer(self) -> None:
        """Inserts: ``batch_rows`` at a time, while the syncer loads earlier
        ones (a DuckDB load does not stop the staging of the next)."""
        assert self._wake is not None and self._progress is not None
        syncer = asyncio.create_task(self._syncer(), name=f"sink {self.name} sync")
        try:
            while True:
                if not self._pending and not self._closing:
                    # asyncio.timeout, not wait_for: 3.11's wait_for could swallow
                    # a cancellation that arrived as the event was set
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.flush_secs):
                            await self._wake.wait()
                    self._wake.clear()
                if not self._pending:
                    if self._closing:
                        break
                    continue
                if self._inserted - self._synced >= self.max_unsynced:
                    await self._wait_for(self._inserted - self.max_unsynced + 1,
                                         synced=True, raise_error=False)
                chunk = self._pending[: self.batch_rows]
                del self._pending[: self.batch_rows]
                if await self._run(self._insert, chunk):
                    self.rows_written += len(chunk)
                    self._failing = False
                self._inserted += len(chunk)
                await self._notify()
        finally:
            self._writer_done = True
            self._sync_wake.set()
            await syncer

    async def _syncer(self) -> None:
        assert self._progress is not None
        while True:
            if not self._sync_due():
                if self._writer_done and self._synced >= self._inserted:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_secs):
                        await self._sync_wake.wait()
                self._sync_wake.clear()
                continue
            target = self._inserted
            await self._run(self._sync)
            self._synced = max(self._synced, target)
            self._last_sync = time.monotonic()
            await self._notify()
            if self.retain is not None and self._error is None:
                await self._maybe_prune()

    async def _notify(self) -> None:
        assert self._progress is not None
        async with self._progress:
            self._progress.notify_all()
        if self._sync_ready():
            self._sync_wake.set()

    def _sync_ready(self) -> bool:
        """True when the staged inserts are worth a sync now (subclasses)."""
        return False

    def _sync_due(self) -> bool:
        if self._synced >= self._inserted:
            return False
        return (self._writer_done or self._sync_ready()
                or time.monotonic() - self._last_sync >= self.flush_secs)

    async def _run(self, step: Any, *args: Any) -> bool:
        """One blocking step in a worker thread; a failure becomes the
        sink's error (the records it carries go to the spool)."""
        try:
            await asyncio.to_thread(step, *args)
            return True
        except Exception as exc:
            if isinstance(exc, StoreWriteError):
                reason, lost = exc.reason, exc.records
            else:
                reason, lost = self._describe(exc), (args[0] if args else [])
            # said once when the store goes away; the retries of a spool while
            # it stays away are the spool's to report
            log.log(logging.INFO if self._failing else logging.ERROR, "%s: %s", self.name,
                    reason)
            self._failing = True
            # What waits behind the failed step goes with it, in order: this
            # writer must not insert it on its own later (behind the caller's
            # back, ahead of what the caller spools), and a caller that meets
            # this error while it replays its spool would lose it.
            rest, self._pending = self._pending, []
            self._inserted += len(rest)
            lost = [*lost, *rest]
            if self._error is not None:  # not yet raised: keep both sets of records
                lost = self._error.records + lost  # type: ignore[attr-defined]
            self._error = StoreWriteError(self.name, reason, lost)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._disconnect)
            return False

    async def _maybe_prune(self) -> None:
        if self.retain is None or (
                self._last_prune and time.monotonic() - self._last_prune < self.prune_every_secs):
            return
        self._last_prune = time.monotonic()
        cutoff = datetime.now(UTC).replace(tzinfo=None) - self.retain
        try:
            deleted = await asyncio.to_thread(self._prune, cutoff)
        except Exception as exc:
            log.warning("%s: pruning: %s", self.name, self._describe(exc))
            return
        if deleted:
            log.info("%s: deleted %d records older than %s", self.name, deleted, cutoff)


def describe_params(url: Url, known: set[str]) -> dict[str, Any]:
    """Reject unknown URL parameters (Vector: unknown keys are errors)."""
    unknown = set(url.query) - known
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(f"sink {url.redacted}: unknown parameter {name!r} (known: "
                          f"{', '.join(sorted(known))})", value=name)
    return {k: url.param(k) for k in known if url.param(k) is not None}
