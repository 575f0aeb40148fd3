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
    #: every server the URL names, ``(host, port)``, the first being ``host``/``port``;
    #: several only in a NATS URL (``nats://h1:4222,h2:4223``)
    hosts: tuple[tuple[str, int | None], ...] = ()

    @property
    def redacted(self) -> str:
        return redact(self.raw)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return list(self.query.get(name, []))


def parse_url(raw: str, *, default_ports: dict[str, int] | None = None) -> Url:
    """A URL; a NATS URL's authority may list several servers, comma-separated,
    with the credentials (if any) once, before the first: the nats CLI's form."""
    first, more = _split_servers(raw)
    try:
        parts = urlsplit(first)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid URL {redact(raw)!r}: {exc}", value=redact(raw)) from exc
    if not parts.scheme or ("://" not in raw and parts.scheme not in PATH_SCHEMES):
        raise ConfigError(f"URL {redact(raw)!r} has no scheme (e.g. mqtt://, nats://)",
                          value=redact(raw))
    scheme = parts.scheme.lower()
    ports = default_ports or {}
    if port is None:
        port = ports.get(scheme)
    host = parts.hostname or ""
    hosts = [(host, port)]
    for item in more:
        try:
            extra = urlsplit(f"//{item}")
            extra_port = extra.port
        except ValueError as exc:
            raise ConfigError(f"invalid URL {redact(raw)!r}: server {item!r}: {exc}",
                              value=redact(raw)) from exc
        if not extra.hostname or extra.username is not None or extra.path:
            raise ConfigError(f"invalid URL {redact(raw)!r}: server {item!r} is not host[:port]"
                              " (credentials go once, before the first server)",
                              value=redact(raw))
        hosts.append((extra.hostname, ports.get(scheme) if extra_port is None else extra_port))
    return Url(
        raw=raw,
        scheme=scheme,
        host=host,
        port=port,
        path=unquote(parts.path),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        query=parse_qs(parts.query, keep_blank_values=True),
        hosts=tuple(hosts),
    )


def _split_servers(raw: str) -> tuple[str, list[str]]:
    """``raw`` with only its first server, and the other servers of its list.
    A comma in any other URL's host is an error that says so (urlsplit would
    report a bad port, or take ``h1,h2`` for one host name)."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return raw, []
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, servers = authority.rpartition("@")
    scheme = scheme.lower()
    if "," not in servers or scheme in OWN_HOST_LISTS:
        return raw, []
    if scheme not in NATS_SCHEMES:
        raise ConfigError(f"URL {redact(raw)!r} names several servers: only "
                          f"{', '.join(f'{s}://' for s in sorted(NATS_SCHEMES))} URLs take a "
                          "comma-separated list of servers", value=redact(raw))
    first, *more = servers.split(",")
    if not first or not all(more):
        raise ConfigError(f"invalid URL {redact(raw)!r}: an empty server in its list",
                          value=redact(raw))
    return f"{scheme}{sep}{userinfo}{at}{first}{tail}", more


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
#: Schemes whose authority may name several servers (the NATS clients' server list).
NATS_SCHEMES = frozenset({"nats", "tls", "jetstream"})
#: ... and those whose driver reads its own host list from the raw URL (libpq).
OWN_HOST_LISTS = frozenset({"postgresql", "postgres"})
SECRET_PARAMS = frozenset({"password", "pass", "token", "secret", "nkey", "seed", "auth_token"})
