"""The pipeline with worker processes: the same stream as in one process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.payloads import BOSH_HEARTBEAT

from bustap.message import Message
from bustap.pipeline import Pipeline
from bustap.record import Record, Writer
from bustap.sinks import make_sink
from bustap.sources.base import Batch, Lifecycle, Source, SourceOptions
from bustap.urls import parse_url

BEAT = json.loads(BOSH_HEARTBEAT)


class ListSource(Source):
    """Batches from a list, with a log_init first, as a bus source gives them."""

    protocol = "nats"

    def __init__(self, batches: list[list[Any]]) -> None:
        super().__init__(parse_url("nats://127.0.0.1:4222"), SourceOptions())
        self.batches = batches

    def connect(self) -> Any:  # not used: stream() is overridden
        raise NotImplementedError

    async def stream(self) -> AsyncIterator[Batch]:
        yield Batch([Lifecycle("init", {})])
        for items in self.batches:
            yield Batch(items)
            await asyncio.sleep(0)


def batches(n: int, size: int) -> list[list[Any]]:
    out: list[list[Any]] = []
    for start in range(0, n, size):
        out.append([Message("nats", f"hm.agent.heartbeat.a{i % 7}",
                            json.dumps(dict(BEAT, index=i)).encode(), 1_700_000_000.0 + i)
                    for i in range(start, min(n, start + size))])
    out.insert(3, [{"event_type": "log", "kind": "stats", "event": "tick"}])  # in-process
    return out


def run(tmp_path: Path, name: str, workers: int, seen: list[Record]) -> list[dict[str, Any]]:
    out = tmp_path / f"{name}.jsonl"
    pipeline = Pipeline([ListSource(batches(2_000, 150))], [make_sink(str(out))],
                        writer=Writer("t"), workers=workers, count=1_900,
                        processors=[seen.extend], spool=False)
    counters = asyncio.run(pipeline.run())
    assert counters.received == 1_900 and counters.decode_errors == 0
    recs = [json.loads(line) for line in out.read_bytes().splitlines()]
    for r in recs:  # the clock's, not the messages' (log_init, stats, log_close)
        if r.get("kind") != "message":
            del r["timestamp"]
        if r["event_type"] == "log_close":  # self-metrics: sink names, what -C left queued
            del r["sinks"], r["counters"]["queue_depth"]
    return recs


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_write_the_stream_one_process_writes(tmp_path: Path, workers: int) -> None:
    seen_here: list[Record] = []
    seen_there: list[Record] = []
    here = run(tmp_path, "here", 0, seen_here)
    there = run(tmp_path, f"there{workers}", workers, seen_there)
    assert there == here
    assert [r["seq"] for r in there] == list(range(len(there)))
    assert [r["fields"]["index"] for r in there if r.get("kind") == "message"] == \
        list(range(1_900))
    # processors (dumps) see every record, parsed back from the workers' lines
    assert [r["seq"] for r in seen_there] == [r["seq"] for r in seen_here]
