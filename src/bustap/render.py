"""Human views of records: the ``--pretty`` line (like ``mosquitto_sub -v`` and
``nats sub``) and ``--raw`` payloads."""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson

from .record import Record
from .sinks.base import RecordBatch

_SEV_COLOUR = {"emerg": "1;31", "alert": "1;31", "crit": "1;31", "error": "31",
               "warning": "33", "notice": "36", "info": "32", "debug": "2"}


def payload_text(rec: Record, limit: int | None = None) -> str:
    value = rec.get("payload")
    if rec.get("format") == "json":
        text = orjson.dumps(value).decode()
    elif rec.get("format") == "binary":
        text = f"<{rec.get('size', 0)} bytes binary> {value}"
    else:
        text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def summary(rec: Record) -> str:
    """A short text for a decoded message: the decoder's ``summary`` field, a
    message field, or the payload."""
    fields = rec.get("fields") or {}
    for key in ("summary", "message", "title"):
        if isinstance(fields.get(key), str) and fields[key]:
            return str(fields[key]).strip()
    return payload_text(rec, 200)


def pretty_line(rec: Record, colour: bool = False) -> str:
    ts = str(rec.get("timestamp", ""))[11:23]
    et = rec.get("event_type")
    if et in ("log_init", "log_close"):
        extra = {k: v for k, v in rec.items() if k not in
                 ("seq", "writer_id", "timestamp", "event_type", "source", "reason",
                  "last_error", "connected")}
        what = "connected" if et == "log_init" else "disconnected"
        reason = rec.get("reason")
        if et == "log_close" and reason not in (None, "stopped"):
            what = "down"  # a broker of a fleet that is down is said once, with why
            extra = {"reason": reason, **extra}
        detail = ", ".join(_detail(k, v) for k, v in extra.items() if k != "sinks")
        return _c(f"{ts} # {what} {rec.get('source')} ({detail})", "2", colour)
    if et == "alert":
        resolved = rec.get("state") == "resolved"
        count = rec.get("count")
        times = f" (x{count})" if isinstance(count, int) and count > 1 else ""
        return _c(f"{ts} {'RESOLVED' if resolved else 'ALERT'} [{rec.get('severity')}] "
                  f"{rec.get('rule')}: {rec.get('summary')}{times}",
                  "32" if resolved else "1;31", colour)
    kind = rec.get("kind")
    if kind == "message":
        if rec.get("device") or rec.get("event"):
            sev = rec.get("severity") or "-"
            return (f"{ts} {rec.get('device') or '-'}  {rec.get('event') or '-'}  "
                    f"{_c(sev, _SEV_COLOUR.get(sev, '0'), colour)}  {summary(rec)}")
        flags = "  [retained]" if rec.get("retain") else ""
        if rec.get("decode_error"):
            flags += "  " + _c(f"[{rec['decode_error']}]", "33", colour)
        return f"{ts} {_c(str(rec.get('topic')), '1', colour)}  {payload_text(rec)}{flags}"
    if kind == "broker_event":
        who = rec.get("client_id") or rec.get("address") or ""
        return f"{ts} {rec.get('broker', '')} {rec.get('event')}  {who}  " \
               f"{rec.get('topic') or rec.get('reason') or ''}".rstrip()
    return f"{ts} {kind or et} {orjson.dumps(rec).decode()}"


def _detail(key: str, value: object) -> str:
    """``key=value``; a table of counters as its non-zero numbers only."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()
                         if isinstance(v, int) and not isinstance(v, bool) and v) or f"{key}=-"
    return f"{key}={value}"


def _c(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def pretty_formatter(colour: bool) -> Callable[[RecordBatch], bytes]:
    def fmt(batch: RecordBatch) -> bytes:
        return "".join(pretty_line(r, colour) + "\n" for r in batch.records).encode()
    return fmt


def raw_payload(rec: Record) -> bytes:
    fmt = rec.get("format")
    if fmt == "binary":
        return base64.b64decode(rec.get("payload") or "")
    if fmt == "json":
        return orjson.dumps(rec.get("payload"))
    return str(rec.get("payload", "")).encode("utf-8", "surrogateescape")


def raw_formatter(batch: RecordBatch) -> bytes:
    return b"".join(raw_payload(r) + b"\n" for r in batch.records if r.get("kind") == "message")
