"""BOSH director <-> agent RPC over NATS (seed 002, reference section 6).

Requests: the director publishes ``{"protocol":3,"method":"get_state",
"arguments":[...],"reply_to":"director.<director_uuid>.<agent_id>.<request_uuid>"}``
to ``agent.<agent_id>``. Replies: the agent publishes ``{"value": ...}`` or
``{"exception": {"message": ...}}`` to that ``director.*.<agent_id>.*`` subject.

Shapes seen in real traffic beyond that (bosh-agent's tests,
agentclient/http/agent_client_test.go and handler/perform_handler_with_json_test.go;
the director's nats_rpc.rb history): older directors reply on
``director.<director_id>.<request_id>`` (no agent id); requests without
``protocol``; a ``value`` that is a string (``"pong"``), a number, a list, empty,
or an object holding an ``exception``. On subjects that say nothing (a
``_INBOX``), requests and replies are recognised by their shape.

Arguments carry secrets (``ssh`` public keys, signed blobstore URLs,
``update_settings`` with certificates' private keys and passwords): the record's
``payload`` and ``fields`` get a redacted copy, never the original. A payload on
these subjects that is not JSON is kept as text with secret-looking values
blanked, since the original cannot be trusted to be safe.
"""

from __future__ import annotations

from typing import Any

from ..errors import DecodeError
from ..message import Message
from ..record import Record
from . import register_decoder
from ._util import clip, flatten, redact, redact_text
from .base import Decoder

NAME = "bosh-rpc"
#: Methods that change the VM or open access to it (reference section 6).
HIGH_RISK = frozenset({"ssh", "run_script", "update_settings", "run_errand", "shutdown",
                       "delete_arp_entries", "apply", "update_persistent_disk"})


def _parse_subject(topic: str) -> tuple[str, str, str] | None:
    """``agent.<id>`` -> ("request", id, ""); ``director.<d>.<id>.<req>`` ->
    ("reply", id, req); else None."""
    if topic.startswith("agent."):
        agent = topic[6:]
        if agent and "." not in agent:
            return "request", agent, ""
        return None
    if topic.startswith("director."):
        parts = topic.split(".")
        if len(parts) == 4 and all(parts):
            return "reply", parts[2], parts[3]
        if len(parts) == 3 and all(parts):  # directors before the agent id was added
            return "reply", "", parts[2]
    return None


#: keys of the agent's long-running task replies ({"value": {"agent_task_id": ...}})
_TASK_KEYS = ("agent_task_id", "job_state")


@register_decoder(NAME)
class BoshRpc(Decoder):
    priority = 200
    sniff_on = "object"
    redacts = True

    def claims(self, protocol: str, topic: str) -> bool:
        return _parse_subject(topic) is not None

    def sniff(self, payload: bytes, value: Any) -> bool:
        """A request: method, arguments and reply_to; a reply: an exception
        with a message, or a lone value that only an agent sends."""
        if "method" in value:
            return (isinstance(value.get("method"), str) and isinstance(value.get("arguments"),
                                                                        list)
                    and isinstance(value.get("reply_to"), str))
        if len(value) != 1:
            return False
        if "exception" in value:
            exc = value["exception"]
            return isinstance(exc, dict) and isinstance(exc.get("message"), str)
        v = value.get("value")
        return v == "pong" or (isinstance(v, dict) and any(k in v for k in _TASK_KEYS))

    def keep_raw(self, msg: Message, rec: Record) -> None:
        # keep the bytes readable but without anything that looks secret
        rec["format"] = "text"
        rec["payload"] = redact_text(msg.payload.decode("utf-8", "replace"))

    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        shape = _parse_subject(msg.topic)
        if value is None:
            self.keep_raw(msg, rec)
            raise DecodeError(NAME, "payload is not JSON (kept as text, secrets blanked)")
        safe = redact(value)
        rec["payload"] = safe
        if not isinstance(safe, dict):
            raise DecodeError(NAME, f"payload is a JSON {type(value).__name__}, not an object")
        kind, agent, request_id = shape or ("request" if "method" in safe else "reply", "", "")
        fields: dict[str, Any] = {}
        if kind == "request" or "method" in safe:
            method = safe.get("method")
            if not isinstance(method, str) or not method:
                raise DecodeError(NAME, "\"method\" missing or not a string")
            args = safe.get("arguments")
            if args is not None and not isinstance(args, list):
                raise DecodeError(NAME, "\"arguments\" is not a list")
            reply_to = safe.get("reply_to")
            if reply_to is not None and not isinstance(reply_to, str):
                raise DecodeError(NAME, "\"reply_to\" is not a string")
            if safe.get("protocol") is not None:
                fields["protocol"] = safe["protocol"]
            if reply_to:
                fields["reply_to"] = reply_to
                parts = reply_to.split(".")
                if parts[0] == "director" and len(parts) in (3, 4):
                    fields["request_id"] = parts[-1]
                    if len(parts) == 4 and not agent:
                        agent = parts[2]
            fields["arguments"] = args if args is not None else []
            if method in HIGH_RISK:
                fields["risk"] = "high"
            fields["summary"] = clip(f"{method}({_args_text(args)})")
            rec["event"] = method
            rec["severity"] = "notice" if method in HIGH_RISK else "info"
        else:
            if request_id:
                fields["request_id"] = request_id
            v: Any = safe.get("value")
            if "exception" in safe or (isinstance(v, dict) and "exception" in v):
                # a failed task's result carries its exception inside the value
                exc = safe["exception"] if "exception" in safe else v["exception"]
                text = exc.get("message") if isinstance(exc, dict) else exc
                fields["exception"] = text if isinstance(text, str) else str(text)
                fields["summary"] = clip(f"exception: {fields['exception']}")
                rec["event"] = "exception"
                rec["severity"] = "error"
            elif "value" in safe:
                if isinstance(v, dict):
                    flatten(v, "value", fields, depth=2, limit=32)
                else:
                    fields["value"] = v
                fields["summary"] = clip(f"reply: {_value_text(v)}")
                rec["event"] = "reply"
                rec["severity"] = "info"
            else:
                raise DecodeError(NAME, "reply has neither \"value\" nor \"exception\"")
        if agent:
            rec["device"] = agent
        rec["fields"] = fields


def _args_text(args: Any) -> str:
    if not args:
        return ""
    out = []
    for a in args[:4]:
        if isinstance(a, str | int | float | bool):
            out.append(str(a))
        elif isinstance(a, dict):
            out.append("{" + ", ".join(str(k) for k in list(a)[:4]) + "}")
        else:
            out.append("[...]")
    return ", ".join(out)


def _value_text(v: Any) -> str:
    if v is None or v == "" or v == [] or v == {}:
        return "(empty)"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v[:6]) + (", ..." if len(v) > 6 else "")
    if isinstance(v, dict):
        for key in ("job_state", "state", "agent_task_id", "message"):
            if isinstance(v.get(key), str):
                return f"{key} {v[key]}"
        return "{" + ", ".join(str(k) for k in list(v)[:6]) + "}"
    return str(v)
