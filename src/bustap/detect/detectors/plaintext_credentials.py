"""A user name and password sent over a connection without TLS: anyone on
the path reads them (seed 001's brokers on the plaintext port)."""

from __future__ import annotations

from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Context, Finding, Keyed, group_key
from ._login import LoginDetector

_NOT_PASSWORDS = frozenset({"nkey", "jwt", "sig", "auth_token"})


@register_detector
class PlaintextCredentials(LoginDetector):
    id = "plaintext_credentials"
    title = "password login over plaintext"
    params = {"tls_ports": [8883, 8884]}
    tls_ports: list[int]

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.users: Keyed[list[str]] = Keyed(ctx.max_keys)  # per listener, for the summary

    def login(self, rec: Record, t: float) -> list[Finding]:
        user = rec.get("username")
        if not user or self.tls.secure(rec, self.tls_ports):
            return []
        creds = rec.get("credentials")
        if isinstance(creds, list) and creds and "pass" not in creds \
                and set(creds) & _NOT_PASSWORDS:
            return []
        # one alert per listener, naming the users it has seen
        broker = str(rec.get("broker") or "broker")
        port = rec.get("listener_port")
        group = {"broker": broker, "listener_port": port}
        key = group_key(group)
        users = self.users.touch(key, list)
        if user not in users and len(users) < 20:
            users.append(str(user))
        on = f" on port {port}" if port else ""
        return [self.hit(rec, t, group, f"passwords sent over plaintext to {broker}{on} "
                         f"(users: {', '.join(users)})", subject=f"{broker}{on}", key=key)]
