"""The decoder chain: which decoder (or user rule) handles a message, run
it, and fall back to the generic decodings when it fails. Selection rules
are in the package's docstring (:mod:`bustap.decode`)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..errors import ConfigError, DecodeError
from ..message import Message
from ..record import SEVERITIES, Record
from ..topics import matches, valid_for
from . import DECODERS, load_all
from ._expr import compile_expr
from ._util import normalise_severity
from .base import Decoder

__all__ = ["MAX_PARSE_BYTES", "DecodeRule", "DecoderChain", "generic", "parse_json"]

#: Payloads above this size are not parsed as JSON: kept as text/binary and counted.
MAX_PARSE_BYTES = 4 * 1024 * 1024


def generic(payload: bytes, value: Any, parsed: bool, rec: Record) -> None:
    """The fallback decoding every payload gets: json, number, text or binary."""
    if parsed:
        rec["format"] = "json"
        rec["payload"] = value
        rec["decoder"] = "number" if type(value) in (int, float) else "json"
        return
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        rec["format"] = "binary"
        rec["payload"] = base64.b64encode(payload).decode("ascii")
        rec["decoder"] = "binary"
        return
    rec["format"] = "text"
    rec["payload"] = text
    rec["decoder"] = "text"


def parse_json(payload: bytes) -> tuple[Any, bool]:
    """(value, True) when the payload is JSON, else (None, False). Cheap test
    on the first byte first: most binary and text payloads are refused there."""
    if not payload or len(payload) > MAX_PARSE_BYTES:
        return None, False
    first = payload[0]
    # JSON starts with {["-0-9tfn or whitespace
    if first not in _JSON_START:
        return None, False
    try:
        return orjson.loads(payload), True
    except orjson.JSONDecodeError:
        return None, False


_JSON_START = frozenset(b'{["-0123456789tfn \t\r\n')


class DecodeRule:
    """A user rule: for topics matching ``filter`` (optionally only on one
    ``protocol``), use ``decoder`` and/or name the ``device``, ``event`` and
    ``severity`` with expressions (:mod:`bustap.decode._expr`). The first
    matching rule wins. Build with :meth:`from_config` to validate."""

    __slots__ = ("decoder", "device", "event", "filter", "protocol", "severity")

    KEYS = ("filter", "decoder", "device", "event", "severity", "protocol")

    def __init__(self, filter: str, *, decoder: str | None = None, device: str | None = None,
                 event: str | None = None, severity: str | None = None,
                 protocol: str | None = None) -> None:
        self.filter = filter
        self.decoder = decoder
        self.protocol = protocol
        self.device = compile_expr(device, what="device expression") if device is not None \
            else None
        self.event = compile_expr(event, what="event expression") if event is not None \
            else None
        self.severity = compile_expr(severity, what="severity expression") \
            if severity is not None else None
        if self.severity is not None:
            for root, steps in self.severity.terms:
                if root == "" and normalise_severity(steps[0]) is None:
                    raise ConfigError(f"severity {steps[0]!r} is not one of "
                                      f"{', '.join(SEVERITIES)}", value=steps[0])

    def __repr__(self) -> str:
        return f"DecodeRule({self.filter!r}, decoder={self.decoder!r})"

    @classmethod
    def from_config(cls, item: object, index: int = 0) -> DecodeRule:
        """A rule from a config table (``[[decode.rules]]``), a ``(filter,
        decoder)`` pair, or a DecodeRule. Errors name the rule and the value."""
        if isinstance(item, DecodeRule):
            return item
        where = f"decode rule {index + 1}"
        if isinstance(item, tuple | list) and len(item) == 2:
            item = {"filter": item[0], "decoder": item[1]}
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected a table with filter, decoder, device, "
                              f"event, severity, protocol; got {item!r}", value=item)
        for key in item:
            if key not in cls.KEYS:
                raise ConfigError(f"{where}: unknown key {key!r} (known: "
                                  f"{', '.join(cls.KEYS)})", value=key)
        for key, v in item.items():
            if not isinstance(v, str):
                raise ConfigError(f"{where}: {key} must be a string, not {v!r}", value=v)
        if "filter" not in item:
            raise ConfigError(f"{where}: missing filter", value=dict(item))
        flt = item["filter"]
        protocol = item.get("protocol")
        if protocol is not None and protocol not in ("mqtt", "nats", "jetstream"):
            raise ConfigError(f"{where}: protocol {protocol!r} is not mqtt, nats or "
                              "jetstream", value=protocol)
        if protocol:
            ok = valid_for(protocol, flt)
        elif any(c in flt for c in "/#+"):
            # reads as an MQTT filter: "a/#/b" is a typo, not a NATS literal
            ok = valid_for("mqtt", flt)
        elif "*" in flt or ">" in flt:
            ok = valid_for("nats", flt)
        else:
            ok = valid_for("mqtt", flt) or valid_for("nats", flt)
        if not ok:
            raise ConfigError(f"{where}: invalid filter {flt!r}", value=flt)
        decoder = item.get("decoder")
        if decoder is not None and decoder not in load_all() and decoder not in _GENERIC:
            raise ConfigError(f"{where}: unknown decoder {decoder!r} (known: "
                              f"{', '.join(sorted([*DECODERS, *_GENERIC]))})", value=decoder)
        try:
            return cls(flt, decoder=decoder, device=item.get("device"),
                       event=item.get("event"), severity=item.get("severity"),
                       protocol=protocol)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}", value=exc.value) from exc

    def matches(self, protocol: str, topic: str) -> bool:
        if self.protocol is not None and self.protocol != protocol:
            return False
        return valid_for(protocol, self.filter) and matches(protocol, self.filter, topic)

    def apply(self, msg: Message, rec: Record) -> None:
        if self.device is not None:
            v = self.device.evaluate(msg, rec)
            if v:
                rec["device"] = v
        if self.event is not None:
            v = self.event.evaluate(msg, rec)
            if v:
                rec["event"] = v
        if self.severity is not None:
            sev = normalise_severity(self.severity.evaluate(msg, rec))
            if sev:
                rec["severity"] = sev


class _Route:
    """What to do with one (protocol, topic), decided once and cached."""

    __slots__ = ("decoder", "force", "rule")

    def __init__(self, decoder: Decoder | None, force: str | None,
                 rule: DecodeRule | None) -> None:
        self.decoder = decoder
        self.force = force  # a generic decoder forced by a rule
        self.rule = rule if rule is not None and (
            rule.device or rule.event or rule.severity) else None


#: Keys a decoder adds; removed again when it fails.
_DECODED = ("device", "event", "severity", "fields")


class DecoderChain:
    """The decoders in use, with a per-topic cache of who claims what.

    ``names``: decoders to use (default all); ``rules``: user rules
    (:class:`DecodeRule`, config tables, or ``(filter, decoder)`` pairs),
    validated here so a bad one fails at start with a ConfigError.
    :meth:`decode` never raises: whatever the payload, the record gets
    ``format``/``payload`` and, when something went wrong, ``decode_error``.
    """

    def __init__(self, names: list[str] | None = None,
                 rules: Sequence[object] | None = None) -> None:
        available = load_all()
        #: what this chain was built from (worker processes build the same)
        self.config = (names, list(rules or []))
        chosen = names if names is not None else list(available)
        unknown = [n for n in chosen if n not in available and n not in _GENERIC]
        if unknown:
            raise ConfigError(f"unknown decoder {unknown[0]!r} (known: "
                              f"{', '.join(sorted([*available, *_GENERIC]))})", value=unknown[0])
        self.decoders = sorted((available[n]() for n in chosen if n in available),
                               key=lambda d: -d.priority)
        self.rules = [DecodeRule.from_config(r, i) for i, r in enumerate(rules or [])]
        self._by_name = {d.name: d for d in self.decoders}
        for r in self.rules:  # a rule may name a decoder left out of ``names``
            if r.decoder and r.decoder in available and r.decoder not in self._by_name:
                self._by_name[r.decoder] = available[r.decoder]()
        sniffers = [d for d in self.decoders if type(d).sniff is not Decoder.sniff]
        self.sniffers = sniffers
        self._sniff_object = [d for d in sniffers if d.sniff_on in ("object", "any")]
        self._sniff_json = [d for d in sniffers if d.sniff_on == "any"]
        self._sniff_text = [d for d in sniffers if d.sniff_on in ("text", "any")]
        self._routes: dict[tuple[str, str], _Route] = {}
        self._declared: dict[str, str | None] = {}

    def for_topic(self, protocol: str, topic: str) -> Decoder | None:
        """The decoder that claims this topic (by rule or by claims()), if any."""
        return self._route(protocol, topic).decoder

    def _route(self, protocol: str, topic: str) -> _Route:
        key = (protocol, topic)
        route = self._routes.get(key)
        if route is not None:
            return route
        rule = next((r for r in self.rules if r.matches(protocol, topic)), None)
        decoder: Decoder | None = None
        force: str | None = None
        if rule is not None and rule.decoder is not None:
            if rule.decoder in _GENERIC:
                force = rule.decoder
            else:
                decoder = self._by_name[rule.decoder]
        else:
            decoder = next((d for d in self.decoders if d.claims(protocol, topic)), None)
        route = _Route(decoder, force, rule)
        if len(self._routes) > 200_000:
            self._routes.clear()
        self._routes[key] = route
        return route

    def decode(self, msg: Message, rec: Record) -> None:
        try:
            self._decode(msg, rec)
        except Exception as exc:  # a bug here must not lose the message or stop capture
            for key in _DECODED:
                rec.pop(key, None)
            generic(msg.payload, None, False, rec)
            rec["decode_error"] = f"bustap: {type(exc).__name__} while decoding"

    def _decode(self, msg: Message, rec: Record) -> None:
        payload = msg.payload
        route = self._routes.get((msg.protocol, msg.topic)) or self._route(msg.protocol,
                                                                            msg.topic)
        want = route.force
        why = "" if want is None else "rule"
        error: str | None = None
        if want is None and (msg.properties or msg.headers):
            want, why, error = self._declared_format(msg, payload)
        if want is None or want == "json" or want == "number":
            value, parsed = parse_json(payload)
        else:
            value, parsed = None, False
        if want is None:
            generic(payload, value, parsed, rec)
        else:
            error = _forced(want, why, payload, value, parsed, rec) or error

        decoder = route.decoder
        if want == "binary":
            # declared opaque (application/octet-stream): not ours to interpret
            decoder = None
        elif decoder is None and route.force is None and self.sniffers:
            decoder = self._sniff(payload, value, parsed)
        size = len(payload)
        if decoder is not None:
            if size > MAX_PARSE_BYTES:
                error = (f"{decoder.name}: payload of {size} bytes is over the "
                         f"{MAX_PARSE_BYTES}-byte decode limit; kept raw")
                decoder.keep_raw(msg, rec)
            else:
                try:
                    decoder.decode(msg, value if parsed else None, rec)
                    rec["decoder"] = decoder.name
                except DecodeError as exc:
                    for key in _DECODED:
                        rec.pop(key, None)
                    error = str(exc) if error is None else f"{exc}; {error}"
                except Exception as exc:  # a decoder bug must not lose the message
                    for key in _DECODED:
                        rec.pop(key, None)
                    error = f"{decoder.name}: {type(exc).__name__}: {exc}"
        elif size > MAX_PARSE_BYTES and rec["format"] != "binary" and error is None:
            error = f"payload of {size} bytes not parsed (limit {MAX_PARSE_BYTES})"
        if route.rule is not None:
            route.rule.apply(msg, rec)
        if error is not None:
            rec["decode_error"] = error
        if (rec["format"] == "json" and (decoder is None or not decoder.redacts)
                and orjson.dumps(rec["payload"]) != payload):
            # the value alone would come back as other bytes (spaces, escapes, 1.50,
            # big integers, a decoder's rewrite): keep the bytes, for replay. Text and
            # binary payloads are the bytes already.
            rec["payload_raw"] = payload.decode("utf-8")

    def _sniff(self, payload: bytes, value: Any, parsed: bool) -> Decoder | None:
        if parsed:
            candidates = self._sniff_object if type(value) is dict else self._sniff_json
            arg = value
        else:
            candidates = self._sniff_text
            arg = None
        for d in candidates:
            if d.sniff(payload, arg):
                return d
        return None

    def _declared_format(self, msg: Message, payload: bytes
                         ) -> tuple[str | None, str, str | None]:
        """MQTT 5 content_type / payload_format_indicator (and a NATS
        Content-Type header): (format wanted, why, error)."""
        ct: Any = None
        pfi: Any = None
        props = msg.properties
        if props:
            ct = props.get("content_type")
            pfi = props.get("payload_format_indicator")
        if ct is None and msg.headers and msg.protocol != "mqtt":
            ct = msg.headers.get("Content-Type")
            if isinstance(ct, list):
                ct = ct[0] if ct else None
        want: str | None = None
        why = ""
        if isinstance(ct, str):
            try:
                want = self._declared[ct]
            except KeyError:
                want = _content_type_format(ct)
                if len(self._declared) < 1024:
                    self._declared[ct] = want
            if want is not None:
                why = f"content_type {ct}"
        if pfi == 1 and want is None:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                return None, "", (f"text: payload_format_indicator 1 (UTF-8) but invalid "
                                  f"UTF-8 at byte {exc.start}")
        return want, why, None


def _content_type_format(ct: str) -> str | None:
    """``application/json; charset=utf-8`` -> json, ``text/plain`` -> text,
    ``application/octet-stream`` -> binary; unknown types -> None (sniff)."""
    media = ct.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media.startswith("text/"):
        return "text"
    if media == "application/octet-stream":
        return "binary"
    return None


def _forced(want: str, why: str, payload: bytes, value: Any, parsed: bool,
            rec: Record) -> str | None:
    """Generic decoding when the format is declared (content type) or forced
    (rule); returns the error when the payload is not what was declared."""
    because = f" ({why})" if why and why != "rule" else ""
    if want == "binary":
        rec["format"] = "binary"
        rec["payload"] = base64.b64encode(payload).decode("ascii")
        rec["decoder"] = "binary"
        return None
    if want == "text":
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            generic(payload, None, False, rec)
            return f"text: invalid UTF-8 at byte {exc.start}{because}"
        rec["format"] = "text"
        rec["payload"] = text
        rec["decoder"] = "text"
        return None
    generic(payload, value, parsed, rec)
    if want == "number":
        if not parsed or type(value) not in (int, float):
            return f"number: payload is not a number{because}"
        return None
    if not parsed:
        reason = "too large to parse" if len(payload) > MAX_PARSE_BYTES else \
            "payload is not valid JSON"
        return f"json: {reason}{because}"
    return None


_GENERIC = ("json", "number", "text", "binary")
