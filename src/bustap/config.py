"""The TOML configuration of ``bustap run``: sources, sinks and decode rules,
validated once at start (unknown keys refused, errors name the key and the
bad value, like Vector and Telegraf).

Secrets are best kept out of the file: every ``password``, ``token`` has a
``*_env`` twin naming an environment variable.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .decode import DecoderChain
from .detect import DetectSettings, parse_detect
from .detect.settings import SAMPLE as DETECT_SAMPLE
from .errors import ConfigError
from .fleet import convert_text, expand, read_sources_file
from .sinks import Sink, make_sink
from .sources import Source, SourceOptions, make_source
from .web import SAMPLE as WEB_SAMPLE
from .web import WebSettings, parse_web

SAMPLE = '''\
# bustap run bustap.toml: a long-running tap. Every key is optional unless marked.
name = "tap1"                    # writer_id = "bustap/tap1"
workers = 0                      # decode in N worker processes (capture --workers)
max_connecting = 16              # connection attempts in flight at once (fleets)

[source_defaults]                # under every [[source]]; each may override
connect_timeout_secs = 5
backoff_max_secs = 30            # retries of a broker that is down: jittered, capped

[[source]]
url = "mqtt://broker.example:1883"        # required; mqtts:// for TLS
topics = ["/junos/events/#", "sensors/#"]
exclude = ["sensors/+/debug"]
qos = 1
session = "tap1"                 # persistent session: nothing lost while away
username = "bustap"
password_env = "BUSTAP_MQTT_PASSWORD"     # or password = "..." (not recommended)
tls_ca = "/etc/bustap/ca.pem"
keepalive_secs = 60

[[source]]
url = "tls://director.example:4222"
topics = ["hm.agent.>", "agent.>", "director.>"]
queue = "taps"
tls_cert = "/etc/bustap/nats-client.pem"
tls_key = "/etc/bustap/nats-client.key"
tls_ca = "/etc/bustap/nats-ca.pem"

[[source]]
url = "file:///var/log/mosquitto/mosquitto.log?format=mosquitto"

# A fleet: every Junos router runs its own MQTT broker. A range names them all
# (rtr-001 ... rtr-200); several sources keep running while some are down, and
# each record's "source" names its broker. Also: urls = ["mqtt://a", "mqtt://b"]
[[source]]
url = "mqtt://rtr-{001..200}.example.net:1883"
topics = ["/junos/events/#"]
username = "jet"
password_env = "BUSTAP_JET_PASSWORD"

[[sink]]
url = "bustap.duckdb"            # required; also FILE.jsonl, postgresql://..., -

# Bus sinks: one message per record; {name} takes a record field ("_" when missing).
# [[sink]]                       # RabbitMQ: durable exchange, persistent, confirmed
# url = "amqp://bustap@rabbit.example/telemetry?exchange=bustap&routing_key=bustap.{kind}.{device}"
# password_env = "BUSTAP_AMQP_PASSWORD"   # the URL's password, from the environment
# [[sink]]                       # JetStream: acked, de-duplicated by Nats-Msg-Id
# url = "jetstream://nats.example:4222/BUSTAP?subject=bustap.{kind}.{device}&create=true"
# (a cluster, R3: "jetstream://n1:4222,n2:4222,n3:4222/BUSTAP?...&replicas=3"; any
# NATS URL may list its servers so: when one goes away, the next live one takes over)
# [[sink]]                       # core NATS
# url = "nats://nats.example:4222/?subject=bustap.{event_type}.{device}"
# [[sink]]                       # MQTT: QoS 1 acknowledged, the source's TLS options
# url = "mqtts://broker.example:8883/?topic=bustap/{kind}/{device}&qos=1&tls_ca=/etc/bustap/ca.pem"
# [[sink]]                       # Logstash json_lines
# url = "tcp://logstash.example:5044"

[[decode.rules]]
filter = "sensors/+/temperature"
decoder = "number"
device = "topic[1]"

# Alerts: the built-in security detectors run with their defaults; [detect]
# tunes them and [[rule]] adds your own (the `bustap query --where` language).
''' + DETECT_SAMPLE + '\n' + WEB_SAMPLE

_SOURCE_KEYS = {f.name for f in fields(SourceOptions)} | {"url", "topics", "password_env",
                                                          "token_env"}
_SOURCE_KEYS -= {"filters", "connect_gate"}

#: Connection attempts in flight at once, by default, across a fleet.
MAX_CONNECTING = 16


@dataclass
class Config:
    name: str | None = None
    workers: int = 0
    sources: list[Source] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)
    decoders: DecoderChain = field(default_factory=DecoderChain)
    detect: DetectSettings = field(default_factory=DetectSettings)
    web: WebSettings | None = None  # [web]: the dashboard inside bustap run
    max_connecting: int = MAX_CONNECTING


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror or exc}", value=str(p)) from exc
    return parse(text, origin=str(p))


def parse(text: str, *, origin: str = "config") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}", value=origin) from exc
    _only(data, {"name", "workers", "source", "source_defaults", "max_connecting", "sink",
                 "decode", "detect", "rule", "web"}, origin)
    cfg = Config(name=_opt_str(data, "name", origin))
    workers = data.get("workers", 0)
    if type(workers) is not int or not 0 <= workers <= 64:
        raise ConfigError(f"{origin}: workers must be an integer 0..64, not {workers!r}",
                          value=workers)
    cfg.workers = workers
    defaults = data.get("source_defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{origin}: source_defaults must be a table", value="source_defaults")
    cfg.sources = sources_from_tables(_tables(data, "source", origin), origin=origin,
                                      defaults=defaults)
    if not cfg.sources:
        raise ConfigError(f"{origin}: no [[source]]: nothing to tap", value="source")
    cfg.max_connecting = max_connecting(data.get("max_connecting", MAX_CONNECTING), origin)
    if len(cfg.sources) > 1:
        # a service tapping several brokers keeps running while one is down
        make_fleet(cfg.sources, cfg.max_connecting)
    for i, snk in enumerate(_tables(data, "sink", origin)):
        where = f"{origin}: sink[{i}]"
        _only(snk, {"url", "password_env"}, where)
        cfg.sinks.append(make_sink(_sink_url(snk, where)))
    if not cfg.sinks:
        cfg.sinks.append(make_sink("bustap.duckdb"))
    decode = data.get("decode", {})
    if not isinstance(decode, dict):
        raise ConfigError(f"{origin}: [decode] must be a table", value="decode")
    _only(decode, {"rules", "decoders"}, f"{origin}: decode")
    # the tables themselves, checked by DecoderChain: worker processes rebuild it
    rules = list(_tables(decode, "rules", f"{origin}: decode"))
    names = decode.get("decoders")
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(n, str) for n in names)):
        raise ConfigError(f"{origin}: decode.decoders must be a list of names", value=names)
    cfg.decoders = DecoderChain(names, rules)
    cfg.detect = parse_detect(data, origin=origin)
    if "web" in data:
        cfg.web = parse_web(data["web"], origin)
    return cfg


def sources_from_tables(tables: Sequence[dict[str, Any]], *, origin: str,
                        defaults: dict[str, Any] | None = None,
                        base: SourceOptions | None = None) -> list[Source]:
    """Sources from ``[[source]]`` tables (or the lines of a sources file):
    ``defaults`` (``[source_defaults]``) apply to every table and ``base``
    (the command line's flags) under both; ``url`` may hold ranges
    (``mqtt://rtr-{001..200}:1883``) and ``urls`` a list of them."""
    if defaults:
        _only(defaults, _SOURCE_KEYS - {"url"}, f"{origin}: source_defaults")
    out: list[Source] = []
    for i, table in enumerate(tables):
        table = dict(table)
        line = table.pop("_line", None)
        where = f"{origin}:{line}" if line else f"{origin}: source[{i}]"
        out += _sources({**(defaults or {}), **table}, where, base)
    return out


def command_line_sources(urls: Sequence[str], options: SourceOptions, *,
                         sources_file: str | None = None,
                         max_connecting: int = MAX_CONNECTING,
                         keep_trying: bool = False) -> list[Source]:
    """``capture URL... [--sources FILE]``: URLs (ranges expanded) with the
    flags' options, then the file's sources over the same options. Several
    brokers from a range or a file make a fleet (:func:`make_fleet`)."""
    sources: list[Source] = []
    fleet = keep_trying or sources_file is not None
    for pattern in urls:
        expanded = expand(pattern)
        fleet = fleet or len(expanded) > 1
        sources += [make_source(u, options) for u in expanded]
    if sources_file is not None:
        defaults, tables = read_sources_file(sources_file)
        sources += sources_from_tables(tables, origin=sources_file, defaults=defaults,
                                       base=options)
    if not sources:
        raise ConfigError("no source: give URLs or --sources FILE", value="URL")
    if fleet:
        make_fleet(sources, max_connecting)
    return sources


def make_fleet(sources: Sequence[Source], max_connecting: int = MAX_CONNECTING) -> None:
    """Make sources one fleet: a broker down at start is reported and retried
    instead of stopping the others, and at most ``max_connecting`` connection
    attempts are in flight at once."""
    gate = asyncio.Semaphore(max_connecting)
    for s in sources:
        s.options.keep_trying = True
        s.options.connect_gate = gate


def max_connecting(value: object, where: str) -> int:
    if type(value) is not int or not 1 <= value <= 10_000:
        raise ConfigError(f"{where}: max_connecting must be an integer 1..10000, not "
                          f"{value!r}", value=value)
    return value


def _sources(table: dict[str, Any], where: str, base: SourceOptions | None) -> list[Source]:
    _only(table, _SOURCE_KEYS | {"urls"}, where)
    patterns: list[str] = []
    if "url" in table:
        patterns.append(_req_str(table, "url", where))
    urls = table.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
        raise ConfigError(f"{where}.urls: expected a list of URLs", value="urls")
    patterns += urls
    if not patterns:
        raise ConfigError(f"{where}: 'url' is required (a string)", value="url")
    opts = replace(base) if base is not None else SourceOptions()
    for key, value in table.items():
        if key in ("url", "urls", "password_env", "token_env"):
            continue
        target = "filters" if key == "topics" else key
        default = getattr(opts, target)
        value = convert_text(value, default)
        expected: type | tuple[type, ...] = (
            list if isinstance(default, list) else bool if isinstance(default, bool)
            else (int, float) if isinstance(default, int | float) else str)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            shown = "***" if key in ("password", "token") else repr(value)
            raise ConfigError(f"{where}.{key}: expected {_type_name(expected)}, not {shown}",
                              value=key)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.{key}: expected a list of strings", value=key)
        setattr(opts, target, value)
    for key, target in (("password_env", "password"), ("token_env", "token")):
        env = table.get(key)
        if env is not None:
            if not isinstance(env, str) or env not in os.environ:
                raise ConfigError(f"{where}.{key}: environment variable {env!r} is not set",
                                  value=env)
            setattr(opts, target, os.environ[env])
    out = []
    for pattern in patterns:
        for url in expand(pattern):
            source = make_source(url, opts)
            for check in ("filters", "subjects"):
                validate = getattr(source, check, None)
                if callable(validate):
                    validate()
            out.append(source)
    return out


def _sink_url(table: dict[str, Any], where: str) -> str:
    """The sink's URL, with the password of ``password_env`` put in its userinfo."""
    url = _req_str(table, "url", where)
    env = table.get("password_env")
    if env is None:
        return url
    if not isinstance(env, str) or env not in os.environ:
        raise ConfigError(f"{where}.password_env: environment variable {env!r} is not set",
                          value=env)
    from urllib.parse import quote, urlsplit

    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    user = user.partition(":")[0]
    if not user or not host:
        raise ConfigError(f"{where}.password_env: the url names no user (scheme://USER@host/...)"
                          " to give the password to", value="password_env")
    return url.replace(parts.netloc, f"{user}:{quote(os.environ[env], safe='')}@{host}", 1)


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return "a number"
    return {list: "a list", bool: "true or false", str: "a string"}.get(t, t.__name__)


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: "
                          f"{', '.join(sorted(allowed))})", value=unknown[0])


def _tables(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: {key} must be [[{key}]] tables", value=key)
    return value


def _req_str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key!r} is required (a string)", value=key)
    return value


def _opt_str(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key!r} must be a string", value=key)
    return value
