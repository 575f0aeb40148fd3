"""Failed logins in a burst, per address and per user name (brute force:
MQTTSA, mqtt-pwn, Metasploit's MQTT scanner)."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import BurstDetector, Finding


@register_detector
class AuthFailureBurst(BurstDetector):
    id = "auth_failure_burst"
    title = "failed logins in a burst (password guessing)"
    events = frozenset({"auth_failed"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        out: list[Finding] = []
        broker = rec.get("broker") or "broker"
        for name, value in (("address", rec.get("address")), ("username", rec.get("username"))):
            if not value:
                continue
            what = f"from {value}" if name == "address" else f"as user {value!r}"

            def summary(n: int, what: str = what) -> str:
                return f"{n} failed logins {what} within {self.within_secs:g}s ({broker})"

            hit = self.burst(rec, t, {name: value}, summary, subject=str(value))
            if hit is not None:
                out.append(hit)
        return out
