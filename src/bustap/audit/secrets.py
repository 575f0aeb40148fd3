"""Payloads that look like they hold secrets: passwords, private keys, tokens
(JWT, NATS nkey seeds, AWS-style keys), credentials in URLs, e-mail addresses.

A hit carries a *hint* that says what was found and where, never the secret:
``key "password" (9 chars)``, ``AKIA… (AWS access key id)``,
``j…@example.com``. The hints are what an audit report shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

MAX_SCAN_BYTES = 64 * 1024  # a secret in a retained config blob sits near its start

_NAME = re.compile(r"password|passwd|passphrase|(?:^|[_.-])pass$|pwd|secret|token|"
                   r"api[_-]?key|access[_-]?key|private[_-]?key|credential|auth[_-]?key|bearer",
                   re.IGNORECASE)
_NOT_SECRET_NAME = re.compile(r"public|passenger|passive|bypass|expires|_at$|type$|url$",
                              re.IGNORECASE)
_PLACEHOLDER = {"", "***", "****", "*****", "<redacted>", "redacted", "null", "none", "true",
                "false"}
_KEY_VALUE = re.compile(
    r"""(?P<key>[A-Za-z_][\w.-]{0,40})["']?\s*[=:]\s*["']?(?P<value>[^\s"'&,;}{]{3,})""")
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("private_key", re.compile(r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?)PRIVATE "
                               r"KEY-----"), "PEM private key"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
     "JWT"),
    ("nkey_seed", re.compile(r"\bS[UOACN][A-Z2-7]{56}\b"), "NATS nkey seed"),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "AWS access key id"),
    ("bearer_token", re.compile(r"\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{16,}"), "bearer token"),
    ("url_credentials", re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://[^/\s:@\"']{1,64}:"
                                   r"[^/\s@\"']{1,128}@[\w.-]+"), "password in a URL"),
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@(?P<domain>[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]"
                    r"{1,63})*\.[A-Za-z]{2,24})\b")


@dataclass(frozen=True, slots=True)
class SecretHit:
    kind: str  # password, token, private_key, jwt, nkey_seed, aws_access_key, email, ...
    hint: str  # what and where, redacted

    def __str__(self) -> str:
        return f"{self.kind}: {self.hint}"


def is_secret_name(name: str) -> bool:
    return bool(_NAME.search(name)) and not _NOT_SECRET_NAME.search(name)


def _kind_of(name: str) -> str:
    low = name.lower()
    if "pass" in low or "pwd" in low:
        return "password"
    if "private" in low:
        return "private_key"
    return "token"


def find_secrets(payload: bytes, *, limit: int = 5) -> list[SecretHit]:
    """Up to ``limit`` distinct hits in ``payload`` (JSON or text; binary
    payloads are scanned as far as they are text)."""
    text = payload[:MAX_SCAN_BYTES].decode("utf-8", "replace")
    hits: list[SecretHit] = []
    seen: set[SecretHit] = set()

    def add(hit: SecretHit) -> None:
        if hit not in seen and len(hits) < limit:
            seen.add(hit)
            hits.append(hit)

    for kind, pattern, label in _PATTERNS:
        for m in pattern.finditer(text):
            add(SecretHit(kind, _pattern_hint(kind, m, label)))
    try:
        doc: Any = orjson.loads(payload) if len(payload) <= MAX_SCAN_BYTES else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict | list):
        for path, value in _secret_values(doc):
            add(SecretHit(_kind_of(path.rsplit(".", 1)[-1]),
                          f"key {path!r} ({len(value)} chars)"))
    else:
        for m in _KEY_VALUE.finditer(text):
            key, value = m.group("key"), m.group("value")
            if is_secret_name(key) and value.lower() not in _PLACEHOLDER and "://" not in value:
                add(SecretHit(_kind_of(key), f"key {key!r} ({len(value)} chars)"))
    for m in _EMAIL.finditer(text):
        if _inside_url_credentials(text, m.start()):
            continue
        add(SecretHit("email", f"{m.group(0)[0]}…@{m.group('domain')}"))
    return hits


def _pattern_hint(kind: str, m: re.Match[str], label: str) -> str:
    if kind == "private_key":
        return f"-----BEGIN {m.group(1)}PRIVATE KEY----- block"
    if kind == "url_credentials":
        scheme, _, rest = m.group(0).partition("://")
        return f"{scheme}://…:***@{rest.rsplit('@', 1)[1]} ({label})"
    return f"{m.group(0)[:3]}… ({label}, {len(m.group(0))} chars)"


def _inside_url_credentials(text: str, pos: int) -> bool:
    # user@host in mqtt://user:pw@host is reported as url_credentials already
    start = text.rfind("://", max(0, pos - 80), pos)
    return start >= 0 and not any(c in text[start:pos] for c in " \t\n\"'")


def _secret_values(doc: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if depth > 16:
        return out
    items: list[tuple[str, Any]] = (
        [(str(k), v) for k, v in doc.items()] if isinstance(doc, dict)
        else [(str(i), v) for i, v in enumerate(doc)] if isinstance(doc, list) else [])
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict | list):
            out += _secret_values(value, path, depth + 1)
        elif (isinstance(value, str) and isinstance(doc, dict) and is_secret_name(key)
              and value.strip().lower() not in _PLACEHOLDER and len(value) >= 3):
            out.append((path, value))
    return out
