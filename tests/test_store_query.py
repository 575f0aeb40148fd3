"""Topic filters as regexes, the --where parser, times and severities."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bustap.errors import ConfigError
from bustap.store.backend import DuckDBStore
from bustap.store.query import (
    Filters,
    mqtt_regex,
    nats_regex,
    severity_at_least,
    where_condition,
)
from bustap.store.schema import duckdb_ddl
from bustap.store.timeparse import parse_duration, parse_time
from bustap.topics import is_mqtt_filter_valid, is_nats_subject_valid, mqtt_match, nats_match
from bustap.urls import parse_url

level = st.text(alphabet="ab$+#./()[]*?\\^|é ", min_size=0, max_size=4)
mqtt_filters = st.lists(st.one_of(level, st.sampled_from(["+", "#"])), min_size=1,
                        max_size=4).map("/".join).filter(is_mqtt_filter_valid)
mqtt_topics = st.lists(level.filter(lambda s: "+" not in s and "#" not in s), min_size=1,
                       max_size=5).map("/".join)
token = st.text(alphabet="ab$+#/()[]\\^|é-", min_size=1, max_size=3)
nats_patterns = st.lists(st.one_of(token, st.sampled_from(["*", ">"])), min_size=1,
                         max_size=4).map(".".join).filter(is_nats_subject_valid)
nats_subjects = st.lists(token, min_size=1, max_size=5).map(".".join)


@settings(max_examples=300, deadline=None)
@given(mqtt_filters, mqtt_topics)
def test_mqtt_regex_matches_like_the_matcher(flt: str, topic: str) -> None:
    assert (re.fullmatch(mqtt_regex(flt), topic) is not None) == mqtt_match(flt, topic)


@settings(max_examples=300, deadline=None)
@given(nats_patterns, nats_subjects)
def test_nats_regex_matches_like_the_matcher(pattern: str, subject: str) -> None:
    assert (re.fullmatch(nats_regex(pattern), subject, re.S) is not None) == \
        nats_match(pattern, subject)


@pytest.fixture
def store(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "q.duckdb"
    duckdb.connect(str(path)).execute(duckdb_ddl()).close()
    s = DuckDBStore(parse_url(f"duckdb://{path}"))
    yield s
    s.close()


def test_where_is_parameterised(store: DuckDBStore) -> None:
    sql, params = where_condition(store, "fields.cpu.user > 50 and device = 'vmx4'")
    assert "vmx4" not in sql and "cpu" not in sql
    assert params == ['$."cpu.user"', '$."cpu"."user"', 50, "vmx4"]
    store.execute(f"SELECT count(*) FROM records WHERE {sql}", params)


@pytest.mark.parametrize("expr", [
    "topic = 'a'; DROP TABLE records",
    "topic = 'a' --",
    "1 = 1",
    "topic = 'a' or 1 = 1",
    "nosuch = 1",
    "payload.a.b = 1 union select 1",
    "qos = 'x'",
    "topic",
    "(topic = 'a'",
    "",
    "topic ~",
    "fields.a.b > null",
])
def test_where_rejects(store: DuckDBStore, expr: str) -> None:
    with pytest.raises(ConfigError, match="invalid --where"):
        where_condition(store, expr)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_where_never_crashes(text: str) -> None:
    con = duckdb.connect(":memory:")
    con.execute(duckdb_ddl())
    store = DuckDBStore.__new__(DuckDBStore)
    store.con = con
    store.path = ":memory:"
    try:
        sql, params = where_condition(store, text)
    except ConfigError:
        return
    con.execute(f"SELECT count(*) FROM records WHERE {sql}", params)


def test_where_forms(store: DuckDBStore) -> None:
    for expr in ("not (qos = 1) and retain = true", "payload.x contains 'Up'",
                 "fields.name exists", "topic ~ '^a/'", "severity != null",
                 "extra.port >= 1883 or headers.x = \"y\""):
        sql, params = where_condition(store, expr)
        store.execute(f"SELECT count(*) FROM records WHERE {sql}", params)


def test_filters_sql(store: DuckDBStore) -> None:
    f = Filters(topics=["a/+/c", "hm.>", "exact"], severity="warning", devices=["r1"],
                grep="x'y", since=datetime(2024, 1, 1))
    sql, params = f.sql(store)
    assert "x'y" not in sql
    store.execute(f"SELECT count(*) FROM records WHERE {sql}", params)
    assert Filters().sql(store) == ("TRUE", [])


def test_severity_and_times() -> None:
    assert severity_at_least("warning") == ["emerg", "alert", "crit", "error", "warning"]
    assert severity_at_least("emerg") == ["emerg"]
    with pytest.raises(ConfigError):
        severity_at_least("loud")
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2d") == timedelta(days=2)
    now = datetime(2024, 5, 2, 12, 0)
    assert parse_time("1h", now=now) == datetime(2024, 5, 2, 11, 0)
    assert parse_time("yesterday", now=now) == datetime(2024, 5, 1)
    assert parse_time("2024-05-01T10:00:00+02:00") == datetime(2024, 5, 1, 8, 0)
    assert parse_time("2024-05-01") == datetime(2024, 5, 1)
    for bad in ("soon", "-1h", "0s", "1 fortnight", ""):
        with pytest.raises(ConfigError):
            parse_time(bad) if bad != "0s" else parse_duration(bad)
