"""Opening a store for reading, and the few SQL spellings that differ
between DuckDB and PostgreSQL. Queries are written once with ``?``
placeholders; :class:`Store` adapts them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ConfigError, SinkError
from ..urls import Url, parse_url

Rows = tuple[list[str], list[tuple[Any, ...]]]
DEFAULT_STORE = "bustap.duckdb"


def default_store() -> str:
    return os.environ.get("BUSTAP_STORE") or DEFAULT_STORE


class Store:
    """A read connection to a store. ``execute`` takes SQL with ``?`` placeholders."""

    dialect = ""

    def __init__(self, url: Url) -> None:
        self.url = url

    @property
    def name(self) -> str:
        return self.url.redacted

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        raise NotImplementedError

    def iterate(self, sql: str, params: Sequence[Any] = (), size: int = 10_000
                ) -> Iterator[Rows]:
        """Rows in chunks (for export: never the whole table in memory)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- dialect ---------------------------------------------------------------

    def regex(self, expr: str) -> str:
        """SQL that is true when ``expr`` fully matches the regex parameter."""
        raise NotImplementedError

    def json_text(self, column: str, path: list[str]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def json_number(self, column: str, path: list[str]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def bucket(self, seconds: int) -> str:
        raise NotImplementedError

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def has_table(self) -> bool:
        raise NotImplementedError


class DuckDBStore(Store):
    dialect = "duckdb"

    def __init__(self, url: Url, *, read_only: bool = True, con: Any = None) -> None:
        """``con``: read through a connection this process already holds (a
        sink's cursor) instead of opening the file."""
        super().__init__(url)
        import duckdb

        from ..sinks.duckdb import duckdb_path

        self.path = duckdb_path(url)
        if con is not None:
            self.con = con
            return
        if self.path != ":memory:" and not os.path.exists(self.path):
            raise ConfigError(f"no store at {self.path}: capture into it first "
                              f"(bustap capture URL -o {self.path})", value=self.path)
        try:
            self.con = duckdb.connect(self.path, read_only=read_only and self.path != ":memory:")
        except duckdb.Error as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise SinkError(f"duckdb:{self.path}", "the database is in use by another "
                                "process (DuckDB allows one writer at a time: stop the capture, "
                                "or store into postgresql:// to query while capturing)") from None
            raise SinkError(f"duckdb:{self.path}", msg) from None

    @property
    def name(self) -> str:
        return f"duckdb:{self.path}"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cur = self.con.execute(sql, list(params))
        names = [d[0] for d in cur.description] if cur.description else []
        return names, cur.fetchall()

    def iterate(self, sql: str, params: Sequence[Any] = (), size: int = 10_000
                ) -> Iterator[Rows]:
        cur = self.con.execute(sql, list(params))
        names = [d[0] for d in cur.description] if cur.description else []
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                return
            yield names, rows

    def close(self) -> None:
        self.con.close()

    def regex(self, expr: str) -> str:
        return f"regexp_full_match({expr}, ?)"

    def json_text(self, column: str, path: list[str]) -> tuple[str, list[Any]]:
        return f"json_extract_string({column}, ?)", [_json_path(path)]

    def json_number(self, column: str, path: list[str]) -> tuple[str, list[Any]]:
        return f"TRY_CAST(json_extract_string({column}, ?) AS DOUBLE)", [_json_path(path)]

    def bucket(self, seconds: int) -> str:
        return f"time_bucket(INTERVAL {int(seconds)} SECOND, ts)"

    def has_table(self) -> bool:
        _, rows = self.execute("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_name = 'records'")
        return bool(rows[0][0])


def _json_path(path: list[str]) -> str:
    # each segment was checked by the --where parser: [A-Za-z0-9_-]+ (or digits)
    return "$" + "".join(f"[{p}]" if p.isdigit() else f'."{p}"' for p in path)


def _numeric_loader() -> type:
    """A psycopg loader for numeric results (``sum(bigint)``): int when whole,
    else float, as DuckDB returns them; a Decimal is not JSON, and every reader
    of rows would convert it."""
    from decimal import Decimal

    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        def load(self, data: Any) -> int | float:
            d = Decimal(bytes(data).decode("ascii"))
            return int(d) if d.is_finite() and d == d.to_integral_value() else float(d)

    return NumericLoader


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(self, url: Url) -> None:
        super().__init__(url)
        from ..sinks.postgres import connect

        try:
            self.con = connect(url, autocommit=True)
        except ConfigError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".replace(url.raw, url.redacted)
            if url.password:
                reason = reason.replace(url.password, "***")
            raise SinkError(url.redacted, reason) from None
        self.con.adapters.register_loader("numeric", _numeric_loader())

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self.con.cursor() as cur:
            cur.execute(self._sql(sql), list(params))
            names = [d.name for d in cur.description] if cur.description else []
            return names, cur.fetchall() if cur.description else []

    def iterate(self, sql: str, params: Sequence[Any] = (), size: int = 10_000
                ) -> Iterator[Rows]:
        # a named (server-side) cursor needs a transaction
        with self.con.transaction(), self.con.cursor(name="bustap_export") as cur:
            cur.itersize = size
            cur.execute(self._sql(sql), list(params))
            names: list[str] = []
            while True:
                rows = cur.fetchmany(size)
                if not names and cur.description:
                    names = [d.name for d in cur.description]
                if not rows:
                    return
                yield names, rows

    def close(self) -> None:
        self.con.close()

    def regex(self, expr: str) -> str:
        # the pattern carries its own ^...$ anchors
        return f"{expr} ~ ?"

    def json_text(self, column: str, path: list[str]) -> tuple[str, list[Any]]:
        return f"({column} #>> ?::text[])", [path]

    def json_number(self, column: str, path: list[str]) -> tuple[str, list[Any]]:
        return (f"(CASE WHEN jsonb_typeof({column} #> ?::text[]) = 'number' "
                f"THEN ({column} #>> ?::text[])::double precision END)", [path, path])

    def bucket(self, seconds: int) -> str:
        return f"date_bin(INTERVAL '{int(seconds)} seconds', ts, TIMESTAMP '2000-01-01')"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS text)"

    def has_table(self) -> bool:
        _, rows = self.execute("SELECT to_regclass('records') IS NOT NULL")
        return bool(rows[0][0])


def open_store(target: str | None = None) -> Store:
    """``path.duckdb``, ``duckdb:///path``, or ``postgresql://...``; default
    ``$BUSTAP_STORE`` or ``./bustap.duckdb``."""
    from ..sinks import normalize

    raw = target or default_store()
    if "://" not in raw and not raw.startswith("duckdb:"):
        raw = f"duckdb://{raw}" if raw.startswith("/") else f"duckdb:{raw}"
    url = parse_url(normalize(raw))
    if url.scheme == "duckdb":
        store: Store = DuckDBStore(url)
    elif url.scheme in ("postgresql", "postgres"):
        store = PostgresStore(url)
    else:
        raise ConfigError(f"unknown store {url.redacted!r}: use a .duckdb path, duckdb:///path "
                          "or postgresql://...", value=url.redacted)
    if not store.has_table():
        store.close()
        raise ConfigError(f"store {store.name} has no records table: capture into it first",
                          value=store.name)
    return store
