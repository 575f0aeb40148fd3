"""Self-metrics per component: one source, a working sink and a sink that is down."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tests.test_pipeline import ListSource
from tests.test_spool import FlakySink, batch

from bustap.message import Message
from bustap.pipeline import Pipeline
from bustap.record import Writer
from bustap.sinks import make_sink
from bustap.spool import Spool
from bustap.telemetry import ComponentCounters


def test_counters_per_source_and_per_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSTAP_SPOOL_DIR", str(tmp_path / "spool"))
    msgs = [[Message("nats", "a.b", f'{{"i": {i}}}'.encode(), 1_700_000_000.0 + i)
             for i in range(start, start + 10)] for start in range(0, 50, 10)]
    msgs.append([{"event_type": "log", "kind": "stats", "event": "dropped",
                  "reason": "slow_consumer", "count": 3}])
    source = ListSource(msgs)
    down = FlakySink()
    down.down = True
    out = tmp_path / "out.jsonl"
    pipeline = Pipeline([source], [make_sink(str(out)), down], writer=Writer("t"))
    counters = asyncio.run(pipeline.run())

    src = counters.sources[source.name]
    # log_init, 50 messages, the stats record (log_close is the pipeline's own)
    assert (src.received, src.sent, src.queue_depth) == (52, 52, 0)
    assert src.dropped == {"slow_consumer": 3}
    lines = [json.loads(line) for line in out.read_bytes().splitlines()]
    file_sink = pipeline.sinks[0].name
    ok = counters.sinks[file_sink]
    assert ok.received == ok.sent == len(lines) and ok.errors == ok.spooled == 0
    bad = counters.sinks[down.name]
    assert bad.sent == 0 and bad.spooled == bad.received == len(lines) and bad.errors >= 1

    metrics = pipeline.metrics()
    assert metrics["sinks"][down.name]["queue_depth"] == len(lines)
    assert metrics["spooled"] == len(lines)
    assert metrics["sources"][source.name]["received"] == 52

    close = lines[-1]
    assert close["event_type"] == "log_close"
    assert close["counters"]["received"] == 52 and close["counters"]["dropped"] == {
        "slow_consumer": 3}
    # the sinks as they were just before this last record was written
    assert close["sinks"][down.name]["spooled"] == len(lines) - 1
    assert close["sinks"][file_sink]["sent"] == len(lines) - 1


async def test_full_spool_counts_its_drops_on_the_sink(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down = True
    stats = ComponentCounters()
    spool = Spool(sink, directory=tmp_path, max_bytes=30, stats=stats, backoff_initial_secs=10)
    await spool.open()
    await spool.write(batch(0, 2))
    await spool.write(batch(2, 5))
    await spool.aclose()
    assert stats.as_dict() == {"received": 7, "sent": 0, "dropped": {"spool_full": 5},
                               "spooled": 2, "errors": 1, "queue_depth": 2}
