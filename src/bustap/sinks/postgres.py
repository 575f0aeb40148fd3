"""``postgresql://[user[:pass]@]host[:5432]/db[?schema=NAME]``: the shared store.

Rows go in with ``COPY ... FROM STDIN (FORMAT BINARY)`` in batches (psycopg 3
converts in C). ``schema`` puts the table in its own schema (created when
missing): several collectors or test runs can share one database.
Credentials never appear in errors: the URL shown is the redacted one.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..errors import ConfigError
from ..record import Record
from ..store.schema import COLUMNS, TABLE, postgres_ddl, safe_row
from ..urls import Url
from . import register_sink
from ._batched import BatchedStoreSink, describe_params

PARAMS = {"retain", "batch_rows", "max_rows", "flush_secs", "schema", "sslmode",
          "connect_timeout", "application_name"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def schema_name(url: Url) -> str | None:
    schema = url.param("schema")
    if schema is not None and not _IDENT.match(schema):
        raise ConfigError(f"invalid schema {schema!r} in {url.redacted}: use letters, digits "
                          "and _ (at most 63)", value=schema)
    return schema


def conninfo(url: Url) -> str:
    """The URL psycopg gets: ours minus the parameters only bustap knows."""
    from urllib.parse import urlencode

    base, _, _ = url.raw.partition("?")
    keep = {k: v[-1] for k, v in url.query.items()
            if k in ("sslmode", "connect_timeout", "application_name")}
    keep.setdefault("connect_timeout", "5")
    keep.setdefault("application_name", "bustap")
    if base.startswith("postgres://"):
        base = "postgresql://" + base[len("postgres://"):]
    return f"{base}?{urlencode(keep)}"


def connect(url: Url, *, autocommit: bool = False) -> Any:
    """A psycopg connection with ``search_path`` set to the URL's schema."""
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError("PostgreSQL needs psycopg: pip install 'bustap[postgres]'",
                          value="psycopg") from exc
    schema = schema_name(url)
    con = psycopg.connect(conninfo(url), autocommit=autocommit)
    if schema:
        from psycopg import sql

        with con.transaction():
            con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            con.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return con


class RawJson(str):
    """A JSON text that goes to a jsonb column as is (not as a JSON string)."""


def _raw_jsonb_dumper() -> type:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class RawJsonbDumper(Dumper):
        format = Format.BINARY
        oid = 3802  # jsonb

        def dump(self, obj: Any) -> bytes:
            # binary jsonb: a version byte, then the JSON text
            return b"\x01" + str(obj).encode("utf-8", "surrogatepass")

    return RawJsonbDumper


@register_sink("postgresql", "postgres")
class PostgresSink(BatchedStoreSink):
    def __init__(self, url: Url) -> None:
        describe_params(url, PARAMS)
        super().__init__(url)
        self.schema = schema_name(url)
        self.con: Any = None
        self._copy_sql = (f"COPY {TABLE} ({', '.join(c.name for c in COLUMNS)}) "
                          "FROM STDIN (FORMAT BINARY)")

    def _describe(self, exc: BaseException) -> str:
        # psycopg messages may quote the conninfo: never let a password through
        text = super()._describe(exc)
        if self.url.password:
            text = text.replace(self.url.password, "***")
        return text

    def _connect(self) -> None:
        self.con = connect(self.url)
        self.con.adapters.register_dumper(RawJson, _raw_jsonb_dumper())
        with self.con.transaction():
            for stmt in postgres_ddl():
                self.con.execute(stmt)

    def _insert(self, records: list[Record]) -> None:
        if self.con is None or self.con.closed:
            self._connect()

        types = [c.pg for c in COLUMNS]
        json_idx = [i for i, c in enumerate(COLUMNS) if c.is_json]
        with self.con.transaction(), self.con.cursor() as cur, cur.copy(self._copy_sql) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for rec in records:
                row = list(safe_row(rec))
                for i in json_idx:
                    if row[i] is not None:
                        # jsonb refuses \u0000; keep the rest of the value
                        row[i] = RawJson(row[i].replace("\\u0000", "\\ufffd"))
                write_row(row)

    def _prune(self, cutoff: datetime) -> int:
        if self.con is None or self.con.closed:
            self._connect()
        with self.con.transaction():
            cur = self.con.execute(f"DELETE FROM {TABLE} WHERE ts < %s", [cutoff])
            return int(cur.rowcount or 0)

    def _disconnect(self) -> None:
        if self.con is not None:
            con, self.con = self.con, None
            con.close()
