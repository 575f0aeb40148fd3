"""Each built-in detector on broker log lines in the real servers' wording
(Mosquitto 2.0.11 and nats-server 2.9.10 wrote these), through the real
parsers: what fires, once per group, with the evidence pointing at the line
behind it; and what must not fire."""

from __future__ import annotations

from typing import Any

from bustap.detect import DetectSettings, Engine
from bustap.logparse import parse_lines
from bustap.record import Writer

MOSQ = "1796125870: "


def run(lines: list[str], *, fmt: str | None = None, **settings: Any
        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records and the alerts they raise (firing notifications only)."""
    w = Writer("t")
    parsed = parse_lines(lines) if fmt is None else parse_lines(lines, fmt)  # type: ignore[call-arg]
    recs = [w.stamp({**r, "source": "file:///broker.log"}) for r in parsed]
    s = DetectSettings(**{"learn_secs": 0, **settings})
    e = Engine(s, event_time=True)
    alerts = [a for a in e.process(recs) if a["state"] == "firing"]
    return recs, alerts


def fired(alerts: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["rule"] == rule]


def line_of(recs: list[dict[str, Any]], seq: int) -> str:
    return next(str(r.get("line")) for r in recs if r["seq"] == seq)


def mosq(*lines: str) -> list[str]:
    return [MOSQ + line for line in lines]


def failed_login(port: int) -> list[str]:
    return mosq(f"New connection from 10.9.8.7:{port} on port 1883.",
                "Sending CONNACK to 10.9.8.7 (0, 5)",
                "Client <unknown> disconnected, not authorised.")


def test_password_guessing_from_one_address() -> None:
    lines = [ln for p in range(40000, 40006) for ln in failed_login(p)]
    recs, alerts = run(lines)
    (a,) = fired(alerts, "auth_failure_burst")
    assert a["subject"] == "10.9.8.7" and a["count"] == 5 and a["severity"] == "warning"
    assert "5 failed logins from 10.9.8.7" in a["summary"]
    assert len(a["evidence"]) == 5
    assert all("Sending CONNACK to 10.9.8.7 (0, 5)" in line_of(recs, s) for s in a["evidence"])


def test_nats_failures_per_user_name() -> None:
    lines = []
    for i in range(6):
        lines += [f"[1] 2026/12/01 11:51:26.80{i} [DBG] 127.0.0.{i + 1}:4064{i} - cid:{i} - "
                  "Client connection created",
                  f"[1] 2026/12/01 11:51:26.80{i} [ERR] 127.0.0.{i + 1}:4064{i} - cid:{i} - "
                  '"v2.16.0:python3" - authentication error - User "agent1"']
    _, alerts = run(lines)
    (a,) = fired(alerts, "auth_failure_burst")  # six addresses, one user name
    assert a["group"] == {"username": "agent1"} and a["count"] == 5


def connected(cid: str, user: str | None = None, port: int = 1883, addr: str = "10.0.0.2",
              rport: int = 50000) -> str:
    u = f", u'{user}'" if user else ""
    return (f"{MOSQ}New connection from {addr}:{rport} on port {port}.\n"
            f"{MOSQ}New client connected from {addr}:{rport} as {cid} (p2, c1, k60{u}).")


def lines_of(*chunks: str) -> list[str]:
    return [ln for c in chunks for ln in c.split("\n")]


def test_acl_denied_dollar_publish_and_wildcards() -> None:
    recs, alerts = run(lines_of(
        connected("cam-7", "alice"),
        f"{MOSQ}Denied PUBLISH from cam-7 (d0, q0, r0, m0, 'other/x', ... (1 bytes))",
        f"{MOSQ}Denied PUBLISH from cam-7 (d0, q0, r0, m0, 'other/x', ... (1 bytes))",
        f"{MOSQ}Denied PUBLISH from cam-7 (d0, q0, r0, m0, '$SYS/x', ... (1 bytes))",
        f"{MOSQ}Received SUBSCRIBE from cam-7", f"{MOSQ}\t# (QoS 0)", f"{MOSQ}cam-7 0 #",
        connected("ops", "admin", rport=50001),
        f"{MOSQ}Received SUBSCRIBE from ops", f"{MOSQ}\t$SYS/# (QoS 0)", f"{MOSQ}ops 0 $SYS/#",
        connected("bustap-1a2b", "alice", rport=50002),
        f"{MOSQ}Received SUBSCRIBE from bustap-1a2b", f"{MOSQ}\t# (QoS 0)",
        f"{MOSQ}bustap-1a2b 0 #",
    ), admins=["bustap*", "admin"])
    acl = fired(alerts, "acl_denied")
    assert [a["group"]["topic"] for a in acl] == ["other/x", "$SYS/x"]  # once per group
    assert "Denied PUBLISH" in line_of(recs, acl[0]["evidence"][0])
    (d,) = fired(alerts, "dollar_topic_publish")
    assert d["group"] == {"client": "cam-7", "topic": "$SYS/x"}
    (wc,) = fired(alerts, "wildcard_subscription")
    assert wc["subject"] == "cam-7" and "'#'" in wc["summary"]


def test_plaintext_and_anonymous_logins() -> None:
    _, alerts = run(lines_of(
        connected("meter-1", "meter", port=1883),
        connected("meter-2", "meter", port=8883, rport=50001),
        connected("mosq-AbCdEfGhIjKlMnOp", None, port=1883, rport=50002),
    ))
    (p,) = fired(alerts, "plaintext_credentials")
    assert p["group"] == {"broker": "mosquitto", "listener_port": 1883}
    assert "users: meter" in p["summary"]
    (an,) = fired(alerts, "anonymous_access")
    assert an["group"] == {"broker": "mosquitto", "listener_port": 1883}
    assert "10.0.0.2" in an["summary"]


def test_new_clients_and_addresses_after_learning() -> None:
    _, alerts = run(lines_of(connected("sensor-1", "s"), connected("sensor-1", "s", rport=2),
                             connected("mosq-AbCdEfGhIjKlMnOp", "s", rport=3),
                             connected("auto-BFDF1920-A274-4F15-663C-D9683903264D", "t",
                                       rport=4, addr="10.0.0.3")))
    assert [a["subject"] for a in fired(alerts, "new_client")] == ["sensor-1", "s", "t"]
    assert [a["subject"] for a in fired(alerts, "new_address")] == ["10.0.0.2", "10.0.0.3"]
    _, quiet = run(lines_of(connected("sensor-1", "s")), learn_secs=600)
    assert fired(quiet, "new_client") == []


def test_takeover_from_another_address() -> None:
    _, alerts = run(lines_of(
        connected("plc-4", "plc"),
        f"{MOSQ}New connection from 10.6.6.6:41000 on port 1883.",
        f"{MOSQ}Client plc-4 already connected, closing old connection.",
        f"{MOSQ}New client connected from 10.6.6.6:41000 as plc-4 (p2, c1, k60, u'plc').",
    ))
    (t,) = fired(alerts, "client_takeover")
    assert t["severity"] == "warning" and "10.6.6.6:41000" in t["summary"]
    assert "10.0.0.2:50000" in t["summary"]


def test_broker_limits_tls_and_slow_consumers() -> None:
    _, alerts = run([
        *mosq(*[f"Client connection from 1.2.3.{i} failed: error:0A00010B:SSL routines::"
                "wrong version number." for i in (4, 4, 4, 4, 4, 5)]),
        MOSQ + "Client connection from 9.9.9.9 denied: max_connections exceeded.",
        MOSQ + "Client connection from 9.9.9.8 denied: max_connections exceeded.",
        MOSQ + "Outgoing messages are being dropped for client slowpoke.",
    ])
    (t,) = fired(alerts, "tls_error_burst")
    assert t["subject"] == "1.2.3.4" and t["count"] == 5
    (m,) = fired(alerts, "max_connections")
    assert m["severity"] == "error"
    (s,) = fired(alerts, "slow_consumer")
    assert s["subject"] == "slowpoke"


def test_nats_permissions_violations_and_slow_consumer() -> None:
    base = "[8964] 2026/12/01 11:51:26.80{} [{}] 127.0.0.1:40668 - cid:7 - {}"
    lines = [
        base.format(1, "DBG", "Client connection created"),
        base.format(2, "TRC", '<<- [CONNECT {"echo":true,"lang":"python3","name":"agent-1",'
                    '"pass":"[REDACTED]","user":"agent1","verbose":false,"version":"2.16.0"}]'),
        base.format(3, "TRC", '<<- [PING]'),
        base.format(4, "ERR", '"agent1" - Publish Violation - User "agent1", '
                    'Subject "hm.agent.heartbeat.agent2"'),
        base.format(5, "ERR", '"agent1" - Subscription Violation - User "agent1", '
                    'Subject ">", SID 1'),
        base.format(6, "INF", "Slow Consumer Detected: WriteDeadline of 10s exceeded with 1 "
                    "chunks of 10 total bytes."),
    ]
    recs, alerts = run(lines)
    pv = fired(alerts, "permission_violation")
    assert [(a["group"]["action"], a["group"]["topic"]) for a in pv] == [
        ("publish", "hm.agent.heartbeat.agent2"), ("subscribe", ">")]
    assert "Publish Violation" in line_of(recs, pv[0]["evidence"][0])
    assert fired(alerts, "acl_denied") == []
    (p,) = fired(alerts, "plaintext_credentials")
    assert p["subject"] == "nats" and "users: agent1" in p["summary"]
    assert fired(alerts, "slow_consumer")


def test_nats_connect_that_fails_auth_is_no_login() -> None:
    base = "[1] 2026/12/01 11:51:26.80{} [{}] 127.0.0.1:40632 - cid:4 - {}"
    _, alerts = run([
        base.format(1, "TRC", '<<- [CONNECT {"lang":"python3","verbose":false}]'),
        base.format(2, "ERR", '"v2.16.0:python3" - authentication error'),
    ])
    assert fired(alerts, "anonymous_access") == [] and fired(alerts, "new_client") == []


def test_broker_versions_from_the_advisories_table() -> None:
    _, old = run(mosq("mosquitto version 2.0.11 starting", "mosquitto version 2.0.11 running"))
    (a,) = fired(old, "broker_version")
    assert "2.0.11 is below 2.0.21" in a["summary"]
    _, new = run(mosq("mosquitto version 2.0.21 starting"))
    assert fired(new, "broker_version") == []
    _, nats = run(["[1] 2026/12/01 11:51:25.710341 [INF]   Version:  2.9.10"])
    (n,) = fired(nats, "broker_version")
    assert n["subject"] == "nats-server 2.9.10"
    _, own = run(mosq("mosquitto version 2.0.21 starting"),
                 detectors={"broker_version": {"mosquitto": "2.1.0"}})
    assert fired(own, "broker_version")


def test_an_upgrade_resolves_the_version_alert() -> None:
    w = Writer("t")
    e = Engine(DetectSettings(resolve_secs=0), event_time=True)
    old = parse_lines(mosq("mosquitto version 2.0.11 running"))
    new = parse_lines(["1796126000: mosquitto version 2.0.22 running"])
    assert e.process([w.stamp({**r, "source": "f"}) for r in old])
    e.process([w.stamp({**r, "source": "f"}) for r in new])
    assert [(a["rule"], a["state"]) for a in e.tick()] == [("broker_version", "resolved")]
