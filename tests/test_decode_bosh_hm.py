from __future__ import annotations

import orjson
import pytest
from tests.fixtures.decode_samples import HB_AGENT, decode, seed

HB = f"hm.agent.heartbeat.{HB_AGENT}"


def nats(topic: str, payload: bytes) -> dict:
    return decode(topic, payload, protocol="nats")


def test_seed_heartbeat() -> None:
    rec = nats(HB, seed("bosh/heartbeat.json"))
    assert "decode_error" not in rec
    assert rec["decoder"] == "bosh-heartbeat"
    assert rec["device"] == HB_AGENT
    assert rec["event"] == "heartbeat"
    assert rec["severity"] == "info"
    f = rec["fields"]
    assert f["deployment"] == "cf-cd7cc3cd4db8a9288f57"
    assert f["job"] == "nfs_server"
    assert f["index"] == 0
    assert f["job_state"] == "running"
    assert f["node_id"] == "e47828dc-b910-4b77-a01c-9ee5f1ee963c"
    assert f["cpu.sys"] == 0.4
    assert f["cpu.user"] == 0.9
    assert f["cpu.wait"] == 0.0
    assert f["mem.percent"] == 13
    assert f["mem.kb"] == 513568
    assert f["swap.percent"] == 4
    assert f["disk.persistent.percent"] == 75
    assert f["disk.system.inode_percent"] == 33
    assert f["disk.ephemeral.percent"] == 11
    assert (f["load.1m"], f["load.5m"], f["load.15m"]) == (0.0, 0.0, 0.0)
    assert f["uptime.secs"] == 11391077
    assert f["summary"].startswith("nfs_server/0 running: ")
    assert "mem 13%" in f["summary"]
    # the payload itself is kept as sent
    assert rec["payload"]["vitals"]["cpu"]["sys"] == "0.4"


@pytest.mark.parametrize(("state", "severity"), [
    ("failing", "error"), ("stopped", "warning"), ("running", "info"), ("odd", "info")])
def test_job_state_severity(state: str, severity: str) -> None:
    body = orjson.loads(seed("bosh/heartbeat.json"))
    body["job_state"] = state
    assert nats(HB, orjson.dumps(body))["severity"] == severity


def test_heartbeat_without_vitals_and_with_odd_values() -> None:
    rec = nats(HB, b'{"job":"router","index":2,"vitals":{"cpu":{"sys":"n/a"},"load":["1.5"]}}')
    assert rec["fields"]["cpu.sys"] == "n/a"
    assert rec["fields"]["load.1m"] == 1.5
    assert nats(HB, b"{}")["fields"]["summary"] == "heartbeat"


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"deployment":"cf","vitals":{"cpu":', "not JSON"),
    (b'"running"', "not an object"),
    (b'{"vitals": "high"}', "vitals"),
    (b'{"vitals": {"load": "0.1 0.2"}}', "load"),
])
def test_heartbeat_wrong_shape(payload: bytes, reason: str) -> None:
    rec = nats(HB, payload)
    assert rec["decode_error"].startswith("bosh-heartbeat: ")
    assert reason in rec["decode_error"]
    assert "device" not in rec


def test_other_subjects_are_not_claimed() -> None:
    assert nats("hm.agent.heartbeat", seed("bosh/heartbeat.json"))["decoder"] == "json"
    assert nats("hm.agent.heartbeat.a.b", seed("bosh/heartbeat.json"))["decoder"] == "json"


@pytest.mark.parametrize(("sev", "name"), [(1, "alert"), (2, "crit"), (3, "error"),
                                           (4, "warning")])
def test_alert(sev: int, name: str) -> None:
    body = orjson.loads(seed("bosh/alert.json"))
    body["severity"] = sev
    rec = nats("hm.agent.alert.agent-7", orjson.dumps(body))
    assert rec["decoder"] == "bosh-alert"
    assert (rec["device"], rec["event"], rec["severity"]) == ("agent-7", "alert", name)
    f = rec["fields"]
    assert f["id"] == "e7cf3b2e-7c2f-4e4c-9a4e-3a2e1c0f7d11"
    assert f["title"] == "nfs_server (10.0.16.5) - process is not running"
    assert f["alert_summary"] == "Service nfs_server is not running"
    assert f["created_at"] == 1636498618
    assert f["summary"] == ("nfs_server (10.0.16.5) - process is not running: "
                            "Service nfs_server is not running")


def test_director_alert() -> None:
    rec = nats("hm.director.alert", b'{"id":"d1","severity":3,"title":"director: job failed",'
               b'"summary":"task 12 failed","created_at":1,"deployment":"cf"}')
    assert (rec["decoder"], rec["device"], rec["severity"]) == ("bosh-alert", "director",
                                                                 "error")
    assert rec["fields"]["deployment"] == "cf"


@pytest.mark.parametrize("payload", [b'{"severity": 9}', b'{"severity": "2"}',
                                     b'{"severity": 1, "title": 5}', b"[]", b"{"])
def test_alert_wrong_shape(payload: bytes) -> None:
    rec = nats("hm.agent.alert.a1", payload)
    assert rec["decode_error"].startswith("bosh-alert: ")
    assert "severity" not in rec


def test_shutdown() -> None:
    rec = nats("hm.agent.shutdown.a1", b"")
    assert (rec["decoder"], rec["device"], rec["event"], rec["severity"]) == (
        "bosh-shutdown", "a1", "shutdown", "notice")
    rec = nats("hm.agent.shutdown.a1", b'{"job":"db","index":1,"deployment":"cf"}')
    assert rec["fields"]["job"] == "db"
    assert nats("hm.agent.shutdown.a1", b"bye")["decode_error"].startswith("bosh-shutdown: ")
