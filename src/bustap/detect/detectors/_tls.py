"""Which connections ran over TLS, as far as the broker's log and the
monitoring endpoint tell: nats-server logs each TLS handshake and whether its
client port requires TLS; /connz gives ``tls_version``; a Mosquitto log does
not say, so its TLS ports are a setting (``tls_ports``)."""

from __future__ import annotations

from ...record import Record
from ..base import Keyed


class TlsSeen:
    def __init__(self, max_keys: int) -> None:
        self.conns: Keyed[bool] = Keyed(max_keys)
        self.sources: set[str] = set()  # nats-servers whose client port requires TLS

    def note(self, rec: Record) -> bool:
        """Learn from a TLS event; True when ``rec`` was one."""
        ev = rec.get("event")
        if ev == "tls_handshake":
            self.conns.put(f"{rec.get('source')}\x00{rec.get('client_id')}", True)
            return True
        if ev == "tls_required":
            self.sources.add(str(rec.get("source")))
            return True
        return False

    def secure(self, rec: Record, tls_ports: list[int]) -> bool:
        if rec.get("tls") or rec.get("tls_version"):
            return True
        if rec.get("listener_port") in tls_ports:
            return True
        if rec.get("broker") == "nats" and str(rec.get("source")) in self.sources:
            return True
        return f"{rec.get('source')}\x00{rec.get('client_id')}" in self.conns
