"""Live rates per topic and per client, for ``bustap top`` (nats-top's table,
for MQTT and NATS at once).

A :class:`RateTable` is a pipeline processor: message records count for
their topic; broker events ``publish_in`` (from a Mosquitto log tail) count
for their client. :meth:`RateTable.connz` adds nats-server connections from
``/connz`` (the server's own per-connection counters, by connection name).
Rates are the difference between two snapshots, so the table shows
msgs/s over the last refresh, as nats-top does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .record import Record

SORT_KEYS = ("msgs", "bytes", "total", "name", "last")


@dataclass
class Row:
    name: str
    kind: str  # mqtt | nats (topics), the broker (clients)
    total: int = 0
    bytes: int = 0
    last_seen: float = 0.0
    msgs_per_sec: float = 0.0
    bytes_per_sec: float = 0.0
    # totals at the previous snapshot, for the rates
    _prev_total: int = 0
    _prev_bytes: int = 0


class RateTable:
    def __init__(self, *, max_rows: int = 10_000) -> None:
        self.topics: dict[str, Row] = {}
        self.clients: dict[str, Row] = {}
        self.max_rows = max_rows
        self.overflow = 0  # records of topics past max_rows: counted, not tracked
        self._last_snapshot = time.monotonic()

    def __call__(self, records: list[Record]) -> None:
        now = time.time()
        for rec in records:
            kind = rec.get("kind")
            if kind == "message":
                self._count(self.topics, str(rec.get("topic")), str(rec.get("protocol") or ""),
                            rec.get("size"), now)
            elif kind == "broker_event" and rec.get("event") == "publish_in":
                who = rec.get("client_id")
                if who:
                    self._count(self.clients, str(who), str(rec.get("broker") or ""),
                                rec.get("size"), now)

    def _count(self, table: dict[str, Row], key: str, kind: str, size: Any, now: float
               ) -> None:
        row = table.get(key)
        if row is None:
            if len(table) >= self.max_rows:
                self.overflow += 1
                return
            row = table[key] = Row(key, kind)
        row.total += 1
        row.bytes += size if isinstance(size, int) else 0
        row.last_seen = now

    def connz(self, server: str, connz: dict[str, Any]) -> None:
        """nats-server's per-connection totals (``in_msgs``: what the client
        published) as client rows, named by the connection's name."""
        now = time.time()
        for c in connz.get("connections") or []:
            if not isinstance(c, dict):
                continue
            name = str(c.get("name") or f"cid:{c.get('cid')}")
            key = f"{name} ({server} cid:{c.get('cid')})"
            row = self.clients.get(key)
            if row is None:
                if len(self.clients) >= self.max_rows:
                    continue
                row = self.clients[key] = Row(name, "nats")
            total, size = int(c.get("in_msgs") or 0), int(c.get("in_bytes") or 0)
            if row.last_seen == 0.0:  # first sight: what it sent before is no rate
                row._prev_total, row._prev_bytes = total, size
            if total != row.total:
                row.last_seen = now
            row.total, row.bytes = total, size

    def snapshot(self) -> None:
        """Turn the counts since the last snapshot into rates."""
        now = time.monotonic()
        elapsed = max(now - self._last_snapshot, 1e-6)
        self._last_snapshot = now
        for table in (self.topics, self.clients):
            for row in table.values():
                row.msgs_per_sec = max(0, row.total - row._prev_total) / elapsed
                row.bytes_per_sec = max(0, row.bytes - row._prev_bytes) / elapsed
                row._prev_total, row._prev_bytes = row.total, row.bytes

    @staticmethod
    def sorted(rows: dict[str, Row], key: str, limit: int | None = None) -> list[Row]:
        if key == "name":
            out = sorted(rows.values(), key=lambda r: r.name)
        else:
            attr = {"msgs": "msgs_per_sec", "bytes": "bytes_per_sec", "total": "total",
                    "last": "last_seen"}[key]
            out = sorted(rows.values(), key=lambda r: (-getattr(r, attr), r.name))
        return out[:limit] if limit else out
