"""Fleets of brokers: URL ranges and sources files.

A network of 200 Junos routers is 200 MQTT brokers (each router runs its own
notification service). ``mqtt://rtr-{001..200}:1883`` names them all (ranges
keep the width of their first number, as bash does; ``{a,b}`` lists work
too), and a sources file lists them one a line, each with its own options::

    # routers: shared defaults come from the command line flags
    mqtt://rtr-{001..200}:1883
    mqtts://edge-1:8883 username=tap password_env=EDGE1_PW tls_ca=/etc/bustap/ca.pem
    nats://bus:4222 token_env=BUS_TOKEN topics=hm.>,agent.>

A file ending in ``.toml`` holds ``[source_defaults]`` and ``[[source]]``
tables, as in the ``bustap run`` config. The tables this module returns are
checked (keys, types, secrets from the environment) by
:func:`bustap.config.sources_from_tables`.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .urls import redact

#: Beyond this many URLs from one pattern it is a typo, not a fleet.
MAX_EXPANSION = 10_000

_BRACES = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.(\d+))?$")


def expand(pattern: str) -> list[str]:
    """``mqtt://rtr-{001..003}:1883`` -> rtr-001, rtr-002, rtr-003; ``{a,b}``
    -> a, b; several braces multiply. A string without braces is itself."""
    parts: list[list[str]] = []
    pos = 0
    for m in _BRACES.finditer(pattern):
        parts.append([pattern[pos:m.start()]])
        parts.append(_alternatives(m.group(1), pattern))
        pos = m.end()
    if not parts:
        return [pattern]
    parts.append([pattern[pos:]])
    total = 1
    for p in parts:
        total *= len(p)
    if total > MAX_EXPANSION:
        raise ConfigError(f"{redact(pattern)!r} expands to {total} URLs (at most "
                          f"{MAX_EXPANSION})", value=redact(pattern))
    return ["".join(combo) for combo in itertools.product(*parts)]


def _alternatives(inner: str, pattern: str) -> list[str]:
    m = _RANGE.match(inner)
    if m:
        first, last, step_text = m.group(1), m.group(2), m.group(3)
        start, end = int(first), int(last)
        step = int(step_text) if step_text else 1
        if step == 0:
            raise ConfigError(f"{redact(pattern)!r}: range step 0", value=inner)
        width = len(first.lstrip("-")) if first.lstrip("-").startswith("0") else 0
        count = abs(end - start) // step + 1
        if count > MAX_EXPANSION:
            raise ConfigError(f"{redact(pattern)!r} expands to {count} URLs (at most "
                              f"{MAX_EXPANSION})", value=redact(pattern))
        sign = 1 if end >= start else -1
        return [str(n).zfill(width) for n in range(start, end + sign, sign * step)]
    if "," in inner:
        return inner.split(",")
    raise ConfigError(f"{redact(pattern)!r}: {{{inner}}} is neither a range like {{001..200}} "
                      "nor a list like {a,b}", value=inner)


def read_sources_file(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(shared defaults, one table per line or [[source]]) from a sources file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"--sources {p}: {exc.strerror or exc}", value=str(p)) from exc
    if p.suffix == ".toml":
        return _toml(text, str(p))
    return {}, parse_lines(text, str(p))


def _toml(text: str, origin: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}", value=origin) from exc
    unknown = sorted(set(data) - {"source", "source_defaults"})
    if unknown:
        raise ConfigError(f"{origin}: unknown key {unknown[0]!r} (a sources file holds "
                          "[source_defaults] and [[source]])", value=unknown[0])
    defaults = data.get("source_defaults", {})
    tables = data.get("source", [])
    if not isinstance(defaults, dict):
        raise ConfigError(f"{origin}: source_defaults must be a table", value="source_defaults")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{origin}: source must be [[source]] tables", value="source")
    return defaults, tables


def parse_lines(text: str, origin: str) -> list[dict[str, Any]]:
    """``URL [key=value ...]`` a line; ``#`` starts a comment. Values stay
    text here: the config's checker converts them to the option's type."""
    tables: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        url, *options = line.split()
        table: dict[str, Any] = {"url": url}
        for k, opt in enumerate(options, 1):
            key, sep, value = opt.partition("=")
            if not sep or not key:
                # not echoed: a mistyped "password:..." would show the password
                raise ConfigError(f"{origin}:{number}: word {k} after the URL is not "
                                  "key=value", value=f"{origin}:{number}")
            table[key] = _Text(value)
        table["_line"] = number
        tables.append(table)
    return tables


class _Text(str):
    """A value read from a line of text, converted to the option's type when
    the table is checked (``qos=1`` is 1, ``insecure=true`` is True)."""

    __slots__ = ()


def convert_text(value: Any, default: Any) -> Any:
    """A text value from a sources file as the type of the option's default;
    other values as they are (a ConfigError follows from the type check)."""
    if not isinstance(value, _Text):
        return value
    text = str(value)
    if isinstance(default, bool):
        low = text.lower()
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        return text
    if isinstance(default, list):
        return [v for v in text.split(",") if v]
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            return text
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            return text
    return text
