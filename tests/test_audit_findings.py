"""Findings: severity order, --fail-on, the JSON report and the SARIF 2.1.0 log."""

from __future__ import annotations

import pytest

from bustap.audit import CATALOGUE, Severity, TargetReport, fails, to_json, to_sarif
from bustap.audit.findings import sort_findings
from bustap.errors import ConfigError

REQUIRED = ("tls_missing", "cert_invalid", "cert_expiring", "cert_self_signed",
            "anonymous_access", "wildcard_subscribe", "sys_exposed", "retained_secrets",
            "version_outdated", "plaintext_credentials", "monitor_exposed",
            "jetstream_exposed", "mqtt5_unsupported")


def report(*ids: str, severity: Severity | None = None) -> TargetReport:
    r = TargetReport("mqtt://broker:1883", "mqtt")
    for fid in ids:
        r.add(fid, f"evidence for {fid}", severity=severity)
    return r


def test_catalogue_has_the_issue_ids_with_one_line_fixes() -> None:
    for fid in REQUIRED:
        assert fid in CATALOGUE
    for rule in CATALOGUE.values():
        assert rule.fix and "\n" not in rule.fix and rule.title
    assert CATALOGUE["mqtt5_unsupported"].severity is Severity.INFO


def test_severity_order_and_parse() -> None:
    assert Severity.INFO < Severity.LOW < Severity.MEDIUM < Severity.HIGH
    assert [str(s) for s in sorted(Severity)] == ["info", "low", "medium", "high"]
    assert Severity.parse("Medium") is Severity.MEDIUM
    with pytest.raises(ConfigError, match="critical"):
        Severity.parse("critical")


@pytest.mark.parametrize(("ids", "fail_on", "expected"), [
    ((), Severity.INFO, False),
    (("mqtt5_unsupported",), Severity.INFO, True),
    (("mqtt5_unsupported",), Severity.LOW, False),
    (("sys_exposed",), Severity.MEDIUM, True),
    (("sys_exposed",), Severity.HIGH, False),
    (("sys_exposed", "anonymous_access"), Severity.HIGH, True),
])
def test_fail_on(ids: tuple[str, ...], fail_on: Severity, expected: bool) -> None:
    assert fails([report(*ids)], fail_on) is expected


def test_a_check_may_lower_a_severity() -> None:
    r = report("wildcard_subscribe", severity=Severity.LOW)
    assert r.findings[0].severity is Severity.LOW
    assert not fails([r], Severity.MEDIUM)


def test_worst_first() -> None:
    r = report("mqtt5_unsupported", "sys_exposed", "anonymous_access", "tls_missing")
    assert [f.id for f in sort_findings(r.findings)] == [
        "anonymous_access", "tls_missing", "sys_exposed", "mqtt5_unsupported"]


def test_json_report() -> None:
    doc = to_json([report("anonymous_access", "sys_exposed")], Severity.MEDIUM)
    assert doc["failed"] is True and doc["counts"] == {"high": 1, "medium": 1, "low": 0,
                                                       "info": 0}
    (target,) = doc["targets"]
    assert set(target["findings"][0]) == {"id", "severity", "target", "evidence", "fix"}
    assert target["findings"][0]["severity"] == "high"


def test_sarif_shape() -> None:
    down = TargetReport("nats://bus:4222", "nats", error="connection refused")
    log = to_sarif([report("anonymous_access", "sys_exposed", "mqtt5_unsupported"), down])
    assert log["version"] == "2.1.0" and "sarif-2.1.0" in log["$schema"]
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CATALOGUE)
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        assert float(rule["properties"]["security-severity"]) >= 0
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"anonymous_access": "error", "sys_exposed": "warning",
                      "mqtt5_unsupported": "note"}
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["message"]["text"]
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
            "mqtt://broker:1883")
        assert res["partialFingerprints"]["bustapFinding/v1"]
    fingerprints = {r["partialFingerprints"]["bustapFinding/v1"] for r in run["results"]}
    assert len(fingerprints) == 3
    (inv,) = run["invocations"]
    assert inv["executionSuccessful"] is False
    assert "connection refused" in inv["toolExecutionNotifications"][0]["message"]["text"]
