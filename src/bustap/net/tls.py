"""TLS client contexts: verification on by default."""

from __future__ import annotations

import ssl
from pathlib import Path

from ..errors import ConfigError


def client_context(*, ca: str | None = None, cert: str | None = None, key: str | None = None,
                   insecure: bool = False) -> ssl.SSLContext:
    for flag, path in (("--tls-ca", ca), ("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{flag}: no such file {path!r}", value=path)
    if key and not cert:
        raise ConfigError("--tls-key needs --tls-cert", value=key)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        try:
            ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"--tls-cert/--tls-key: cannot load {cert!r}: {exc}",
                              value=cert) from exc
    return ctx


def describe_ssl_error(exc: BaseException) -> str:
    """A short reason for a TLS failure, for a one-line error message."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        return f"TLS error: {reason}"
    return str(exc)
