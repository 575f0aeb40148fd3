"""pmacct msglog and dump JSON (seed 004, pmacct docs/MSGLOG_DUMP_FORMATS):
BGP (``peer_ip_src``), BMP (``bmp_router``) and streaming telemetry
(``telemetry_node``) records, as pmacct publishes them to Kafka/RabbitMQ and,
through a bridge, onto a bus. Recognised by content on any topic.

``telemetry_data`` is decoded when ``serialization`` is ``json`` (pmacct may
carry it as an object or as a JSON string) and kept base64 for ``gpb``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from ..errors import DecodeError
from ..message import Message
from ..record import Record
from . import register_decoder
from ._util import clip, flatten
from .base import Decoder

NAME = "pmacct"
EVENT_TYPES = frozenset({"log_init", "log", "log_close", "dump_init", "dump", "dump_close"})
#: device key -> which family of record it is
DEVICE_KEYS = (("peer_ip_src", "bgp"), ("bmp_router", "bmp"), ("telemetry_node", "telemetry"))
_NOT_FIELDS = frozenset({"telemetry_data", "event_type"})


@register_decoder(NAME)
class Pmacct(Decoder):
    priority = 150
    sniff_on = "object"

    def sniff(self, payload: bytes, value: Any) -> bool:
        if not isinstance(value, dict) or value.get("event_type") not in EVENT_TYPES:
            return False
        return "peer_ip_src" in value or "bmp_router" in value or "telemetry_node" in value

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        if value is None:
            raise DecodeError(NAME, "payload is not JSON")
        if not isinstance(value, dict):
            raise DecodeError(NAME, f"payload is a JSON {type(value).__name__}, not an object")
        event_type = value.get("event_type")
        if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
            raise DecodeError(NAME, f"\"event_type\" {event_type!r} is not one of "
                              f"{', '.join(sorted(EVENT_TYPES))}")
        device: str | None = None
        family = ""
        for key, fam in DEVICE_KEYS:
            v = value.get(key)
            if v is not None:
                if not isinstance(v, str):
                    raise DecodeError(NAME, f"\"{key}\" is not a string")
                device, family = v, fam
                break
        if device is None:
            raise DecodeError(NAME, "none of peer_ip_src, bmp_router, telemetry_node")

        fields: dict[str, Any] = {"family": family}
        flatten({k: v for k, v in value.items() if k not in _NOT_FIELDS}, "", fields,
                depth=3, limit=96)
        payload = value
        if "telemetry_data" in value:
            data = value["telemetry_data"]
            serialization = value.get("serialization")
            if serialization == "json":
                if isinstance(data, str):
                    try:
                        data = orjson.loads(data)
                    except orjson.JSONDecodeError as exc:
                        raise DecodeError(NAME, f"telemetry_data is not JSON: {exc}") from exc
                    payload = {**value, "telemetry_data": data}
            elif serialization == "gpb":
                if not isinstance(data, str):
                    raise DecodeError(NAME, "gpb telemetry_data is not a base64 string")
                try:
                    fields["telemetry_bytes"] = len(base64.b64decode(data, validate=True))
                except (binascii.Error, ValueError) as exc:
                    raise DecodeError(NAME, "gpb telemetry_data is not valid base64") from exc
            fields["telemetry_data"] = data
        fields["summary"] = _summary(family, event_type, fields)
        rec["payload"] = payload
        rec["device"] = device
        rec["event"] = event_type
        rec["fields"] = fields


def _summary(family: str, event_type: str, f: dict[str, Any]) -> str:
    parts = [family.upper() if family != "telemetry" else "telemetry", event_type]
    for key in ("bmp_msg_type", "log_type"):
        if isinstance(f.get(key), str):
            parts.append(f[key])
    if f.get("peer_ip"):
        parts.append(f"peer {f['peer_ip']}")
    if f.get("ip_prefix"):
        parts.append(str(f["ip_prefix"]))
    if f.get("bgp_nexthop"):
        parts.append(f"via {f['bgp_nexthop']}")
    if f.get("as_path"):
        parts.append(f"as_path {f['as_path']}")
    if event_type == "dump_close" and "entries" in f:
        parts.append(f"{f.get('tables', '?')} tables, {f['entries']} entries")
    if event_type == "dump_init" and "dump_period" in f:
        parts.append(f"every {f['dump_period']}s")
    if family == "telemetry" and f.get("serialization"):
        parts.append(f"{f['serialization']} port {f.get('telemetry_port', '?')}")
    return clip(" ".join(str(p) for p in parts))
