"""What every source is: a connection factory plus one reconnect supervisor.

A source's connection is an async context manager and an async iterator of
:class:`Batch` es (aiomqtt/nats.py style). Reconnection lives outside the
connection, in :func:`supervise`: jittered exponential backoff, and a
``log_close`` / ``log_init`` pair around every gap.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ..backoff import backoff
from ..errors import ConnectError
from ..message import Message
from ..record import Record
from ..urls import Url

log = logging.getLogger("bustap.source")


@dataclass(slots=True)
class Lifecycle:
    """A connection came up (``init``) or went down (``close``)."""

    event: str
    info: dict[str, Any] = field(default_factory=dict)


Item = Message | Lifecycle | Record  # a Record here is a ready broker_event/stats record


@dataclass(slots=True)
class Batch:
    """Items received together, and what to call once they are durably written
    (MQTT PUBACK/PUBREC, JetStream ack). ``ack`` is None when nothing waits."""

    items: list[Item]
    ack: Callable[[], None] | None = None


class Connection(Protocol):
    info: dict[str, Any]

    def __aiter__(self) -> AsyncIterator[Batch]: ...


@dataclass(slots=True)
class SourceOptions:
    """Options shared by the bus sources; each takes what applies to it."""

    filters: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    qos: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    creds: str | None = None
    nkey: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure: bool = False
    session: str | None = None
    client_id: str | None = None
    queue: str | None = None
    protocol_version: str = "auto"
    keepalive_secs: int = 60
    connect_timeout_secs: float = 5.0
    max_pending: int = 5_000  # parsed, not yet handed over: reading pauses above this
    batch_max: int = 1_000  # messages per batch: bounds the pause of the event loop
    reconnect: bool = True
    backoff_initial_secs: float = 0.5
    backoff_max_secs: float = 30.0
    from_start: bool = False


class Source(ABC):
    """A place records come from. Subclasses register with
    :func:`bustap.sources.register_source` and implement :meth:`connect`."""

    schemes: ClassVar[tuple[str, ...]] = ()
    protocol: ClassVar[str] = ""

    def __init__(self, url: Url, options: SourceOptions) -> None:
        self.url = url
        self.options = options

    @property
    def name(self) -> str:
        return self.url.redacted

    @abstractmethod
    def connect(self) -> AbstractAsyncContextManager[Connection]:
        """Connect once. Raise ConnectError (``fatal`` when retrying cannot help)."""

    def stream(self) -> AsyncIterator[Batch]:
        return supervise(self)


async def supervise(source: Source) -> AsyncIterator[Batch]:
    """Connect, stream, and reconnect with backoff. The first connection
    failure is raised (the user gave a bad URL or credentials); later ones are
    retried, with a Lifecycle close/init around the gap."""
    opts = source.options
    attempt = 0
    connected_once = False
    delivered = False  # a connection has delivered data: it was set up right
    while True:
        reason = "connection closed"
        try:
            async with source.connect() as conn:
                connected_once = True
                attempt = 0
                yield Batch([Lifecycle("init", dict(conn.info))])
                async for batch in conn:
                    delivered = True
                    yield batch
                if not opts.reconnect:
                    yield Batch([Lifecycle("close", {"reason": "end of stream"})])
                    return
        except ConnectError as exc:
            # A fatal error before anything was delivered is a setup error (a
            # subscription the broker refuses a moment after accepting it):
            # report it rather than retry forever.
            if not connected_once or not opts.reconnect or (exc.fatal and not delivered):
                raise
            reason = exc.reason
        except (OSError, asyncio.IncompleteReadError) as exc:
            if not connected_once or not opts.reconnect:
                raise ConnectError(source.name, str(exc) or type(exc).__name__) from exc
            reason = str(exc) or type(exc).__name__
        yield Batch([Lifecycle("close", {"reason": reason})])
        delay = backoff(attempt, opts.backoff_initial_secs, opts.backoff_max_secs)
        log.warning("%s: %s; reconnecting in %.1fs", source.name, reason, delay)
        await asyncio.sleep(delay)
        attempt += 1
