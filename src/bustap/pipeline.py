"""Sources -> decode -> processors -> sinks, with one ordered record stream.

Every source runs in its own task and puts :class:`Batch` es on one bounded
queue. When the queue is full the source task blocks, stops reading its
socket, and TCP pushes back on the broker: memory stays bounded. One consumer
turns batches into records (stamping ``seq``/``writer_id``/``timestamp``
from one :class:`~bustap.record.Writer`, so several sources merge into one
sequence), decodes payloads, hands the records to processors and sinks, and
only then acknowledges the batch to its broker (ack-after-store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .decode import DecoderChain
from .detect import Engine
from .detect.outputs import Outputs
from .encode import message_record
from .errors import BustapError, ConnectError, SinkError
from .health import Health
from .message import Message
from .record import EventType, Kind, Record, Writer
from .sinks import RecordBatch, Sink
from .sinks.jsonl import StdoutSink
from .sources import Batch, Lifecycle, Source
from .spool import Spool
from .telemetry import SINK_COUNTS, ComponentCounters
from .workers import DecodePool, Encoded, as_tuple, encode

log = logging.getLogger("bustap.pipeline")

Processor = Callable[[list[Record]], None]


@dataclass
class Counters:
    """Self-telemetry (Vector's instrumentation spec): what came in, what went
    out, what was dropped and why. The same numbers feed the terminal summary,
    the dashboard and /metrics."""

    started: float = field(default_factory=time.monotonic)
    received: int = 0
    records: int = 0
    written: int = 0
    bytes_in: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    decode_errors: int = 0
    per_source: Counter[str] = field(default_factory=Counter)
    health: Health = field(default_factory=Health)  # per broker: connected, last message...
    #: per component, by source name and by sink name (telemetry.py)
    sources: dict[str, ComponentCounters] = field(default_factory=dict)
    sinks: dict[str, ComponentCounters] = field(default_factory=dict)

    def source(self, name: str) -> ComponentCounters:
        return self.sources.get(name) or self.sources.setdefault(name, ComponentCounters())

    def sink(self, name: str) -> ComponentCounters:
        return self.sinks.get(name) or self.sinks.setdefault(name, ComponentCounters())

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "records": self.records, "written": self.written,
                "bytes_in": self.bytes_in, "dropped": dict(self.dropped),
                "errors": dict(self.errors), "decode_errors": self.decode_errors,
                "per_source": dict(self.per_source), "brokers": self.health.summary(),
                "health": self.health.as_dict(),
                "sources": {n: c.as_dict() for n, c in sorted(self.sources.items())},
                "sinks": {n: c.as_dict() for n, c in sorted(self.sinks.items())},
                "elapsed_secs": round(time.monotonic() - self.started, 3)}


@dataclass(slots=True)
class _Submitted:
    future: asyncio.Future[Encoded]
    source: Source
    batch: Batch
    seq: int
    items: list[Message]
    done: bool  # -C reached: not acked, the rest of the batch is left to the broker


class Pipeline:
    def __init__(self, sources: Sequence[Source], sinks: Sequence[Sink], *,
                 writer: Writer | None = None, decoders: DecoderChain | None = None,
                 processors: Sequence[Processor] = (), count: int | None = None,
                 timeout: float | None = None, queue_batches: int = 8,
                 spool: bool = True, workers: int = 0, detector: Engine | None = None,
                 alert_outputs: Outputs | None = None) -> None:
        self.sources = list(sources)
        self.counters = Counters()
        self.sinks = list(sinks)
        # Every sink but stdout writes through a spool: a sink that goes down
        # mid-run gets its records later, in order, instead of stopping capture.
        self._outputs: list[Sink | Spool] = [
            s if isinstance(s, StdoutSink) or not spool else
            Spool(s, dropped=self.counters.dropped, stats=self.counters.sink(s.name))
            for s in self.sinks]
        self.writer = writer or Writer()
        self.decoders = decoders if decoders is not None else DecoderChain()
        self.processors = list(processors)
        self.count = count
        self.timeout = timeout
        self._queue: asyncio.Queue[tuple[Source, Batch | BaseException]] = asyncio.Queue(
            queue_batches)
        self._stop = asyncio.Event()
        self._open: set[str] = set()
        self._messages = 0
        # emit() (periodic dumps) and the consumer both write: one at a time
        self._write_lock = asyncio.Lock()
        # message batches being encoded by worker processes, oldest first
        self.pool = DecodePool(workers, self.decoders) if workers > 0 else None
        self._inflight: deque[_Submitted] = deque()
        # the alert engine sees every record after decoding; its alerts are
        # records of the same stream (stamped after the records behind them)
        self.detector = detector
        self.alert_outputs = alert_outputs
        self._held_alerts: list[Record] = []

    async def emit(self, records: list[Record]) -> None:
        """Stamp and write records made outside the sources (dumps) to every sink."""
        await self._complete(0)  # after the records seq was given out before them
        await self._write(self._stamp(records))

    def metrics(self) -> dict[str, Any]:
        """The counters now, with what waits: queue depth per source, spooled
        records per sink (the dashboard and /metrics read this)."""
        c = self.counters
        out_dict = c.as_dict()
        for out in self._outputs:
            sink = out.sink if isinstance(out, Spool) else out
            out_dict["sinks"].setdefault(out.name, ComponentCounters().as_dict()).update(
                {k: v for k in SINK_COUNTS if isinstance(v := getattr(sink, k, None), int)})
        out_dict["queue_depth"] = self._queue.qsize()
        out_dict["queue_limit"] = self._queue.maxsize
        out_dict["spooled"] = sum(s.queue_depth for s in c.sinks.values())
        out_dict["dropped_total"] = sum(c.dropped.values())
        return out_dict

    def reopen(self) -> None:
        """SIGHUP: the sinks that write files reopen them (logrotate moved them)."""
        for sink in self.sinks:
            sink.reopen()

    def stop(self) -> None:
        """Ask for a graceful stop: what was received is written, sinks flushed."""
        self._stop.set()

    async def run(self) -> Counters:
        for out in self._outputs:
            await out.open()
        if self.pool is not None:
            self.pool.start()
        if self.alert_outputs is not None:
            await self.alert_outputs.start()
        pumps = [asyncio.create_task(self._pump(s), name=f"source {s.name}")
                 for s in self.sources]
        ticker = asyncio.create_task(self._detect_ticker(), name="alert ticker") \
            if self.detector is not None and not self.detector.event_time else None
        try:
            await self._consume()
        finally:
            for task in [*pumps, *([ticker] if ticker else [])]:
                task.cancel()
            for task in [*pumps, *([ticker] if ticker else [])]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._drain()
            try:
                await self._complete(0)
            finally:
                if self.pool is not None:
                    self.pool.close()
            await self._finish_detection()
            await self._close_sources()
            for out in self._outputs:
                try:
                    await out.aclose()
                except BustapError as exc:
                    log.error("%s", exc)
            if self.alert_outputs is not None:
                await self.alert_outputs.aclose()
        return self.counters

    # --- alerts -------------------------------------------------------------------

    def _stamp(self, records: list[Record]) -> list[Record]:
        stamped = [self.writer.stamp(r) for r in records]
        self.counters.records += len(stamped)
        return stamped

    def _stamp_alerts(self, alerts: list[Record]) -> list[Record]:
        """Alerts stamped next in the stream, and sent to the alert outputs."""
        stamped = self._stamp(alerts)
        if self.alert_outputs is not None:
            self.alert_outputs.send(stamped)
        return stamped

    def _detect(self, records: list[Record]) -> list[Record]:
        """Run the engine on stamped records; its alerts, stamped next."""
        assert self.detector is not None
        alerts = self.detector.process(records)
        return self._stamp_alerts(alerts) if alerts else []

    async def _emit_alerts(self, alerts: list[Record]) -> None:
        if not alerts:
            return
        await self._complete(0)
        await self._write(self._stamp_alerts(alerts))

    async def _detect_ticker(self) -> None:
        assert self.detector is not None
        while True:
            await asyncio.sleep(1.0)
            held, self._held_alerts = self._held_alerts, []
            await self._emit_alerts(held + self.detector.tick())

    async def _finish_detection(self) -> None:
        if self.detector is None:
            return
        held, self._held_alerts = self._held_alerts, []
        # a log read from a file: what its last lines leave behind (updated
        # counts, resolutions) is part of what the file raises
        tail = self.detector.tick() if self.detector.event_time else []
        try:
            await self._emit_alerts(held + tail)
        finally:
            self.detector.save()

    async def _pump(self, source: Source) -> None:
        try:
            stats = self.counters.source(source.name)
            async for batch in source.stream():
                stats.queue_depth += 1  # until _handle takes it
                await self._queue.put((source, batch))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await self._queue.put((source, exc))
            return
        await self._queue.put((source, StopAsyncIteration()))

    async def _consume(self) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        running = len(self.sources)
        stop_wait = asyncio.ensure_future(self._stop.wait())
        try:
            while running and not self._stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                getter = asyncio.ensure_future(self._queue.get())
                done, _ = await asyncio.wait([getter, stop_wait], timeout=remaining,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    if getter.cancelled():
                        continue
                source, item = getter.result()
                if isinstance(item, StopAsyncIteration):
                    running -= 1
                    continue
                if isinstance(item, BaseException):
                    if isinstance(item, BustapError):
                        raise item
                    raise ConnectError(source.name, f"{type(item).__name__}: {item}") from item
                if await self._handle(source, item):
                    return
                # Take whatever else is ready: bigger batches, fewer writes.
                while not self._queue.empty():
                    source, item = self._queue.get_nowait()
                    if isinstance(item, BaseException):
                        await self._queue.put((source, item))
                        break
                    if await self._handle(source, item):
                        return
        finally:
            stop_wait.cancel()

    async def _drain(self) -> None:
        """Write what is already queued (received, so it must not be lost)."""
        if self.count is not None and self._messages >= self.count:
            return
        while not self._queue.empty():
            source, item = self._queue.get_nowait()
            if isinstance(item, Batch) and await self._handle(source, item):
                return

    async def _close_sources(self) -> None:
        health = self.counters.health
        records = [self.writer.new(EventType.LOG_CLOSE, name, reason="stopped",
                                   **health.down(name, "stopped").fields(),
                                   counters=self.counters.source(name).as_dict())
                   for name in sorted(self._open)]
        self._open.clear()
        if records:
            # the last one also says what the sinks did (up to this write)
            records[-1]["sinks"] = self.metrics()["sinks"]
            await self._write(records)

    async def _handle(self, source: Source, batch: Batch) -> bool:
        """Turn one batch into records, write them, ack. True when -C is reached."""
        stats = self.counters.source(source.name)
        stats.queue_depth -= 1
        if self.pool is not None:
            if batch.items and all(type(i) is Message for i in batch.items):
                return await self._submit(source, batch)
            await self._complete(0)  # what was submitted before this batch goes first
        records, done = self._records(source, batch.items)
        if records:
            # flush (make durable) only when a broker waits for our ack: sinks that
            # buffer (the stores) then write large batches on their own schedule
            await self._write(records, durable=batch.ack is not None)
            stats.sent += len(records)
        if batch.ack is not None and not done:
            batch.ack()
        # Let the sources read their sockets between batches: a NATS server
        # disconnects a client that does not read for its write deadline.
        await asyncio.sleep(0)
        return done

    async def _submit(self, source: Source, batch: Batch) -> bool:
        """Hand a batch of messages to a worker with its seq range; write the
        oldest encoded batches while more than one per worker is out."""
        assert self.pool is not None
        items: list[Message] = batch.items  # type: ignore[assignment]  # checked by _handle
        done = False
        if self.count is not None and self._messages + len(items) >= self.count:
            items = items[: self.count - self._messages]
            done = True
        seq = self.writer.seq
        self.writer.seq += len(items)
        self._messages += len(items)
        future = self.pool.submit(seq, self.writer.writer_id, source.name, items)
        self._inflight.append(_Submitted(future, source, batch, seq, items, done))
        await self._complete(0 if done else self.pool.workers)
        await asyncio.sleep(0)
        return done

    async def _complete(self, keep: int) -> None:
        """Write and ack submitted batches, in order, until ``keep`` are left."""
        while len(self._inflight) > keep:
            sub = self._inflight[0]
            try:
                lines, errors, size, known = await sub.future
            except Exception as exc:  # a worker died: encode here, lose nothing
                log.warning("worker process failed (%s): encoding in process", exc)
                items = [as_tuple(m) for m in sub.items]
                lines, errors, size, known = encode(sub.seq, self.writer.writer_id,
                                                    sub.source.name, items, self.decoders,
                                                    self.writer.clock)
            self._inflight.popleft()
            n = len(sub.items)
            c = self.counters
            c.received += n
            c.records += n
            c.bytes_in += size
            c.decode_errors += errors
            c.per_source[sub.source.name] += n
            stats = c.source(sub.source.name)
            stats.received += n
            stats.errors += errors
            if sub.items:
                c.health.seen(sub.source.name, sub.items[-1].received)
            batch = RecordBatch.from_lines(lines, n, known_keys=known)
            for proc in self.processors:  # they want dicts: parsed back (dumps)
                proc(batch.records)
            if self.detector is not None:
                # seqs of later batches are given out already: the alerts wait
                # for the ticker, which writes them after those batches
                self._held_alerts += self.detector.process(batch.records)
            await self._write_batch(batch, durable=sub.batch.ack is not None)
            stats.sent += n
            if sub.batch.ack is not None and not sub.done:
                sub.batch.ack()

    def _records(self, source: Source, items: list[Any]) -> tuple[list[Record], bool]:
        writer = self.writer
        clock = writer.clock
        seq = writer.seq
        wid = writer.writer_id
        name = source.name
        decode = self.decoders.decode
        c = self.counters
        stats = c.source(name)
        out: list[Record] = []
        limit = self.count
        done = False
        last: Message | None = None
        for item in items:
            if type(item) is Message:
                last = item
                rec = message_record(item, seq, wid, name, clock, decode)
                if "decode_error" in rec:
                    c.decode_errors += 1
                    stats.errors += 1
                c.received += 1
                c.bytes_in += rec["size"]
                self._messages += 1
                out.append(rec)
                seq += 1
                if limit is not None and self._messages >= limit:
                    done = True
                    break
                continue
            writer.seq = seq
            if isinstance(item, Lifecycle):
                rec = self._lifecycle(source, item)
            else:
                # A ready record (broker event, stats): one copy, envelope first.
                rec = {"seq": seq, "writer_id": wid,
                       "timestamp": item.get("timestamp") or clock.now(),
                       "event_type": item.get("event_type", "log"),
                       "source": item.get("source", name)}
                rec.update(item)
                if rec.get("kind") == Kind.STATS and rec.get("event") == "dropped":
                    c.dropped[str(rec.get("reason"))] += int(rec.get("count", 0))
                    stats.dropped[str(rec.get("reason"))] += int(rec.get("count", 0))
                out.append(rec)
                seq += 1
                continue
            if rec:
                out.append(rec)
            seq = writer.seq
        writer.seq = seq
        c.records += len(out)
        c.per_source[name] += len(out)
        stats.received += len(out)
        if last is not None:
            c.health.seen(name, last.received)
        if out and self.processors:
            for proc in self.processors:
                proc(out)
        if out and self.detector is not None:
            out += self._detect(out)
        return out, done

    def _lifecycle(self, source: Source, item: Lifecycle) -> Record:
        health = self.counters.health
        if item.event == "init":
            self._open.add(source.name)
            info = {k: v for k, v in item.info.items() if v is not None}
            return self.writer.new(EventType.LOG_INIT, source.name, protocol=source.protocol,
                                   **{**health.up(source.name).fields(), **info})
        self._open.discard(source.name)
        state = health.down(source.name, item.info.get("reason")).fields()
        return self.writer.new(EventType.LOG_CLOSE, source.name, **{**state, **item.info},
                               counters=self.counters.source(source.name).as_dict())

    async def _write(self, records: list[Record], *, durable: bool = True) -> None:
        await self._write_batch(RecordBatch(records), durable=durable)

    async def _write_batch(self, batch: RecordBatch, *, durable: bool = True) -> None:
        async with self._write_lock:
            for out in self._outputs:
                try:
                    if isinstance(out, Spool):
                        await out.write(batch, durable=durable)
                    else:  # stdout: not spooled, counted here
                        stats = self.counters.sink(out.name)
                        stats.received += len(batch)
                        await out.write(batch)
                        if durable:
                            await out.flush()
                        stats.sent += len(batch)
                except SinkError:
                    self.counters.errors[f"sink:{out.name}"] += 1
                    self.counters.sink(out.name).errors += 1
                    raise
        self.counters.written += len(batch)
