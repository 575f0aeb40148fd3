"""What every detector is made of: the :class:`Detector` base, the
:class:`Hit` and :class:`Clear` it reports, bounded per-key state, and the
helpers that name who a broker event is about.

A detector sees records (one at a time, with the time the engine gives it)
and says what fires (:class:`Hit`) or what stopped (:class:`Clear`); the
engine owns the alert lifecycle (one alert per rule and group, throttling,
resolution, persistence), so a detector never decides when to notify.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from ..record import Record

V = TypeVar("V")


@dataclass(slots=True)
class Hit:
    """The condition of ``rule`` holds for the group ``key``."""

    key: str  # the group as one string (the alert identity within the rule)
    group: dict[str, Any]
    subject: str
    summary: str
    seqs: list[int]
    t: float
    source: str = ""
    count: int = 1
    severity: str | None = None  # overrides the rule's severity
    since: float | None = None  # when the condition began (a window's first event)


@dataclass(slots=True)
class Clear:
    """The condition stopped for ``key`` (detectors whose alerts do not
    simply resolve after a quiet time: a silent device that spoke again)."""

    key: str
    t: float


Finding = Hit | Clear


class Messages(list[Record]):
    """The ``kind: message`` records of a batch, with what several detectors
    take from them worked out once a batch, not once per detector."""

    @functools.cached_property
    def last_by_topic(self) -> dict[Any, Record]:
        """The last message of each topic (topics in the order they first came)."""
        return {rec.get("topic"): rec for rec in self}


class Keyed(OrderedDict[str, V], Generic[V]):
    """A dict capped at ``limit`` keys: the least recently used go first and
    are counted in ``evicted`` (bounded state, visible when the cap is hit)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.evicted = 0

    def touch(self, key: str, make: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            value = make()
            self[key] = value
            if len(self) > self.limit:
                self.popitem(last=False)
                self.evicted += 1
        else:
            self.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.limit:
            self.popitem(last=False)
            self.evicted += 1


@dataclass
class Context:
    """What the engine tells its detectors."""

    learn_secs: float = 600.0
    max_keys: int = 10_000
    admins: tuple[str, ...] = ("bustap*",)
    started: float = 0.0  # when learning began (kept across restarts)
    firing: Callable[[str, str], bool] = field(default=lambda rule, key: False)

    def learning(self, t: float) -> bool:
        return self.learn_secs > 0 and t - self.started < self.learn_secs

    def is_admin(self, *names: object) -> bool:
        return any(isinstance(n, str) and n and fnmatch.fnmatchcase(n, pat)
                   for n in names for pat in self.admins)


class Detector:
    """Base of the built-in detectors and of user rules.

    ``events``: the broker events it reads (None: every record, including
    messages; keep that for what truly needs messages, it is the hot path).
    ``params``: its tunables and their defaults, set from ``[detect]``.
    ``sticky``: its alerts resolve after a :class:`Clear`, not after
    ``resolve_secs`` without hits.
    ``messages``: it reads bus messages through :meth:`feed_messages`, all
    the messages of a batch in one call (cheaper than ``events = None``).
    """

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    severity: ClassVar[str] = "warning"
    events: ClassVar[frozenset[str] | None] = frozenset()
    params: ClassVar[dict[str, Any]] = {}
    sticky: ClassVar[bool] = False
    messages: ClassVar[bool] = False

    def __init__(self, ctx: Context, **params: Any) -> None:
        self.ctx = ctx
        self.rule_id = self.id
        self.level: str = params.get("severity", self.severity)
        # None: the engine's defaults ([detect] throttle_secs / resolve_secs)
        self.throttle_secs: float | None = params.get("throttle_secs")
        self.resolve_secs: float | None = params.get("resolve_secs")
        for name, default in self.params.items():
            setattr(self, name, params.get(name, default))

    def sticky_alerts(self) -> bool:
        return self.sticky

    def feed(self, rec: Record, t: float) -> Iterable[Finding]:
        return ()

    def feed_messages(self, recs: Messages, t: float) -> Iterable[Finding]:
        """The ``kind: message`` records of a batch, all at time ``t``
        (keep the work per message tiny: this is the capture's hot path)."""
        return ()

    def tick(self, now: float) -> Iterable[Finding]:
        return ()

    def state(self) -> dict[str, Any]:
        """What must survive a restart (learned values), as JSON data."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass

    def keyed(self) -> Iterator[Keyed[Any]]:
        """The bounded maps it keeps (their evictions are reported)."""
        for value in vars(self).values():
            if isinstance(value, Keyed):
                yield value

    def hit(self, rec: Record, t: float, group: dict[str, Any], summary: str, *,
            subject: str | None = None, seqs: list[int] | None = None, count: int = 1,
            severity: str | None = None, key: str | None = None) -> Hit:
        """A hit for ``group`` (``key``: its :func:`group_key`, when the caller has it)."""
        if key is None:
            key = group_key(group)
        seq = rec.get("seq")
        return Hit(key, group, subject if subject is not None else key, summary,
                   seqs if seqs is not None else ([seq] if isinstance(seq, int) else []),
                   t, str(rec.get("source") or ""), count, severity)


class Window:
    """``count`` events within ``within_secs`` per key (ElastAlert's
    frequency rule): a deque of the last ``count`` (time, seq)."""

    __slots__ = ("count", "events", "within")

    def __init__(self, count: int, within: float) -> None:
        self.count = count
        self.within = within
        self.events: list[tuple[float, int]] = []

    def add(self, t: float, seq: int) -> bool:
        """Add an event; True when the window is full."""
        ev = self.events
        ev.append((t, seq))
        if len(ev) > self.count:
            del ev[0]
        return len(ev) >= self.count and t - ev[0][0] <= self.within

    def seqs(self) -> list[int]:
        return [s for _, s in self.events]


class BurstDetector(Detector):
    """``count`` events within ``within_secs`` per group (the ``*_burst``
    detectors): the first hit carries the whole window as evidence, later
    ones while firing one event each."""

    params: ClassVar[dict[str, Any]] = {"count": 5, "within_secs": 60.0}
    count: int
    within_secs: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.windows: Keyed[Window] = Keyed(ctx.max_keys)

    def burst(self, rec: Record, t: float, group: dict[str, Any],
              summary: Callable[[int], str], *, subject: str | None = None) -> Hit | None:
        return window_hit(self, self.windows, self.count, self.within_secs, rec, t, group,
                          summary, subject)


def window_hit(det: Detector, windows: Keyed[Window], count: int, within: float, rec: Record,
               t: float, group: dict[str, Any], summary: Callable[[int], str],
               subject: str | None) -> Hit | None:
    """Add ``rec`` to its group's window; the hit, if the window is full or
    its alert already fires."""
    key = group_key(group)
    win = windows.touch(key, lambda: Window(count, within))
    seq = rec.get("seq")
    full = win.add(t, seq if isinstance(seq, int) else -1)
    if det.ctx.firing(det.rule_id, key):
        return det.hit(rec, t, group, summary(count), subject=subject, key=key)
    if not full:
        return None
    hit = det.hit(rec, t, group, summary(len(win.events)), subject=subject, seqs=win.seqs(),
                  count=len(win.events), key=key)
    hit.since = win.events[0][0]
    return hit


def group_key(group: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in group.items()) if group else "-"


# Client ids that clients make up per connection (mosquitto_pub/sub, paho,
# Mosquitto's auto ids, NATS connection ids): who the client is must come
# from something steadier, or every connection would be a "new client".
_GENERATED = re.compile(
    r"(?:auto-[0-9A-Fa-f-]{36}|mosq-[A-Za-z0-9]{16}|mosq(?:pub|sub)[|/_-].*|paho\d*[-_]?\w*"
    r"|cid:\d+|[0-9a-f]{32}|[0-9a-f-]{36})\Z")


def generated_id(client_id: str) -> bool:
    return _GENERATED.match(client_id) is not None


def who(rec: Record) -> str:
    """The client a broker event is about: the NATS connection name, a client
    id that is not made up per connection, the user name, else the address."""
    name = rec.get("name")
    if isinstance(name, str) and name:
        return name
    cid = rec.get("client_id")
    if isinstance(cid, str) and cid and not generated_id(cid):
        return cid
    user = rec.get("username")
    if isinstance(user, str) and user:
        return user
    return str(cid or rec.get("address") or "unknown")


def where_from(rec: Record) -> str:
    addr = rec.get("address")
    return f" from {addr}" if addr else ""
