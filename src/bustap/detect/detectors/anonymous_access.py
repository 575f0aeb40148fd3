"""A login without any credentials was accepted (``allow_anonymous true``, a
nats-server without authorization): seed 000's router open to 0.0.0.0/0."""

from __future__ import annotations

from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Context, Finding, where_from, who
from ._login import LoginDetector


@register_detector
class AnonymousAccess(LoginDetector):
    id = "anonymous_access"
    title = "anonymous login accepted"
    events = LoginDetector.events | {"broker_info"}

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        # nats-servers whose /varz says auth_required: a connection /connz shows
        # without a user there never logged in (a port probe, a failed login)
        self.auth_required: set[str] = set()

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if rec.get("event") == "broker_info":
            if rec.get("auth_required"):
                self.auth_required.add(str(rec.get("source")))
            return []
        return super().feed(rec, t)

    def login(self, rec: Record, t: float) -> list[Finding]:
        if rec.get("username") or rec.get("credentials"):
            return []
        if str(rec.get("source")) in self.auth_required:
            return []
        if rec.get("broker") == "nats" and self.tls.secure(rec, []):
            return []  # a certificate may be the credential (verify_and_map)
        broker = str(rec.get("broker") or "broker")
        port = rec.get("listener_port")
        on = f" on port {port}" if port else ""
        return [self.hit(rec, t, {"broker": broker, "listener_port": port},
                         f"{broker} accepted an anonymous login{on} ({who(rec)}"
                         f"{where_from(rec)})", subject=f"{broker}{on}")]
