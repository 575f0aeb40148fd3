"""A login without any credentials was accepted (``allow_anonymous true``, a
nats-server without authorization): seed 000's router open to 0.0.0.0/0."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import Finding, where_from, who
from ._login import LoginDetector


@register_detector
class AnonymousAccess(LoginDetector):
    id = "anonymous_access"
    title = "anonymous login accepted"

    def login(self, rec: Record, t: float) -> list[Finding]:
        if rec.get("username") or rec.get("credentials"):
            return []
        if rec.get("broker") == "nats" and self.tls.secure(rec, []):
            return []  # a certificate may be the credential (verify_and_map)
        broker = str(rec.get("broker") or "broker")
        port = rec.get("listener_port")
        on = f" on port {port}" if port else ""
        return [self.hit(rec, t, {"broker": broker, "listener_port": port},
                         f"{broker} accepted an anonymous login{on} ({who(rec)}"
                         f"{where_from(rec)})", subject=f"{broker}{on}")]
