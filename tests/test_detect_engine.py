"""The alert lifecycle: one alert per rule and group, throttled
re-notification, resolution, state across restarts, bounded state; user rules
and their windows; bad rules refused at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bustap.detect import DetectSettings, Engine, parse_detect
from bustap.detect.base import Detector, Finding
from bustap.detect.settings import load_rules
from bustap.errors import ConfigError
from bustap.record import Writer


def stream() -> Writer:
    return Writer("test")


def auth_failed(w: Writer, addr: str = "10.0.0.5", user: str | None = None) -> dict[str, Any]:
    return w.stamp({"kind": "broker_event", "broker": "mosquitto", "event": "auth_failed",
                    "address": addr, "username": user, "source": "file:///m.log"})


def heartbeat(w: Writer, device: str, disk: float) -> dict[str, Any]:
    return w.stamp({"kind": "message", "topic": f"hm.agent.heartbeat.{device}",
                    "decoder": "bosh-heartbeat", "device": device, "source": "nats://bus",
                    "fields": {"disk.persistent.percent": disk}})


DISK_RULE = """
[detect]
throttle_secs = 60
resolve_secs = 120
[[rule]]
id = "disk_full"
where = "decoder = 'bosh-heartbeat' and fields.disk.persistent.percent > 90"
group_by = ["device"]
severity = "warning"
summary = "{device}: persistent disk {fields.disk.persistent.percent}%"
"""


def settings_of(text: str) -> DetectSettings:
    import tomllib

    return parse_detect(tomllib.loads(text))


def states(alerts: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(a["rule"], a["state"], a["count"]) for a in alerts]


def test_one_alert_per_group_throttled_then_resolved() -> None:
    w = stream()
    e = Engine(settings_of(DISK_RULE))
    first = [heartbeat(w, "a1", 95)]
    out = e.process(first)
    assert states(out) == [("disk_full", "firing", 1)]
    alert = out[0]
    assert alert["event_type"] == "alert" and alert["subject"] == "a1"
    assert alert["group"] == {"device": "a1"} and alert["evidence"] == [first[0]["seq"]]
    assert alert["summary"] == "a1: persistent disk 95%" and alert["severity"] == "warning"
    # more matches: no new notification inside throttle_secs, another group fires
    assert e.process([heartbeat(w, "a1", 96), heartbeat(w, "a1", 97)]) == []
    assert states(e.process([heartbeat(w, "a2", 99)])) == [("disk_full", "firing", 1)]
    # the tick re-notifies a1 with its count once throttle_secs have passed
    now = e.now
    assert e.tick(now + 10) == []
    renotified = e.tick(now + 61)
    assert [(a["subject"], a["state"], a["count"]) for a in renotified] == [
        ("a1", "firing", 3)]
    assert renotified[0]["alert_id"] == alert["alert_id"]
    # clear for resolve_secs: resolved, once each
    resolved = e.tick(now + 200)
    assert sorted((a["subject"], a["state"]) for a in resolved) == [
        ("a1", "resolved"), ("a2", "resolved")]
    assert e.tick(now + 400) == []
    # firing again later is a new alert
    again = e.process([heartbeat(w, "a1", 95)])
    assert states(again) == [("disk_full", "firing", 1)]
    assert again[0]["alert_id"] != alert["alert_id"]


def test_a_restart_neither_refires_nor_forgets(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    w = stream()
    s = settings_of(DISK_RULE + "\n")
    s.learn_secs = 0
    e = Engine(s, state_path=path)
    connect = w.stamp({"kind": "broker_event", "broker": "mosquitto",
                       "event": "client_connected", "client_id": "sensor-1",
                       "address": "10.0.0.9", "username": "s1", "listener_port": 8883})
    out = e.process([heartbeat(w, "a1", 95), connect])
    assert {a["rule"] for a in out} == {"disk_full", "new_client", "new_address"}
    e.save()
    e2 = Engine(s, state_path=path)
    assert e2.process([heartbeat(w, "a1", 99), connect]) == []  # firing, and known
    assert e2.active[("disk_full", "device=a1")].count == 2


def test_damaged_state_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    path.write_text("{not json")
    e = Engine(DetectSettings(), state_path=path)
    assert e.errors["state"] == 1 and path.with_suffix(".bad").exists()


def test_bursts_fire_once_with_the_window_as_evidence() -> None:
    w = stream()
    e = Engine(DetectSettings())
    recs = [auth_failed(w) for _ in range(7)]
    out = e.process(recs)
    assert states(out) == [("auth_failure_burst", "firing", 5)]
    assert out[0]["evidence"] == [r["seq"] for r in recs[:5]]
    assert e.active[("auth_failure_burst", "address=10.0.0.5")].count == 7


def test_state_is_bounded_and_evictions_counted() -> None:
    w = stream()
    s = DetectSettings(max_keys=10)
    e = Engine(s)
    e.process([auth_failed(w, addr=f"10.0.{i // 250}.{i % 250}") for i in range(100)])
    assert e.stats()["state_evicted"]["auth_failure_burst"] == 90


class Broken(Detector):
    id = "broken"
    events = frozenset({"auth_failed"})

    def feed(self, rec: dict[str, Any], t: float) -> list[Finding]:
        raise RuntimeError("bug")


def test_a_failing_detector_is_counted_and_the_rest_keeps_working() -> None:
    w = stream()
    e = Engine(DetectSettings())
    broken = Broken(e.ctx)
    e.detectors.append(broken)
    e._by_event["auth_failed"].insert(0, broken)
    out = e.process([auth_failed(w) for _ in range(5)])
    assert e.errors["broken"] == 5 and states(out) == [("auth_failure_burst", "firing", 5)]


RULES = """
[detect]
resolve_secs = 30
[[rule]]
id = "burst"
where = "event = 'link_down'"
group_by = ["device"]
count = 3
within_secs = 10
summary = "{device} flapping"
[[rule]]
id = "silent"
where = "decoder = 'bosh-heartbeat'"
group_by = ["device"]
absent_secs = 60
summary = "{device} stopped sending heartbeats"
[[rule]]
id = "new_job"
where = "decoder = 'bosh-heartbeat'"
group_by = ["device"]
new_value = "fields.job"
severity = "notice"
summary = "{device} now runs {fields.job}; password {fields.password}"
"""


def event_at(w: Writer, t: str, **fields: Any) -> dict[str, Any]:
    return w.stamp({"kind": "message", "timestamp": f"2026-12-01T10:{t}.000000Z", **fields})


def test_count_window() -> None:
    w = stream()
    e = Engine(settings_of(RULES), event_time=True)
    link = {"event": "link_down", "device": "r1"}
    assert e.process([event_at(w, "00:00", **link), event_at(w, "00:20", **link)]) == []
    out = e.process([event_at(w, "00:21", **link), event_at(w, "00:25", **link)])
    assert states(out) == [("burst", "firing", 3)] and out[0]["summary"] == "r1 flapping"
    assert out[0]["first_seen"].startswith("2026-12-01T10:00:20")


def test_absent_fires_on_silence_and_resolves_on_return() -> None:
    w = stream()
    s = settings_of(RULES)
    e = Engine(s, event_time=True)
    hb = {"decoder": "bosh-heartbeat", "device": "a1", "fields": {"job": "redis"}}
    e.process([event_at(w, "00:00", **hb)])
    assert [a["rule"] for a in e.tick()] == []
    silent = [a for a in e.tick(e.now + 61) if a["rule"] == "silent"]
    assert states(silent) == [("silent", "firing", 1)]
    assert "stopped sending heartbeats (nothing for 61s)" in silent[0]["summary"]
    assert [a for a in e.tick(e.now + 40) if a["rule"] == "silent"] == []  # no repeat
    e.process([event_at(w, "05:00", **hb)])  # back
    resolved = [a for a in e.tick(e.now + 31) if a["rule"] == "silent"]
    assert states(resolved) == [("silent", "resolved", 1)]


def test_new_value_learns_first_and_keeps_secrets_out() -> None:
    w = stream()
    s = settings_of(RULES)
    s.learn_secs = 60
    e = Engine(s, event_time=True)
    def hb(t: str, job: str) -> dict[str, Any]:
        return event_at(w, t, decoder="bosh-heartbeat", device="a1",
                        fields={"job": job, "password": "hunter2"})
    assert [a for a in e.process([hb("00:00", "redis")]) if a["rule"] == "new_job"] == []
    assert [a for a in e.process([hb("02:00", "redis")]) if a["rule"] == "new_job"] == []
    out = [a for a in e.process([hb("03:00", "postgres")]) if a["rule"] == "new_job"]
    assert states(out) == [("new_job", "firing", 1)]
    assert out[0]["summary"] == "a1 now runs postgres; password [redacted]"
    assert "hunter2" not in str(out)


@pytest.mark.parametrize(("text", "message"), [
    ("[[rule]]\nwhere = 'qos = 1'", "'id' is required"),
    ("[[rule]]\nid = 'x'\nwhere = 'nosuch = 1'", "rule 'x': where .*unknown field 'nosuch'"),
    ("[[rule]]\nid = 'x'\nwhere = 'qos = 1'\ncolour = 'red'", "rule 'x': unknown key 'colour'"),
    ("[[rule]]\nid = 'x'\nwhere = 'qos = 1'\nseverity = 'bad'", "rule 'x': severity"),
    ("[[rule]]\nid = 'x'\nwhere = 'qos = 1'\ncount = 3", "count needs .* within_secs"),
    ("[[rule]]\nid = 'x'\nwhere = 'qos = 1'\ncount = 3\nwithin_secs = 1\nabsent_secs = 5",
     "one window per rule"),
    ("[[rule]]\nid = 'x'\nwhere = 'qos = 1'\nsummary = '{nosuch}'", "placeholder"),
    ("[[rule]]\nid = 'x'\nwhere = 'qos = 1'\ngroup_by = ['fields.a b']", "group_by"),
    ("[[rule]]\nid = 'acl_denied'\nwhere = 'qos = 1'", "already used"),
    ("[detect]\ndisable = ['nosuch']", "unknown detector 'nosuch'"),
    ("[detect]\nauth_failure_burst = { count = 'five' }", "auth_failure_burst.count"),
    ("[detect]\nauth_failure_burst = { colour = 1 }", "unknown key 'colour'"),
    ("[detect]\nlearn_secs = -1", "learn_secs"),
    ("[detect]\nfancy = 1", "unknown key 'fancy'"),
    ("[rules]\n", "unknown key 'rules'"),
    ("[[rule]\n", "not valid TOML"),
])
def test_bad_rules_fail_at_load_naming_rule_and_key(tmp_path: Path, text: str,
                                                      message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_rules(path)
    assert info.value.exit_code == 2


@st.composite
def records(draw: Any) -> dict[str, Any]:
    keys = st.sampled_from(["topic", "device", "event", "kind", "broker", "address",
                            "username", "client_id", "fields", "payload", "qos", "reason",
                            "action", "version", "event_type", "log_time", "seq", "name"])
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=8), st.sampled_from(["auth_failed", "subscribe", "#",
                                                           "broker_event", "2.0.1", "nats"]))
    value = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                                   st.dictionaries(st.text(max_size=4), c,
                                                                   max_size=3)), max_leaves=6)
    return draw(st.dictionaries(keys, value, max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), max_size=20))
def test_nothing_escapes_the_engine(recs: list[dict[str, Any]]) -> None:
    s = settings_of(RULES + DISK_RULE.replace("[detect]\nthrottle_secs = 60\nresolve_secs = 120",
                                              ""))
    s.learn_secs = 0
    for event_time in (False, True):
        e = Engine(s, event_time=event_time)
        e.process(recs)
        e.tick()
        assert not e.errors, e.errors


def test_the_readme_rules_file_loads(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Alerts"):readme.index("### Behaviour detectors")]
    (block,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    path = tmp_path / "rules.toml"
    path.write_text(block)
    s = load_rules(path)
    assert [r.id for r in s.rules] == ["disk_full", "link_flap", "agent_silent", "new_firmware"]
    Engine(s)


def test_every_detector_is_registered_whatever_was_imported_first() -> None:
    import subprocess
    import sys

    code = ("import bustap.detect.detectors.acl_denied\n"
            "from bustap.detect import detector_classes\n"
            "print(len(detector_classes()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    from bustap.detect import detector_classes

    assert int(out.stdout) == len(detector_classes()) >= 20
