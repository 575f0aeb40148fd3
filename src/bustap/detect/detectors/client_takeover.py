"""A client id taken over by a new connection: two devices fighting over one
id, or a session hijacked by someone who knows it (CVE-2026-33215 class)."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import BurstDetector, Finding


@register_detector
class ClientTakeover(BurstDetector):
    id = "client_takeover"
    title = "client id taken over by another connection"
    events = frozenset({"client_disconnected"})
    params = {"count": 1, "within_secs": 300.0}

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if rec.get("reason") != "takeover":
            return []
        cid = str(rec.get("client_id") or "?")
        old, new = rec.get("address"), rec.get("new_address")
        moved = bool(new) and new != old
        frm = f"{old}:{rec.get('port')}" if old else "?"
        to = f"{new}:{rec.get('new_port')}" if new else "a new connection"
        hit = self.burst(rec, t, {"client_id": cid},
                         lambda n: f"client id {cid!r} taken over by {to} (was {frm})"
                         + (f", {n} times" if n > 1 else ""), subject=cid)
        if hit is not None and not moved:
            hit.severity = "notice"  # same host: a reconnect before the old socket died
        return [hit] if hit is not None else []
