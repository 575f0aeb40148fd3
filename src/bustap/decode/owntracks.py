"""OwnTracks phones and trackers: JSON with a ``_type`` on
``owntracks/USER/DEVICE`` and its sub-topics (``/event`` transitions, ``/cmd``,
``/info`` cards, ``/step``, ``/waypoint``, ``/waypoints``, ``/status``, ``/dump``),
as the OwnTracks booklet (owntracks.org/booklet/tech/json) describes them.

The device is ``USER/DEVICE`` from the topic. Older apps send numbers as
strings (``"lat": "52.5"``, ``"tst": "1398353271887"``, in milliseconds);
they are read as numbers, and ``tst`` as seconds. A payload whose ``_type``
this module does not know is kept with its scalar keys: the apps add types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import DecodeError
from ..message import Message
from ..record import Record
from . import register_decoder
from ._util import clip, to_number
from .base import Decoder

#: the _type values of the booklet (iOS and Android)
TYPES = frozenset({"location", "transition", "waypoint", "waypoints", "lwt", "card", "cmd",
                   "steps", "encrypted", "configuration", "beacon", "status", "request",
                   "dump"})
#: keys whose value is a number, even when an app sends it as a string
_NUMERIC = frozenset({"lat", "lon", "acc", "alt", "batt", "bs", "vel", "cog", "vac", "rad",
                      "p", "dist", "trip", "steps", "from", "to", "wtst", "tst",
                      "created_at", "major", "minor", "m"})
_TIMES = ("tst", "wtst", "created_at", "from", "to")
#: location "t": what made the app report
TRIGGERS = {"p": "ping", "c": "circular_region", "b": "beacon", "r": "response",
            "u": "manual", "t": "timer", "v": "monitoring"}
BATTERY = {0: "unknown", 1: "unplugged", 2: "charging", 3: "full"}
CONNECTIVITY = {"w": "wifi", "o": "offline", "m": "mobile"}
#: keys not copied into fields: a card's face is a base64 PNG
_SKIP = frozenset({"_type", "face", "data", "waypoints", "configuration"})


def topic_device(topic: str) -> str | None:
    """``owntracks/jane/phone[/event]`` -> ``jane/phone``."""
    levels = topic.split("/")
    if len(levels) in (3, 4) and levels[0] == "owntracks" and levels[1] and levels[2]:
        return f"{levels[1]}/{levels[2]}"
    return None


def _seconds(value: Any) -> Any:
    """OwnTracks times are epoch seconds; some apps send milliseconds."""
    if type(value) in (int, float) and value > 100_000_000_000:
        return value / 1000 if isinstance(value, float) or value % 1000 else value // 1000
    return value


def _iso(value: Any) -> str | None:
    if type(value) not in (int, float) or not 0 <= value < 32_503_680_000:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@register_decoder("owntracks")
class OwnTracks(Decoder):
    priority = 150
    sniff_on = "object"

    def claims(self, protocol: str, topic: str) -> bool:
        return protocol == "mqtt" and topic_device(topic) is not None

    def sniff(self, payload: bytes, value: Any) -> bool:
        # the _type alone is a common key name: a location needs its coordinates
        kind = value.get("_type")
        if kind not in TYPES:
            return False
        if kind in ("location", "transition", "waypoint"):
            return "lat" in value and "lon" in value and "tst" in value
        return kind in ("lwt", "steps", "encrypted", "waypoints") and len(value) <= 8

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        if value is None:
            raise DecodeError(self.name, "payload is not JSON")
        if type(value) is not dict:
            raise DecodeError(self.name, f"payload is a JSON {type(value).__name__}, "
                              "not an object")
        kind = value.get("_type")
        if not isinstance(kind, str) or not kind:
            raise DecodeError(self.name, "no \"_type\"")
        fields: dict[str, Any] = {}
        for key, v in value.items():
            if key in _SKIP or type(v) in (dict, list) or len(fields) >= 64:
                continue
            fields[key] = to_number(v) if key in _NUMERIC else v
        for key in ("inregions", "inrids"):  # the regions the device is in: names
            regions = value.get(key)
            if isinstance(regions, list):
                fields[key] = [str(r) for r in regions[:32]]
        for key in _TIMES:
            if key in fields:
                fields[key] = _seconds(fields[key])
                if key in ("tst", "wtst") and (when := _iso(fields[key])) is not None:
                    fields[f"{key}_time"] = when
        fields["type"] = kind
        device = topic_device(msg.topic)
        if device is not None:
            fields["user"], fields["device_name"] = device.split("/", 1)
        event = kind
        severity = "info"
        if kind in ("location", "transition", "waypoint"):
            _coordinates(self.name, fields)
        if kind == "location":
            summary = _location(fields)
        elif kind == "transition":
            what = fields.get("event")
            if what not in ("enter", "leave"):
                raise DecodeError(self.name, f"transition \"event\" {what!r} is not "
                                  "enter or leave")
            event = str(what)
            summary = f"{what} {fields.get('desc', 'region')!s}"
        elif kind == "waypoint":
            summary = f"waypoint {fields.get('desc', '')!s} r={fields.get('rad', '?')}m"
        elif kind == "waypoints":
            points = value.get("waypoints")
            if not isinstance(points, list):
                raise DecodeError(self.name, "\"waypoints\" is not a list")
            fields["count"] = len(points)
            names = [str(p.get("desc")) for p in points if isinstance(p, dict) and "desc" in p]
            summary = f"{len(points)} waypoints" + (f": {', '.join(names)}" if names else "")
        elif kind == "lwt":
            # the broker published the app's last will: the phone lost its connection
            severity = "notice"
            summary = "offline (last will)"
        elif kind == "card":
            summary = f"card {fields.get('name', fields.get('tid', ''))!s}".rstrip()
        elif kind == "cmd":
            summary = f"command {fields.get('action', '?')!s}"
            severity = "notice"
        elif kind == "steps":
            summary = f"{fields.get('steps', '?')} steps"
        elif kind == "encrypted":
            data = value.get("data")
            if not isinstance(data, str):
                raise DecodeError(self.name, "encrypted payload without \"data\"")
            fields["encrypted_bytes"] = len(data) * 3 // 4
            summary = "encrypted (libsodium secret box; key not known here)"
        else:
            summary = kind
        fields["summary"] = clip(summary)
        rec["device"] = device or str(fields.get("tid") or msg.topic)
        rec["event"] = event
        rec["severity"] = severity
        rec["fields"] = fields


def _coordinates(name: str, fields: dict[str, Any]) -> None:
    for key, limit in (("lat", 90), ("lon", 180)):
        v: Any = fields.get(key)
        if type(v) not in (int, float) or not -limit <= v <= limit:
            raise DecodeError(name, f"\"{key}\" {v!r} is not a coordinate")


def _location(fields: dict[str, Any]) -> str:
    parts = [f"{fields['lat']:.5f},{fields['lon']:.5f}"]
    if type(acc := fields.get("acc")) in (int, float):
        parts.append(f"±{acc}m")
    if type(batt := fields.get("batt")) in (int, float):
        parts.append(f"batt {batt}%")
    if (bs := fields.get("bs")) in BATTERY:
        fields["battery_status"] = BATTERY[bs]
    if (t := fields.get("t")) in TRIGGERS:
        fields["trigger"] = TRIGGERS[t]
        parts.append(f"({TRIGGERS[t]})")
    if (conn := fields.get("conn")) in CONNECTIVITY:
        fields["connectivity"] = CONNECTIVITY[conn]
    return " ".join(parts)
