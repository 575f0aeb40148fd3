"""Subject, topic and routing-key templates of the bus sinks.

``bustap.{kind}.{device}`` takes record fields by name; a dotted name reaches
into a nested value or into the flat ``fields`` (``{fields.disk.percent}``).
A field that is missing, empty or not a scalar becomes ``_``, so every record
gets a name the target accepts. Each target has its own rules:

- NATS subjects and AMQP routing keys: a field fills exactly one token (its
  dots become ``_``), so a stream created for ``bustap.*.*`` catches every
  record of ``bustap.{kind}.{device}``; no wildcards (``*``, ``>``, ``#``),
  no whitespace, no empty tokens.
- MQTT topics: a field keeps its levels (``mirror/{topic}`` mirrors the topic
  tree), wildcards (``+``, ``#``) and NUL become ``_``, so do empty levels,
  and a level taken from a field never starts with ``$`` (broker topics).
"""

from __future__ import annotations

import re
import string
from typing import Any

from ..errors import ConfigError
from ..record import Record

PLACEHOLDER = "_"

# What may not appear inside one token taken from a field
_NATS_BAD = re.compile(r"[\s.*>\x00]")
_AMQP_BAD = re.compile(r"[\s.*#\x00]")
_MQTT_BAD = re.compile(r"[+#\x00]")
_RULES = {"nats": (".", _NATS_BAD), "amqp": (".", _AMQP_BAD), "mqtt": ("/", _MQTT_BAD)}
#: RabbitMQ refuses longer routing keys (a short string: 255 bytes)
AMQP_MAX_KEY_BYTES = 255


class Template:
    """A parsed template; ``render(record)`` gives a valid subject/topic/key."""

    __slots__ = ("fields", "kind", "parts", "text")

    def __init__(self, text: str, kind: str, *, what: str = "template") -> None:
        if kind not in _RULES:
            raise ValueError(kind)
        self.text = text
        self.kind = kind
        self.parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigError(f"{what} {text!r}: {exc} (fields are written {{name}})",
                              value=text) from exc
        for literal, name, spec, conversion in parsed:
            if name is not None and (spec or conversion or not name.strip()):
                raise ConfigError(f"{what} {text!r}: a field is a plain {{name}}, "
                                  f"not {{{name}{'!' + conversion if conversion else ''}"
                                  f"{':' + spec if spec else ''}}}", value=text)
            self.parts.append((literal, name))
        self.fields = [n for _, n in self.parts if n is not None]
        literal_text = "".join(lit for lit, _ in self.parts)
        wildcards = {"nats": "*>", "amqp": "*#", "mqtt": "+#"}[kind]
        if not text or any(c in literal_text for c in wildcards) or any(
                c.isspace() for c in literal_text if kind != "mqtt"):
            raise ConfigError(f"{what} {text!r}: must not be empty nor hold wildcards "
                              f"({' '.join(wildcards)}) or spaces", value=text)

    @property
    def static(self) -> bool:
        return not self.fields

    def render(self, record: Record) -> str:
        sep, bad = _RULES[self.kind]
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is None:
                continue
            value = _lookup(record, name)
            if sep == ".":
                value = bad.sub("_", value)
            else:
                value = "/".join("_" + lvl[1:] if lvl.startswith("$") else lvl
                                 for lvl in bad.sub("_", value).split("/"))
            out.append(value or PLACEHOLDER)
        name = "".join(out)
        tokens = [t or PLACEHOLDER for t in name.split(sep)]
        result = sep.join(tokens)
        if self.kind == "amqp" and len(result.encode()) > AMQP_MAX_KEY_BYTES:
            result = result.encode()[:AMQP_MAX_KEY_BYTES].decode("utf-8", "ignore")
        return result

    def pattern(self) -> str:
        """The NATS subject pattern every rendering matches (a field -> ``*``)."""
        if self.kind != "nats":
            raise ValueError("pattern() is for NATS subjects")
        # a NUL marks where a field goes: its token becomes a wildcard
        marked = "".join(lit + ("\x00" if name is not None else "") for lit, name in self.parts)
        return ".".join("*" if "\x00" in t else t or PLACEHOLDER for t in marked.split("."))


def _lookup(record: Record, name: str) -> str:
    value: Any = record.get(name)
    if value is None and "." in name:
        head, _, rest = name.partition(".")
        value = record.get(head)
        if isinstance(value, dict):
            # flat ``fields`` first (``fields.disk.percent`` is one key), then a walk
            if rest in value:
                value = value[rest]
            else:
                for key in rest.split("."):
                    value = value.get(key) if isinstance(value, dict) else None
        else:
            value = None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return PLACEHOLDER
