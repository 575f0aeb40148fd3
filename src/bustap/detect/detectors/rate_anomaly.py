"""Messages per second per topic, per device and per publishing client (when
the broker's log tells it) far from their own baseline: floods (MQTTSA's
and mqtt-malaria's publish floods) and drops (a bridge that stopped).

Messages are counted per batch (a C-level ``Counter.update``); the
statistics run once per ``bucket_secs``. A spike is a bucket at least
``factor`` times the baseline, ``deviations`` deviations above it and at
least ``min_rate``; it fires as soon as the bucket's count passes that
mark and stays one alert until the rate falls under half the mark
(hysteresis). A drop (of a topic or a device: clients come and go) is
``drop_buckets`` buckets in a row, at least, under
``drop_ratio`` of a baseline of at least ``min_drop_rate``. Buckets that
are spikes or drops do not move the baseline."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Clear, Context, Detector, Finding, Hit, Keyed, Messages, who
from ._baseline import Buckets, Ewma, alpha_of, fmt_rate

_KINDS = ("topic", "device", "client")
DROP_EXPECTED = 20


class _Key:
    __slots__ = ("base", "high", "low", "state")

    def __init__(self, base: Ewma | None = None) -> None:
        self.base = base or Ewma()
        self.state = ""  # "", "spike", "drop"
        self.high = math.inf  # bucket count that makes a spike (inf: not armed)
        self.low = 0  # buckets in a row under the drop mark


@register_detector
class RateAnomaly(Detector):
    id = "rate_anomaly"
    title = "message rate far from its baseline (flood or drop)"
    events = frozenset({"publish_in"})  # per client: debug logs name the publisher
    messages = True
    sticky = True  # resolved when the rate is back to normal
    params = {"bucket_secs": 5.0, "factor": 5.0, "deviations": 6.0, "min_rate": 10.0,
              "drop_ratio": 0.1, "min_drop_rate": 1.0, "drop_buckets": 3,
              "warmup_buckets": 12, "half_life_buckets": 60.0}
    bucket_secs: float
    factor: float
    deviations: float
    min_rate: float
    drop_ratio: float
    min_drop_rate: float
    drop_buckets: int
    warmup_buckets: int
    half_life_buckets: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.keys: dict[str, Keyed[_Key]] = {k: Keyed(ctx.max_keys) for k in _KINDS}
        self.counts: dict[str, Counter[str]] = {k: Counter() for k in _KINDS}
        self.buckets = Buckets(self.bucket_secs)
        self.alpha = alpha_of(self.half_life_buckets)

    def keyed(self) -> Iterator[Keyed[Any]]:
        yield from self.keys.values()

    # --- counting -----------------------------------------------------------------

    def feed_messages(self, recs: Messages, t: float) -> list[Finding]:
        out = self._roll(t)
        batch = Counter([rec.get("topic") for rec in recs])
        out += self._count("topic", batch, recs, t)
        devices = [d for rec in recs if (d := rec.get("device"))]
        if devices:
            out += self._count("device", Counter(devices), recs, t)
        return out

    def feed(self, rec: Record, t: float) -> list[Finding]:
        out = self._roll(t)
        out += self._count("client", Counter([who(rec)]), [rec], t)
        return out

    def tick(self, now: float) -> list[Finding]:
        return self._roll(now)

    def _count(self, kind: str, batch: Counter[Any], recs: list[Record], t: float
               ) -> list[Finding]:
        counts = self.counts[kind]
        keys = self.keys[kind]
        out: list[Finding] = []
        for name, n in batch.items():
            if not isinstance(name, str):
                continue
            total = counts[name] = counts[name] + n
            k = keys.get(name)
            if k is None:
                keys.touch(name, _Key)
                continue
            keys.move_to_end(name)  # the least recently seen go first
            if total >= k.high and k.state != "spike":
                k.state = "spike"
                out.append(self._spike(kind, name, k, total, recs, t))
        return out

    # --- statistics, once a bucket ------------------------------------------------------

    def _roll(self, t: float) -> list[Finding]:
        out: list[Finding] = []
        for i in range(self.buckets.due(t)):
            for kind in _KINDS:
                out += self._evaluate(kind, self.counts[kind] if i == 0 else Counter(), t)
            self.counts = {k: Counter() for k in _KINDS}
        return out

    def _evaluate(self, kind: str, counts: Counter[str], t: float) -> list[Finding]:
        out: list[Finding] = []
        secs = self.buckets.secs
        learning = self.ctx.learning(t)
        for name, k in self.keys[kind].items():
            n = counts.get(name, 0)
            rate = n / secs
            base = k.base
            mean = base.mean
            if k.state == "spike":
                if n < k.high / 2:
                    k.state = ""
                    out.append(Clear(self._key(kind, name), t))
                continue
            # clients come and go: a drop is a topic's or a device's
            warm = base.n >= self.warmup_buckets and not learning and kind != "client"
            if warm and mean >= self.min_drop_rate and rate <= mean * self.drop_ratio:
                k.low += 1
                # long enough that chance would have brought DROP_EXPECTED messages
                need = max(self.drop_buckets, math.ceil(DROP_EXPECTED / (mean * secs)))
                if k.low >= need and k.state != "drop":
                    k.state = "drop"
                    out.append(Hit(self._key(kind, name), {kind: name}, name,
                                   f"{kind} {name}: {fmt_rate(rate)} for {k.low * secs:g}s, "
                                   f"normally {fmt_rate(mean)} (a drop)", [], t))
                if k.state == "drop" or k.low >= self.drop_buckets:
                    continue  # a drop that lasts does not lower the baseline
            else:
                k.low = 0
            if k.state == "drop":
                if rate >= mean / 2:
                    k.state = ""
                    out.append(Clear(self._key(kind, name), t))
                continue
            base.update(rate, self.alpha, floor=max(0.1 * mean, 0.1))
            if base.n >= self.warmup_buckets and not self.ctx.learning(t + secs):
                mean = base.mean
                mark = max(self.min_rate, self.factor * mean, mean + self.deviations * base.dev)
                k.high = math.ceil(mark * secs)
            else:
                k.high = math.inf
        return out

    def _spike(self, kind: str, name: str, k: _Key, n: int, recs: list[Record], t: float
               ) -> Hit:
        seqs = [s for rec in recs if (rec.get(kind) == name or kind == "client")
                and isinstance(s := rec.get("seq"), int)][-10:]
        elapsed = max(t - self.buckets.start, 1.0)
        return Hit(self._key(kind, name), {kind: name}, name,
                   f"{kind} {name}: {n} messages in {elapsed:.0f}s "
                   f"({fmt_rate(n / elapsed)}), normally {fmt_rate(k.base.mean)} (a flood)",
                   seqs, t, str(recs[-1].get("source") or "") if recs else "", n,
                   since=self.buckets.start)

    @staticmethod
    def _key(kind: str, name: str) -> str:
        return f"{kind}={name}"

    # --- state ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {kind: {name: [*k.base.dump(), k.state, None if k.high == math.inf else k.high]
                       for name, k in keys.items()}
                for kind, keys in self.keys.items() if keys}

    def restore(self, state: dict[str, Any]) -> None:
        for kind, items in state.items():
            if kind not in self.keys or not isinstance(items, dict):
                continue
            for name, v in items.items():
                if isinstance(v, list) and len(v) == 5:
                    k = _Key(Ewma.load(v[:3]))
                    k.state = str(v[3]) if v[3] in ("spike", "drop") else ""
                    k.high = math.inf if v[4] is None else int(v[4])
                    self.keys[kind].put(str(name), k)
