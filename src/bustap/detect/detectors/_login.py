"""Logins that the broker accepted. Mosquitto logs ``New client connected``
only after the credentials were checked; nats-server traces the CONNECT
before it checks it, so a NATS login counts once its connection does
anything but fail authentication."""

from __future__ import annotations

from typing import Any

from ...record import Record
from ..base import Context, Detector, Finding, Keyed
from ._tls import TlsSeen

EVENTS = frozenset({"client_connected", "auth_failed", "client_disconnected", "subscribe",
                    "unsubscribe", "publish_in", "publish_out", "packet_in", "packet_out",
                    "payload"})
_FAILED = frozenset({"authentication_failure", "authorization_violation", "auth_failed"})


class Logins:
    def __init__(self, max_keys: int) -> None:
        self.pending: Keyed[tuple[Record, float]] = Keyed(max_keys)

    def feed(self, rec: Record, t: float) -> tuple[Record, float] | None:
        """The accepted ``client_connected`` record that ``rec`` confirms, if any."""
        ev = rec.get("event")
        source = str(rec.get("source") or "")
        if rec.get("broker") != "nats" or source.startswith("nats-monitor"):
            return (rec, t) if ev == "client_connected" else None
        key = f"{source}\x00{rec.get('client_id')}"
        if ev == "client_connected":
            self.pending.put(key, (rec, t))
            return None
        held = self.pending.pop(key, None)
        if held is None or ev == "auth_failed" or rec.get("reason") in _FAILED:
            return None
        return held


class LoginDetector(Detector):
    """A detector of accepted logins, knowing which ran over TLS."""

    events = EVENTS | {"tls_handshake", "tls_required"}

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.tls = TlsSeen(ctx.max_keys)
        self.logins = Logins(ctx.max_keys)

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if self.tls.note(rec):
            return []
        login = self.logins.feed(rec, t)
        return [] if login is None else self.login(*login)

    def login(self, rec: Record, t: float) -> list[Finding]:
        raise NotImplementedError
