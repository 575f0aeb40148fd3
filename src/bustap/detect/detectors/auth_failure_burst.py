"""Failed logins in a burst, per address and per user name (brute force:
MQTTSA, mqtt-pwn, Metasploit's MQTT scanner)."""

from __future__ import annotations

from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Context, Detector, Finding, Keyed, Window, burst


@register_detector
class AuthFailureBurst(Detector):
    id = "auth_failure_burst"
    title = "failed logins in a burst (password guessing)"
    events = frozenset({"auth_failed"})
    params = {"count": 5, "within_secs": 60.0}
    count: int
    within_secs: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.windows: Keyed[Window] = Keyed(ctx.max_keys)

    def feed(self, rec: Record, t: float) -> list[Finding]:
        out: list[Finding] = []
        broker = rec.get("broker") or "broker"
        for name, value in (("address", rec.get("address")), ("username", rec.get("username"))):
            if not value:
                continue
            what = f"from {value}" if name == "address" else f"as user {value!r}"

            def summary(n: int, what: str = what) -> str:
                return f"{n} failed logins {what} within {self.within_secs:g}s ({broker})"

            hit = burst(self, self.windows, rec, t, {name: value}, summary,
                        count=self.count, within=self.within_secs, subject=str(value))
            if hit is not None:
                out.append(hit)
        return out
