"""What every sink is: open once, write batches, flush, close.

Sinks receive a :class:`RecordBatch`; the JSON lines of a batch are encoded
once and shared by every sink that writes JSON.
"""

from __future__ import annotations

from abc import ABC
from typing import ClassVar

from ..record import Record, dumps_many
from ..urls import Url


class RecordBatch:
    __slots__ = ("_lines", "records")

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self._lines: bytes | None = None

    @property
    def lines(self) -> bytes:
        """The batch as JSON lines, encoded on first use."""
        if self._lines is None:
            self._lines = dumps_many(self.records)
        return self._lines

    def __len__(self) -> int:
        return len(self.records)


class Sink(ABC):  # noqa: B024 - every method has a sensible default but write
    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, url: Url) -> None:
        self.url = url

    @property
    def name(self) -> str:
        return self.url.redacted

    async def open(self) -> None:  # noqa: B027
        """Connect / create. Raise ConfigError or SinkError with the reason."""

    async def write(self, batch: RecordBatch) -> None:
        raise NotImplementedError

    async def flush(self) -> None:  # noqa: B027
        """Make what was written durable (called before acknowledging a batch)."""

    async def aclose(self) -> None:
        await self.flush()

    async def healthcheck(self) -> bool:
        return True
