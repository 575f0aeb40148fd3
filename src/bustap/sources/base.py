"""What every source is: a connection factory plus one reconnect supervisor.

A source's connection is an async context manager and an async iterator of
:class:`Batch` es (aiomqtt/nats.py style). Reconnection lives outside the
connection, in :func:`supervise`: jittered exponential backoff, and a
``log_close`` / ``log_init`` pair around every gap.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    keep_trying: bool = False  # one of a fleet: a broker down at start is retried too
    # shared by a fleet's sources: how many may be connecting at once
    connect_gate: asyncio.Semaphore | None = field(default=None, repr=False, compare=False)


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
    failure is raised (the user gave a bad URL or credentials) unless the
    source is one of a fleet (``keep_trying``), where a broker that is down is
    reported and retried like one that went away. Later failures are retried,
    with a Lifecycle close/init around the gap; a failure is reported once,
    not at every retry, until the broker is back or the reason changes.
    Connection attempts wait for a place in ``connect_gate`` (shared by the
    sources of a fleet), streaming does not."""
    opts = source.options
    attempt = 0
    connected_once = False
    delivered = False  # a connection has delivered data: it was set up right
    reported: str | None = None  # the failure last reported while down
    while True:
        reason = "connection closed"
        was_up = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with opts.connect_gate or contextlib.nullcontext():
                    conn = await stack.enter_async_context(source.connect())
                connected_once = was_up = True
                attempt = 0
                reported = None
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
            # report it rather than retry forever. In a fleet it is one
            # broker's problem: reported, and retried with the backoff.
            retry = opts.reconnect and (connected_once or opts.keep_trying)
            if not retry or (exc.fatal and not delivered and not opts.keep_trying):
                raise
            reason = exc.reason
        except (OSError, asyncio.IncompleteReadError) as exc:
            if not (opts.reconnect and (connected_once or opts.keep_trying)):
                raise ConnectError(source.name, str(exc) or type(exc).__name__) from exc
            reason = str(exc) or type(exc).__name__
        delay = backoff(attempt, opts.backoff_initial_secs, opts.backoff_max_secs)
        if was_up or reason != reported:
            yield Batch([Lifecycle("close", {"reason": reason})])
            reported = reason
            log.warning("%s: %s; retrying in %.1fs", source.name, reason, delay)
        else:
            log.debug("%s: %s; retrying in %.1fs", source.name, reason, delay)
        await asyncio.sleep(delay)
        attempt += 1
