"""A client publishing to a ``$`` topic (``$SYS/...``): only the broker
writes there; clients that try are probing (MQTTSA's malformed-data test
publishes to ``$``, ``$topic``; CVE-2018-12543 crashed brokers with it)."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import Detector, Finding, where_from, who


@register_detector
class DollarTopicPublish(Detector):
    id = "dollar_topic_publish"
    title = "a client published to a $ topic"
    events = frozenset({"publish_in", "acl_denied"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        topic = rec.get("topic")
        if not isinstance(topic, str) or not topic.startswith("$"):
            return []
        if rec.get("event") == "acl_denied" and rec.get("action", "publish") != "publish":
            return []
        if rec.get("broker") == "nats" and not topic.startswith("$SYS"):
            return []  # $JS.API, $KV... are how NATS clients use JetStream
        client = who(rec)
        denied = " (denied)" if rec.get("event") == "acl_denied" else ""
        return [self.hit(rec, t, {"client": client, "topic": topic},
                         f"{client} published to {topic!r}{denied}{where_from(rec)}",
                         subject=client)]
