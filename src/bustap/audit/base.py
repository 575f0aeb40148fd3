"""What the MQTT and NATS check sets share: the settings of one audit run and
the record of what was heard while listening."""

from __future__ import annotations

from dataclasses import dataclass, field

from .findings import Severity, TargetReport
from .secrets import SecretHit, find_secrets

MAX_TOPICS = 100_000  # distinct topics remembered while listening
MAX_SCANNED = 20_000  # live payloads scanned for secrets (retained ones always are)
MAX_SECRET_FINDINGS = 10  # per kind of finding and target; the rest are counted


@dataclass(frozen=True, slots=True)
class AuditSettings:
    listen_secs: float = 5.0
    write_test: bool = False
    monitor_port: int = 8222  # NATS monitoring port probed when the URL names none
    timeout_secs: float = 5.0


@dataclass(slots=True)
class Heard:
    """Topics and secrets seen on a wildcard subscription."""

    topics: set[str] = field(default_factory=set)
    system_topics: set[str] = field(default_factory=set)
    retained: set[str] = field(default_factory=set)
    messages: int = 0
    scanned: int = 0
    retained_secrets: dict[str, list[SecretHit]] = field(default_factory=dict)
    live_secrets: dict[str, list[SecretHit]] = field(default_factory=dict)

    def add(self, topic: str, payload: bytes, *, retained: bool = False,
            system: bool = False) -> None:
        self.messages += 1
        bucket = self.system_topics if system else self.topics
        if len(bucket) < MAX_TOPICS:
            bucket.add(topic)
        if retained and not system and len(self.retained) < MAX_TOPICS:
            self.retained.add(topic)
        seen = self.retained_secrets if retained else self.live_secrets
        if topic in seen or (not retained and self.scanned >= MAX_SCANNED):
            return
        self.scanned += not retained
        hits = find_secrets(payload)
        if hits:
            seen[topic] = hits

    def add_secret_findings(self, report: TargetReport, *, who: str) -> None:
        for finding_id, found, what in (("retained_secrets", self.retained_secrets, "retained"),
                                        ("payload_secrets", self.live_secrets, "published")):
            topics = sorted(found)
            for topic in topics[:MAX_SECRET_FINDINGS]:
                hints = "; ".join(str(h) for h in found[topic])
                report.add(finding_id, f"{what} on {topic!r}, readable by {who}: {hints}")
            if len(topics) > MAX_SECRET_FINDINGS:
                report.add(finding_id, f"{len(topics) - MAX_SECRET_FINDINGS} more {what} "
                           f"topics with secrets, readable by {who}",
                           severity=Severity.INFO)


def examples(items: set[str], n: int = 3) -> str:
    shown = sorted(items)[:n]
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(shown) + more


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
