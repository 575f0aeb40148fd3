"""A client address never seen before (after learning): seed 001's "new
connections" from somewhere new."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import who
from ._novelty import NewValue


@register_detector
class NewAddress(NewValue):
    id = "new_address"
    title = "a client address never seen before"
    events = frozenset({"client_connected", "connection_opened"})
    what = "address"

    def value(self, rec: Record) -> str | None:
        addr = rec.get("address")
        return addr if isinstance(addr, str) else None

    def describe(self, rec: Record, value: str) -> str:
        client = f" ({who(rec)})" if rec.get("client_id") or rec.get("username") else ""
        return f"connection from a new address {value}{client}"
