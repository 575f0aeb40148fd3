"""The DuckDB sink: fast path, odd values, flush durability, bounded buffer,
retention, a database that goes away."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bustap.errors import ConfigError, SinkError
from bustap.record import Clock
from bustap.sinks import RecordBatch, make_sink
from bustap.sinks.duckdb import DuckDBSink
from bustap.store.schema import COLUMN_NAMES, row_to_record


def records(n: int, start: int = 0, t0: float = 1_700_000_000.0) -> list[dict[str, Any]]:
    clock = Clock()
    return [{"seq": i, "writer_id": "bustap/t", "timestamp": clock.format(t0 + i),
             "event_type": "log", "source": "mqtt://127.0.0.1:1883", "kind": "message",
             "protocol": "mqtt", "topic": f"t/{i % 3}", "qos": 1, "retain": False,
             "dup": False, "size": 3, "format": "json", "payload": {"v": i},
             "decoder": "json"} for i in range(start, start + n)]


def stored(path: Path) -> list[dict[str, Any]]:
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM records ORDER BY seq").fetchall()
    con.close()
    return [row_to_record(COLUMN_NAMES, r) for r in rows]


async def test_roundtrip_exact(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    sink = make_sink(str(path))
    await sink.open()
    recs = records(100)
    odd = {"seq": 100, "writer_id": "bustap/t", "timestamp": "2023-11-14T22:13:20Z",
           "event_type": "log_init", "source": "nats://127.0.0.1:4222", "protocol": "nats",
           "server_id": "NABC", "tls": False, "headers": {"a": ["b"]}}
    await sink.write(RecordBatch([*recs, odd]))
    await sink.aclose()
    back = stored(path)
    assert back[:100] == recs
    assert back[100]["server_id"] == "NABC" and back[100]["headers"] == {"a": ["b"]}
    assert back[100]["timestamp"] == "2023-11-14T22:13:20.000000Z"


async def test_values_of_the_wrong_type_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "b.duckdb"
    sink = make_sink(f"duckdb://{path}")
    await sink.open()
    bad = {"seq": "seven", "timestamp": "not a time", "event_type": "log",
           "kind": "broker_event", "qos": "1", "retain": "yes", "size": 2**70,
           "topic": "a\x00b", "payload": b"\xff\x00"}
    await sink.write(RecordBatch([*records(5), bad]))
    await sink.flush()
    await sink.aclose()
    back = stored(path)
    assert len(back) == 6
    odd = next(r for r in back if r.get("kind") == "broker_event")
    assert odd["qos"] == "1" and odd["retain"] == "yes" and odd["seq"] == "seven"
    assert odd["size"] == 2**70


async def test_flush_makes_durable_and_buffer_is_bounded(tmp_path: Path) -> None:
    import orjson

    path = tmp_path / "c.duckdb"
    sink = make_sink(f"{path}?batch_rows=10&max_rows=20&flush_secs=30")
    assert isinstance(sink, DuckDBSink)
    await sink.open()
    for i in range(10):
        await sink.write(RecordBatch(records(7, start=i * 7)))
        assert len(sink._pending) < 20 + 7
    await sink.flush()
    assert not sink._pending
    # durable: on disk in staged files, which a killed collector loads at its next start
    staged = sorted(sink._stage_dir.glob("*.json"))
    assert sum(len(orjson.loads(p.read_bytes())) for p in staged) == 70
    await sink.aclose()
    assert sink.rows_written == 70
    assert [r["seq"] for r in stored(path)] == list(range(70))


async def test_loads_a_row_group_at_a_time_without_flush(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import bustap.sinks.duckdb as mod

    monkeypatch.setattr(mod, "LOAD_ROWS", 50)
    path = tmp_path / "g.duckdb"
    sink = make_sink(f"{path}?batch_rows=10&flush_secs=60")
    assert isinstance(sink, DuckDBSink)
    await sink.open()
    await sink.write(RecordBatch(records(45)))
    await asyncio.sleep(0.3)
    with sink._db_lock:
        assert sink.con.execute("SELECT count(*) FROM records").fetchall() == [(0,)]
    assert len(list(sink._stage_dir.glob("*.json"))) == 5  # staged, not loaded yet
    await sink.write(RecordBatch(records(10, start=45)))
    for _ in range(100):
        if sink._synced >= 55:  # the syncer has loaded them (not only taken the files)
            break
        await asyncio.sleep(0.05)
    with sink._db_lock:
        assert sink.con.execute("SELECT count(*) FROM records").fetchall() == [(55,)]
    await sink.aclose()
    assert [r["seq"] for r in stored(path)] == list(range(55))
    assert not sink._stage_dir.exists()


async def test_files_a_killed_collector_staged_are_loaded_at_start(tmp_path: Path) -> None:
    import orjson

    path = tmp_path / "h.duckdb"
    staging = tmp_path / "h.duckdb.staging"
    staging.mkdir()
    (staging / "1-000000000001.json").write_bytes(orjson.dumps(records(3)))
    bad = dict(records(1, start=3)[0], qos="high")  # does not fit: goes to extra
    (staging / "1-000000000002.json").write_bytes(orjson.dumps([bad]))
    sink = make_sink(str(path))
    await sink.open()
    await sink.write(RecordBatch(records(2, start=4)))
    await sink.aclose()
    back = stored(path)
    assert [r["seq"] for r in back] == [0, 1, 2, 3, 4, 5]
    assert back[3]["qos"] == "high"
    assert not staging.exists()


async def test_retain_deletes_old_records(tmp_path: Path) -> None:
    path = tmp_path / "d.duckdb"
    sink = make_sink(str(path))
    await sink.open()
    await sink.write(RecordBatch(records(5, t0=1_000_000_000.0)))  # 2001
    await sink.aclose()
    sink = make_sink(f"{path}?retain=7d")
    await sink.open()
    await sink.write(RecordBatch(records(2, t0=__import__("time").time())))
    await sink.aclose()
    assert len(stored(path)) == 2


async def test_database_going_away_is_a_sink_error_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    sink = make_sink(f"{path}?flush_secs=0.1")
    assert isinstance(sink, DuckDBSink)
    await sink.open()
    await sink.write(RecordBatch(records(3)))
    await sink.flush()
    await asyncio.sleep(0.5)  # loaded
    sink.con.close()  # the database is gone under the sink
    await sink.write(RecordBatch(records(3, start=3)))
    await sink.flush()  # staged
    await asyncio.sleep(0.5)  # the load fails
    with pytest.raises(SinkError) as err:
        await sink.write(RecordBatch(records(3, start=6)))
    assert len(err.value.records) == 3  # type: ignore[attr-defined]
    assert [r["seq"] for r in err.value.records] == [3, 4, 5]  # type: ignore[attr-defined]
    await sink.write(RecordBatch(records(3, start=9)))  # reconnects
    await sink.aclose()
    assert [r["seq"] for r in stored(path)] == [0, 1, 2, 9, 10, 11]


async def test_locked_database_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "f.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,sys,time; "
                               f"c=duckdb.connect({str(path)!r}); print('ok', flush=True); "
                               "sys.stdin.read()"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        sink = make_sink(str(path))
        with pytest.raises(SinkError, match="in use by another process"):
            await sink.open()
    finally:
        holder.communicate("")


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_sink("x.duckdb?colour=red")
    with pytest.raises(ConfigError, match="batch_rows"):
        make_sink("x.duckdb?batch_rows=0")
    with pytest.raises(ConfigError, match="retain"):
        make_sink("x.duckdb?retain=forever")


@pytest.mark.parametrize("target, path", [
    ("x.duckdb", "x.duckdb"), ("sub/x.duckdb", "sub/x.duckdb"),
    ("/abs/x.duckdb", "/abs/x.duckdb"), ("duckdb:///abs/x.duckdb", "/abs/x.duckdb"),
    ("duckdb:rel/x.duckdb", "rel/x.duckdb"), ("duckdb://rel.duckdb", "rel.duckdb"),
    ("duckdb:", "bustap.duckdb"), ("duckdb::memory:", ":memory:"),
    ("x.duckdb?retain=1d", "x.duckdb"),
])
def test_paths(target: str, path: str) -> None:
    sink = make_sink(target)
    assert isinstance(sink, DuckDBSink) and sink.path == path


async def test_batches_encoded_by_workers_are_staged_as_they_are(tmp_path: Path) -> None:
    from bustap.record import dumps_many

    path = tmp_path / "w.duckdb"
    sink = make_sink(str(path))
    assert isinstance(sink, DuckDBSink)
    await sink.open()
    await sink.write(RecordBatch(records(2)))  # dicts, still pending
    lines = RecordBatch.from_lines(dumps_many(records(3, start=2)), 3, known_keys=True)
    await sink.write(lines)
    assert lines.lines_only  # not parsed back
    await sink.write(RecordBatch.from_lines(dumps_many(records(2, start=5)), 2))  # parsed
    await sink.aclose()
    assert stored(path) == records(7)
