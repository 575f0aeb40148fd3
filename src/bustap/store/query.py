"""Filters shared by ``query``, ``stats``, ``export`` and ``dump``, turned
into parameterised SQL for either store.

Nothing the user types is pasted into SQL: values are parameters, column
names come from a fixed list, JSON paths are checked segment by segment, and
topic filters become regular expressions built from escaped characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import where
from ..errors import ConfigError
from ..record import SEVERITIES
from ..topics import is_mqtt_filter_valid, is_nats_subject_valid, split_shared
from .backend import Store
from .schema import BY_NAME

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


# --- --where: the tree of bustap.where as SQL -----------------------------------


def _json_expr(store: Store, root: str, path: tuple[str, ...], numeric: bool
               ) -> tuple[str, list[Any]]:
    get = store.json_number if numeric else store.json_text
    expr, params = get(root, list(path))
    if len(path) > 1:  # fields are flat by contract: the dotted key first
        flat, flat_params = get(root, [".".join(path)])
        return f"COALESCE({flat}, {expr})", [*flat_params, *params]
    return expr, params


def _sql(store: Store, node: where.Node, params: list[Any]) -> str:
    if isinstance(node, where.BoolOp):
        joined = f" {node.op.upper()} ".join(_sql(store, i, params) for i in node.items)
        return f"({joined})"
    if isinstance(node, where.Not):
        return f"NOT ({_sql(store, node.item, params)})"
    assert isinstance(node, where.Cond)
    value = node.value
    if node.path:
        expr, p = _json_expr(store, node.root, node.path, node.numeric)
        params += p
        if isinstance(value, bool):
            value = "true" if value else "false"
    else:
        expr = node.root
        col = BY_NAME[node.root]
        if col.is_json:
            expr = store.text(expr)
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and col.duck not in ("BIGINT", "SMALLINT"):
            value = str(value)
        if isinstance(value, bool) and col.duck != "BOOLEAN":
            value = "true" if value else "false"
    if node.op == "exists":
        return f"{expr} IS NOT NULL"
    if value is None:
        return f"{expr} IS NULL" if node.op == "=" else f"{expr} IS NOT NULL"
    if node.op == "contains":
        params.append(str(value).lower())
        return f"strpos(lower({store.text(expr)}), ?) > 0"
    if node.op == "~":
        params.append(str(value))
        return f"regexp_matches({store.text(expr)}, ?)" \
            if store.dialect == "duckdb" else f"{store.text(expr)} ~ ?"
    params.append(value)
    return f"{expr} {node.op} ?"


def where_condition(store: Store, text: str) -> tuple[str, list[Any]]:
    node = where.parse(text)
    params: list[Any] = []
    sql = _sql(store, node, params)
    return f"({sql})", params


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
