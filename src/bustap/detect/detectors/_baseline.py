"""What the behaviour detectors learn "normal" with: a robust EWMA (a mean
and a mean absolute deviation that one outlier moves only a bounded step,
with a floor so that a value that never moved does not make every change
an outlier), and the fixed time buckets that rates are counted in."""

from __future__ import annotations

from typing import Any


class Ewma:
    """Exponentially weighted mean and absolute deviation.

    The first samples are plain averages (``1/n``), then ``alpha`` weighs
    the newest. A sample farther than ``clip`` deviations (at least
    ``floor``) from the mean counts as if it were at that distance: a flood
    or a spike does not drag the baseline along with it.
    """

    __slots__ = ("dev", "mean", "n")

    def __init__(self, mean: float = 0.0, dev: float = 0.0, n: int = 0) -> None:
        self.mean = mean
        self.dev = dev
        self.n = n

    def update(self, x: float, alpha: float, floor: float, clip: float = 3.0) -> None:
        n = self.n = self.n + 1
        if n == 1:
            self.mean = x
            return
        a = max(alpha, 1.0 / n)
        d = x - self.mean
        lim = max(clip * self.dev, floor)
        if d > lim:
            d = lim
        elif d < -lim:
            d = -lim
        self.mean += a * d
        self.dev += a * (abs(d) - self.dev)

    def score(self, x: float, floor: float) -> float:
        """How many deviations (at least ``floor``) ``x`` is from the mean."""
        return abs(x - self.mean) / max(self.dev, floor)

    def dump(self) -> list[float]:
        return [round(self.mean, 6), round(self.dev, 6), self.n]

    @classmethod
    def load(cls, data: Any) -> Ewma:
        mean, dev, n = data
        return cls(float(mean), float(dev), int(n))


def alpha_of(half_life: float) -> float:
    """The EWMA weight whose influence halves after ``half_life`` samples."""
    return float(1.0 - 0.5 ** (1.0 / max(half_life, 1.0)))


class Buckets:
    """Fixed time buckets of ``secs``: :meth:`due` says how many ended by
    ``t`` (at most ``limit`` empty ones are replayed after a long gap, as in
    a log with a quiet night: the rest is skipped)."""

    __slots__ = ("secs", "start")

    def __init__(self, secs: float) -> None:
        self.secs = max(secs, 0.01)
        self.start = 0.0

    def due(self, t: float, limit: int = 10) -> int:
        if not self.start:
            self.start = t
            return 0
        n = int((t - self.start) // self.secs)
        if n <= 0:
            return 0
        self.start += n * self.secs
        return min(n, limit)


def fmt_rate(x: float) -> str:
    return f"{x:.0f}/s" if x >= 10 else f"{x:.2g}/s"
