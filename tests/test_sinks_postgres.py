"""The PostgreSQL sink against the running server: COPY, schema, a server
connection that goes away, and no secrets in errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.test_sinks_duckdb import records

from bustap.errors import ConfigError, SinkError
from bustap.sinks import RecordBatch, make_sink
from bustap.sinks.postgres import PostgresSink
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


async def test_unreachable_server_hides_the_password(tmp_path: Path) -> None:
    from tests.fixtures.brokers import free_port

    sink = make_sink(f"postgresql://bob:hunter2@127.0.0.1:{free_port()}/db")
    with pytest.raises(SinkError) as err:
        await sink.open()
    assert "hunter2" not in str(err.value)
    assert "127.0.0.1" in str(err.value)


def test_bad_schema_name() -> None:
    with pytest.raises(ConfigError, match="invalid schema"):
        make_sink(f"{PG}?schema=x;drop")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_sink(f"{PG}?colour=red")
