"""What both policy formats answer: a :class:`Decision` for one (user,
action, subject), the grants a file gives (for least-privilege checks), and
the :class:`Policy` interface that ``policy explain`` and ``policy check`` use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Action(StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"


@dataclass(frozen=True)
class Decision:
    """``allowed`` or not, the ``rule`` that decides (None when no rule
    does: the broker's default), and a one-line ``reason``. ``grant`` is the
    id of the allow entry that permitted it (for the unused-grants report)."""

    allowed: bool
    rule: str | None
    reason: str
    grant: str | None = field(default=None, compare=False)
    note: str | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"allowed": self.allowed, "rule": self.rule,
                                  "reason": self.reason}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Grant:
    """One allow entry as written: who it is for (``who``: a user, a
    permission block shared by several users, or ``*`` for patterns and
    general rules), what it allows and where it is written (``rule``)."""

    id: str
    who: str
    action: Action | None  # None: both (mosquitto readwrite)
    pattern: str
    rule: str
    users: tuple[str, ...] = ()  # the users it applies to, when known


@dataclass(frozen=True)
class Breadth:
    """A grant (or the lack of one) wider than anyone needs."""

    who: str
    what: str
    rule: str
    why: str


class Policy(Protocol):
    protocol: str  # "nats" or "mqtt"
    path: str
    warnings: list[str]

    def explain(self, user: str | None, action: Action, subject: str, *,
                client_id: str | None = None) -> Decision: ...

    def knows(self, user: str) -> bool: ...

    def users(self) -> list[str]: ...

    def grants(self) -> list[Grant]: ...

    def breadth(self) -> list[Breadth]: ...
