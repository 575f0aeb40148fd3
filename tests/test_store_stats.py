"""``stats --by client`` names NATS clients by their connection name."""

from __future__ import annotations

from pathlib import Path

import duckdb

from bustap.store.backend import DuckDBStore
from bustap.store.query import Filters
from bustap.store.schema import TABLE, duckdb_ddl, safe_row
from bustap.store.stats import stats
from bustap.urls import parse_url


def test_nats_clients_by_their_connection_name(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    recs = [{"seq": i, "timestamp": "2026-12-01T10:00:00.000000Z", "event_type": "log",
             "kind": "broker_event", "broker": "nats", "event": "publish_in",
             "client_id": "cid:7", **({"name": "agent-1"} if i else {})} for i in range(3)]
    recs.append({"seq": 9, "timestamp": "2026-12-01T10:00:00.000000Z", "event_type": "log",
                 "kind": "broker_event", "broker": "mosquitto", "event": "publish_in",
                 "client_id": "sensor-hub"})
    con = duckdb.connect(str(path))
    con.execute(duckdb_ddl())
    rows = [safe_row(r) for r in recs]
    con.executemany(f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    con.close()
    with DuckDBStore(parse_url(f"duckdb://{path}")) as store:
        result = stats(store, Filters(), by="client", order="publish")
    got = {row[0]: row[result.names.index("publish")] for row in result.rows}
    assert got == {"agent-1": 2, "cid:7": 1, "sensor-hub": 1}
