"""Store throughput: load N records into DuckDB, PostgreSQL and (the
baseline) a plain SQLite table, then time ``stats --by topic --every 1m``
over all of them.

DuckDB and PostgreSQL are loaded through bustap's own sinks (the path
``capture -o`` takes); SQLite through ``executemany`` of the same columns
in one transaction per batch, the usual way a Python tool stores rows.
Records are generated in chunks (constant memory whatever N): 50 topics,
one message per millisecond, JSON payloads like a sensor's.

    python -m bench.store --n 10000000
    python -m bench.store --n 200000 --no-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bustap.record import Clock, Record
from bustap.sinks import RecordBatch, make_sink
from bustap.store.query import Filters
from bustap.store.schema import COLUMNS, safe_row

PG = os.environ.get("BUSTAP_BENCH_PG", "postgresql://127.0.0.1:5432/test")
CHUNK = 50_000
BATCH = 1_000  # records per pipeline batch handed to a sink
T0 = 1_700_000_000.0


def chunks(n: int) -> Iterator[list[Record]]:
    clock = Clock()
    for start in range(0, n, CHUNK):
        out = []
        for i in range(start, min(n, start + CHUNK)):
            out.append({"seq": i, "writer_id": "bustap/bench", "timestamp": clock.format(
                T0 + i * 0.001), "event_type": "log", "source": "mqtt://127.0.0.1:1883",
                "kind": "message", "protocol": "mqtt", "topic": f"site/{i % 50}/temp",
                "qos": 0, "retain": False, "dup": False, "size": 24, "format": "json",
                "payload": {"v": i % 1000, "cpu": {"user": i % 100}}, "decoder": "json"})
        yield out


async def _load_sink(target: str, n: int) -> float:
    """Seconds spent in the sink's calls (making the records is not counted;
    the sink's writer thread may go on while they are made, as in capture)."""
    sink = make_sink(target)
    await sink.open()
    spent = 0.0
    for chunk in chunks(n):
        started = time.perf_counter()
        for i in range(0, len(chunk), BATCH):
            await sink.write(RecordBatch(chunk[i:i + BATCH]))
        spent += time.perf_counter() - started
    started = time.perf_counter()
    await sink.aclose()  # everything committed
    return spent + time.perf_counter() - started


def _stats_time(target: str) -> tuple[float, int]:
    from bustap.store.backend import open_store
    from bustap.store.stats import stats

    with open_store(target) as store:
        started = time.perf_counter()
        result = stats(store, Filters(), by="topic", every=60, top=10)
        return time.perf_counter() - started, len(result.rows)


def bench_duckdb(n: int, work: Path) -> dict[str, Any]:
    path = work / "bench.duckdb"
    secs = asyncio.run(_load_sink(str(path), n))
    q, rows = _stats_time(str(path))
    return {"case": "duckdb (bustap sink)", "records": n, "insert_per_sec": round(n / secs),
            "stats_1m_secs": round(q, 3), "buckets": rows,
            "size_mb": round(path.stat().st_size / 1e6, 1)}


def bench_postgres(n: int) -> dict[str, Any]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    target = f"{PG}?schema={schema}"
    try:
        secs = asyncio.run(_load_sink(target, n))
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f"ANALYZE {schema}.records")
        q, rows = _stats_time(target)
    finally:
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return {"case": "postgresql (bustap sink, COPY)", "records": n,
            "insert_per_sec": round(n / secs), "stats_1m_secs": round(q, 3), "buckets": rows}


def bench_sqlite(n: int, work: Path) -> dict[str, Any]:
    path = work / "bench.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    cols = [c.name for c in COLUMNS]
    con.execute(f"CREATE TABLE records ({', '.join(cols)})")
    con.execute("CREATE INDEX records_ts ON records (ts)")
    sql = f"INSERT INTO records VALUES ({', '.join('?' for _ in cols)})"
    secs = 0.0
    for chunk in chunks(n):
        started = time.perf_counter()
        for i in range(0, len(chunk), BATCH):
            rows = [safe_row(r) for r in chunk[i:i + BATCH]]
            with con:
                con.executemany(sql, [(r[0].isoformat(), *r[1:]) for r in rows])
        secs += time.perf_counter() - started
    started = time.perf_counter()
    top = ("SELECT topic FROM records WHERE event_type = 'log' AND topic IS NOT NULL "
           "GROUP BY topic ORDER BY count(*) DESC, topic LIMIT 10")
    result = con.execute(
        "SELECT CAST(unixepoch(ts) / 60 AS INTEGER) * 60 AS bucket, topic, count(*), "
        "sum(CASE WHEN kind = 'message' THEN size ELSE 0 END) FROM records "
        f"WHERE event_type = 'log' AND topic IN ({top}) GROUP BY 1, 2 ORDER BY 1, 3 DESC"
    ).fetchall()
    q = time.perf_counter() - started
    con.close()
    return {"case": "sqlite (baseline, executemany)", "records": n,
            "insert_per_sec": round(n / secs), "stats_1m_secs": round(q, 3),
            "buckets": len(result), "size_mb": round(path.stat().st_size / 1e6, 1)}


def run(n: int = 10_000_000, *, postgres: bool = True, sqlite: bool = True
        ) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bustap-bench-store-") as tmp:
        work = Path(tmp)
        rows.append(bench_duckdb(n, work))
        if postgres:
            rows.append(bench_postgres(n))
        if sqlite:
            rows.append(bench_sqlite(n, work))
    base = next((r for r in rows if r["case"].startswith("sqlite")), None)
    if base:
        for r in rows:
            r["insert_vs_sqlite"] = round(r["insert_per_sec"] / base["insert_per_sec"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="records to load")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    from bench.report import print_table

    rows = run(args.n, postgres=not args.no_postgres, sqlite=not args.no_sqlite)
    print_table("store", rows)  # python -m bench saves every section together


if __name__ == "__main__":
    main()
