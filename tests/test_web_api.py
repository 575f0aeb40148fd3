"""The dashboard's HTTP API over a real DuckDB store (FastAPI's TestClient):
every endpoint, the token (401 without it, Bearer, ?token= then the
cookie), /metrics with and without a pipeline, and the bind rules."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

with warnings.catch_warnings():
    # starlette 1.x would rather use httpx2; httpx is what bustap depends on
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from bustap import config
from bustap.errors import ConfigError
from bustap.pipeline import Pipeline
from bustap.sinks import RecordBatch, make_sink
from bustap.store.backend import open_store
from bustap.store.schema import COLUMN_NAMES, duckdb_ddl, safe_row
from bustap.web import check_bind, parse_bind
from bustap.web.app import COOKIE, WebState, create_app
from bustap.web.metrics import OTHER, TopicCounter

NOW = datetime.now(UTC).replace(tzinfo=None)
W = "bustap/test"


def ts(secs_ago: float) -> str:
    return (NOW - timedelta(seconds=secs_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seq = 0

    def add(**rec: Any) -> int:
        nonlocal seq
        rec.setdefault("event_type", "log")
        out.append({"seq": seq, "writer_id": W, **rec})
        seq += 1
        return seq - 1

    for i in range(30):
        add(timestamp=ts(30 - i), source="mqtt://127.0.0.1:1883", kind="message",
            protocol="mqtt", topic=f"sensors/room{i % 2}/temp", qos=0, retain=i % 2 == 0,
            size=12, format="json", payload={"temp": 20 + i})
        add(timestamp=ts(30 - i), source="nats://127.0.0.1:4222", kind="message",
            protocol="nats", topic="hm.agent.heartbeat.a1", size=8, format="json",
            payload=i, device="a1")
    add(timestamp=ts(40), source="nats-monitor://127.0.0.1:8222", kind="broker_event",
        broker="nats", event="client_connected", client_id="cid:7", address="127.0.0.1",
        name="edge-agent-1")
    bad = [add(timestamp=ts(20 - i), source="file:///var/log/mosquitto.log",
               kind="broker_event", broker="mosquitto", event="auth_failed",
               client_id=f"guess{i}", address="10.0.0.9", username="alice") for i in range(3)]
    add(timestamp=ts(5), source="file:///var/log/mosquitto.log", event_type="alert",
        rule="auth_failure_burst", severity="warning", summary="3 failed logins from 10.0.0.9",
        subject="10.0.0.9", group={"address": "10.0.0.9"}, evidence=bad, count=3,
        first_seen=ts(20), last_seen=ts(18), state="firing", alert_id="a1b2")
    add(timestamp=ts(4), source="x", event_type="alert", rule="too_hot", severity="info",
        summary="hot", subject="room1", evidence=[], count=1, first_seen=ts(9),
        last_seen=ts(9), state="resolved", alert_id="c3d4")
    return out


PG = "postgresql://127.0.0.1:5432/test"


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def store_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    """The same records in a DuckDB file and in a PostgreSQL schema (the
    local server the other store tests use), written by the sink."""
    if request.param == "duckdb":
        path = tmp_path_factory.mktemp("web") / "s.duckdb"
        con = duckdb.connect(str(path))
        con.execute(duckdb_ddl())
        con.executemany(f"INSERT INTO records ({', '.join(COLUMN_NAMES)}) VALUES "
                        f"({', '.join('?' for _ in COLUMN_NAMES)})",
                        [safe_row(r) for r in records()])
        con.close()
        yield str(path)
        return
    import psycopg
    schema = f"bt_web_{uuid.uuid4().hex[:10]}"
    target = f"{PG}?schema={schema}"

    async def fill() -> None:
        sink = make_sink(target)
        await sink.open()
        await sink.write(RecordBatch(records()))
        await sink.flush()
        await sink.aclose()

    asyncio.run(fill())  # make test starts PostgreSQL: never skipped
    yield target
    with psycopg.connect(PG, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def client(store_path: str, token: str | None = None, **kw: Any) -> TestClient:
    state = WebState(open_store=lambda: open_store(store_path), store_name=store_path,
                     token=token, **kw)
    return TestClient(create_app(state))


@pytest.fixture
def api(store_path: str) -> Iterator[TestClient]:
    with client(store_path) as c:
        yield c


def test_page_and_assets_are_served_by_bustap(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for src in ("static/plotly.min.js", "static/app.js", "static/style.css"):
        assert src in page.text
        r = api.get("/" + src)
        assert r.status_code == 200, src
    assert "plotly" in api.get("/static/plotly.min.js").text[:2000].lower()
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert api.get("/static/../app.py").status_code == 404
    assert api.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_openapi_lists_every_endpoint(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths) >= {"/api/health", "/api/overview", "/api/topics", "/api/topic",
                          "/api/timeline", "/api/events", "/api/alerts",
                          "/api/alerts/{alert_id}", "/api/search", "/api/stream"}


def test_overview_rates_clients_and_alerts(api: TestClient) -> None:
    o = api.get("/api/overview").json()
    # the store holds 39 s of records (40 s ago to 1 s ago): the window is those 39 s
    assert o["window_secs"] == pytest.approx(39, abs=0.1)
    assert o["msgs_per_sec"] == pytest.approx(60 / 39, abs=0.01)
    by = {s["source"]: s for s in o["sources"]}
    assert by["mqtt://127.0.0.1:1883"]["msgs_per_sec"] == pytest.approx(30 / 39, abs=0.01)
    assert by["mqtt://127.0.0.1:1883"]["bytes_per_sec"] > 0
    assert o["firing"] == 1
    assert o["clients"] == 1  # edge-agent-1 connected, never disconnected
    assert o["totals"]["messages"] == 60
    assert set(o["series"]["messages"]) == {"mqtt://127.0.0.1:1883", "nats://127.0.0.1:4222"}
    assert "pipeline" not in o


def test_topics_with_last_values(api: TestClient) -> None:
    t = {x["topic"]: x for x in api.get("/api/topics").json()["topics"]}
    assert set(t) == {"sensors/room0/temp", "sensors/room1/temp", "hm.agent.heartbeat.a1"}
    assert t["sensors/room1/temp"]["last"]["payload"] == {"temp": 49}
    assert t["sensors/room0/temp"]["retained"] is True
    assert t["hm.agent.heartbeat.a1"]["count"] == 30
    assert t["hm.agent.heartbeat.a1"]["protocol"] == "nats"


def test_topic_history_and_last_messages(api: TestClient) -> None:
    d = api.get("/api/topic", params={"name": "sensors/room1/temp", "limit": 5}).json()
    assert d["values"]["temp"]["y"][-1] == 49
    assert len(d["values"]["temp"]["x"]) == 15
    assert sum(d["counts"]["y"]) == 15
    assert [m["payload"]["temp"] for m in d["messages"]] == [49, 47, 45, 43, 41]
    d = api.get("/api/topic", params={"name": "hm.agent.heartbeat.a1"}).json()
    assert d["values"]["value"]["y"][-1] == 29  # a number payload is its own value
    assert api.get("/api/topic").status_code == 422


def test_timeline_groups_and_names_nats_clients(api: TestClient) -> None:
    r = api.get("/api/timeline", params={"by": "topic", "metric": "messages"}).json()
    assert sum(r["series"]["hm.agent.heartbeat.a1"]["y"]) == 30
    r = api.get("/api/timeline", params={"by": "client", "metric": "connections",
                                         "since": "1h"}).json()
    assert list(r["series"]) == ["edge-agent-1"]
    assert api.get("/api/timeline", params={"by": "nope"}).status_code == 400


def test_events_per_client_by_connection_name(api: TestClient) -> None:
    r = api.get("/api/events").json()
    assert r["events"][0]["event"] == "auth_failed"
    clients = {c["client"]: c for c in r["clients"]}
    assert clients["edge-agent-1"]["connections"] == 1
    assert clients["guess0"]["auth_failures"] == 1
    assert clients["guess0"]["address"] == "10.0.0.9"


def test_alerts_and_their_evidence(api: TestClient) -> None:
    all_ = api.get("/api/alerts").json()
    assert [a["rule"] for a in all_] == ["too_hot", "auth_failure_burst"]
    firing = api.get("/api/alerts", params={"state": "firing"}).json()
    assert [a["alert_id"] for a in firing] == ["a1b2"]
    ev = api.get("/api/alerts/a1b2").json()
    assert [r["client_id"] for r in ev["records"]] == ["guess0", "guess1", "guess2"]
    assert api.get("/api/alerts/nope").status_code == 404
    assert api.get("/api/alerts", params={"state": "bad"}).status_code == 422


def test_search_with_query_filters(api: TestClient) -> None:
    r = api.get("/api/search", params={"topic": "sensors/+/temp", "limit": 3}).json()
    assert [x["payload"]["temp"] for x in r] == [47, 48, 49]
    r = api.get("/api/search", params={"where": "payload.temp > 47", "kind": "message"}).json()
    assert [x["payload"]["temp"] for x in r] == [48, 49]
    r = api.get("/api/search", params={"event": "auth_failed", "client": "guess1"}).json()
    assert len(r) == 1
    r = api.get("/api/search", params={"event_type": "alert", "grep": "failed logins"}).json()
    assert [x["rule"] for x in r] == ["auth_failure_burst"]
    bad = api.get("/api/search", params={"where": "payload.temp >"})
    assert bad.status_code == 400 and "error" in bad.json()
    assert api.get("/api/search", params={"since": "yesterdayish"}).status_code == 400


def test_health_and_metrics_from_the_store(api: TestClient) -> None:
    assert api.get("/api/health").json()["as_of"].startswith(str(NOW.year))
    text = api.get("/metrics").text
    assert 'bustap_store_messages{source="mqtt://127.0.0.1:1883"} 30.0' in text
    assert 'bustap_store_topic_messages{topic="hm.agent.heartbeat.a1"} 30.0' in text
    assert 'bustap_alerts{rule="auth_failure_burst",state="firing"} 1.0' in text
    assert "bustap_store_up 1.0" in text


def test_metrics_of_a_pipeline_and_topic_cardinality(store_path: str) -> None:
    pipeline = Pipeline([], [])
    pipeline.counters.received = 7
    pipeline.counters.dropped["queue_full"] = 2
    pipeline.counters.per_source["mqtt://h"] = 7
    topics = TopicCounter(max_topics=2)
    topics([{"kind": "message", "topic": f"t/{i}", "size": 3} for i in range(5)])
    with client(store_path, pipeline=pipeline, topics=topics) as c:
        text = c.get("/metrics").text
        assert "bustap_received_total 7.0" in text
        assert 'bustap_dropped_total{reason="queue_full"} 2.0' in text
        assert 'bustap_source_messages_total{source="mqtt://h"} 7.0' in text
        assert "bustap_queue_depth 0.0" in text
        assert 'bustap_topic_messages_total{topic="t/0"} 1.0' in text
        assert f'bustap_topic_messages_total{{topic="{OTHER}"}} 3.0' in text
        assert "bustap_store_topic_messages" not in text  # live counters instead
        assert c.get("/api/overview").json()["pipeline"]["received"] == 7


def test_token_required_everywhere(store_path: str) -> None:
    with client(store_path, token="s3cret") as c:
        for path in ("/", "/api/overview", "/api/search", "/metrics", "/openapi.json",
                     "/static/app.js", "/api/stream"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer"
            assert "s3cret" not in r.text
        assert c.get("/api/overview", headers={"Authorization": "Bearer wrong"}
                     ).status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/?token=wrong").status_code == 401


def test_token_in_the_url_once_then_an_httponly_cookie(store_path: str) -> None:
    with client(store_path, token="s3cret") as c:
        r = c.get("/?token=s3cret&live=0", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/?live=0"  # the token leaves the address bar
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        assert "s3cret" not in cookie
        assert c.get("/").status_code == 200  # the client kept the cookie
        assert c.get("/api/topics").status_code == 200


def test_missing_store_is_503_not_a_crash(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.duckdb")
    with client(missing) as c:
        r = c.get("/api/overview")
        assert r.status_code == 503 and "no store" in r.json()["error"]
        assert "bustap_store_up 0.0" in c.get("/metrics").text


def test_bind_rules() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    assert parse_bind(":8080") == ("127.0.0.1", 8080)
    assert check_bind("localhost:1", None) == ("localhost", 1)
    for bind in ("0.0.0.0:8080", "192.168.1.2:80", "dashboard.example:80", "[::]:80"):
        with pytest.raises(ConfigError, match="needs a token"):
            check_bind(bind, None)
        check_bind(bind, "t")
    for bad in ("8080", "host:x", "h:70000"):
        with pytest.raises(ConfigError):
            parse_bind(bad)


def test_web_table_in_the_run_config(monkeypatch: pytest.MonkeyPatch) -> None:
    base = '[[source]]\nurl = "mqtt://127.0.0.1:1883"\n'
    cfg = config.parse(base + '[web]\nbind = "127.0.0.1:9999"\n')
    assert cfg.web is not None and cfg.web.address == ("127.0.0.1", 9999)
    assert config.parse(base).web is None
    with pytest.raises(ConfigError, match="token"):
        config.parse(base + '[web]\nbind = "0.0.0.0:9999"\n')
    monkeypatch.setenv("WEB_T", "abc")
    cfg = config.parse(base + '[web]\nbind = "0.0.0.0:9999"\ntoken_env = "WEB_T"\n')
    assert cfg.web is not None and cfg.web.token == "abc" and "abc" not in repr(cfg.web)
    with pytest.raises(ConfigError, match="unknown key 'port'"):
        config.parse(base + "[web]\nport = 1\n")
