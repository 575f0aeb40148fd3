"""The dashboard: an HTTP API with one page, live updates and ``/metrics``
(``bustap serve``, and ``bustap run`` with a ``[web]`` table).

Needs the ``web`` extra (FastAPI, uvicorn, plotly, prometheus-client),
imported only when the dashboard starts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..pipeline import Pipeline
    from ..store.backend import Store
    from .app import WebState

DEFAULT_BIND = "127.0.0.1:8080"


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (loopback)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ConfigError(f"invalid --bind {text!r}: HOST:PORT, e.g. 127.0.0.1:8080",
                          value=text)
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"invalid --bind {text!r}: the port must be 0..65535", value=text)
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(bind: str, token: str | None) -> tuple[str, int]:
    """The address to listen on; beyond loopback only with a token."""
    host, port = parse_bind(bind)
    if not is_loopback(host) and not token:
        raise ConfigError(f"--bind {bind}: listening beyond loopback needs a token "
                          "(--token or BUSTAP_WEB_TOKEN): the dashboard shows every record",
                          value=bind)
    return host, port


def require_web() -> None:
    """The web extra's packages, or a ConfigError that names the missing one."""
    import importlib.util

    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"),
                            ("plotly", "plotly"), ("prometheus_client", "prometheus-client")):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"the dashboard needs {package}: pip install 'bustap[web]'",
                              value=package)


def check_free(host: str, port: int) -> None:
    """Fail before starting (exit 2) when the address cannot be listened on:
    uvicorn would exit the whole process from inside its task."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              value=f"{host}:{port}") from None


def server(state: WebState, host: str, port: int, *, embedded: bool = False) -> Any:
    """A uvicorn server for the app (``await server.serve()`` runs it).
    ``embedded``: inside a pipeline, whose SIGINT/SIGTERM handlers stay in place."""
    require_web()
    check_free(host, port)
    import uvicorn

    from .app import create_app

    config = uvicorn.Config(create_app(state), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off")
    if not embedded:
        return uvicorn.Server(config)

    class Embedded(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Embedded(config)


# --- inside ``bustap run``: the [web] table ---------------------------------------

SAMPLE = '''\
# [web]                            # the dashboard, API and /metrics inside bustap run
# bind = "127.0.0.1:8080"          # beyond loopback needs a token
# token_env = "BUSTAP_WEB_TOKEN"   # or token = "..." (not recommended)
# max_topics = 200                 # /metrics topic labels; the rest as topic="__other__"
'''


@dataclass(frozen=True)
class WebSettings:
    bind: str = DEFAULT_BIND
    token: str | None = field(default=None, repr=False)
    max_topics: int = 200

    @property
    def address(self) -> tuple[str, int]:
        return check_bind(self.bind, self.token)


def parse_web(table: Any, origin: str) -> WebSettings:
    """The ``[web]`` table of a run config, checked (bind, token) before anything starts."""
    where = f"{origin}: web"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table", value="web")
    allowed = {"bind", "token", "token_env", "max_topics"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: "
                          f"{', '.join(sorted(allowed))})", value=unknown[0])
    bind = table.get("bind", DEFAULT_BIND)
    if not isinstance(bind, str):
        raise ConfigError(f"{where}.bind must be a string like \"127.0.0.1:8080\"", value=bind)
    token = table.get("token")
    if token is not None and not isinstance(token, str):
        raise ConfigError(f"{where}.token must be a string", value="token")
    env = table.get("token_env")
    if env is not None:
        if not isinstance(env, str) or not os.environ.get(env):
            raise ConfigError(f"{where}.token_env: environment variable {env!r} is not set",
                              value=env)
        token = os.environ[env]
    max_topics = table.get("max_topics", 200)
    if type(max_topics) is not int or max_topics < 1:
        raise ConfigError(f"{where}.max_topics must be a positive integer, not {max_topics!r}",
                          value=max_topics)
    settings = WebSettings(bind=bind, token=token or None, max_topics=max_topics)
    try:
        settings.address  # noqa: B018 - validates
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}".replace("--token or BUSTAP_WEB_TOKEN",
                                                    "token_env"), value=bind) from None
    return settings


def pipeline_server(settings: WebSettings, pipeline: Pipeline) -> Coroutine[Any, Any, None]:
    """The dashboard of a running pipeline: its counters in /metrics and the
    overview, its store (the first DuckDB or PostgreSQL sink) for the rest."""
    require_web()
    from .app import WebState
    from .metrics import TopicCounter

    topics = TopicCounter(settings.max_topics)
    pipeline.processors.append(topics)
    open_store, name = _sink_store(pipeline)
    state = WebState(open_store=open_store, store_name=name, token=settings.token,
                     pipeline=pipeline, topics=topics)
    host, port = settings.address
    srv = server(state, host, port, embedded=True)
    return cast("Coroutine[Any, Any, None]", srv.serve())


def _sink_store(pipeline: Pipeline) -> tuple[Callable[[], Store], str]:
    from ..sinks.duckdb import DuckDBSink
    from ..sinks.postgres import PostgresSink
    from ..store.backend import open_store

    for sink in pipeline.sinks:
        if isinstance(sink, DuckDBSink):
            return sink.reader, sink.name
        if isinstance(sink, PostgresSink):
            return (lambda target=sink.url.raw: open_store(target)), sink.url.redacted

    def none() -> Store:
        raise ConfigError("no store: add a duckdb or postgresql [[sink]] to see records",
                          value="sink")

    return none, "(no store)"
