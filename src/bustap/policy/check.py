"""A policy held against what was seen: the broker events in the store
(parsed from the broker's log: who published and subscribed to what, what
the broker denied) decided one by one with :meth:`Policy.explain`.

A bus message as captured does not say who sent it; the broker's log does
(nats-server with ``-DV`` traces every PUB/SUB with the connection's user,
mosquitto with ``log_type all`` every PUBLISH/SUBSCRIBE with the client id),
so the log is what this reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..record import Record
from .model import Action, Breadth, Decision, Grant, Policy

BROKER_OF = {"nats": "nats", "mqtt": "mosquitto"}
_ACTIONS = {"publish_in": Action.PUBLISH, "subscribe": Action.SUBSCRIBE}


@dataclass
class Violation:
    user: str | None
    client_id: str | None
    action: Action
    subject: str
    decision: Decision
    attempts: int = 0  # PUBLISH/SUBSCRIBE seen in the log
    denied: int = 0  # denials the broker logged
    first_seen: str | None = None
    last_seen: str | None = None

    @property
    def count(self) -> int:
        return max(self.attempts, self.denied)

    @property
    def reason(self) -> str:
        if self.decision.allowed:
            return ("the broker denied it, but the policy allows it: is the broker running "
                    "another policy?")
        return self.decision.reason


@dataclass
class Unused:
    grant: Grant
    seen_users: bool  # was any user holding it seen at all


@dataclass
class Unknown:
    user: str
    count: int = 0
    events: set[str] = field(default_factory=set)
    first_seen: str | None = None


@dataclass
class CheckResult:
    events: int = 0
    users_seen: set[str] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)
    unused: list[Unused] = field(default_factory=list)
    broad: list[Breadth] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)


def check(policy: Policy, records: Iterable[Record]) -> CheckResult:
    broker = BROKER_OF[policy.protocol]
    result = CheckResult()
    seen: dict[tuple[str | None, str | None, Action, str], Violation] = {}
    used: set[str] = set()
    unknown: dict[str, Unknown] = {}
    cache: dict[tuple[str | None, str | None, Action, str], Decision] = {}

    def decide(user: str | None, cid: str | None, action: Action, subject: str
               ) -> Decision | None:
        # %c patterns need the client id; NATS decisions do not.
        key = (user, cid if policy.protocol == "mqtt" else None, action, subject)
        if key not in cache:
            try:
                cache[key] = policy.explain(user, action, subject, client_id=cid)
            except ConfigError:
                return None  # a subject the broker rejected as invalid anyway
        return cache[key]

    for rec in records:
        if rec.get("kind") != "broker_event" or rec.get("broker") != broker:
            continue
        event = rec.get("event")
        user = rec.get("username")
        user = str(user) if user else None
        cid = rec.get("client_id")
        cid = str(cid) if cid else None
        if policy.protocol == "nats":
            cid = None  # the log's cid:N is a connection number, not an identity
        stranger = user is not None and not policy.knows(user)
        if user is not None and event in ("client_connected", "publish_in", "subscribe",
                                          "acl_denied", "auth_failed"):
            if stranger:
                u = unknown.setdefault(user, Unknown(user, first_seen=rec.get("timestamp")))
                u.count += 1
                u.events.add(str(event))
            elif event != "auth_failed":
                result.users_seen.add(user)
        action = _ACTIONS.get(str(event))
        if event == "acl_denied":
            action = Action.SUBSCRIBE if rec.get("action") == "subscribe" else Action.PUBLISH
        topic = rec.get("topic")
        if action is None or not isinstance(topic, str) or not topic:
            continue
        result.events += 1
        d = decide(user, cid, action, topic)
        if d is None:
            continue
        if stranger and event != "acl_denied":
            continue  # listed with the unknown users: the policy says nothing of them
        if event != "acl_denied" and d.allowed:
            if d.grant:
                used.add(d.grant)
            continue
        key = (user, cid, action, topic)
        v = seen.get(key)
        if v is None:
            v = seen[key] = Violation(user, cid, action, topic, d,
                                      first_seen=rec.get("timestamp"))
        if event == "acl_denied":
            v.denied += 1
        else:
            v.attempts += 1
        v.last_seen = rec.get("timestamp")
    result.violations = list(seen.values())
    result.unknown = sorted(unknown.values(), key=lambda u: u.user)
    result.broad = policy.breadth()
    for g in policy.grants():
        if g.id in used:
            continue
        holders = [u for u in g.users if u in result.users_seen] if g.users else []
        # BOSH certificate clients: <id>.<client_name> holds client_name's grants.
        templated = policy.protocol == "nats" and any(
            u.endswith("." + h) for u in result.users_seen for h in g.users)
        result.unused.append(Unused(g, bool(holders) or templated or not g.users))
    return result
