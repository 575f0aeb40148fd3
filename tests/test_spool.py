"""The spool in front of a sink: order kept, nothing lost, bounded on disk."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bustap.errors import SinkError
from bustap.sinks import RecordBatch, Sink
from bustap.sinks._batched import StoreWriteError
from bustap.spool import Spool
from bustap.urls import parse_url


class FlakySink(Sink):
    """An in-memory sink that can be switched off, like a database going away."""

    def __init__(self) -> None:
        super().__init__(parse_url("flaky://test"))
        self.rows: list[int] = []
        self.down = False
        self.lost_chunk: list[dict[str, int]] | None = None
        self.lost_at_close: list[dict[str, int]] | None = None

    async def write(self, batch: RecordBatch) -> None:
        if self.lost_chunk is not None:
            chunk, self.lost_chunk = self.lost_chunk, None
            raise StoreWriteError(self.name, "insert failed", chunk)
        if self.down:
            raise SinkError(self.name, "connection refused")
        self.rows.extend(int(r["seq"]) for r in batch.records)

    async def aclose(self) -> None:
        if self.lost_at_close is not None:
            chunk, self.lost_at_close = self.lost_at_close, None
            raise StoreWriteError(self.name, "last load failed", chunk)


def batch(start: int, n: int) -> RecordBatch:
    return RecordBatch([{"seq": i} for i in range(start, start + n)])


async def test_down_sink_is_spooled_and_replayed_in_order(tmp_path: Path) -> None:
    sink = FlakySink()
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=0.01, backoff_max_secs=0.02)
    await spool.open()
    await spool.write(batch(0, 10))
    sink.down = True
    await spool.write(batch(10, 10))
    await spool.write(batch(20, 10))
    assert spool.backlog_bytes > 0 and sink.rows == list(range(10))
    sink.down = False
    await spool.write(batch(30, 10))  # queued behind the spool, not ahead of it
    await spool.aclose()
    assert sink.rows == list(range(40))
    assert not spool.path.exists()


async def test_failed_chunk_of_a_buffering_sink_is_not_lost(tmp_path: Path) -> None:
    sink = FlakySink()
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=0.01, backoff_max_secs=0.02)
    await spool.open()
    sink.lost_chunk = [{"seq": 100}, {"seq": 101}]
    await spool.write(batch(0, 3))
    await spool.aclose()
    assert sorted(sink.rows) == [0, 1, 2, 100, 101]


async def test_what_is_left_is_replayed_at_next_start(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down = True
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=10)
    await spool.open()
    await spool.write(batch(0, 5))
    await spool.aclose()
    assert spool.path.exists()
    again = FlakySink()
    spool2 = Spool(again, directory=tmp_path, backoff_initial_secs=0.01,
                   backoff_max_secs=0.02)
    spool2.sink.url = sink.url
    await spool2.open()
    await spool2.aclose()
    assert again.rows == list(range(5))


async def test_records_a_sink_fails_on_close_are_replayed_at_next_start(
        tmp_path: Path) -> None:
    sink = FlakySink()
    spool = Spool(sink, directory=tmp_path)
    await spool.open()
    await spool.write(batch(0, 3))
    sink.lost_at_close = [{"seq": 1}, {"seq": 2}]
    with pytest.raises(SinkError):
        await spool.aclose()
    again = FlakySink()
    again.url = sink.url
    spool2 = Spool(again, directory=tmp_path)
    await spool2.open()
    await spool2.aclose()
    assert again.rows == [1, 2]


async def test_full_spool_drops_and_counts(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down = True
    dropped: Counter[str] = Counter()
    spool = Spool(sink, directory=tmp_path, max_bytes=30, dropped=dropped,
                  backoff_initial_secs=10)
    await spool.open()
    await spool.write(batch(0, 2))
    await spool.write(batch(2, 5))
    await spool.aclose()
    assert dropped["spool_full"] == 5
