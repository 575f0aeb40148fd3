"""What every sink is: open once, write batches, flush, close.

Sinks receive a :class:`RecordBatch`; the JSON lines of a batch are encoded
once and shared by every sink that writes JSON.
"""

from __future__ import annotations

from abc import ABC
from typing import ClassVar

from ..errors import ConfigError
from ..record import Record, dumps_many, loads
from ..urls import Url


def seconds_param(url: Url, name: str, default: float) -> float:
    """A positive number of seconds from ``?name=`` (``default`` when absent)."""
    raw = url.param(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"sink {url.redacted}: {name} must be a positive number of "
                          f"seconds, not {raw!r}", value=raw)
    return value


class RecordBatch:
    """Records and their JSON lines, each made from the other on first use: a
    batch encoded by a worker process arrives as lines only, and a sink that
    wants dicts gets them parsed back."""

    __slots__ = ("_count", "_lines", "_records", "known_keys")

    def __init__(self, records: list[Record]) -> None:
        self._records: list[Record] | None = records
        self._lines: bytes | None = None
        self._count = len(records)
        #: every key of every record has a store column (nothing for ``extra``)
        self.known_keys = False

    @classmethod
    def from_lines(cls, lines: bytes, count: int, *, known_keys: bool = False) -> RecordBatch:
        batch = cls.__new__(cls)
        batch._records = None
        batch._lines = lines
        batch._count = count
        batch.known_keys = known_keys
        return batch

    @property
    def lines_only(self) -> bool:
        """Encoded elsewhere and not parsed back (yet)."""
        return self._records is None

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            assert self._lines is not None
            self._records = [loads(line) for line in self._lines.splitlines()]
        return self._records

    @property
    def lines(self) -> bytes:
        """The batch as JSON lines, encoded on first use."""
        if self._lines is None:
            assert self._records is not None
            self._lines = dumps_many(self._records)
        return self._lines

    def __len__(self) -> int:
        return self._count


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

    def reopen(self) -> None:  # noqa: B027
        """Reopen the files written (SIGHUP, after logrotate moved them); most
        sinks have none."""
