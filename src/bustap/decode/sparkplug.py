"""Sparkplug B (Eclipse Sparkplug 3.0): protobuf payloads on
``spBv1.0/GROUP/MSGTYPE/NODE[/DEVICE]`` and the host application's
``spBv1.0/STATE/HOST`` (JSON, or ``ONLINE``/``OFFLINE`` text before 3.0).

The record keeps the payload as it came (base64) and puts what it says in
``fields``: ``group``, ``node``, ``device_id``, ``message_type``, ``seq``,
``timestamp``, and one ``metrics.<name>`` per metric (its value; DataSets and
Templates as their column/metric counts). DATA messages may name metrics by
alias only: the names are learned from the node's and device's BIRTH, and an
alias not seen in a birth stays ``metrics.alias.<N>``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import DecodeError
from ..message import Message
from ..record import Record
from . import register_decoder
from ._sparkplug_schema import DATA_TYPES, payload_class
from ._util import clip
from .base import Decoder

NAME = "sparkplug-b"
NAMESPACE = "spBv1.0"
MESSAGE_TYPES = frozenset({"NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD",
                           "DCMD"})
SEVERITY = {"NDEATH": "warning", "DDEATH": "warning", "NBIRTH": "notice", "DBIRTH": "notice",
            "NCMD": "notice", "DCMD": "notice"}
#: alias tables kept for this many nodes/devices at most (bounded memory)
MAX_ALIAS_TABLES = 10_000
MAX_METRICS = 64


def parse_topic(topic: str) -> tuple[str, str, str, str] | None:
    """(group, message type, node, device or "") or ("", "STATE", host, "")."""
    levels = topic.split("/")
    if not levels or levels[0] != NAMESPACE:
        return None
    if len(levels) == 3 and levels[1] == "STATE" and levels[2]:
        return "", "STATE", levels[2], ""
    if len(levels) in (4, 5) and levels[2] in MESSAGE_TYPES and levels[1] and levels[3]:
        device = levels[4] if len(levels) == 5 else ""
        if len(levels) == 5 and not device:
            return None
        return levels[1], levels[2], levels[3], device
    return None


def _ms_time(ms: int) -> str | None:
    if not 0 < ms < 32_503_680_000_000:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def metric_value(metric: Any) -> Any:
    """A metric's value as JSON: numbers, text, bool; bytes as their length;
    DataSets and Templates summarised."""
    if metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(metric, kind)
    if kind == "bytes_value":
        return {"bytes": len(value)}
    if kind == "dataset_value":
        return {"columns": list(value.columns), "rows": len(value.rows)}
    if kind == "template_value":
        return {"template_ref": value.template_ref, "metrics": len(value.metrics)}
    if kind == "int_value" and metric.datatype in (1, 2, 3):
        # signed types travel as their unsigned 32-bit pattern (spec 6.4.16)
        bits = {1: 8, 2: 16, 3: 32}[metric.datatype]
        value &= (1 << bits) - 1
        if value >= 1 << (bits - 1):
            value -= 1 << bits
    elif kind == "long_value" and metric.datatype == 4 and value >= 1 << 63:
        value -= 1 << 64
    return value


@register_decoder(NAME)
class SparkplugB(Decoder):
    priority = 200

    def __init__(self) -> None:
        self._aliases: dict[tuple[str, str, str], dict[int, str]] = {}

    def claims(self, protocol: str, topic: str) -> bool:
        return protocol == "mqtt" and parse_topic(topic) is not None

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        parsed = parse_topic(msg.topic)
        if parsed is None:
            raise DecodeError(NAME, "not a Sparkplug B topic")
        group, mtype, node, device = parsed
        if mtype == "STATE":
            self._state(node, msg.payload, value, rec)
            return
        try:
            payload = payload_class().FromString(msg.payload)
        except Exception as exc:  # protobuf's DecodeError and friends
            raise DecodeError(NAME, f"payload is not a Sparkplug B protobuf "
                              f"({type(exc).__name__})") from exc
        fields: dict[str, Any] = {"group": group, "message_type": mtype, "node": node}
        if device:
            fields["device_id"] = device
        if payload.HasField("seq"):
            fields["seq"] = payload.seq
        if payload.HasField("timestamp"):
            fields["timestamp"] = payload.timestamp
            if (when := _ms_time(payload.timestamp)) is not None:
                fields["time"] = when
        if payload.HasField("uuid"):
            fields["uuid"] = payload.uuid
        key = (group, node, device)
        aliases = self._table(key, births=mtype.endswith("BIRTH"))
        names: list[str] = []
        for metric in payload.metrics:
            name = metric.name if metric.HasField("name") else ""
            if metric.HasField("alias"):
                if name and aliases is not None:
                    aliases[metric.alias] = name
                elif not name:
                    table = self._aliases.get(key) or {}
                    name = table.get(metric.alias) or f"alias.{metric.alias}"
            if not name:
                raise DecodeError(NAME, "a metric has neither name nor alias")
            if len(names) < MAX_METRICS:
                fields[f"metrics.{name}"] = metric_value(metric)
                if mtype.endswith("BIRTH") and metric.HasField("datatype"):
                    fields[f"types.{name}"] = DATA_TYPES.get(metric.datatype,
                                                             str(metric.datatype))
            names.append(name)
        fields["metrics"] = len(names)
        who = f"{node}/{device}" if device else node
        shown = ", ".join(f"{n}={fields.get(f'metrics.{n}')}" for n in names[:4])
        fields["summary"] = clip(f"{mtype} {group}/{who}" + (f": {shown}" if shown else "")
                                 + (f" (+{len(names) - 4})" if len(names) > 4 else ""))
        rec["device"] = who
        rec["event"] = mtype.lower()
        rec["severity"] = SEVERITY.get(mtype, "info")
        rec["fields"] = fields

    def _table(self, key: tuple[str, str, str], *, births: bool) -> dict[int, str] | None:
        if not births:
            return None
        if len(self._aliases) >= MAX_ALIAS_TABLES and key not in self._aliases:
            self._aliases.clear()
        table: dict[int, str] = {}
        self._aliases[key] = table  # a new birth replaces what the last one said
        return table

    def _state(self, host: str, raw: bytes, value: Any, rec: Record) -> None:
        fields: dict[str, Any] = {"message_type": "STATE", "host": host}
        if isinstance(value, dict) and isinstance(value.get("online"), bool):
            online = value["online"]  # Sparkplug 3.0: {"online": true, "timestamp": ms}
            if type(value.get("timestamp")) is int:
                fields["timestamp"] = value["timestamp"]
        else:
            text = raw.decode("utf-8", "replace").strip().upper()
            if text not in ("ONLINE", "OFFLINE"):
                raise DecodeError(NAME, "STATE is neither {\"online\": ...} nor "
                                  "ONLINE/OFFLINE")
            online = text == "ONLINE"
        fields["online"] = online
        fields["summary"] = f"host application {host} {'online' if online else 'offline'}"
        rec["device"] = host
        rec["event"] = "state"
        rec["severity"] = "info" if online else "warning"
        rec["fields"] = fields
