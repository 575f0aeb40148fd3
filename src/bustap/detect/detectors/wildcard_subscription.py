"""A subscription to everything (``#``, ``>``) or to the broker's own
topics (``$SYS/#``) by a client that is not an admin: the first thing a
scanner does (nmap's mqtt-subscribe, MQTTSA, mqtt-pwn)."""

from __future__ import annotations

from ...record import Record
from ...topics import split_shared
from .. import register_detector
from ..base import Detector, Finding, where_from, who

_BROAD = frozenset({"#", "+/#", "+/+/#", ">", "*.>", "*.*.>"})


def broad(topic: str) -> bool:
    if topic.startswith("$share/"):
        topic = split_shared(topic)[1]
    return topic in _BROAD or (topic.startswith("$SYS") and topic.endswith(("#", ">")))


@register_detector
class WildcardSubscription(Detector):
    id = "wildcard_subscription"
    title = "subscription to everything or to $SYS by a non-admin"
    events = frozenset({"subscribe"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        topic = rec.get("topic")
        if not isinstance(topic, str) or not broad(topic):
            return []
        if self.ctx.is_admin(rec.get("username"), rec.get("client_id"), rec.get("name")):
            return []
        client = who(rec)
        return [self.hit(rec, t, {"client": client, "topic": topic},
                         f"{client} subscribed to {topic!r}{where_from(rec)}", subject=client)]
