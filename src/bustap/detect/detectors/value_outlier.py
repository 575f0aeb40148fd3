"""A numeric field of a device far from its own history: a BOSH agent's
load or memory that jumps, a sensor reading out of its range. The values
are the decoder's ``fields`` (``load.1m``, ``disk.persistent.percent``),
else the top-level numbers of a JSON payload, per topic (a router's event
types are topics of one device); the device is ``device``, else the topic.
Fields that name rather than measure (ids, indexes, ports, sequence numbers,
times, uptimes) are left out: a new process id is not an outlier.

Per device and field a robust EWMA (mean and absolute deviation, floored at
``rel_floor`` of the mean and at ``abs_floor``); a value ``deviations``
away fires, and the alert stays one until the values are back within half
that (then resolved). A shift that lasts ``adopt_samples`` values is the
new normal. One message per device and batch is looked at (the last)."""

from __future__ import annotations

import re
from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Clear, Context, Detector, Finding, Hit, Keyed, Messages
from ._baseline import Ewma, alpha_of

MAX_FIELDS = 64
_NAMES = re.compile(r"(?:^|[-_.])(?:id|pid|index|idx|seq|sequence|port|serial|time|timestamp|"
                    r"ts|epoch|date|uptime|version)s?(?:$|[-_.])", re.I)
_named: dict[str, bool] = {}


def names(field: str) -> bool:
    """True for a field that identifies rather than measures (cached)."""
    v = _named.get(field)
    if v is None:
        v = _named[field] = _NAMES.search(field) is not None or field.lower().endswith("id")
        if len(_named) > 100_000:
            _named.clear()
    return v


class _Field:
    __slots__ = ("base", "out")

    def __init__(self, base: Ewma | None = None, out: int = 0) -> None:
        self.base = base or Ewma()
        self.out = out  # values in a row that were outliers


def numbers(rec: Record) -> dict[str, float]:
    src = rec.get("fields")
    if not isinstance(src, dict):
        src = rec.get("payload")
        if not isinstance(src, dict):
            return {}
    out: dict[str, float] = {}
    for k, v in src.items():
        if type(v) in (int, float) and not names(k):
            out[k] = v
            if len(out) >= MAX_FIELDS:
                break
    return out


@register_detector
class ValueOutlier(Detector):
    id = "value_outlier"
    title = "a device's numeric value far from its own history"
    messages = True
    sticky = True  # resolved when the values are back to normal
    params = {"deviations": 8.0, "min_samples": 20, "rel_floor": 0.05, "abs_floor": 0.5,
              "adopt_samples": 30, "half_life_samples": 30.0}
    deviations: float
    min_samples: int
    rel_floor: float
    abs_floor: float
    adopt_samples: int
    half_life_samples: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.values: Keyed[_Field] = Keyed(ctx.max_keys)
        self.alpha = alpha_of(self.half_life_samples)

    def feed_messages(self, recs: Messages, t: float) -> list[Finding]:
        latest = recs.last_by_topic
        out: list[Finding] = []
        learning = self.ctx.learning(t)
        for topic, rec in latest.items():
            if isinstance(topic, str) and topic:
                for field, x in numbers(rec).items():
                    f = self._one(topic, field, x, rec, t, learning)
                    if f is not None:
                        out.append(f)
        return out

    def _one(self, topic: str, field: str, x: float, rec: Record, t: float,
             learning: bool) -> Finding | None:
        key = f"{topic}\x00{field}"
        v = self.values.touch(key, _Field)
        base = v.base
        floor = max(self.rel_floor * abs(base.mean), self.abs_floor)
        if base.n < self.min_samples or learning:
            base.update(x, self.alpha, floor)
            return None
        score = base.score(x, floor)
        akey = f"topic={topic},field={field}"
        if v.out:
            if score < self.deviations / 2:
                v.out = 0
                base.update(x, self.alpha, floor)
                return Clear(akey, t)
            v.out += 1
            if v.out >= self.adopt_samples:
                v.base = Ewma()  # a shift that lasted: the new normal
                v.base.update(x, self.alpha, floor)
                v.out = 0
                return Clear(akey, t)
            return None
        if score < self.deviations:
            base.update(x, self.alpha, floor)
            return None
        v.out = 1
        seq = rec.get("seq")
        name = str(rec.get("device") or topic)
        group = {"device": name, "topic": topic, "field": field} if name != topic else \
            {"topic": topic, "field": field}
        on = f" (on {topic})" if topic != name else ""
        return Hit(akey, group, name,
                   f"{name}{on}: {field} = {x:g}, normally {base.mean:.4g} "
                   f"±{max(base.dev, floor):.2g}", [seq] if isinstance(seq, int) else [], t,
                   str(rec.get("source") or ""))

    def state(self) -> dict[str, Any]:
        return {"values": [[k, *v.base.dump(), v.out] for k, v in self.values.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        for item in state.get("values", []):
            if isinstance(item, list) and len(item) == 5:
                self.values.put(str(item[0]), _Field(Ewma.load(item[1:4]), int(item[4])))
