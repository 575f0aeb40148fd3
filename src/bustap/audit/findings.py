"""What an audit finds, how bad it is, and the three ways to write it down
(terminal rows are the command's business; JSON and SARIF 2.1.0 live here so
that tests and CI read the same shape).

Every finding id is in :data:`CATALOGUE` with its default severity, a title
and a one-line fix; a check may raise or lower the severity for its case (a
wildcard read by an anonymous client is worse than by a named user).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import ConfigError


class Severity(enum.IntEnum):
    """Ordered: ``Severity.HIGH > Severity.LOW``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = "|".join(s.name.lower() for s in cls)
            raise ConfigError(f"severity must be {names}, not {text!r}", value=text) from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Rule:
    severity: Severity
    title: str
    fix: str


H, M, L, INFO = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO

CATALOGUE: dict[str, Rule] = {
    "tls_missing": Rule(H, "No TLS: traffic and passwords travel in clear",
                        "enable a TLS listener (MQTT 8883, NATS tls {}) and close the "
                        "plaintext one"),
    "tls_optional": Rule(M, "TLS offered but not required",
                         "require TLS on every listener (NATS: tls {} without allow_non_tls; "
                         "MQTT: remove the plaintext listener)"),
    "cert_invalid": Rule(H, "Certificate does not verify",
                         "serve a certificate from a trusted CA, valid now, for the host "
                         "name clients use"),
    "cert_expiring": Rule(M, "Certificate expires soon",
                          "renew the certificate before it expires (automate the renewal)"),
    "cert_self_signed": Rule(M, "Self-signed certificate",
                             "issue the server certificate from a CA that clients pin or "
                             "trust"),
    "anonymous_access": Rule(H, "Anonymous clients are accepted",
                             "require authentication (Mosquitto: allow_anonymous false and "
                             "password_file; NATS: authorization {} or accounts)"),
    "wildcard_subscribe": Rule(H, "Every topic can be read with one wildcard",
                               "restrict reads per user with ACLs (Mosquitto acl_file, NATS "
                               "subscribe permissions)"),
    "sys_exposed": Rule(M, "Broker internals readable",
                        "deny $SYS to clients that are not monitoring tools (ACL / system "
                        "account)"),
    "retained_secrets": Rule(H, "Retained messages hold secrets",
                             "clear the retained messages (publish an empty retained payload) "
                             "and rotate the exposed secrets"),
    "payload_secrets": Rule(M, "Live messages carry secrets",
                            "stop publishing credentials on the bus; rotate the exposed "
                            "secrets"),
    "version_outdated": Rule(M, "Broker release with published advisories",
                             "upgrade the broker to the lowest safe release of its line or "
                             "later"),
    "plaintext_credentials": Rule(H, "Credentials accepted over plaintext",
                                  "accept passwords and tokens only over TLS"),
    "monitor_exposed": Rule(M, "NATS monitoring port answers without authentication",
                            "bind http_port to 127.0.0.1 or firewall it (it has no "
                            "authentication)"),
    "jetstream_exposed": Rule(H, "JetStream API reachable",
                              "give JetStream only to accounts that need it and deny "
                              "$JS.API.> to other users"),
    "write_allowed": Rule(H, "Publishing is allowed",
                          "restrict writes per user with ACLs / publish permissions"),
    "mqtt5_unsupported": Rule(INFO, "MQTT 5 not supported",
                              "where clients need MQTT 5 (reason codes, expiry, user "
                              "properties), move to a broker that speaks it (Mosquitto 1.6+)"),
}

LEVEL = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
         Severity.INFO: "note"}
# GitHub code scanning maps security-severity >= 7 high, >= 4 medium, > 0 low.
SECURITY_SEVERITY = {Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
                     Severity.INFO: "0.0"}


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    severity: Severity
    target: str  # redacted URL (or host:port of the port that was probed)
    evidence: str  # what was seen; never a secret
    fix: str

    @classmethod
    def make(cls, finding_id: str, target: str, evidence: str, *,
             severity: Severity | None = None) -> Finding:
        rule = CATALOGUE[finding_id]
        return cls(finding_id, rule.severity if severity is None else severity, target,
                   evidence, rule.fix)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": str(self.severity), "target": self.target,
                "evidence": self.evidence, "fix": self.fix}


@dataclass(slots=True)
class TargetReport:
    """One audited URL: what the broker said about itself, what was found,
    and what could not be checked (``notes``)."""

    target: str
    protocol: str
    broker: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the target could not be audited at all

    def add(self, finding_id: str, evidence: str, *, severity: Severity | None = None,
            target: str | None = None) -> None:
        self.findings.append(Finding.make(finding_id, target or self.target, evidence,
                                          severity=severity))

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "protocol": self.protocol, "broker": self.broker,
                "findings": [f.to_dict() for f in sort_findings(self.findings)],
                "notes": self.notes, "error": self.error}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Worst first, then by id and target, so reports are stable."""
    return sorted(findings, key=lambda f: (-f.severity, f.id, f.target))


def worst(reports: list[TargetReport]) -> Severity | None:
    found = [f.severity for r in reports for f in r.findings]
    return max(found) if found else None


def fails(reports: list[TargetReport], fail_on: Severity) -> bool:
    """True when a finding reaches ``fail_on``: the command exits 1."""
    top = worst(reports)
    return top is not None and top >= fail_on


def counts(reports: list[TargetReport]) -> dict[str, int]:
    out = {str(s): 0 for s in sorted(Severity, reverse=True)}
    for r in reports:
        for f in r.findings:
            out[str(f.severity)] += 1
    return out


def to_json(reports: list[TargetReport], fail_on: Severity) -> dict[str, Any]:
    return {"tool": "bustap", "version": __version__, "fail_on": str(fail_on),
            "failed": fails(reports, fail_on), "counts": counts(reports),
            "targets": [r.to_dict() for r in reports]}


def to_sarif(reports: list[TargetReport]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: every catalogue entry is a rule, every
    finding a result located at its target URL."""
    rule_ids = list(CATALOGUE)
    rules = [{
        "id": rid,
        "name": "".join(w.capitalize() for w in rid.split("_")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"{rule.title}. Fix: {rule.fix}."},
        "help": {"text": rule.fix, "markdown": f"**Fix:** {rule.fix}"},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {"tags": ["security", "mqtt", "nats"],
                       "security-severity": SECURITY_SEVERITY[rule.severity]},
    } for rid, rule in CATALOGUE.items()]
    results = []
    for report in reports:
        for f in sort_findings(report.findings):
            digest = hashlib.sha256(f"{f.id}\0{f.target}".encode()).hexdigest()[:32]
            results.append({
                "ruleId": f.id,
                "ruleIndex": rule_ids.index(f.id),
                "level": LEVEL[f.severity],
                "message": {"text": f"{CATALOGUE[f.id].title}: {f.evidence}"},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": f.target}},
                    "logicalLocations": [{"name": f.target, "kind": "resource"}],
                }],
                "partialFingerprints": {"bustapFinding/v1": digest},
                "properties": {"severity": str(f.severity),
                               "security-severity": SECURITY_SEVERITY[f.severity],
                               "fix": f.fix},
            })
    invocations = [{"executionSuccessful": all(r.error is None for r in reports),
                    "toolExecutionNotifications": [
                        {"level": "error", "message": {"text": f"{r.target}: {r.error}"}}
                        for r in reports if r.error]}]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "bustap", "version": __version__, "rules": rules}},
            "invocations": invocations,
            "results": results,
        }],
    }
