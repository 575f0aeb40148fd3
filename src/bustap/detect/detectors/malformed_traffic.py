"""Protocol errors in a burst, per address: malformed and oversize packets,
protocol violations, parser errors and bad subjects, as the broker's log
and the NATS monitoring endpoint tell them (MQTTSA's malformed-data test,
fuzzers, a broken client). Not learned: a burst of these is never normal,
so it fires from the start, like ``auth_failure_burst``."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import BurstDetector, Finding, who

#: reasons of client_disconnected that are the client's protocol errors
REASONS = frozenset({
    "protocol_error", "malformed_packet", "oversize_packet",  # mosquitto
    "parse_error", "protocol_violation", "bad_client_protocol_version",  # nats-server
    "maximum_payload_exceeded", "maximum_payload_violation",
})
#: -ERR texts nats-server sends without closing the connection
ERRORS = ("invalid subject", "invalid publish subject", "invalid subscription")


@register_detector
class MalformedTraffic(BurstDetector):
    id = "malformed_traffic"
    title = "malformed packets and protocol errors in a burst"
    events = frozenset({"client_disconnected", "error_sent"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if rec.get("event") == "error_sent":
            what = str(rec.get("error") or "").strip().lower()
            if not what.startswith(ERRORS):
                return []
        else:
            what = str(rec.get("reason") or "")
            if what not in REASONS:
                return []
        addr = rec.get("address")
        name = str(addr) if addr else who(rec)
        broker = rec.get("broker") or "broker"
        last = what.replace("_", " ")
        hit = self.burst(rec, t, {"address": name},
                         lambda n: f"{n} protocol errors from {name} within "
                         f"{self.within_secs:g}s ({broker}; last: {last})", subject=name)
        return [hit] if hit is not None else []
