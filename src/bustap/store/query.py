"""Filters shared by ``query``, ``stats``, ``export`` and ``dump``, turned
into parameterised SQL for either store.

Nothing the user types is pasted into SQL: values are parameters, column
names come from a fixed list, JSON paths are checked segment by segment, and
topic filters become regular expressions built from escaped characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import ConfigError
from ..record import SEVERITIES
from ..topics import is_mqtt_filter_valid, is_nats_subject_valid, split_shared
from .backend import Store
from .schema import BY_NAME, COLUMN_NAMES

# --- topic filters -> regex ---------------------------------------------------


def _lit(text: str) -> str:
    """Escape every ASCII punctuation character: ``\\<punct>`` is a literal
    in RE2 (DuckDB), POSIX ARE (PostgreSQL) and Python alike."""
    return "".join("\\" + ch if ch.isascii() and not ch.isalnum() else ch for ch in text)


def mqtt_regex(topic_filter: str) -> str:
    """An MQTT filter as an anchored regex (``+`` one level, ``#`` the rest
    including the parent; wildcards first never match ``$`` topics)."""
    _, inner = split_shared(topic_filter)
    levels = inner.split("/")
    parts: list[str] = []
    for i, level in enumerate(levels):
        if level == "#":
            if i == 0:
                return "^([^$].*)?$"
            # sport/# matches sport, sport/ and sport/x/y
            return "^" + "".join(parts) + "(/.*)?$"
        sep = "/" if i else ""
        if level == "+":
            parts.append(sep + ("([^$/][^/]*)?" if i == 0 else "[^/]*"))
        else:
            parts.append(sep + _lit(level))
    return "^" + "".join(parts) + "$"


def nats_regex(subject: str) -> str:
    """A NATS subject with ``*`` (one token) and ``>`` (one or more) as an anchored regex."""
    parts: list[str] = []
    for i, tok in enumerate(subject.split(".")):
        sep = "\\." if i else ""
        if tok == ">":
            parts.append(sep + ".+")
        elif tok == "*":
            parts.append(sep + "[^.]+")
        else:
            parts.append(sep + _lit(tok))
    return "^" + "".join(parts) + "$"


def topic_condition(store: Store, pattern: str) -> tuple[str, list[Any]]:
    """``-t PATTERN`` as SQL: MQTT wildcards (``+``/``#``), NATS wildcards
    (``*``/``>``) or an exact topic."""
    if not pattern:
        raise ConfigError("invalid topic filter: empty", value=pattern)
    levels = split_shared(pattern)[1].split("/") if pattern.startswith("$share/") \
        else pattern.split("/")
    tokens = pattern.split(".")
    if any(lv in ("+", "#") for lv in levels):
        if not is_mqtt_filter_valid(pattern):
            raise ConfigError(f"invalid MQTT filter {pattern!r}", value=pattern)
        return store.regex("topic"), [mqtt_regex(pattern)]
    if any(t in ("*", ">") for t in tokens):
        if not is_nats_subject_valid(pattern):
            raise ConfigError(f"invalid NATS subject {pattern!r}", value=pattern)
        return store.regex("topic"), [nats_regex(pattern)]
    return "topic = ?", [pattern]


# --- --where ------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<>|<=|>=|=|<|>|~)
    | (?P<paren>[()])
    | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)
    )""", re.VERBOSE)
_WORDS = {"and", "or", "not", "true", "false", "null", "exists", "contains"}
_JSON_ROOTS = {"fields", "payload", "headers", "properties", "extra"}
_MAX_WHERE = 2000


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"invalid --where {text!r}: unexpected {text[pos:].strip()[:20]!r} "
                              f"at position {pos}", value=text)
        kind = m.lastgroup or ""
        value = m.group(kind)
        start = m.start(kind)
        if kind == "word" and value.lower() in _WORDS:
            kind, value = "kw", value.lower()
        out.append(_Tok(kind, value, start))
        pos = m.end()
    return out


