"""A JSON payload on a topic whose shape changed after learning: a key never
seen before, a key that was always there gone, a value of another type (a
number that became a string). Keys are paths into the object, nested to
``depth`` levels (``vitals.cpu.sys``).

One payload per topic and batch is looked at (the last), so the cost does
not grow with the message rate; a change that lasts is seen at once, a
single odd message among many may not be. A topic is learned from its
first ``min_samples`` payloads; a new shape that lasts ``adopt_secs``
becomes the learned one (a firmware update), and its alert resolves."""

from __future__ import annotations

from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Context, Detector, Finding, Hit, Keyed, Messages

MAX_KEYS = 200  # a payload with more keys is a map of ids, not a schema


def _type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if v is None:
        return "null"
    return "object"


def shape(payload: dict[str, Any], depth: int) -> dict[str, str] | None:
    """Path -> type of a JSON object; None when it has too many keys."""
    out: dict[str, str] = {}
    stack: list[tuple[str, dict[str, Any], int]] = [("", payload, 1)]
    while stack:
        prefix, obj, level = stack.pop()
        for k, v in obj.items():
            path = prefix + str(k)
            if isinstance(v, dict) and v and level < depth:
                stack.append((path + ".", v, level + 1))
            else:
                out[path] = _type(v)
            if len(out) > MAX_KEYS:
                return None
    return out


class _Schema:
    __slots__ = ("always", "drift_since", "n", "types")

    def __init__(self) -> None:
        self.types: dict[str, set[str]] = {}
        self.always: set[str] = set()
        self.n = 0
        self.drift_since = 0.0

    def learn(self, s: dict[str, str]) -> None:
        self.always = set(s) if self.n == 0 else self.always & set(s)
        self.n += 1
        for k, ty in s.items():
            self.types.setdefault(k, set()).add(ty)

    def diff(self, s: dict[str, str]) -> list[str]:
        changes: list[str] = []
        new = [k for k in s if k not in self.types]
        if new:
            changes.append("new key" + ("s " if len(new) > 1 else " ")
                           + ", ".join(repr(k) for k in sorted(new)[:5]))
        gone = sorted(self.always - set(s))
        if gone:
            changes.append("missing " + ", ".join(repr(k) for k in gone[:5]))
        for k, ty in sorted(s.items()):
            known = self.types.get(k)
            if known and ty not in known and ty != "null" and known != {"null"}:
                changes.append(f"{k!r} {'/'.join(sorted(known))} -> {ty}")
        return changes


@register_detector
class SchemaDrift(Detector):
    id = "schema_drift"
    title = "the keys or value types of a topic's JSON payloads changed"
    messages = True
    params = {"min_samples": 20, "depth": 3, "adopt_secs": 3600.0}
    min_samples: int
    depth: int
    adopt_secs: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.schemas: Keyed[_Schema] = Keyed(ctx.max_keys)

    def feed_messages(self, recs: Messages, t: float) -> list[Finding]:
        latest = recs.last_by_topic
        out: list[Finding] = []
        for topic, rec in latest.items():
            payload = rec.get("payload")
            if isinstance(payload, dict) and isinstance(topic, str) and payload:
                hit = self._check(topic, payload, rec, t)
                if hit is not None:
                    out.append(hit)
        return out

    def _check(self, topic: str, payload: dict[str, Any], rec: Record, t: float
               ) -> Hit | None:
        s = shape(payload, self.depth)
        if s is None:
            return None
        schema = self.schemas.touch(topic, _Schema)
        if schema.n < self.min_samples or self.ctx.learning(t):
            schema.learn(s)
            return None
        changes = schema.diff(s)
        if not changes:
            schema.drift_since = 0.0
            return None
        if not schema.drift_since:
            schema.drift_since = t
        elif t - schema.drift_since >= self.adopt_secs:
            fresh = _Schema()  # the new shape is the normal one now
            fresh.learn(s)
            fresh.n = self.min_samples
            self.schemas.put(topic, fresh)
            return None
        seq = rec.get("seq")
        return Hit(f"topic={topic}", {"topic": topic}, topic,
                   f"payload schema of {topic} changed: {'; '.join(changes)}",
                   [seq] if isinstance(seq, int) else [], t,
                   str(rec.get("source") or ""), since=schema.drift_since)

    def state(self) -> dict[str, Any]:
        return {"schemas": {topic: [s.n, sorted(s.always),
                                    {k: sorted(v) for k, v in s.types.items()}]
                            for topic, s in self.schemas.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        items = state.get("schemas")
        if not isinstance(items, dict):
            return
        for topic, v in items.items():
            if isinstance(v, list) and len(v) == 3 and isinstance(v[2], dict):
                s = _Schema()
                s.n = int(v[0])
                s.always = {str(k) for k in v[1]}
                s.types = {str(k): {str(x) for x in ty} for k, ty in v[2].items()}
                self.schemas.put(str(topic), s)
