"""The one table both stores use, and how records map onto it.

Every envelope and common broker_event field has its own column (typed, so
the stores can filter and group without parsing JSON); ``fields``,
``payload``, ``headers`` and ``properties`` are JSON columns; whatever else a
record carries (a broker event's ``port`` or ``line``, an alert's
``evidence``, a dump's counters) goes to the ``extra`` JSON column, so a
record read back is the record that was written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ..record import Record, parse_timestamp

TABLE = "records"


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # column in the table
    key: str  # key in the record
    duck: str  # DuckDB type
    pg: str  # PostgreSQL type

    @property
    def is_json(self) -> bool:
        return self.duck == "JSON"


def _c(name: str, duck: str = "VARCHAR", pg: str = "text", key: str | None = None) -> Column:
    return Column(name, key or name, duck, pg)


COLUMNS: tuple[Column, ...] = (
    _c("ts", "TIMESTAMP", "timestamp", key="timestamp"),
    _c("seq", "BIGINT", "bigint"),
    _c("writer_id"),
    _c("event_type"),
    _c("source"),
    _c("kind"),
    _c("protocol"),
    _c("broker"),
    _c("topic"),
    _c("qos", "SMALLINT", "smallint"),
    _c("retain", "BOOLEAN", "boolean"),
    _c("dup", "BOOLEAN", "boolean"),
    _c("reply"),
    _c("size", "BIGINT", "bigint"),
    _c("format"),
    _c("decoder"),
    _c("device"),
    _c("event"),
    _c("severity"),
    _c("client_id"),
    _c("address"),
    _c("username"),
    _c("rule"),
    _c("decode_error"),
    _c("headers", "JSON", "jsonb"),
    _c("properties", "JSON", "jsonb"),
    _c("fields", "JSON", "jsonb"),
    _c("payload", "JSON", "jsonb"),
    _c("extra", "JSON", "jsonb", key="_bustap_extra"),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
BY_NAME = {c.name: c for c in COLUMNS}
#: Record keys that have a column of their own; any other key goes to ``extra``.
KNOWN_KEYS = frozenset(c.key for c in COLUMNS if c.name != "extra")
EXTRA_KEY = "_bustap_extra"
_INT_COLS = frozenset(c.key for c in COLUMNS if c.duck in ("BIGINT", "SMALLINT"))
_BOOL_COLS = frozenset(c.key for c in COLUMNS if c.duck == "BOOLEAN")
_JSON_COLS = frozenset(c.key for c in COLUMNS if c.is_json)
_INT_LIMITS = {"qos": 32767}
_MAX_BIGINT = 2**63 - 1


def duckdb_ddl(table: str = TABLE) -> str:
    cols = ", ".join(f"{c.name} {c.duck}" for c in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def postgres_ddl(table: str = TABLE) -> list[str]:
    cols = ", ".join(f"{c.name} {c.pg}" for c in COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ({cols})",
        f"CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts)",
        f"CREATE INDEX IF NOT EXISTS {table}_topic_ts ON {table} (topic, ts)",
        f"CREATE INDEX IF NOT EXISTS {table}_device_ts ON {table} (device, ts)",
        f"CREATE INDEX IF NOT EXISTS {table}_client_ts ON {table} (client_id, ts)",
    ]


def with_extra(rec: Record) -> Record:
    """The record with its keys that have no column moved under EXTRA_KEY
    (only when there are any: the common message record is passed as is)."""
    if KNOWN_KEYS.issuperset(rec):  # no set built for the common record
        return rec
    other = rec.keys() - KNOWN_KEYS
    out = {k: v for k, v in rec.items() if k in KNOWN_KEYS}
    out[EXTRA_KEY] = {k: rec[k] for k in other}
    return out


def to_ts(value: object) -> datetime:
    """A record timestamp as naive UTC (what both stores keep); now when absent or bad."""
    if isinstance(value, str):
        try:
            dt = parse_timestamp(value)
        except ValueError:
            return datetime.now(UTC).replace(tzinfo=None)
        if dt.tzinfo is not None:
            dt = dt.astimezone(UTC).replace(tzinfo=None)
        return dt
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC).replace(tzinfo=None)


def dumps_safe(value: Any) -> str:
    """JSON text for any value: orjson when it can (fast), the standard
    library for what orjson refuses (integers past 64 bits), else a repr."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    import json

    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return orjson.dumps(repr(value)).decode()


def safe_row(rec: Record) -> tuple[Any, ...]:
    """One record as a row of Python values that always fit the column types.

    The slow, careful path: a value of the wrong type for its column (a
    parser that put ``"1"`` in ``qos``) is moved to ``extra`` instead of
    failing the whole batch.
    """
    extra: dict[str, Any] = {k: rec[k] for k in rec.keys() - KNOWN_KEYS}
    row: list[Any] = []
    for col in COLUMNS:
        if col.name == "extra":
            row.append(dumps_safe(extra) if extra else None)
            continue
        key = col.key
        value = rec.get(key)
        if key == "timestamp":
            row.append(to_ts(value))
            continue
        if value is None:
            row.append(None)
        elif key in _JSON_COLS:
            row.append(dumps_safe(value))
        elif key in _INT_COLS:
            limit = _INT_LIMITS.get(key, _MAX_BIGINT)
            if isinstance(value, int) and not isinstance(value, bool) and -limit <= value <= limit:
                row.append(value)
            else:
                row.append(None)
                extra[key] = value
        elif key in _BOOL_COLS:
            if isinstance(value, bool):
                row.append(value)
            else:
                row.append(None)
                extra[key] = value
        elif isinstance(value, str):
            row.append(value.replace("\x00", "\ufffd"))
        else:
            row.append(None)
            extra[key] = value
    if extra and row[-1] is None:
        row[-1] = dumps_safe(extra)
    return tuple(row)


def json_value(value: Any) -> Any:
    if isinstance(value, str | bytes | bytearray):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value  # psycopg already decodes jsonb


def format_ts(value: object) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return None if value is None else str(value)


def row_to_record(names: list[str] | tuple[str, ...], row: tuple[Any, ...]) -> Record:
    """A row read back from the store as the record that was written (key
    order: envelope first, as the pipeline writes them)."""
    rec: Record = {}
    extra: Any = None
    for name, value in zip(names, row, strict=True):
        if name == "extra":
            extra = json_value(value) if value is not None else None
            continue
        if value is None:
            continue
        col = BY_NAME.get(name)
        if col is None:
            rec[name] = value
        elif col.name == "ts":
            rec["timestamp"] = format_ts(value)
        elif col.is_json:
            rec[col.key] = json_value(value)
        else:
            rec[col.key] = value
    ordered: Record = {k: rec.pop(k) for k in ("seq", "writer_id", "timestamp", "event_type",
                                               "source") if k in rec}
    ordered.update(rec)
    if isinstance(extra, dict):
        for k, v in extra.items():
            ordered.setdefault(k, v)
    return ordered
