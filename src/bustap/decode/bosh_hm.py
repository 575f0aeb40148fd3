"""BOSH agent -> health monitor messages: ``hm.agent.<kind>.<agent_id>`` with
kind heartbeat, alert or shutdown (seed 002, reference section 6; bosh-agent
agent/heartbeat.go, agent/alert/alert.go), and the director's own alerts on
``hm.director.alert``.

Heartbeat vitals arrive as strings (``"cpu":{"sys":"0.4"}``); they are
flattened to numbers (``cpu.sys: 0.4``, ``load.1m``, ``disk.persistent.percent``)
so stores can chart and alert on them.
"""

from __future__ import annotations

from typing import Any

from ..errors import DecodeError
from ..message import Message
from ..record import Record
from . import register_decoder
from ._util import cached_number as to_number
from ._util import clip
from .base import Decoder

#: bosh-agent alert severities (alert.go): 1 alert, 2 critical, 3 error, 4 warning.
ALERT_SEVERITY = {1: "alert", 2: "crit", 3: "error", 4: "warning"}
#: job_state -> record severity: a failing job is what operators look for.
JOB_STATE_SEVERITY = {"running": "info", "starting": "notice", "stopped": "warning",
                      "unknown": "warning", "failing": "error"}
_IDENTITY = ("deployment", "job", "index", "job_state", "node_id", "number_of_processes",
             "name", "id", "az")
_LOAD = ("1m", "5m", "15m")


def _agent_id(topic: str, kind: str) -> str | None:
    """``hm.agent.heartbeat.<id>`` -> id; None when the subject is another shape."""
    prefix = f"hm.agent.{kind}."
    if not topic.startswith(prefix):
        return None
    agent = topic[len(prefix):]
    return agent if agent and "." not in agent else None


def _object(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        raise DecodeError(name, "payload is not JSON")
    if not isinstance(value, dict):
        raise DecodeError(name, f"payload is a JSON {type(value).__name__}, not an object")
    return value


def _identity(value: dict[str, Any], fields: dict[str, Any]) -> None:
    for key in _IDENTITY:
        v = value.get(key)
        if type(v) in _SCALARS:
            fields[key] = v


_SCALARS = (str, int, float, bool)


def vitals_fields(name: str, vitals: Any, fields: dict[str, Any]) -> None:
    if vitals is None:
        return
    if type(vitals) is not dict:
        raise DecodeError(name, "\"vitals\" is not an object")
    # Two levels at most (disk.persistent.percent); loops, not recursion, and
    # type() tests, not isinstance with unions: this runs for every heartbeat
    # of every VM (bench/decode.py).
    for group, sub in vitals.items():
        if len(fields) >= 96:
            break
        tsub = type(sub)
        if group == "load":
            if tsub is not list:
                raise DecodeError(name, "\"vitals.load\" is not a list")
            for label, v in zip(_LOAD, sub, strict=False):
                fields["load." + label] = to_number(v)
        elif tsub is dict:
            prefix = f"{group}."
            for k, v in sub.items():
                tv = type(v)
                if tv is dict:
                    inner = f"{prefix}{k}."
                    for k2, v2 in v.items():
                        if type(v2) not in _CONTAINERS:
                            fields[inner + k2] = to_number(v2)
                elif tv is not list:
                    fields[prefix + k] = to_number(v)
        elif tsub is not list:
            fields[str(group)] = to_number(sub)


_CONTAINERS = (dict, list)


_NUMBERS = (int, float)


class _Hm(Decoder):
    kind = ""
    priority = 200

    def claims(self, protocol: str, topic: str) -> bool:
        return _agent_id(topic, self.kind) is not None

    def agent(self, msg: Message) -> str:
        return _agent_id(msg.topic, self.kind) or msg.topic


@register_decoder("bosh-heartbeat")
class BoshHeartbeat(_Hm):
    kind = "heartbeat"

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        value = _object(self.name, value)
        fields: dict[str, Any] = {}
        _identity(value, fields)
        vitals_fields(self.name, value.get("vitals"), fields)
        get = fields.get
        state = get("job_state")
        job = get("job")
        who = f"{job}/{fields['index']}" if job is not None and "index" in fields else \
            str(job or "")
        parts = []
        user = get("cpu.user")
        if type(user) in _NUMBERS:
            parts.append(f"cpu {user}% user {get('cpu.sys', '?')}% sys")
        if type(mem := get("mem.percent")) in _NUMBERS:
            parts.append(f"mem {mem}%")
        if "load.1m" in fields:
            parts.append(f"load {fields['load.1m']}")
        if type(system := get("disk.system.percent")) in _NUMBERS:
            parts.append(f"disk {system}% system")
        if type(persistent := get("disk.persistent.percent")) in _NUMBERS:
            parts.append(f"{persistent}% persistent")
        head = " ".join(str(p) for p in (who, state) if p) or "heartbeat"
        fields["summary"] = clip(f"{head}: {', '.join(parts)}" if parts else head)
        rec["device"] = self.agent(msg)
        rec["event"] = "heartbeat"
        rec["severity"] = JOB_STATE_SEVERITY.get(state, "info") if isinstance(state, str) \
            else "info"
        rec["fields"] = fields


@register_decoder("bosh-alert")
class BoshAlert(_Hm):
    kind = "alert"

    def claims(self, protocol: str, topic: str) -> bool:
        return topic == "hm.director.alert" or super().claims(protocol, topic)

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        value = _object(self.name, value)
        sev = value.get("severity")
        if sev is not None and (type(sev) is not int or sev not in ALERT_SEVERITY):
            raise DecodeError(self.name, f"\"severity\" {sev!r} is not 1..4")
        for key in ("title", "summary"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise DecodeError(self.name, f"\"{key}\" is not a string")
        fields: dict[str, Any] = {}
        _identity(value, fields)
        for key in ("id", "title", "created_at", "source", "instance_id"):
            v = value.get(key)
            if v is not None and isinstance(v, str | int | float):
                fields[key] = v
        title = value.get("title") or ""
        text = value.get("summary") or ""
        if text:
            fields["alert_summary"] = text
        fields["summary"] = clip(f"{title}: {text}" if title and text else title or text
                                 or "alert")
        director = msg.topic == "hm.director.alert"
        rec["device"] = "director" if director else self.agent(msg)
        rec["event"] = "alert"
        if sev is not None:
            rec["severity"] = ALERT_SEVERITY[sev]
        rec["fields"] = fields


@register_decoder("bosh-shutdown")
class BoshShutdown(_Hm):
    kind = "shutdown"

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        # The agent's shutdown notice may carry nothing; only a JSON non-object
        # is the wrong shape.
        fields: dict[str, Any] = {}
        if value is not None:
            _identity(_object(self.name, value), fields)
        elif msg.payload.strip():
            raise DecodeError(self.name, "payload is not JSON")
        fields["summary"] = "agent shutting down"
        rec["device"] = self.agent(msg)
        rec["event"] = "shutdown"
        rec["severity"] = "notice"
        rec["fields"] = fields
