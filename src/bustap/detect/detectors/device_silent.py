"""A device, topic or publishing client that spoke on a regular period
stopped: a BOSH agent's heartbeat, a sensor, a router's telemetry. The
period and its jitter are learned per key (robust EWMA of the gaps between
messages); silent once nothing came for ``periods`` periods (plus four
jitters); resolved when it speaks again.

Messages close together (under half of ``min_period_secs``) are one beat:
a sensor that sends three readings at once has one period. Keys faster
than ``min_period_secs`` or too irregular (jitter above ``max_jitter`` of
the period) are left to ``rate_anomaly``."""

from __future__ import annotations

from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Clear, Context, Detector, Finding, Hit, Keyed, Messages, generated_id, who
from ._baseline import Ewma, alpha_of


class _Beat:
    __slots__ = ("gaps", "last", "peak", "seq", "silent", "topic")

    def __init__(self, last: float, topic: str = "", seq: int = -1,
                 gaps: Ewma | None = None, peak: float = 0.0) -> None:
        self.last = last
        self.topic = topic
        self.seq = seq
        self.gaps = gaps or Ewma()
        self.peak = peak  # the longest recent gap (decays slowly)
        self.silent = False


@register_detector
class DeviceSilent(Detector):
    id = "device_silent"
    title = "a device or topic that published regularly went silent"
    events = frozenset({"publish_in"})  # per client, from debug logs
    messages = True
    sticky = True  # resolved when it speaks again
    params = {"periods": 3.0, "min_beats": 10, "max_jitter": 0.25, "min_period_secs": 1.0,
              "max_period_secs": 86400.0, "half_life_beats": 20.0}
    periods: float
    min_beats: int
    max_jitter: float
    min_period_secs: float
    max_period_secs: float
    half_life_beats: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.beats: Keyed[_Beat] = Keyed(ctx.max_keys)
        self.alpha = alpha_of(self.half_life_beats)
        self.decay = 1.0 - alpha_of(self.half_life_beats * 2)
        self.checked = 0.0
        self.resumed = True  # False after restore(): the downtime is not silence

    def feed_messages(self, recs: Messages, t: float) -> list[Finding]:
        self._resume(t)
        # silences first: in a log, the next line after a gap is when it shows
        out = self._check(t)
        latest = {rec.get("device") or rec.get("topic"): rec for rec in recs}
        for name, rec in latest.items():
            if isinstance(name, str) and name:
                kind = "device" if rec.get("device") else "topic"
                self._beat(out, f"{kind}={name}", rec, t)
        return out

    def feed(self, rec: Record, t: float) -> list[Finding]:
        self._resume(t)
        out = self._check(t)
        client = who(rec)
        # a connection id or an address changes with every reconnect: only
        # clients with a steady name can be missed
        if not generated_id(client) and client != rec.get("address"):
            self._beat(out, f"client={client}", rec, t)
        return out

    def tick(self, now: float) -> list[Finding]:
        return self._check(now)

    def _beat(self, out: list[Finding], key: str, rec: Record, t: float) -> None:
        seq = rec.get("seq")
        seq = seq if isinstance(seq, int) else -1
        topic = str(rec.get("topic") or "")
        b = self.beats.get(key)
        if b is None:
            self.beats.put(key, _Beat(t, topic, seq))
            return
        self.beats.move_to_end(key)
        gap = t - b.last
        b.last, b.seq, b.topic = t, seq, topic
        if b.silent:
            b.silent = False
            out.append(Clear(key, t))
            return  # the silence is not a period
        if gap >= self.min_period_secs / 2:
            # clipped far out only: the jitter must show how irregular it is
            b.gaps.update(gap, self.alpha, floor=max(0.05 * b.gaps.mean, 0.01), clip=10.0)
            b.peak = max(gap, b.peak * self.decay)

    def _resume(self, now: float) -> None:
        if not self.resumed:
            self.resumed = True
            for b in self.beats.values():
                b.last = max(b.last, now)

    def _regular(self, b: _Beat) -> bool:
        g = b.gaps
        return (g.n >= self.min_beats and self.min_period_secs <= g.mean <= self.max_period_secs
                and g.dev <= self.max_jitter * g.mean)

    def _check(self, now: float) -> list[Finding]:
        if now - self.checked < 1.0:
            return []
        self.checked = now
        self._resume(now)
        if self.ctx.learning(now):
            return []
        out: list[Finding] = []
        for key, b in self.beats.items():
            if b.silent or not self._regular(b):
                continue
            g = b.gaps
            quiet = now - b.last
            # a gap it has made before (1.5 x the longest recent one) is not silence
            if quiet > max(self.periods * g.mean + 4 * g.dev, 1.5 * b.peak):
                b.silent = True
                kind, _, name = key.partition("=")
                on = f" on {b.topic}" if b.topic and b.topic != name else ""
                out.append(Hit(key, {kind: name}, name,
                               f"{kind} {name} silent for {quiet:.0f}s{on} (it published "
                               f"every {g.mean:.3g}s ±{g.dev:.2g}s)",
                               [b.seq] if b.seq >= 0 else [], now, since=b.last))
        return out

    def state(self) -> dict[str, Any]:
        return {"beats": [[k, b.last, b.topic, b.seq, *b.gaps.dump(), round(b.peak, 3),
                           b.silent]
                          for k, b in self.beats.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        for item in state.get("beats", []):
            if isinstance(item, list) and len(item) == 9:
                key, last, topic, seq, *gaps, peak, silent = item
                b = _Beat(float(last), str(topic), int(seq), Ewma.load(gaps), float(peak))
                b.silent = bool(silent)
                self.beats.put(str(key), b)
        self.resumed = False
