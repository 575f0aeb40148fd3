"""``duckdb:///abs/path.duckdb``, ``duckdb:rel/path.duckdb`` or ``path.duckdb``:
the embedded store (the default ``./bustap.duckdb``).

Why this insert path: DuckDB's fastest way in from Python is to let it read
JSON itself. A batch of records becomes one JSON array with one orjson call
(under a microsecond a record, where one call per record costs several), is
written to a scratch file in /dev/shm, and ``INSERT ... SELECT FROM
read_json(file, columns=...)`` parses it in C++ with the GIL released. That
measured ~130k records/s against ~25k for pyarrow tables built from Python
lists and ~40k for ``json_transform`` over a parameter (bench/store.py).
A batch that does not fit the column types (a parser that put a string in
``qos``) is retried through :func:`~bustap.store.schema.safe_row`, which
moves the odd values to ``extra``: bad input is data, never a lost batch.

Rows arrive in time order, so DuckDB's per-block min/max (zonemaps) on
``ts`` serve time ranges without an index; ART indexes are left out because
they cost more on insert than they save on these scans.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError, SinkError
from ..record import Record
from ..store.schema import COLUMNS, TABLE, duckdb_ddl, format_ts, safe_row, with_extra
from ..urls import Url
from . import register_sink
from ._batched import BatchedStoreSink, describe_params

DEFAULT_PATH = "bustap.duckdb"
PARAMS = {"retain", "batch_rows", "max_rows", "flush_secs"}
_counter = itertools.count()

_READ_COLUMNS = "{" + ", ".join(
    f"'{c.key}': '{'VARCHAR' if c.name == 'ts' else c.duck}'" for c in COLUMNS) + "}"
_SELECT = ", ".join(
    f"strptime(\"{c.key}\", ['%Y-%m-%dT%H:%M:%S.%fZ', '%Y-%m-%dT%H:%M:%SZ'])"
    if c.name == "ts" else f'"{c.key}"' for c in COLUMNS)
INSERT_SQL = (f"INSERT INTO {TABLE} ({', '.join(c.name for c in COLUMNS)}) SELECT {_SELECT} "
              f"FROM read_json(?, format='array', columns={_READ_COLUMNS}, "
              f"maximum_object_size={8 << 20})")
# read_json buffers twice maximum_object_size; batches above this are split so
# that the collector's memory stays bounded (bench/: peak RSS under 300 MB).
MAX_LOAD_BYTES = 6 << 20


def duckdb_path(url: Url) -> str:
    """The database file a ``duckdb:`` URL names. ``duckdb:///abs/x.duckdb``
    is absolute; ``duckdb:x.duckdb`` and ``duckdb://x.duckdb`` are relative
    to the working directory; ``duckdb:`` alone is ``./bustap.duckdb``;
    ``duckdb::memory:`` is an in-memory database."""
    path = url.path
    if url.host:
        # urlsplit took the first path segment for a host: duckdb://x.duckdb
        path = url.host + path
    if path in ("", "/"):
        path = DEFAULT_PATH
    return path


def _scratch_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
        else tempfile.gettempdir()


@register_sink("duckdb")
class DuckDBSink(BatchedStoreSink):
    def __init__(self, url: Url) -> None:
        describe_params(url, PARAMS)
        super().__init__(url)
        self.path = duckdb_path(url)
        self.con: Any = None
        self._scratch = os.path.join(
            _scratch_dir(), f"bustap-{os.getpid()}-{next(_counter)}.json")

    @property
    def name(self) -> str:
        return f"duckdb:{self.path}"

    def _connect(self) -> None:
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - duckdb is a dependency
            raise ConfigError("the duckdb sink needs the duckdb package: pip install duckdb",
                              value="duckdb") from exc
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # DuckDB's defaults (80% of RAM, 16 MB of WAL before a checkpoint)
            # let a collector grow past 300 MB on a 200k-message burst; these
            # keep it near 250 MB (bench/capture.py) for the same insert rate.
            self.con = duckdb.connect(self.path, config={
                "memory_limit": "96MB", "threads": 2, "checkpoint_threshold": "8MB",
                "allocator_flush_threshold": "16MB"})
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise SinkError(self.name, "the database is in use by another process (DuckDB "
                                "allows one writer; use postgresql:// to share a store)"
                                ) from None
            raise SinkError(self.name, msg) from None
        self.con.execute(duckdb_ddl())

    def _insert(self, records: list[Record]) -> None:
        if self.con is None:
            self._connect()
        try:
            data = orjson.dumps([with_extra(r) for r in records], default=_default,
                                option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            data = None
        if data is not None and len(data) > MAX_LOAD_BYTES:
            if len(records) > 1:
                half = len(records) // 2
                self._insert(records[:half])
                self._insert(records[half:])
                return
            big = dict(records[0], payload=None,
                       decode_error=f"record of {len(data)} bytes is over the store's "
                                    f"{MAX_LOAD_BYTES}-byte limit: payload not stored")
            data = orjson.dumps([with_extra(big)], default=_default,
                                option=orjson.OPT_NON_STR_KEYS)
        if data is not None:
            try:
                self._load(data)
                return
            except Exception as exc:
                import duckdb

                if not isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException
                                  | duckdb.BinderException):
                    raise
        self._load(orjson.dumps([_safe_dict(r) for r in records]))

    def _load(self, data: bytes) -> None:
        with open(self._scratch, "wb") as fh:
            fh.write(data)
        try:
            self.con.execute(INSERT_SQL, [self._scratch])
        finally:
            os.unlink(self._scratch)

    def _prune(self, cutoff: datetime) -> int:
        if self.con is None:
            self._connect()
        row = self.con.execute(f"DELETE FROM {TABLE} WHERE ts < ?", [cutoff]).fetchone()
        return int(row[0]) if row else 0

    def _disconnect(self) -> None:
        if self.con is not None:
            con, self.con = self.con, None
            con.close()


def _default(obj: object) -> object:
    if isinstance(obj, bytes | bytearray | memoryview):
        import base64

        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def _safe_dict(rec: Record) -> dict[str, Any]:
    row = safe_row(rec)
    out: dict[str, Any] = {}
    for col, value in zip(COLUMNS, row, strict=True):
        if col.name == "ts":
            out[col.key] = format_ts(value)
        elif col.is_json and value is not None:
            out[col.key] = orjson.Fragment(value)
        else:
            out[col.key] = value
    return out
