"""Per-broker health: connected or not, since when, last message, reconnects,
last error. Kept by the pipeline from what the sources report (connection up,
connection down, messages), written into every ``log_init`` / ``log_close``
record and exported with the self-metrics (:class:`bustap.pipeline.Counters`),
so a fleet of brokers can be watched from the record stream alone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Close reasons that are not errors: we stopped, or the input ended.
_NOT_ERRORS = frozenset({"stopped", "end of stream", "end of file"})


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class BrokerHealth:
    connected: bool = False
    connects: int = 0
    since: float | None = None  # when it last came up or went down
    last_message: float | None = None
    last_error: str | None = None
    failures: int = 0  # failed connection attempts reported since the last success

    @property
    def reconnects(self) -> int:
        return max(self.connects - 1, 0)

    def fields(self) -> dict[str, Any]:
        """What a log_init / log_close record says about the broker."""
        out: dict[str, Any] = {"connected": self.connected, "reconnects": self.reconnects}
        if self.last_message is not None:
            out["last_message"] = _iso(self.last_message)
        if self.last_error is not None:
            out["last_error"] = self.last_error
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**self.fields(), "since": _iso(self.since), "failures": self.failures}


class Health:
    """The health of every source, by its (redacted) name."""

    def __init__(self) -> None:
        self.brokers: dict[str, BrokerHealth] = {}

    def _get(self, name: str) -> BrokerHealth:
        h = self.brokers.get(name)
        if h is None:
            h = self.brokers[name] = BrokerHealth()
        return h

    def up(self, name: str) -> BrokerHealth:
        h = self._get(name)
        h.connected = True
        h.connects += 1
        h.failures = 0
        h.since = time.time()
        return h

    def down(self, name: str, reason: str | None) -> BrokerHealth:
        h = self._get(name)
        if h.connected or h.since is None:
            h.since = time.time()
        if not h.connected:
            h.failures += 1
        h.connected = False
        if reason and reason not in _NOT_ERRORS:
            h.last_error = reason
        return h

    def seen(self, name: str, when: float) -> None:
        """Messages arrived from this source (called once per batch)."""
        self._get(name).last_message = when

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: h.as_dict() for name, h in sorted(self.brokers.items())}

    def summary(self) -> dict[str, int]:
        up = sum(h.connected for h in self.brokers.values())
        return {"brokers": len(self.brokers), "connected": up,
                "down": len(self.brokers) - up}
