"""Payload decoders: one module each, chosen by topic and content.

Selection, per message:
1. decoders that claim the topic (cached per topic), highest priority first;
2. otherwise decoders that recognise the content (``sniff``);
3. otherwise the generic ones: ``json``, ``number``, ``text``, ``binary``.
A claimed decoder that fails leaves the record with the generic decoding and
``decode_error: "<decoder>: <reason>"``.
"""

from __future__ import annotations

import base64
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import ConfigError, DecodeError
from ..message import Message
from ..record import Record
from .base import Decoder

__all__ = ["DECODERS", "Decoder", "DecoderChain", "register_decoder"]

DECODERS: dict[str, type[Decoder]] = {}
_loaded = False

#: Payloads above this size are not parsed as JSON: kept as text/binary and counted.
MAX_PARSE_BYTES = 4 * 1024 * 1024


def register_decoder(name: str) -> Callable[[type[Decoder]], type[Decoder]]:
    def wrap(cls: type[Decoder]) -> type[Decoder]:
        cls.name = name
        DECODERS[name] = cls
        return cls
    return wrap


def load_all() -> dict[str, type[Decoder]]:
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return DECODERS


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


class DecoderChain:
    """The decoders in use, with a per-topic cache of who claims what."""

    def __init__(self, names: list[str] | None = None,
                 rules: list[tuple[str, str]] | None = None) -> None:
        """``names``: decoders to use (default all); ``rules``: (filter, decoder)
        pairs from the config that force a decoder for some topics."""
        available = load_all()
        chosen = names if names is not None else list(available)
        unknown = [n for n in chosen if n not in available and n not in _GENERIC]
        if unknown:
            raise ConfigError(f"unknown decoder {unknown[0]!r} (known: "
                              f"{', '.join(sorted([*available, *_GENERIC]))})", value=unknown[0])
        self.decoders = sorted((available[n]() for n in chosen if n in available),
                               key=lambda d: -d.priority)
        self.sniffers = [d for d in self.decoders if type(d).sniff is not Decoder.sniff]
        self.rules = rules or []
        self._by_topic: dict[tuple[str, str], Decoder | None] = {}

    def for_topic(self, protocol: str, topic: str) -> Decoder | None:
        key = (protocol, topic)
        try:
            return self._by_topic[key]
        except KeyError:
            pass
        found: Decoder | None = None
        from ..topics import matches

        for pattern, name in self.rules:
            if matches(protocol, pattern, topic):
                found = next((d for d in self.decoders if d.name == name), None)
                break
        else:
            found = next((d for d in self.decoders if d.claims(protocol, topic)), None)
        if len(self._by_topic) > 200_000:
            self._by_topic.clear()
        self._by_topic[key] = found
        return found

    def decode(self, msg: Message, rec: Record) -> None:
        payload = msg.payload
        value, parsed = parse_json(payload)
        decoder = self.for_topic(msg.protocol, msg.topic)
        if decoder is None and self.sniffers:
            decoder = next((d for d in self.sniffers if d.sniff(payload, value if parsed
                                                                else None)), None)
        generic(payload, value, parsed, rec)
        if len(payload) > MAX_PARSE_BYTES and rec["format"] != "binary":
            rec["decode_error"] = f"payload of {len(payload)} bytes not parsed (limit " \
                                  f"{MAX_PARSE_BYTES})"
        if decoder is None:
            return
        try:
            decoder.decode(msg, value if parsed else None, rec)
            rec["decoder"] = decoder.name
        except DecodeError as exc:
            rec["decode_error"] = str(exc)
        except Exception as exc:  # a decoder bug must not lose the message
            rec["decode_error"] = f"{decoder.name}: {type(exc).__name__}: {exc}"


_GENERIC = ("json", "number", "text", "binary")
