"""A tiny, safe expression language for naming devices and events in config
rules: paths into the message, never ``eval``.

Grammar::

    expr     := term ('|' term)*          first term that yields a value wins
    term     := STRING | root accessor*
    root     := topic | payload | headers | properties | fields | reply | protocol
    accessor := '.' NAME | '[' INT ']' | '[' STRING ']'
    NAME     := letters, digits, '_' and '-', not starting with a digit
    STRING   := "..." or '...' (no escapes)

``topic[1]`` is level 1 of the topic (MQTT levels split on ``/``, NATS
tokens on ``.``; negative indexes count from the end), ``topic`` the whole
topic. ``payload.meta.id`` walks the decoded JSON payload, ``fields.job`` the
fields a decoder extracted. A path that does not exist, or that ends on an
object or list, yields nothing, and the next ``|`` term is tried.

Expressions are compiled once (at config load, errors are
:class:`~bustap.errors.ConfigError` naming the expression and the position)
into a tuple of steps evaluated per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..message import Message
from ..record import Record

__all__ = ["ROOTS", "Expr", "compile_expr"]

ROOTS = ("topic", "payload", "headers", "properties", "fields", "reply", "protocol")
MAX_EXPR_CHARS = 256
MAX_INDEX = 10_000
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789-")

# A step is a str (mapping key) or an int (sequence index).
Step = str | int
# A term is (root, steps) or ("", literal).
Term = tuple[str, tuple[Step, ...]]


class Expr:
    """A compiled expression: call :meth:`evaluate` per message."""

    __slots__ = ("source", "terms")

    def __init__(self, source: str, terms: tuple[Term, ...]) -> None:
        self.source = source
        self.terms = terms

    def __repr__(self) -> str:
        return f"Expr({self.source!r})"

    def evaluate(self, msg: Message, rec: Record) -> str | None:
        for root, steps in self.terms:
            if root == "":
                return steps[0]  # type: ignore[return-value]
            value = _root(root, steps, msg, rec)
            if value is None:
                continue
            text = _scalar(value)
            if text:
                return text
        return None


def _root(root: str, steps: tuple[Step, ...], msg: Message, rec: Record) -> Any:
    if root == "topic":
        if not steps:
            return msg.topic
        first = steps[0]
        if type(first) is not int:
            return None
        levels = msg.topic.split("/" if msg.protocol == "mqtt" else ".")
        try:
            value: Any = levels[first]
        except IndexError:
            return None
        return value if len(steps) == 1 else None
    if root == "payload":
        value = rec.get("payload") if rec.get("format") == "json" else None
        if value is None and not steps:
            value = rec.get("payload")
    elif root == "protocol":
        value = msg.protocol
    elif root == "reply":
        value = msg.reply
    elif root == "headers":
        value = msg.headers
    elif root == "properties":
        value = msg.properties
    else:
        value = rec.get(root)
    for step in steps:
        if type(step) is int:
            if not isinstance(value, list):
                return None
            try:
                value = value[step]
            except IndexError:
                return None
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
        if value is None:
            return None
    return value


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    # NATS headers may hold a list of values: the first one names the thing.
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None


def compile_expr(source: object, *, what: str = "expression") -> Expr:
    """Parse ``source``; raise ConfigError naming it and the position of the fault."""
    if not isinstance(source, str):
        raise ConfigError(f"{what} must be a string, not {source!r}", value=source)
    if not source.strip():
        raise ConfigError(f"{what} is empty", value=source)
    if len(source) > MAX_EXPR_CHARS:
        raise ConfigError(f"{what} {source[:40]!r}...: longer than {MAX_EXPR_CHARS} "
                          "characters", value=source[:80])
    return Expr(source, tuple(_Parser(source, what).parse()))


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    def fail(self, reason: str) -> ConfigError:
        return ConfigError(f"invalid {self.what} {self.text!r} at position {self.pos}: "
                           f"{reason}", value=self.text)

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def parse(self) -> list[Term]:
        terms = [self.term()]
        self.skip_ws()
        while self.pos < len(self.text):
            if self.text[self.pos] != "|":
                raise self.fail(f"unexpected {self.text[self.pos]!r} (expected '|' or the end)")
            self.pos += 1
            terms.append(self.term())
            self.skip_ws()
        return terms

    def term(self) -> Term:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.fail("expected a path or a quoted string")
        c = self.text[self.pos]
        if c in "\"'":
            return ("", (self.string(),))
        name = self.name()
        if name not in ROOTS:
            raise self.fail(f"unknown name {name!r} (expected one of {', '.join(ROOTS)} "
                            "or a quoted string)")
        steps: list[Step] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == ".":
                self.pos += 1
                steps.append(self.name())
            elif c == "[":
                self.pos += 1
                self.skip_ws()
                if self.pos < len(self.text) and self.text[self.pos] in "\"'":
                    steps.append(self.string())
                else:
                    steps.append(self.integer())
                self.skip_ws()
                if self.pos >= len(self.text) or self.text[self.pos] != "]":
                    raise self.fail("expected ']'")
                self.pos += 1
            else:
                break
        if name == "topic" and steps and (len(steps) > 1 or type(steps[0]) is not int):
            raise self.fail("topic takes one level index, like topic[1] or topic[-1]")
        if name in ("protocol", "reply") and steps:
            raise self.fail(f"{name} has no parts")
        return (name, tuple(steps))

    def name(self) -> str:
        start = self.pos
        if self.pos >= len(self.text) or self.text[self.pos] not in _NAME_START:
            raise self.fail("expected a name")
        while self.pos < len(self.text) and self.text[self.pos] in _NAME_CHARS:
            self.pos += 1
        return self.text[start:self.pos]

    def string(self) -> str:
        quote = self.text[self.pos]
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self.fail("unterminated string")
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value

    def integer(self) -> int:
        start = self.pos
        if self.pos < len(self.text) and self.text[self.pos] == "-":
            self.pos += 1
        digits = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in "0123456789":
            self.pos += 1
        if self.pos == digits:
            raise self.fail("expected an integer index or a quoted key")
        value = int(self.text[start:self.pos])
        if abs(value) > MAX_INDEX:
            raise self.fail(f"index {value} out of range")
        return value
