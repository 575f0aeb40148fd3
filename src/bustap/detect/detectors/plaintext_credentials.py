"""A user name and password sent over a connection without TLS: anyone on
the path reads them (seed 001's brokers on the plaintext port)."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import Finding, where_from
from ._login import LoginDetector

_NOT_PASSWORDS = frozenset({"nkey", "jwt", "sig", "auth_token"})


@register_detector
class PlaintextCredentials(LoginDetector):
    id = "plaintext_credentials"
    title = "password login over plaintext"
    params = {"tls_ports": [8883, 8884]}
    tls_ports: list[int]

    def login(self, rec: Record, t: float) -> list[Finding]:
        user = rec.get("username")
        if not user or self.tls.secure(rec, self.tls_ports):
            return []
        creds = rec.get("credentials")
        if isinstance(creds, list) and creds and "pass" not in creds \
                and set(creds) & _NOT_PASSWORDS:
            return []
        port = rec.get("listener_port")
        on = f" on port {port}" if port else ""
        return [self.hit(rec, t, {"username": user, "listener_port": port},
                         f"user {user!r} logged in with a password over plaintext{on}"
                         f"{where_from(rec)}", subject=str(user))]
