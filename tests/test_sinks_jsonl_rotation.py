"""JSON lines files rotating by size and time, gzip, keep."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import orjson
import pytest
from tests.test_sinks_duckdb import records

from bustap.errors import ConfigError
from bustap.sinks import RecordBatch, make_sink
from bustap.sinks.jsonl import JsonlFileSink


def lines_of(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.splitlines()


async def test_rotates_by_size_with_whole_batches(tmp_path: Path) -> None:
    sink = make_sink(f"{tmp_path}/log/msg.jsonl?max_bytes=2k")
    await sink.open()
    for i in range(20):
        await sink.write(RecordBatch(records(3, start=i * 3)))
    await sink.aclose()
    files = sorted((tmp_path / "log").iterdir())
    assert len(files) > 3
    seqs = []
    for f in files:  # rotated (oldest first), then the current msg.jsonl
        assert f.stat().st_size <= 2000
        seqs += [orjson.loads(line)["seq"] for line in lines_of(f)]
    assert seqs == list(range(60))


async def test_rotates_by_time_gzip_and_keep(tmp_path: Path) -> None:
    sink = make_sink(f"{tmp_path}/m.jsonl?every=1s&gzip=1&keep=2")
    assert isinstance(sink, JsonlFileSink)
    await sink.open()
    for i in range(4):
        await sink.write(RecordBatch(records(2, start=i * 2)))
        sink._opened_at -= 2  # as if a second had passed
    await sink.aclose()
    rotated = sorted(p for p in tmp_path.iterdir() if p.name != "m.jsonl")
    assert len(rotated) == 2 and all(p.name.endswith(".jsonl.gz") for p in rotated)
    assert [orjson.loads(x)["seq"] for x in lines_of(rotated[-1])] == [4, 5]
    assert [orjson.loads(x)["seq"] for x in lines_of(tmp_path / "m.jsonl")] == [6, 7]


def test_bad_rotation_options() -> None:
    with pytest.raises(ConfigError, match="max_bytes"):
        make_sink("x.jsonl?max_bytes=lots")
    with pytest.raises(ConfigError, match="every"):
        make_sink("x.jsonl?every=often")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_sink("x.jsonl?size=1")


def test_plain_file_still_appends(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"

    async def go() -> None:
        for start in (0, 2):
            sink = make_sink(str(path))
            await sink.open()
            await sink.write(RecordBatch(records(2, start=start)))
            await sink.aclose()

    asyncio.run(go())
    assert [orjson.loads(x)["seq"] for x in path.read_bytes().splitlines()] == [0, 1, 2, 3]
