"""pmacct msglog and dump JSON (seed 004, pmacct docs/MSGLOG_DUMP_FORMATS):
BGP (``peer_ip_src``), BMP (``bmp_router``) and streaming telemetry
(``telemetry_node``) records, as pmacct publishes them to Kafka/RabbitMQ and,
through a bridge, onto a bus. Recognised by content on any topic.

``telemetry_data`` is decoded when ``serialization`` is ``json`` (pmacct may
carry it as an object or as a JSON string) and kept base64 for ``gpb``.

Real output has more shapes than the document (pmacct's tests/*/output-*.json
and src/*_logdump.c): event types beyond the list (``purge``, ``lglass``...),
``as_path`` as a list of ASNs or a string (``fields.as_path`` is always the
string), timestamps as epoch strings, ``%Y-%m-%d %H:%M:%S[.%f]``, RFC 3339 /
9557 with an offset, or ``0.000000`` for unknown (``fields.time``: ISO 8601 UTC),
``serialization: "json_string"`` telemetry (the router's JSON text, parsed
here when it parses), and the newer IETF telemetry message
(``telemetry-message-metadata``, ``network-operator-metadata`` labels, the data
in ``payload``; optionally wrapped in ``ietf-telemetry-message:message``).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import DecodeError
from ..message import Message
from ..record import Record
from . import register_decoder
from ._util import clip, flatten
from .base import Decoder

NAME = "pmacct"
#: the document's event types, and those pmacct's sources also write: flow
#: records from the print/kafka/amqp plugins (purge and its brackets) and the
#: BGP looking glass (src/plugin_cmn_json.c, src/bgp/bgp_lg.c)
EVENT_TYPES = frozenset({"log_init", "log", "log_close", "dump_init", "dump", "dump_close",
                         "purge", "purge_init", "purge_close", "lglass"})
_IETF = "telemetry-message-metadata"
_IETF_WRAP = "ietf-telemetry-message:message"
#: device key -> which family of record it is
DEVICE_KEYS = (("peer_ip_src", "bgp"), ("bmp_router", "bmp"), ("telemetry_node", "telemetry"))
_NOT_FIELDS = frozenset({"telemetry_data", "event_type"})


@register_decoder(NAME)
class Pmacct(Decoder):
    priority = 150
    sniff_on = "object"

    def sniff(self, payload: bytes, value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        if _IETF in value or _IETF_WRAP in value:
            return True
        if value.get("event_type") not in EVENT_TYPES:
            return False
        return "peer_ip_src" in value or "bmp_router" in value or "telemetry_node" in value

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        if value is None:
            raise DecodeError(NAME, "payload is not JSON")
        if not isinstance(value, dict):
            raise DecodeError(NAME, f"payload is a JSON {type(value).__name__}, not an object")
        if isinstance(value.get(_IETF_WRAP), dict):
            value = value[_IETF_WRAP]
        if _IETF in value:
            _ietf(value, rec)
            return
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
        as_path = value.get("as_path")
        if isinstance(as_path, list):
            fields["as_path"] = " ".join(str(a) for a in as_path)
        when = _time(value.get("timestamp"))
        if when is not None:
            fields["time"] = when
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
            elif serialization in ("json_string", "json-string") and isinstance(data, str):
                # the router's JSON text, passed through unparsed by pmacct
                try:
                    data = orjson.loads(data)
                    payload = {**value, "telemetry_data": data}
                except orjson.JSONDecodeError:
                    pass
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


def _time(value: Any) -> str | None:
    """A pmacct timestamp in any of its formats -> ISO 8601 UTC; None for
    ``0.000000`` (not known) and what does not parse."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds: float = value
    elif isinstance(value, str) and value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            if when.tzinfo is None:  # pmacct's default format: the collector's zone,
                when = when.replace(tzinfo=UTC)  # UTC as pmacct's FAQ asks
            return _iso(when.astimezone(UTC))
    else:
        return None
    if seconds <= 0 or seconds > 32_503_680_000:
        return None
    return _iso(datetime.fromtimestamp(seconds, UTC))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if when.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def _ietf(value: dict[str, Any], rec: Record) -> None:
    """The IETF telemetry message pmacct writes since 1.7.10."""
    meta = value.get(_IETF)
    if not isinstance(meta, dict):
        raise DecodeError(NAME, f"\"{_IETF}\" is not an object")
    device = meta.get("export-address")
    if not isinstance(device, str) or not device:
        raise DecodeError(NAME, f"{_IETF} has no export-address")
    event = meta.get("notification-event")
    fields: dict[str, Any] = {"family": "telemetry"}
    for key in ("session-protocol", "export-port", "notification-event"):
        if isinstance(meta.get(key), str | int):
            fields[key.replace("-", "_")] = meta[key]
    when = _time(meta.get("collection-timestamp"))
    if when is not None:
        fields["time"] = when
    labels = (value.get("network-operator-metadata") or {}).get("labels") \
        if isinstance(value.get("network-operator-metadata"), dict) else None
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict) and isinstance(label.get("name"), str):
            v = next((label[k] for k in ("string-value", "number-value") if k in label), None)
            if isinstance(v, str | int | float):
                fields[label["name"]] = v
    manifest = value.get("data-collection-manifest")
    if isinstance(manifest, dict):
        flatten(manifest, "manifest", fields, depth=1, limit=16)
    if "payload" in value and fields.get("serialization") != "gpb":
        flatten(value["payload"], "payload", fields, depth=3, limit=64)
    fields["summary"] = clip(f"telemetry {event or 'message'} from {device} "
                             f"({fields.get('serialization', '?')})")
    rec["payload"] = value
    rec["device"] = device
    rec["event"] = event if isinstance(event, str) and event else "telemetry"
    rec["fields"] = fields
