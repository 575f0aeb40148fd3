"""TLS handshake failures in a burst, per address (scanners, clients with
the wrong CA or an expired certificate, plaintext clients on a TLS port)."""

from __future__ import annotations

from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Context, Detector, Finding, Keyed, Window, burst


@register_detector
class TlsErrorBurst(Detector):
    id = "tls_error_burst"
    title = "TLS errors in a burst"
    events = frozenset({"tls_error"})
    params = {"count": 5, "within_secs": 60.0}
    count: int
    within_secs: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.windows: Keyed[Window] = Keyed(ctx.max_keys)

    def feed(self, rec: Record, t: float) -> list[Finding]:
        addr = str(rec.get("address") or "unknown address")
        error = str(rec.get("error") or "")[:120]
        hit = burst(self, self.windows, rec, t, {"address": addr},
                    lambda n: f"{n} TLS errors from {addr} within {self.within_secs:g}s"
                    + (f" (last: {error})" if error else ""),
                    count=self.count, within=self.within_secs, subject=addr)
        return [hit] if hit is not None else []
