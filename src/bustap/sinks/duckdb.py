"""``duckdb:///abs/path.duckdb``, ``duckdb:rel/path.duckdb`` or ``path.duckdb``:
the embedded store (the default ``./bustap.duckdb``).

Why this insert path: DuckDB's fastest way in from Python is to let it read
JSON itself. A batch of records becomes one JSON array with one orjson call
(under a microsecond a record, where one call per record costs several) and
is staged as a file in ``<database>.staging/``; a staged file survives a
killed collector (it is loaded at the next start), so a flush (the QoS 1/2
ack) waits for no more than that, as for the JSONL sink. A second task loads
the staged files with ``INSERT ... SELECT FROM read_json([files], ...)``, in
C++ with the GIL released, one statement per DuckDB row group (122,880 rows)
or per ``flush_secs``, whichever comes first. A load that big is written
straight to the database file instead of through the WAL as well: 11-14 us
a record against 20-24 us for one statement per 5,000-record batch
(bench/store.py, python -m bench.capture).

A batch that does not fit the column types (a parser that put a string in
``qos``) is retried through :func:`~bustap.store.schema.safe_row`, which
moves the odd values to ``extra``: bad input is data, never a lost batch.

Rows arrive in time order, so DuckDB's per-block min/max (zonemaps) on
``ts`` serve time ranges without an index; ART indexes are left out because
they cost more on insert than they save on these scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ConfigError, SinkError
from ..record import Record
from ..store.schema import COLUMNS, EXTRA_KEY, TABLE, duckdb_ddl, format_ts, safe_row, with_extra
from ..urls import Url
from . import register_sink
from ._batched import BatchedStoreSink, StoreWriteError, describe_params, log
from .base import RecordBatch

if TYPE_CHECKING:
    from ..store.backend import DuckDBStore

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
#: DuckDB's row group: a statement that appends this many rows writes them
#: to the database file directly, not to the WAL first.
LOAD_ROWS = 122_880
_CONVERSION_ERRORS = ("ConversionException", "InvalidInputException", "BinderException")


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



@register_sink("duckdb")
class DuckDBSink(BatchedStoreSink):
    def __init__(self, url: Url) -> None:
        describe_params(url, PARAMS)
        super().__init__(url)
        self.path = duckdb_path(url)
        self.con: Any = None
        self._stage_dir = Path(
            os.path.join(tempfile.gettempdir(), f"bustap-{os.getpid()}-{next(_counter)}")
            if self.path == ":memory:" else f"{self.path}.staging")
        self._staged: list[tuple[Path, int]] = []  # (file, rows) in order
        self._staged_rows = 0
        self._recovered = False
        self._stage_lock = threading.Lock()  # _insert and _sync run in different threads
        self._db_lock = threading.RLock()  # so do _sync and _disconnect (after an error)
        self.max_unsynced = 2 * LOAD_ROWS  # staged files wait on disk, not in memory

    @property
    def name(self) -> str:
        return f"duckdb:{self.path}"

    def reader(self) -> DuckDBStore:
        """A store that reads this sink's database. DuckDB lets one process hold
        a file: it reads through a cursor of the sink's connection (a new
        connection to the same database), taken between loads."""
        from ..store.backend import DuckDBStore

        with self._db_lock:
            if self.con is None:
                raise SinkError(self.name, "not connected yet")
            return DuckDBStore(self.url, con=self.con.cursor())

    def _connect(self) -> None:
        with self._db_lock:
            self._open_db()

    def _open_db(self) -> None:
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - duckdb is a dependency
            raise ConfigError("the duckdb sink needs the duckdb package: pip install duckdb",
                              value="duckdb") from exc
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # DuckDB's defaults (80% of RAM) let a collector grow past 300 MB on
            # a 200k-message burst; 64 MB loads as fast (bench/capture.py). One
            # thread: a load is one stream of JSON, and the cores are shared
            # with the event loop and the broker.
            self.con = duckdb.connect(self.path, config={
                "memory_limit": "96MB", "threads": 1, "checkpoint_threshold": "16MB",
                "allocator_flush_threshold": "16MB"})
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise SinkError(self.name, "the database is in use by another process (DuckDB "
                                "allows one writer; use postgresql:// to share a store)"
                                ) from None
            raise SinkError(self.name, msg) from None
        self.con.execute(duckdb_ddl())
        self._stage_dir.mkdir(parents=True, exist_ok=True)
        if not self._recovered:  # files a killed collector staged and did not load
            self._recovered = True
            with self._stage_lock:
                self._staged[:0] = [(p, 0) for p in sorted(self._stage_dir.glob("*.json"))]
        self._load_staged()

    async def write(self, batch: RecordBatch) -> None:
        """A batch a worker process encoded is staged as it is (its JSON lines
        become the array read_json reads: a newline only ever separates two
        records), not parsed back into dicts."""
        if not (batch.lines_only and batch.known_keys and len(batch.lines) <= MAX_LOAD_BYTES):
            await super().write(batch)
            return
        self._raise_error()
        if self._pending:
            await self.flush()  # what came before goes first
        n = len(batch)
        data = b"[" + batch.lines.rstrip(b"\n").replace(b"\n", b",") + b"]"
        try:
            await asyncio.to_thread(self._stage, data, n)
        except OSError as exc:
            raise StoreWriteError(self.name, self._describe(exc), batch.records) from None
        self._appended += n
        self._inserted += n
        self.rows_written += n
        await self._notify()
        if self._inserted - self._synced >= self.max_unsynced:
            # staged, so accepted: a load error met while waiting is the next call's
            await self._wait_for(self._inserted - self.max_unsynced + 1, synced=True,
                                 raise_error=False)

    def _insert(self, records: list[Record]) -> None:
        """Stage records as a file; the syncer loads staged files (_sync)."""
        try:
            data = orjson.dumps([with_extra(r) for r in records], default=_default,
                                option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            data = orjson.dumps([_safe_dict(r) for r in records])
        if len(data) > MAX_LOAD_BYTES:
            if len(records) > 1:
                half = len(records) // 2
                self._insert(records[:half])
                self._insert(records[half:])
                return
            big = dict(records[0], payload=None,
                       decode_error=f"record of {len(data)} bytes is over the store's "
                                    f"{MAX_LOAD_BYTES}-byte limit: payload not stored")
            data = orjson.dumps([_safe_dict(big)])
        self._stage(data, len(records))

    def _stage(self, data: bytes, rows: int) -> None:
        path = self._stage_dir / f"{os.getpid()}-{next(_counter):012d}.json"
        with self._stage_lock:
            self._stage_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            self._staged.append((path, rows))
            self._staged_rows += rows

    def _sync_ready(self) -> bool:
        return self._staged_rows >= LOAD_ROWS

    def _sync(self) -> None:
        with self._db_lock:
            if self.con is None:
                self._open_db()  # loads what is staged
            else:
                self._load_staged()

    def _load_staged(self) -> None:
        """Load every staged file, a row group per statement."""
        while True:
            with self._stage_lock:
                files: list[Path] = []
                rows = 0
                while self._staged and (not files or rows + self._staged[0][1] <= LOAD_ROWS):
                    path, n = self._staged.pop(0)
                    files.append(path)
                    rows += n
                self._staged_rows -= rows
            if not files:
                return
            self._load_files(files)

    def _load_files(self, files: list[Path]) -> None:
        """One statement, else file by file with the odd values of a file that
        does not fit moved to ``extra``."""
        try:
            self._load(files)
        except Exception as exc:
            if type(exc).__name__ not in _CONVERSION_ERRORS:
                raise self._lost(files, exc) from None
            for i, path in enumerate(files):
                try:
                    try:
                        self._load([path])
                    except Exception as one:
                        if type(one).__name__ not in _CONVERSION_ERRORS:
                            raise
                        self._load_safe(path)
                except Exception as one:
                    raise self._lost(files[i:], one) from None
                path.unlink(missing_ok=True)  # loaded: never again
        for path in files:
            path.unlink(missing_ok=True)

    def _load(self, files: list[Path]) -> None:
        self.con.execute(INSERT_SQL, [[str(p) for p in files]])

    def _load_safe(self, path: Path) -> None:
        recs = [_unextra(r) for r in orjson.loads(path.read_bytes())]
        path.write_bytes(orjson.dumps([_safe_dict(r) for r in recs]))
        self._load([path])

    def _lost(self, files: list[Path], exc: BaseException) -> StoreWriteError:
        """The records of files that could not be loaded, handed back (the
        pipeline spools and replays them) and their files removed."""
        records: list[Record] = []
        for path in files:
            try:
                records += [_unextra(r) for r in orjson.loads(path.read_bytes())]
            except (OSError, orjson.JSONDecodeError):
                log.error("%s: staged file %s unreadable", self.name, path)
                continue
            path.unlink(missing_ok=True)
        return StoreWriteError(self.name, self._describe(exc), records)

    def _prune(self, cutoff: datetime) -> int:
        with self._db_lock:
            if self.con is None:
                self._open_db()
            row = self.con.execute(f"DELETE FROM {TABLE} WHERE ts < ?", [cutoff]).fetchone()
            return int(row[0]) if row else 0

    def _disconnect(self) -> None:
        with self._db_lock:
            if self.con is not None:
                con, self.con = self.con, None
                con.close()
            # only when empty: a file staged meanwhile is kept for the next load
            with self._stage_lock, contextlib.suppress(OSError):
                self._stage_dir.rmdir()


def _default(obj: object) -> object:
    if isinstance(obj, bytes | bytearray | memoryview):
        import base64

        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def _unextra(rec: Record) -> Record:
    """A staged row back as the record it was (what with_extra moved, back in place)."""
    extra = rec.pop(EXTRA_KEY, None)
    if isinstance(extra, dict):
        rec.update(extra)
    return rec


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
