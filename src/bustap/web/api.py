"""What the dashboard shows, as JSON-ready values read from a store.

Every function takes an open :class:`~bustap.store.backend.Store` and
returns plain dicts and lists; the HTTP layer (``app.py``) only opens the
store, calls, and serialises. Rates are measured over the ``window`` seconds
before the newest record (``as_of``), so a store captured yesterday still
shows what its traffic looked like; the page says when that was.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..record import Record
from ..store.backend import Store
from ..store.query import Filters
from ..store.schema import COLUMN_NAMES, TABLE, format_ts, row_to_record, to_ts
from ..store.search import latest_alerts, search
from ..store.stats import METRICS, stats

RATE_WINDOW_SECS = 60
MAX_TOPICS = 2000


def as_of(store: Store) -> datetime | None:
    """The time of the newest record: the end of every rate window."""
    _, rows = store.execute(f"SELECT max(ts) FROM {TABLE}")
    value = rows[0][0] if rows else None
    return value if isinstance(value, datetime) else None


def _client_name(store: Store) -> tuple[str, list[Any]]:
    # NATS connections by the name the client gave (nats-monitor's "name"), not cid:N
    expr, params = store.json_text("extra", ["name"])
    return f"COALESCE({expr}, client_id)", params


def overview(store: Store, *, window: float = RATE_WINDOW_SECS, span: int = 900
             ) -> dict[str, Any]:
    """Rates now and over time per source, clients, firing alerts, totals."""
    end = as_of(store)
    out: dict[str, Any] = {"as_of": format_ts(end), "window_secs": window, "sources": [],
                           "series": {}, "totals": {}, "clients": 0, "firing": 0}
    names, rows = store.execute(
        f"SELECT count(*) AS records, {METRICS['messages']} AS messages, "
        f"{METRICS['bytes']} AS bytes, count(*) FILTER (WHERE decode_error IS NOT NULL) "
        f"AS decode_errors, count(*) FILTER (WHERE event_type = 'alert') AS alerts, "
        f"min(ts) AS first, max(ts) AS last FROM {TABLE}")
    totals = dict(zip(names, rows[0], strict=True))
    out["totals"] = {k: format_ts(v) if isinstance(v, datetime) else v
                     for k, v in totals.items()}
    out["firing"] = sum(1 for a in alerts(store) if a.get("state") == "firing")
    out["clients"] = len(connected_clients(store))
    if end is None:
        return out
    window = _window(totals["first"], end, window)
    out["window_secs"] = round(window, 3)
    start = end - timedelta(seconds=window)
    _, rows = store.execute(
        f"SELECT source, {METRICS['messages']}, {METRICS['bytes']}, count(*) FROM {TABLE} "
        "WHERE ts > ? AND event_type = 'log' AND source IS NOT NULL GROUP BY source "
        "ORDER BY 2 DESC, 1", [start])
    recent = {r[0]: r for r in rows}
    _, rows = store.execute(
        f"SELECT source, {METRICS['messages']}, {METRICS['bytes']}, max(ts) FROM {TABLE} "
        "WHERE event_type = 'log' AND source IS NOT NULL GROUP BY source ORDER BY 1")
    for source, messages, size, last in rows:
        r = recent.get(source)
        out["sources"].append({
            "source": source, "messages": messages, "bytes": size,
            "last": format_ts(last),
            "msgs_per_sec": round(r[1] / window, 3) if r else 0.0,
            "bytes_per_sec": round(r[2] / window, 3) if r else 0.0,
            "records_per_sec": round(r[3] / window, 3) if r else 0.0})
    out["msgs_per_sec"] = round(sum(s["msgs_per_sec"] for s in out["sources"]), 3)
    out["bytes_per_sec"] = round(sum(s["bytes_per_sec"] for s in out["sources"]), 3)
    since = end - timedelta(seconds=span)
    every = _every(store, since, None)
    series = stats(store, Filters(since=since), by="source", every=every, top=None,
                   order="records")
    out["series"] = {
        "every": every,
        "messages": _series(series.series("messages"), every, totals["first"], end),
        "bytes": _series(series.series("bytes"), every, totals["first"], end)}
    return out


def _every(store: Store, since: datetime | None, until: datetime | None,
           points: int = 60) -> int:
    """A bucket size that draws about ``points`` points over the data in the
    range (not over the range: a 10-second capture in a 1-hour range is
    still a line, not one dot)."""
    filters = Filters(since=since, until=until, event_types=["log"])
    where, params = filters.sql(store)
    _, rows = store.execute(f"SELECT min(ts), max(ts) FROM {TABLE} WHERE {where}", params)
    first, last = rows[0] if rows else (None, None)
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        return 60
    span = (last - first).total_seconds()
    for size in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600,
                 43200, 86400):
        if span / size <= points:
            return size
    return 86400


def _window(first: Any, end: datetime, window: float) -> float:
    """The rate window, shortened to the data when the store holds less
    (a 10-second capture is 10 seconds of traffic, not a sixth of a minute)."""
    if isinstance(first, datetime):
        window = min(window, (end - first).total_seconds())
    return max(window, 1.0)


def _series(data: dict[str, list[tuple[datetime, float]]], every: int, first: Any,
            end: datetime) -> dict[str, dict[str, list[Any]]]:
    """Per group, ``x`` (bucket start) and ``y`` (per second) lists for plotly.
    The first and last buckets are divided by the seconds of them that the
    data covers: a bucket the capture was half-way through is no drop."""

    def rate(start: datetime, value: float) -> float:
        lo = max(start, first) if isinstance(first, datetime) else start
        hi = min(start + timedelta(seconds=every), end)
        # at least a quarter bucket: a few messages in its last milliseconds are no spike
        return round(value / max((hi - lo).total_seconds(), every / 4), 3)

    # a source that carries no messages (a log tail, a monitor) draws no line
    return {name: {"x": [format_ts(p[0]) for p in points],
                   "y": [rate(p[0], p[1]) for p in points]}
            for name, points in data.items() if any(p[1] for p in points)}


def topics(store: Store, *, window: float = RATE_WINDOW_SECS, limit: int = MAX_TOPICS
           ) -> dict[str, Any]:
    """Every topic and subject with its count, rate, and last message."""
    _, rows = store.execute(f"SELECT min(ts), max(ts) FROM {TABLE}")
    first, end = rows[0]
    if end is not None:
        window = _window(first, end, window)
    start = (end - timedelta(seconds=window)) if end else None
    cols = ", ".join(COLUMN_NAMES)
    names, rows = store.execute(
        f"SELECT t.*, c.n, c.nbytes, c.recent, c.retained FROM ("
        f"  SELECT {cols}, row_number() OVER (PARTITION BY topic ORDER BY ts DESC, seq DESC) "
        f"  AS rn FROM {TABLE} WHERE kind = 'message' AND topic IS NOT NULL) t JOIN ("
        f"  SELECT topic AS ctopic, count(*) AS n, coalesce(sum(size), 0) AS nbytes, "
        f"  count(*) FILTER (WHERE ts > ?) AS recent, bool_or(coalesce(retain, false)) "
        f"  AS retained FROM {TABLE} WHERE kind = 'message' AND topic IS NOT NULL "
        f"  GROUP BY topic) c ON c.ctopic = t.topic WHERE t.rn = 1 ORDER BY t.topic LIMIT ?",
        [start or datetime(1970, 1, 1), int(limit)])
    out = []
    n_cols = len(COLUMN_NAMES)
    for row in rows:
        rec = row_to_record(names[:n_cols], row[:n_cols])
        n, nbytes, recent, retained = row[n_cols + 1:]
        out.append({"topic": rec.get("topic"), "protocol": rec.get("protocol"),
                    "count": n, "bytes": nbytes,
                    "msgs_per_sec": round(recent / window, 3),
                    "retained": bool(retained), "last_seen": rec.get("timestamp"),
                    "last": _message(rec)})
    return {"as_of": format_ts(end), "window_secs": round(window, 3), "topics": out,
            "truncated": len(out) >= limit}


def _message(rec: Record) -> dict[str, Any]:
    keys = ("seq", "writer_id", "timestamp", "source", "protocol", "topic", "qos", "retain",
            "size", "format", "payload", "decoder", "device", "event", "severity", "fields",
            "headers", "decode_error", "reply")
    return {k: rec[k] for k in keys if k in rec}


def topic_detail(store: Store, topic: str, *, limit: int = 20, points: int = 500
                 ) -> dict[str, Any]:
    """One topic's history: messages per bucket, numeric values over time, last messages."""
    recs = _topic_records(store, topic, points)
    values: dict[str, dict[str, list[Any]]] = {}
    for rec in recs:
        for name, value in _numbers(rec):
            s = values.setdefault(name, {"x": [], "y": []})
            s["x"].append(rec.get("timestamp"))
            s["y"].append(value)
    # at most 8 value lines: a chart with 50 lines reads as none
    values = dict(list(values.items())[:8])
    counts: dict[str, Any] = {"x": [], "y": [], "every": 0}
    if recs:
        first = to_ts(recs[0]["timestamp"])
        last = to_ts(recs[-1]["timestamp"])
        span = max(1.0, (last - first).total_seconds())
        every = max(1, int(span // 60))
        # a published topic has no wildcards: the filter is the exact topic
        res = stats(store, Filters(topics=[topic], since=first), by="topic", every=every,
                    top=None, order="messages")
        pts = res.series("messages").get(topic, [])
        counts = {"x": [format_ts(p[0]) for p in pts], "y": [p[1] for p in pts],
                  "every": every}
    return {"topic": topic, "values": values, "counts": counts,
            "messages": [_message(r) for r in reversed(recs[-limit:])]}


def _topic_records(store: Store, topic: str, points: int) -> list[Record]:
    cols = ", ".join(COLUMN_NAMES)
    names, rows = store.execute(
        f"SELECT {cols} FROM {TABLE} WHERE kind = 'message' AND topic = ? "
        "ORDER BY ts DESC, seq DESC LIMIT ?", [topic, int(points)])
    rows.reverse()
    return [row_to_record(names, r) for r in rows]


def _numbers(rec: Record) -> list[tuple[str, float]]:
    """The numbers a message carries: the payload itself, or its flat fields
    and top-level JSON numbers."""
    payload = rec.get("payload")
    if isinstance(payload, int | float) and not isinstance(payload, bool):
        return [("value", float(payload))]
    found: list[tuple[str, float]] = []
    for source in (rec.get("fields"), payload):
        if isinstance(source, dict):
            for k, v in source.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    found.append((str(k), float(v)))
            if found:
                return found
    if isinstance(payload, str):
        try:
            return [("value", float(payload))]
        except ValueError:
            return []
    return found


def timeline(store: Store, *, by: str, metric: str, since: datetime | None,
             until: datetime | None = None, every: int | None = None, top: int = 10
             ) -> dict[str, Any]:
    """``bustap stats --every`` as plotly series: one line per group."""
    if since is None:
        end = as_of(store)
        since = (end - timedelta(hours=1)) if end else None
    every = every or _every(store, since, until)
    res = stats(store, Filters(since=since, until=until), by=by, every=every, top=top,
                order=metric)
    # stats names NATS clients by their connection name already
    return {"by": by, "metric": metric, "every": every, "since": format_ts(since),
            "series": {k: {"x": [format_ts(p[0]) for p in v], "y": [p[1] for p in v]}
                       for k, v in res.series(metric).items() if any(p[1] for p in v)}}


def connected_clients(store: Store) -> list[str]:
    """Clients whose last connection event is a connect."""
    name, params = _client_name(store)
    _, rows = store.execute(
        f"SELECT who, ev FROM (SELECT {name} AS who, event AS ev, row_number() OVER "
        f"(PARTITION BY broker, client_id ORDER BY ts DESC, seq DESC) AS rn FROM {TABLE} "
        "WHERE kind = 'broker_event' AND client_id IS NOT NULL "
        "AND event IN ('client_connected', 'client_disconnected')) t WHERE rn = 1",
        params)
    return sorted(str(r[0]) for r in rows if r[1] == "client_connected")


def events(store: Store, *, since: datetime | None = None, limit: int = 200
           ) -> dict[str, Any]:
    """Broker events, newest first, and per client: connections, auth
    failures, denials, addresses."""
    name, params = _client_name(store)
    cond, cparams = "kind = 'broker_event'", []
    if since is not None:
        cond += " AND ts >= ?"
        cparams.append(since)
    cols = ", ".join(COLUMN_NAMES)
    names, rows = store.execute(
        f"SELECT {cols}, {name} AS who FROM {TABLE} WHERE {cond} "
        "ORDER BY ts DESC, seq DESC LIMIT ?", [*params, *cparams, int(limit)])
    listed = []
    for row in rows:
        rec = row_to_record(names[:-1], row[:-1])
        listed.append({k: rec.get(k) for k in (
            "timestamp", "broker", "event", "client_id", "address", "username", "topic",
            "reason", "line")} | {"client": row[-1]})
    _, rows = store.execute(
        f"SELECT {name} AS who, broker, "
        "count(*) FILTER (WHERE event = 'client_connected') AS connections, "
        "count(*) FILTER (WHERE event = 'auth_failed') AS auth_failures, "
        "count(*) FILTER (WHERE event = 'acl_denied') AS denials, "
        "count(*) FILTER (WHERE event IN ('publish_in', 'publish_out')) AS publishes, "
        "count(*) FILTER (WHERE event = 'subscribe') AS subscribes, "
        "max(address) AS address, max(username) AS username, max(ts) AS last_seen "
        f"FROM {TABLE} WHERE {cond} AND (client_id IS NOT NULL OR address IS NOT NULL) "
        "GROUP BY 1, 2 ORDER BY 4 DESC, 5 DESC, 10 DESC, 1 LIMIT ?",
        [*params, *cparams, int(limit)])
    clients = [{"client": r[0] or "(unknown)", "broker": r[1], "connections": r[2],
                "auth_failures": r[3], "denials": r[4], "publishes": r[5],
                "subscribes": r[6], "address": r[7], "username": r[8],
                "last_seen": format_ts(r[9])} for r in rows]
    return {"events": listed, "clients": clients}


def alerts(store: Store, *, since: datetime | None = None) -> list[Record]:
    """Each alert in its latest notification, most recent first (``bustap alerts``)."""
    return latest_alerts(search(store, Filters(since=since, event_types=["alert"])))


def evidence(store: Store, alert_id: str) -> dict[str, Any] | None:
    """An alert and the records its ``evidence`` seqs point at (same writer)."""
    found = [a for a in alerts(store) if str(a.get("alert_id")) == alert_id]
    if not found:
        return None
    alert = found[0]
    seqs = [s for s in alert.get("evidence") or [] if isinstance(s, int)][:500]
    records: list[Record] = []
    if seqs:
        cols = ", ".join(COLUMN_NAMES)
        names, rows = store.execute(
            f"SELECT {cols} FROM {TABLE} WHERE writer_id = ? AND seq IN "
            f"({', '.join('?' for _ in seqs)}) ORDER BY ts, seq",
            [alert.get("writer_id"), *seqs])
        records = [row_to_record(names, r) for r in rows]
    return {"alert": alert, "records": records}


def records_since(store: Store, after: datetime | None, *, limit: int = 50
                  ) -> tuple[datetime | None, int, list[Record]]:
    """What arrived after ``after``: the newest time, how many, the last few."""
    if after is None:
        return as_of(store), 0, []
    _, rows = store.execute(f"SELECT count(*), max(ts) FROM {TABLE} WHERE ts > ?", [after])
    n, newest = rows[0]
    if not n:
        return after, 0, []
    return newest, int(n), search(store, Filters(since=after + timedelta(microseconds=1)),
                                  limit=limit)

