"""``policy check`` on broker events as the log parsers produce them, and the
``policy`` command's output and exit codes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bustap.cli import main
from bustap.logparse import parse_lines
from bustap.policy import Action, load_policy
from bustap.policy.check import check

SEED = Path(__file__).parent / "data" / "policy" / "seed002.conf"

MOSQ_LOG = """\
1700000000: New connection from 127.0.0.1:5000 on port 1883.
1700000000: New client connected from 127.0.0.1:5000 as c1 (p2, c1, k60, u'alice').
1700000001: Received PUBLISH from c1 (d0, q0, r0, m0, 'sensors/a', ... (2 bytes))
1700000001: Denied PUBLISH from c1 (d0, q0, r0, m0, 'alerts/x', ... (2 bytes))
1700000002: Received SUBSCRIBE from c1
1700000002: \tsensors/private/# (QoS 0)
1700000002: c1 0 sensors/private/#
1700000003: New connection from 127.0.0.1:5001 on port 1883.
1700000003: New client connected from 127.0.0.1:5001 as z9 (p2, c1, k60, u'zed').
"""
ACL = """\
user alice
topic readwrite sensors/#
topic deny sensors/private/#
topic read alerts/+
topic read never/used
"""


def test_mosquitto_check_from_log_lines(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    policy = load_policy(acl)
    result = check(policy, parse_lines(MOSQ_LOG.splitlines(), "mosquitto"))
    found = {(v.user, v.action, v.subject): v for v in result.violations}
    assert set(found) == {("alice", Action.PUBLISH, "alerts/x"),
                          ("alice", Action.SUBSCRIBE, "sensors/private/#")}
    assert found[("alice", Action.PUBLISH, "alerts/x")].denied == 1
    assert found[("alice", Action.SUBSCRIBE, "sensors/private/#")].attempts == 1
    assert {u.grant.pattern for u in result.unused} == {"alerts/+", "never/used"}
    assert [u.user for u in result.unknown] == ["zed"]


def test_nats_check_counts_and_broker_disagreement() -> None:
    policy = load_policy(SEED)
    a1 = "a1.agent.bosh-internal"
    recs = [
        {"kind": "broker_event", "broker": "nats", "event": "publish_in", "username": a1,
         "topic": "hm.agent.heartbeat.a1", "timestamp": "t1"},
        {"kind": "broker_event", "broker": "nats", "event": "publish_in", "username": a1,
         "topic": "hm.agent.heartbeat.a2", "timestamp": "t2"},
        {"kind": "broker_event", "broker": "nats", "event": "publish_in", "username": a1,
         "topic": "hm.agent.heartbeat.a2", "timestamp": "t3"},
        # the broker denied what this file allows: another policy is running
        {"kind": "broker_event", "broker": "nats", "event": "acl_denied", "action": "publish",
         "username": "director.bosh-internal", "topic": "agent.a1", "timestamp": "t4"},
        {"kind": "broker_event", "broker": "mosquitto", "event": "publish_in",
         "username": a1, "topic": "x"},  # another broker's event: not ours
        {"kind": "message", "topic": "hm.agent.heartbeat.a1"},
        {"kind": "broker_event", "broker": "nats", "event": "publish_in", "username": a1,
         "topic": "bad..subject"},  # invalid: refused by the server anyway
    ]
    result = check(policy, recs)
    found = {(v.user, v.subject): v for v in result.violations}
    spoof = found[(a1, "hm.agent.heartbeat.a2")]
    assert (spoof.count, spoof.first_seen, spoof.last_seen) == (2, "t2", "t3")
    other = found[("director.bosh-internal", "agent.a1")]
    assert other.decision.allowed and "another policy" in other.reason
    assert result.users_seen == {a1, "director.bosh-internal"}
    unused = {u.grant.pattern: u.seen_users for u in result.unused}
    assert "hm.agent.heartbeat._CLIENT_ID" not in unused
    assert unused["hm.agent.alert._CLIENT_ID"] is True  # a1 was seen, never used it
    assert unused["hm.agent.heartbeat.*"] is False  # hm.bosh-internal never seen


def test_explain_command_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["policy", "explain", str(SEED), "--user", "a1.agent.bosh-internal"]
    assert main([*args, "--publish", "hm.agent.heartbeat.a1"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("ALLOWED: a1.agent.bosh-internal publish hm.agent.heartbeat.a1")
    assert "BOSH" in out.err
    assert main([*args, "--publish", "hm.agent.heartbeat.a2", "--format", "json"]) == 1
    got = orjson.loads(capsys.readouterr().out)
    assert got["allowed"] is False and got["rule"] == "AGENT_PERMISSIONS.publish.allow"
    assert {"allowed", "rule", "reason"} <= set(got)
    assert main([*args, "--subscribe", "agent..x"]) == 2
    assert "invalid NATS subject" in capsys.readouterr().err
    assert main(["policy", "explain", "/nonexistent/nats.conf", "--publish", "x"]) == 2


def test_check_command_on_an_empty_store(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    from bustap.store.schema import duckdb_ddl

    store = tmp_path / "empty.duckdb"
    duckdb.connect(str(store)).execute(duckdb_ddl()).close()
    assert main(["policy", "check", str(SEED), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "0 publish/subscribe events" in out and "no PUB/SUB events" in out
    assert "unused grants (12)" in out and "violations: none" in out
