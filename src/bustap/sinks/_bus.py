"""What the bus sinks (amqp, nats, jetstream, mqtt) share: URL parameters,
one message per record, and errors without secrets.

A bus sink connects in ``open()``; when a publish fails it drops the
connection and raises SinkError, the pipeline's spool keeps the batch, and
the spool's retry calls ``write()`` again, which reconnects first. A write
returns only when the broker has confirmed every record of the batch, so a
batch that ``write()`` accepted is on the broker.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

from ..errors import ConfigError
from ..net.tls import client_context
from ..record import Record
from ..urls import Url
from .base import RecordBatch


def check_params(url: Url, known: set[str]) -> None:
    """Unknown URL parameters are errors (Vector: unknown keys are refused)."""
    unknown = set(url.query) - known
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(f"sink {url.redacted}: unknown parameter {name!r} (known: "
                          f"{', '.join(sorted(known))})", value=name)


def flag_param(url: Url, name: str, default: bool = False) -> bool:
    raw = url.param(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on", ""):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"sink {url.redacted}: {name} must be true or false, not {raw!r}",
                      value=raw)


def choice_param(url: Url, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = url.param(name, default) or default
    if raw not in choices:
        raise ConfigError(f"sink {url.redacted}: {name} must be one of {', '.join(choices)}, "
                          f"not {raw!r}", value=raw)
    return raw


def messages(batch: RecordBatch) -> Iterator[tuple[Record, bytes]]:
    """Each record with its JSON (no newline): one bus message per record, the
    layout of pmacct's amqp/kafka output. A batch encoded by a worker is
    parsed back once for the template and the message id."""
    yield from zip(batch.records, batch.lines.splitlines(), strict=True)


def message_id(record: Record) -> str:
    """``writer_id:seq``: unique per record, the same when a record is re-sent."""
    return f"{record.get('writer_id', '')}:{record.get('seq', '')}"


def describe(exc: BaseException, url: Url) -> str:
    """A driver error in one line, without the URL's password."""
    text = str(exc).strip() or type(exc).__name__
    if url.password:
        text = text.replace(url.password, "***")
    return text.replace(url.raw, url.redacted)


#: TLS parameters every bus sink takes (the source's --tls-* flags)
TLS_PARAMS = frozenset({"tls_ca", "tls_cert", "tls_key", "insecure"})


def tls_context(url: Url, *, tls_scheme: bool) -> ssl.SSLContext | None:
    """A verifying client context when the scheme says TLS or a tls_* parameter is given."""
    ca, cert, key = url.param("tls_ca"), url.param("tls_cert"), url.param("tls_key")
    insecure = flag_param(url, "insecure")
    if not (tls_scheme or ca or cert or insecure):
        return None
    return client_context(ca=ca, cert=cert, key=key, insecure=insecure)
