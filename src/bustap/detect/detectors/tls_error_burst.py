"""TLS handshake failures in a burst, per address (scanners, clients with
the wrong CA or an expired certificate, plaintext clients on a TLS port)."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import BurstDetector, Finding


@register_detector
class TlsErrorBurst(BurstDetector):
    id = "tls_error_burst"
    title = "TLS errors in a burst"
    events = frozenset({"tls_error"})

    def feed(self, rec: Record, t: float) -> list[Finding]:
        addr = str(rec.get("address") or "unknown address")
        error = str(rec.get("error") or "")[:120]
        hit = self.burst(rec, t, {"address": addr},
                         lambda n: f"{n} TLS errors from {addr} within {self.within_secs:g}s"
                         + (f" (last: {error})" if error else ""), subject=addr)
        return [hit] if hit is not None else []
