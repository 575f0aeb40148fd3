"""Log wording tables: message templates written as the broker's source writes
them, compiled to regexes and looked up by their first word.

A template is the format string with its verbs named::

    "Readloop processing time: {duration:dur}"
    "JetStream cluster new stream leader for {:asset}"

Placeholders (``{name}`` or ``{name:kind}``):

- no kind: any text (shortest match; the template is anchored at the end)
- ``d``: an integer, ``n``: an integer with thousands commas (Go's ``comma()``),
  ``f``: a decimal number
- ``q``: a Go ``%q`` string (``"..."``), unquoted; ``sq``: a ``'...'`` string
- ``dur``: a Go duration (``1.5s``, ``250ms``, ``2m3s``); also ``<name>_secs``
- ``bytes``: nats-server's friendlyBytes (``1.00 GB``); also ``<name>_bytes``
- ``asset``: ``'ACCOUNT > STREAM'`` or ``'ACCOUNT > STREAM > CONSUMER'``:
  fields ``account``, ``stream`` and ``consumer``
- ``word``: one word without spaces

A field whose name starts with ``_`` is matched but not kept. A trailing ``.``
is optional (releases add and drop it), and ``...`` at the end of a template
matches whatever follows. Rules are tried in the order given, so a specific
template goes before a general one with the same first word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{(\w*)(?::(\w+))?\}")
_KINDS = {
    "": r".*?", "d": r"-?\d+", "n": r"-?[\d,]+", "f": r"-?\d+(?:\.\d+)?",
    "q": r'"(?:[^"\\]|\\.)*"', "sq": r"'[^']*'", "word": r"\S+",
    "dur": r"(?:-?\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+|0",
    "bytes": r"-?\d+(?:\.\d+)? ?[KMGTP]?B", "asset": r"'[^']*'",
}
_DUR_PART = re.compile(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
              "h": 3600.0}
_BYTES = re.compile(r"(-?\d+(?:\.\d+)?) ?([KMGTP]?B)")
_BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4,
               "PB": 1024 ** 5}

Fields = dict[str, Any]


def go_duration_secs(text: str) -> float | None:
    total = 0.0
    found = False
    for num, unit in _DUR_PART.findall(text):
        total += float(num) * _DUR_UNITS[unit]
        found = True
    return round(total, 9) if found else (0.0 if text == "0" else None)


def friendly_bytes(text: str) -> int | None:
    m = _BYTES.fullmatch(text.strip())
    if m is None:
        return None
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2) or "B"])


def _unquote(text: str) -> str:
    body = text[1:-1]
    if "\\" in body:
        body = body.replace('\\"', '"').replace("\\\\", "\\")
    return body


def _asset(text: str, out: Fields) -> None:
    parts = text[1:-1].split(" > ")
    out["account"] = parts[0]
    if len(parts) > 1:
        out["stream"] = parts[1]
    if len(parts) > 2:
        out["consumer"] = parts[2]


class _Rule:
    __slots__ = ("converters", "event", "fields", "regex")

    def __init__(self, template: str, event: str, fields: Mapping[str, Any]) -> None:
        self.event = event
        self.fields = dict(fields)
        self.converters: list[tuple[str, str]] = []
        pattern = []
        pos = 0
        open_end = template.endswith("...") and not template.endswith("....")
        body = template[:-3] if open_end else template
        body = body.removesuffix(".")
        for n, m in enumerate(_PLACEHOLDER.finditer(body)):
            pattern.append(re.escape(body[pos:m.start()]))
            name, kind = m.group(1), m.group(2) or ""
            group = f"g{n}"
            pattern.append(f"(?P<{group}>{_KINDS[kind]})")
            self.converters.append((name, kind))
            pos = m.end()
        pattern.append(re.escape(body[pos:]))
        tail = r"(?s:.*)" if open_end else r"\.?\Z"
        self.regex = re.compile("".join(pattern) + tail, re.S)

    def apply(self, m: re.Match[str]) -> Fields:
        out: Fields = {"event": self.event}
        out.update(self.fields)
        for i, (name, kind) in enumerate(self.converters):
            value = m.group(f"g{i}")
            if kind == "asset":
                _asset(value, out)
                continue
            if not name or name[0] == "_":
                continue
            if kind == "d":
                out[name] = int(value)
            elif kind == "n":
                out[name] = int(value.replace(",", ""))
            elif kind == "f":
                out[name] = float(value)
            elif kind == "q" or kind == "sq":
                out[name] = _unquote(value)
            elif kind == "dur":
                out[name] = value
                secs = go_duration_secs(value)
                if secs is not None:
                    out[f"{name}_secs"] = secs
            elif kind == "bytes":
                out[name] = value
                size = friendly_bytes(value)
                if size is not None:
                    out[f"{name}_bytes"] = size
            else:
                out[name] = value
        return out


Rule = tuple[str, str] | tuple[str, str, Mapping[str, Any]]


class Wording:
    """Templates grouped by their first word; :meth:`match` returns the fields
    of the first template that matches the whole message, or None."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._by_word: dict[str, list[_Rule]] = {}
        self._wild: list[_Rule] = []
        self.events: list[str] = []
        for rule in rules:
            template, event = rule[0], rule[1]
            fields: Mapping[str, Any] = rule[2] if len(rule) > 2 else {}
            compiled = _Rule(template, event, fields)
            if event not in self.events:
                self.events.append(event)
            word = template.split(" ", 1)[0]
            if "{" in word:
                self._wild.append(compiled)
            else:
                self._by_word.setdefault(word, []).append(compiled)

    def match(self, text: str) -> Fields | None:
        sp = text.find(" ")
        bucket = self._by_word.get(text if sp < 0 else text[:sp])
        if bucket is not None:
            for rule in bucket:
                m = rule.regex.match(text)
                if m is not None:
                    return rule.apply(m)
        for rule in self._wild:
            m = rule.regex.match(text)
            if m is not None:
                return rule.apply(m)
        return None
