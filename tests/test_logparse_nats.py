"""nats-server log lines (2.9 and 2.12+ wording) -> broker events."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bustap.logparse.nats import NatsParser

P = "[8516] 2026/11/22 02:12:28.453576 "


def parse(*lines: str) -> list[dict[str, Any]]:
    return NatsParser().feed_many(lines)


def test_startup_lines() -> None:
    recs = parse(P + "[INF] Starting nats-server", P + "[INF]   Version:  2.9.10",
                 P + "[INF]   Git:      [not set]", P + "[INF]   ID:       NABC",
                 P + "[INF] Listening for client connections on 0.0.0.0:4222",
                 P + "[INF] Starting http monitor on 0.0.0.0:8222",
                 P + "[INF] Listening for websocket clients on ws://0.0.0.0:8080",
                 P + "[WRN] Plaintext passwords detected, use nkeys or bcrypt",
                 P + "[INF] Using configuration file: n.conf (sha256:89b1)",
                 P + "[INF] Server is ready", P + "[INF] Server Exiting..")
    events = [r["event"] for r in recs]
    assert events == ["broker_started", "broker_info", "broker_info", "broker_info",
                      "listener_opened", "listener_opened", "listener_opened",
                      "plaintext_passwords", "config_loaded", "broker_ready", "broker_stopped"]
    assert recs[1]["version"] == "2.9.10" and recs[2]["git"] == "not set"
    assert recs[4]["listener_port"] == 4222 and recs[4]["listener"] == "client"
    assert recs[5]["listener"] == "monitor" and recs[6]["listener"] == "websocket"
    assert recs[7]["severity"] == "warning" and recs[8]["config"] == "n.conf"
    assert recs[0]["log_time"] == "2026-11-22T02:12:28.453576"


def test_connection_lifecycle_and_violations_29() -> None:
    c = "[1] 2026/11/22 02:12:28.1 [{}] 127.0.0.1:55254 - cid:4 - "
    named = c + '"v2.16.0:python3:dir" - '
    recs = parse(
        c.format("DBG") + "Client connection created",
        c.format("TRC") + '<<- [CONNECT {"lang": "python3", "name": "dir", "pass": "[REDACTED]",'
        ' "user": "director", "version": "2.16.0", "verbose": false}]',
        named.format("TRC") + "<<- [PUB agent.x  2]",
        named.format("ERR") + 'Publish Violation - User "director", Subject "forbidden.x"',
        named.format("ERR") + 'Subscription Violation - User "director", Subject "other.q", '
        'Queue: "grp", SID 3',
        named.format("DBG") + "Client connection closed: Client Closed",
    )
    opened, connect, pub, pv, sv, closed = recs
    assert opened["event"] == "connection_opened" and opened["port"] == 55254
    assert (connect["event"], connect["name"], connect["username"]) == ("client_connected", "dir",
                                                                        "director")
    assert "pass" not in connect and connect["credentials"] == ["pass", "user"]
    assert (pub["event"], pub["topic"], pub["bytes"], pub["username"]) == (
        "publish_in", "agent.x", 2, "director")
    assert (pv["event"], pv["action"], pv["topic"], pv["username"]) == (
        "acl_denied", "publish", "forbidden.x", "director")
    assert (sv["action"], sv["topic"], sv["queue"], sv["sid"]) == ("subscribe", "other.q", "grp",
                                                                  "3")
    assert closed["reason"] == "client_closed" and closed["client_id"] == "cid:4"


def test_212_wording_takes_user_from_connection() -> None:
    c = '127.0.0.1:1 - cid:5 - "v2.16.0:python3:d" - "$G/user:director" - '
    recs = parse("[ERR] " + c + 'Publish Violation - Subject "forbidden.x"',
                 "[ERR] " + c + 'Subscription Violation - Subject "secret.>", SID 1',
                 "[ERR] " + c + 'Publish Violation - Reply "_INBOX.x"')
    assert all(r["username"] == "director" and r["account"] == "$G" for r in recs)
    assert recs[1]["sid"] == "1" and recs[2]["reply"] == "_INBOX.x"
    recs = parse("[ERR] 127.0.0.1:2 - cid:7 - authentication error",
                 '[ERR] 127.0.0.1:3 - cid:8 - authentication error - User "bob"',
                 '[ERR] 127.0.0.1:4 - cid:9 - authorization error - User "old"')
    assert [r["event"] for r in recs] == ["auth_failed"] * 3
    assert "username" not in recs[0] and recs[1]["username"] == "bob"
    assert recs[2]["username"] == "old"


def test_tls_slow_consumer_and_syslog() -> None:
    (r,) = parse("[ERR] 127.0.0.1:39672 - cid:5 - TLS handshake error: EOF")
    assert (r["event"], r["error"], r["address"]) == ("tls_error", "EOF", "127.0.0.1")
    (r,) = parse("[INF] 10.0.0.1:4 - cid:9 - Slow Consumer Detected: WriteDeadline of 10s "
                 "exceeded with 1 chunks of 10 total bytes.")
    assert r["event"] == "slow_consumer"
    (r,) = parse("<5>2026-11-22T02:12:36Z vm nats-server[8751]:   Version:  2.15.1")
    assert (r["event"], r["version"], r["severity"], r["host"]) == ("broker_info", "2.15.1",
                                                                   "notice", "vm")
    (r,) = parse("[INF] something new")
    assert r["event"] == "unparsed" and r["message"] == "something new"


def test_state_forgets_closed_connections() -> None:
    p = NatsParser(max_clients=3)
    for i in range(10):
        p.feed(f"[DBG] 1.1.1.1:{i} - cid:{i} - Client connection created")
    assert len(p._conns) <= 3
    p.feed("[DBG] 1.1.1.1:9 - cid:9 - Client connection closed: Stale Connection")
    assert "cid:9" not in p._conns


@given(st.lists(st.text(max_size=100), max_size=30))
def test_any_input_gives_a_record_per_line(lines: list[str]) -> None:
    recs = parse(*lines)
    assert [r["line"] for r in recs] == lines
