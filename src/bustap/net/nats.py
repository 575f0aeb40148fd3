"""NATS connection settings shared by the NATS source and sink (nats-py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, ConnectError
from ..urls import Url
from .tls import client_context, describe_ssl_error


def connect_kwargs(url: Url, *, username: str | None = None, password: str | None = None,
                   token: str | None = None, creds: str | None = None, nkey: str | None = None,
                   tls_ca: str | None = None, tls_cert: str | None = None,
                   tls_key: str | None = None, insecure: bool = False,
                   connect_timeout: float = 5.0, name: str = "bustap") -> dict[str, Any]:
    """Keyword arguments for ``nats.connect``: credentials from the URL win
    over flags; a lone userinfo in a NATS URL is a token (as in the nats CLI)."""
    tls = url.scheme in ("tls", "natss") or bool(tls_ca or tls_cert or insecure)
    scheme = "tls" if tls else "nats"
    kwargs: dict[str, Any] = {
        # every server of the URL, in its order: connect() tries each in turn
        "servers": [f"{scheme}://{_netloc(host or '127.0.0.1', port or 4222)}"
                    for host, port in url.hosts or ((url.host, url.port),)],
        "name": name,
        "connect_timeout": connect_timeout,
        "allow_reconnect": False,  # bustap's own supervisor reconnects and marks the gap
        "max_reconnect_attempts": 0,
        "pending_size": 64 * 1024 * 1024,
    }
    if url.username is not None and url.password is None:
        token = url.username
    elif url.username is not None:
        username, password = url.username, url.password
    if username is not None:
        kwargs["user"] = username
        kwargs["password"] = password or ""
    if token:
        kwargs["token"] = token
    for flag, path in (("--creds", creds), ("--nkey", nkey)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{flag}: no such file {path!r}", value=path)
    if creds:
        kwargs["user_credentials"] = creds
    if nkey:
        kwargs["nkeys_seed"] = nkey
    if tls:
        kwargs["tls"] = client_context(ca=tls_ca, cert=tls_cert, key=tls_key, insecure=insecure)
        kwargs["tls_hostname"] = url.host or "127.0.0.1"
    return kwargs


def options_kwargs(url: Url, o: Any, *, name: str = "bustap") -> dict[str, Any]:
    """:func:`connect_kwargs` from a source's options (``SourceOptions``: the
    credential and TLS flags every NATS client of bustap takes)."""
    return connect_kwargs(url, username=o.username, password=o.password, token=o.token,
                          creds=o.creds, nkey=o.nkey, tls_ca=o.tls_ca, tls_cert=o.tls_cert,
                          tls_key=o.tls_key, insecure=o.insecure,
                          connect_timeout=o.connect_timeout_secs, name=name)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def connect(url: Url, kwargs: dict[str, Any], *,
                  error_cb: Callable[[Exception], Awaitable[None]] | None = None,
                  closed_cb: Callable[[], Awaitable[None]] | None = None) -> Any:
    """Connect to the first of ``kwargs["servers"]`` that takes the connection;
    when none does, one ConnectError naming the redacted URL and each server's
    reason (nats-py errors never include our credentials), fatal only when
    every server refused for good (TLS, authentication).

    The list is rotated in place past the server connected to, so that the
    next connect() with the same kwargs, after this connection is lost, tries
    the other servers first and the lost one last: a cluster's client fails
    over to the next live node without waiting on a dead one."""
    servers: list[str] = kwargs["servers"]
    failures: list[tuple[str, ConnectError]] = []
    for i, server in enumerate(list(servers)):
        attempt = {**kwargs, "servers": [server]}
        if "tls_hostname" in attempt:
            # each server's certificate is checked against its own name
            attempt["tls_hostname"] = urlsplit(server).hostname or attempt["tls_hostname"]
        try:
            nc = await _connect_one(url, attempt, error_cb=error_cb, closed_cb=closed_cb)
        except ConnectError as exc:
            failures.append((server.split("://", 1)[-1], exc))
            continue
        servers[:] = servers[i + 1:] + servers[:i + 1]
        return nc
    if len(failures) == 1:
        raise failures[0][1]
    reasons = "; ".join(f"{where}: {exc.reason}" for where, exc in failures)
    raise ConnectError(url.redacted, f"none of its {len(failures)} servers answered: {reasons}",
                       fatal=all(exc.fatal for _, exc in failures))


async def _connect_one(url: Url, kwargs: dict[str, Any], *,
                       error_cb: Callable[[Exception], Awaitable[None]] | None,
                       closed_cb: Callable[[], Awaitable[None]] | None) -> Any:
    import ssl

    from nats import errors as nerr
    from nats.aio.client import Client

    first_error: list[BaseException] = []
    connected = False

    async def _error(exc: Exception) -> None:
        if not first_error:
            first_error.append(exc)
        if not connected:
            # nats-py retries a refused first connection forever (it reads
            # max_reconnect_attempts=0 as "no limit"): give up at the first failure
            raise exc
        if error_cb is not None:
            await error_cb(exc)

    async def _closed() -> None:
        if closed_cb is not None:
            await closed_cb()

    nc = Client()
    try:
        await nc.connect(**kwargs, error_cb=_error, closed_cb=_closed)
        connected = True
        return nc
    except Exception as exc:
        # nats-py keeps the socket of a refused connection open (a leak per
        # failed attempt, and one per server of a list)
        transport = getattr(nc, "_transport", None)
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()
                await asyncio.wait_for(transport.wait_closed(), 1)
        cause: BaseException = first_error[0] if first_error else exc
        text = error_text(cause)
        fatal = False
        if isinstance(cause, ssl.SSLError):
            text, fatal = describe_ssl_error(cause), True
        elif "authorization" in text.lower() or "authentication" in text.lower():
            text, fatal = f"connection refused: {text}", True
        elif isinstance(cause, nerr.NoServersError | ConnectionRefusedError):
            text = "connection refused (no server listening)"
        elif isinstance(cause, OSError) and cause.strerror:
            text = cause.strerror
        raise ConnectError(url.redacted, text, fatal=fatal) from None


def error_text(exc: BaseException) -> str:
    """nats-py's error text without its "nats: " prefix and outer quotes."""
    text = str(exc).removeprefix("nats: ").strip()
    if len(text) > 1 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return text or type(exc).__name__
