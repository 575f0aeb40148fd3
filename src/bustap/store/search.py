"""Finding records: the latest N matching a filter, all of them in chunks
(export), and new ones as they arrive (``--follow``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from ..record import Record
from .backend import Store
from .query import Filters
from .schema import COLUMN_NAMES, TABLE, row_to_record

_SELECT = f"SELECT {', '.join(COLUMN_NAMES)} FROM {TABLE}"


def search(store: Store, filters: Filters, *, limit: int | None = None) -> list[Record]:
    """Matching records in time order; with ``limit``, the most recent ``limit``."""
    where, params = filters.sql(store)
    if limit is not None:
        sql = f"{_SELECT} WHERE {where} ORDER BY ts DESC, seq DESC LIMIT ?"
        names, rows = store.execute(sql, [*params, int(limit)])
        rows.reverse()
    else:
        names, rows = store.execute(f"{_SELECT} WHERE {where} ORDER BY ts, seq", params)
    return [row_to_record(names, r) for r in rows]


def latest_alerts(notes: list[Record]) -> list[Record]:
    """Each alert among ``notes`` (alert records) in its latest notification,
    most recent first."""
    by_id: dict[str, Record] = {}
    for rec in notes:
        key = str(rec.get("alert_id") or (rec.get("rule"), rec.get("subject")))
        by_id[key] = rec
    return sorted(by_id.values(), key=lambda r: str(r.get("timestamp")), reverse=True)


def iterate(store: Store, filters: Filters, *, limit: int | None = None,
            size: int = 10_000) -> Iterator[list[Record]]:
    """All matching records in time order, in chunks (export)."""
    where, params = filters.sql(store)
    sql = f"{_SELECT} WHERE {where} ORDER BY ts, seq"
    if limit is not None:
        sql += " LIMIT ?"
        params = [*params, int(limit)]
    for names, rows in store.iterate(sql, params, size):
        yield [row_to_record(names, r) for r in rows]


def follow(open_store: Callable[[], Store], filters: Filters, emit: Callable[[list[Record]], Any],
           *, start: datetime | None, interval: float = 1.0,
           shown: list[Record] | None = None,
           stop: Callable[[], bool] = lambda: False) -> None:
    """Poll for records newer than ``start`` and pass them to ``emit``.

    The store is opened anew for each poll: a DuckDB file written by a
    capture in another process is only readable between its writes' locks,
    and a new connection sees what was committed since.
    """
    last = start
    # (writer_id, seq) of the records at the last timestamp, already emitted
    seen: set[tuple[Any, Any]] = {(r.get("writer_id"), r.get("seq")) for r in shown or ()}
    while not stop():
        try:
            store = open_store()
        except Exception:
            time.sleep(interval)
            continue
        try:
            where, params = filters.sql(store)
            sql = f"{_SELECT} WHERE {where}"
            if last is not None:
                sql += " AND ts >= ?"
                params = [*params, last]
            names, rows = store.execute(sql + " ORDER BY ts, seq", params)
        finally:
            store.close()
        fresh: list[Record] = []
        for row in rows:
            rec = row_to_record(names, row)
            ts = row[0]
            key = (rec.get("writer_id"), rec.get("seq"))
            if last is not None and ts == last and key in seen:
                continue
            if last is None or ts > last:
                last = ts
                seen = set()
            seen.add(key)
            fresh.append(rec)
        if fresh:
            emit(fresh)
        time.sleep(interval)
