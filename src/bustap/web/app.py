"""The dashboard's HTTP side: a FastAPI app with the JSON API (its OpenAPI
schema at ``/openapi.json``), one page, server-sent events and ``/metrics``.

Every asset is served from here: the page's own files are package data and
the charts come from plotly's bundled ``plotly.min.js``, read from the
installed ``plotly`` package, so the page works offline. FastAPI's
``/docs`` pages are off: they load Swagger UI from a CDN.

The store is opened for each request and closed after it: a DuckDB file
that a capture is writing can only be read between its writes, and a fresh
connection sees what was committed since (as ``bustap query --follow``).

Auth: with a token, every request needs ``Authorization: Bearer TOKEN``, or
the cookie the page gets after it was opened once with ``?token=TOKEN``
(HttpOnly, SameSite=Strict; its value is derived from the token, not the
token itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from ..errors import BustapError, ConfigError, SinkError
from ..store.backend import Store
from ..store.query import Filters
from ..store.schema import format_ts
from ..store.search import search
from ..store.timeparse import parse_time
from . import api
from .metrics import BustapCollector, TopicCounter, pipeline_health, registry

if TYPE_CHECKING:
    from ..pipeline import Pipeline

COOKIE = "bustap_session"
STATIC = resources.files("bustap.web") / "static"
#: how long a request waits for a DuckDB file that a capture is writing
LOCK_WAIT_SECS = 3.0


class StoreUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class WebState:
    open_store: Callable[[], Store]
    store_name: str
    token: str | None = None
    pipeline: Pipeline | None = None
    topics: TopicCounter | None = None
    poll_secs: float = 1.0

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        deadline = time.monotonic() + LOCK_WAIT_SECS
        while True:
            try:
                store = self.open_store()
                break
            except SinkError as exc:  # the writer holds the lock: try again shortly
                if time.monotonic() > deadline:
                    raise StoreUnavailable(str(exc)) from None
                time.sleep(0.05)
            except ConfigError as exc:  # no store yet, or no records table yet
                raise StoreUnavailable(str(exc)) from None
        try:
            yield store
        finally:
            store.close()


def plotly_js() -> Path:
    """plotly.js as the ``plotly`` Python package ships it."""
    try:
        import plotly
    except ImportError as exc:
        raise ConfigError("the dashboard needs plotly: pip install 'bustap[web]'",
                          value="plotly") from exc
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ConfigError(f"plotly.min.js not found in the plotly package at {path}",
                          value=str(path))
    return path


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"bustap dashboard session", hashlib.sha256).hexdigest()


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS),
                    status_code=status, media_type="application/json")


def _default(obj: object) -> object:
    if isinstance(obj, datetime):
        return format_ts(obj)
    return str(obj)


def _time(text: str | None, what: str) -> datetime | None:
    return parse_time(text, what=what) if text else None


def create_app(state: WebState) -> FastAPI:
    app = FastAPI(title="bustap", version=__version__, docs_url=None, redoc_url=None,
                  description="The records of a bustap store: rates, topics, timelines, "
                  "broker events, alerts and search.")
    app.state.web = state
    js = plotly_js()
    metrics_registry = registry(BustapCollector(open_store=state.open_store,
                                                pipeline=state.pipeline, topics=state.topics))

    @app.middleware("http")
    async def auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                   ) -> Response:
        token = state.token
        if token is None:
            return await call_next(request)
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _unauthorized()
            # once: the cookie carries the session, the URL loses the token
            query = urlencode([(k, v) for k, v in request.query_params.multi_items()
                               if k != "token"])
            target = request.url.path + (f"?{query}" if query else "")
            resp = RedirectResponse(target, status_code=303)
            resp.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict",
                            path="/")
            return resp
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode()):
            return await call_next(request)
        cookie = request.cookies.get(COOKIE)
        if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
            return await call_next(request)
        return _unauthorized()

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> Response:
        return _json({"error": exc.reason}, 503)

    @app.exception_handler(BustapError)
    async def bad_request(request: Request, exc: BustapError) -> Response:
        return _json({"error": str(exc)}, 400)

    # --- page and assets --------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_asset() -> Response:
        return FileResponse(js, media_type="text/javascript")

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        path = STATIC / name
        suffix = os.path.splitext(name)[1]
        if "/" in name or suffix not in types or not path.is_file():
            return _json({"error": f"no asset {name!r}"}, 404)
        return Response(path.read_bytes(), media_type=types[suffix],
                        headers={"Cache-Control": "no-cache"})

    # --- API --------------------------------------------------------------------

    @app.get("/api/health", summary="Store and pipeline health")
    def health() -> Response:
        out: dict[str, Any] = {"store": state.store_name, "version": __version__}
        with state.store() as store:
            out["as_of"] = format_ts(api.as_of(store))
        if state.pipeline is not None:
            out["pipeline"] = pipeline_health(state.pipeline)
        return _json(out)

    @app.get("/api/overview", summary="Rates now and over time per source, clients, alerts")
    def overview(window: int = Query(api.RATE_WINDOW_SECS, ge=1, le=86400),
                 span: int = Query(900, ge=10, le=86400 * 31)) -> Response:
        with state.store() as store:
            out = api.overview(store, window=window, span=span)
        if state.pipeline is not None:
            out["pipeline"] = pipeline_health(state.pipeline)
        return _json(out)

    @app.get("/api/topics", summary="Topics and subjects with counts, rates and last value")
    def topics(limit: int = Query(api.MAX_TOPICS, ge=1, le=100_000)) -> Response:
        with state.store() as store:
            return _json(api.topics(store, limit=limit))

    @app.get("/api/topic", summary="One topic: history chart data and last messages")
    def topic(name: str = Query(..., min_length=1),
              limit: int = Query(20, ge=1, le=1000)) -> Response:
        with state.store() as store:
            return _json(api.topic_detail(store, name, limit=limit))

    @app.get("/api/timeline", summary="Counts per time bucket grouped by topic, device, "
             "client or event (bustap stats --every)")
    def timeline(by: str = "topic", metric: str = "messages", since: str | None = None,
                 until: str | None = None, every: int | None = Query(None, ge=1),
                 top: int = Query(10, ge=1, le=100)) -> Response:
        with state.store() as store:
            return _json(api.timeline(store, by=by, metric=metric,
                                      since=_time(since, "since"), until=_time(until, "until"),
                                      every=every, top=top))

    @app.get("/api/events", summary="Broker events and per-client connection summary")
    def events(since: str | None = None, limit: int = Query(200, ge=1, le=5000)) -> Response:
        with state.store() as store:
            return _json(api.events(store, since=_time(since, "since"), limit=limit))

    @app.get("/api/alerts", summary="Alerts in their latest state (bustap alerts)")
    def alerts(state_: str = Query("all", alias="state", pattern="^(firing|resolved|all)$"),
               since: str | None = None) -> Response:
        with state.store() as store:
            found = api.alerts(store, since=_time(since, "since"))
        return _json([a for a in found if state_ == "all" or a.get("state") == state_])

    @app.get("/api/alerts/{alert_id}", summary="An alert and its evidence records")
    def alert(alert_id: str) -> Response:
        with state.store() as store:
            found = api.evidence(store, alert_id)
        if found is None:
            return _json({"error": f"no alert {alert_id!r}"}, 404)
        return _json(found)

    @app.get("/api/search", summary="Search records with the filters of bustap query")
    def search_records(topic: Annotated[list[str] | None, Query()] = None,
                       since: str | None = None, until: str | None = None,
                       device: Annotated[list[str] | None, Query()] = None,
                       event: Annotated[list[str] | None, Query()] = None,
                       severity: str | None = None,
                       client: Annotated[list[str] | None, Query()] = None,
                       kind: Annotated[list[str] | None, Query()] = None,
                       event_type: Annotated[list[str] | None, Query()] = None,
                       grep: str | None = None, where: str | None = None,
                       limit: int = Query(100, ge=1, le=10_000)) -> Response:
        def given(values: list[str] | None) -> list[str]:
            return [v for v in values or [] if v]

        filters = Filters(topics=given(topic), since=_time(since, "since"),
                          until=_time(until, "until"), devices=given(device),
                          events=given(event), severity=severity or None,
                          clients=given(client), kinds=given(kind),
                          event_types=given(event_type), grep=grep or None,
                          where=where or None)
        with state.store() as store:
            return _json(search(store, filters, limit=limit))

    @app.get("/api/stream", summary="Server-sent events: one 'update' event per poll with "
             "new records")
    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(_updates(state, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _unauthorized() -> Response:
    return JSONResponse({"error": "unauthorized: send Authorization: Bearer TOKEN, or open "
                         "the page once with ?token=TOKEN"}, status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


async def _updates(state: WebState, request: Request) -> AsyncIterator[bytes]:
    """``update`` events: how many records arrived since the last poll, and the
    last few of them. The page refreshes what it shows when one arrives."""

    def poll(after: datetime | None) -> tuple[datetime | None, int, list[Any]]:
        try:
            with state.store() as store:
                return api.records_since(store, after)
        except StoreUnavailable:
            return after, 0, []

    last, _, _ = await asyncio.to_thread(poll, None)
    yield b"retry: 2000\n: connected\n\n"
    while not await request.is_disconnected():
        await asyncio.sleep(state.poll_secs)
        newest, count, recs = await asyncio.to_thread(poll, last)
        if last is None:  # the store was empty or missing: from its first records on
            last = newest
        elif count:
            last = newest
            data = {"as_of": format_ts(newest), "new": count, "records": recs}
            yield b"event: update\ndata: " + orjson.dumps(data, default=_default) + b"\n\n"
        else:
            yield b": idle\n\n"
