"""The PostgreSQL sink against the running server: COPY, schema, a server
connection that goes away, and no secrets in errors."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.fixtures.postgres import Postgres
from tests.test_sinks_duckdb import records

from bustap.errors import ConfigError, SinkError
from bustap.sinks import RecordBatch, make_sink
from bustap.sinks.postgres import PostgresSink
from bustap.spool import Spool
from bustap.store.backend import open_store
from bustap.store.query import Filters
from bustap.store.search import search

PG = "postgresql://127.0.0.1:5432/test"


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"bt_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(PG, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


async def test_copy_and_read_back(schema: str) -> None:
    sink = make_sink(f"{PG}?schema={schema}")
    await sink.open()
    recs = records(50)
    odd = {"seq": 50, "writer_id": "bustap/t", "timestamp": "2023-11-15T00:00:00Z",
           "event_type": "log", "kind": "broker_event", "event": "client_connected",
           "client_id": "c1", "port": 1883, "qos": "x", "payload": "nul \x00 inside",
           "fields": {"s": "\x00"}}
    await sink.write(RecordBatch([*recs, odd]))
    await sink.flush()
    await sink.aclose()
    with open_store(f"{PG}?schema={schema}") as store:
        back = search(store, Filters())
    assert back[:50] == recs
    assert back[50]["port"] == 1883 and back[50]["qos"] == "x"
    assert back[50]["client_id"] == "c1"
    assert back[50]["fields"] == {"s": "\ufffd"}


async def test_server_going_away_is_a_clear_error(schema: str) -> None:
    secret = "s3cr3t-pw"
    url = f"postgresql://root:{secret}@127.0.0.1:5432/test?schema={schema}"
    sink = make_sink(url)
    assert isinstance(sink, PostgresSink)
    await sink.open()
    await sink.write(RecordBatch(records(3)))
    await sink.flush()
    pid = sink.con.info.backend_pid
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    await sink.write(RecordBatch(records(3, start=3)))
    with pytest.raises(SinkError) as err:
        await sink.flush()
    assert secret not in str(err.value)
    assert len(err.value.records) == 3  # type: ignore[attr-defined]
    await sink.write(RecordBatch(records(2, start=6)))  # reconnects
    await sink.aclose()
    with open_store(f"{PG}?schema={schema}") as store:
        assert [r["seq"] for r in search(store, Filters())] == [0, 1, 2, 6, 7]


async def test_server_stopping_under_a_batch_of_several_chunks_loses_none(
        postgres_server: Postgres, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The chunk that failed and the chunks behind it, still in the sink's
    buffer, all go to the spool: none is dropped when the spool's retry meets
    the sink's next error, none is inserted ahead of the spooled ones. The
    sink says once that the server went away, in one line, not at every retry."""
    sink = make_sink(postgres_server.url(batch_rows="10"))
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=0.05, backoff_max_secs=0.1)
    await spool.open()
    await spool.write(RecordBatch(records(5)))
    postgres_server.stop()
    await spool.write(RecordBatch(records(50, start=5)))
    await asyncio.sleep(0.5)  # the spool retries while it is down
    postgres_server.start()
    await spool.write(RecordBatch(records(5, start=55)))
    await spool.aclose()
    with postgres_server.connect() as con:
        rows = con.execute("SELECT seq FROM records ORDER BY xmin::text::bigint, ctid")
        assert [r[0] for r in rows] == list(range(60))
    assert not spool.path.exists()
    errors = [r.getMessage() for r in caplog.records
              if r.name == "bustap.sinks" and r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert postgres_server.password not in caplog.text


async def test_batch_over_max_rows_into_a_stopped_server_is_spooled_once(
        postgres_server: Postgres, tmp_path: Path) -> None:
    """write() waits for room in the buffer once it took the batch: the error
    it meets there is raised by the flush, so the spool keeps the batch once."""
    sink = make_sink(postgres_server.url(batch_rows="10", max_rows="10"))
    spool = Spool(sink, directory=tmp_path, backoff_initial_secs=0.05, backoff_max_secs=0.1)
    await spool.open()
    postgres_server.stop()
    await spool.write(RecordBatch(records(30)))
    postgres_server.start()
    await spool.aclose()
    with postgres_server.connect() as con:
        rows = con.execute("SELECT seq FROM records ORDER BY xmin::text::bigint, ctid")
        assert [r[0] for r in rows] == list(range(30))


async def test_unreachable_server_hides_the_password(tmp_path: Path) -> None:
    from tests.fixtures.brokers import free_port

    sink = make_sink(f"postgresql://bob:hunter2@127.0.0.1:{free_port()}/db")
    with pytest.raises(SinkError) as err:
        await sink.open()
    assert "hunter2" not in str(err.value)
    assert "127.0.0.1" in str(err.value) and "\n" not in str(err.value)


def test_bad_schema_name() -> None:
    with pytest.raises(ConfigError, match="invalid schema"):
        make_sink(f"{PG}?schema=x;drop")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_sink(f"{PG}?colour=red")


async def test_query_follow_sees_new_records(schema: str, tmp_path: Path) -> None:
    import asyncio
    import subprocess
    import sys

    url = f"{PG}?schema={schema}"
    sink = make_sink(url)
    await sink.open()
    await sink.write(RecordBatch(records(2)))
    await sink.flush()
    out = tmp_path / "follow.jsonl"
    with out.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "bustap.cli", "query", "--store", url,
                                 "--format", "json", "--follow", "--interval", "0.2"],
                                stdout=fh, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if len(out.read_bytes().splitlines()) >= 2:
                    break
                await asyncio.sleep(0.1)
            await sink.write(RecordBatch(records(3, start=2)))
            await sink.flush()
            for _ in range(100):
                if len(out.read_bytes().splitlines()) >= 5:
                    break
                await asyncio.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(10)
            await sink.aclose()
    import orjson

    assert [orjson.loads(x)["seq"] for x in out.read_bytes().splitlines()] == [0, 1, 2, 3, 4]
