"""Helpers the decoders share: severity names, flattening, numbers, redaction."""

from __future__ import annotations

from math import isfinite
from typing import Any

from ..record import SEVERITIES

#: Spellings seen in the wild -> the syslog names records use.
_SEVERITY_ALIASES = {
    "emerg": "emerg", "emergency": "emerg", "panic": "emerg",
    "alert": "alert",
    "crit": "crit", "critical": "crit",
    "err": "error", "error": "error",
    "warn": "warning", "warning": "warning",
    "notice": "notice",
    "info": "info", "informational": "info",
    "debug": "debug",
}
_severity_cache: dict[str, str | None] = {}


def normalise_severity(value: object) -> str | None:
    """``warn`` -> ``warning``, ``INFO`` -> ``info``, 0..7 -> syslog names;
    None when it is not a severity."""
    if isinstance(value, str):
        try:
            return _severity_cache[value]
        except KeyError:
            pass
        found = _SEVERITY_ALIASES.get(value.strip().lower())
        if len(_severity_cache) < 1024:
            _severity_cache[value] = found
        return found
    if type(value) is int and 0 <= value < len(SEVERITIES):
        return SEVERITIES[value]
    return None


def to_number(value: Any) -> Any:
    """``"0.4"`` -> 0.4, ``"13"`` -> 13; anything else unchanged."""
    if type(value) is not str:
        return value
    try:
        f = float(value)
    except ValueError:
        return value
    if value.isdigit():  # "13" stays an int (float() accepted it, so it is ASCII-safe)
        return int(value)
    # inf/nan are not JSON: keep the text
    return f if isfinite(f) else value


_NUMBERS: dict[str, Any] = {}


def cached_number(value: Any) -> Any:
    """:func:`to_number` through a cache: vitals and counters repeat the same
    few strings ("0.4", "13"), and a dict lookup is a tenth of a float()."""
    if type(value) is not str:
        return value
    try:
        return _NUMBERS[value]
    except KeyError:
        pass
    if len(_NUMBERS) >= 65_536:
        _NUMBERS.clear()
    number = _NUMBERS[value] = to_number(value)
    return number


def flatten(value: Any, prefix: str, out: dict[str, Any], *, depth: int = 4,
            limit: int = 64, numbers: bool = False) -> None:
    """Scalars of nested objects into ``out`` with dotted keys; lists of
    scalars are kept whole. Bounded in depth and count: fields stay small."""
    if isinstance(value, dict):
        if depth <= 0:
            return
        for k, v in value.items():
            if len(out) >= limit:
                return
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth=depth - 1,
                    limit=limit, numbers=numbers)
    elif isinstance(value, list):
        if all(v is None or isinstance(v, str | int | float | bool) for v in value):
            out[prefix] = [to_number(v) for v in value] if numbers else value
    else:
        out[prefix] = to_number(value) if numbers else value


def clip(text: str, limit: int = 200) -> str:
    """One line of at most ``limit`` characters."""
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- secrets -------------------------------------------------------------

REDACTED = "<redacted>"
_SECRET_WORDS = frozenset({"password", "passwd", "secret", "token", "key", "keys",
                           "passphrase", "credentials", "credential", "auth",
                           "authorization"})
_secret_cache: dict[str, bool] = {}


def is_secret_key(name: str) -> bool:
    """``password``, ``private_key``, ``public_key``, ``api-token``,
    ``clientSecret``...: names whose values never reach output."""
    try:
        return _secret_cache[name]
    except KeyError:
        pass
    words = name.replace("-", "_").replace(".", "_")
    # camelCase -> words
    buf = []
    for ch in words:
        if ch.isupper():
            buf.append("_")
        buf.append(ch.lower())
    secret = any(w in _SECRET_WORDS for w in "".join(buf).split("_"))
    if len(_secret_cache) < 4096:
        _secret_cache[name] = secret
    return secret


def redact_url(url: str) -> str:
    """Drop the query (signatures) and any user:password of a URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    changed = False
    if "?" in rest:
        rest = rest.split("?", 1)[0] + "?" + REDACTED
        changed = True
    host_end = rest.find("/")
    authority = rest if host_end < 0 else rest[:host_end]
    if "@" in authority:
        rest = REDACTED + "@" + rest[len(authority.rsplit("@", 1)[0]) + 1:]
        changed = True
    return f"{scheme}://{rest}" if changed else url


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` with secret-named keys and URL queries redacted."""
    if depth > 32:
        return REDACTED
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(k, str) and is_secret_key(k) and v not in (None, "", [], {}):
                out[k] = REDACTED
            else:
                out[k] = redact(v, depth + 1)
        return out
    if isinstance(value, list):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def redact_text(text: str) -> str:
    """Best effort for payloads that are not JSON (truncated ones): blank the
    string value after any secret-named key. Only used on the error path."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        q = text.find('"', i)
        if q < 0:
            out.append(text[i:])
            break
        end = text.find('"', q + 1)
        if end < 0:
            out.append(text[i:])
            break
        out.append(text[i:end + 1])
        key = text[q + 1:end]
        i = end + 1
        j = i
        while j < n and text[j] in " \t\r\n":
            j += 1
        if j < n and text[j] == ":" and is_secret_key(key):
            j += 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] == '"':
                close = j + 1
                while close < n and text[close] != '"':
                    close += 2 if text[close] == "\\" else 1
                out.append(f':"{REDACTED}"')
                i = min(close + 1, n)
    if "://" in text and "?" in text:
        # signed URLs in a truncated body: drop their queries
        parts = "".join(out).split('"')
        return '"'.join(redact_url(p) if "://" in p else p for p in parts)
    return "".join(out)
