"""A client too slow for its messages: nats-server's slow consumer, or
Mosquitto dropping outgoing messages for a client whose queue is full."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import Detector, Finding, where_from, who


@register_detector
class SlowConsumer(Detector):
    id = "slow_consumer"
    title = "slow consumer: messages dropped for a client"
    events = frozenset({"slow_consumer", "messages_dropped"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        client = who(rec)
        broker = rec.get("broker") or "broker"
        return [self.hit(rec, t, {"client": client},
                         f"{broker}: {client}{where_from(rec)} is a slow consumer, "
                         "messages are dropped", subject=client)]
