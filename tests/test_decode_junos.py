from __future__ import annotations

import orjson
import pytest
from tests.fixtures.decode_samples import decode, junos_seeds

SYSLOG_TOPIC = "/junos/events/syslog/SNMP_TRAP_LINK_DOWN"


def test_seed_link_down() -> None:
    rec = decode(SYSLOG_TOPIC, junos_seeds()[6])
    assert "decode_error" not in rec
    assert rec["decoder"] == "junos-jet"
    assert rec["format"] == "json"
    assert rec["device"] == "vmx4"
    assert rec["event"] == "SNMP_TRAP_LINK_DOWN"
    assert rec["severity"] == "warning"
    f = rec["fields"]
    assert f["facility"] == "daemon"
    assert f["process-name"] == "mib2d"
    assert f["process-id"] == 4086
    assert f["interface-name"] == "ge-0/0/1.0"
    assert f["admin-status"] == "down(2)"
    assert f["operational-status"] == "down(2)"
    assert f["snmp-interface-index"] == "529"
    assert f["time"] == "2016-08-28-09:30:51"
    assert f["router_time"] == "2016-08-28T09:30:51"
    assert f["message"].startswith("SNMP_TRAP_LINK_DOWN: ifIndex 529")
    assert f["summary"].startswith("SNMP_TRAP_LINK_DOWN on ge-0/0/1.0: ")
    assert "ifAdminStatus down(2)" in f["summary"]


@pytest.mark.parametrize(("index", "event", "severity", "process"), [
    (0, "SYSTEM", "notice", "sshd"),
    (1, "SYSTEM", "info", "sshd"),
    (2, "UI_COMMIT_PROGRESS", "info", "mgd"),
    (3, "UI_COMMIT_COMPLETED", "warning", "mgd"),
    (4, "UI_COMMIT_PROGRESS", "info", "mgd"),
    (5, "PIC", "debug", "UNKNOWN"),
    (6, "SNMP_TRAP_LINK_DOWN", "warning", "mib2d"),
])
def test_every_seed_event(index: int, event: str, severity: str, process: str) -> None:
    rec = decode("/junos/events/syslog/" + event, junos_seeds()[index])
    assert rec["decoder"] == "junos-jet"
    assert (rec["device"], rec["event"], rec["severity"]) == ("vmx4", event, severity)
    assert rec["fields"]["process-name"] == process
    assert rec["fields"]["summary"]
    assert "\n" not in rec["fields"]["summary"]


def test_summary_strips_repeated_event_id() -> None:
    rec = decode("/junos/events/syslog/UI_COMMIT_COMPLETED", junos_seeds()[3])
    assert rec["fields"]["summary"] == "UI_COMMIT_COMPLETED: commit complete"


def test_attribute_that_differs_from_top_level_keeps_both() -> None:
    rec = decode("/junos/events/syslog/UI_COMMIT_PROGRESS", junos_seeds()[2])
    f = rec["fields"]
    assert f["message"].startswith("UI_COMMIT_PROGRESS: Commit operation")
    assert f["attributes.message"] == "commit complete"


def test_sniffed_on_any_topic() -> None:
    rec = decode("routers/vmx4/events", junos_seeds()[6])
    assert rec["decoder"] == "junos-jet"
    assert rec["event"] == "SNMP_TRAP_LINK_DOWN"


def test_nats_subject_is_sniffed_too() -> None:
    rec = decode("junos.vmx4", junos_seeds()[0], protocol="nats")
    assert rec["decoder"] == "junos-jet"


