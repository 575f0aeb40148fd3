"""Parsing and redacting the URLs that name sources and sinks."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class Url:
    """A parsed source or sink URL. ``password`` never leaves this object
    except to the client library that needs it; ``redacted`` is what is shown."""

    raw: str = field(repr=False)
    scheme: str
    host: str
    port: int | None
    path: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    query: dict[str, list[str]] = field(default_factory=dict)

    @property
    def redacted(self) -> str:
        return redact(self.raw)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return list(self.query.get(name, []))


def parse_url(raw: str, *, default_ports: dict[str, int] | None = None) -> Url:
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid URL {redact(raw)!r}: {exc}", value=redact(raw)) from exc
    if not parts.scheme or ("://" not in raw and parts.scheme not in PATH_SCHEMES):
        raise ConfigError(f"URL {redact(raw)!r} has no scheme (e.g. mqtt://, nats://)",
                          value=redact(raw))
    scheme = parts.scheme.lower()
    if port is None and default_ports:
        port = default_ports.get(scheme)
    return Url(
        raw=raw,
        scheme=scheme,
        host=parts.hostname or "",
        port=port,
        path=unquote(parts.path),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        query=parse_qs(parts.query, keep_blank_values=True),
    )


def redact(raw: str) -> str:
    """Remove the whole userinfo (``user:pass@``): a NATS URL's lone userinfo
    is a token, so even a bare "user" part may be a secret."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return raw
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    query_free = tail
    # Query parameters that carry secrets are masked too.
    if "?" in tail:
        path, _, query = tail.partition("?")
        kept = []
        for item in query.split("&"):
            key = item.split("=", 1)[0].lower()
            kept.append(f"{key}=***" if key in SECRET_PARAMS else item)
        query_free = path + "?" + "&".join(kept)
    return f"{scheme}{sep}{authority}{slash}{query_free}"


#: Schemes whose URLs may be written without "//" (``file:out.jsonl``).
PATH_SCHEMES = frozenset({"file", "stdout", "duckdb"})
SECRET_PARAMS = frozenset({"password", "pass", "token", "secret", "nkey", "seed", "auth_token"})
