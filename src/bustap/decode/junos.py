"""Juniper JET notification events (Junos 16.1+ MQTT notification service).

A JET event is ``{"jet-event": {"event-id", "hostname", "time", "severity",
"facility", "process-id", "process-name", "message", "attributes": {...}}}``
(seed 000; kernel events carry only attributes). Topics live under
``/junos/events/`` (reference section 6): ``syslog/<EVENT_ID>``,
``kernel/interfaces/{ifd,ifl,iff,ifa}/<op>/...``, ``kernel/route/...``,
``kernel/firewall/...``, ``genpub/config-update``. Interface names contain
``/`` so they span topic levels; what the topic says (object, operation,
interface, family, address) is added to ``fields`` when the payload does not
say it already.
"""

from __future__ import annotations

from typing import Any

from ..errors import DecodeError
from ..message import Message
from ..record import Record
from . import register_decoder
from ._util import clip, flatten, normalise_severity
from .base import Decoder

NAME = "junos-jet"
_PREFIXES = ("/junos/events/", "junos/events/")
# top-level keys copied to fields under their JET names
_TOP = ("facility", "process-name", "process-id", "message", "time")
_IFACE_KEYS = ("interface-name", "name", "ifl-name", "ifd-name")
_SCALARS = frozenset((str, int, float, bool))
# keys a summary without a message leaves out of its "k v, ..." detail
_NOT_DETAIL = frozenset((*_IFACE_KEYS, *_TOP, "router_time", "summary", "topic-event-id",
                         "severity_raw"))


def _topic_fields(topic: str) -> dict[str, Any]:
    """What a JET topic tells: ``/junos/events/kernel/interfaces/ifa/add/
    ge-0/0/2.0/inet/1.1.1.1/32`` -> object ifa, op add, interface ge-0/0/2.0,
    family inet, address 1.1.1.1/32."""
    rest = topic.split("/junos/events/", 1)[-1] if topic.startswith("/") else \
        topic.split("junos/events/", 1)[-1]
    levels = rest.split("/")
    out: dict[str, Any] = {}
    if len(levels) >= 2 and levels[0] == "syslog":
        out["topic-event-id"] = levels[1]
        return out
    if len(levels) < 4 or levels[0] != "kernel":
        return out
    what = levels[1]
    if what == "interfaces" and len(levels) >= 5:
        obj, op, tail = levels[2], levels[3], levels[4:]
        out["object"] = obj
        out["op"] = op
        if obj == "iff" and len(tail) >= 2:
            out["family"] = tail[-1]
            tail = tail[:-1]
        elif obj == "ifa" and len(tail) >= 4:
            out["family"] = tail[-3]
            out["address"] = f"{tail[-2]}/{tail[-1]}"
            tail = tail[:-3]
        out["interface-name"] = "/".join(tail)
    elif what == "route" and len(levels) >= 6:
        out["object"] = "route"
        out["op"] = levels[2]
        out["family"] = levels[3]
        out["prefix"] = "/".join(levels[4:])
    elif what == "route-table":
        out["object"] = "route-table"
        out["op"] = levels[2]
        out["table"] = "/".join(levels[3:])
    elif what == "firewall" and len(levels) >= 5:
        out["object"] = f"firewall-{levels[2]}"
        out["op"] = levels[3]
        out["name"] = "/".join(levels[4:])
    return out


@register_decoder(NAME)
class JunosJet(Decoder):
    priority = 200

    def __init__(self) -> None:
        self._topics: dict[str, dict[str, Any]] = {}

    def claims(self, protocol: str, topic: str) -> bool:
        return topic.startswith(_PREFIXES)

    def sniff(self, payload: bytes, value: Any) -> bool:
        return isinstance(value, dict) and isinstance(value.get("jet-event"), dict)

    sniff_on = "object"

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        if value is None:
            raise DecodeError(NAME, "payload is not JSON")
        if not isinstance(value, dict):
            raise DecodeError(NAME, f"payload is a JSON {type(value).__name__}, "
                              "not an object")
        ev = value.get("jet-event")
        if not isinstance(ev, dict):
            raise DecodeError(NAME, "no \"jet-event\" object")
        event_id = ev.get("event-id")
        if not isinstance(event_id, str) or not event_id:
            raise DecodeError(NAME, "\"event-id\" missing or not a string")
        hostname = ev.get("hostname")
        if hostname is not None and not isinstance(hostname, str):
            raise DecodeError(NAME, "\"hostname\" is not a string")
        attrs = ev.get("attributes")
        if attrs is not None and not isinstance(attrs, dict):
            raise DecodeError(NAME, "\"attributes\" is not an object")

        fields: dict[str, Any] = {}
        for key in _TOP:
            v = ev.get(key)
            if v is not None:
                fields[key] = v
        t = fields.get("time")
        # the router's local time, "2016-08-28-09:21:41": no zone is given
        if isinstance(t, str) and len(t) == 19 and t[10] == "-":
            fields["router_time"] = f"{t[:10]}T{t[11:]}"
        if attrs:
            # JET attributes are nearly always flat strings: skip the recursive
            # flatten then (a third of this decoder's time in the profile).
            if len(attrs) <= 64 and _SCALARS.issuperset(map(type, attrs.values())):
                flat: dict[str, Any] = attrs
            else:
                flat = {}
                flatten(attrs, "", flat, limit=64)
            for k, v in flat.items():
                if k in fields and fields[k] != v:
                    fields[f"attributes.{k}"] = v
                else:
                    fields[k] = v
        topic_info = self._topic_info(msg.topic)
        for k, v in topic_info.items():
            fields.setdefault(k, v)
        raw_sev = ev.get("severity")
        severity = normalise_severity(raw_sev)
        if severity is None and raw_sev is not None:
            fields["severity_raw"] = raw_sev
        fields["summary"] = _summary(event_id, fields)

        if hostname:
            rec["device"] = hostname
        rec["event"] = event_id
        if severity is not None:
            rec["severity"] = severity
        rec["fields"] = fields

    def _topic_info(self, topic: str) -> dict[str, Any]:
        try:
            return self._topics[topic]
        except KeyError:
            pass
        info = _topic_fields(topic) if topic.startswith(_PREFIXES) else {}
        if len(self._topics) > 50_000:
            self._topics.clear()
        self._topics[topic] = info
        return info


def _summary(event_id: str, fields: dict[str, Any]) -> str:
    """"SNMP_TRAP_LINK_DOWN on ge-0/0/1.0: ifIndex 529, ifAdminStatus down(2), ..."."""
    iface = None
    for key in _IFACE_KEYS:
        v = fields.get(key)
        if v and type(v) is str:
            iface = v
            break
    head = f"{event_id} on {iface}" if iface else event_id
    message = fields.get("message")
    if isinstance(message, str) and message.strip():
        text = message.strip()
        # syslog-style messages repeat the event id: "UI_COMMIT_COMPLETED: commit complete"
        if text.startswith(event_id) and text[len(event_id):len(event_id) + 1] == ":":
            text = text[len(event_id) + 1:].strip()
        return clip(f"{head}: {text}" if text else head)
    detail = ", ".join([f"{k} {v}" for k, v in fields.items()
                        if k not in _NOT_DETAIL and type(v) in _SCALARS])
    return clip(f"{head}: {detail}" if detail else head)
