"""The spool in front of a sink: order kept, nothing lost, bounded on disk."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from bustap.errors import ConfigError, SinkError
from bustap.sinks import RecordBatch, Sink
from bustap.sinks._batched import StoreWriteError
from bustap.spool import Spool, retry_max_secs
from bustap.urls import parse_url


class FlakySink(Sink):
    """An in-memory sink that can be switched off, like a database going away."""

    def __init__(self) -> None:
        super().__init__(parse_url("flaky://test"))
        self.rows: list[int] = []
        self.down = False
        self.lost_chunk: list[dict[str, int]] | None = None
        self.lost_at_close: list[dict[str, int]] | None = None
        self.accept_only: int | None = None  # write the head of the next batch, fail the rest

    async def write(self, batch: RecordBatch) -> None:
        if self.accept_only is not None:
            n, self.accept_only = self.accept_only, None
            self.rows.extend(int(r["seq"]) for r in batch.records[:n])
            raise StoreWriteError(self.name, "insert failed", batch.records[n:])
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


async def test_replay_goes_on_after_the_head_a_buffering_sink_wrote(tmp_path: Path) -> None:
    """A store that wrote part of a replayed batch before it failed: the part
    it wrote is not sent again (a store has no de-duplication)."""
    sink = FlakySink()
    sink.down = True
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=10)
    await spool.open()
    await spool.write(batch(0, 10))
    sink.down = False
    sink.accept_only = 4
    await spool.aclose()  # its last replay writes 0..3, then fails
    assert sink.rows == [0, 1, 2, 3] and spool.backlog_bytes > 0
    again = FlakySink()
    again.url = sink.url
    spool2 = Spool(again, directory=tmp_path)
    await spool2.open()
    await spool2.aclose()
    assert again.rows == list(range(4, 10))
    assert not spool2.path.exists()


class BufferingSink(Sink):
    """Like the store sinks: write() takes records into a buffer that a task
    of the sink commits; flush() waits for it. A flush cancelled does not
    stop the commit."""

    def __init__(self) -> None:
        super().__init__(parse_url("buffering://test"))
        self.rows: list[int] = []
        self.down = False
        self._commit: asyncio.Task[None] | None = None

    async def write(self, batch: RecordBatch) -> None:
        if self.down:
            raise SinkError(self.name, "connection refused")
        records = [int(r["seq"]) for r in batch.records]

        async def commit(after: asyncio.Task[None] | None) -> None:
            if after is not None:
                await after
            await asyncio.sleep(0.05)
            self.rows.extend(records)

        self._commit = asyncio.create_task(commit(self._commit))

    async def flush(self) -> None:
        if self._commit is not None:
            await asyncio.shield(self._commit)


async def test_stop_during_a_replay_sends_nothing_twice(tmp_path: Path) -> None:
    sink = BufferingSink()
    sink.down = True
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=0.01, backoff_max_secs=0.02)
    await spool.open()
    for start in range(0, 6000, 1000):  # three replay batches' worth
        await spool.write(batch(start, 1000))
    sink.down = False
    while not sink.rows and sink._commit is None:  # the replay is under way
        await asyncio.sleep(0.001)
    await spool.aclose()
    assert sink.rows == list(range(6000))
    assert not spool.path.exists()


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "1e9"])
def test_a_bad_retry_cap_is_a_config_error(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSTAP_SPOOL_RETRY_MAX_SECS", raw)
    with pytest.raises(ConfigError, match="BUSTAP_SPOOL_RETRY_MAX_SECS"):
        retry_max_secs()
    monkeypatch.setenv("BUSTAP_SPOOL_RETRY_MAX_SECS", "2.5")
    assert retry_max_secs() == 2.5
