"""Mosquitto log lines of every version and prefix form -> broker events."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bustap.logparse import detect_format, make_parser, parse_lines
from bustap.logparse.mosquitto import MosquittoParser


def parse(*lines: str) -> list[dict[str, Any]]:
    p = MosquittoParser()
    return p.feed_many(lines) + p.flush()


def one(line: str) -> dict[str, Any]:
    (rec,) = parse(line)
    return rec


def test_banners_and_listeners_all_versions() -> None:
    r = one("1500000000: mosquitto version 1.4.15 (build date 2018-03-04 15:22:42+0000) starting")
    assert (r["event"], r["version"], r["build_date"]) == (
        "broker_started", "1.4.15", "2018-03-04 15:22:42+0000")
    assert r["log_time"] == "2017-07-14T02:40:00Z"
    assert one("mosquitto version 1.6.15 running")["event"] == "broker_running"
    assert one("mosquitto version 2.0.18 terminating")["event"] == "broker_stopping"
    assert one("1: Config loaded from /etc/mosquitto/mosquitto.conf.")["config"] == \
        "/etc/mosquitto/mosquitto.conf"
    assert one("1: Using default config.")["event"] == "config_loaded"
    r = one("1: Opening ipv6 listen socket on port 8883.")
    assert (r["event"], r["address_family"], r["listener_port"]) == ("listener_opened", "ipv6",
                                                                     8883)
    r = one("1: Opening unix listen socket on path /run/mosq.sock.")
    assert (r["address_family"], r["path"]) == ("unix", "/run/mosq.sock")
    r = one("1: Starting in local only mode. Connections will only be possible from clients "
            "running on this machine.")
    assert (r["event"], r["reason"]) == ("warning", "local_only")


def test_v14_connect_flow_joins_address_without_client_port() -> None:
    recs = parse(
        "1: mosquitto version 1.4.15 (build date x) starting",
        "2: New connection from 10.0.0.5 on port 1883.",
        "2: New client connected from 10.0.0.5 as sensor-1 (c1, k60, u'bob').",
        "3: Received PUBLISH from sensor-1 (d0, q1, r0, m7, 'a/b', ... (5 bytes))",
        "4: Socket error on client sensor-1, disconnecting.",
    )
    opened, connected, pub, gone = recs[1:]
    assert opened == {**opened, "event": "connection_opened", "address": "10.0.0.5",
                      "listener_port": 1883}
    assert "port" not in opened
    assert connected["client_id"] == "sensor-1" and connected["username"] == "bob"
    assert connected["listener_port"] == 1883 and connected["clean_session"] is True
    assert "protocol_version" not in connected
    assert pub["event"] == "publish_in" and pub["address"] == "10.0.0.5"
    assert (pub["topic"], pub["qos"], pub["mid"], pub["bytes"]) == ("a/b", 1, 7, 5)
    assert gone["reason"] == "socket_error" and gone["username"] == "bob"


def test_v16_and_v20_connect_lines() -> None:
    r = one("New client connected from 10.0.0.5 as c (p2, c0, k30).")
    assert (r["protocol_version"], r["clean_session"], r["keepalive"]) == ("3.1.1", False, 30)
    recs = parse("New connection from 192.168.1.9:50123 on port 8883.",
                 "New client connected from 192.168.1.9:50123 as dev (p5, c1, k60, u'al ice').")
    assert recs[1]["port"] == 50123 and recs[1]["listener_port"] == 8883
    assert recs[1]["protocol_version"] == "5.0" and recs[1]["username"] == "al ice"
    r = one("New bridge connected from 1.2.3.4:5 as br (p2, c1, k60).")
    assert r["bridge"] is True
    recs = parse("New connection from ::1:4000 on port 1883.",
                 "New client connected from ::1:4000 as v6 (p2, c1, k60).")
    assert (recs[1]["address"], recs[1]["port"], recs[1]["listener_port"]) == ("::1", 4000,
                                                                               1883)


def test_prefix_forms() -> None:
    iso = one("2024-05-01T10:00:00: New connection from 1.2.3.4:5 on port 1883.")
    assert iso["log_time"] == "2024-05-01T10:00:00" and iso["address"] == "1.2.3.4"
    plain = one("New connection from 1.2.3.4:5 on port 1883.")
    assert "log_time" not in plain and plain["event"] == "connection_opened"
    custom = one("Mon May  1 10:00:00 2024: Config loaded from x.conf.")
    assert custom["event"] == "config_loaded" and custom["log_time"] == "Mon May  1 10:00:00 2024"
    sys3164 = one("<13>May  1 10:00:00 pi mosquitto[412]: New connection from 1.2.3.4:5 on "
                  "port 1883.")
    assert sys3164["event"] == "connection_opened" and sys3164["host"] == "pi"
    assert sys3164["app"] == "mosquitto" and sys3164["severity"] == "notice"
    # rsyslog imfile forwarding (seed 001): the file line, prefix and all, inside syslog.
    fwd = one("May  1 10:00:00 pi Mosquitto 1714557600: New client connected from 1.2.3.4:5 "
              "as x (p2, c1, k60).")
    assert fwd["event"] == "client_connected" and fwd["log_time"] == "2024-05-01T10:00:00Z"
    r5424 = one("<134>1 2024-05-01T10:00:00Z pi mosquitto 412 - - Client x disconnected.")
    assert r5424["event"] == "client_disconnected" and r5424["severity"] == "info"


def test_auth_failure_joins_connection_and_refusal() -> None:
    recs = parse("New connection from 10.1.1.1:4001 on port 1883.",
                 "Sending CONNACK to 10.1.1.1 (0, 5)",
                 "Client <unknown> disconnected, not authorised.")
    assert recs[1]["event"] == "auth_failed" and recs[1]["port"] == 4001
    assert recs[1]["reason"] == "not authorised" and recs[1]["listener_port"] == 1883
    assert recs[2]["event"] == "client_disconnected"
    assert recs[2]["reason"] == "not_authorised" and recs[2]["port"] == 4001
    # Without debug logging the disconnect line is the only sign.
    recs = parse("New connection from 10.1.1.2:4002 on port 1883.",
                 "Client <unknown> disconnected, not authorised.")
    assert recs[1]["event"] == "auth_failed" and recs[1]["address"] == "10.1.1.2"
    r = parse("New connection from 10.1.1.3:1 on port 1883.",
              "Sending CONNACK to 10.1.1.3 (0, 134)")[1]
    assert r["event"] == "auth_failed" and r["reason"] == "bad user name or password"


def test_disconnect_reasons() -> None:
    cases = {
        "Client a disconnected.": "clean",
        "Client a closed its connection.": "closed",
        "Client a has exceeded timeout, disconnecting.": "timeout",
        "Client a disconnected, no longer authorised.": "not_authorised",
        "Client a disconnected due to protocol error.": "protocol_error",
        "Client a disconnected due to malformed packet.": "malformed_packet",
        "Client a disconnected due to oversize packet.": "oversize_packet",
        "Client a already connected, closing old connection.": "takeover",
        "Bad socket read/write on client a: Connection reset by peer": "socket_error",
        "Bad socket read/write on client a, disconnecting.": "socket_error",
        "Client a disconnected: session taken over.": "session_taken_over",
    }
    for line, reason in cases.items():
        r = one(line)
        assert (r["event"], r["reason"], r["client_id"]) == ("client_disconnected", reason, "a")


def test_subscribe_block_is_one_record_per_filter() -> None:
    recs = parse("New client connected from 1.1.1.1:2 as s (p2, c1, k60, u'u').",
                 "Received SUBSCRIBE from s",
                 "\t# (QoS 2)",
                 "s 2 #",
                 "\tsensors/+/t (QoS 0)",
                 "s 0 sensors/+/t",
                 "Sending SUBACK to s",
                 "Received UNSUBSCRIBE from s",
                 "\tsensors/+/t",
                 "s sensors/+/t",
                 "Sending UNSUBACK to s")
    subs = [r for r in recs if r["event"] == "subscribe"]
    assert [(r["topic"], r["qos"]) for r in subs] == [("#", 2), ("sensors/+/t", 0)]
    assert subs[0]["line"] == "\t# (QoS 2)\ns 2 #"
    assert all(r["address"] == "1.1.1.1" and r["username"] == "u" for r in subs)
    (unsub,) = [r for r in recs if r["event"] == "unsubscribe"]
    assert unsub["topic"] == "sensors/+/t"
    # Log type subscribe alone, or debug alone.
    assert one("x 1 a/#")["event"] == "subscribe"
    recs = parse("Received SUBSCRIBE from y", "\tz (QoS 1)", "Sending SUBACK to y")
    assert [r["event"] for r in recs] == ["packet_in", "subscribe", "packet_out"]


def test_will_publish_acl_tls_misc() -> None:
    recs = parse("New client connected from 1.1.1.1:2 as w (p2, c1, k60).",
                 "Will message specified (3 bytes) (r1, q1).",
                 "\tdevices/w/status")
    will = recs[1]
    assert (will["event"], will["topic"], will["qos"], will["retain"], will["bytes"]) == (
        "will", "devices/w/status", 1, True, 3)
    r = one("Denied PUBLISH from w (d0, q0, r0, m0, 'it''s, ... (odd)', ... (12 bytes))")
    assert (r["event"], r["topic"], r["bytes"]) == ("acl_denied", "it''s, ... (odd)", 12)
    r = one("Sending PUBLISH to w (d1, q2, r1, m65535, 'x', ... (0 bytes))")
    assert (r["event"], r["dup"], r["qos"], r["retain"], r["mid"]) == ("publish_out", True, 2,
                                                                      True, 65535)
    r = one("Client connection from 1.2.3.4 failed: error:0A00010B:SSL routines::wrong "
            "version number.")
    assert r["event"] == "tls_error" and r["address"] == "1.2.3.4"
    assert one("OpenSSL Error[0]: error:0A000418:SSL routines::tlsv1 alert unknown ca")[
        "event"] == "tls_error"
    assert one("OpenSSL Error: x")["event"] == "tls_error"
    r = one("Client connection from 9.9.9.9 denied: max_connections exceeded.")
    assert (r["event"], r["address"]) == ("max_connections", "9.9.9.9")
    r = one("Protocol error from c7: password without username, closing connection.")
    assert (r["event"], r["error"]) == ("protocol_error", "password without username")
    assert one("Error: Address already in use")["event"] == "error"


def test_unknown_lines_are_kept() -> None:
    r = one("1: something nobody logs")
    assert r["event"] == "unparsed" and r["line"] == "1: something nobody logs"
    assert one("")["event"] == "unparsed"


def test_state_is_bounded_and_forgets_closed_clients() -> None:
    p = MosquittoParser(max_clients=10, max_pending=5)
    for i in range(100):
        p.feed(f"New connection from 10.0.0.{i % 250}:{i} on port 1883.")
    assert len(p._pending) <= 5
    for i in range(100):
        p.feed(f"New client connected from 1.1.1.1:{i} as c{i} (p2, c1, k60).")
    assert len(p._clients) <= 10
    p.feed("Client c99 disconnected.")
    assert "c99" not in p._clients


def test_detect_and_registry() -> None:
    assert detect_format(["1700000000: mosquitto version 2.0.11 starting"]) == "mosquitto"
    assert detect_format(["[1] 2024/01/01 00:00:00.000000 [INF] Server is ready"]) == "nats"
    assert isinstance(make_parser("mosquitto"), MosquittoParser)
    assert parse_lines(["1: Client x disconnected."])[0]["event"] == "client_disconnected"


_ids = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


@given(_ids, st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
       st.integers(0, 2), st.booleans(), st.integers(0, 65535), st.integers(0, 10**9))
def test_publish_lines_round_trip(cid: str, topic: str, qos: int, retain: bool, mid: int,
                                  size: int) -> None:
    line = (f"1700000000: Received PUBLISH from {cid} (d0, q{qos}, r{int(retain)}, m{mid}, "
            f"'{topic}', ... ({size} bytes))")
    r = one(line)
    if " (d" in cid:  # a client id that looks like the flags cannot be told apart
        return
    assert (r["client_id"], r["topic"], r["qos"], r["retain"], r["mid"], r["bytes"]) == (
        cid, topic, qos, retain, mid, size)


@given(st.lists(st.text(max_size=80), max_size=30))
def test_any_input_gives_a_record_per_line(lines: list[str]) -> None:
    lines = [ln.replace("\n", " ").replace("\t", " ") for ln in lines]
    recs = parse(*lines)
    assert len(recs) == len(lines)
    assert [r["line"] for r in recs] == lines
    assert all(r["kind"] == "broker_event" and r["broker"] == "mosquitto" for r in recs)
