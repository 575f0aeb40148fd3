"""Decode and encode in worker processes (``capture --workers N``).

The receiving process parses frames and acknowledges; a worker turns a batch
of messages into records and their JSON lines, and only the lines come back
(bytes cross a pipe at memcpy speed, where unpickling a decoded record costs
about as much as decoding it: bench/RESULTS.md). Sinks that write lines
(JSONL, stdout, tcp) use them as they are; a sink that wants dicts parses
them back. Batches are submitted in order and written in order, with their
``seq`` ranges given out when they are submitted, so the stream is the one a
single process would write.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .decode import DecoderChain
from .encode import message_records
from .message import Message
from .record import Clock, dumps_many
from .store.schema import KNOWN_KEYS
from .tuning import tune_gc, tune_malloc

#: (lines, decode errors, payload bytes, every key a store column) of one batch
Encoded = tuple[bytes, int, int, bool]

_chain: DecoderChain | None = None
_clock: Clock | None = None


def _init(names: list[str] | None, rules: list[Any]) -> None:
    global _chain, _clock
    # Ctrl-C and systemd's SIGTERM reach the whole process group: the parent
    # stops gracefully, encoding what it has, and then closes the pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune_malloc()
    tune_gc()
    _chain = DecoderChain(names, rules)
    _clock = Clock()


def _ready() -> bool:
    return _chain is not None


def as_tuple(m: Message) -> tuple[Any, ...]:
    """What crosses to a worker: Message's fields, without ack_id."""
    return (m.protocol, m.topic, m.payload, m.received, m.qos, m.retain, m.dup, m.reply,
            m.headers, m.properties)


def encode(seq: int, writer_id: str, source: str, items: Sequence[tuple[Any, ...]],
           chain: DecoderChain | None = None, clock: Clock | None = None) -> Encoded:
    """Records seq, seq+1, ... of these messages, as JSON lines."""
    chain = chain or _chain
    clock = clock or _clock
    assert chain is not None and clock is not None, "worker not initialised"
    messages = [Message(*t) for t in items]
    records = message_records(messages, seq, writer_id, source, clock, chain.decode)
    errors = sum(1 for r in records if "decode_error" in r)
    known = all(map(KNOWN_KEYS.issuperset, records))
    return dumps_many(records), errors, sum(len(m.payload) for m in messages), known


class DecodePool:
    """``workers`` processes, each with its own decoder chain built from the
    same configuration as the pipeline's."""

    def __init__(self, workers: int, chain: DecoderChain) -> None:
        self.workers = workers
        self.chain = chain
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        # spawn, not fork: the parent has an event loop and driver threads
        names, rules = self.chain.config
        self._pool = ProcessPoolExecutor(self.workers,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init, initargs=(names, rules))
        # start them all now, not on the first burst, but without making the
        # sources wait: early batches queue until a worker is up
        for _ in range(self.workers):
            self._pool.submit(_ready)

    def submit(self, seq: int, writer_id: str, source: str,
               items: Sequence[Message]) -> asyncio.Future[Encoded]:
        assert self._pool is not None, "pool not started"
        return asyncio.get_running_loop().run_in_executor(
            self._pool, encode, seq, writer_id, source, [as_tuple(m) for m in items])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