def test_kernel_event_from_reference_shape_and_topic() -> None:
    payload = orjson.dumps({"jet-event": {
        "event-id": "KERNEL_EVENT_IFA_ADD", "hostname": "vqfx1", "time": "2019-01-22-14:59:06",
        "severity": "INFO", "facility": "KERNEL",
        "attributes": {"name": "xe-0/0/0", "subunit": 0, "family": "inet",
                       "local-address": "10.31.0.11"}}})
    topic = "/junos/events/kernel/interfaces/ifa/add/xe-0/0/0.0/inet/10.31.0.11/31"
    rec = decode(topic, payload)
    assert rec["severity"] == "info"
    f = rec["fields"]
    assert f["facility"] == "KERNEL"
    assert f["name"] == "xe-0/0/0"
    assert f["subunit"] == 0
    assert f["object"] == "ifa"
    assert f["op"] == "add"
    assert f["interface-name"] == "xe-0/0/0.0"
    assert f["address"] == "10.31.0.11/31"
    assert f["family"] == "inet"  # the payload's own value wins; same here
    assert f["summary"].startswith("KERNEL_EVENT_IFA_ADD on xe-0/0/0")
    assert "local-address 10.31.0.11" in f["summary"]


@pytest.mark.parametrize(("topic", "expect"), [
    ("/junos/events/kernel/interfaces/ifd/delete/ge-0/0/3",
     {"object": "ifd", "op": "delete", "interface-name": "ge-0/0/3"}),
    ("/junos/events/kernel/interfaces/iff/change/ge-0/0/3.0/inet6",
     {"object": "iff", "op": "change", "interface-name": "ge-0/0/3.0", "family": "inet6"}),
    ("/junos/events/kernel/route/add/inet/10.0.0.0/8",
     {"object": "route", "op": "add", "family": "inet", "prefix": "10.0.0.0/8"}),
    ("/junos/events/kernel/firewall/filter/add/protect-re",
     {"object": "firewall-filter", "op": "add", "name": "protect-re"}),
])
def test_topic_tree(topic: str, expect: dict[str, str]) -> None:
    payload = b'{"jet-event":{"event-id":"KERNEL_EVENT","hostname":"r1","attributes":{}}}'
    f = decode(topic, payload)["fields"]
    for k, v in expect.items():
        assert f[k] == v


@pytest.mark.parametrize(("raw", "expect"), [
    ("warn", "warning"), ("INFO", "info"), ("Emergency", "emerg"), ("err", "error"),
    ("critical", "crit"), ("debug", "debug"),
])
def test_severity_names(raw: str, expect: str) -> None:
    payload = orjson.dumps({"jet-event": {"event-id": "X", "hostname": "r", "severity": raw}})
    assert decode(SYSLOG_TOPIC, payload)["severity"] == expect


def test_unknown_severity_is_kept_in_fields() -> None:
    payload = orjson.dumps({"jet-event": {"event-id": "X", "hostname": "r", "severity": "loud"}})
    rec = decode(SYSLOG_TOPIC, payload)
    assert "severity" not in rec
    assert rec["fields"]["severity_raw"] == "loud"


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"jet-event": {"event-id": "SNMP_TRAP', "not JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"event": 1}', 'no "jet-event"'),
    (b'{"jet-event": {"hostname": "r"}}', "event-id"),
    (b'{"jet-event": {"event-id": 5}}', "event-id"),
    (b'{"jet-event": {"event-id": "X", "hostname": ["r"]}}', "hostname"),
    (b'{"jet-event": {"event-id": "X", "attributes": "a"}}', "attributes"),
    (b"\xff\xfe\x00garbage", "not JSON"),
])
def test_wrong_shape_is_kept_raw(payload: bytes, reason: str) -> None:
    rec = decode(SYSLOG_TOPIC, payload)
    assert rec["decode_error"].startswith("junos-jet: ")
    assert reason in rec["decode_error"]
    assert rec["decoder"] in ("json", "text", "binary")
    assert "payload" in rec and "format" in rec
    assert "device" not in rec and "fields" not in rec


def test_ten_megabytes_on_a_junos_topic() -> None:
    payload = b'{"jet-event": {"event-id": "X", "message": "' + b"a" * 10_000_000 + b'"}}'
    rec = decode(SYSLOG_TOPIC, payload)
    assert rec["decode_error"].startswith("junos-jet: payload of 10000")
    assert rec["format"] == "text"
    assert len(rec["payload"]) == len(payload)
