"""What is kept from a wildcard subscription: topics, retained ones, secrets."""

from __future__ import annotations

from bustap.audit.base import MAX_SECRET_FINDINGS, Heard, examples, plural
from bustap.audit.findings import Severity, TargetReport


def test_heard_separates_retained_live_and_system() -> None:
    h = Heard()
    h.add("cfg/db", b'{"password": "hunter2-secret"}', retained=True)
    h.add("cfg/db", b'{"password": "hunter2-secret"}', retained=True)  # scanned once
    h.add("live/x", b"token=abcdef123456")
    h.add("$SYS/broker/version", b"mosquitto version 2.0.11", retained=True, system=True)
    assert h.topics == {"cfg/db", "live/x"} and h.system_topics == {"$SYS/broker/version"}
    assert h.retained == {"cfg/db"} and h.messages == 4
    r = TargetReport("mqtt://b:1883", "mqtt")
    h.add_secret_findings(r, who="anonymous clients")
    assert [(f.id, f.severity) for f in r.findings] == [
        ("retained_secrets", Severity.HIGH), ("payload_secrets", Severity.MEDIUM)]
    assert all("hunter2" not in f.evidence and "abcdef" not in f.evidence for f in r.findings)


def test_many_secret_topics_are_summarised() -> None:
    h = Heard()
    for i in range(MAX_SECRET_FINDINGS + 5):
        h.add(f"cfg/{i:02d}", b"password=hunter2-secret", retained=True)
    r = TargetReport("mqtt://b:1883", "mqtt")
    h.add_secret_findings(r, who="x")
    assert len(r.findings) == MAX_SECRET_FINDINGS + 1
    assert "5 more retained topics" in r.findings[-1].evidence


def test_wording() -> None:
    assert plural(1, "topic") == "1 topic" and plural(2, "topic") == "2 topics"
    assert examples({"c", "a", "b", "d"}, 2) == "a, b (+2 more)"
