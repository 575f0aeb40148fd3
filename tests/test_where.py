"""The condition language shared by ``query --where`` and alert rules: what
it accepts, what it refuses, and that a rule on a live record means what the
same text means as a query on the store (checked against DuckDB itself)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bustap import where
from bustap.errors import ConfigError
from bustap.store.backend import DuckDBStore
from bustap.store.query import where_condition
from bustap.store.schema import TABLE, duckdb_ddl, safe_row
from bustap.urls import parse_url

HEARTBEAT = {"seq": 1, "timestamp": "2026-12-01T10:00:00.000000Z", "event_type": "log",
             "kind": "message", "topic": "hm.agent.heartbeat.a1", "qos": 0,
             "decoder": "bosh-heartbeat", "device": "a1",
             "fields": {"disk.persistent.percent": 95, "cpu.user": 60.5, "job": "redis"},
             "payload": {"vitals": {"cpu": {"user": "60.5"}}, "ok": True, "list": [1, 2]}}


def m(text: str, rec: dict[str, Any]) -> bool:
    return where.parse(text).match(rec)


def test_flat_fields_are_found_by_their_dotted_key() -> None:
    assert m("decoder = 'bosh-heartbeat' and fields.disk.persistent.percent > 90", HEARTBEAT)
    assert m("fields.cpu.user > 50", HEARTBEAT)
    assert not m("fields.cpu.user > 70", HEARTBEAT)
    assert m("payload.vitals.cpu.user > 50", HEARTBEAT)  # nested, and a numeric string
    assert m("payload.list.1 = 2", HEARTBEAT)


def test_missing_values_are_unknown_as_in_sql() -> None:
    assert not m("fields.nothing > 5", HEARTBEAT)
    assert not m("not fields.nothing > 5", HEARTBEAT)  # unknown stays unknown
    assert m("fields.nothing = null", HEARTBEAT)
    assert not m("fields.nothing != 'x'", HEARTBEAT)
    assert m("fields.nothing > 5 or device = a1", HEARTBEAT)
    assert not m("fields.nothing > 5 and device = a1", HEARTBEAT)
    assert m("fields.job exists and not fields.nothing exists", HEARTBEAT)


def test_operators() -> None:
    assert m("topic ~ '^hm\\.agent\\.heartbeat\\.'", HEARTBEAT)
    assert m("fields.job contains 'RED'", HEARTBEAT)
    assert m("payload.ok = true", HEARTBEAT)
    assert m("qos = 0 and qos <= 1 and qos >= 0 and qos != 2 and qos < 1", HEARTBEAT)
    assert m("device = a1 and (event = x or topic contains heartbeat)", HEARTBEAT)
    assert m("extra.nothing = null", HEARTBEAT)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("nosuch = 1", "unknown field"),
    ("topic ==", "unexpected end"),
    ("topic = 'x' and", "unexpected end"),
    ("topic ! 'x'", "unexpected"),
    ("qos = 'high'", "is a number"),
    ("topic > null", "null only"),
    ("topic ~ '('", "bad regular expression"),
    ("fields.a..b = 1", "unexpected"),
    ("(" * 30 + "qos = 1" + ")" * 30, "nested too deep"),
    ("qos = 1 " + "and qos = 1 " * 300, "longer than"),
    ("__import__('os') = 1", "unknown field"),
])
def test_bad_conditions_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        where.parse(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*"abqos .=<>!~()'\"0123456789-_\\", " and ", " or ",
                                 "not ", " exists", " contains ", "fields.", "topic", "qos",
                                 "null", "true", "é"]), max_size=30).map("".join))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        node = where.parse(text)
    except ConfigError:
        return
    node.match(HEARTBEAT)  # never raises


# --- one meaning: Python evaluation == DuckDB's answer ---------------------------

RECORDS: list[dict[str, Any]] = [
    HEARTBEAT,
    {"seq": 2, "timestamp": "2026-12-01T10:00:01.000000Z", "event_type": "log",
     "kind": "broker_event", "broker": "mosquitto", "event": "auth_failed",
     "address": "10.0.0.5", "username": "admin", "reason": "not authorised", "rc": 5},
    {"seq": 3, "timestamp": "2026-12-01T10:00:02.000000Z", "event_type": "log",
     "kind": "message", "topic": "sensors/t1", "qos": 1, "retain": True,
     "fields": {"value": "12", "flag": False}, "payload": 12.5},
    {"seq": 4, "timestamp": "2026-12-01T10:00:03.000000Z", "event_type": "log",
     "kind": "message", "topic": "sensors/t2", "qos": 2, "device": "t2",
     "fields": {"value": -3, "name": "Ünïcode"}, "payload": {"value": None, "s": "x y"}},
    {"seq": 5, "timestamp": "2026-12-01T10:00:04.000000Z", "event_type": "log",
     "kind": "message", "topic": "a", "fields": {}},
]

paths = st.sampled_from(["topic", "qos", "device", "event", "username", "retain", "kind",
                         "fields.value", "fields.flag", "fields.name", "fields.cpu.user",
                         "fields.disk.persistent.percent", "payload.value", "payload.s",
                         "payload.vitals.cpu.user", "extra.reason", "extra.rc", "payload"])
values = st.one_of(st.integers(-5, 100), st.sampled_from([12.5, 60.5, 0.0]),
                   st.sampled_from(["'12'", "'a1'", "'x y'", "'sensors/t1'", "'admin'",
                                    "true", "false", "null", "'Ünïcode'", "'not authorised'"]))
ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "contains", "~"])


@st.composite
def conditions(draw: Any, depth: int = 0) -> str:
    if depth < 2 and draw(st.booleans()):
        left, right = draw(conditions(depth + 1)), draw(conditions(depth + 1))
        joined = f"({left} {draw(st.sampled_from(['and', 'or']))} {right})"
        return f"not {joined}" if draw(st.booleans()) else joined
    path = draw(paths)
    if draw(st.integers(0, 9)) == 0:
        return f"{path} exists"
    op = draw(ops)
    value = draw(values)
    if op in ("contains", "~"):
        value = draw(st.sampled_from(["'1'", "'sens'", "'^a'", "'x'", "'ü'"]))
    return f"{path} {op} {value}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    path = Path(tmp_path_factory.mktemp("where")) / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute(duckdb_ddl())
    rows = [safe_row(r) for r in RECORDS]
    con.executemany(f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    con.close()
    s = DuckDBStore(parse_url(f"duckdb://{path}"))
    yield s
    s.close()


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(conditions())
def test_a_rule_means_what_the_query_means(store: DuckDBStore, text: str) -> None:
    try:
        node = where.parse(text)
    except ConfigError:
        return
    sql, params = where_condition(store, text)
    try:
        _, rows = store.execute(f"SELECT seq FROM {TABLE} WHERE {sql} ORDER BY seq", params)
    except duckdb.Error:
        return  # a comparison DuckDB itself refuses (a type it cannot cast) matches nothing
    in_sql = [r[0] for r in rows]
    in_python = [r["seq"] for r in RECORDS if node.match(r)]
    assert in_python == in_sql, text
