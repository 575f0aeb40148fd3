"""The broker refused connections because it is full (``max_connections``):
a connection flood or the SlowITe slow DoS holding connections open."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import Detector, Finding, where_from


@register_detector
class MaxConnections(Detector):
    id = "max_connections"
    title = "connections refused: the broker is full"
    severity = "error"
    events = frozenset({"max_connections"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        broker = str(rec.get("broker") or "broker")
        src = str(rec.get("source") or "")
        return [self.hit(rec, t, {"broker": broker, "source": src},
                         f"{broker} refuses connections: maximum reached (last one"
                         f"{where_from(rec) or ' unknown'})", subject=broker)]