class _WhereParser:
    """``cond (and|or cond)*`` with ``not``, parentheses, and conditions
    ``path OP literal``, ``path contains 'text'``, ``path exists``.
    ``path`` is a column (``topic``, ``qos``...) or a JSON path under
    ``fields``, ``payload``, ``headers``, ``properties`` or ``extra``."""

    def __init__(self, store: Store, text: str) -> None:
        self.store = store
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.params: list[Any] = []

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"invalid --where {self.text!r}: {what}", value=self.text)

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end")
        self.i += 1
        return tok

    def parse(self) -> str:
        if not self.toks:
            raise self.error("empty")
        sql = self.expr(0)
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return sql

    def expr(self, depth: int) -> str:
        if depth > 20:
            raise self.error("nested too deep")
        parts = [self.term(depth)]
        while (tok := self.peek()) is not None and tok.kind == "kw" and tok.text in ("and", "or"):
            self.i += 1
            parts.append(tok.text.upper())
            parts.append(self.term(depth))
        return " ".join(parts)

    def term(self, depth: int) -> str:
        tok = self.take()
        if tok.kind == "kw" and tok.text == "not":
            return f"NOT ({self.term(depth + 1)})"
        if tok.kind == "paren" and tok.text == "(":
            inner = self.expr(depth + 1)
            close = self.take()
            if close.text != ")":
                raise self.error("missing ')'")
            return f"({inner})"
        if tok.kind != "word":
            raise self.error(f"expected a field name, found {tok.text!r}")
        return self.condition(tok.text)

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind == "num":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "str":
            body = tok.text[1:-1]
            return re.sub(r"\\(.)", r"\1", body)
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "kw" and tok.text == "null":
            return None
        if tok.kind == "word":  # a bare word is a string: event = link_down
            return tok.text
        raise self.error(f"expected a value, found {tok.text!r}")

    def condition(self, path: str) -> str:
        segs = path.split(".")
        root = segs[0]
        op_tok = self.take()
        if op_tok.kind == "kw" and op_tok.text == "exists":
            if root in _JSON_ROOTS and len(segs) > 1:
                expr, params = self.store.json_text(root, segs[1:])
                self.params += params
                return f"{expr} IS NOT NULL"
            return f"{self._column(root, segs)} IS NOT NULL"
        if op_tok.kind == "kw" and op_tok.text == "contains":
            op = "contains"
        elif op_tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(op_tok.text, op_tok.text)
        else:
            raise self.error(f"expected an operator after {path!r}, found {op_tok.text!r}")
        value = self.literal()
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if root in _JSON_ROOTS and len(segs) > 1:
            for seg in segs[1:]:
                if not re.fullmatch(r"[A-Za-z0-9_\-]+", seg):
                    raise self.error(f"bad path segment {seg!r}")
            if numeric and op != "contains" and op != "~":
                expr, params = self.store.json_number(root, segs[1:])
            else:
                expr, params = self.store.json_text(root, segs[1:])
                if isinstance(value, bool):
                    value = "true" if value else "false"
            self.params += params
        else:
            expr = self._column(root, segs)
            col = BY_NAME[root]
            if col.is_json:
                expr = self.store.text(expr)
            if numeric and col.duck not in ("BIGINT", "SMALLINT"):
                value = str(value)
            if not numeric and col.duck in ("BIGINT", "SMALLINT") and value is not None \
                    and op not in ("contains", "~"):
                raise self.error(f"{root} is a number: compare it with a number")
            if isinstance(value, bool) and col.duck != "BOOLEAN":
                value = "true" if value else "false"
        if value is None:
            if op == "=":
                return f"{expr} IS NULL"
            if op == "!=":
                return f"{expr} IS NOT NULL"
            raise self.error("null only compares with = or !=")
        if op == "contains":
            self.params.append(str(value).lower())
            return f"strpos(lower({self.store.text(expr)}), ?) > 0"
        if op == "~":
            self.params.append(str(value))
            return f"regexp_matches({self.store.text(expr)}, ?)" \
                if self.store.dialect == "duckdb" else f"{self.store.text(expr)} ~ ?"
        self.params.append(value)
        return f"{expr} {op} ?"

    def _column(self, root: str, segs: list[str]) -> str:
        if len(segs) > 1 or root not in BY_NAME:
            known = ", ".join([*COLUMN_NAMES, *(f"{r}.PATH" for r in sorted(_JSON_ROOTS))])
            raise self.error(f"unknown field {'.'.join(segs)!r} (known: {known})")
        return root


def where_condition(store: Store, text: str) -> tuple[str, list[Any]]:
    if len(text) > _MAX_WHERE:
        raise ConfigError(f"invalid --where: longer than {_MAX_WHERE} characters",
                          value=text[:80])
    parser = _WhereParser(store, text)
    sql = parser.parse()
    return f"({sql})", parser.params


# --- the filter set -------------------------------------------------------------


def severity_at_least(name: str) -> list[str]:
    """``warning`` -> warning and worse (emerg..warning)."""
    aliases = {"err": "error", "warn": "warning", "critical": "crit", "emergency": "emerg",
               "information": "info", "informational": "info"}
    level = aliases.get(name.lower(), name.lower())
    if level not in SEVERITIES:
        raise ConfigError(f"invalid severity {name!r} (one of {', '.join(SEVERITIES)})",
                          value=name)
    return list(SEVERITIES[: SEVERITIES.index(level) + 1])


@dataclass
class Filters:
    topics: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    devices: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    severity: str | None = None
    clients: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    grep: str | None = None
    where: str | None = None

    def sql(self, store: Store) -> tuple[str, list[Any]]:
        """The WHERE clause (``TRUE`` when there is no filter) and its parameters."""
        conds: list[str] = []
        params: list[Any] = []
        if self.topics:
            ors = []
            for pattern in self.topics:
                sql, p = topic_condition(store, pattern)
                ors.append(sql)
                params += p
            conds.append("(" + " OR ".join(ors) + ")")
        if self.since is not None:
            conds.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            conds.append("ts < ?")
            params.append(self.until)
        for column, values in (("device", self.devices), ("event", self.events),
                               ("client_id", self.clients), ("kind", self.kinds),
                               ("event_type", self.event_types)):
            if values:
                conds.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params += values
        if self.severity:
            levels = severity_at_least(self.severity)
            conds.append(f"severity IN ({', '.join('?' for _ in levels)})")
            params += levels
        if self.grep:
            needle = self.grep.lower()
            conds.append("(" + " OR ".join(
                f"strpos(lower({store.text(c)}), ?) > 0"
                for c in ("topic", "payload", "fields", "extra", "device", "event",
                          "client_id")) + ")")
            params += [needle] * 7
        if self.where:
            sql, p = where_condition(store, self.where)
            conds.append(sql)
            params += p
        return (" AND ".join(conds) if conds else "TRUE"), params
