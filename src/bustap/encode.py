"""A bus message -> its record: the per-message hot path, shared by the
pipeline and its worker processes (``capture --workers``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .message import Message
from .record import Clock, Record


def message_record(m: Message, seq: int, writer_id: str, source: str, clock: Clock,
                   decode: Callable[[Message, Record], None]) -> Record:
    """The ``kind: message`` record of one message: envelope first, decoded."""
    rec: Record = {"seq": seq, "writer_id": writer_id, "timestamp": clock.format(m.received),
                   "event_type": "log", "source": source, "kind": "message",
                   "protocol": m.protocol, "topic": m.topic}
    if m.qos is not None:
        rec["qos"] = m.qos
        rec["retain"] = m.retain
        rec["dup"] = m.dup
    if m.reply:
        rec["reply"] = m.reply
    if m.headers:
        rec["headers"] = m.headers
    if m.properties:
        rec["properties"] = m.properties
    rec["size"] = len(m.payload)
    decode(m, rec)
    return rec


def message_records(items: Sequence[Message], seq: int, writer_id: str, source: str,
                    clock: Clock, decode: Callable[[Message, Record], None]) -> list[Record]:
    return [message_record(m, seq + i, writer_id, source, clock, decode)
            for i, m in enumerate(items)]
