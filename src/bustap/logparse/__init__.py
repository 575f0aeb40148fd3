"""Broker log lines -> ``broker_event`` records: one parser module per broker.

Each module registers a stateful parser class with :func:`register_parser`.
A parser is fed lines in order and returns ready records (``kind:
broker_event``; the pipeline stamps seq/writer_id/timestamp). It keeps
per-connection state, so a later line carries the client id, address and
listener port learned from earlier ones; that state is bounded and forgets
closed connections. A line no parser rule knows becomes event ``unparsed``
with the raw ``line``: nothing is dropped.

    parser = make_parser("mosquitto")
    records = parser.feed_many(lines) + parser.flush()
    records = parse_lines(lines)            # format detected from the lines
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import ClassVar

from ..errors import ConfigError
from ..record import Record

__all__ = ["FORMATS", "PARSERS", "LogParser", "detect_format", "make_parser", "parse_lines",
           "register_parser"]

FORMATS = ("mosquitto", "nats")


class LogParser:
    """Base of the per-broker parsers. Subclasses implement :meth:`_line`."""

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.lines = 0
        self.unparsed = 0

    def feed(self, line: str) -> list[Record]:
        """Parse one line (without its newline)."""
        out: list[Record] = []
        self.lines += 1
        self._line(line, out)
        return out

    def feed_many(self, lines: Iterable[str]) -> list[Record]:
        out: list[Record] = []
        handle = self._line
        n = 0
        for line in lines:
            handle(line, out)
            n += 1
        self.lines += n
        return out

    def flush(self) -> list[Record]:
        """Records held back waiting for a continuation line (end of input)."""
        return []

    def _line(self, line: str, out: list[Record]) -> None:
        raise NotImplementedError

    @staticmethod
    def sniff(line: str) -> bool:
        """True when ``line`` is plainly in this parser's format."""
        return False


PARSERS: dict[str, type[LogParser]] = {}


def register_parser(name: str) -> Callable[[type[LogParser]], type[LogParser]]:
    def wrap(cls: type[LogParser]) -> type[LogParser]:
        cls.name = name
        PARSERS[name] = cls
        return cls
    return wrap


def _load() -> dict[str, type[LogParser]]:
    for name in FORMATS:
        if name not in PARSERS:
            importlib.import_module(f"{__name__}.{name}")
    return PARSERS


def make_parser(name: str) -> LogParser:
    parsers = _load()
    cls = parsers.get(name)
    if cls is None:
        raise ConfigError(f"unknown log format {name!r}: use one of {', '.join(sorted(parsers))}"
                          " or auto", value=name)
    return cls()


def detect_format(lines: Iterable[str], *, max_lines: int = 200) -> str | None:
    """The format most of the first lines are plainly in, or None."""
    parsers = _load()
    votes = dict.fromkeys(parsers, 0)
    for i, line in enumerate(lines):
        if i >= max_lines:
            break
        for name, cls in parsers.items():
            if cls.sniff(line):
                votes[name] += 1
    best = max(votes, key=lambda k: votes[k])
    return best if votes[best] else None


def parse_lines(lines: Iterable[str], fmt: str = "auto") -> list[Record]:
    """Parse a whole sequence of lines (a list, so that auto can look ahead)."""
    lines = list(lines)
    if fmt == "auto":
        fmt = detect_format(lines) or "mosquitto"
    parser = make_parser(fmt)
    return parser.feed_many(lines) + parser.flush()
