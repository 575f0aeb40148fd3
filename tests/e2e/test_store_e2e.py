"""Capture from real brokers into DuckDB and PostgreSQL, then query, stats,
export and dump from each store: exactly what was published comes back."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from tests.conftest import Bustap, read_records, run_bustap
from tests.fixtures.brokers import Mosquitto, NatsServer

pytestmark = pytest.mark.e2e

PG = "postgresql://127.0.0.1:5432/test"


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "duckdb":
        yield str(tmp_path / "bustap.duckdb")
        return
    import psycopg

    schema = f"bt_{uuid.uuid4().hex[:12]}"
    yield f"{PG}?schema={schema}"
    with psycopg.connect(PG, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def mqtt_publish_lines(port: int, topic: str, lines: list[str]) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-l",
                    "-q", "1"], input="\n".join(lines) + "\n", text=True, check=True,
                   timeout=30, capture_output=True)


async def nats_publish(url: str, items: list[tuple[str, bytes]]) -> None:
    import nats

    nc = await nats.connect(url)
    for subject, data in items:
        await nc.publish(subject, data)
    await nc.flush()
    await nc.close()


def query_json(store: str, *args: str) -> list[dict[str, object]]:
    res = run_bustap("query", "--store", store, "--format", "json", *args)
    assert res.returncode == 0, res.stderr
    return [orjson.loads(line) for line in res.stdout.splitlines() if line.strip()]


def capture(bustap_bg: Callable[..., Bustap], url: str, store: str, n: int, topic: str,
            publish: Callable[[], None], *extra: str, out: str = "out.jsonl") -> Bustap:
    bg = bustap_bg("capture", url, "-t", topic, "-o", store, "-C", str(n), *extra, out=out)
    bg.wait_ready()
    publish()
    assert bg.proc.wait(30) == 0, bg.stderr()
    return bg


def test_mqtt_and_nats_into_store(store: str, mosquitto: Mosquitto, nats_server: NatsServer,
                                  bustap_bg: Callable[..., Bustap], tmp_path: Path) -> None:
    # MQTT: 30 readings on two topics, plus 5 device events
    temps = [orjson.dumps({"v": i, "cpu": {"user": i * 3}}).decode() for i in range(20)]
    hums = [str(i) for i in range(10)]

    def pub_mqtt() -> None:
        mqtt_publish_lines(mosquitto.port, "sensors/a/temp", temps)
        mqtt_publish_lines(mosquitto.port, "sensors/b/hum", hums)

    capture(bustap_bg, mosquitto.url, store, 30, "sensors/#", pub_mqtt, "--qos", "1",
            out="mqtt.jsonl")

    # NATS: 12 messages on three subjects
    items = [(f"hm.agent.{i % 3}", orjson.dumps({"n": i})) for i in range(12)]
    capture(bustap_bg, nats_server.url, store, 12, "hm.>",
            lambda: asyncio.run(nats_publish(nats_server.url, items)), out="nats.jsonl")

    everything = query_json(store, "--kind", "message")
    assert len(everything) == 42
    mqtt = query_json(store, "-t", "sensors/+/temp")
    assert [r["payload"] for r in mqtt] == [orjson.loads(t) for t in temps]
    assert all(r["protocol"] == "mqtt" and r["qos"] == 1 for r in mqtt)
    assert len(query_json(store, "-t", "sensors/#")) == 30
    assert len(query_json(store, "-t", "hm.agent.*")) == 12
    assert len(query_json(store, "-t", "hm.agent.1")) == 4
    assert len(query_json(store, "-t", "hm.>", "--limit", "5")) == 5
    hot = query_json(store, "--where", "payload.cpu.user > 50")
    assert sorted(r["payload"]["v"] for r in hot) == list(range(17, 20))  # type: ignore[index]
    assert len(query_json(store, "--grep", "HM.AGENT.2")) == 4
    assert len(query_json(store, "--since", "1h", "--kind", "message")) == 42
    assert query_json(store, "--until", "2000-01-01") == []
    # lifecycle records are stored too, with their extra fields
    inits = query_json(store, "--event-type", "log_init")
    assert len(inits) == 2

    # the same records as captured to JSON lines (apart from key order)
    captured = [r for r in read_records(tmp_path / "mqtt.jsonl") if r.get("kind") == "message"]
    stored = {(r["writer_id"], r["seq"]): r for r in everything}
    for rec in captured:
        assert stored[(rec["writer_id"], rec["seq"])] == rec

    res = run_bustap("stats", "--store", store, "--by", "topic", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = {r["key"]: r for r in map(orjson.loads, res.stdout.splitlines())}
    assert rows["sensors/a/temp"]["messages"] == 20
    assert rows["sensors/b/hum"]["messages"] == 10
    assert rows["sensors/b/hum"]["bytes"] == sum(len(h) for h in hums)
    assert rows["hm.agent.0"]["messages"] == 4

    res = run_bustap("stats", "--store", store, "--by", "topic", "--every", "1m",
                     "--format", "csv", "--top", "2")
    assert res.returncode == 0, res.stderr
    table = list(csv.DictReader(res.stdout.splitlines()))
    assert {r["key"] for r in table} == {"sensors/a/temp", "sensors/b/hum"}
    assert sum(int(r["messages"]) for r in table) == 30

    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"export.{fmt}"
        res = run_bustap("export", "--store", store, "-t", "sensors/#", "-o", str(out))
        assert res.returncode == 0, res.stderr
        if fmt == "jsonl":
            assert len(out.read_text().splitlines()) == 30
        elif fmt == "csv":
            assert len(list(csv.DictReader(out.read_text().splitlines()))) == 30
        else:
            import duckdb

            n = duckdb.sql(f"SELECT count(*) FROM '{out}' WHERE topic LIKE 'sensors/%'"
                           ).fetchall()
            assert n == [(30,)]
            assert out.read_bytes()[:4] == b"PAR1"

    res = run_bustap("dump", "--store", store)
    assert res.returncode == 0, res.stderr
    dump = [orjson.loads(x) for x in res.stdout.splitlines()]
    assert dump[0]["event_type"] == "dump_init" and dump[-1]["event_type"] == "dump_close"
    topics = {r["topic"]: r for r in dump if r.get("kind") == "topic"}
    assert topics["sensors/a/temp"]["count"] == 20
    assert topics["sensors/a/temp"]["payload"] == orjson.loads(temps[-1])
    assert dump[-1]["entries"] == len(dump) - 2 == 5

    table_out = run_bustap("query", "--store", store, "-t", "sensors/b/hum")
    assert table_out.returncode == 0 and "sensors/b/hum" in table_out.stdout


def test_stats_plot_png(tmp_path: Path, mosquitto: Mosquitto,
                        bustap_bg: Callable[..., Bustap]) -> None:
    store = str(tmp_path / "s.duckdb")

    def pub() -> None:
        for name, n in (("dev1", 6), ("dev2", 3), ("dev3", 1)):
            mqtt_publish_lines(mosquitto.port, f"plant/{name}", [str(i) for i in range(n)])

    capture(bustap_bg, mosquitto.url, store, 10, "plant/#", pub)
    png = tmp_path / "topics.png"
    res = run_bustap("stats", "--store", store, "--by", "topic", "--every", "1m",
                     "--plot", str(png), "--top", "2", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 500)
    keys = {orjson.loads(x)["key"] for x in res.stdout.splitlines()}
    assert keys == {"plant/dev1", "plant/dev2"}

    # the legend names the top series (checked on the figure itself)
    from bustap.store.backend import open_store
    from bustap.store.query import Filters
    from bustap.store.stats import plot, stats

    with open_store(store) as st:
        result = stats(st, Filters(), by="topic", every=60, top=2)
    fig = plot(result, str(tmp_path / "again.png"))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["plant/dev1", "plant/dev2"]
    assert fig.axes[0].get_xlabel() == "time (UTC)"


def test_capture_dump_every(tmp_path: Path, mosquitto: Mosquitto,
                            bustap_bg: Callable[..., Bustap]) -> None:
    bg = bustap_bg("capture", mosquitto.url, "-t", "d/#", "--dump-every", "0.3")
    bg.wait_ready()
    mqtt_publish_lines(mosquitto.port, "d/x", ["1", "2", "3"])
    recs = bg.wait_for(lambda rs: any(r["event_type"] == "dump" and r.get("count") == 3
                                      for r in rs))
    bg.stop()
    close = next(r for r in recs if r["event_type"] == "dump_close")
    assert close["entries"] >= 1 and close["tables"] == 1
    dump = next(r for r in recs if r["event_type"] == "dump" and r.get("count") == 3)
    assert dump["topic"] == "d/x" and dump["payload"] == 3
    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@pytest.mark.parametrize("args, needle", [
    (["stats", "--by", "colour"], "invalid --by 'colour'"),
    (["query", "--since", "last tuesday"], "invalid --since"),
    (["query", "--where", "topic = 'x'; DROP TABLE records"], "invalid --where"),
    (["query", "--where", "1 = 1 or topic = 'x'"], "invalid --where"),
    (["query", "--where", "payload.a.b = 1 union select 1"], "invalid --where"),
    (["query", "--where", "payload.\"a'\" > 1"], "invalid --where"),
    (["stats", "--by", "topic", "--every", "soon"], "invalid --every"),
])
def test_bad_input_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    import duckdb

    store = tmp_path / "empty.duckdb"
    from bustap.store.schema import duckdb_ddl

    duckdb.connect(str(store)).execute(duckdb_ddl()).close()
    res = run_bustap(*args, "--store", str(store))
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr
    assert "Traceback" not in res.stderr
    assert duckdb.connect(str(store)).execute("SELECT count(*) FROM records").fetchone() == (0,)


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    res = run_bustap("query", "--store", str(tmp_path / "nope.duckdb"))
    assert res.returncode == 2
    assert "no store at" in res.stderr
