"""What a decoder is.

A decoder claims messages by protocol and topic (cheap, cached per topic) and
then fills the record from the payload: ``format``, ``payload`` and, where it
finds them, ``device``, ``event``, ``severity`` and ``fields``. It raises
:class:`~bustap.errors.DecodeError` when the payload does not have the shape
its topic promised; the pipeline then keeps the payload raw with
``decode_error`` and the record is never lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..message import Message
from ..record import Record


class Decoder(ABC):
    name: ClassVar[str] = ""
    #: Higher runs first; generic decoders (json, text...) are at 0.
    priority: ClassVar[int] = 100
    #: What ``sniff`` needs to see: "object" (a JSON object), "text" (a payload
    #: that is not JSON) or "any". The chain calls each sniffer only on what
    #: it can recognise, which keeps sniffing cheap per message.
    sniff_on: ClassVar[str] = "any"
    #: The record's payload has secrets blanked: the bytes received are never
    #: kept beside it (no ``payload_raw``).
    redacts: ClassVar[bool] = False

    def claims(self, protocol: str, topic: str) -> bool:
        """Does this decoder want messages on this topic? Answered once per
        (protocol, topic) and cached, so it may be slow-ish."""
        return False

    def sniff(self, payload: bytes, value: Any) -> bool:
        """Does this decoder recognise a payload by its content alone?
        ``value`` is the parsed JSON, or None when the payload is not JSON."""
        return False

    @abstractmethod
    def decode(self, msg: Message, value: Any, rec: Record) -> None:
        """Fill ``rec``. ``value`` is the parsed JSON payload, or None."""

    def keep_raw(self, msg: Message, rec: Record) -> None:
        """Called instead of :meth:`decode` when the payload is too large to
        decode and is kept raw: a decoder whose topics carry secrets blanks
        them here."""
        return None
