"""The periodic dump (pmacct's ``dump_init`` / ``dump`` / ``dump_close``).

:class:`DumpState` is a pipeline processor: for each batch it updates, per
topic/subject and per client, a few counters and the last values (constant
work per record, no I/O). :meth:`DumpState.snapshot` copies that state (a
shallow copy per entry, microseconds per thousand topics) so the dump
records are built from an immutable copy off the ingest path: capture never
waits for a dump. :func:`dump_from_store` builds the same records from a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .record import EventType, Record

#: Longest payload kept as "last payload" per topic; longer ones are cut
#: (the whole message is in the msglog / store).
MAX_LAST_PAYLOAD = 4096


@dataclass(frozen=True, slots=True)
class Snapshot:
    topics: dict[tuple[str, str], dict[str, Any]]
    clients: dict[str, dict[str, Any]]
    sources: frozenset[str]


def _cut(payload: Any) -> Any:
    if isinstance(payload, str) and len(payload) > MAX_LAST_PAYLOAD:
        return payload[:MAX_LAST_PAYLOAD] + "…"
    return payload


class DumpState:
    """Pipeline processor: ``Pipeline(processors=[state])``."""

    def __init__(self) -> None:
        self.topics: dict[tuple[str, str], dict[str, Any]] = {}
        self.clients: dict[str, dict[str, Any]] = {}
        self.sources: set[str] = set()
        self._publisher: dict[str, str] = {}  # topic -> last client seen publishing it

    def __call__(self, records: list[Record]) -> None:
        topics = self.topics
        for rec in records:
            kind = rec.get("kind")
            if kind == "message":
                topic = rec.get("topic")
                if not isinstance(topic, str):
                    continue
                key = (str(rec.get("protocol") or ""), topic)
                ts = rec.get("timestamp")
                entry = topics.get(key)
                if entry is None:
                    entry = topics[key] = {"count": 0, "bytes": 0, "first_seen": ts}
                    self.sources.add(str(rec.get("source") or ""))
                entry["count"] += 1
                entry["bytes"] += rec.get("size") or 0
                entry["last_seen"] = ts
                entry["format"] = rec.get("format")
                entry["last_payload"] = rec.get("payload")
                publisher = self._publisher.get(topic)
                if publisher is not None:
                    entry["last_publisher"] = publisher
            elif kind == "broker_event":
                self._broker_event(rec)

    def _broker_event(self, rec: Record) -> None:
        client_id = rec.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            return
        event = rec.get("event")
        ts = rec.get("timestamp")
        entry = self.clients.get(client_id)
        if entry is None:
            entry = self.clients[client_id] = {"first_seen": ts, "connected": None,
                                               "publish": 0, "subscribe": 0}
            self.sources.add(str(rec.get("source") or ""))
        entry["last_seen"] = ts
        for key in ("address", "username", "broker", "protocol_version"):
            if rec.get(key) is not None:
                entry[key] = rec[key]
        if event == "client_connected":
            entry["connected"] = True
            entry["connected_at"] = ts
        elif event in ("client_disconnected", "timeout", "socket_error"):
            entry["connected"] = False
            entry["disconnected_at"] = ts
        elif event == "publish_in":
            entry["publish"] += 1
            topic = rec.get("topic")
            if isinstance(topic, str):
                self._publisher[topic] = client_id
                if len(self._publisher) > 200_000:
                    self._publisher.clear()
        elif event == "subscribe":
            entry["subscribe"] += 1
        elif event == "auth_failed":
            entry["auth_failures"] = entry.get("auth_failures", 0) + 1

    def snapshot(self) -> Snapshot:
        return Snapshot({k: dict(v) for k, v in self.topics.items()},
                        {k: dict(v) for k, v in self.clients.items()},
                        frozenset(self.sources))


def dump_records(snap: Snapshot, *, period: float | None, source: str) -> list[Record]:
    """``dump_init``, one ``dump`` per topic and per client, ``dump_close``
    (unstamped: the pipeline's writer gives them seq and timestamp)."""
    out: list[Record] = [{"event_type": EventType.DUMP_INIT.value, "source": source,
                          "dump_period": period}]
    for (protocol, topic), entry in sorted(snap.topics.items(), key=lambda kv: kv[0][1]):
        rec: Record = {"event_type": EventType.DUMP.value, "source": source,
                       "kind": "topic", "protocol": protocol or None, "topic": topic,
                       "count": entry["count"], "bytes": entry["bytes"],
                       "first_seen": entry.get("first_seen"),
                       "last_seen": entry.get("last_seen"),
                       "format": entry.get("format"),
                       "payload": _cut(entry.get("last_payload"))}
        if entry.get("last_publisher"):
            rec["last_publisher"] = entry["last_publisher"]
        out.append({k: v for k, v in rec.items() if v is not None})
    for client_id, entry in sorted(snap.clients.items()):
        rec = {"event_type": EventType.DUMP.value, "source": source, "kind": "client",
               "client_id": client_id, **{k: v for k, v in entry.items() if v is not None}}
        out.append(rec)
    out.append({"event_type": EventType.DUMP_CLOSE.value, "source": source,
                "tables": max(1, len(snap.sources)), "entries": len(out) - 1})
    return out


def dump_from_store(store: Any, filters: Any, *, source: str) -> list[Record]:
    """The same dump, computed by the store over the records that match ``filters``."""
    from .store.schema import TABLE, format_ts, json_value

    where, params = filters.sql(store)
    _, rows = store.execute(
        f"SELECT protocol, topic, count(*), coalesce(sum(size), 0), min(ts), max(ts) "
        f"FROM {TABLE} WHERE {where} AND kind = 'message' AND event_type = 'log' "
        f"GROUP BY protocol, topic ORDER BY topic", params)
    _, last_rows = store.execute(
        f"SELECT DISTINCT ON (protocol, topic) protocol, topic, format, payload FROM {TABLE} "
        f"WHERE {where} AND kind = 'message' AND event_type = 'log' "
        f"ORDER BY protocol, topic, ts DESC, seq DESC", params)
    last = {(r[0], r[1]): (r[2], json_value(r[3]) if r[3] is not None else None)
            for r in last_rows}
    _, pub_rows = store.execute(
        f"SELECT DISTINCT ON (topic) topic, client_id FROM {TABLE} WHERE {where} AND "
        f"kind = 'broker_event' AND event = 'publish_in' AND topic IS NOT NULL "
        f"ORDER BY topic, ts DESC, seq DESC", params)
    publishers = {r[0]: r[1] for r in pub_rows}
    _, src_rows = store.execute(f"SELECT DISTINCT source FROM {TABLE} WHERE {where} "
                                f"AND event_type = 'log'", params)
    snap_topics: dict[tuple[str, str], dict[str, Any]] = {}
    for protocol, topic, count, size, first, last_seen in rows:
        fmt, payload = last.get((protocol, topic), (None, None))
        entry: dict[str, Any] = {"count": int(count), "bytes": int(size),
                                 "first_seen": format_ts(first),
                                 "last_seen": format_ts(last_seen),
                                 "format": fmt, "last_payload": payload}
        if topic in publishers:
            entry["last_publisher"] = publishers[topic]
        snap_topics[(protocol or "", topic)] = entry
    state = DumpState()  # replaying the broker events gives each client's state
    _, ev_rows = store.execute(
        f"SELECT ts, event, client_id, address, username, broker, topic, source FROM {TABLE} "
        f"WHERE {where} AND kind = 'broker_event' AND client_id IS NOT NULL "
        f"ORDER BY ts, seq", params)
    state([{"kind": "broker_event", "timestamp": format_ts(r[0]), "event": r[1],
            "client_id": r[2], "address": r[3], "username": r[4], "broker": r[5],
            "topic": r[6], "source": r[7]} for r in ev_rows])
    sources = frozenset(str(r[0]) for r in src_rows)
    snap = Snapshot(snap_topics, {k: dict(v) for k, v in state.clients.items()}, sources)
    return dump_records(snap, period=None, source=source)
