"""nats-server health: ``nats-monitor://host:8222`` polls the monitoring port.

Every ``?interval_secs=`` (default 10) it reads ``/varz``, ``/subsz`` and
``/connz`` (open and recently closed connections, with ``auth=true``) and
emits one ``kind: stats`` record (server counters and rates per second from
the totals) and ``broker_event`` records for what changed: a connection seen
for the first time (``client_connected``), a connection closed
(``client_disconnected`` with the server's reason; ``auth_failed`` too when
the reason is an authentication failure). The first poll also emits
``broker_info`` (version, server id and name, start time).

A tiny HTTP/1.0 client on asyncio streams: the endpoints are plain JSON on
loopback or a management network, and this keeps httpx out of the core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from ..errors import ConfigError, ConnectError
from . import register_source
from .base import Batch, Source

MAX_BODY = 64 * 1024 * 1024
_VARZ = ("version", "server_id", "server_name", "connections", "total_connections",
         "in_msgs", "out_msgs", "in_bytes", "out_bytes", "slow_consumers", "subscriptions",
         "mem", "cpu", "routes", "leafnodes", "max_connections", "auth_required",
         "tls_required", "uptime", "start")
_SUBSZ = ("num_subscriptions", "num_cache", "num_inserts", "num_removes", "num_matches",
          "cache_hit_rate", "max_fanout", "avg_fanout")
_RATES = ("in_msgs", "out_msgs", "in_bytes", "out_bytes")
_AUTH_REASONS = ("authentication", "authorization")


async def http_get_json(host: str, port: int, path: str, timeout: float) -> Any:
    """GET ``path`` and decode the JSON body; ConnectError on any failure."""
    name = f"http://{host}:{port}{path}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectError(name, f"cannot connect: {exc}") from exc
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n".encode())
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(1 << 16):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY:
                    raise ConnectError(name, f"response larger than {MAX_BODY} bytes")
    except (OSError, TimeoutError) as exc:
        raise ConnectError(name, f"read failed: {exc}") from exc
    finally:
        writer.close()
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or status[1] != b"200":
        raise ConnectError(name, f"HTTP status {b' '.join(status[1:]).decode(errors='replace')}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConnectError(name, "response is not JSON") from exc


@register_source("nats-monitor")
class NatsMonitorSource(Source):
    protocol = "nats"

    def __init__(self, url: Any, options: Any) -> None:
        super().__init__(url, options)
        try:
            self.interval = float(url.param("interval_secs") or 10)
        except ValueError as exc:
            raise ConfigError(f"{url.redacted}: interval_secs must be a number",
                              value=url.param("interval_secs")) from exc
        if self.interval <= 0:
            raise ConfigError(f"{url.redacted}: interval_secs must be positive",
                              value=self.interval)
        self.host = url.host or "127.0.0.1"
        self.port = url.port or 8222

    async def get(self, path: str) -> Any:
        return await http_get_json(self.host, self.port, path,
                                   self.options.connect_timeout_secs)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_Poller]:
        varz = await self.get("/varz")
        if not isinstance(varz, dict):
            raise ConnectError(self.name, "/varz is not a JSON object", fatal=True)
        poller = _Poller(self, varz)
        yield poller


def _conn_fields(c: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {"client_id": f"cid:{c.get('cid')}", "cid": c.get("cid"),
                           "address": c.get("ip"), "port": c.get("port")}
    for src, dst in (("name", "name"), ("lang", "lang"), ("version", "client_version"),
                     ("authorized_user", "username"), ("account", "account"),
                     ("tls_version", "tls_version"), ("kind", "conn_kind"),
                     ("in_msgs", "in_msgs"), ("out_msgs", "out_msgs"),
                     ("subscriptions", "subscriptions"), ("start", "start")):
        value = c.get(src)
        if value not in (None, ""):
            rec[dst] = value
    return rec


class _Poller:
    def __init__(self, source: NatsMonitorSource, varz: dict[str, Any]) -> None:
        self.source = source
        self.varz = varz
        self.info: dict[str, Any] = {k: varz.get(k) for k in ("server_id", "server_name",
                                                              "version")}
        self.info["monitor"] = f"http://{source.host}:{source.port}"
        self.open: dict[int, dict[str, Any]] = {}
        self.closed_seen: dict[int, None] = {}
        self.last: tuple[float, dict[str, Any]] | None = None
        self.first = True

    async def __aiter__(self) -> AsyncIterator[Batch]:
        src = self.source
        while True:
            started = time.monotonic()
            varz = self.varz if self.first else await src.get("/varz")
            subsz = await src.get("/subsz")
            opened = await src.get("/connz?state=open&auth=true&limit=100000")
            closed = await src.get("/connz?state=closed&auth=true&limit=100000")
            records: list[Any] = []
            if self.first:
                records.append({"kind": "broker_event", "broker": "nats",
                                "event": "broker_info", "version": varz.get("version"),
                                "server_id": varz.get("server_id"),
                                "server_name": varz.get("server_name"),
                                "start": varz.get("start"),
                                "auth_required": varz.get("auth_required")})
            records.append(self.stats(varz, subsz))
            records += self.changes(opened.get("connections") or [],
                                    closed.get("connections") or [])
            self.first = False
            yield Batch(records)
            await asyncio.sleep(max(0.0, src.interval - (time.monotonic() - started)))

    def stats(self, varz: dict[str, Any], subsz: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        rec: dict[str, Any] = {"kind": "stats", "broker": "nats", "event": "broker_stats"}
        for key in _VARZ:
            if key in varz:
                rec[key] = varz[key]
        for key in _SUBSZ:
            if key in subsz:
                rec[key] = subsz[key]
        if self.last is not None:
            then, old = self.last
            elapsed = now - then
            for key in _RATES:
                a, b = old.get(key), varz.get(key)
                if isinstance(a, int) and isinstance(b, int) and elapsed > 0 and b >= a:
                    rec[f"{key}_per_sec"] = round((b - a) / elapsed, 3)
        self.last = (now, {k: varz.get(k) for k in _RATES})
        return rec

    def changes(self, opened: list[dict[str, Any]], closed: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        now_open: dict[int, dict[str, Any]] = {}
        for c in opened:
            cid = c.get("cid")
            if not isinstance(cid, int):
                continue
            now_open[cid] = c
            if cid not in self.open:
                rec: dict[str, Any] = {"kind": "broker_event", "broker": "nats",
                                       "event": "client_connected"}
                rec.update(_conn_fields(c))
                if self.first:
                    rec["existing"] = True
                out.append(rec)
        closed_now: set[int] = set()
        for c in closed:
            cid = c.get("cid")
            if not isinstance(cid, int) or cid in self.closed_seen:
                continue
            self.closed_seen[cid] = None
            closed_now.add(cid)
            reason_text = str(c.get("reason") or "")
            fields = _conn_fields(c)
            if reason_text.lower().startswith(_AUTH_REASONS):
                rec = {"kind": "broker_event", "broker": "nats", "event": "auth_failed"}
                rec.update(fields)
                out.append(rec)
            elif cid not in self.open:
                # Opened and closed between two polls: the connection still
                # happened, and counts in "connections per minute".
                rec = {"kind": "broker_event", "broker": "nats", "event": "client_connected",
                       "between_polls": True}
                rec.update(fields)
                out.append(rec)
            rec = {"kind": "broker_event", "broker": "nats", "event": "client_disconnected",
                   "reason": _slug(reason_text), "reason_text": reason_text}
            rec.update(fields)
            out.append(rec)
        while len(self.closed_seen) > 200_000:
            del self.closed_seen[next(iter(self.closed_seen))]
        for cid, c in self.open.items():
            if cid not in now_open and cid not in closed_now and cid not in self.closed_seen:
                rec = {"kind": "broker_event", "broker": "nats",
                       "event": "client_disconnected", "reason": "unknown"}
                rec.update(_conn_fields(c))
                out.append(rec)
        self.open = now_open
        return out


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"
